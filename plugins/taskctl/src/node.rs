//! One TASKCTL node as the steps see it: its programs, the processes the seed says it runs,
//! and the shared memory and message queues its listener holds.
//!
//! Seed = `taskctl-distributed-deploy.zh.txt`, the vendor's article on distributed
//! deployment, cited by line.

use crate::tree;
use cutover_sdk::params::get;
use cutover_sdk::unix::{self, Ipc, IpcObject};
use cutover_sdk::{cmd, fail, info, wait, Call, Result};
use std::path::{Path, PathBuf};

/// Seed L151: the processes of a scheduling server.
pub const SERVER_PROCS: &[&str] = &[
    "ctlcpg", "ctlsps", "ctldrr", "ctldar", "ctlstr", "ctldsy", "ctlemr", "ctlucd", "ctljmm",
];
/// Seed L155: the processes of an agent.
pub const AGENT_PROCS: &[&str] = &["ctlcpg", "ctlsps", "ctldrr", "ctldar", "ctlstr"];

/// A node of the platform, from the target's labels and the spec's parameters.
pub struct Node {
    /// The node's name on the platform (label `name`, else the target id).
    pub name: String,
    /// The node's installation directory (label `home`).
    pub home: PathBuf,
    /// `<home>/<bin>`: `ctlinit`, `ctlshut`, `ctlstart`, `ctlstop`.
    bin: PathBuf,
    server: bool,
    /// Text each of the node's processes has in its command line (`process-match`).
    process_match: Option<String>,
    /// The account owning the node's IPC objects (`ipc-owner`).
    ipc_owner: Option<String>,
    ps: String,
    ipcs: String,
    /// How long processes and IPC objects may take to come and go (`settle-timeout`).
    settle_ms: u64,
}

impl Node {
    pub fn of(c: &Call) -> Result<Node> {
        let t = c.target()?;
        let home = PathBuf::from(c.label("home")?);
        let opt = |k: &str| {
            Some(c.value_or(k, ""))
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(Node {
            name: get(&t.labels, "name").unwrap_or(&t.id).to_string(),
            bin: home.join(c.value_or("bin", "bin")),
            home,
            server: get(&t.labels, "type") == Some(tree::SERVER),
            process_match: opt("process-match"),
            ipc_owner: opt("ipc-owner"),
            ps: c.value_or("ps", "/usr/bin/ps").to_string(),
            ipcs: c.value_or("ipcs", "/usr/bin/ipcs").to_string(),
            settle_ms: c.get("settle-timeout", 60u64)? * 1000,
        })
    }

    /// The processes the seed lists for this node's type.
    pub fn expected(&self) -> &'static [&'static str] {
        if self.server {
            SERVER_PROCS
        } else {
            AGENT_PROCS
        }
    }

    /// Run the node's own `command` (seed L51 `ctlinit`, L63 `ctlshut`, L127-131 `ctlstart`
    /// and `ctlstop` "of the current node"; the seed shows no arguments); its output.
    pub fn ctl(&self, command: &str) -> Result<String> {
        let program = program(&self.bin, command);
        let out = cmd::run_ok(&program, &[], None)
            .map_err(|e| e.context(format!("node {}", self.name)))?;
        info!("node {}: {command}: {}", self.name, last_line(&out.stdout));
        Ok(out.stdout)
    }

    /// The expected processes running now, by name: every process of the host with one of
    /// those names and, with `process-match`, that text in its command line.
    fn running(&self) -> Result<Vec<&'static str>> {
        let all = unix::processes(&self.ps)?;
        Ok(self
            .expected()
            .iter()
            .copied()
            .filter(|want| {
                all.iter().any(|p| {
                    p.name == *want
                        && self
                            .process_match
                            .as_ref()
                            .is_none_or(|m| p.args.contains(m.as_str()))
                })
            })
            .collect())
    }

    /// Whether all expected processes run (`up`) or none does, now.
    pub fn processes_are(&self, up: bool) -> Result<bool> {
        let running = self.running()?.len();
        Ok(if up {
            running == self.expected().len()
        } else {
            running == 0
        })
    }

    /// Wait until all expected processes run (`up`) or none does, at most `settle-timeout`;
    /// the error names the processes, `after` the command that should have done it.
    pub fn await_processes(&self, up: bool, after: &str) -> Result<String> {
        let expected = self.expected();
        self.settle(|| {
            let running = self.running()?;
            Ok(if up {
                let missing: Vec<&str> = expected
                    .iter()
                    .copied()
                    .filter(|p| !running.contains(p))
                    .collect();
                (!missing.is_empty()).then(|| {
                    format!(
                        "processes not running after {after}: {} (a {} runs {}; seed L149-155)",
                        missing.join(" "),
                        if self.server { "server" } else { "agent" },
                        expected.join(" ")
                    )
                })
            } else {
                (!running.is_empty()).then(|| {
                    format!(
                        "processes still running after {after}: {}",
                        running.join(" ")
                    )
                })
            })
        })?;
        Ok(expected.join(" "))
    }

    /// Wait until the listener holds shared memory and message queues (`held`) or none, as
    /// `ipcs -m` and `ipcs -q` show them for `ipc-owner` (seed L53-61: ctlinit takes 25M of
    /// shared memory and creates message queues). Without `ipc-owner` nothing is checked.
    pub fn await_ipc(&self, held: bool, after: &str) -> Result<String> {
        let Some(owner) = &self.ipc_owner else {
            info!(
                "node {}: shared memory and message queues not checked (no `ipc-owner`)",
                self.name
            );
            return Ok("not checked".into());
        };
        let mut seen = String::new();
        self.settle(|| {
            let m = self.owned(Ipc::SharedMemory, owner)?;
            let q = self.owned(Ipc::MessageQueues, owner)?;
            seen = format!("{}; {}", describe(Ipc::SharedMemory, &m), describe(Ipc::MessageQueues, &q));
            Ok(if held {
                (m.is_empty() || q.is_empty()).then(|| {
                    format!("after {after}, ipcs shows for owner {owner}: {seen}; the listener should hold shared memory and message queues (seed L53-61)")
                })
            } else {
                (!m.is_empty() || !q.is_empty()).then(|| {
                    format!("shared memory or message queues not released after {after}: ipcs shows for owner {owner}: {seen}")
                })
            })
        })?;
        Ok(seen)
    }

    fn owned(&self, kind: Ipc, owner: &str) -> Result<Vec<IpcObject>> {
        Ok(unix::ipcs(&self.ipcs, kind)?
            .into_iter()
            .filter(|o| o.owned_by(owner))
            .collect())
    }

    /// Poll `problem` until it finds none or `settle-timeout` passes (then its last finding
    /// is the error, naming the node).
    pub fn settle(&self, mut problem: impl FnMut() -> Result<Option<String>>) -> Result<()> {
        let start = wait::now_ms();
        loop {
            let Some(p) = problem()? else {
                return Ok(());
            };
            if wait::now_ms() - start >= self.settle_ms {
                return Err(fail(format!(
                    "node {}: {p} (waited {} s, `settle-timeout`)",
                    self.name,
                    self.settle_ms / 1000
                )));
            }
            wait::sleep_ms(250);
        }
    }
}

/// `<bin>/<command>`.
pub fn program(bin: &Path, command: &str) -> String {
    bin.join(command).display().to_string()
}

fn describe(kind: Ipc, objects: &[IpcObject]) -> String {
    if objects.is_empty() {
        return format!("no {}", kind.noun());
    }
    let list: Vec<String> = objects.iter().map(|o| o.to_string()).collect();
    format!("{}: {}", kind.noun(), list.join(", "))
}

fn last_line(text: &str) -> &str {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("done")
        .trim()
}
