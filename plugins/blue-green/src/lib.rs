//! `blue-green`: update the idle (green) set while the live (blue) set serves, switch traffic
//! with the adapter's fleet step, keep blue intact for a window so that a switch back is
//! fast, then optionally retire it.
//!
//! Targets carry a color label (`color-label`, default `color`); those with the color
//! `green` (default `green`) are updated, the others are kept on standby. Parameters:
//! `switch-step` (the adapter's fleet step that moves traffic, default `switch`),
//! `approve-switch` (wait for `cutover approve` before switching), `keep-blue-seconds` (a
//! window after the switch), `retire-step` (an adapter fleet step run after the window). A
//! failure on any green target rolls the green set back before traffic moves. The green set
//! is one wave unless the adapter's constraints split it.

use cutover_sdk::waves;
use cutover_sdk::{
    Constraint, Decision, DecisionKind, Gate, Pair, Plan, Result, Stage, StrategyInfo, Target,
    Wave, WaveReport,
};

struct BlueGreen;

impl cutover_sdk::Strategy for BlueGreen {
    fn info() -> StrategyInfo {
        StrategyInfo {
            name: "blue-green".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "update green, switch traffic, keep blue for a fast switch back".into(),
        }
    }

    fn plan(targets: Vec<Target>, constraints: Vec<Constraint>, params: Vec<Pair>) -> Result<Plan> {
        let label = waves::param(&params, "color-label").unwrap_or("color");
        let green = waves::param(&params, "green").unwrap_or("green");
        let color = |t: &Target| {
            t.labels
                .iter()
                .find(|p| p.key == label)
                .map(|p| p.value.clone())
        };
        if let Some(t) = targets.iter().find(|t| color(t).is_none()) {
            return Err(waves::error(
                format!("target `{}` has no `{label}` label", t.id),
                &format!("give every target `{label} = \"blue\"` or `\"{green}\"`"),
            ));
        }
        let (updated, standby): (Vec<Target>, Vec<Target>) = targets
            .into_iter()
            .partition(|t| color(t).as_deref() == Some(green));
        if updated.is_empty() || standby.is_empty() {
            return Err(waves::error(
                format!(
                    "blue-green needs targets of both colors; {} are `{green}` and {} are not",
                    updated.len(),
                    standby.len()
                ),
                &format!("label the idle set `{label} = \"{green}\"` and the live set otherwise"),
            ));
        }
        // The green set in one wave, unless the adapter's constraints (at most N down
        // together, an order) need it split.
        let ids: Vec<String> = updated.into_iter().map(|t| t.id).collect();
        let sets = waves::build_waves(&ids, ids.len(), &constraints)?;
        let n = sets.len();
        let mut stages: Vec<Stage> = sets
            .into_iter()
            .enumerate()
            .map(|(i, targets)| {
                Stage::Wave(Wave {
                    name: if n == 1 {
                        green.into()
                    } else {
                        format!("{green} {}/{n}", i + 1)
                    },
                    targets,
                })
            })
            .collect();
        if waves::flag(&params, "approve-switch")? {
            stages.push(Stage::Gate(Gate::Approval(format!(
                "check the {green} set, then `cutover approve` to switch traffic to it"
            ))));
        }
        stages.push(Stage::FleetStep(
            waves::param(&params, "switch-step")
                .unwrap_or("switch")
                .into(),
        ));
        let keep = waves::whole(&params, "keep-blue-seconds")?;
        if keep > 0 {
            stages.push(Stage::Gate(Gate::Soak(keep)));
        }
        if let Some(step) = waves::param(&params, "retire-step") {
            stages.push(Stage::FleetStep(step.into()));
        }
        Ok(Plan {
            stages,
            standby: standby.into_iter().map(|t| t.id).collect(),
        })
    }

    fn decide(report: WaveReport, _params: Vec<Pair>) -> Decision {
        if report.failed.is_empty() {
            Decision {
                kind: DecisionKind::Proceed,
                reason: None,
            }
        } else {
            Decision {
                kind: DecisionKind::Rollback,
                reason: Some(format!(
                    "{} failed in the green set: rolling it back, traffic stays on blue",
                    report.failed.join(", ")
                )),
            }
        }
    }
}

cutover_sdk::export_strategy!(BlueGreen);
