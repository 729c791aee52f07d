//! One simulated Liferay node: start (deploy folder, data upgrades, then the server), stop
//! (graceful), and what both need to know about its modules and its database.

use crate::{archive, db};
use anyhow::{bail, Result};
use simkit::{alive, append, read, wait_until};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// A module installed in `osgi/modules`, from its manifest.
pub struct Module {
    pub bundle: String,
    pub version: String,
    /// `Liferay-Require-SchemaVersion`.
    pub schema: Option<String>,
}

/// The installed modules.
pub fn modules(node: &Path) -> Result<Vec<Module>> {
    let mut out = Vec::new();
    let mut jars: Vec<PathBuf> = std::fs::read_dir(node.join("osgi/modules"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jar"))
        .collect();
    jars.sort();
    for jar in jars {
        let manifest = archive::entry(&jar, "META-INF/MANIFEST.MF")?;
        out.push(Module {
            bundle: archive::header(&manifest, "Bundle-SymbolicName").unwrap_or_default(),
            version: archive::header(&manifest, "Bundle-Version").unwrap_or_default(),
            schema: archive::header(&manifest, "Liferay-Require-SchemaVersion"),
        });
    }
    Ok(out)
}

/// The node's database: the folder of the simulated databases and the name in `database`
/// (what `jdbc.default.url` names on a real node).
pub fn database(node: &Path) -> (PathBuf, String) {
    let fleet = node.parent().and_then(Path::parent).unwrap_or(node);
    (fleet.join("db"), read(&node.join("database")))
}

fn version(v: &str) -> Vec<u64> {
    v.split(['.', '-'])
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// Whether `Release_` holding `held` satisfies a module that requires `required`: the same
/// major version, not lower. "Meaningful Schema Versioning": a major version is incompatible
/// with the previous code; minor and micro versions are compatible (SURFACES.md #9). The guide
/// calls a schema outside the module's required range non-backward-compatible (seed, note 1).
pub fn satisfied(required: &str, held: &str) -> bool {
    let (r, h) = (version(required), version(held));
    r.first() == h.first() && h >= r
}

/// Why the module's services are unavailable on this node, if they are: its required schema
/// and the one in `Release_` no longer match (seed, note 1).
pub fn unavailable(node: &Path, modules: &[Module]) -> Option<String> {
    let (dbdir, name) = database(node);
    let rows = db::load(&dbdir, &name).ok()?;
    modules.iter().find_map(|m| {
        let required = m.schema.as_deref()?;
        let held = db::schema(&rows, &m.bundle)?;
        (!satisfied(required, &held)).then(|| {
            format!(
                "{} {} requires schema {required} but Release_ holds {held}: its services are unavailable",
                m.bundle, m.version
            )
        })
    })
}

fn running(node: &Path) -> Option<u32> {
    let pid: u32 = read(&node.join("run/pid")).parse().ok()?;
    alive(pid).then_some(pid)
}

pub fn port(node: &Path) -> String {
    read(&node.join("port"))
}

/// Deploy the module jars waiting in `deploy/` into `osgi/modules`, replacing older versions
/// of the same bundle ("Deploying" through the auto-deploy folder).
fn process_deploy_folder(node: &Path) -> Result<()> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(node.join("deploy"))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "jar"))
        .collect();
    files.sort();
    let modules = node.join("osgi/modules");
    for f in files {
        let manifest = archive::entry(&f, "META-INF/MANIFEST.MF")?;
        let bundle = archive::header(&manifest, "Bundle-SymbolicName").unwrap_or_default();
        for old in std::fs::read_dir(&modules)?.filter_map(|e| e.ok()) {
            if old
                .file_name()
                .to_string_lossy()
                .starts_with(&format!("{bundle}-"))
            {
                std::fs::remove_file(old.path())?;
            }
        }
        let version = archive::header(&manifest, "Bundle-Version").unwrap_or_default();
        let installed = format!("{bundle}-{version}.jar");
        std::fs::rename(&f, modules.join(&installed))?;
        append(&node.join("sim.log"), &format!("deployed {installed}"))?;
    }
    Ok(())
}

/// The data upgrades of modules whose required schema is above what `Release_` holds: the
/// guide says installing such a module updates `Release_` to its schema version and runs the
/// data upgrade (seed, note 1).
fn upgrade_data(node: &Path) -> Result<()> {
    let (dbdir, name) = database(node);
    let rows = db::load(&dbdir, &name)?;
    for m in modules(node)? {
        let Some(required) = m.schema else { continue };
        let held = db::schema(&rows, &m.bundle);
        if held
            .as_deref()
            .is_none_or(|h| version(&required) > version(h))
        {
            db::upgrade(&dbdir, &name, &m.bundle, &required)?;
            append(
                &node.join("sim.log"),
                &format!("upgrade {} schema to {required} in {name}", m.bundle),
            )?;
        }
    }
    Ok(())
}

/// `bin/start`: deploy, upgrade, then run the server until it answers. A `fail-start` file in
/// the node makes the next start fail (once).
pub fn start(node: &Path) -> Result<()> {
    let node = std::fs::canonicalize(node)?;
    if let Some(pid) = running(&node) {
        println!("already running (pid {pid})");
        return Ok(());
    }
    if node.join("fail-start").exists() {
        std::fs::remove_file(node.join("fail-start"))?;
        append(&node.join("sim.log"), "start failed (injected)")?;
        bail!("the node failed to start (injected by fail-start)");
    }
    process_deploy_folder(&node)?;
    upgrade_data(&node)?;
    std::fs::create_dir_all(node.join("run"))?;
    let pid = simkit::spawn_detached(
        Command::new(std::env::current_exe()?)
            .arg("serve")
            .arg(&node),
    )?;
    std::fs::write(node.join("run/pid"), pid.to_string())?;
    let url = format!("http://127.0.0.1:{}/c/portal/robots", port(&node));
    if !wait_until(Duration::from_secs(15), || {
        matches!(simkit::http("GET", &url, None, None), Ok((200, _)))
    }) {
        bail!("the node did not answer at {url}");
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_schema_satisfies_within_its_major_version() {
        assert!(satisfied("1.0.0", "1.0.0"));
        assert!(satisfied("1.0.0", "1.1.0"));
        assert!(!satisfied("1.1.0", "1.0.0"));
        assert!(!satisfied("1.0.0", "2.0.0"));
        assert!(!satisfied("2.0.0", "1.0.0"));
    }
}
