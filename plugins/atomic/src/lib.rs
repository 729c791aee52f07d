//! `atomic`: half of the fleet, then the other half; one target is one wave. The fleet runs
//! at half capacity meanwhile. A failure in the first half rolls it back and stops with the
//! old version active everywhere; after it, `on-failure` applies (default continue).

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
        waves::plan(targets, &constraints, &params, half, "half")
    }

    fn decide(report: WaveReport, params: Vec<Pair>) -> Decision {
        waves::decide(&report, &params, "continue")
    }

    fn keeps_failed(wave_index: u32, params: Vec<Pair>) -> bool {
        waves::keeps_failed(wave_index, &params, "continue")
    }
}

cutover_sdk::export_strategy!(Atomic);
