//! Helpers shared by the product simulators: files, processes, arguments and HTTP calls.

pub mod jar;
pub mod sshd;

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Run a simulator's `run` with its arguments (program name left out); an error is printed
/// as `name: error` and exits with 1.
pub fn main(name: &str, run: impl FnOnce(&[String]) -> Result<()>) {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = run(&args) {
        eprintln!("{name}: {e:#}");
        std::process::exit(1);
    }
}

/// The folder given as argument `index`, or an error saying it is missing.
pub fn folder(args: &[String], index: usize) -> Result<PathBuf> {
    Ok(PathBuf::from(
        args.get(index).context("missing folder argument")?,
    ))
}

/// The `--plugins` folder (where the specs a fleet builder writes find the plugins), by
/// default the plugins workspace's release output.
pub fn plugins_dir(args: &[String]) -> PathBuf {
    PathBuf::from(arg(
        args,
        "--plugins",
        "plugins/target/wasm32-wasip2/release",
    ))
}

/// The value after `name` in `args`, or `default`.
pub fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

/// A file's text, trimmed; empty when missing.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Append a line to a log file (creating its folder).
pub fn append(path: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    // One write of the whole line: lines from concurrent processes never interleave
    // (`writeln!` would write the pieces of its format one by one).
    f.write_all(format!("{line}\n").as_bytes())?;
    Ok(())
}

/// Write through a temporary file (its own per writer) and a rename.
pub fn write_atomic(path: &Path, text: &[u8]) -> Result<()> {
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}-{n}.tmp", std::process::id()));
    let tmp = path.with_file_name(name);
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Write an executable script (its folder is created as needed).
pub fn write_exec(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Whether process `pid` is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    let stat = read(&PathBuf::from(format!("/proc/{pid}/stat")));
    !stat.is_empty() && !stat.contains(") Z ")
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

/// An HTTP call with a short timeout; `Ok((status, body))` for any status.
pub fn http(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> Result<(u16, String)> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(3)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut b = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = bearer {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    if body.is_some() {
        b = b.header("content-type", "application/json");
    }
    let req = b.body(body.unwrap_or_default().into_bytes())?;
    let resp = agent.run(req).with_context(|| format!("{method} {url}"))?;
    let status = resp.status().as_u16();
    let text = resp.into_body().read_to_string()?;
    Ok((status, text))
}

/// Start `cmd` detached from this process's standard streams; its pid.
pub fn spawn_detached(cmd: &mut std::process::Command) -> Result<u32> {
    use std::process::Stdio;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(child.id())
}

/// Write `bin/<action>` scripts in `root` that run this simulator as `<sim> <action> <root>`.
pub fn control_scripts(root: &Path, comment: &str, actions: &[&str]) -> Result<()> {
    let me = std::env::current_exe()?;
    for action in actions {
        write_exec(
            &root.join("bin").join(action),
            &format!(
                "#!/bin/sh\n# {comment}\nexec '{}' {action} \"$(dirname \"$0\")/..\"\n",
                me.display()
            ),
        )?;
    }
    Ok(())
}

/// Wait until something listens on 127.0.0.1:`port`, at most `limit`; false on timeout.
pub fn listening(port: u16, limit: std::time::Duration) -> bool {
    wait_until(limit, || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
}

/// Wait until `cond` holds or `limit` passes; false on timeout.
pub fn wait_until(limit: std::time::Duration, mut cond: impl FnMut() -> bool) -> bool {
    let until = std::time::Instant::now() + limit;
    while !cond() {
        if std::time::Instant::now() > until {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    true
}
