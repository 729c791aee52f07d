//! node-sim: a simulator of service nodes deployed Capistrano-style, for the `release-dir`
//! adapter. Each node is a folder:
//!
//! ```text
//! node-03/
//!   bin/start bin/stop      shell scripts calling `node-sim start|stop <node>`
//!   releases/<version>/     release folders (VERSION names the version)
//!   current -> releases/... the active release
//!   port                    where its health server listens (127.0.0.1)
//!   pid                     the running server's pid
//!   sim.log                 every start and stop, as the simulator saw it
//!   fail-start, fail-health a version that refuses to start / reports unhealthy
//!   fail-work               a version whose `GET /work` answers 500 (its health stays ok)
//! ```
//!
//! Each node serves `GET /health`, `GET /work` (the service itself) and `GET /metrics`, the
//! request and error counters in Prometheus's text exposition format
//! (https://prometheus.io/docs/instrumenting/exposition_formats/), for analysis gates.
//!
//! Commands: `fleet DIR --nodes N --base-port P --plugins DIR [--strategy grouped] [--group-size 4]`,
//! `start NODE`, `stop NODE`, `serve NODE`, `status DIR`, `teardown DIR`.

use anyhow::{bail, Context, Result};
use simkit::{append, arg, folder, listening, read, spawn_detached, write_exec};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    simkit::main("node-sim", run);
}

fn run(args: &[String]) -> Result<()> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let path = || folder(args, 1);
    match cmd {
        "fleet" => fleet(
            &path()?,
            arg(args, "--nodes", "12").parse()?,
            arg(args, "--base-port", "18100").parse()?,
            &simkit::plugins_dir(args),
            &arg(args, "--strategy", "grouped"),
            &arg(args, "--group-size", "4"),
        ),
        "start" => start(&path()?),
        "stop" => stop(&path()?),
        "serve" => serve(&path()?),
        "status" => status(&path()?),
        "teardown" => teardown(&path()?),
        _ => bail!("usage: node-sim fleet|start|stop|serve|status|teardown ..."),
    }
}

/// The node's own record of starts and stops.
fn log(node: &Path, line: &str) -> Result<()> {
    append(&node.join("sim.log"), line)
}

fn current_version(node: &Path) -> String {
    read(&node.join("current").join("VERSION"))
}

fn running_pid(node: &Path) -> Option<u32> {
    let pid: u32 = read(&node.join("pid")).parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Start the node's server for the release `current` points at.
fn start(node: &Path) -> Result<()> {
    let version = current_version(node);
    let delay: u64 = read(&node.join("../start-delay-ms")).parse().unwrap_or(0);
    std::thread::sleep(Duration::from_millis(delay));
    if let Some(pid) = running_pid(node) {
        log(
            node,
            &format!("start {version} refused: already running as {pid}"),
        )?;
        bail!("already running (pid {pid})");
    }
    if !version.is_empty() && read(&node.join("fail-start")) == version {
        log(node, &format!("start {version} failed"))?;
        bail!("version {version} fails to start (simulated)");
    }
    let pid = spawn_detached(
        Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg(node),
    )?;
    std::fs::write(node.join("pid"), pid.to_string())?;
    let port = read(&node.join("port"));
    if !listening(port.parse()?, Duration::from_secs(5)) {
        bail!("server did not listen on {port}");
    }
    log(node, &format!("start {version}"))?;
    println!("started {version} on port {port}");
    Ok(())
}

/// Stop the node's server.
fn stop(node: &Path) -> Result<()> {
    let version = current_version(node);
    match running_pid(node) {
        Some(pid) => {
            Command::new("kill").arg(pid.to_string()).status()?;
            let until = Instant::now() + Duration::from_secs(5);
            while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < until {
                // Reap if it is our child; otherwise wait for it to go.
                std::thread::sleep(Duration::from_millis(10));
                if read(&PathBuf::from(format!("/proc/{pid}/stat"))).contains(") Z ") {
                    break;
                }
            }
            let _ = std::fs::remove_file(node.join("pid"));
            log(node, &format!("stop {version}"))?;
        }
        None => log(node, &format!("stop {version} (was not running)"))?,
    }
    Ok(())
}

/// The node's server: `GET /health` with the version it started with, `GET /work`, and
/// `GET /metrics` (the counters of `/work` since the start).
fn serve(node: &Path) -> Result<()> {
    let version = current_version(node);
    let port = read(&node.join("port"));
    let listener = TcpListener::bind(format!("127.0.0.1:{port}"))?;
    let (mut requests, mut errors) = (0u64, 0u64);
    for stream in listener.incoming() {
        let Ok(mut s) = stream else { continue };
        let mut first = String::new();
        let mut reader = BufReader::new(s.try_clone()?);
        let _ = reader.read_line(&mut first);
        loop {
            let mut l = String::new();
            if reader.read_line(&mut l).unwrap_or(0) == 0 || l == "\r\n" || l == "\n" {
                break;
            }
        }
        let unhealthy = read(&node.join("fail-health")) == version;
        let (status, body) = if first.starts_with("GET /work") {
            requests += 1;
            if read(&node.join("fail-work")) == version {
                errors += 1;
                (
                    "500 Internal Server Error",
                    format!("version {version} failed"),
                )
            } else {
                ("200 OK", format!("version {version} worked"))
            }
        } else if first.starts_with("GET /metrics") {
            (
                "200 OK",
                format!(
                    "# HELP node_requests_total Requests to /work.\n# TYPE node_requests_total counter\nnode_requests_total{{version=\"{version}\"}} {requests}\n# HELP node_errors_total Requests to /work that failed.\n# TYPE node_errors_total counter\nnode_errors_total{{version=\"{version}\"}} {errors}\n"
                ),
            )
        } else if !first.starts_with("GET /health") {
            ("404 Not Found", "no such page".to_string())
        } else if unhealthy {
            (
                "503 Service Unavailable",
                format!("version {version} unhealthy"),
            )
        } else {
            ("200 OK", format!("version {version} ok"))
        };
        let _ = write!(
            s,
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
    }
    Ok(())
}

fn nodes(dir: &Path) -> Result<Vec<PathBuf>> {
    let dir = if dir.join("nodes").is_dir() {
        dir.join("nodes")
    } else {
        dir.to_path_buf()
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.join("port").exists())
        .collect();
    v.sort();
    Ok(v)
}

/// Print each node's running and active versions, and how often it was started/stopped.
fn status(dir: &Path) -> Result<()> {
    for n in nodes(dir)? {
        let log = read(&n.join("sim.log"));
        let starts = log
            .lines()
            .filter(|l| l.starts_with("start ") && !l.contains("fail") && !l.contains("refused"))
            .count();
        let stops = log.lines().filter(|l| l.starts_with("stop ")).count();
        let port = read(&n.join("port"));
        let health = health(&port).unwrap_or_else(|| "down".into());
        println!(
            "{}  current={}  health: {}  starts={starts} stops={stops}",
            n.file_name().unwrap().to_string_lossy(),
            current_version(&n),
            health
        );
    }
    Ok(())
}

fn health(port: &str) -> Option<String> {
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET /health HTTP/1.1\r\nhost: x\r\n\r\n").ok()?;
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut s, &mut text);
    text.split("\r\n\r\n").nth(1).map(|b| b.to_string())
}

/// Stop every node.
fn teardown(dir: &Path) -> Result<()> {
    for n in nodes(dir)? {
        if let Some(pid) = running_pid(&n) {
            let _ = Command::new("kill").arg(pid.to_string()).status();
            let _ = std::fs::remove_file(n.join("pid"));
        }
    }
    Ok(())
}

/// Build a fleet of `n` running nodes on version 1.0.0, an artifact for 2.0.0 and a spec.
fn fleet(
    dir: &Path,
    n: usize,
    base_port: u16,
    plugins: &Path,
    strategy: &str,
    group: &str,
) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let dir = std::fs::canonicalize(dir)?;
    let plugins = std::fs::canonicalize(plugins).with_context(|| {
        format!(
            "plugins folder {} (build the plugins first)",
            plugins.display()
        )
    })?;
    let me = std::env::current_exe()?;
    let artifact = dir.join("artifact-2.0.0");
    std::fs::create_dir_all(artifact.join("lib"))?;
    std::fs::write(artifact.join("VERSION"), "2.0.0\n")?;
    std::fs::write(artifact.join("lib/app.jar"), vec![7u8; 64 << 10])?;
    std::fs::write(artifact.join("config.properties"), "threads=8\n")?;
    std::fs::create_dir_all(artifact.join("bin"))?;
    write_exec(&artifact.join("bin/launch"), "#!/bin/sh\necho launched\n")?;
    let mut spec = format!(
        "# A release-dir rollout of {n} simulated nodes from 1.0.0 to 2.0.0.\n\
         [rollout]\nname = \"release-dir-demo\"\nconcurrency = 4\n\n\
         [strategy]\nplugin = \"{}\"\n[strategy.params]\ngroup-size = \"{group}\"\non-failure = \"continue\"\n\n\
         [adapter]\nplugin = \"{}\"\n[adapter.params]\nversion = \"2.0.0\"\nartifact = \"{}\"\nhealth-timeout = 5\n\n\
         [grants]\ndirs = [\n  {{ path = \"{}\", access = \"read\" }},\n  {{ path = \"{}/nodes\", access = \"read-write\" }},\n]\n\
         exec = [\"{}/nodes/*/bin/start\", \"{}/nodes/*/bin/stop\"]\nhttp = [\"127.0.0.1:*\"]\n",
        plugins.join(format!("{strategy}.wasm")).display(),
        plugins.join("release_dir.wasm").display(),
        artifact.display(),
        artifact.display(),
        dir.display(),
        dir.display(),
        dir.display(),
    );
    for i in 1..=n {
        let node = dir.join("nodes").join(format!("node-{i:02}"));
        std::fs::create_dir_all(node.join("bin"))?;
        std::fs::create_dir_all(node.join("releases/1.0.0"))?;
        std::fs::write(node.join("releases/1.0.0/VERSION"), "1.0.0\n")?;
        let _ = std::fs::remove_file(node.join("current"));
        std::os::unix::fs::symlink("releases/1.0.0", node.join("current"))?;
        let port = base_port + i as u16;
        std::fs::write(node.join("port"), port.to_string())?;
        for action in ["start", "stop"] {
            write_exec(
                &node.join("bin").join(action),
                &format!(
                    "#!/bin/sh\nexec '{}' {action} '{}'\n",
                    me.display(),
                    node.display()
                ),
            )?;
        }
        spec.push_str(&format!(
            "\n[[targets]]\nid = \"node-{i:02}\"\nroot = \"{}\"\nhealth-url = \"http://127.0.0.1:{port}/health\"\n",
            node.display()
        ));
        start(&node)?;
    }
    std::fs::write(dir.join("rollout.toml"), spec)?;
    println!(
        "{n} nodes running 1.0.0 under {}; spec: {}",
        dir.join("nodes").display(),
        dir.join("rollout.toml").display()
    );
    Ok(())
}
