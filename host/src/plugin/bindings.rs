//! Host-side bindings of the two worlds in `wit/` (they share `types` and `log`).

/// The `strategy` world.
pub mod strategy {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "strategy",
        imports: { default: async },
        exports: { default: async },
    });
}

/// The `adapter` world.
pub mod adapter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "adapter",
        imports: { default: async },
        exports: { default: async },
        with: {
            "cutover:plugin/types": super::strategy::cutover::plugin::types,
            "cutover:plugin/log": super::strategy::cutover::plugin::log,
        },
    });
}

pub use adapter::cutover::plugin::adapter_types::{
    Access, Capability, Description, DirRequest, Finding, Output, Phase, Scope, Severity, Step,
    StepContext, StepError,
};
pub use strategy::cutover::plugin::strategy_types::{
    Decision, DecisionKind, Gate, Plan, Stage, Wave, WaveReport,
};
pub use strategy::cutover::plugin::types::{
    Constraint, ConstraintKind, Level, MaxTogether, Order, Pair, PluginError, Target,
};

/// Lowercase name of a log level.
pub fn level_name(l: Level) -> &'static str {
    match l {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// Lowercase name of a decision.
pub fn decision_name(d: DecisionKind) -> &'static str {
    match d {
        DecisionKind::Proceed => "proceed",
        DecisionKind::Pause => "pause",
        DecisionKind::Abort => "abort",
        DecisionKind::Rollback => "rollback",
    }
}

/// Lowercase name of a finding's severity.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Blocker => "blocker",
    }
}
