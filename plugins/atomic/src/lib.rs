//! `atomic`: half of the fleet, then the other half; one target is one wave. The fleet runs
//! at half capacity meanwhile. A failure in the first half rolls it back and stops with the
//! old version active everywhere; after it, `on-failure` applies (default continue).
//!
//! One consistent version serves every request only when the adapter moves all traffic from
//! the old half to the updated half in one step: name that fleet step with `switch-step`
//! (e.g. `switch-step = "switch"`), and it runs between the halves. Without it, the plan says
//! what it cannot guarantee: updated targets rejoin while the others still serve the old
//! version, so both versions serve requests for a while.

use cutover_sdk::waves;
use cutover_sdk::{Constraint, Decision, Pair, Plan, Result, StrategyInfo, Target, WaveReport};

struct Atomic;

impl cutover_sdk::Strategy for Atomic {
    fn info() -> StrategyInfo {
        StrategyInfo {
            name: "atomic".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "half the fleet, then the other half".into(),
        }
    }

    fn plan(targets: Vec<Target>, constraints: Vec<Constraint>, params: Vec<Pair>) -> Result<Plan> {
        let half = targets.len().div_ceil(2).max(1);
        let plan = waves::plan(targets, &constraints, &params, half, "half")?;
        let stages = match waves::param(&params, "switch-step").filter(|s| !s.is_empty()) {
            Some(step) => waves::switch_after(plan.stages, half, step),
            None => {
                cutover_sdk::warn!(
                    "atomic without `switch-step`: one consistent version is not guaranteed; each updated target rejoins while the rest still serve the old version, so both serve requests until the second half is drained. Name the adapter's fleet step that moves all traffic to the updated half with [strategy.params] switch-step"
                );
                plan.stages
            }
        };
        Ok(Plan {
            stages,
            standby: plan.standby,
        })
    }

    fn decide(report: WaveReport, params: Vec<Pair>) -> Decision {
        waves::decide(&report, &params, "continue")
    }

    fn keeps_failed(wave_index: u32, params: Vec<Pair>) -> bool {
        waves::keeps_failed(wave_index, &params, "continue")
    }
}

cutover_sdk::export_strategy!(Atomic);
