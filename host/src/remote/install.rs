//! Putting the agent on a host: unless the spec names a remote command, the controller's own
//! binary is installed into the host's per-user cache, once per binary version (its sha256
//! names the file), and verified there before it runs.

use crate::spec::Ssh;
use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::process::Stdio;
use std::sync::OnceLock;
use tokio::io::AsyncWriteExt;

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

/// The command that starts the agent on `host`: the spec's, or this binary installed in the
/// host's cache (uploaded when missing or different, and checked by sha256 on arrival).
pub async fn agent_command(host: &str, s: &Ssh) -> Result<String> {
    let cache = &s.cache;
    if s.agent != "upload" {
        return Ok(format!("{} agent --stdio --cache \"{cache}\"", s.agent));
    }
    let (path, sha) = me()?;
    let file = format!("\"{cache}/bin/cutover-{sha}\"");
    let check = format!(
        "f={file}; if [ -x \"$f\" ] && [ \"$(sha256sum \"$f\" | cut -d\" \" -f1)\" = {sha} ]; then echo have; else echo need; fi"
    );
    let out = command(host, s, &format!("sh -c '{check}'"))
        .stdin(Stdio::null())
        .output()
        .await?;
    let said = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "host `{host}`: cannot check for the agent: {}",
            super::client::explain(&String::from_utf8_lossy(&out.stderr))
        );
    }
    if said.trim() == "need" {
        let store = format!(
            "set -e; f={file}; mkdir -p \"$(dirname \"$f\")\"; t=\"$f.$$\"; cat > \"$t\"; \
             if [ \"$(sha256sum \"$t\" | cut -d\" \" -f1)\" != {sha} ]; then rm -f \"$t\"; echo \"the upload arrived damaged\" >&2; exit 3; fi; \
             chmod 755 \"$t\"; mv \"$t\" \"$f\"; echo stored"
        );
        let mut child = command(host, s, &format!("sh -c '{store}'"))
            .stdin(Stdio::piped())
            .spawn()?;
        let mut stdin = child.stdin.take().expect("piped");
        let bytes = tokio::fs::read(path).await?;
        stdin.write_all(&bytes).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        if !out.status.success() || String::from_utf8_lossy(&out.stdout).trim() != "stored" {
            bail!(
                "host `{host}`: uploading the agent failed: {}",
                super::client::explain(&String::from_utf8_lossy(&out.stderr))
            );
        }
    }
    Ok(format!("{file} agent --stdio --cache \"{cache}\""))
}
