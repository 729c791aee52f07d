//! `liferay-cluster`: update a Liferay DXP cluster by rolling restart or blue-green, as
//! Liferay's cluster-update guide allows for the kind of change.
//!
//! Preflight classifies the change from the spec's `declare` list and by inspecting what is
//! deployed: the module jar's manifest (`Liferay-Require-SchemaVersion` against the cluster's
//! `Release_` table) and Java packages (cluster communication), the fix pack's metadata
//! (revertible or not), the Java version, the properties. A rolling restart is refused for
//! every row the matrix marks "no", citing the row; blue-green is allowed for all.
//!
//! Rolling restart, per node: `drain` (out of nginx, wait for its requests in flight),
//! `stop`, `deploy`, `start`, `health`, `undrain`. Blue-green: the green nodes are updated
//! (they take no traffic), then the fleet step `switch` points nginx at green; its undo points
//! it back at blue in one reload.

mod lb;
mod matrix;

use cutover_sdk::adapter_types::*;
use cutover_sdk::describe::{dir, exec, fleet_step, parameter, target_step, with_caps};
use cutover_sdk::params::{get, int, label};
use cutover_sdk::step::{fail, out};
use cutover_sdk::{cmd, files, preflight, progress, wait, web};
use std::path::{Path, PathBuf};

struct Liferay;

fn mode(params: &[Pair]) -> &str {
    get(params, "mode").unwrap_or("rolling")
}

/// An artifact parameter as a path (relative ones are under `artifacts`).
fn artifact(params: &[Pair], key: &str) -> Option<PathBuf> {
    let v = get(params, key).filter(|v| !v.is_empty())?;
    let p = PathBuf::from(v);
    Some(if p.is_absolute() {
        p
    } else {
        PathBuf::from(get(params, "artifacts").unwrap_or_default()).join(p)
    })
}

fn read_bytes(path: &Path) -> Result<Vec<u8>, StepError> {
    std::fs::read(path).map_err(|e| files::io_error("reading", path, e))
}

/// The `/modules` report of a node.
fn report(url: &str) -> Result<serde_json::Value, String> {
    match web::get(&format!("{url}/modules"), Some(5000))? {
        (200, body) => serde_json::from_str(&body).map_err(|e| format!("{url}/modules: {e}")),
        (s, body) => Err(format!("{url}/modules answered {s}: {body}")),
    }
}

/// Every change the rollout makes, classified against the matrix.
fn classify(targets: &[Target], params: &[Pair]) -> Result<Vec<matrix::Change>, String> {
    let mut changes = matrix::declared(get(params, "declare").unwrap_or(""))?;
    let url = targets
        .iter()
        .find_map(|t| get(&t.labels, "url"))
        .ok_or("no target has a `url` label")?;
    let cluster = report(url)?;
    if let Some(path) = artifact(params, "module") {
        let bytes = read_bytes(&path).map_err(|e| e.message)?;
        let m = matrix::module(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        changes.extend(matrix::classify_module(&m, &cluster["release"]));
    }
    if let Some(path) = artifact(params, "fixpack") {
        let bytes = read_bytes(&path).map_err(|e| e.message)?;
        changes.push(
            matrix::classify_fixpack(&bytes).map_err(|e| format!("{}: {e}", path.display()))?,
        );
    }
    if let Some(java) = get(params, "java-version") {
        changes.extend(matrix::classify_java(
            cluster["java"].as_str().unwrap_or_default(),
            java,
        ));
    }
    if artifact(params, "properties").is_some() {
        changes.push(matrix::Change {
            row: matrix::row("portal-properties").unwrap(),
            why: "portal-ext.properties is replaced".into(),
        });
    }
    Ok(changes)
}

fn url(t: &Target) -> Result<String, StepError> {
    Ok(label(t, "url")?.trim_end_matches('/').to_string())
}

fn script(t: &Target, name: &str) -> Result<String, StepError> {
    Ok(Path::new(label(t, "root")?)
        .join("bin")
        .join(name)
        .display()
        .to_string())
}

/// The servers of the targets of one color.
fn colored(fleet: &[Target], color: &str) -> Vec<String> {
    fleet
        .iter()
        .filter(|t| get(&t.labels, "color") == Some(color))
        .filter_map(|t| get(&t.labels, "url").map(lb::address))
        .collect()
}

impl cutover_sdk::Adapter for Liferay {
    fn describe() -> Description {
        let p = parameter;
        let s = target_step;
        Description {
            leases: vec![
                "{root}/.cutover-lease".into(),
                "{lb-dir}/.cutover-lease".into(),
            ],
            name: "liferay-cluster".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Liferay DXP cluster update by rolling restart or blue-green".into(),
            parameters: vec![
                p(
                    "mode",
                    "rolling or blue-green (must match the strategy)",
                    false,
                    false,
                    Some("rolling"),
                ),
                p(
                    "artifacts",
                    "folder holding what is deployed",
                    true,
                    false,
                    None,
                ),
                p("module", "a module jar to deploy", false, false, None),
                p("fixpack", "a fix pack zip to install", false, false, None),
                p(
                    "properties",
                    "a portal-ext.properties to install",
                    false,
                    false,
                    None,
                ),
                p(
                    "java-version",
                    "the Java version the nodes move to",
                    false,
                    false,
                    None,
                ),
                p(
                    "declare",
                    "matrix rows this change also makes, comma-separated (e.g. jvm-settings)",
                    false,
                    false,
                    Some(""),
                ),
                p(
                    "lb-dir",
                    "nginx's prefix folder (nginx.conf, upstream.conf)",
                    true,
                    false,
                    None,
                ),
                p(
                    "nginx",
                    "the nginx program",
                    false,
                    false,
                    Some("/usr/sbin/nginx"),
                ),
                p(
                    "drain-timeout",
                    "seconds to wait for a node's requests in flight",
                    false,
                    false,
                    Some("30"),
                ),
                p(
                    "health-timeout",
                    "seconds to wait for a node to be healthy",
                    false,
                    false,
                    Some("60"),
                ),
                p(
                    "root",
                    "the node's folder: bin/start, bin/stop, deploy/",
                    true,
                    true,
                    None,
                ),
                p(
                    "url",
                    "the node's own URL (not through the load balancer)",
                    true,
                    true,
                    None,
                ),
                p(
                    "color",
                    "blue or green (blue-green mode)",
                    false,
                    true,
                    None,
                ),
            ],
            // Steps that write a node never run its programs, and the other way round.
            capabilities: vec![
                dir("{artifacts}", Access::Read),
                dir("{root}", Access::Read),
                dir("{lb-dir}", Access::Read),
                Capability::Http("{url}".into()),
            ],
            steps: vec![
                with_caps(
                    s(
                        "drain",
                        "take the node out of the load balancer and let its requests finish",
                        true,
                        true,
                        120,
                    ),
                    vec![dir("{lb-dir}", Access::ReadWrite), exec("{nginx}")],
                ),
                with_caps(
                    s(
                        "stop",
                        "stop the node (bin/stop, graceful)",
                        true,
                        true,
                        120,
                    ),
                    vec![exec("{root}/bin/stop"), exec("{root}/bin/start")],
                ),
                with_caps(
                    s(
                        "deploy",
                        "put the module, fix pack and properties in place",
                        false,
                        true,
                        120,
                    ),
                    vec![dir("{root}", Access::ReadWrite)],
                ),
                with_caps(
                    s("start", "start the node (bin/start)", true, true, 300),
                    vec![exec("{root}/bin/start"), exec("{root}/bin/stop")],
                ),
                s(
                    "health",
                    "wait until the node is healthy with the new module",
                    false,
                    true,
                    300,
                ),
                with_caps(
                    s(
                        "undrain",
                        "put the node back into the load balancer",
                        true,
                        true,
                        60,
                    ),
                    vec![dir("{lb-dir}", Access::ReadWrite), exec("{nginx}")],
                ),
                with_caps(
                    fleet_step(
                        "switch",
                        "blue-green: point the load balancer at the green nodes",
                        Phase::Switch,
                        true,
                        true,
                        60,
                    ),
                    vec![dir("{lb-dir}", Access::ReadWrite), exec("{nginx}")],
                ),
            ],
        }
    }

    fn preflight(
        targets: Vec<Target>,
        params: Vec<Pair>,
        strategy: String,
    ) -> Result<Vec<Finding>, PluginError> {
        let mut findings = Vec::new();
        let blue_green = mode(&params) == "blue-green";
        let mut add =
            |severity, message: String| findings.push(preflight::finding(severity, None, message));
        if blue_green != strategy.starts_with("blue-green") {
            add(
                Severity::Blocker,
                format!("mode = \"{}\" does not fit the strategy {strategy}: use mode = \"blue-green\" with the blue-green strategy and \"rolling\" otherwise", mode(&params)),
            );
        }
        match classify(&targets, &params) {
            Err(e) => add(
                Severity::Blocker,
                format!("cannot classify the change: {e}"),
            ),
            Ok(changes) => {
                for c in changes {
                    if !blue_green && !c.row.rolling {
                        add(
                            Severity::Blocker,
                            format!(
                                "a rolling restart is not supported for \"{}\" (Liferay cluster-update matrix, row `{}`): {}; use blue-green",
                                c.row.title, c.row.key, c.why
                            ),
                        );
                    } else {
                        add(
                            Severity::Info,
                            format!("change \"{}\": {}", c.row.title, c.why),
                        );
                    }
                }
            }
        }
        Ok(findings)
    }

    fn run_step(
        step: String,
        target: Option<Target>,
        ctx: StepContext,
    ) -> Result<Vec<Output>, StepError> {
        let params = &ctx.params;
        let rolling = mode(params) == "rolling";
        if step == "switch" {
            if rolling {
                return Ok(vec![]);
            }
            let green = colored(&ctx.fleet, "green");
            let balancer = lb::Lb::new(params)?;
            let before = balancer.servers()?;
            balancer.switch(&green, "switch to green")?;
            return Ok(vec![out("blue", before.join(" "))]);
        }
        let t = target.ok_or_else(|| fail(format!("`{step}` is a target step")))?;
        let node = url(&t)?;
        match step.as_str() {
            "drain" if rolling => {
                lb::Lb::new(params)?.drain(
                    &lb::address(&node),
                    true,
                    &format!("drain {}", t.id),
                )?;
                let timeout = int(params, "drain-timeout", 30).map_err(fail)? * 1000;
                wait::poll(timeout, 100, |_| {
                    match web::get(&format!("{node}/inflight"), Some(2000)) {
                        Ok((200, n)) if n.trim() == "0" => Ok(()),
                        Ok((_, n)) => {
                            progress(
                                &format!("{} requests in flight on {}", n.trim(), t.id),
                                None,
                            );
                            Err(format!("{} requests still in flight", n.trim()))
                        }
                        Err(e) => Err(e),
                    }
                })
                .map_err(|e| fail(format!("draining {}: {e}", t.id)))?;
                Ok(vec![])
            }
            "undrain" if rolling => {
                lb::Lb::new(params)?.drain(
                    &lb::address(&node),
                    false,
                    &format!("undrain {}", t.id),
                )?;
                Ok(vec![])
            }
            "drain" | "undrain" => Ok(vec![]),
            "stop" => cmd::run_ok(&script(&t, "stop")?, &[], None).map(|_| vec![]),
            "start" => cmd::run_ok(&script(&t, "start")?, &[], None).map(|_| vec![]),
            "deploy" => deploy(&t, params),
            "health" => {
                let timeout = int(params, "health-timeout", 60).map_err(fail)? * 1000;
                let want = match artifact(params, "module") {
                    Some(path) => {
                        let m = matrix::module(&read_bytes(&path)?).map_err(fail)?;
                        Some(format!("{}-{}.jar", m.bundle, m.version))
                    }
                    None => None,
                };
                let seen = wait::poll(timeout, 250, |_| {
                    match web::get(&format!("{node}/health"), Some(2000))? {
                        (200, _) => {}
                        (s, b) => return Err(format!("health answered {s}: {b}")),
                    }
                    let r = report(&node)?;
                    match &want {
                        Some(jar) if !r["modules"].to_string().contains(jar.as_str()) => {
                            Err(format!("{jar} is not active yet"))
                        }
                        _ => Ok(r["modules"].to_string()),
                    }
                })
                .map_err(|e| fail(format!("{} is not healthy: {e}", t.id)))?;
                Ok(vec![out("modules", seen)])
            }
            other => Err(fail(format!("liferay-cluster has no step `{other}`"))),
        }
    }

    fn undo_step(step: String, target: Option<Target>, ctx: StepContext) -> Result<(), StepError> {
        let params = &ctx.params;
        let rolling = mode(params) == "rolling";
        if step == "switch" {
            if rolling {
                return Ok(());
            }
            let blue = colored(&ctx.fleet, "blue");
            return lb::Lb::new(params)?
                .switch(&blue, "switch back to blue")
                .map(|_| ());
        }
        let t = target.ok_or_else(|| fail(format!("`{step}` is a target step")))?;
        let undo = match step.as_str() {
            "drain" => "undrain",
            "undrain" => "drain",
            "stop" => "start",
            "start" => "stop",
            _ => return Ok(()),
        };
        Self::run_step(undo.into(), Some(t), ctx).map(|_| ())
    }
}

/// Put the module and the fix pack into the node's deploy folder, and the properties in place.
fn deploy(t: &Target, params: &[Pair]) -> Result<Vec<Output>, StepError> {
    let root = PathBuf::from(label(t, "root")?);
    let mut done = Vec::new();
    for key in ["module", "fixpack"] {
        if let Some(path) = artifact(params, key) {
            let name = path.file_name().unwrap_or_default();
            files::write_atomic(&root.join("deploy").join(name), &read_bytes(&path)?)?;
            done.push(name.to_string_lossy().to_string());
        }
    }
    if let Some(path) = artifact(params, "properties") {
        files::write_atomic(&root.join("portal-ext.properties"), &read_bytes(&path)?)?;
        done.push("portal-ext.properties".into());
    }
    Ok(vec![out("deployed", done.join(" "))])
}

cutover_sdk::export_adapter!(Liferay);
