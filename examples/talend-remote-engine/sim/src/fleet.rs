//! The fleet builder, its status and verification views, and teardown.

use crate::{api, datagen, engine, read, write_atomic};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The versions the simulated fleet moves between.
pub const OLD_VERSION: &str = "2.13.2";
pub const NEW_VERSION: &str = "2.13.9";
/// The placeholder a fresh install carries in `etc/preauthorized.key.cfg`.
pub const PLACEHOLDER_KEY: &str = "00000000-0000-0000-0000-000000000000";

/// What `fleet` builds.
pub struct Options {
    pub engines: usize,
    pub tasks: usize,
    pub port: u16,
    pub plugins: PathBuf,
    pub unpair_wait: String,
    pub group_size: String,
    /// Drive the engines as system services (`bin/systemctl` in the fleet folder).
    pub services: bool,
}

/// The unit of the install `root` of engine folder `engine`.
fn unit(engine: &Path, version: &str) -> String {
    format!(
        "talend-remote-engine@{}-{version}",
        engine.file_name().unwrap_or_default().to_string_lossy()
    )
}

/// `systemctl start|stop|is-active UNIT` for the fleet in `dir`: the engine installation the
/// unit names (exit status as systemctl: 0 done or active, 3 inactive, 5 no such unit).
pub fn systemctl(dir: &Path, args: &[String]) -> Result<()> {
    let (verb, name) = match args {
        [verb, name] => (verb.as_str(), name.as_str()),
        _ => bail!("usage: systemctl start|stop|is-active UNIT"),
    };
    let root = engines(dir)?.into_iter().find_map(|e| {
        [OLD_VERSION, NEW_VERSION]
            .into_iter()
            .find(|v| unit(&e, v) == name)
            .map(|v| e.join(format!("Talend-RE-{v}")))
    });
    crate::append(&dir.join("systemctl.log"), &format!("{verb} {name}"))?;
    let Some(root) = root else {
        eprintln!("Unit {name}.service not found.");
        std::process::exit(5);
    };
    match verb {
        "start" => engine::start(&root),
        "stop" => engine::stop(&root),
        "is-active" => {
            let active = engine::running(&root).is_some();
            println!("{}", if active { "active" } else { "inactive" });
            if !active {
                std::process::exit(3);
            }
            Ok(())
        }
        other => bail!("systemctl {other}: not simulated"),
    }
}

/// One engine installation of `version` with its scripts and configuration.
fn install(root: &Path, version: &str, pairing_url: &str, key: &str) -> Result<()> {
    for d in ["bin", "etc", "data/log", "lib"] {
        std::fs::create_dir_all(root.join(d))?;
    }
    std::fs::write(root.join("VERSION"), format!("{version}\n"))?;
    std::fs::write(
        root.join("lib/talend-remote-engine.jar"),
        format!("simulated {version}\n"),
    )?;
    simkit::control_scripts(
        root,
        &format!("Talend Remote Engine {version} (simulator)"),
        &["start", "stop"],
    )?;
    std::fs::write(
        root.join("etc/org.talend.ipaas.rt.pairing.client.cfg"),
        format!("# Pairing service of the Talend Cloud region\npairing.service.url={pairing_url}\npairing.client.heartbeat.seconds=30\n"),
    )?;
    std::fs::write(
        root.join("etc/preauthorized.key.cfg"),
        format!("remote.engine.pre.authorized.key={key}\nremote.engine.name=\nremote.engine.description=\n"),
    )?;
    Ok(())
}

/// Engine folders (`engines/re-*`), sorted.
pub fn engines(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("engines"))
        .with_context(|| format!("{} is not a simulated fleet", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    Ok(v)
}

fn old_root(engine: &Path) -> PathBuf {
    engine.join(format!("Talend-RE-{OLD_VERSION}"))
}

fn new_root(engine: &Path) -> PathBuf {
    engine.join(format!("Talend-RE-{NEW_VERSION}"))
}

/// Build the fleet, start the API and the old engines, write the spec.
pub fn build(dir: &Path, o: &Options) -> Result<()> {
    std::fs::create_dir_all(dir.join("api"))?;
    let dir = std::fs::canonicalize(dir)?;
    let plugins = std::fs::canonicalize(&o.plugins).with_context(|| {
        format!(
            "plugins folder {} (build the plugins first)",
            o.plugins.display()
        )
    })?;
    let api_dir = dir.join("api");
    let api_url = format!("http://127.0.0.1:{}", o.port);
    let pairing_url = format!("{api_url}/pairing-service");
    let mut rng = crate::Rng::new(o.port as u64);
    let token = format!("tmc-{}", rng.hex(40));
    std::fs::write(api_dir.join("token"), &token)?;
    let mut entries = serde_json::Map::new();
    let mut targets = String::new();
    for i in 1..=o.engines {
        let name = format!("re-{i:02}");
        let engine = dir.join("engines").join(&name);
        let (old, new) = (old_root(&engine), new_root(&engine));
        let id = rng.hex(24);
        let key = rng.uuid();
        install(&old, OLD_VERSION, &pairing_url, &key)?;
        install(
            &new,
            NEW_VERSION,
            "https://pair.<your_datacenter>.cloud.talend.com",
            PLACEHOLDER_KEY,
        )?;
        datagen::generate(&old, o.tasks, i as u64)?;
        entries.insert(
            id.clone(),
            json!({
                "name": name, "status": "NOT_PAIRED", "availability": "NOT_AVAILABLE",
                "key": key, "keys": [key], "pairedKey": null, "installDirectory": null,
                "version": null, "tasks": [], "unpairs": [], "pairings": [],
            }),
        );
        targets.push_str(&format!(
            "\n[[targets]]\nid = \"{name}\"\nengine-id = \"{id}\"\nold = \"{}\"\nnew = \"{}\"\n",
            old.display(),
            new.display()
        ));
        if o.services {
            targets.push_str(&format!(
                "old-service = \"{}\"\nnew-service = \"{}\"\n",
                unit(&engine, OLD_VERSION),
                unit(&engine, NEW_VERSION)
            ));
        }
    }
    let (service_param, service_grant) = if o.services {
        let systemctl = dir.join("bin/systemctl");
        std::fs::create_dir_all(dir.join("bin"))?;
        std::fs::write(
            &systemctl,
            format!(
                "#!/bin/sh\n# systemctl for the simulated engines' units\nexec \"{}\" systemctl \"{}\" \"$@\"\n",
                std::env::current_exe()?.display(),
                dir.display()
            ),
        )?;
        std::fs::set_permissions(&systemctl, std::fs::Permissions::from_mode(0o755))?;
        (
            format!("systemctl = \"{}\"\n", systemctl.display()),
            format!(", \"{}\"", systemctl.display()),
        )
    } else {
        (String::new(), String::new())
    };
    write_atomic(
        &api_dir.join("state.json"),
        serde_json::to_string_pretty(&json!({ "token": token, "engines": entries }))?.as_bytes(),
    )?;
    std::fs::write(api_dir.join("port"), o.port.to_string())?;
    let api = simkit::spawn_detached(
        Command::new(std::env::current_exe()?)
            .arg("api")
            .arg(&api_dir)
            .args(["--port", &o.port.to_string()]),
    )?;
    std::fs::write(api_dir.join("pid"), api.to_string())?;
    if !simkit::listening(o.port, Duration::from_secs(10)) {
        bail!("the API simulator did not listen on port {}", o.port);
    }
    for e in engines(&dir)? {
        engine::start(&old_root(&e))?;
    }
    // Every old engine is paired and runs its tasks before the fleet is handed over.
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        let state = api::load(&api_dir)?;
        let ready = state["engines"].as_object().unwrap().values().all(|e| {
            e["status"] == "PAIRED" && e["tasks"].as_array().is_some_and(|t| t.len() == o.tasks)
        });
        if ready {
            break;
        }
        if Instant::now() > until {
            bail!("the old engines did not pair within 20 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let spec = format!(
        "# Upgrade {n} simulated Talend Remote Engines from {OLD_VERSION} to {NEW_VERSION}.\n\
         [rollout]\nname = \"talend-re-{NEW_VERSION}\"\nconcurrency = 2\n\n\
         [strategy]\nplugin = \"{strategy}\"\n[strategy.params]\ngroup-size = \"{group}\"\non-failure = \"continue\"\n\n\
         [adapter]\nplugin = \"{adapter}\"\n[adapter.params]\napi = \"{api_url}\"\npairing-url = \"{pairing_url}\"\n\
         unpair-wait = \"{wait}\"\nfrom-version = \"{OLD_VERSION}\"\nto-version = \"{NEW_VERSION}\"\n{service_param}\n\
         [grants]\ndirs = [{{ path = \"{engines}\", access = \"read-write\" }}]\n\
         exec = [\"{engines}/*/*/bin/start\", \"{engines}/*/*/bin/stop\"{service_grant}]\nhttp = [\"127.0.0.1:{port}\"]\n\n\
         [secrets]\ntmc-token = {{ file = \"{token}\" }}\n{targets}",
        n = o.engines,
        strategy = plugins.join("grouped.wasm").display(),
        group = o.group_size,
        adapter = plugins.join("talend_remote_engine.wasm").display(),
        wait = o.unpair_wait,
        engines = dir.join("engines").display(),
        port = o.port,
        token = api_dir.join("token").display(),
    );
    std::fs::write(dir.join("rollout.toml"), spec)?;
    println!(
        "{} engines on {OLD_VERSION} ({} tasks each) paired with the management API on {api_url}; \
         new installs of {NEW_VERSION} beside them; spec: {}",
        o.engines,
        o.tasks,
        dir.join("rollout.toml").display()
    );
    Ok(())
}

/// One line per engine: what the management API says.
pub fn status(dir: &Path) -> Result<()> {
    let state = api::load(&dir.join("api"))?;
    let mut engines: Vec<_> = state["engines"].as_object().unwrap().iter().collect();
    engines.sort_by(|a, b| a.1["name"].as_str().cmp(&b.1["name"].as_str()));
    for (id, e) in engines {
        let tasks = e["tasks"].as_array().cloned().unwrap_or_default();
        let running = tasks.iter().filter(|t| t["status"] == "RUNNING").count();
        println!(
            "{}  engine {id}  {}  {}  version {}  tasks running {running}/{}  install {}",
            e["name"].as_str().unwrap_or(""),
            e["status"].as_str().unwrap_or(""),
            e["availability"].as_str().unwrap_or(""),
            e["version"].as_str().unwrap_or("-"),
            tasks.len(),
            e["installDirectory"].as_str().unwrap_or("-")
        );
    }
    Ok(())
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.filter_map(|e| e.ok()) {
        let p = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The old file's content with its path field moved to the new root (both spellings).
fn expected(text: &str, field: &str, old: &Path, new: &Path) -> String {
    let (o, n) = (old.display().to_string(), new.display().to_string());
    let win = |s: &str| s.replace('/', "\\\\");
    text.replace(
        &format!("\"{field}\":\"{o}/"),
        &format!("\"{field}\":\"{n}/"),
    )
    .replace(
        &format!("\"{field}\":\"{}\\\\", win(&o)),
        &format!("\"{field}\":\"{}\\\\", win(&n)),
    )
}

/// Check every engine like an operator would after the upgrade; a summary per engine.
pub fn verify(dir: &Path, as_json: bool) -> Result<()> {
    let dir = &std::fs::canonicalize(dir)?;
    let state = api::load(&dir.join("api"))?;
    let log = read(&dir.join("api/requests.log"));
    let mut rows = Vec::new();
    let mut all_ok = true;
    for (id, e) in state["engines"].as_object().unwrap() {
        let name = e["name"].as_str().unwrap_or_default();
        let engine = dir.join("engines").join(name);
        let (old, new) = (old_root(&engine), new_root(&engine));
        let on_new = e["status"] == "PAIRED" && e["installDirectory"] == json!(new);
        let on_old = e["status"] == "PAIRED" && e["installDirectory"] == json!(old);
        let key_ok = e["pairedKey"].is_string() && e["pairedKey"] == e["key"];
        let deletes: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.starts_with(&format!(
                    "DELETE /processing/runtimes/remote-engines/{id}/pairing"
                ))
            })
            .collect();
        let keep_flags = !deletes.is_empty()
            && deletes.iter().all(|l| {
                l.contains("keepOsgiDeployments=true")
                    && l.contains("keepMicroserviceDeployments=true")
            });
        let tasks = e["tasks"].as_array().cloned().unwrap_or_default();
        let running = tasks.iter().filter(|t| t["status"] == "RUNNING").count();
        let logs = tasks.iter().filter(|t| t["logsAvailable"] == true).count();
        let mut old_files = Vec::new();
        for sub in ["data/dsrunner", "data/cls"] {
            files(&old.join(sub), &mut old_files);
        }
        let (mut rewritten, mut identical, mut wrong) = (0, 0, Vec::new());
        for f in &old_files {
            let twin = new.join(f.strip_prefix(&old)?);
            let name = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string();
            let field = if name == ".metadata" {
                Some("artifactFile")
            } else if name.ends_with("-state.dat") {
                Some("currentFilePath")
            } else {
                None
            };
            let (a, b) = (std::fs::read(f)?, std::fs::read(&twin).unwrap_or_default());
            let same_mode = std::fs::metadata(&twin)
                .map(|m| {
                    m.permissions().mode() == std::fs::metadata(f).unwrap().permissions().mode()
                })
                .unwrap_or(false);
            let ok = match field {
                Some(field) => {
                    let want = expected(&String::from_utf8_lossy(&a), field, &old, &new);
                    want.as_bytes() == b.as_slice() && want.as_bytes() != a.as_slice()
                }
                None => a == b,
            };
            match (ok && same_mode, field) {
                (true, Some(_)) => rewritten += 1,
                (true, None) => identical += 1,
                (false, _) => wrong.push(twin.display().to_string()),
            }
        }
        let ok = on_new && key_ok && keep_flags && running == tasks.len() && wrong.is_empty();
        all_ok &= ok;
        rows.push(json!({
            "engine": name, "id": id, "ok": ok, "paired_on_new": on_new, "paired_on_old": on_old, "key_matches": key_ok,
            "unpair_requests": deletes.len(), "keep_flags": keep_flags,
            "tasks": tasks.len(), "running": running, "logs_available": logs,
            "paths_rewritten": rewritten, "files_identical": identical, "files_wrong": wrong,
        }));
    }
    rows.sort_by(|a, b| a["engine"].as_str().cmp(&b["engine"].as_str()));
    if as_json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for r in &rows {
            if r["paired_on_old"] == true {
                println!(
                    "old  {}: back on the old engine, paired with the key the API issued: {}, tasks running {}/{}",
                    r["engine"].as_str().unwrap_or(""),
                    yes(&r["key_matches"]),
                    r["running"],
                    r["tasks"]
                );
                continue;
            }
            println!(
                "{} {}: paired on the new install: {}, with the key the API issued: {}, unpaired with both keep flags: {}, tasks running {}/{} (logs {}), paths moved to the new root {}, other files identical {}, wrong {}",
                if r["ok"] == true { "ok  " } else { "FAIL" },
                r["engine"].as_str().unwrap_or(""),
                yes(&r["paired_on_new"]),
                yes(&r["key_matches"]),
                yes(&r["keep_flags"]),
                r["running"], r["tasks"], r["logs_available"],
                r["paths_rewritten"], r["files_identical"],
                r["files_wrong"].as_array().map_or(0, |w| w.len()),
            );
        }
    }
    if !all_ok && !as_json {
        bail!("some engines are not on the new version (see above)");
    }
    Ok(())
}

fn yes(v: &Value) -> &'static str {
    if v == &json!(true) {
        "yes"
    } else {
        "no"
    }
}

/// Stop every engine and the API.
pub fn teardown(dir: &Path) -> Result<()> {
    for e in engines(dir).unwrap_or_default() {
        for root in [old_root(&e), new_root(&e)] {
            if engine::running(&root).is_some() {
                let _ = engine::stop(&root);
            }
        }
    }
    let port = read(&dir.join("api/port"));
    if !port.is_empty() {
        let _ = crate::http(
            "POST",
            &format!("http://127.0.0.1:{port}/sim/shutdown"),
            None,
            None,
        );
        let _ = std::fs::remove_file(dir.join("api/pid"));
    }
    Ok(())
}
