//! The programs of one node (`ctlinit`, `ctlshut`, `ctlstart`, `ctlstop`) and its
//! long-running processes.

use crate::{alive, now_ms, read};
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Seed L151: the processes of a scheduling server node.
pub const SERVER_PROCS: &[&str] = &[
    "ctlcpg", "ctlsps", "ctldrr", "ctldar", "ctlstr", "ctldsy", "ctlemr", "ctlucd", "ctljmm",
];
/// Seed L155: the processes of an agent node (master or slave).
pub const AGENT_PROCS: &[&str] = &["ctlcpg", "ctlsps", "ctldrr", "ctldar", "ctlstr"];
/// The programs of a node: seed L51 (`ctlinit`), L63 (`ctlshut`), L127-131 (`ctlstart`,
/// `ctlstop` of the current node), L115-117 (the `ctladmin` client).
pub const PROGRAMS: &[&str] = &["ctladmin", "ctlinit", "ctlshut", "ctlstart", "ctlstop"];
/// Seed L56: ctlinit asks the system for 25M of shared memory.
pub const SHM_BYTES: u64 = 25 << 20;

/// The platform folder holding `topology` and `events.log`.
pub fn platform(root: &Path) -> PathBuf {
    root.parent()
        .and_then(Path::parent)
        .unwrap_or(root)
        .to_path_buf()
}

pub fn name(root: &Path) -> String {
    root.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string()
}

/// One node as defined on the platform (seed L75-85: type, name, IP, port, parent), with the
/// number `listcirn` shows (L119).
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

fn me(root: &Path) -> Option<Node> {
    topology(&platform(root))
        .into_iter()
        .find(|n| n.name == name(root))
}

/// The release the node's programs are (the simulator's own marker in `lib/`).
fn version(root: &Path) -> String {
    read(&root.join("lib/VERSION"))
}

/// The account the node runs as, as the simulated `ipcs` shows it: `tc_` and its name
/// without `agent-` (short enough for ipcs's 10-character column).
pub fn account(name: &str) -> String {
    format!("tc_{}", name.replace("agent-", ""))
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

pub fn listener_up(root: &Path) -> bool {
    pids(&root.join("run/listener.pid"))
        .iter()
        .any(|p| alive(*p))
}

pub fn node_up(root: &Path) -> bool {
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

/// Seed L53-57: ctlinit starts the listener, takes 25M of shared memory (loading the
/// platform configuration into it when there is one) and creates message queues. The
/// simulator keeps them in `run/ipc` as `m|q key id owner perms bytes`, which its `ipcs`
/// lists; the number of queues is not documented (it makes two).
fn ctlinit(root: &Path) -> Result<()> {
    if listener_up(root) {
        println!("ctlinit: listener of {} already started", name(root));
        return Ok(());
    }
    let node = me(root);
    let no: u32 = node.as_ref().and_then(|n| n.no.parse().ok()).unwrap_or(0);
    let pid = spawn(root, "ctlinit")?;
    std::fs::write(root.join("run/listener.pid"), pid.to_string())?;
    let mut shm = String::new();
    for f in ["tasktypes", "projects", "params"] {
        shm.push_str(&format!("[{f}]\n{}\n", read(&root.join("config").join(f))));
    }
    std::fs::write(root.join("run/shm"), shm)?;
    let owner = account(&name(root));
    let ipc = format!(
        "m 0x5443{no:04x} {} {owner} 600 {SHM_BYTES}\n\
         q 0x5443{:04x} {} {owner} 600 0\nq 0x5443{:04x} {} {owner} 600 0\n",
        no * 32768 + 1,
        0x100 + no,
        no * 2,
        0x200 + no,
        no * 2 + 1
    );
    std::fs::write(root.join("run/ipc"), ipc)?;
    let port = node.map(|n| n.port).unwrap_or_default();
    println!("ctlinit: listening on port {port}; 25M of shared memory, platform configuration loaded; message queues created");
    Ok(())
}

/// Seed L63: ctlshut stops the listener. The simulator releases its shared memory and
/// queues with it, except with `keep-shm` (the segment stays, as if not released).
fn ctlshut(root: &Path) -> Result<()> {
    retire(&root.join("run/listener.pid"));
    let _ = std::fs::remove_file(root.join("run/shm"));
    if root.join("keep-shm").exists() {
        let kept: Vec<String> = read(&root.join("run/ipc"))
            .lines()
            .filter(|l| l.starts_with("m "))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(root.join("run/ipc"), kept.concat())?;
    } else {
        let _ = std::fs::remove_file(root.join("run/ipc"));
    }
    println!("ctlshut: listener of {} stopped", name(root));
    Ok(())
}

/// Seed L127-129: ctlstart starts the current node. L113: starting presupposes an
/// initialised node; L123: it fails where no node is installed. The processes are those of
/// L149-155.
fn ctlstart(root: &Path) -> Result<()> {
    if node_up(root) {
        println!("ctlstart: node {} already started", name(root));
        return Ok(());
    }
    if !listener_up(root) {
        bail!("node {}: not initialised (run ctlinit)", name(root));
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
    let left_out = read(&root.join("fail-proc"));
    let left_out = left_out.strip_prefix(&format!("{v} ")).unwrap_or_default();
    let server = me(root).is_some_and(|n| n.kind == "cntServer");
    let procs = if server { SERVER_PROCS } else { AGENT_PROCS };
    let mut started = Vec::new();
    for p in procs.iter().filter(|p| **p != left_out) {
        // Listed as soon as it runs: a process not listed exits.
        started.push(spawn(root, p)?.to_string());
        simkit::write_atomic(&root.join("run/procs"), started.join(" ").as_bytes())?;
    }
    std::fs::write(root.join("run/status"), "5")?;
    event(root, "up")?;
    println!("ctlstart: node {} started", name(root));
    Ok(())
}

/// Seed L131: ctlstop stops the current node.
fn ctlstop(root: &Path) -> Result<()> {
    if !node_up(root) {
        println!("ctlstop: node {} is not started", name(root));
        return Ok(());
    }
    event(root, "down")?;
    std::fs::write(root.join("run/status"), "0")?;
    retire(&root.join("run/procs"));
    println!("ctlstop: node {} stopped", name(root));
    Ok(())
}

/// Run program `cmd` of the node at `root`.
pub fn run(cmd: &str, root: &Path, args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("--daemon") {
        return daemon(cmd, root);
    }
    std::fs::create_dir_all(root.join("run"))?;
    match cmd {
        "ctlinit" => ctlinit(root),
        "ctlshut" => ctlshut(root),
        "ctlstart" => ctlstart(root),
        "ctlstop" => ctlstop(root),
        other => bail!("unknown command {other}"),
    }
}

/// A long-running process: lives while its pid is listed in its pid file.
fn daemon(cmd: &str, root: &Path) -> Result<()> {
    let file = if cmd == "ctlinit" {
        "run/listener.pid"
    } else {
        "run/procs"
    };
    let me = std::process::id();
    // The starter lists it right after starting it.
    let until = Instant::now() + Duration::from_secs(2);
    while !pids(&root.join(file)).contains(&me) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    while pids(&root.join(file)).contains(&me) {
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
