//! taskctl-sim: a **simulator** of a TASKCTL 8.0 platform in distributed mode, every node on
//! this machine. It imitates only what the vendor's article on distributed deployment
//! documents (the "seed", `taskctl-distributed-deploy.zh.txt`, cited by line in each
//! command) and says where it fills a gap the seed leaves.
//!
//! It is one program called by many names: each node's `bin/` holds symbolic links named
//! after the node programs (`ctlinit`, `ctlshut`, `ctlstart`, `ctlstop`), the `ctladmin`
//! client and the processes of the node's type (`ctlcpg`, `ctlsps`, ...), so those run as
//! real long-running processes with those names. The fleet's `sbin/ipcs` stands in for
//! util-linux's `ipcs`, which would not see the simulated shared memory and message queues.
//!
//! ```text
//! fleet/
//!   topology          one line per node: number, name, type, port, parent
//!   events.log        every moment a node went down or came up (ms, node, down|up, version)
//!   ctladmin.login    the lines ctladmin reads as a login (the seed does not say how one logs in)
//!   sbin/ipcs         the ipcs stand-in
//!   packages/8.1.0/   the new release: bin/, lib/
//!   nodes/<name>/     a node's home (the seed documents no layout; this one is the simulator's)
//!     bin/            the programs (links to this program)
//!     lib/            libctlcore.so and VERSION (the release the node runs)
//!     config/         platform configuration: tasktypes, projects, params (survives upgrades)
//!     run/            listener.pid, procs, status, shm (loaded configuration), ipc
//!     fail-start      a version that fails to start            } failure injection
//!     fail-proc       `<version> <process>`: not started        }
//!     keep-shm        ctlshut leaves the shared memory behind   }
//!   rollout.toml
//! ```
//!
//! Management commands: `taskctl-sim fleet DIR --plugins DIR [--masters 2] [--slaves 2]
//! [--group-size 3]`, `taskctl-sim teardown DIR`.

mod admin;
mod commands;
mod fleet;
mod ipcs;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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

/// The folder two levels above the program as it was called (`<home>/bin/ctlinit` gives the
/// node's home, `<fleet>/sbin/ipcs` the fleet).
fn two_up(argv0: &str) -> Result<PathBuf> {
    let dir = Path::new(argv0)
        .parent()
        .and_then(Path::parent)
        .filter(|p| !p.as_os_str().is_empty())
        .context("run a command through a node's bin/ folder")?;
    Ok(std::fs::canonicalize(dir)?)
}

fn dispatch(name: &str, argv: &[String]) -> Result<()> {
    match name {
        "taskctl-sim" => {
            let dir = || simkit::folder(argv, 2);
            match argv.get(1).map(String::as_str) {
                Some("fleet") => fleet::build(&dir()?, &fleet::Options::from_args(argv)?),
                Some("teardown") => fleet::teardown(&dir()?),
                _ => bail!("usage: taskctl-sim fleet|teardown DIR ..."),
            }
        }
        "ipcs" => ipcs::run(&two_up(&argv[0])?, &argv[1..]),
        "ctladmin" => admin::run(&two_up(&argv[0])?, &argv[1..]),
        _ => commands::run(name, &two_up(&argv[0])?, &argv[1..]),
    }
}
