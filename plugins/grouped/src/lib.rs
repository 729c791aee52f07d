//! `grouped`: update the fleet in groups of N targets (or a share of the fleet).
//!
//! Parameters: `group-size` (count or "25%", default 25%), `on-failure` (continue |
//! complete | pause | rollback, applies after the first group; default continue: failed
//! targets are reverted; complete: they are left as they are for the operator), `max-failures` (stop once more
//! targets than this have failed), `approve-first-group` (wait for `cutover approve` after
//! the first group), `soak-seconds` (wait between groups). A failure in the first group rolls
//! it back and stops with the old version active everywhere.

use cutover_sdk::waves;
use cutover_sdk::{Constraint, Decision, Pair, Plan, Result, StrategyInfo, Target, WaveReport};

struct Grouped;

impl cutover_sdk::Strategy for Grouped {
    fn info() -> StrategyInfo {
        StrategyInfo {
            name: "grouped".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "groups of N targets; a failure in the first group rolls back".into(),
        }
    }

    fn plan(targets: Vec<Target>, constraints: Vec<Constraint>, params: Vec<Pair>) -> Result<Plan> {
        let size = waves::group_size(
            waves::param(&params, "group-size").unwrap_or("25%"),
            targets.len(),
        )?;
        let plan = waves::plan(targets, &constraints, &params, size, "group")?;
        Ok(Plan {
            stages: waves::with_gates(plan.stages, &params)?,
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

cutover_sdk::export_strategy!(Grouped);
