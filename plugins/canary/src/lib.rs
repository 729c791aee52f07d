//! `canary`: update a few targets first, hold the fleet at a gate, then the rest in groups.
//!
//! Parameters: `canary` (count or "10%", default 1), `canary-soak-seconds` (wait after the
//! canaries), `health-step` (an adapter fleet step to run after the soak, such as a health
//! check of the updated targets: if it fails, the canaries are rolled back), `canary-approval`
//! (wait for `cutover approve` after the canaries), `group-size` for the rest (default 25%),
//! and the standard `on-failure` / `max-failures` for the waves after the canaries. A canary
//! that fails rolls the canaries back and the rest of the fleet is never touched.

use cutover_sdk::waves;
use cutover_sdk::{
    Constraint, Decision, Gate, Pair, Plan, Result, Stage, StrategyInfo, Target, Wave, WaveReport,
};

struct Canary;

impl cutover_sdk::Strategy for Canary {
    fn info() -> StrategyInfo {
        StrategyInfo {
            name: "canary".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "a few canaries, a gate, then the rest in groups".into(),
        }
    }

    fn plan(targets: Vec<Target>, constraints: Vec<Constraint>, params: Vec<Pair>) -> Result<Plan> {
        waves::check_policy(&params)?;
        let n = targets.len();
        let canaries = waves::group_size(waves::param(&params, "canary").unwrap_or("1"), n)?;
        let ids: Vec<String> = targets.into_iter().map(|t| t.id).collect();
        // The constraints decide which targets may go first.
        let first = waves::build_waves(&ids, canaries, &constraints)?
            .into_iter()
            .next()
            .unwrap_or_default();
        let rest: Vec<String> = ids.iter().filter(|t| !first.contains(t)).cloned().collect();
        let size = waves::group_size(
            waves::param(&params, "group-size").unwrap_or("25%"),
            rest.len().max(1),
        )?;
        let mut stages = vec![Stage::Wave(Wave {
            name: "canary".into(),
            targets: first,
        })];
        let soak = waves::whole(&params, "canary-soak-seconds")?;
        if soak > 0 {
            stages.push(Stage::Gate(Gate::Soak(soak)));
        }
        if let Some(step) = waves::param(&params, "health-step") {
            stages.push(Stage::FleetStep(step.to_string()));
        }
        if waves::flag(&params, "canary-approval")? {
            stages.push(Stage::Gate(Gate::Approval(
                "check the canaries, then `cutover approve` to update the rest".into(),
            )));
        }
        if !rest.is_empty() {
            let rest_waves = waves::build_waves(&rest, size, &constraints)?;
            stages.extend(waves::stages("group", rest_waves));
        }
        Ok(Plan {
            stages,
            standby: Vec::new(),
        })
    }

    fn decide(report: WaveReport, params: Vec<Pair>) -> Decision {
        waves::decide(&report, &params, "continue")
    }

    fn keeps_failed(wave_index: u32, params: Vec<Pair>) -> bool {
        waves::keeps_failed(wave_index, &params, "continue")
    }
}

cutover_sdk::export_strategy!(Canary);
