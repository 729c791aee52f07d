//! The example grid: N nodes (real Equinox or Felix frameworks, each with its own remote
//! console) with bundle 1.0.0 active, the grid state for `xscmd` (two map sets, a catalog
//! endpoint with credentials), both bundle versions, and a Cutover spec.

use crate::{bundle, framework, xscmd};
use anyhow::Result;
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
    pub framework: framework::Kind,
}

/// The catalog service endpoint and credentials of the example grid (a `-cep` value and the
/// `-user`/`-pwd` xscmd needs).
pub const CATALOG: (&str, &str, &str) = ("127.0.0.1:2809", "gridadmin", "s3cret-grid");

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
        framework::create(&home, &name, port, o.framework)?;
        servers.push(json!({ "name": name, "home": home }));
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
        framework::install(*port, o.framework, &copy)?;
    }
    let active: serde_json::Map<String, serde_json::Value> =
        SERVICES.iter().map(|s| (s.to_string(), json!(1))).collect();
    std::fs::write(
        dir.join("grid/state.json"),
        serde_json::to_string_pretty(&json!({
            "mapSets": [
                { "grid": "MyGrid", "mapSet": "MyMapSet", "services": SERVICES, "balancing": "active", "active": active.clone(), "updates": 0 },
                { "grid": "MyGrid", "mapSet": "SessionMapSet", "services": [SERVICES[1]], "balancing": "active", "active": { SERVICES[1]: 1 }, "updates": 0 },
            ],
            "services": SERVICES,
            "catalog": { "endpoint": CATALOG.0, "user": CATALOG.1, "password": CATALOG.2 },
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
    for (home, port) in &homes {
        let name = home.file_name().unwrap_or_default().to_string_lossy();
        targets.push_str(&format!(
            "\n[[targets]]\nid = \"{name}\"\nhome = \"{}\"\nconsole = \"127.0.0.1:{port}\"\n",
            home.display()
        ));
    }
    let spec = format!(
        "# Update the grid plugins of {n} OSGi container servers ({fw}) from 1.0.0 (ranking 1) to 1.1.0 (ranking 2).\n\
         [rollout]\nname = \"grid-plugins-1.1.0\"\n\n\
         [strategy]\nplugin = \"{strategy}\"\n[strategy.params]\ngroup-size = \"{group}\"\n\n\
         [adapter]\nplugin = \"{adapter}\"\n[adapter.params]\nbundles = \"{bundles}\"\nbundle = \"grid-plugins-1.1.0.jar\"\n\
         framework = \"{fw}\"\nxscmd = \"{xscmd}\"\ncatalog-endpoints = \"{cep}\"\nxscmd-user = \"{user}\"\npassword-secret = \"grid-password\"\n\n\
         [secrets]\ngrid-password = {{ file = \"{pwd_file}\" }}\n\n\
         [grants]\ndirs = [{{ path = \"{nodes}\", access = \"read-write\" }}, {{ path = \"{bundles}\", access = \"read\" }}]\n\
         exec = [\"{xscmd}\"]\ntcp = [\"127.0.0.1:*\"]\npass-env = [\"JAVA_HOME\"]\n{targets}",
        n = o.nodes,
        fw = o.framework.name(),
        strategy = plugins.join("grouped.wasm").display(),
        group = o.group_size,
        adapter = plugins.join("osgi_grid.wasm").display(),
        xscmd = dir.join("bin/xscmd").display(),
        cep = CATALOG.0,
        user = CATALOG.1,
        pwd_file = dir.join("grid-password").display(),
        nodes = dir.join("nodes").display(),
        bundles = dir.join("bundles").display(),
    );
    std::fs::write(dir.join("grid-password"), CATALOG.2)?;
    std::fs::write(dir.join("rollout.toml"), spec)?;
    println!(
        "{} OSGi frameworks ({}) run bundle {} 1.0.0 with ranking 1; grid MyGrid (map sets MyMapSet, SessionMapSet); spec: {}",
        o.nodes,
        o.framework.name(),
        bundle::NAME,
        dir.join("rollout.toml").display()
    );
    Ok(())
}

/// One line per server (its framework's own bundle listing), then the grid's state.
pub fn status(dir: &Path) -> Result<()> {
    for home in nodes(dir)? {
        let name = home.file_name().unwrap_or_default().to_string_lossy();
        let listing =
            framework::console_of(&home).and_then(|(port, kind)| framework::bundles(port, kind));
        match listing {
            Ok(rows) => {
                let ours: Vec<String> = rows
                    .into_iter()
                    .filter(|r| r.symbolic_name == bundle::NAME)
                    .map(|r| format!("[{}] {} {} {}", r.id, r.symbolic_name, r.version, r.state))
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
