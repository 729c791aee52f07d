//! talend-sim: a **simulator** of Talend Remote Engines and of the part of the Talend
//! Management Console (TMC) API that the engine upgrade procedure uses. The real products
//! cannot run here; this follows their documented behaviour closely enough for the
//! `talend-remote-engine` adapter to be tested step by step.
//!
//! A fleet folder looks like this:
//!
//! ```text
//! fleet/
//!   api/            the management API: state.json (engines, keys, tasks), requests.log,
//!                   token (the bearer token), port, pid
//!   engines/re-01/
//!     Talend-RE-2.13.2/   the old engine: bin/start, bin/stop, etc/*.cfg, data/dsrunner,
//!                         data/cls, data/log/tesb.log, run/engine.pid, VERSION
//!     Talend-RE-2.13.9/   the new install: bin/, etc/ with placeholders, empty data/
//!     sim.log             every start and stop, as the simulator saw it
//!   rollout.toml    a Cutover spec upgrading the fleet
//! ```
//!
//! Commands:
//! - `fleet DIR --engines N --tasks T --port P --plugins DIR [--unpair-wait S] [--group-size G]`
//! - `api DIR --port P` (the management API server), `start ROOT`, `stop ROOT`, `run ROOT`
//!   (the engine process), `generate ROOT --tasks T` (a data tree)
//! - `status DIR`, `verify DIR [--json]`, `teardown DIR`

mod api;
mod datagen;
mod engine;
mod fleet;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

fn main() {
    if let Err(e) = run() {
        eprintln!("talend-sim: {e:#}");
        std::process::exit(1);
    }
}

/// The value after `name` in `args`, or `default`.
pub fn arg(args: &[String], name: &str, default: &str) -> String {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .unwrap_or_else(|| default.to_string())
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let path = || -> Result<PathBuf> {
        Ok(PathBuf::from(
            args.get(1).context("missing folder argument")?,
        ))
    };
    match cmd {
        "fleet" => fleet::build(
            &path()?,
            &fleet::Options {
                engines: arg(&args, "--engines", "6").parse()?,
                tasks: arg(&args, "--tasks", "200").parse()?,
                port: arg(&args, "--port", "18400").parse()?,
                plugins: PathBuf::from(arg(
                    &args,
                    "--plugins",
                    "plugins/target/wasm32-wasip2/release",
                )),
                unpair_wait: arg(&args, "--unpair-wait", "2"),
                group_size: arg(&args, "--group-size", "2"),
            },
        ),
        "api" => api::serve(&path()?, arg(&args, "--port", "18400").parse()?),
        "start" => engine::start(&path()?),
        "stop" => engine::stop(&path()?),
        "run" => engine::run(&path()?),
        "generate" => datagen::generate(&path()?, arg(&args, "--tasks", "200").parse()?, 1),
        "status" => fleet::status(&path()?),
        "verify" => fleet::verify(&path()?, args.iter().any(|a| a == "--json")),
        "teardown" => fleet::teardown(&path()?),
        _ => {
            bail!("usage: talend-sim fleet|api|start|stop|run|generate|status|verify|teardown ...")
        }
    }
}

/// A file's text, trimmed; empty when missing.
pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Append a line to a log file.
pub fn append(path: &Path, line: &str) -> Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{line}")?;
    Ok(())
}

/// Write through a temporary file and a rename.
pub fn write_atomic(path: &Path, text: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// Whether process `pid` is alive (and not a zombie).
pub fn alive(pid: u32) -> bool {
    let stat = read(&PathBuf::from(format!("/proc/{pid}/stat")));
    !stat.is_empty() && !stat.contains(") Z ")
}

/// A small random generator (xorshift), seeded per call site; the simulator needs unique
/// ids and keys, not cryptographic randomness.
pub struct Rng(u64);

impl Rng {
    /// Seeded from the clock, the pid and `salt`.
    pub fn new(salt: u64) -> Rng {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        Rng::seeded(t ^ (std::process::id() as u64) << 32 ^ salt.wrapping_mul(0x9E37_79B9))
    }

    /// A reproducible sequence.
    pub fn seeded(seed: u64) -> Rng {
        Rng(seed | 1)
    }

    pub fn word(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// `n` random lowercase hex digits.
    pub fn hex(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from_digit((self.word() % 16) as u32, 16).unwrap())
            .collect()
    }

    /// A random UUID in its usual spelling.
    pub fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.hex(4),
            self.hex(12)
        )
    }
}

/// HTTP client calls with a short timeout; `Ok((status, body))` for any status.
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
