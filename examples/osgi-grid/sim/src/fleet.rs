//! The example grid: N nodes (real Felix frameworks) with bundle 1.0.0 active, the grid
//! state for `xscmd`, both bundle versions, and a Cutover spec.

use crate::{bundle, framework, xscmd};
use anyhow::{bail, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The grid plugin services of the example.
pub const SERVICES: [&str; 2] = ["myLoaderServiceFactory", "mySerializerServiceFactory"];

/// Options of `fleet`.
pub struct Options {
    pub nodes: usize,
    pub port: u16,
    pub plugins: PathBuf,
    pub group_size: String,
}

/// The nodes' homes, in order.
pub fn nodes(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir.join("nodes"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("node.json").exists())
        .collect();
    out.sort();
    Ok(out)
}

fn services(ranking: &str) -> Vec<(String, String)> {
    SERVICES
        .iter()
        .map(|s| (s.to_string(), ranking.to_string()))
        .collect()
}

/// Install and start `jar` in the framework on `port`; its bundle id.
pub fn install(port: u16, jar: &Path) -> Result<u64> {
    let answer = framework::send(port, &format!("install file:{}", jar.display()))?;
    let Some(id) = answer
        .lines()
        .find_map(|l| l.trim().strip_prefix("Bundle ID: "))
        .and_then(|id| id.trim().parse().ok())
    else {
        bail!("install {} answered: {answer}", jar.display());
    };
    let answer = framework::send(port, &format!("start {id}"))?;
    if framework::is_error(&answer) {
        bail!("start {id} answered: {answer}");
    }
    Ok(id)
}

/// `fleet DIR ...`: build and start the example grid.
pub fn build(dir: &Path, o: &Options) -> Result<()> {
    std::fs::create_dir_all(dir.join("bundles"))?;
    std::fs::create_dir_all(dir.join("grid"))?;
    let dir = std::fs::canonicalize(dir)?;
    let plugins = std::fs::canonicalize(&o.plugins).unwrap_or(o.plugins.clone());
    let old = dir.join("bundles/grid-plugins-1.0.0.jar");
    bundle::write(&old, bundle::NAME, "1.0.0", &services("1"))?;
    bundle::write(
        &dir.join("bundles/grid-plugins-1.1.0.jar"),
        bundle::NAME,
        "1.1.0",
        &services("2"),
    )?;
    let mut servers = Vec::new();
    let mut homes = Vec::new();
    for i in 1..=o.nodes {
        let name = format!("server{i}");
        let home = dir.join("nodes").join(&name);
        let port = o.port + i as u16;
        framework::create(&home, &name, port)?;
        servers.push(json!({ "name": name, "port": port, "home": home }));
        homes.push((home, port));
    }
    // The frameworks start side by side: a JVM takes a while.
    let started: Vec<Result<()>> = std::thread::scope(|s| {
        let handles: Vec<_> = homes
            .iter()
            .map(|(home, _)| s.spawn(move || framework::start(home)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for r in started {
        r?;
    }
    for (home, port) in &homes {
        let copy = home.join("bundles/grid-plugins-1.0.0.jar");
        std::fs::copy(&old, &copy)?;
        install(*port, &copy)?;
    }
    let active: serde_json::Map<String, serde_json::Value> =
        SERVICES.iter().map(|s| (s.to_string(), json!(1))).collect();
    std::fs::write(
        dir.join("grid/state.json"),
        serde_json::to_string_pretty(&json!({
            "mapSets": [{ "grid": "MyGrid", "mapSet": "MyMapSet", "balancing": "active", "active": active, "updates": 0 }],
            "services": SERVICES,
            "servers": servers,
        }))?,
    )?;
    let me = std::env::current_exe()?;
    simkit::write_exec(
        &dir.join("bin/xscmd"),
        &format!(
            "#!/bin/sh\n# eXtreme Scale's xscmd (simulator) for the grid in ../grid\nexec '{}' xscmd '{}' \"$@\"\n",
            me.display(),
            dir.join("grid").display()
        ),
    )?;
    let mut targets = String::new();
    for (home, _) in &homes {
        let name = home.file_name().unwrap_or_default().to_string_lossy();
        targets.push_str(&format!(
            "\n[[targets]]\nid = \"{name}\"\nhome = \"{}\"\n",
            home.display()
        ));
    }
    let spec = format!(
        "# Update the grid plugins of {n} OSGi container servers from 1.0.0 (ranking 1) to 1.1.0 (ranking 2).\n\
         [rollout]\nname = \"grid-plugins-1.1.0\"\n\n\
         [strategy]\nplugin = \"{strategy}\"\n[strategy.params]\ngroup-size = \"{group}\"\n\n\
         [adapter]\nplugin = \"{adapter}\"\n[adapter.params]\nbundles = \"{bundles}\"\nbundle = \"grid-plugins-1.1.0.jar\"\nxscmd = \"{xscmd}\"\nmap-sets = \"MyGrid/MyMapSet\"\n\n\
         [grants]\ndirs = [{{ path = \"{nodes}\", access = \"read-write\" }}, {{ path = \"{bundles}\", access = \"read\" }}]\n\
         exec = [\"{nodes}/*/bin/console\", \"{xscmd}\"]\n{targets}",
        n = o.nodes,
        strategy = plugins.join("grouped.wasm").display(),
        group = o.group_size,
        adapter = plugins.join("osgi_grid.wasm").display(),
        xscmd = dir.join("bin/xscmd").display(),
        nodes = dir.join("nodes").display(),
        bundles = dir.join("bundles").display(),
    );
    std::fs::write(dir.join("rollout.toml"), spec)?;
    println!(
        "{} OSGi frameworks (Apache Felix) run bundle {} 1.0.0 with ranking 1; grid MyGrid/MyMapSet; spec: {}",
        o.nodes,
        bundle::NAME,
        dir.join("rollout.toml").display()
    );
    Ok(())
}

/// One line per server (its framework's own bundle listing), then the grid's state.
pub fn status(dir: &Path) -> Result<()> {
    for home in nodes(dir)? {
        let port = framework::port(&home)?;
        let name = home.file_name().unwrap_or_default().to_string_lossy();
        match framework::send(port, "lb -s") {
            Ok(answer) => {
                let ours: Vec<String> = framework::rows(&answer)
                    .into_iter()
                    .filter(|r| r.what.starts_with(bundle::NAME))
                    .map(|r| format!("[{}] {} {}", r.id, r.what, r.state))
                    .collect();
                println!("{name}: {}", ours.join("; "));
            }
            Err(e) => println!("{name}: {e:#}"),
        }
    }
    let state = xscmd::load(&dir.join("grid"))?;
    for m in state["mapSets"].as_array().cloned().unwrap_or_default() {
        println!(
            "{}/{}: balancing {}, active rankings {}, updates {}",
            m["grid"].as_str().unwrap_or_default(),
            m["mapSet"].as_str().unwrap_or_default(),
            m["balancing"].as_str().unwrap_or_default(),
            m["active"],
            m["updates"]
        );
    }
    Ok(())
}

/// Stop every node's framework.
pub fn teardown(dir: &Path) -> Result<()> {
    for home in nodes(dir).unwrap_or_default() {
        let _ = framework::stop(&home);
    }
    Ok(())
}
