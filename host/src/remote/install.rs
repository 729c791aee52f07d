//! Putting the agent on a host: unless the spec names a remote command, the controller's own
//! binary is installed into the host's per-user cache, once per binary version (its sha256
//! names the file), and verified there before it runs.

use crate::spec::Ssh;
use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::process::Stdio;
use std::sync::OnceLock;

/// This binary and its sha256.
fn me() -> Result<&'static (std::path::PathBuf, String)> {
    static ME: OnceLock<(std::path::PathBuf, String)> = OnceLock::new();
    if let Some(m) = ME.get() {
        return Ok(m);
    }
    let path = std::env::current_exe().context("finding the cutover binary")?;
    let mut f = std::fs::File::open(&path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(ME.get_or_init(|| (path, hex::encode(h.finalize()))))
}

/// `ssh [options] HOST COMMAND`, never asking anything (`BatchMode`), output captured.
pub(crate) fn command(host: &str, ssh: &Ssh, remote: &str) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(&ssh.program);
    c.args(&ssh.options)
        .arg("-o")
        .arg(format!(
            "ConnectTimeout={}",
            ssh.connect_timeout.as_secs().max(1)
        ))
        .arg("-o")
        .arg("BatchMode=yes")
        .arg("--")
        .arg(host)
        .arg(remote)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// How the agent starts on a host, over the session's own connection.
pub struct Start {
    /// The remote command.
    pub command: String,
    /// This binary, for a host that answers `need` before the agent starts.
    pub upload: Option<&'static std::path::Path>,
}

/// The remote command of a session. With `agent = "upload"` it first says `have` (the cache
/// holds this binary, checked by sha256) or `need`; after `need` it reads the binary from
/// its input, checks its sha256, makes it executable only then, says `stored`; then it runs
/// the agent. So checking, uploading and serving share one SSH connection.
pub fn start(s: &Ssh) -> Result<Start> {
    let cache = &s.cache;
    if s.agent != "upload" {
        return Ok(Start {
            command: format!("{} agent --stdio --cache \"{cache}\"", s.agent),
            upload: None,
        });
    }
    let (path, sha) = me()?;
    let size = std::fs::metadata(path)?.len();
    let script = format!(
        "f=\"{cache}/bin/cutover-{sha}\"; \
         if [ -x \"$f\" ] && [ \"$(sha256sum \"$f\" | cut -d\" \" -f1)\" = {sha} ]; then echo have; else \
         echo need; set -e; mkdir -p \"$(dirname \"$f\")\"; t=\"$f.$$\"; head -c {size} > \"$t\"; \
         if [ \"$(sha256sum \"$t\" | cut -d\" \" -f1)\" != {sha} ]; then rm -f \"$t\"; echo \"the upload arrived damaged\" >&2; exit 3; fi; \
         chmod 755 \"$t\"; mv \"$t\" \"$f\"; echo stored; fi; \
         exec \"$f\" agent --stdio --cache \"{cache}\""
    );
    Ok(Start {
        command: format!("sh -c '{script}'"),
        upload: Some(path.as_path()),
    })
}
