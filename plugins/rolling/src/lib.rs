//! `rolling`: one target at a time. A failure on the first target rolls it back; after it,
//! `on-failure` applies (default pause, so an operator looks before the fleet goes on).

use cutover_sdk::waves;
use cutover_sdk::{Constraint, Decision, Pair, Plan, Result, StrategyInfo, Target, WaveReport};

struct Rolling;

impl cutover_sdk::Strategy for Rolling {
    fn info() -> StrategyInfo {
        StrategyInfo {
            name: "rolling".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "one target at a time".into(),
        }
    }

    fn plan(targets: Vec<Target>, constraints: Vec<Constraint>, params: Vec<Pair>) -> Result<Plan> {
        waves::plan(targets, &constraints, &params, 1, "target")
    }

    fn decide(report: WaveReport, params: Vec<Pair>) -> Decision {
        waves::decide(&report, &params, "pause")
    }

    fn keeps_failed(wave_index: u32, params: Vec<Pair>) -> bool {
        waves::keeps_failed(wave_index, &params, "pause")
    }
}

cutover_sdk::export_strategy!(Rolling);
