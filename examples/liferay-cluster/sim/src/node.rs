//! One simulated Liferay node: start (deploy processing, then the server), stop (graceful),
//! and the server itself.

use crate::archive;
use anyhow::{bail, Result};
use serde_json::{json, Value};
use simkit::{alive, append, read, wait_until, write_atomic};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The cluster's database folder, shared by the nodes.
fn db(node: &Path) -> PathBuf {
    node.parent()
        .and_then(Path::parent)
        .unwrap_or(node)
        .join("db/release.json")
}

fn release(node: &Path) -> Value {
    serde_json::from_str(&read(&db(node))).unwrap_or_else(|_| json!({}))
}

fn running(node: &Path) -> Option<u32> {
    let pid: u32 = read(&node.join("run/pid")).parse().ok()?;
    alive(pid).then_some(pid)
}

fn port(node: &Path) -> String {
    read(&node.join("port"))
}

/// Deploy what waits in `deploy/`: modules into `osgi/modules` (replacing older versions of
/// the same bundle, running its data upgrade in `Release_`), fix packs into `patching/`.
fn process_deploy_folder(node: &Path) -> Result<()> {
    let deploy = node.join("deploy");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&deploy)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in files {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if name.ends_with(".jar") {
            let manifest = archive::entry(&f, "META-INF/MANIFEST.MF")?;
            let bundle = archive::header(&manifest, "Bundle-SymbolicName").unwrap_or_default();
            let modules = node.join("osgi/modules");
            for old in std::fs::read_dir(&modules)?.filter_map(|e| e.ok()) {
                if old
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&format!("{bundle}-"))
                {
                    std::fs::remove_file(old.path())?;
                }
            }
            if let Some(schema) = archive::header(&manifest, "Liferay-Require-SchemaVersion") {
                let mut r = release(node);
                if r[&bundle] != json!(schema) {
                    append(
                        &node.join("sim.log"),
                        &format!("upgrade {bundle} schema to {schema}"),
                    )?;
                    r[&bundle] = json!(schema);
                    write_atomic(&db(node), serde_json::to_string_pretty(&r)?.as_bytes())?;
                }
            }
            let version = archive::header(&manifest, "Bundle-Version").unwrap_or_default();
            let installed = format!("{bundle}-{version}.jar");
            std::fs::rename(&f, modules.join(&installed))?;
            append(&node.join("sim.log"), &format!("deployed {installed}"))?;
        } else if name.ends_with(".zip") {
            let doc = archive::entry(&f, "fixpack_documentation.xml")?;
            let id = archive::element(&doc, "id").unwrap_or(name.clone());
            std::fs::write(node.join("patching").join(&id), doc)?;
            std::fs::remove_file(&f)?;
            append(&node.join("sim.log"), &format!("installed fix pack {id}"))?;
        }
    }
    Ok(())
}

/// `bin/start`: deploy, then run the server until it is ready.
pub fn start(node: &Path) -> Result<()> {
    let node = std::fs::canonicalize(node)?;
    if let Some(pid) = running(&node) {
        println!("already running (pid {pid})");
        return Ok(());
    }
    process_deploy_folder(&node)?;
    std::fs::create_dir_all(node.join("run"))?;
    let pid = simkit::spawn_detached(
        Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg(&node),
    )?;
    std::fs::write(node.join("run/pid"), pid.to_string())?;
    let url = format!("http://127.0.0.1:{}/health", port(&node));
    if !wait_until(Duration::from_secs(15), || {
        matches!(simkit::http("GET", &url, None, None), Ok((200, _)))
    }) {
        bail!("the node did not become healthy at {url}");
    }
    append(
        &node.join("sim.log"),
        &format!("start {}", read(&node.join("VERSION"))),
    )?;
    println!("started on port {}", port(&node));
    Ok(())
}

/// `bin/stop`: a graceful shutdown that lets requests in flight finish.
pub fn stop(node: &Path) -> Result<()> {
    let node = std::fs::canonicalize(node)?;
    let Some(pid) = running(&node) else {
        println!("not running");
        return Ok(());
    };
    let _ = simkit::http(
        "POST",
        &format!("http://127.0.0.1:{}/shutdown", port(&node)),
        None,
        None,
    );
    if !wait_until(Duration::from_secs(20), || !alive(pid)) {
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
    }
    let _ = std::fs::remove_file(node.join("run/pid"));
    append(&node.join("sim.log"), "stop")?;
    println!("stopped");
    Ok(())
}

/// What the node reports at `/modules`.
fn report(node: &Path) -> Value {
    let list = |dir: &str| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(node.join(dir))
            .map(|r| {
                r.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().to_string())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    json!({
        "node": node.file_name().unwrap_or_default().to_string_lossy(),
        "version": read(&node.join("VERSION")),
        "java": read(&node.join("java-version")),
        "modules": list("osgi/modules"),
        "fixpacks": list("patching"),
        "release": release(node),
        "properties": read(&node.join("portal-ext.properties")),
    })
}

/// The node's HTTP server: pages, `/health`, `/modules`, `/inflight`, `/shutdown`.
pub fn serve(node: &Path) -> Result<()> {
    let node = std::fs::canonicalize(node)?;
    let server = Arc::new(
        tiny_http::Server::http(("127.0.0.1", port(&node).parse::<u16>()?))
            .map_err(|e| anyhow::anyhow!("listening: {e}"))?,
    );
    let inflight = Arc::new(AtomicUsize::new(0));
    let closing = Arc::new(AtomicBool::new(false));
    let name = node
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let version = read(&node.join("VERSION"));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (server, inflight, closing) = (server.clone(), inflight.clone(), closing.clone());
            let (node, name, version) = (node.clone(), name.clone(), version.clone());
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let path = request.url().to_string();
                    let (status, body) = match path.as_str() {
                        "/health" if closing.load(Ordering::SeqCst) => {
                            (503, "shutting down".into())
                        }
                        "/health" => (200, format!("ok {version}")),
                        "/modules" => (200, report(&node).to_string()),
                        "/inflight" => (200, inflight.load(Ordering::SeqCst).to_string()),
                        "/shutdown" => {
                            closing.store(true, Ordering::SeqCst);
                            (200, "shutting down".into())
                        }
                        _ => {
                            inflight.fetch_add(1, Ordering::SeqCst);
                            // Rendering a page takes a while, so that requests overlap.
                            std::thread::sleep(Duration::from_millis(25));
                            inflight.fetch_sub(1, Ordering::SeqCst);
                            (200, format!("{name} {version}"))
                        }
                    };
                    let _ = request
                        .respond(tiny_http::Response::from_string(body).with_status_code(status));
                }
            })
        })
        .collect();
    // A graceful shutdown: stop taking connections once the requests in flight are done.
    while !closing.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_until(Duration::from_secs(15), || {
        inflight.load(Ordering::SeqCst) == 0
    });
    for _ in &workers {
        server.unblock();
    }
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}
