//! `noop-adapter`: six target steps that do nothing. Measures the engine, not a product.

use cutover_sdk::adapter_types::*;

struct Noop;

const STEPS: [&str; 6] = ["prepare", "drain", "stop", "install", "start", "verify"];

impl cutover_sdk::Adapter for Noop {
    fn describe() -> Description {
        Description {
            leases: vec![],
            name: "noop-adapter".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "six steps that do nothing (benchmarks and tests)".into(),
            parameters: vec![],
            capabilities: vec![],
            steps: STEPS
                .iter()
                .map(|s| Step {
                    name: s.to_string(),
                    description: format!("{s} (no-op)"),
                    scope: Scope::Target,
                    phase: Phase::Rollout,
                    undoable: true,
                    idempotent: true,
                    undo_idempotent: true,
                    default_timeout_s: 10,
                    capabilities: Vec::new(),
                })
                .collect(),
        }
    }

    fn run_step(_: String, _: Option<Target>, _: StepContext) -> Result<Vec<Output>, StepError> {
        Ok(Vec::new())
    }

    fn undo_step(_: String, _: Option<Target>, _: StepContext) -> Result<(), StepError> {
        Ok(())
    }
}

cutover_sdk::export_adapter!(Noop);
