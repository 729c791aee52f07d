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

use cutover_sdk::params::{declare, get};
use cutover_sdk::{cmd, fail, files, output, preflight, wait, web};
use cutover_sdk::{
    About, Access, Call, Cap, Capability, Finding, Output, Pair, PreflightContext, Result,
    Severity, StepDef, Target,
};
use std::path::{Path, PathBuf};

struct Liferay;

fn mode(params: &[Pair]) -> &str {
    get(params, "mode").unwrap_or("rolling")
}

fn rolling(c: &Call) -> bool {
    mode(c.params()) == "rolling"
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

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| files::io_error("reading", path, e))
}

/// The `/modules` report of a node.
fn report(url: &str) -> Result<serde_json::Value, String> {
    match web::get(&format!("{url}/modules"), Some(5000)).map_err(|e| e.message)? {
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

/// The target of a target step and its own URL (every target step needs the `url` label).
fn node(c: &Call) -> Result<(&Target, String)> {
    let t = c
        .target
        .as_ref()
        .ok_or_else(|| fail(format!("`{}` is a target step", c.step)))?;
    let url = cutover_sdk::params::label(t, "url")?;
    Ok((t, url.trim_end_matches('/').to_string()))
}

fn script(t: &Target, name: &str) -> Result<String> {
    Ok(Path::new(cutover_sdk::params::label(t, "root")?)
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

/// Rolling mode: take the node out of nginx and wait until its requests in flight are done.
fn drain(c: &Call) -> Result<Vec<Output>> {
    let (t, node) = node(c)?;
    if !rolling(c) {
        return Ok(vec![]);
    }
    let params = c.params();
    lb::Lb::new(params)?.drain(&lb::address(&node), true, &format!("drain {}", t.id))?;
    let timeout = cutover_sdk::params::int(params, "drain-timeout", 30)? * 1000;
    wait::poll(timeout, 100, |_| {
        match web::get(&format!("{node}/inflight"), Some(2000)) {
            Ok((200, n)) if n.trim() == "0" => Ok(()),
            Ok((_, n)) => {
                cutover_sdk::progress(
                    &format!("{} requests in flight on {}", n.trim(), t.id),
                    None,
                );
                Err(format!("{} requests still in flight", n.trim()))
            }
            Err(e) => Err(e.message),
        }
    })
    .map_err(|e| e.context(format!("draining {}", t.id)))?;
    Ok(vec![])
}

/// Rolling mode: put the node back into nginx.
fn undrain(c: &Call) -> Result<Vec<Output>> {
    let (t, node) = node(c)?;
    if !rolling(c) {
        return Ok(vec![]);
    }
    lb::Lb::new(c.params())?.drain(&lb::address(&node), false, &format!("undrain {}", t.id))?;
    Ok(vec![])
}

fn stop(c: &Call) -> Result<Vec<Output>> {
    let (t, _) = node(c)?;
    cmd::run_ok(&script(t, "stop")?, &[], None)?;
    Ok(vec![])
}

fn start(c: &Call) -> Result<Vec<Output>> {
    let (t, _) = node(c)?;
    cmd::run_ok(&script(t, "start")?, &[], None)?;
    Ok(vec![])
}

/// Where `deploy` keeps what it replaces, for its undo.
const KEPT: &str = ".cutover-undo/deploy";

/// Put the module and the fix pack into the node's deploy folder, and the properties in
/// place. First keeps what they replace (the installed jars of the module's bundle and
/// `portal-ext.properties`) under `.cutover-undo/deploy`, once, so a re-run keeps the
/// originals.
fn deploy(c: &Call) -> Result<Vec<Output>> {
    let (t, _) = node(c)?;
    let params = c.params();
    let root = PathBuf::from(cutover_sdk::params::label(t, "root")?);
    let kept = root.join(KEPT);
    if !kept.join(".complete").exists() {
        keep_replaced(&root, &kept, params)?;
    }
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
    Ok(vec![output("deployed", done.join(" "))])
}

/// The name prefix of the installed jars of the module in the `module` parameter.
fn bundle_prefix(params: &[Pair]) -> Result<Option<(String, String)>> {
    match artifact(params, "module") {
        Some(path) => {
            let m = matrix::module(&read_bytes(&path)?)?;
            Ok(Some((
                format!("{}-", m.bundle),
                format!("{}-{}.jar", m.bundle, m.version),
            )))
        }
        None => Ok(None),
    }
}

fn keep_replaced(root: &Path, kept: &Path, params: &[Pair]) -> Result<()> {
    let modules = kept.join("modules");
    std::fs::create_dir_all(&modules).map_err(|e| files::io_error("creating", &modules, e))?;
    let props = root.join("portal-ext.properties");
    if props.exists() {
        files::write_atomic(&kept.join("portal-ext.properties"), &read_bytes(&props)?)?;
    }
    if let Some((prefix, _)) = bundle_prefix(params)? {
        let installed = root.join("osgi/modules");
        for jar in files::find(&installed, &|n| {
            n.starts_with(&prefix) && n.ends_with(".jar")
        })? {
            let name = jar.file_name().unwrap_or_default();
            files::write_atomic(&modules.join(name), &read_bytes(&jar)?)?;
        }
    }
    files::write_atomic(&kept.join(".complete"), b"")
}

/// Undo `deploy` on the stopped node: the new module out of `deploy/` and `osgi/modules`,
/// the kept jars and properties back. A fix pack cannot be taken out this way: its undo
/// fails, naming it (Liferay's patching tool reverts fix packs).
fn undeploy(c: &Call) -> Result<()> {
    let (t, _) = node(c)?;
    let params = c.params();
    let root = PathBuf::from(cutover_sdk::params::label(t, "root")?);
    let kept = root.join(KEPT);
    if let Some(path) = artifact(params, "fixpack") {
        return Err(fail(format!(
            "fix pack {} cannot be undone by Cutover: revert it with Liferay's patching tool",
            path.display()
        )));
    }
    if !kept.join(".complete").exists() {
        return Ok(()); // nothing was replaced (or the undo already ran)
    }
    let remove = |p: &Path| match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(files::io_error("removing", p, e))
        }
        _ => Ok(()),
    };
    if let Some((_, new_jar)) = bundle_prefix(params)? {
        if let Some(path) = artifact(params, "module") {
            remove(
                &root
                    .join("deploy")
                    .join(path.file_name().unwrap_or_default()),
            )?;
        }
        remove(&root.join("osgi/modules").join(new_jar))?;
    }
    for jar in files::find(&kept.join("modules"), &|n| n.ends_with(".jar"))? {
        let name = jar.file_name().unwrap_or_default();
        files::write_atomic(&root.join("osgi/modules").join(name), &read_bytes(&jar)?)?;
    }
    let props = kept.join("portal-ext.properties");
    if props.exists() {
        files::write_atomic(&root.join("portal-ext.properties"), &read_bytes(&props)?)?;
    } else if artifact(params, "properties").is_some() {
        remove(&root.join("portal-ext.properties"))?;
    }
    std::fs::remove_dir_all(root.join(".cutover-undo"))
        .map_err(|e| files::io_error("removing", &root.join(".cutover-undo"), e))
}

/// Wait until the node answers `/health` and its `/modules` lists the new module.
fn health(c: &Call) -> Result<Vec<Output>> {
    let (t, node) = node(c)?;
    let params = c.params();
    let timeout = cutover_sdk::params::int(params, "health-timeout", 60)? * 1000;
    let want = match artifact(params, "module") {
        Some(path) => {
            let m = matrix::module(&read_bytes(&path)?)?;
            Some(format!("{}-{}.jar", m.bundle, m.version))
        }
        None => None,
    };
    let seen = wait::poll(timeout, 250, |_| {
        match web::get(&format!("{node}/health"), Some(2000)).map_err(|e| e.message)? {
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
    .map_err(|e| e.context(format!("{} is not healthy", t.id)))?;
    Ok(vec![output("modules", seen)])
}

/// Blue-green mode: point nginx at the green nodes, remembering the blue ones.
fn switch(c: &Call) -> Result<Vec<Output>> {
    if rolling(c) {
        return Ok(vec![]);
    }
    let green = colored(c.fleet(), "green");
    let balancer = lb::Lb::new(c.params())?;
    let before = balancer.servers()?;
    balancer.switch(&green, "switch to green")?;
    Ok(vec![output("blue", before.join(" "))])
}

/// Blue-green mode: point nginx back at the blue nodes in one reload.
fn switch_back(c: &Call) -> Result<()> {
    if rolling(c) {
        return Ok(());
    }
    let blue = colored(c.fleet(), "blue");
    lb::Lb::new(c.params())?
        .switch(&blue, "switch back to blue")
        .map(drop)
}

/// Undo of `drain`.
fn undo_drain(c: &Call) -> Result<()> {
    undrain(c).map(drop)
}

/// Undo of `undrain`.
fn undo_undrain(c: &Call) -> Result<()> {
    drain(c).map(drop)
}

/// Undo of `stop`.
fn undo_stop(c: &Call) -> Result<()> {
    start(c).map(drop)
}

/// Undo of `start`.
fn undo_start(c: &Call) -> Result<()> {
    stop(c).map(drop)
}

// Steps that write a node never run its programs, and the other way round.

/// nginx's folder and program: the steps that change the load balancer.
const BALANCER: &[Cap] = &[
    Cap::Dir("{lb-dir}", Access::ReadWrite),
    Cap::Exec("{nginx}"),
];
/// The node's scripts, for `stop` (and its undo).
const SCRIPTS: &[Cap] = &[Cap::Exec("{root}/bin/stop"), Cap::Exec("{root}/bin/start")];
/// The same for `start`, listed in its order.
const START_SCRIPTS: &[Cap] = &[Cap::Exec("{root}/bin/start"), Cap::Exec("{root}/bin/stop")];

impl cutover_sdk::Adapter for Liferay {
    fn about() -> About {
        let p = declare;
        About {
            name: "liferay-cluster",
            version: env!("CARGO_PKG_VERSION"),
            summary: "Liferay DXP cluster update by rolling restart or blue-green",
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
            capabilities: vec![
                Cap::Dir("{artifacts}", Access::Read).capability(),
                Cap::Dir("{root}", Access::Read).capability(),
                Cap::Dir("{lb-dir}", Access::Read).capability(),
                Capability::Http("{url}".into()),
            ],
            leases: vec![
                "{root}/.cutover-lease".into(),
                "{lb-dir}/.cutover-lease".into(),
            ],
        }
    }

    const STEPS: &'static [StepDef] = &[
        StepDef {
            name: "drain",
            about: "take the node out of the load balancer and let its requests finish",
            run: drain,
            undo: Some(undo_drain),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 120,
            caps: BALANCER,
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop",
            about: "stop the node (bin/stop, graceful)",
            run: stop,
            undo: Some(undo_stop),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 120,
            caps: SCRIPTS,
            ..StepDef::TARGET
        },
        StepDef {
            name: "deploy",
            about: "put the module, fix pack and properties in place",
            run: deploy,
            undo: Some(undeploy),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 120,
            caps: &[Cap::Dir("{root}", Access::ReadWrite)],
            ..StepDef::TARGET
        },
        StepDef {
            name: "start",
            about: "start the node (bin/start)",
            run: start,
            undo: Some(undo_start),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 300,
            caps: START_SCRIPTS,
            ..StepDef::TARGET
        },
        StepDef {
            name: "health",
            about: "wait until the node is healthy with the new module",
            run: health,
            idempotent: true,
            timeout_s: 300,
            ..StepDef::TARGET
        },
        StepDef {
            name: "undrain",
            about: "put the node back into the load balancer",
            run: undrain,
            undo: Some(undo_undrain),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 60,
            caps: BALANCER,
            ..StepDef::TARGET
        },
        StepDef {
            name: "switch",
            about: "blue-green: point the load balancer at the green nodes",
            run: switch,
            undo: Some(switch_back),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 60,
            caps: BALANCER,
            ..StepDef::FLEET
        },
    ];

    /// A rolling restart takes one node out at a time (Liferay's cluster-update guide: the
    /// rest of the cluster serves while a node restarts), whatever the strategy's group size.
    fn constraints(
        targets: Vec<Target>,
        params: Vec<cutover_sdk::Pair>,
    ) -> Result<Vec<cutover_sdk::Constraint>> {
        if mode(&params) != "rolling" || targets.len() < 2 {
            return Ok(Vec::new());
        }
        Ok(vec![cutover_sdk::Constraint {
            name: "rolling restart: one node at a time".into(),
            kind: cutover_sdk::ConstraintKind::MaxTogether(cutover_sdk::MaxTogether {
                members: targets.into_iter().map(|t| t.id).collect(),
                max: 1,
            }),
        }])
    }

    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        let (params, strategy) = (&ctx.params, &ctx.strategy);
        let mut findings = Vec::new();
        let blue_green = mode(params) == "blue-green";
        let mut add =
            |severity, message: String| findings.push(preflight::finding(severity, None, message));
        if blue_green != strategy.starts_with("blue-green") {
            add(
                Severity::Blocker,
                format!("mode = \"{}\" does not fit the strategy {strategy}: use mode = \"blue-green\" with the blue-green strategy and \"rolling\" otherwise", mode(params)),
            );
        }
        match classify(&targets, params) {
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
}

cutover_sdk::export_adapter!(Liferay);
