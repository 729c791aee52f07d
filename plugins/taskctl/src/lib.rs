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

use cutover_sdk::adapter_types::*;
use cutover_sdk::describe::{dir, exec, parameter, target_step, with_caps};
use cutover_sdk::params::{get, label, output, param};
use cutover_sdk::step::{fail, out};
use cutover_sdk::{cmd, files, preflight, release};
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

fn root(t: &Target) -> Result<PathBuf, StepError> {
    Ok(PathBuf::from(label(t, "root")?))
}

/// Run `<root>/bin/<command>`; its standard output.
fn ctl(root: &Path, command: &str, args: &[&str]) -> Result<String, StepError> {
    let program = root.join("bin").join(command).display().to_string();
    Ok(cmd::run_ok(&program, args, None)?.stdout)
}

fn problems(p: Vec<(String, String)>) -> String {
    p.into_iter()
        .map(|(t, m)| format!("target `{t}`: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl cutover_sdk::Adapter for Taskctl {
    fn describe() -> Description {
        let p = parameter;
        let s = target_step;
        // The node's home is written only by `install`, which runs none of its programs;
        // the steps that run them see it read-only.
        let capabilities = vec![dir("{package}", Access::Read), dir("{root}", Access::Read)];
        let listings = |more: &[&str]| -> Vec<Capability> {
            ["listcirn", "listjt", "listapp", "listpara"]
                .iter()
                .map(|c| exec(&format!("{{root}}/bin/{c}")))
                .chain(more.iter().map(|m| exec(m)))
                .collect()
        };
        let ctl = |a: &str, b: &str| {
            vec![
                exec(&format!("{{root}}/bin/{a}")),
                exec(&format!("{{root}}/bin/{b}")),
            ]
        };
        Description {
            leases: vec!["{root}/.cutover-lease".into()],
            name: "taskctl".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "TASKCTL 8 server and agent nodes, upgraded along the platform tree".into(),
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
            capabilities,
            steps: vec![
                with_caps(
                    s(
                        "snapshot",
                        "record listjt, listapp and listpara",
                        false,
                        true,
                        60,
                    ),
                    listings(&[]),
                ),
                with_caps(
                    s("stop-node", "stop the node (ctlstop)", true, true, 120),
                    ctl("ctlstop", "ctlstart"),
                ),
                with_caps(
                    s(
                        "stop-listener",
                        "stop the node's listener (ctlshut)",
                        true,
                        true,
                        60,
                    ),
                    ctl("ctlshut", "ctlinit"),
                ),
                with_caps(
                    s(
                        "install",
                        "install the new version and point current at it",
                        true,
                        true,
                        600,
                    ),
                    vec![dir("{root}", Access::ReadWrite)],
                ),
                with_caps(
                    s(
                        "start-listener",
                        "start the listener (ctlinit)",
                        true,
                        true,
                        60,
                    ),
                    ctl("ctlinit", "ctlshut"),
                ),
                with_caps(
                    s("start-node", "start the node (ctlstart)", true, true, 120),
                    ctl("ctlstart", "ctlstop"),
                ),
                with_caps(
                    s(
                        "verify",
                        "status 5, the role's processes, configuration unchanged",
                        false,
                        true,
                        60,
                    ),
                    listings(&["{ps}"]),
                ),
            ],
        }
    }

    fn preflight(
        targets: Vec<Target>,
        params: Vec<Pair>,
        _strategy: String,
    ) -> Result<Vec<Finding>, PluginError> {
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

    fn constraints(
        targets: Vec<Target>,
        params: Vec<Pair>,
    ) -> Result<Vec<Constraint>, PluginError> {
        let tree = tree::build(&targets).map_err(|p| {
            preflight::refuse(format!("the fleet is not a TASKCTL tree: {}", problems(p)))
        })?;
        tree::constraints(&tree, get(&params, "order").unwrap_or("slaves-first"))
            .map_err(preflight::refuse)
    }

    fn run_step(
        step: String,
        target: Option<Target>,
        ctx: StepContext,
    ) -> Result<Vec<Output>, StepError> {
        let t = target.ok_or_else(|| fail("taskctl has no fleet steps"))?;
        let root = root(&t)?;
        let version = param(&ctx.params, "version")?;
        match step.as_str() {
            "snapshot" => {
                let mut outputs = Vec::new();
                for l in LISTINGS {
                    outputs.push(out(l, ctl(&root, l, &[])?));
                }
                let previous = release::current(&root)
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                outputs.push(out("previous", previous));
                Ok(outputs)
            }
            "stop-node" => ctl(&root, "ctlstop", &[]).map(|_| vec![]),
            "stop-listener" => ctl(&root, "ctlshut", &[]).map(|_| vec![]),
            "install" => {
                let package = PathBuf::from(param(&ctx.params, "package")?);
                let rel = Path::new("versions").join(version);
                let copied = release::install(&package, &root.join(&rel))?;
                release::switch(&root, &rel)?;
                Ok(vec![out("files", copied.to_string())])
            }
            "start-listener" => ctl(&root, "ctlinit", &[]).map(|_| vec![]),
            "start-node" => ctl(&root, "ctlstart", &[]).map(|_| vec![]),
            "verify" => verify(&t, &root, version, &ctx),
            other => Err(fail(format!("taskctl has no step `{other}`"))),
        }
    }

    fn undo_step(step: String, target: Option<Target>, ctx: StepContext) -> Result<(), StepError> {
        let t = target.ok_or_else(|| fail("taskctl has no fleet steps"))?;
        let root = root(&t)?;
        match step.as_str() {
            "stop-node" => ctl(&root, "ctlstart", &[]).map(|_| ()),
            "stop-listener" => ctl(&root, "ctlinit", &[]).map(|_| ()),
            "install" => release::switch_back(&root, output(&ctx.outputs, "previous")),
            "start-listener" => ctl(&root, "ctlshut", &[]).map(|_| ()),
            "start-node" => ctl(&root, "ctlstop", &[]).map(|_| ()),
            _ => Ok(()),
        }
    }
}

/// Status 5, the role's processes from this node's home, the version, and the configuration
/// listings as they were before.
fn verify(
    t: &Target,
    root: &Path,
    version: &str,
    ctx: &StepContext,
) -> Result<Vec<Output>, StepError> {
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
    let ps = param(&ctx.params, "ps")?;
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
        let before = output(&ctx.outputs, l).unwrap_or_default();
        if now.trim() != before.trim() {
            return Err(fail(format!(
                "node {name}: `{l}` changed with the upgrade:\nbefore:\n{before}\nnow:\n{now}"
            )));
        }
    }
    Ok(vec![out("processes", wanted.join(" "))])
}

cutover_sdk::export_adapter!(Taskctl);
