//! `taskctl`: upgrade the nodes of a TASKCTL 8 platform (scheduling server, master agents,
//! slave agents) while the tree keeps working, using only what the vendor's article on
//! distributed deployment documents (the "seed", cited by line) and parameters for what it
//! leaves out. Per node:
//!
//! 1. `snapshot`: `listcirn` in `ctladmin` shows the node `5-启动状态`; record `listjt`,
//!    `listapp`, `listpara` (seed L141-145).
//! 2. `stop-node`: the node's `ctlstop` (L131); none of its processes may remain (L147-155).
//! 3. `stop-listener`: `ctlshut` (L63); `ipcs -m` / `ipcs -q` must show none of the
//!    listener's shared memory and message queues (L53-61).
//! 4. `install`: replace the node's program folders with the package's, keeping the old
//!    ones for undo (the seed documents no upgrade or install layout: Cutover's design).
//! 5. `start-listener`: `ctlinit` (L51-57); its shared memory and message queues must be
//!    there.
//! 6. `start-node`: `ctlstart` (L127-129).
//! 7. `verify`: `listcirn` shows the node started, its processes run, the listings are
//!    unchanged, and the version when `version-file` names where to read it.
//!
//! Undo runs the opposite command and the same check; `install` is undone by moving the old
//! folders back. Constraints: a master agent and all its slaves are never down together, and
//! the levels go in the order of parameter `order`.

mod admin;
mod check;
mod node;
mod steps;
mod tree;

use cutover_sdk::params::{declare, get};
use cutover_sdk::{preflight, Constraint, Finding, Pair, PreflightContext, Result, Target};
use cutover_sdk::{About, Access, Cap, StepDef};
use steps::*;

struct Taskctl;

/// A node program, `{home}/{bin}/<name>`.
macro_rules! program {
    ($name:literal) => {
        Cap::Exec(concat!("{home}/{bin}/", $name))
    };
}

/// What the `ctladmin` sessions need.
const ADMIN: [Cap; 2] = [Cap::Exec("{ctladmin}"), Cap::Secret("{ctladmin-login?}")];

fn problems(p: Vec<(String, String)>) -> String {
    p.into_iter()
        .map(|(t, m)| format!("target `{t}`: {m}"))
        .collect::<Vec<_>>()
        .join("; ")
}

impl cutover_sdk::Adapter for Taskctl {
    fn about() -> About {
        let p = declare;
        let not_documented = |name: &str, what: &str, default: Option<&str>| {
            p(
                name,
                &format!("{what} (not documented by TASKCTL)"),
                false,
                false,
                default,
            )
        };
        About {
            name: "taskctl",
            version: env!("CARGO_PKG_VERSION"),
            summary: "TASKCTL 8 server and agent nodes, upgraded along the platform tree",
            parameters: vec![
                p("package", "folder of the release: each of its folders replaces the node's folder of that name", true, false, None),
                p("version", "the release's version, as `version-file` shows it", false, false, None),
                not_documented("version-file", "file under a node's home naming its version", None),
                p("order", "slaves-first, server-first or none", false, false, Some("slaves-first")),
                not_documented("bin", "folder under a node's home holding ctlinit, ctlshut, ctlstart, ctlstop", Some("bin")),
                p("ctladmin", "the ctladmin program on the target's host (its place is not documented)", true, true, None),
                not_documented("ctladmin-args", "arguments of ctladmin, space-separated", Some("")),
                not_documented("ctladmin-input", "how ctladmin gets its command: stdin or args", Some("stdin")),
                not_documented("ctladmin-login", "secret whose lines are written to ctladmin before the command", None),
                p("ipcs", "the ipcs program", false, false, Some("/usr/bin/ipcs")),
                p("ps", "the ps program", false, false, Some("/usr/bin/ps")),
                p("settle-timeout", "seconds processes, shared memory and queues may take to come or go", false, false, Some("60")),
                p("type", "cntServer, cntMAgent or cntSAgent", true, true, None),
                p("parent", "the parent node (a master agent's server, a slave agent's master)", false, true, None),
                p("name", "the node's name on the platform (default: the target id)", false, true, None),
                p("home", "the node's installation directory", true, true, None),
                p("ipc-owner", "the account owning the node's shared memory and message queues (ipcs owner column); unset: not checked", false, true, None),
                p("process-match", "text in the command line of each of the node's processes (when nodes share a host)", false, true, None),
            ],
            // The node's home is written only by `install`, which runs none of its programs.
            capabilities: vec![
                Cap::Dir("{package}", Access::Read).capability(),
                Cap::Dir("{home}", Access::Read).capability(),
            ],
            leases: vec!["{home}/.cutover-lease".into()],
        }
    }

    const STEPS: &'static [StepDef] = &[
        StepDef {
            name: "snapshot",
            about: "listcirn shows the node started; record listjt, listapp, listpara",
            run: snapshot,
            idempotent: true,
            caps: &ADMIN,
            timeout_s: 120,
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop-node",
            about: "ctlstop; none of the node's processes left",
            run: stop_node,
            undo: Some(undo_stop_node),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 180,
            caps: &[program!("ctlstop"), program!("ctlstart"), Cap::Exec("{ps}")],
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop-listener",
            about: "ctlshut; its shared memory and message queues released",
            run: stop_listener,
            undo: Some(undo_stop_listener),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 180,
            caps: &[
                program!("ctlshut"),
                program!("ctlinit"),
                Cap::Exec("{ipcs}"),
            ],
            ..StepDef::TARGET
        },
        StepDef {
            name: "install",
            about: "replace the node's program folders with the package's, keeping the old",
            run: install,
            undo: Some(uninstall),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 600,
            caps: &[Cap::Dir("{home}", Access::ReadWrite)],
            ..StepDef::TARGET
        },
        StepDef {
            name: "start-listener",
            about: "ctlinit; its shared memory and message queues there",
            run: start_listener,
            undo: Some(undo_start_listener),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 180,
            caps: &[
                program!("ctlinit"),
                program!("ctlshut"),
                Cap::Exec("{ipcs}"),
            ],
            ..StepDef::TARGET
        },
        StepDef {
            name: "start-node",
            about: "ctlstart",
            run: start_node,
            undo: Some(undo_start_node),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 180,
            caps: &[program!("ctlstart"), program!("ctlstop"), Cap::Exec("{ps}")],
            ..StepDef::TARGET
        },
        StepDef {
            name: "verify",
            about: "listcirn 5-启动状态, the node's processes, listings unchanged, version",
            run: verify,
            idempotent: true,
            timeout_s: 240,
            caps: &[ADMIN[0], ADMIN[1], Cap::Exec("{ps}")],
            ..StepDef::TARGET
        },
    ];

    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        Ok(check::findings(&targets, &ctx.params))
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
