//! `rolling`: one target at a time. A failure on the first target rolls it back; after it,
//! `on-failure` applies (default pause, so an operator looks before the fleet goes on).

use cutover_sdk::strategy_types::*;
use cutover_sdk::waves;

struct Rolling;

impl cutover_sdk::Strategy for Rolling {
    fn info() -> (String, String, String) {
        (
            "rolling".into(),
            env!("CARGO_PKG_VERSION").into(),
            "one target at a time".into(),
        )
    }

    fn plan(
        targets: Vec<Target>,
        constraints: Vec<Constraint>,
        params: Vec<Pair>,
    ) -> Result<Plan, PluginError> {
        waves::check_policy(&params)?;
        let ids: Vec<String> = targets.into_iter().map(|t| t.id).collect();
        let one_by_one = waves::build_waves(&ids, 1, &constraints)?;
        Ok(Plan {
            stages: waves::stages("target", one_by_one),
        })
    }

    fn decide(report: WaveReport, params: Vec<Pair>) -> Decision {
        waves::decide(&report, &params, "pause")
    }
}

cutover_sdk::export_strategy!(Rolling);
