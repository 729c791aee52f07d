//! `liferay-cluster`: update a Liferay DXP cluster by rolling restart, blue-green, or with
//! every node down, as Liferay's cluster-update guide allows for the kind of change.
//!
//! Preflight classifies the change from documented sources only: the module jar's manifest
//! (`Liferay-Require-SchemaVersion`) against the cluster's `Release_` table read with a
//! granted database client, the jar's Java packages (cluster communication), the node's
//! `java -version`, the Patching Tool's `info`, and what the operator declares where the
//! documentation is silent (a patch's revertibility, a compatible schema raise). A rolling
//! restart is refused for every row the matrix marks "no", citing the row.
//!
//! Rolling restart, one node at a time: `drain` (out of nginx, the drain interval, ended early
//! by Tomcat's manager), `stop`, `deploy`, `patch`, `start`, `health` (a documented page, the
//! `STARTED` log line, `Release_`), `undrain`. Blue-green: the green nodes are updated (they
//! take no traffic), then `switch` points nginx at green. All-down: `stop-all` and `backup`
//! first, then the nodes one by one; a failure restores the database and restarts every node
//! on the old version.

mod fleet;
mod java;
mod lb;
mod matrix;
mod node;
mod patching;
mod preflight;
mod release;
mod settings;
mod tomcat;

use cutover_sdk::{
    About, Access, Cap, Capability, Constraint, ConstraintKind, Finding, MaxTogether, Pair,
    PreflightContext, Result, StepDef, StepKind, Target,
};

struct Liferay;

/// Undo of `drain`.
fn undo_drain(c: &cutover_sdk::Call) -> Result<()> {
    node::undrain(c).map(drop)
}

/// Undo of `undrain`.
fn undo_undrain(c: &cutover_sdk::Call) -> Result<()> {
    node::drain(c).map(drop)
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
        About {
            name: "liferay-cluster",
            version: env!("CARGO_PKG_VERSION"),
            summary: "Liferay DXP cluster update by rolling restart, blue-green or all nodes down",
            parameters: settings::parameters(),
            capabilities: vec![
                Cap::Dir("{artifacts}", Access::Read).capability(),
                Cap::Dir("{root}", Access::Read).capability(),
                Cap::Dir("{lb-dir}", Access::Read).capability(),
                Cap::Dir("{patching-dir?}", Access::Read).capability(),
                Capability::Http("{url}".into()),
                Capability::Exec("{db-client?}".into()),
                Capability::Exec("{java?}".into()),
                Capability::Exec("{patching-dir?}/patching-tool.sh".into()),
                Capability::Secret("{manager-password-secret?}".into()),
            ],
            leases: vec![
                "{root}/.cutover-lease".into(),
                "{lb-dir}/.cutover-lease".into(),
            ],
        }
    }

    const STEPS: &'static [StepDef] = &[
        StepDef {
            name: "stop-all",
            about: "all-down: stop every node",
            kind: StepKind::FleetPrepare,
            run: fleet::stop_all,
            undo: Some(fleet::start_all),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 600,
            caps: SCRIPTS,
        },
        StepDef {
            name: "backup",
            about: "all-down: back the database up (its undo restores it)",
            kind: StepKind::FleetPrepare,
            run: fleet::backup,
            undo: Some(fleet::restore),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 3600,
            caps: &[Cap::Exec("{db-backup?}"), Cap::Exec("{db-restore?}")],
        },
        StepDef {
            name: "drain",
            about: "rolling: take the node out of the load balancer and let its requests finish",
            run: node::drain,
            undo: Some(undo_drain),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 300,
            caps: BALANCER,
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop",
            about: "stop the node (bin/stop, graceful)",
            run: node::stop,
            undo: Some(node::undo_stop),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 300,
            caps: SCRIPTS,
            ..StepDef::TARGET
        },
        StepDef {
            name: "deploy",
            about: "put the module and the properties in place",
            run: node::deploy,
            undo: Some(node::undeploy),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 120,
            caps: &[Cap::Dir("{root}", Access::ReadWrite)],
            ..StepDef::TARGET
        },
        StepDef {
            name: "patch",
            about: "install the patch with the Patching Tool (node stopped)",
            run: patching::patch,
            undo: Some(patching::unpatch),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 900,
            caps: &[Cap::Dir("{patching-dir?}/patches", Access::ReadWrite)],
            ..StepDef::TARGET
        },
        StepDef {
            name: "start",
            about: "start the node (bin/start)",
            run: node::start,
            undo: Some(node::undo_start),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 600,
            caps: START_SCRIPTS,
            ..StepDef::TARGET
        },
        StepDef {
            name: "health",
            about: "wait until the node is healthy with the new module",
            run: node::health,
            idempotent: true,
            timeout_s: 600,
            ..StepDef::TARGET
        },
        StepDef {
            name: "undrain",
            about: "rolling: put the node back into the load balancer",
            run: node::undrain,
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
            run: fleet::switch,
            undo: Some(fleet::switch_back),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 60,
            caps: BALANCER,
            ..StepDef::FLEET
        },
    ];

    /// A rolling restart takes one node out at a time (Liferay's cluster-update guide: "nodes
    /// are shut down and updated one at a time"), whatever the strategy's group size. With
    /// every node down, nodes also start one at a time: the first runs the data upgrade
    /// (Liferay's Docker image has a startup lock "to avoid two or more Liferay DXP nodes
    /// starting at the same time").
    fn constraints(targets: Vec<Target>, params: Vec<Pair>) -> Result<Vec<Constraint>> {
        let name = match settings::mode(&params)? {
            _ if targets.len() < 2 => return Ok(Vec::new()),
            settings::Mode::BlueGreen => return Ok(Vec::new()),
            settings::Mode::Rolling => "rolling restart: one node at a time",
            settings::Mode::AllDown => "all nodes down: one node starts at a time",
        };
        Ok(vec![Constraint {
            name: name.into(),
            kind: ConstraintKind::MaxTogether(MaxTogether {
                members: targets.into_iter().map(|t| t.id).collect(),
                max: 1,
            }),
        }])
    }

    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        Ok(preflight::findings(&targets, &ctx.params, &ctx.strategy))
    }
}

cutover_sdk::export_adapter!(Liferay);
