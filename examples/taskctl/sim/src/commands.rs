//! The TASKCTL commands of one node, and its long-running processes.

use crate::{alive, now_ms, read};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Processes of a scheduling server node.
pub const SERVER_PROCS: &[&str] = &[
    "ctlcpg", "ctlsps", "ctldrr", "ctldar", "ctlstr", "ctldsy", "ctlemr", "ctlucd", "ctljmm",
];
/// Processes of an agent node (master or slave).
pub const AGENT_PROCS: &[&str] = &["ctlcpg", "ctlsps", "ctldrr", "ctldar", "ctlstr"];
/// The commands a node's bin/ offers.
pub const COMMANDS: &[&str] = &[
    "ctlinit", "ctlshut", "ctlstart", "ctlstop", "listcirn", "listjt", "listapp", "listpara",
];
/// `listcirn` status of a started node.
pub const STARTED: &str = "5-启动状态";
/// `listcirn` status of a stopped node.
pub const STOPPED: &str = "1-停止状态";

/// The platform folder holding `topology` and `events.log`.
fn platform(root: &Path) -> PathBuf {
    root.parent()
        .and_then(Path::parent)
        .unwrap_or(root)
        .to_path_buf()
}

fn name(root: &Path) -> String {
    root.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string()
}

/// One node of the topology: number, name, type, port, parent.
pub struct Node {
    pub no: String,
    pub name: String,
    pub kind: String,
    pub port: String,
    pub parent: String,
}

/// The platform's nodes, in definition order.
pub fn topology(platform: &Path) -> Vec<Node> {
    read(&platform.join("topology"))
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 4).then(|| Node {
                no: f[0].into(),
                name: f[1].into(),
                kind: f[2].into(),
                port: f[3].into(),
                parent: f.get(4).copied().unwrap_or("-").into(),
            })
        })
        .collect()
}

fn kind(root: &Path) -> String {
    topology(&platform(root))
        .into_iter()
        .find(|n| n.name == name(root))
        .map(|n| n.kind)
        .unwrap_or_default()
}

fn version(root: &Path) -> String {
    read(&root.join("current/VERSION"))
}

/// Record a node going down or up, for checking constraints afterwards.
fn event(root: &Path, what: &str) -> Result<()> {
    simkit::append(
        &platform(root).join("events.log"),
        &format!("{} {} {what} {}", now_ms(), name(root), version(root)),
    )
}

fn pids(path: &Path) -> Vec<u32> {
    read(path)
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn listener_up(root: &Path) -> bool {
    pids(&root.join("run/listener.pid"))
        .iter()
        .any(|p| alive(*p))
}

fn node_up(root: &Path) -> bool {
    read(&root.join("run/status")) == "5" && pids(&root.join("run/procs")).iter().any(|p| alive(*p))
}

/// Start `bin/<name> --daemon` detached; its pid.
fn spawn(root: &Path, name: &str) -> Result<u32> {
    simkit::spawn_detached(Command::new(root.join("bin").join(name)).arg("--daemon"))
}

/// Remove the pid file, so its processes exit, and wait for them.
fn retire(path: &Path) {
    let before = pids(path);
    let _ = std::fs::remove_file(path);
    let until = Instant::now() + Duration::from_secs(10);
    while before.iter().any(|p| alive(*p)) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Run command `cmd` of the node at `root`.
pub fn run(cmd: &str, root: &Path, args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("--daemon") {
        return daemon(cmd, root);
    }
    std::fs::create_dir_all(root.join("run"))?;
    match cmd {
        "ctlinit" => {
            if listener_up(root) {
                println!("ctlinit: listener of {} already started", name(root));
                return Ok(());
            }
            let pid = spawn(root, "ctlinit")?;
            std::fs::write(root.join("run/listener.pid"), pid.to_string())?;
            // The platform configuration is loaded into shared memory when present.
            let mut shm = String::new();
            for f in ["tasktypes", "projects", "params"] {
                shm.push_str(&format!("[{f}]\n{}\n", read(&root.join("config").join(f))));
            }
            std::fs::write(root.join("run/shm"), shm)?;
            let port = topology(&platform(root))
                .into_iter()
                .find(|n| n.name == name(root))
                .map(|n| n.port)
                .unwrap_or_default();
            println!("ctlinit: listening on port {port}; shared memory 25M allocated, platform configuration loaded; message queues created");
        }
        "ctlshut" => {
            if node_up(root) {
                bail!("node {} is started: stop it with ctlstop first", name(root));
            }
            retire(&root.join("run/listener.pid"));
            let _ = std::fs::remove_file(root.join("run/shm"));
            println!("ctlshut: listener of {} stopped", name(root));
        }
        "ctlstart" => {
            if node_up(root) {
                println!("ctlstart: node {} already started", name(root));
                return Ok(());
            }
            if !listener_up(root) {
                bail!(
                    "node {}: the listener is not started (run ctlinit)",
                    name(root)
                );
            }
            let v = version(root);
            if v.is_empty() {
                bail!("node {}: no installation on this host", name(root));
            }
            let delay: u64 = read(&platform(root).join("start-delay-ms"))
                .parse()
                .unwrap_or(0);
            std::thread::sleep(Duration::from_millis(delay));
            if read(&root.join("fail-start")) == v {
                bail!(
                    "node {} failed to start {v} (simulated failure)",
                    name(root)
                );
            }
            let procs = if kind(root) == "cntServer" {
                SERVER_PROCS
            } else {
                AGENT_PROCS
            };
            let mut started = Vec::new();
            for p in procs {
                started.push(spawn(root, p)?.to_string());
            }
            std::fs::write(root.join("run/procs"), started.join(" "))?;
            std::fs::write(root.join("run/status"), "5")?;
            event(root, "up")?;
            println!("ctlstart: node {} started ({v})", name(root));
        }
        "ctlstop" => {
            if !node_up(root) {
                println!("ctlstop: node {} is not started", name(root));
                return Ok(());
            }
            event(root, "down")?;
            std::fs::write(root.join("run/status"), "1")?;
            retire(&root.join("run/procs"));
            println!("ctlstop: node {} stopped", name(root));
        }
        "listcirn" => {
            println!(
                "{:<4} {:<10} {:<10} {:<10} {:<6} {:<10} STATUS",
                "NO", "NAME", "TYPE", "IP", "PORT", "PARENT"
            );
            for n in topology(&platform(root)) {
                let node = root.parent().unwrap().join(&n.name);
                let status = if node_up(&node) { STARTED } else { STOPPED };
                println!(
                    "{:<4} {:<10} {:<10} {:<10} {:<6} {:<10} {status}",
                    n.no, n.name, n.kind, "127.0.0.1", n.port, n.parent
                );
            }
        }
        "listjt" | "listapp" | "listpara" => {
            if !listener_up(root) {
                bail!(
                    "the listener of {} is not started: no platform configuration in shared memory",
                    name(root)
                );
            }
            let section = match cmd {
                "listjt" => "tasktypes",
                "listapp" => "projects",
                _ => "params",
            };
            let shm = read(&root.join("run/shm"));
            let body = shm
                .split(&format!("[{section}]\n"))
                .nth(1)
                .map(|s| s.split("\n[").next().unwrap_or(""))
                .unwrap_or("");
            println!("{body}");
        }
        other => bail!("unknown command {other}"),
    }
    Ok(())
}

/// A long-running process: lives while its pid is listed in its pid file.
fn daemon(cmd: &str, root: &Path) -> Result<()> {
    let file = if cmd == "ctlinit" {
        "run/listener.pid"
    } else {
        "run/procs"
    };
    let me = std::process::id();
    // Give the starter time to write the pid file.
    std::thread::sleep(Duration::from_millis(200));
    while pids(&root.join(file)).contains(&me) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
