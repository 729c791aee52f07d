//! The strategy checks: over generated fleets (sizes, labels and constraints varied), every
//! plan must place each target in exactly one wave (or on standby) and respect every
//! constraint, as the host verifies before a rollout; a refusal is allowed, a fault is not.
//! `decide` must answer for clean and failed waves.

use super::Report;
use crate::engine::plan;
use crate::plugin::model::{
    Constraint, ConstraintKind, Description, MaxTogether, Order, Pair, Stage, Step, StepKind,
    Target, WaveReport,
};
use crate::plugin::{CallEnv, NullSink, StrategyPlugin};
use std::sync::Arc;
use std::time::Duration;

/// Fleet sizes the plans are checked on.
const SIZES: [usize; 8] = [1, 2, 3, 5, 8, 13, 40, 200];

/// Check the strategy in `s` with the spec's strategy parameters `params`.
pub async fn strategy(s: &StrategyPlugin, params: &[Pair], report: &mut Report) {
    let env = || CallEnv::bare(&s.label, Duration::from_secs(10), Arc::new(NullSink));
    match s.info(env()).await {
        Ok(i) if !i.name.is_empty() && crate::plugin::validate::semver(&i.version) => {
            report.pass(format!("info: {}@{}: {}", i.name, i.version, i.summary))
        }
        Ok(i) => report.fail(format!(
            "info: name `{}` and version `{}` must be non-empty and a semantic version",
            i.name, i.version
        )),
        Err(e) => {
            report.fail(format!("info: {e}"));
            return;
        }
    }
    let (mut planned, mut refused, mut first_refusal) = (0, 0, None);
    for &n in &SIZES {
        for (shape, constraints) in shapes(n) {
            let targets = fleet(n);
            let what = format!("plan for {n} targets ({shape})");
            let plan = match s.plan(env(), &targets, &constraints, params).await {
                Ok(Ok(p)) => p,
                Ok(Err(e)) => {
                    refused += 1;
                    first_refusal.get_or_insert(format!("{what}: {}", e.message));
                    continue;
                }
                Err(f) => {
                    report.fail(format!("{what}: {f}"));
                    continue;
                }
            };
            match plan::expand(&plan, &described(&plan), &targets, &constraints) {
                Ok(_) => planned += 1,
                Err(e) => report.fail(format!("{what}: the host would refuse it: {e}")),
            }
        }
    }
    report.pass(format!(
        "plans: {planned} valid over generated fleets of {} to {} targets",
        SIZES[0],
        SIZES[SIZES.len() - 1]
    ));
    if let Some(r) = first_refusal {
        report.note(format!("{refused} fleets refused, e.g. {r}"));
    }
    for failed in [0u32, 1, 3] {
        let r = WaveReport {
            wave_index: 0,
            wave_count: 3,
            succeeded: (failed..3).map(|i| format!("t{i:03}")).collect(),
            failed: (0..failed).map(|i| format!("t{i:03}")).collect(),
            failed_total: failed,
            target_count: 9,
        };
        match s.decide(env(), &r, params).await {
            Ok(d) => report.pass(format!(
                "decide after a wave with {failed} of 3 failed: {}",
                crate::plugin::model::decision_name(d.kind)
            )),
            Err(e) => report.fail(format!("decide after a wave with {failed} failed: {e}")),
        }
    }
}

/// `n` targets with the labels strategies group by: role, zone, color, parent.
fn fleet(n: usize) -> Vec<Target> {
    (0..n)
        .map(|i| {
            let label = |k: &str, v: String| Pair {
                key: k.into(),
                value: v,
            };
            Target {
                id: format!("t{i:03}"),
                host: "local".into(),
                labels: vec![
                    label("role", if i % 4 == 0 { "db" } else { "web" }.into()),
                    label("zone", format!("zone-{}", i % 3)),
                    label("color", if i % 2 == 0 { "green" } else { "blue" }.into()),
                    label("parent", format!("p{}", i / 5)),
                ],
            }
        })
        .collect()
}

/// Constraint sets for a fleet of `n`: none, at most one per zone together, and databases
/// before web servers.
fn shapes(n: usize) -> Vec<(&'static str, Vec<Constraint>)> {
    let ids = |keep: &dyn Fn(usize) -> bool| -> Vec<String> {
        (0..n)
            .filter(|i| keep(*i))
            .map(|i| format!("t{i:03}"))
            .collect()
    };
    let zones = (0..3)
        .map(|z| Constraint {
            name: format!("zone-{z} keeps serving"),
            kind: ConstraintKind::MaxTogether(MaxTogether {
                members: ids(&|i| i % 3 == z),
                max: 1.max((n / 3 / 2) as u32),
            }),
        })
        .filter(|c| matches!(&c.kind, ConstraintKind::MaxTogether(m) if !m.members.is_empty()))
        .collect();
    let order = vec![Constraint {
        name: "databases first".into(),
        kind: ConstraintKind::Order(Order {
            first: ids(&|i| i % 4 == 0),
            then: ids(&|i| i % 4 != 0),
        }),
    }];
    vec![
        ("no constraints", vec![]),
        ("zones", zones),
        ("order", order),
    ]
}

/// A description with one target step and the fleet steps the plan names.
fn described(p: &crate::plugin::model::Plan) -> Description {
    let step = |name: &str, kind| Step {
        name: name.into(),
        description: String::new(),
        kind,
        undoable: true,
        idempotent: true,
        undo_idempotent: true,
        default_timeout_s: 60,
        capabilities: vec![],
    };
    let mut steps = vec![step("upgrade", StepKind::TargetRollout)];
    for s in &p.stages {
        if let Stage::FleetStep(n) = s {
            steps.push(step(n, StepKind::FleetSwitch));
        }
    }
    Description {
        name: "conformance".into(),
        version: "1.0.0".into(),
        summary: String::new(),
        parameters: vec![],
        capabilities: vec![],
        steps,
        leases: vec![],
    }
}
