//! From a strategy's plan to the stages the engine runs, verified against the targets, the
//! adapter's steps and its constraints. A plan that breaks any rule never runs.

use crate::plugin::model::{
    Constraint, ConstraintKind, Description, Gate, MaxTogether, Phase, Plan, Scope, Stage, Target,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

mod show;
use show::abbreviate;

/// One stage the engine runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum XStage {
    /// A fleet-scope step of the adapter.
    Fleet { step: String },
    /// Targets running the adapter's target steps of one phase.
    Wave {
        name: String,
        targets: Vec<String>,
        /// Finalize-phase steps (after every wave) instead of rollout-phase ones.
        finalize: bool,
        /// Position among the strategy's waves (none for the finalize wave).
        index: Option<u32>,
    },
    /// Wait for `cutover approve`.
    Approval { message: String },
    /// Wait this long.
    Soak { seconds: u64 },
    /// Measure with the spec's `[[analysis]]` of this name: `count` measurements `interval`
    /// apart (seconds; both kept here for plans and durations).
    Analysis {
        name: String,
        count: u32,
        interval: u64,
    },
}

/// The stages of a rollout, as journaled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct XPlan {
    pub stages: Vec<XStage>,
    /// Number of strategy waves.
    pub waves: u32,
    /// Targets the strategy leaves untouched (blue-green's standby half).
    #[serde(default)]
    pub standby: Vec<String>,
    /// The adapter's steps as declared when the plan was made: what a target's state is
    /// derived from, by any later reader of the journal.
    #[serde(default)]
    pub steps: Vec<StepInfo>,
}

/// What the journal keeps of an adapter step's declaration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StepInfo {
    pub name: String,
    /// A target step (else a fleet step).
    pub target: bool,
    /// A target step of the rollout phase (else of finalize, or a fleet step).
    pub rollout: bool,
    pub undoable: bool,
    pub idempotent: bool,
    pub undo_idempotent: bool,
}

impl StepInfo {
    /// The declaration of step `name` among `steps`.
    pub fn find<'a>(steps: &'a [StepInfo], name: &str) -> Option<&'a StepInfo> {
        steps.iter().find(|s| s.name == name)
    }

    /// Whether step `name` is declared undoable.
    pub fn undoable(steps: &[StepInfo], name: &str) -> bool {
        Self::find(steps, name).is_some_and(|s| s.undoable)
    }

    /// The declarations of `desc`'s steps.
    pub fn of(desc: &Description) -> Vec<StepInfo> {
        desc.steps
            .iter()
            .map(|s| StepInfo {
                name: s.name.clone(),
                target: s.scope() == Scope::Target,
                rollout: s.scope() == Scope::Target && s.phase() == Phase::Rollout,
                undoable: s.undoable,
                idempotent: s.idempotent,
                undo_idempotent: s.undo_idempotent,
            })
            .collect()
    }
}

/// Check the strategy's plan and expand it with the adapter's fleet and finalize steps.
pub fn expand(
    plan: &Plan,
    desc: &Description,
    targets: &[Target],
    constraints: &[Constraint],
) -> Result<XPlan, String> {
    let known: BTreeSet<&str> = targets.iter().map(|t| t.id.as_str()).collect();
    let fleet_steps = |phase: Phase| -> Vec<String> {
        desc.steps
            .iter()
            .filter(|s| s.scope() == Scope::Fleet && s.phase() == phase)
            .map(|s| s.name.clone())
            .collect()
    };
    let switch_steps = fleet_steps(Phase::Switch);

    let mut stages: Vec<XStage> = fleet_steps(Phase::Prepare)
        .into_iter()
        .map(|step| XStage::Fleet { step })
        .collect();
    let mut wave_of: BTreeMap<&str, (usize, String)> = BTreeMap::new();
    let mut named_switch = BTreeSet::new();
    let mut waves = 0u32;
    for (i, stage) in plan.stages.iter().enumerate() {
        match stage {
            Stage::Wave(w) => {
                if w.targets.is_empty() {
                    continue;
                }
                for t in &w.targets {
                    if !known.contains(t.as_str()) {
                        return Err(format!(
                            "stage {} ({}) names target `{t}`, which is not in the spec",
                            i + 1,
                            w.name
                        ));
                    }
                    if let Some((_, other)) = wave_of.get(t.as_str()) {
                        return Err(format!(
                            "target `{t}` is in two waves ({other} and {}): every target must be updated exactly once",
                            w.name
                        ));
                    }
                    wave_of.insert(t.as_str(), (waves as usize, w.name.clone()));
                }
                stages.push(XStage::Wave {
                    name: w.name.clone(),
                    targets: w.targets.clone(),
                    finalize: false,
                    index: Some(waves),
                });
                waves += 1;
            }
            Stage::FleetStep(name) => {
                if !switch_steps.contains(name) {
                    return Err(format!(
                        "stage {} asks for fleet step `{name}`, which the adapter {} does not have (its switch steps: {})",
                        i + 1,
                        desc.name,
                        if switch_steps.is_empty() { "none".into() } else { switch_steps.join(", ") }
                    ));
                }
                named_switch.insert(name.clone());
                stages.push(XStage::Fleet { step: name.clone() });
            }
            Stage::Gate(Gate::Approval(m)) => stages.push(XStage::Approval { message: m.clone() }),
            Stage::Gate(Gate::Soak(s)) => {
                if *s > MAX_SOAK_SECONDS {
                    return Err(format!(
                        "stage {} soaks for {s} s, longer than any gate may wait ({MAX_SOAK_SECONDS} s, 30 days); check the strategy's soak parameter",
                        i + 1
                    ));
                }
                stages.push(XStage::Soak { seconds: *s })
            }
        }
    }
    let mut standby = BTreeSet::new();
    for t in &plan.standby {
        if !known.contains(t.as_str()) {
            return Err(format!(
                "the plan keeps `{t}` on standby, but it is not in the spec"
            ));
        }
        if let Some((_, w)) = wave_of.get(t.as_str()) {
            return Err(format!(
                "target `{t}` is both on standby and in wave {w}: a standby target is left as it is"
            ));
        }
        standby.insert(t.as_str());
    }
    let missing: Vec<&str> = known
        .iter()
        .filter(|t| !wave_of.contains_key(*t) && !standby.contains(*t))
        .copied()
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "the plan leaves out {} target(s): {}; every target must be in exactly one wave (or on standby)",
            missing.len(),
            abbreviate(&missing.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        ));
    }
    check_constraints(&stages, constraints, &wave_of)?;

    for step in switch_steps {
        if !named_switch.contains(&step) {
            stages.push(XStage::Fleet { step });
        }
    }
    stages.extend(
        fleet_steps(Phase::Finalize)
            .into_iter()
            .map(|step| XStage::Fleet { step }),
    );
    let has_target_finalize = desc
        .steps
        .iter()
        .any(|s| s.scope() == Scope::Target && s.phase() == Phase::Finalize);
    if has_target_finalize {
        stages.push(XStage::Wave {
            name: "finalize".into(),
            targets: targets
                .iter()
                .filter(|t| !standby.contains(t.id.as_str()))
                .map(|t| t.id.clone())
                .collect(),
            finalize: true,
            index: None,
        });
    }
    Ok(XPlan {
        stages,
        waves,
        standby: plan.standby.clone(),
        steps: StepInfo::of(desc),
    })
}

/// Check constraints against the waves; a violation names the constraint and the stage.
pub fn check_constraints(
    stages: &[XStage],
    constraints: &[Constraint],
    wave_of: &BTreeMap<&str, (usize, String)>,
) -> Result<(), String> {
    for c in constraints {
        match &c.kind {
            ConstraintKind::MaxTogether(m) => {
                for (i, s) in stages.iter().enumerate() {
                    // The finalize wave runs after every update: nothing is down together.
                    if let XStage::Wave {
                        name,
                        targets,
                        finalize: false,
                        ..
                    } = s
                    {
                        max_together(c, m, i, name, targets)?;
                    }
                }
            }
            ConstraintKind::Order(o) => {
                for f in &o.first {
                    for t in &o.then {
                        if let (Some((fw, fname)), Some((tw, tname))) =
                            (wave_of.get(f.as_str()), wave_of.get(t.as_str()))
                        {
                            if fw >= tw {
                                return Err(format!(
                                    "constraint `{}` is broken: `{f}` (wave {fname}) must be updated in an earlier wave than `{t}` (wave {tname})",
                                    c.name
                                ));
                            }
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A wave (stage number `stage`, from 0) takes no more members of `m` than it allows.
fn max_together(
    c: &Constraint,
    m: &MaxTogether,
    stage: usize,
    name: &str,
    targets: &[String],
) -> Result<(), String> {
    let together: Vec<&str> = targets
        .iter()
        .filter(|t| m.members.contains(t))
        .map(String::as_str)
        .collect();
    if together.len() as u32 > m.max {
        return Err(format!(
            "constraint `{}` is broken by stage {} (wave {name}): it updates {} of [{}] at once ({}), at most {} may be down together",
            c.name,
            stage + 1,
            together.len(),
            m.members.join(", "),
            together.join(", "),
            m.max
        ));
    }
    Ok(())
}

/// Check a journaled plan against the adapter's constraints (again, e.g. on resume).
pub fn recheck(plan: &XPlan, constraints: &[Constraint]) -> Result<(), String> {
    let mut wave_of = BTreeMap::new();
    for (i, s) in plan.stages.iter().enumerate() {
        if let XStage::Wave {
            name,
            targets,
            finalize: false,
            ..
        } = s
        {
            for t in targets {
                wave_of.insert(t.as_str(), (i, name.clone()));
            }
        }
    }
    check_constraints(&plan.stages, constraints, &wave_of)
}

/// Check one wave as it is about to start: no group loses more members at once than it
/// allows, and no target runs while one that must come first has not been started
/// (`pending` are the targets not started yet; this wave's targets are among them).
pub fn check_wave(
    stage: usize,
    name: &str,
    targets: &[String],
    constraints: &[Constraint],
    pending: &BTreeSet<String>,
) -> Result<(), String> {
    for c in constraints {
        match &c.kind {
            ConstraintKind::MaxTogether(m) => max_together(c, m, stage, name, targets)?,
            ConstraintKind::Order(o) => {
                let now: Vec<&String> = targets.iter().filter(|t| o.then.contains(t)).collect();
                let before: Vec<&String> =
                    o.first.iter().filter(|f| pending.contains(*f)).collect();
                if let (Some(t), Some(f)) = (now.first(), before.first()) {
                    return Err(format!(
                        "constraint `{}` is broken by stage {} (wave {name}): `{t}` would be updated while `{f}`, which must come first, has not been",
                        c.name,
                        stage + 1
                    ));
                }
            }
        }
    }
    Ok(())
}

/// The longest soak gate a plan may hold.
pub const MAX_SOAK_SECONDS: u64 = 30 * 24 * 3600;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::model::{MaxTogether, Order, Step, Wave};

    fn targets(n: usize) -> Vec<Target> {
        (1..=n)
            .map(|i| Target {
                id: format!("n{i}"),
                host: "local".into(),
                labels: vec![],
            })
            .collect()
    }

    fn step(name: &str, scope: Scope, phase: Phase) -> Step {
        Step {
            name: name.into(),
            description: String::new(),
            kind: crate::plugin::model::StepKind::of(scope, phase).expect("a step kind"),
            undoable: true,
            idempotent: false,
            undo_idempotent: false,
            default_timeout_s: 10,
            capabilities: Vec::new(),
        }
    }

    fn desc(steps: Vec<Step>) -> Description {
        Description {
            leases: vec![],
            name: "a".into(),
            version: "1".into(),
            summary: String::new(),
            parameters: vec![],
            capabilities: vec![],
            steps,
        }
    }

    fn wave(name: &str, ids: &[&str]) -> Stage {
        Stage::Wave(Wave {
            name: name.into(),
            targets: ids.iter().map(|s| s.to_string()).collect(),
        })
    }

    #[test]
    fn every_target_exactly_once() {
        let d = desc(vec![step("s", Scope::Target, Phase::Rollout)]);
        let plan = Plan {
            stages: vec![wave("1", &["n1", "n2"]), wave("2", &["n2", "n3"])],
            standby: vec![],
        };
        let e = expand(&plan, &d, &targets(3), &[]).unwrap_err();
        assert!(e.contains("`n2` is in two waves"), "{e}");
        let plan = Plan {
            stages: vec![wave("1", &["n1"])],
            standby: vec![],
        };
        let e = expand(&plan, &d, &targets(3), &[]).unwrap_err();
        assert!(e.contains("leaves out 2 target(s): n2, n3"), "{e}");
        let plan = Plan {
            stages: vec![wave("1", &["n1", "n9"])],
            standby: vec![],
        };
        let e = expand(&plan, &d, &targets(1), &[]).unwrap_err();
        assert!(e.contains("`n9`, which is not in the spec"), "{e}");
    }

    #[test]
    fn the_finalize_wave_does_not_count_against_max_together() {
        let d = desc(vec![
            step("s", Scope::Target, Phase::Rollout),
            step("f", Scope::Target, Phase::Finalize),
        ]);
        let group = Constraint {
            name: "group".into(),
            kind: ConstraintKind::MaxTogether(MaxTogether {
                members: vec!["n1".into(), "n2".into()],
                max: 1,
            }),
        };
        let plan = Plan {
            stages: vec![wave("a", &["n1"]), wave("b", &["n2"])],
            standby: vec![],
        };
        let x = expand(&plan, &d, &targets(2), std::slice::from_ref(&group)).unwrap();
        assert!(x.stages.iter().any(
            |s| matches!(s, XStage::Wave { finalize: true, targets, .. } if targets.len() == 2)
        ));
        recheck(&x, &[group]).unwrap();
    }

    #[test]
    fn standby_targets_are_left_out_on_purpose_only() {
        let d = desc(vec![step("s", Scope::Target, Phase::Rollout)]);
        let plan = Plan {
            stages: vec![wave("green", &["n2"])],
            standby: vec!["n1".into()],
        };
        let x = expand(&plan, &d, &targets(2), &[]).unwrap();
        assert_eq!(x.standby, vec!["n1".to_string()]);
        let both = Plan {
            stages: vec![wave("green", &["n1", "n2"])],
            standby: vec!["n1".into()],
        };
        let e = expand(&both, &d, &targets(2), &[]).unwrap_err();
        assert!(
            e.contains("`n1` is both on standby and in wave green"),
            "{e}"
        );
        let unknown = Plan {
            stages: vec![wave("green", &["n1", "n2"])],
            standby: vec!["n7".into()],
        };
        let e = expand(&unknown, &d, &targets(2), &[]).unwrap_err();
        assert!(
            e.contains("keeps `n7` on standby, but it is not in the spec"),
            "{e}"
        );
    }

    #[test]
    fn constraints_are_enforced_whatever_the_strategy() {
        let d = desc(vec![step("s", Scope::Target, Phase::Rollout)]);
        let group = Constraint {
            name: "master group m1 keeps serving".into(),
            kind: ConstraintKind::MaxTogether(MaxTogether {
                members: vec!["n1".into(), "n2".into(), "n3".into()],
                max: 2,
            }),
        };
        let plan = Plan {
            stages: vec![wave("all", &["n1", "n2", "n3"])],
            standby: vec![],
        };
        let e = expand(&plan, &d, &targets(3), std::slice::from_ref(&group)).unwrap_err();
        assert!(
            e.contains("constraint `master group m1 keeps serving` is broken by stage 1"),
            "{e}"
        );
        let order = Constraint {
            name: "slaves first".into(),
            kind: ConstraintKind::Order(Order {
                first: vec!["n2".into()],
                then: vec!["n1".into()],
            }),
        };
        let plan = Plan {
            stages: vec![wave("a", &["n1", "n3"]), wave("b", &["n2"])],
            standby: vec![],
        };
        let e = expand(&plan, &d, &targets(3), std::slice::from_ref(&order)).unwrap_err();
        assert!(e.contains("constraint `slaves first` is broken"), "{e}");
        let plan = Plan {
            stages: vec![wave("a", &["n2", "n3"]), wave("b", &["n1"])],
            standby: vec![],
        };
        let x = expand(&plan, &d, &targets(3), &[order.clone(), group.clone()]).unwrap();
        // Checked again on resume and as each wave starts.
        recheck(&x, &[order.clone(), group.clone()]).unwrap();
        let e = recheck(
            &x,
            &[Constraint {
                name: "n1 before n2".into(),
                kind: ConstraintKind::Order(Order {
                    first: vec!["n1".into()],
                    then: vec!["n2".into()],
                }),
            }],
        )
        .unwrap_err();
        assert!(e.contains("constraint `n1 before n2` is broken"), "{e}");
        let ids = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let pending: BTreeSet<String> = ids(&["n1", "n2", "n3"]).into_iter().collect();
        let e = check_wave(
            0,
            "b",
            &ids(&["n1"]),
            std::slice::from_ref(&order),
            &pending,
        )
        .unwrap_err();
        assert!(
            e.contains("stage 1 (wave b): `n1` would be updated while `n2`, which must come first, has not been"),
            "{e}"
        );
        let pending: BTreeSet<String> = ids(&["n1"]).into_iter().collect();
        check_wave(1, "b", &ids(&["n1"]), &[order, group.clone()], &pending).unwrap();
        let e = check_wave(0, "a", &ids(&["n1", "n2", "n3"]), &[group], &pending).unwrap_err();
        assert!(e.contains("updates 3 of [n1, n2, n3] at once"), "{e}");
    }

    #[test]
    fn fleet_and_finalize_steps_are_placed_by_phase() {
        let d = desc(vec![
            step("suspend", Scope::Fleet, Phase::Prepare),
            step("install", Scope::Target, Phase::Rollout),
            step("switch", Scope::Fleet, Phase::Switch),
            step("cleanup", Scope::Target, Phase::Finalize),
        ]);
        let plan = Plan {
            stages: vec![wave("1", &["n1"]), wave("2", &["n2"])],
            standby: vec![],
        };
        let x = expand(&plan, &d, &targets(2), &[]).unwrap();
        let kinds: Vec<String> = x.stages.iter().map(|s| s.describe()).collect();
        assert_eq!(kinds[0], "fleet step `suspend`");
        assert!(kinds[1].starts_with("wave 1"));
        assert!(kinds[2].starts_with("wave 2"));
        assert_eq!(kinds[3], "fleet step `switch`");
        assert!(kinds[4].starts_with("finalize wave"));
        assert_eq!(x.waves, 2);
        let bad = Plan {
            stages: vec![wave("1", &["n1", "n2"]), Stage::FleetStep("flip".into())],
            standby: vec![],
        };
        let e = expand(&bad, &d, &targets(2), &[]).unwrap_err();
        assert!(e.contains("fleet step `flip`"), "{e}");
    }
}
