//! taskctl-sim: a **simulator** of a TASKCTL 8.0 platform in distributed mode, every node on
//! this machine. It is one program called by many names: each node's `bin/` holds symbolic
//! links named after the TASKCTL commands (`ctlinit`, `ctlshut`, `ctlstart`, `ctlstop`,
//! `listcirn`, `listjt`, `listapp`, `listpara`) and after the role processes (`ctlcpg`,
//! `ctlsps`, ...), so those run as real long-running processes with those names.
//!
//! ```text
//! fleet/
//!   topology          one line per node: number, name, type, port, parent
//!   events.log        every moment a node went down or came up (ms, node, down|up, version)
//!   packages/8.1.0/   the new version to install
//!   nodes/<name>/
//!     bin/            the commands (symbolic links to this program)
//!     versions/8.0.0/ installed versions (VERSION); current -> versions/8.0.0
//!     config/         platform configuration: tasktypes, projects, params (survives upgrades)
//!     run/            listener.pid, procs (role process pids), shm (loaded configuration), status
//!     fail-start      a version that fails to start (failure injection)
//!   rollout.toml
//! ```
//!
//! Management commands: `taskctl-sim fleet DIR --plugins DIR [--masters 2] [--slaves 2]
//! [--group-size 3]`, `taskctl-sim teardown DIR`.

mod commands;
mod fleet;

use anyhow::{bail, Context, Result};
use std::path::Path;

pub use simkit::{alive, now_ms, read};

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let name = Path::new(&argv[0])
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    if let Err(e) = dispatch(&name, &argv) {
        eprintln!("{name}: {e:#}");
        std::process::exit(1);
    }
}

fn dispatch(name: &str, argv: &[String]) -> Result<()> {
    if name == "taskctl-sim" {
        let dir = || simkit::folder(argv, 2);
        return match argv.get(1).map(String::as_str) {
            Some("fleet") => fleet::build(&dir()?, &fleet::Options::from_args(argv)?),
            Some("teardown") => fleet::teardown(&dir()?),
            _ => bail!("usage: taskctl-sim fleet|teardown DIR ..."),
        };
    }
    // Called through a node's bin/<command>: the node is two folders up.
    let root = Path::new(&argv[0])
        .parent()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .context("run a command through a node's bin/ folder")?;
    let root = std::fs::canonicalize(root)?;
    commands::run(name, &root, &argv[1..])
}
