//! A simulated Remote Engine installation: `bin/start` and `bin/stop` call `start` / `stop`
//! here, and `run` is the engine process itself. `<RemoteEngine_installation>/bin/stop` is the
//! upgrade procedure's (the seed, step 3); `bin/start` is the documented "sh start" ("Starting
//! Talend Remote Engine", and the sudo variant); both print a line the adapter only keeps.
//!
//! The engine process pairs when it starts, with the key in `etc/preauthorized.key.cfg` and
//! the URL in `etc/org.talend.ipaas.rt.pairing.client.cfg`: "Your new Remote Engine will be
//! paired when started" ("Creating and pairing a Remote Engine programmatically"); to pair
//! again, the engine is stopped, the key file edited and the engine started ("Pairing Remote
//! Engines with the configuration file"). A key written while it runs is not read.
//! It loads its tasks from `data/dsrunner/exec/osgi/*/.metadata` and, as the seed's own
//! example shows, `data/dsrunner/osgi/*/.metadata`: a task runs only when its `artifactFile`
//! is an existing file inside this installation, and its logs are available only when the
//! `currentFilePath` of its `data/cls/*-state.dat` is. While it runs it polls its pairing
//! status; when the engine is unpaired it writes a line to `data/log/tesb.log` (its wording
//! is the simulator's: Talend documents none, so the adapter confirms through the API unless
//! told a line) and goes on running unpaired. A stop request makes it report its tasks
//! stopped and exit.
//!
//! Failure injection: a file `fail-start` in the installation holding its version; a file
//! `fail-task` holding task ids (one per line): those tasks fail on that installation.

use crate::{alive, append, read};
use anyhow::{bail, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The line an engine writes to its log once it has been unpaired (the simulator's own
/// wording: not documented).
pub const UNPAIRED: &str = "Remote Engine unpaired from Talend Management Console";

fn pid_file(root: &Path) -> PathBuf {
    root.join("run/engine.pid")
}

/// The running engine's pid, if any.
pub fn running(root: &Path) -> Option<u32> {
    let pid: u32 = read(&pid_file(root)).parse().ok()?;
    alive(pid).then_some(pid)
}

/// The simulator's own record of starts and stops, one folder up (outside the install).
fn sim_log(root: &Path, line: &str) -> Result<()> {
    let name = root.file_name().unwrap_or_default().to_string_lossy();
    append(
        &root.parent().unwrap_or(root).join("sim.log"),
        &format!("{line} {name}"),
    )
}

fn engine_log(root: &Path, line: &str) -> Result<()> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    append(
        &root.join("data/log/tesb.log"),
        &format!("{now} | INFO  | {line}"),
    )
}

/// `bin/start`: launch the engine process.
pub fn start(root: &Path) -> Result<()> {
    let root = std::fs::canonicalize(root)?;
    let version = read(&root.join("VERSION"));
    let delay: u64 = read(&root.join("../../start-delay-ms"))
        .parse()
        .unwrap_or(0);
    std::thread::sleep(Duration::from_millis(delay));
    if let Some(pid) = running(&root) {
        println!("Talend Remote Engine is already running (pid {pid})");
        return Ok(());
    }
    if read(&root.join("fail-start")) == version {
        sim_log(&root, "start-failed")?;
        engine_log(&root, "ERROR: Karaf failed to start (simulated failure)")?;
        bail!("Talend Remote Engine {version} failed to start: see data/log/tesb.log");
    }
    std::fs::create_dir_all(root.join("run"))?;
    let _ = std::fs::remove_file(root.join("run/stop"));
    let _ = std::fs::remove_file(root.join("run/ready"));
    let pid = simkit::spawn_detached(Command::new(std::env::current_exe()?).arg("run").arg(&root))?;
    std::fs::write(pid_file(&root), pid.to_string())?;
    let until = Instant::now() + Duration::from_secs(10);
    while !root.join("run/ready").exists() {
        if Instant::now() > until {
            bail!("the engine did not come up within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    sim_log(&root, "start")?;
    println!("Talend Remote Engine {version} started (pid {pid})");
    Ok(())
}

/// `bin/stop`: ask the engine process to stop and wait for it.
pub fn stop(root: &Path) -> Result<()> {
    let root = std::fs::canonicalize(root)?;
    let Some(pid) = running(&root) else {
        sim_log(&root, "stop-not-running")?;
        println!("Talend Remote Engine is not running");
        return Ok(());
    };
    std::fs::write(root.join("run/stop"), "")?;
    let until = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        if Instant::now() > until {
            Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()?;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(pid_file(&root));
    sim_log(&root, "stop")?;
    println!("Talend Remote Engine stopped");
    Ok(())
}

/// One task as the engine sees it.
fn load_tasks(root: &Path) -> Vec<Value> {
    let mut tasks = Vec::new();
    let mut dirs: Vec<PathBuf> = ["data/dsrunner/exec/osgi", "data/dsrunner/osgi"]
        .iter()
        .flat_map(|d| std::fs::read_dir(root.join(d)).into_iter().flatten())
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    dirs.sort();
    let inside = |p: &str| {
        let p = p.replace('\\', "/");
        Path::new(&p).starts_with(root) && Path::new(&p).is_file()
    };
    for dir in dirs {
        let Ok(meta) = std::fs::read_to_string(dir.join(".metadata")) else {
            continue;
        };
        let Ok(meta) = serde_json::from_str::<Value>(&meta) else {
            continue;
        };
        let artifact = meta["artifactFile"].as_str().unwrap_or_default();
        let task = meta["taskId"].as_str().unwrap_or_default();
        let exec = meta["executionId"].as_str().unwrap_or_default();
        let state = root.join(format!("data/cls/{task}-{exec}-state.dat"));
        let logs = std::fs::read_to_string(&state)
            .ok()
            .and_then(|s| serde_json::from_str::<Value>(&s).ok())
            .and_then(|v| v["currentFilePath"].as_str().map(inside))
            .unwrap_or(false);
        let failing = read(&root.join("fail-task"));
        let (status, reason) = if failing.lines().any(|l| l.trim() == task) {
            ("FAILED", json!("simulated failure"))
        } else if inside(artifact) {
            ("RUNNING", Value::Null)
        } else {
            ("FAILED", json!(format!("artifact not found: {artifact}")))
        };
        tasks.push(json!({
            "id": task,
            "executionId": exec,
            "name": meta["name"],
            "type": meta["type"],
            "status": status,
            "logsAvailable": logs,
            "reason": reason,
        }));
    }
    tasks
}

fn cfg(root: &Path, file: &str, key: &str) -> String {
    read(&root.join("etc").join(file))
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default()
}

/// The engine process.
pub fn run(root: &Path) -> Result<()> {
    let root = std::fs::canonicalize(root)?;
    let version = read(&root.join("VERSION"));
    engine_log(
        &root,
        &format!(
            "Talend Remote Engine {version} starting in {}",
            root.display()
        ),
    )?;
    let tasks = load_tasks(&root);
    let url = cfg(
        &root,
        "org.talend.ipaas.rt.pairing.client.cfg",
        "pairing.service.url",
    );
    let mut engine: Option<String> = None;
    // Read once, at start.
    let key = cfg(
        &root,
        "preauthorized.key.cfg",
        "remote.engine.pre.authorized.key",
    );
    let mut tried = false;
    let mut first = true;
    loop {
        if root.join("run/stop").exists() {
            if let Some(id) = &engine {
                let stopped: Vec<Value> = tasks
                    .iter()
                    .map(|t| {
                        let mut t = t.clone();
                        t["status"] = json!("STOPPED");
                        t
                    })
                    .collect();
                let _ = crate::http(
                    "POST",
                    &format!("{url}/engines/{id}/tasks"),
                    None,
                    Some(json!({ "installDirectory": root, "availability": "NOT_AVAILABLE", "tasks": stopped }).to_string()),
                );
            }
            engine_log(&root, "Talend Remote Engine stopped; tasks stopped")?;
            let _ = std::fs::remove_file(root.join("run/stop"));
            let _ = std::fs::remove_file(pid_file(&root));
            return Ok(());
        }
        match &engine {
            None => {
                if !tried {
                    tried = true;
                    let body = json!({ "key": key, "installDirectory": root, "version": version, "tasks": tasks });
                    match crate::http("POST", &format!("{url}/pair"), None, Some(body.to_string())) {
                        Ok((200, text)) => {
                            let v: Value = serde_json::from_str(&text)?;
                            let id = v["engineId"].as_str().unwrap_or_default().to_string();
                            let running = tasks.iter().filter(|t| t["status"] == "RUNNING").count();
                            engine_log(&root, &format!("Paired with Talend Management Console as remote engine {id}"))?;
                            engine_log(&root, &format!("{running} of {} tasks running", tasks.len()))?;
                            for t in tasks.iter().filter(|t| t["status"] != "RUNNING") {
                                engine_log(&root, &format!("ERROR: task {} failed: {}", t["id"], t["reason"]))?;
                            }
                            engine = Some(id);
                        }
                        Ok((status, text)) => engine_log(
                            &root,
                            &format!("ERROR: pairing failed ({status} {text}); stop the engine, set a valid key in etc/preauthorized.key.cfg and start it"),
                        )?,
                        Err(e) => engine_log(&root, &format!("ERROR: pairing service unreachable at {url}: {e:#}"))?,
                    }
                }
            }
            Some(id) => {
                if let Ok((200, text)) =
                    crate::http("GET", &format!("{url}/engines/{id}"), None, None)
                {
                    let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if v["status"] != "PAIRED" || v["installDirectory"] != json!(root) {
                        engine_log(
                            &root,
                            &format!(
                                "{UNPAIRED}: engine {id}; deployments kept until the engine stops"
                            ),
                        )?;
                        // It runs on unpaired: pairing again takes a restart with a key.
                        engine = None;
                    }
                }
            }
        }
        if first {
            std::fs::write(root.join("run/ready"), "")?;
            first = false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
