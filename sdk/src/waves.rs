//! Helpers strategies share: group sizes, waves that respect the adapter's constraints, and
//! the failure policy after a wave.

use crate::{
    Constraint, ConstraintKind, Decision, DecisionKind, Error, Pair, Result, Stage, Wave,
    WaveReport,
};

/// Find `key` in params.
pub fn param<'a>(params: &'a [Pair], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// A plugin error with a hint.
pub fn error(message: impl Into<String>, hint: &str) -> Error {
    Error::new(message).hint(hint)
}

/// Parse a group size: a count ("4") or a share of the fleet ("25%"), at least 1.
pub fn group_size(value: &str, fleet: usize) -> Result<usize> {
    let v = value.trim();
    let size = if let Some(p) = v.strip_suffix('%') {
        let pct: f64 = p.trim().parse().map_err(|_| bad_size(v))?;
        if !(pct > 0.0 && pct <= 100.0) {
            return Err(bad_size(v));
        }
        ((fleet as f64) * pct / 100.0).ceil() as usize
    } else {
        let n: usize = v.parse().map_err(|_| bad_size(v))?;
        if n == 0 {
            return Err(bad_size(v));
        }
        n
    };
    Ok(size.max(1))
}

fn bad_size(v: &str) -> Error {
    error(
        format!("group-size `{v}` is not a count or a percentage"),
        "write e.g. group-size = 4 or group-size = \"25%\" under [strategy.params]",
    )
}

/// Order `ids` into waves of at most `size`, respecting the constraints: targets that must
/// come first are in earlier waves, and no wave holds more members of a group than allowed.
pub fn build_waves(
    ids: &[String],
    size: usize,
    constraints: &[Constraint],
) -> Result<Vec<Vec<String>>> {
    // Level of each target: 1 + the level of anything that must precede it.
    let mut level = vec![0usize; ids.len()];
    let index = |id: &str| ids.iter().position(|x| x == id);
    for _ in 0..ids.len() {
        let mut changed = false;
        for c in constraints {
            if let ConstraintKind::Order(o) = &c.kind {
                for f in &o.first {
                    for t in &o.then {
                        if let (Some(fi), Some(ti)) = (index(f), index(t)) {
                            if level[ti] < level[fi] + 1 {
                                level[ti] = level[fi] + 1;
                                changed = true;
                            }
                        }
                    }
                }
            }
        }
        if !changed {
            break;
        }
        if level.iter().any(|l| *l > ids.len()) {
            return Err(error(
                "the order constraints form a cycle",
                "check the adapter's constraints",
            ));
        }
    }
    let max_level = level.iter().copied().max().unwrap_or(0);
    let mut waves = Vec::new();
    for l in 0..=max_level {
        let mut pending: Vec<&String> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| level[*i] == l)
            .map(|(_, id)| id)
            .collect();
        while !pending.is_empty() {
            let mut wave: Vec<String> = Vec::new();
            pending.retain(|id| {
                if wave.len() >= size {
                    return true;
                }
                let fits = constraints.iter().all(|c| match &c.kind {
                    ConstraintKind::MaxTogether(m) => {
                        !m.members.contains(id)
                            || (wave.iter().filter(|w| m.members.contains(w)).count() as u32)
                                < m.max
                    }
                    ConstraintKind::Order(_) => true,
                });
                if fits {
                    wave.push((*id).clone());
                }
                !fits
            });
            if wave.is_empty() {
                return Err(error(
                    format!("no wave can hold `{}` under the constraints", pending[0]),
                    "a constraint allows 0 members at once",
                ));
            }
            waves.push(wave);
        }
    }
    Ok(waves)
}

/// The usual strategy plan: check the failure policy, then waves of at most `size` targets
/// respecting the constraints, named "<prefix> i/n".
pub fn plan(
    targets: Vec<crate::Target>,
    constraints: &[Constraint],
    params: &[Pair],
    size: usize,
    prefix: &str,
) -> Result<crate::Plan> {
    check_policy(params)?;
    let ids: Vec<String> = targets.into_iter().map(|t| t.id).collect();
    let waves = build_waves(&ids, size, constraints)?;
    Ok(crate::Plan {
        stages: stages(prefix, waves),
        standby: Vec::new(),
    })
}

/// Add gates to a plan's stages: an approval after the first wave (`approve-first-group =
/// true`) and a soak of `soak-seconds` between waves.
pub fn with_gates(stages: Vec<Stage>, params: &[Pair]) -> Result<Vec<Stage>> {
    let approve = flag(params, "approve-first-group")?;
    let soak = whole(params, "soak-seconds")?;
    let waves = stages.len();
    let mut out = Vec::new();
    for (i, stage) in stages.into_iter().enumerate() {
        out.push(stage);
        if i + 1 == waves {
            break;
        }
        if soak > 0 {
            out.push(Stage::Gate(crate::Gate::Soak(soak)));
        }
        if i == 0 && approve {
            out.push(Stage::Gate(crate::Gate::Approval(
                "check the first group before the rest of the fleet".into(),
            )));
        }
    }
    Ok(out)
}

/// A `true`/`false` parameter (false when absent), naming the key when it is neither.
pub fn flag(params: &[Pair], key: &str) -> Result<bool> {
    match param(params, key) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(v) => Err(error(
            format!("{key} `{v}` is not true or false"),
            &format!("fix [strategy.params] {key}"),
        )),
    }
}

/// A whole-number parameter (0 when absent), naming the key when it is not one.
pub fn whole(params: &[Pair], key: &str) -> Result<u64> {
    match param(params, key) {
        None => Ok(0),
        Some(v) => v.trim().parse().map_err(|_| {
            error(
                format!("{key} `{v}` is not a whole number"),
                &format!("fix [strategy.params] {key}"),
            )
        }),
    }
}

/// Turn waves into plan stages named "<prefix> i/n".
pub fn stages(prefix: &str, waves: Vec<Vec<String>>) -> Vec<Stage> {
    let n = waves.len();
    waves
        .into_iter()
        .enumerate()
        .map(|(i, targets)| {
            Stage::Wave(Wave {
                name: format!("{prefix} {}/{n}", i + 1),
                targets,
            })
        })
        .collect()
}

/// Put the adapter's fleet step `step` after the waves that update the first `first`
/// targets (e.g. `atomic`'s traffic switch between the halves).
pub fn switch_after(stages: Vec<Stage>, first: usize, step: &str) -> Vec<Stage> {
    let mut out = Vec::new();
    let mut done = 0;
    let mut placed = false;
    for stage in stages {
        if let Stage::Wave(w) = &stage {
            done += w.targets.len();
        }
        out.push(stage);
        if !placed && done >= first {
            out.push(Stage::FleetStep(step.to_string()));
            placed = true;
        }
    }
    out
}

fn decision(kind: DecisionKind, reason: String) -> Decision {
    Decision {
        kind,
        reason: Some(reason).filter(|r| !r.is_empty()),
    }
}

/// Whether targets failing in wave `wave_index` are left as they are for the operator:
/// `on-failure = "complete"`, after the first wave (a failure in the first wave always rolls
/// back, so the old version stays active everywhere).
pub fn keeps_failed(wave_index: u32, params: &[Pair], default_policy: &str) -> bool {
    wave_index > 0 && param(params, "on-failure").unwrap_or(default_policy) == "complete"
}

/// What to do after a wave, WebSphere style: a failure in the first wave rolls back (the old
/// version stays active everywhere); after it, `on-failure` applies (`continue`: failed
/// targets are reverted and reported; `complete`: they are left as they are, on the new
/// version, for the operator, and the rollout completes; `pause`; or `rollback`), and more
/// than `max-failures` failed targets in all stops the rollout.
pub fn decide(report: &WaveReport, params: &[Pair], default_policy: &str) -> Decision {
    if report.failed.is_empty() {
        return decision(DecisionKind::Proceed, String::new());
    }
    let failed = report.failed.join(", ");
    if report.wave_index == 0 {
        return decision(
            DecisionKind::Rollback,
            format!("{failed} failed in the first wave: rolling back, the old version stays active everywhere"),
        );
    }
    if let Some(max) = param(params, "max-failures").and_then(|v| v.trim().parse::<u32>().ok()) {
        if report.failed_total > max {
            return decision(
                DecisionKind::Abort,
                format!(
                    "{} targets failed in all, more than max-failures = {max}: stopping (updated targets stay updated)",
                    report.failed_total
                ),
            );
        }
    }
    match param(params, "on-failure").unwrap_or(default_policy) {
        "pause" => decision(DecisionKind::Pause, format!("{failed} failed: pausing (on-failure = pause)")),
        "rollback" => decision(DecisionKind::Rollback, format!("{failed} failed: rolling back everything (on-failure = rollback)")),
        "complete" => decision(
            DecisionKind::Proceed,
            format!("{failed} failed after the first wave: completing, failed targets are left as they are for the operator, nothing reverted (on-failure = complete)"),
        ),
        _ => decision(
            DecisionKind::Proceed,
            format!("{failed} failed after the first wave: continuing, failed targets stay on the old version (on-failure = continue)"),
        ),
    }
}

/// Check `on-failure` and `max-failures` values.
pub fn check_policy(params: &[Pair]) -> Result<()> {
    if let Some(p) = param(params, "on-failure") {
        if !matches!(p, "continue" | "complete" | "pause" | "rollback") {
            return Err(error(
                format!("on-failure `{p}` is not one of continue, complete, pause, rollback"),
                "fix [strategy.params] on-failure",
            ));
        }
    }
    if let Some(m) = param(params, "max-failures") {
        if m.trim().parse::<u32>().is_err() {
            return Err(error(
                format!("max-failures `{m}` is not a whole number"),
                "fix [strategy.params] max-failures",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MaxTogether, Order};

    fn ids(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("n{i}")).collect()
    }

    #[test]
    fn the_switch_goes_after_the_first_half_however_it_is_split() {
        let names = |stages: &[Stage]| -> Vec<String> {
            stages
                .iter()
                .map(|s| match s {
                    Stage::Wave(w) => w.targets.join("+"),
                    Stage::FleetStep(f) => format!("<{f}>"),
                    Stage::Gate(_) => "gate".into(),
                })
                .collect()
        };
        let two = stages("half", vec![ids(6)[..3].to_vec(), ids(6)[3..].to_vec()]);
        assert_eq!(
            names(&switch_after(two, 3, "switch")),
            ["n1+n2+n3", "<switch>", "n4+n5+n6"]
        );
        // A constraint split the first half in two waves: the switch waits for both.
        let split = stages(
            "half",
            vec![vec!["n1".into()], vec!["n2".into()], vec!["n3".into()]],
        );
        assert_eq!(
            names(&switch_after(split, 2, "flip")),
            ["n1", "n2", "<flip>", "n3"]
        );
        // One target: the other half's actions are skipped, the switch still runs.
        let one = stages("half", vec![vec!["n1".into()]]);
        assert_eq!(names(&switch_after(one, 1, "switch")), ["n1", "<switch>"]);
    }

    #[test]
    fn sizes() {
        assert_eq!(group_size("4", 12).unwrap(), 4);
        assert_eq!(group_size("25%", 10).unwrap(), 3);
        assert!(group_size("0", 3).is_err());
        assert!(group_size("lots", 3).is_err());
    }

    #[test]
    fn waves_respect_constraints() {
        let c = vec![
            Constraint {
                name: "group".into(),
                kind: ConstraintKind::MaxTogether(MaxTogether {
                    members: vec!["n1".into(), "n2".into(), "n3".into()],
                    max: 2,
                }),
            },
            Constraint {
                name: "order".into(),
                kind: ConstraintKind::Order(Order {
                    first: vec!["n2".into(), "n3".into()],
                    then: vec!["n1".into()],
                }),
            },
        ];
        let w = build_waves(&ids(5), 3, &c).unwrap();
        assert_eq!(w, vec![vec!["n2", "n3", "n4"], vec!["n5"], vec!["n1"]]);
    }

    #[test]
    fn on_failure_complete_keeps_later_failures_and_proceeds() {
        let complete = vec![Pair {
            key: "on-failure".into(),
            value: "complete".into(),
        }];
        assert!(
            !keeps_failed(0, &complete, "continue"),
            "the first wave always rolls back"
        );
        assert!(keeps_failed(1, &complete, "continue"));
        assert!(!keeps_failed(1, &[], "continue"));
        assert!(keeps_failed(2, &[], "complete"));
        let report = WaveReport {
            wave_index: 1,
            wave_count: 3,
            succeeded: vec!["n3".into()],
            failed: vec!["n4".into()],
            failed_total: 1,
            target_count: 6,
        };
        let d = decide(&report, &complete, "continue");
        assert_eq!(d.kind, DecisionKind::Proceed);
        assert!(d.reason.unwrap().contains("on-failure = complete"));
        let first = WaveReport {
            wave_index: 0,
            ..report
        };
        assert_eq!(
            decide(&first, &complete, "continue").kind,
            DecisionKind::Rollback
        );
        assert!(check_policy(&complete).is_ok());
    }
}
