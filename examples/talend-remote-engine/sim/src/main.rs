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
//! - `fleet DIR --engines N --tasks T --port P --plugins DIR [--unpair-wait S] [--group-size G]
//!   [--services]` (with `--services` the engines are driven as system services through
//!   `DIR/bin/systemctl`)
//! - `systemctl DIR start|stop|is-active UNIT`: a stand-in for systemd's `systemctl` with the
//!   engines' units `talend-remote-engine@<engine>-<version>` ("Managing the Remote Engine
//!   service": `systemctl start|stop|status talend-remote-engine`)
//! - `api DIR --port P` (the management API server), `start ROOT`, `stop ROOT`, `run ROOT`
//!   (the engine process), `generate ROOT --tasks T` (a data tree)
//! - `status DIR`, `verify DIR [--json]`, `teardown DIR`

mod api;
mod datagen;
mod engine;
mod fleet;

use anyhow::{bail, Result};
use simkit::folder;

pub use simkit::{alive, append, arg, http, read, write_atomic};

fn main() {
    simkit::main("talend-sim", run);
}

fn run(args: &[String]) -> Result<()> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let path = || folder(args, 1);
    match cmd {
        "fleet" => fleet::build(
            &path()?,
            &fleet::Options {
                engines: arg(args, "--engines", "6").parse()?,
                tasks: arg(args, "--tasks", "200").parse()?,
                port: arg(args, "--port", "18400").parse()?,
                plugins: simkit::plugins_dir(args),
                unpair_wait: arg(args, "--unpair-wait", "2"),
                group_size: arg(args, "--group-size", "2"),
                services: args.iter().any(|a| a == "--services"),
            },
        ),
        "systemctl" => fleet::systemctl(&path()?, &args[2..]),
        "api" => api::serve(&path()?, arg(args, "--port", "18400").parse()?),
        "start" => engine::start(&path()?),
        "stop" => engine::stop(&path()?),
        "run" => engine::run(&path()?),
        "generate" => datagen::generate(&path()?, arg(args, "--tasks", "200").parse()?, 1),
        "status" => fleet::status(&path()?),
        "verify" => fleet::verify(&path()?, args.iter().any(|a| a == "--json")),
        "teardown" => fleet::teardown(&path()?),
        _ => {
            bail!("usage: talend-sim fleet|api|start|stop|run|generate|status|verify|teardown|systemctl ...")
        }
    }
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
