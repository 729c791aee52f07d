//! `bad-strategy`: a test fixture. It puts every target in one wave and ignores the adapter's
//! constraints, to show that the host refuses such a plan before any step runs.

use cutover_sdk::strategy_types::*;

struct Bad;

impl cutover_sdk::Strategy for Bad {
    fn info() -> (String, String, String) {
        (
            "bad-strategy".into(),
            env!("CARGO_PKG_VERSION").into(),
            "every target at once, constraints ignored (a test fixture)".into(),
        )
    }

    fn plan(
        targets: Vec<Target>,
        _constraints: Vec<Constraint>,
        _params: Vec<Pair>,
    ) -> Result<Plan, PluginError> {
        Ok(Plan {
            stages: vec![Stage::Wave(Wave {
                name: "everything".into(),
                targets: targets.into_iter().map(|t| t.id).collect(),
            })],
            standby: Vec::new(),
        })
    }

    fn decide(_report: WaveReport, _params: Vec<Pair>) -> Decision {
        Decision {
            kind: DecisionKind::Proceed,
            reason: "always".into(),
        }
    }
}

cutover_sdk::export_strategy!(Bad);
