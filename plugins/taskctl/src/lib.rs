//! `taskctl`: upgrade the nodes of a TASKCTL 8 platform (scheduling server, master agents,
//! slave agents) while the tree keeps working. Per node: remember the platform
//! configuration, stop the node (`ctlstop`) and its listener (`ctlshut`), install the new
//! version, start the listener (`ctlinit`) and the node (`ctlstart`), then verify status 5 in
//! `listcirn`, the role's processes, and that task types, projects and global parameters
//! (`listjt`, `listapp`, `listpara`) are unchanged. Undo restores the previous version and
//! restarts the node.
//!
//! Constraints: a master agent and all its slaves are never down together, and the levels go
//! in the order of parameter `order` (default slaves, then masters, then the server).
//!
//! Parameters: `version`, `package` (the new version's folder), `order`, `ps` (the `ps`
//! program, for the process check); per target: `type`, `parent`, `root`.

mod tree;

use cutover_sdk::params::{declare, get, label};
use cutover_sdk::{cmd, fail, files, output, preflight, release};
use cutover_sdk::{
    About, Access, Call, Cap, Constraint, Finding, Output, Pair, PreflightContext, Result, StepDef,
    Target,
};
use std::path::{Path, PathBuf};

struct Taskctl;

/// Processes of a scheduling server node.
const SERVER_PROCS: &[&str] = &[
    "ctlcpg", "ctlsps", "ctldrr", "ctldar", "ctlstr", "ctldsy", "ctlemr", "ctlucd", "ctljmm",
];
/// Processes of an agent node.
const AGENT_PROCS: &[&str] = &["ctlcpg", "ctlsps", "ctldrr", "ctldar", "ctlstr"];
/// The configuration listings that must not change.
const LISTINGS: &[&str] = &["listjt", "listapp", "listpara"];

/// The target of a step call (every step runs per target).
fn target(c: &Call) -> Result<&Target> {
    c.target
        .as_ref()
        .ok_or_else(|| fail("taskctl has no fleet steps"))
}

/// The node's home, label `root`.
fn root(c: &Call) -> Result<PathBuf> {
    Ok(PathBuf::from(label(target(c)?, "root")?))
}

/// The node's home and the version being installed: every step requires both.
fn node(c: &Call) -> Result<(PathBuf, &str)> {
    let root = root(c)?;
    Ok((root, c.param("version")?))
}

/// Run `<root>/bin/<command>`; its standard output.
fn ctl(root: &Path, command: &str, args: &[&str]) -> Result<String> {
    let program = root.join("bin").join(command).display().to_string();
    Ok(cmd::run_ok(&program, args, None)?.stdout)
}

fn problems(p: Vec<(String, String)>) -> String {
    p.into_iter()
        .map(|(t, m)| format!("target `{t}`: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Record the configuration listings and where `current` points.
fn snapshot(c: &Call) -> Result<Vec<Output>> {
    let (root, _) = node(c)?;
    let mut outputs = Vec::new();
    for l in LISTINGS {
        outputs.push(output(l, ctl(&root, l, &[])?));
    }
    let previous = release::current(&root)
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    outputs.push(output("previous", previous));
    Ok(outputs)
}

/// A step that runs one control command of the node.
fn run_ctl(c: &Call, command: &str) -> Result<Vec<Output>> {
    let (root, _) = node(c)?;
    ctl(&root, command, &[]).map(|_| vec![])
}

/// An undo that runs one control command of the node.
fn undo_ctl(c: &Call, command: &str) -> Result<()> {
    ctl(&root(c)?, command, &[]).map(drop)
}

fn stop_node(c: &Call) -> Result<Vec<Output>> {
    run_ctl(c, "ctlstop")
}

fn stop_listener(c: &Call) -> Result<Vec<Output>> {
    run_ctl(c, "ctlshut")
}

fn start_listener(c: &Call) -> Result<Vec<Output>> {
    run_ctl(c, "ctlinit")
}

fn start_node(c: &Call) -> Result<Vec<Output>> {
    run_ctl(c, "ctlstart")
}

fn undo_stop_node(c: &Call) -> Result<()> {
    undo_ctl(c, "ctlstart")
}

fn undo_stop_listener(c: &Call) -> Result<()> {
    undo_ctl(c, "ctlinit")
}

fn undo_start_listener(c: &Call) -> Result<()> {
    undo_ctl(c, "ctlshut")
}

fn undo_start_node(c: &Call) -> Result<()> {
    undo_ctl(c, "ctlstop")
}

/// Copy the package into `versions/<version>` once and point `current` at it.
fn install(c: &Call) -> Result<Vec<Output>> {
    let (root, version) = node(c)?;
    let package = PathBuf::from(c.param("package")?);
    let rel = Path::new("versions").join(version);
    let copied = release::install(&package, &root.join(&rel))?;
    release::switch(&root, &rel)?;
    Ok(vec![output("files", copied.to_string())])
}

/// Point `current` back at the version `snapshot` recorded.
fn uninstall(c: &Call) -> Result<()> {
    release::switch_back(&root(c)?, c.output("previous"))
}

/// Status 5, the role's processes from this node's home, the version, and the configuration
/// listings as they were before.
fn verify(c: &Call) -> Result<Vec<Output>> {
    let (root, version) = node(c)?;
    let root = root.as_path();
    let t = target(c)?;
    let name = get(&t.labels, "name").unwrap_or(&t.id);
    let cirn = ctl(root, "listcirn", &[])?;
    let row = cirn
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(name))
        .ok_or_else(|| fail(format!("listcirn does not list node {name}")))?;
    if !row.trim_end().ends_with("5-启动状态") {
        return Err(fail(format!(
            "listcirn shows node {name} not started: {}",
            row.trim()
        )));
    }
    let running = files::read_string(&root.join("current/VERSION"))?;
    if running.trim() != version {
        return Err(fail(format!(
            "node {name} runs {}, not {version}",
            running.trim()
        )));
    }
    let ps = c.param("ps")?;
    let listing = cmd::run_ok(ps, &["-eo", "comm=,args="], None)?.stdout;
    let home = format!("{}/bin/", root.display());
    let mine: Vec<&str> = listing
        .lines()
        .filter(|l| l.contains(&home))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let wanted = if get(&t.labels, "type") == Some(tree::SERVER) {
        SERVER_PROCS
    } else {
        AGENT_PROCS
    };
    let missing: Vec<&&str> = wanted.iter().filter(|p| !mine.contains(p)).collect();
    if !missing.is_empty() {
        return Err(fail(format!(
            "node {name}: processes not running: {}",
            missing
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        )));
    }
    for l in LISTINGS {
        let now = ctl(root, l, &[])?;
        let before = c.output(l).unwrap_or_default();
        if now.trim() != before.trim() {
            return Err(fail(format!(
                "node {name}: `{l}` changed with the upgrade:\nbefore:\n{before}\nnow:\n{now}"
            )));
        }
    }
    Ok(vec![output("processes", wanted.join(" "))])
}

/// The listing programs (`verify` runs them too, and `ps`).
const LISTING_CAPS: &[Cap] = &[
    Cap::Exec("{root}/bin/listcirn"),
    Cap::Exec("{root}/bin/listjt"),
    Cap::Exec("{root}/bin/listapp"),
    Cap::Exec("{root}/bin/listpara"),
];

impl cutover_sdk::Adapter for Taskctl {
    fn about() -> About {
        let p = declare;
        About {
            name: "taskctl",
            version: env!("CARGO_PKG_VERSION"),
            summary: "TASKCTL 8 server and agent nodes, upgraded along the platform tree",
            parameters: vec![
                p("version", "the version to install", true, false, None),
                p(
                    "package",
                    "folder holding the new version's files",
                    true,
                    false,
                    None,
                ),
                p(
                    "order",
                    "slaves-first, server-first or none",
                    false,
                    false,
                    Some("slaves-first"),
                ),
                p(
                    "ps",
                    "the ps program, to check the role's processes",
                    false,
                    false,
                    Some("/usr/bin/ps"),
                ),
                p(
                    "type",
                    "cntServer, cntMAgent or cntSAgent",
                    true,
                    true,
                    None,
                ),
                p(
                    "parent",
                    "the parent node (a master agent's server, a slave agent's master)",
                    false,
                    true,
                    None,
                ),
                p(
                    "root",
                    "the node's home: bin/, versions/, current, config/",
                    true,
                    true,
                    None,
                ),
            ],
            // The node's home is written only by `install`, which runs none of its programs;
            // the steps that run them see it read-only.
            capabilities: vec![
                Cap::Dir("{package}", Access::Read).capability(),
                Cap::Dir("{root}", Access::Read).capability(),
            ],
            leases: vec!["{root}/.cutover-lease".into()],
        }
    }

    const STEPS: &'static [StepDef] = &[
        StepDef {
            name: "snapshot",
            about: "record listjt, listapp and listpara",
            run: snapshot,
            idempotent: true,
            caps: LISTING_CAPS,
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop-node",
            about: "stop the node (ctlstop)",
            run: stop_node,
            undo: Some(undo_stop_node),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 120,
            caps: &[
                Cap::Exec("{root}/bin/ctlstop"),
                Cap::Exec("{root}/bin/ctlstart"),
            ],
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop-listener",
            about: "stop the node's listener (ctlshut)",
            run: stop_listener,
            undo: Some(undo_stop_listener),
            idempotent: true,
            undo_idempotent: true,
            caps: &[
                Cap::Exec("{root}/bin/ctlshut"),
                Cap::Exec("{root}/bin/ctlinit"),
            ],
            ..StepDef::TARGET
        },
        StepDef {
            name: "install",
            about: "install the new version and point current at it",
            run: install,
            undo: Some(uninstall),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 600,
            caps: &[Cap::Dir("{root}", Access::ReadWrite)],
            ..StepDef::TARGET
        },
        StepDef {
            name: "start-listener",
            about: "start the listener (ctlinit)",
            run: start_listener,
            undo: Some(undo_start_listener),
            idempotent: true,
            undo_idempotent: true,
            caps: &[
                Cap::Exec("{root}/bin/ctlinit"),
                Cap::Exec("{root}/bin/ctlshut"),
            ],
            ..StepDef::TARGET
        },
        StepDef {
            name: "start-node",
            about: "start the node (ctlstart)",
            run: start_node,
            undo: Some(undo_start_node),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 120,
            caps: &[
                Cap::Exec("{root}/bin/ctlstart"),
                Cap::Exec("{root}/bin/ctlstop"),
            ],
            ..StepDef::TARGET
        },
        StepDef {
            name: "verify",
            about: "status 5, the role's processes, configuration unchanged",
            run: verify,
            idempotent: true,
            caps: &[
                Cap::Exec("{root}/bin/listcirn"),
                Cap::Exec("{root}/bin/listjt"),
                Cap::Exec("{root}/bin/listapp"),
                Cap::Exec("{root}/bin/listpara"),
                Cap::Exec("{ps}"),
            ],
            ..StepDef::TARGET
        },
    ];

    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        let params = ctx.params;
        let mut findings = Vec::new();
        let mut block = |target: Option<&str>, message: String| {
            findings.push(preflight::blocker(target, message))
        };
        if let Err(p) = tree::build(&targets) {
            for (t, m) in p {
                block(Some(&t), m);
            }
        }
        let package = get(&params, "package").unwrap_or_default();
        if !Path::new(package).join("VERSION").exists() {
            block(
                None,
                format!("package `{package}` has no VERSION file: is it a TASKCTL version folder?"),
            );
        }
        for t in &targets {
            let Some(r) = get(&t.labels, "root") else {
                block(
                    Some(&t.id),
                    "needs `root = \"...\"` (the node's home)".into(),
                );
                continue;
            };
            for c in ["ctlstop", "ctlshut", "ctlinit", "ctlstart", "listcirn"] {
                // Commands may be links into the product's install: look at the entry itself.
                if std::fs::symlink_metadata(Path::new(r).join("bin").join(c)).is_err() {
                    block(
                        Some(&t.id),
                        format!("{r}/bin/{c} is missing: is `root` a TASKCTL node's home?"),
                    );
                }
            }
        }
        Ok(findings)
    }

    fn constraints(targets: Vec<Target>, params: Vec<Pair>) -> Result<Vec<Constraint>> {
        let tree = tree::build(&targets).map_err(|p| {
            preflight::refuse(format!("the fleet is not a TASKCTL tree: {}", problems(p)))
        })?;
        tree::constraints(&tree, get(&params, "order").unwrap_or("slaves-first"))
            .map_err(preflight::refuse)
    }
}

cutover_sdk::export_adapter!(Taskctl);
