//! How long a rollout takes: each step's time budget, the worst case (every step using its
//! whole budget) and the expected duration from the adapter's estimates (contract 1.2).

use super::plan::{XPlan, XStage};
use crate::plugin::model::{Description, Estimate, Phase, Scope};
use std::collections::BTreeMap;
use std::time::Duration;

/// A step's time budget: the operator's `[adapter.timeouts]` entry, else the adapter's
/// declared default (300 s when it declares none) capped at `[limits] max-step-timeout`.
pub fn step_budget(
    desc: &Description,
    timeouts: &BTreeMap<String, Duration>,
    max_step: Duration,
    name: &str,
) -> Duration {
    timeouts.get(name).copied().unwrap_or_else(|| {
        let declared = desc
            .steps
            .iter()
            .find(|s| s.name == name)
            .map(|s| s.default_timeout_s)
            .unwrap_or(0);
        let secs = if declared == 0 { 300 } else { declared as u64 };
        Duration::from_secs(secs).min(max_step)
    })
}

/// A rollout's expected and worst-case durations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durations {
    /// From the adapter's estimates; steps it did not estimate count as nothing (see
    /// `unestimated`).
    pub expected: Duration,
    /// Every step taking its estimated worst, capped at its budget (its whole budget when
    /// not estimated).
    pub worst: Duration,
    /// Steps the plan runs that the adapter gave no estimate for.
    pub unestimated: Vec<String>,
    /// Approval gates: the plan waits for a person there, which neither figure includes.
    pub approvals: usize,
}

/// The durations of `plan`: per wave, the per-target steps in rounds of `concurrency`
/// targets (targets in a wave run in parallel), plus fleet steps and soaks.
pub fn durations(
    plan: &XPlan,
    desc: &Description,
    estimate: &Estimate,
    timeouts: &BTreeMap<String, Duration>,
    max_step: Duration,
    concurrency: usize,
) -> Durations {
    let budget = |name: &str| step_budget(desc, timeouts, max_step, name).as_secs();
    let known = |name: &str| estimate.steps.iter().find(|e| e.step == name);
    // (expected, worst) of one step.
    let step = |name: &str| -> (u64, u64) {
        let b = budget(name);
        match known(name) {
            Some(e) => (
                (e.expected_s as u64).min(b),
                e.worst_s.map_or(b, |w| (w as u64).min(b)),
            ),
            None => (0, b),
        }
    };
    let per_target = |finalize: bool| -> (u64, u64) {
        let phase = if finalize {
            Phase::Finalize
        } else {
            Phase::Rollout
        };
        desc.steps
            .iter()
            .filter(|s| s.scope() == Scope::Target && s.phase() == phase)
            .map(|s| step(&s.name))
            .fold((0, 0), |(e, w), (a, b)| {
                (e.saturating_add(a), w.saturating_add(b))
            })
    };
    let mut used = Vec::new();
    let (mut expected, mut worst, mut approvals) = (0u64, 0u64, 0);
    for s in &plan.stages {
        let (e, w) = match s {
            XStage::Fleet { step: name } => {
                used.push(name.clone());
                step(name)
            }
            XStage::Wave {
                targets, finalize, ..
            } => {
                let phase = if *finalize {
                    Phase::Finalize
                } else {
                    Phase::Rollout
                };
                used.extend(
                    desc.steps
                        .iter()
                        .filter(|s| s.scope() == Scope::Target && s.phase() == phase)
                        .map(|s| s.name.clone()),
                );
                let rounds = targets.len().div_ceil(concurrency.max(1)) as u64;
                let (e, w) = per_target(*finalize);
                (rounds.saturating_mul(e), rounds.saturating_mul(w))
            }
            XStage::Soak { seconds } => (*seconds, *seconds),
            XStage::Analysis {
                count, interval, ..
            } => {
                let t = u64::from(count.saturating_sub(1)) * interval;
                (t, t)
            }
            XStage::Approval { .. } => {
                approvals += 1;
                (0, 0)
            }
        };
        expected = expected.saturating_add(e);
        worst = worst.saturating_add(w);
    }
    let mut unestimated: Vec<String> = used.into_iter().filter(|n| known(n).is_none()).collect();
    unestimated.sort();
    unestimated.dedup();
    Durations {
        expected: Duration::from_secs(expected),
        worst: Duration::from_secs(worst),
        unestimated,
        approvals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::model::{Step, StepEstimate, StepKind};

    fn step(name: &str, kind: StepKind, timeout: u32) -> Step {
        Step {
            name: name.into(),
            description: String::new(),
            kind,
            undoable: false,
            idempotent: true,
            undo_idempotent: false,
            default_timeout_s: timeout,
            capabilities: vec![],
        }
    }

    #[test]
    fn expected_and_worst_follow_the_estimates_the_waves_and_the_gates() {
        let desc = Description {
            name: "a".into(),
            version: "1.0.0".into(),
            summary: String::new(),
            parameters: vec![],
            capabilities: vec![],
            steps: vec![
                step("drain", StepKind::TargetRollout, 600),
                step("restart", StepKind::TargetRollout, 1200),
                step("switch", StepKind::FleetSwitch, 60),
            ],
            leases: vec![],
        };
        let wave = |ids: &[&str], i: u32| XStage::Wave {
            name: format!("group {}", i + 1),
            targets: ids.iter().map(|s| s.to_string()).collect(),
            finalize: false,
            index: Some(i),
        };
        let plan = XPlan {
            stages: vec![
                wave(&["a", "b", "c"], 0),
                XStage::Fleet {
                    step: "switch".into(),
                },
                XStage::Soak { seconds: 30 },
                XStage::Approval {
                    message: "look".into(),
                },
                wave(&["d", "e", "f"], 1),
            ],
            waves: 2,
            standby: vec![],
            steps: vec![],
        };
        let estimate = Estimate {
            steps: vec![
                StepEstimate {
                    step: "drain".into(),
                    expected_s: 330,
                    worst_s: Some(5000), // more than its budget: capped at 600
                },
                StepEstimate {
                    step: "restart".into(),
                    expected_s: 600,
                    worst_s: None,
                },
            ],
            notes: vec![],
        };
        let mut timeouts = BTreeMap::new();
        timeouts.insert("restart".to_string(), Duration::from_secs(900));
        let d = durations(
            &plan,
            &desc,
            &estimate,
            &timeouts,
            Duration::from_secs(3600),
            3,
        );
        // Two waves of one round each (3 targets, 3 at a time), the soak; the switch has no
        // estimate and counts in the worst case only.
        assert_eq!(d.expected, Duration::from_secs(2 * (330 + 600) + 30));
        assert_eq!(d.worst, Duration::from_secs(2 * (600 + 900) + 60 + 30));
        assert_eq!(d.unestimated, vec!["switch".to_string()]);
        assert_eq!(d.approvals, 1);
        // One at a time: three rounds per wave.
        let d = durations(
            &plan,
            &desc,
            &estimate,
            &timeouts,
            Duration::from_secs(3600),
            1,
        );
        assert_eq!(d.expected, Duration::from_secs(6 * (330 + 600) + 30));
    }
}
