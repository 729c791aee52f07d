//! Write Cutover plugins in Rust.
//!
//! A strategy implements [`Strategy`] and calls [`export_strategy!`]; an adapter implements
//! [`Adapter`] and calls [`export_adapter!`]. Build with `cargo build --release --target
//! wasm32-wasip2`; the `.wasm` file in `target/wasm32-wasip2/release/` is the plugin.
//!
//! The helpers in [`params`], [`cmd`], [`web`], [`files`], [`config`], [`rewrite`] and [`step`]
//! are what adapters share: reading parameters and labels, running granted commands, HTTP,
//! file trees, configuration files, moving install-root paths, jars ([`jar`], feature `jar`),
//! and error messages that tell the operator which grant is missing.

pub mod cmd;
pub mod config;
pub mod describe;
pub mod files;
#[cfg(feature = "jar")]
pub mod jar;
pub mod params;
pub mod preflight;
pub mod release;
pub mod rewrite;
pub mod step;
pub mod wait;
pub mod waves;
pub mod web;

/// Bindings of the `strategy` world (generated from `wit/`).
#[allow(clippy::too_many_arguments)]
pub mod strategy {
    wit_bindgen::generate!({
        world: "strategy",
        path: "../wit",
        default_bindings_module: "cutover_sdk::strategy",
        pub_export_macro: true,
        export_macro_name: "export_strategy_world",
    });
}

/// Bindings of the `adapter` world (generated from `wit/`).
#[allow(clippy::too_many_arguments)]
pub mod adapter {
    wit_bindgen::generate!({
        world: "adapter",
        path: "../wit",
        default_bindings_module: "cutover_sdk::adapter",
        pub_export_macro: true,
        export_macro_name: "export_adapter_world",
    });
}

/// Types a strategy works with.
pub mod strategy_types {
    pub use crate::strategy::cutover::plugin::strategy_types::{
        Decision, DecisionKind, Gate, Plan, Stage, Wave, WaveReport,
    };
    pub use crate::strategy::cutover::plugin::types::*;
}

/// Types an adapter works with.
pub mod adapter_types {
    pub use crate::adapter::cutover::plugin::adapter_types::{
        Access, Capability, Description, DirRequest, Finding, Output, Parameter, Phase, Scope,
        Severity, Step, StepContext, StepError,
    };
    pub use crate::adapter::cutover::plugin::types::*;
}

use adapter_types as at;
use strategy_types as st;

/// The order and pace of a rollout. Pure logic: no files, no network.
pub trait Strategy {
    /// Name, version, one-line summary.
    fn info() -> (String, String, String);
    /// Order the targets into stages.
    fn plan(
        targets: Vec<st::Target>,
        constraints: Vec<st::Constraint>,
        params: Vec<st::Pair>,
    ) -> Result<st::Plan, st::PluginError>;
    /// After each wave: proceed, pause, abort or roll back.
    fn decide(report: st::WaveReport, params: Vec<st::Pair>) -> st::Decision;
}

/// One product's upgrade procedure. Adapters keep no state between calls: what a step
/// needs later goes into its outputs.
pub trait Adapter {
    /// Name, version, parameters, requested capabilities and steps.
    fn describe() -> at::Description;
    /// Check the change before anything runs.
    fn preflight(
        targets: Vec<at::Target>,
        params: Vec<at::Pair>,
        strategy: String,
    ) -> Result<Vec<at::Finding>, at::PluginError> {
        let _ = (targets, params, strategy);
        Ok(Vec::new())
    }
    /// Topology rules every plan must respect.
    fn constraints(
        targets: Vec<at::Target>,
        params: Vec<at::Pair>,
    ) -> Result<Vec<at::Constraint>, at::PluginError> {
        let _ = (targets, params);
        Ok(Vec::new())
    }
    /// Run one step.
    fn run_step(
        step: String,
        target: Option<at::Target>,
        ctx: at::StepContext,
    ) -> Result<Vec<at::Output>, at::StepError>;
    /// Revert a completed undoable step.
    fn undo_step(
        step: String,
        target: Option<at::Target>,
        ctx: at::StepContext,
    ) -> Result<(), at::StepError>;
}

/// Export a type implementing [`Strategy`] as the plugin's strategy world.
#[macro_export]
macro_rules! export_strategy {
    ($t:ty) => {
        struct __CutoverStrategyExport;
        impl $crate::strategy::Guest for __CutoverStrategyExport {
            fn info() -> (String, String, String) {
                <$t as $crate::Strategy>::info()
            }
            fn plan(
                targets: Vec<$crate::strategy_types::Target>,
                constraints: Vec<$crate::strategy_types::Constraint>,
                params: Vec<$crate::strategy_types::Pair>,
            ) -> Result<$crate::strategy_types::Plan, $crate::strategy_types::PluginError> {
                <$t as $crate::Strategy>::plan(targets, constraints, params)
            }
            fn decide(
                report: $crate::strategy_types::WaveReport,
                params: Vec<$crate::strategy_types::Pair>,
            ) -> $crate::strategy_types::Decision {
                <$t as $crate::Strategy>::decide(report, params)
            }
        }
        $crate::strategy::export_strategy_world!(__CutoverStrategyExport with_types_in $crate::strategy);
    };
}

/// Export a type implementing [`Adapter`] as the plugin's adapter world.
#[macro_export]
macro_rules! export_adapter {
    ($t:ty) => {
        struct __CutoverAdapterExport;
        impl $crate::adapter::Guest for __CutoverAdapterExport {
            fn describe() -> $crate::adapter_types::Description {
                <$t as $crate::Adapter>::describe()
            }
            fn preflight(
                targets: Vec<$crate::adapter_types::Target>,
                params: Vec<$crate::adapter_types::Pair>,
                strategy: String,
            ) -> Result<Vec<$crate::adapter_types::Finding>, $crate::adapter_types::PluginError> {
                <$t as $crate::Adapter>::preflight(targets, params, strategy)
            }
            fn constraints(
                targets: Vec<$crate::adapter_types::Target>,
                params: Vec<$crate::adapter_types::Pair>,
            ) -> Result<Vec<$crate::adapter_types::Constraint>, $crate::adapter_types::PluginError> {
                <$t as $crate::Adapter>::constraints(targets, params)
            }
            fn run_step(
                step: String,
                target: Option<$crate::adapter_types::Target>,
                ctx: $crate::adapter_types::StepContext,
            ) -> Result<Vec<$crate::adapter_types::Output>, $crate::adapter_types::StepError> {
                <$t as $crate::Adapter>::run_step(step, target, ctx)
            }
            fn undo_step(
                step: String,
                target: Option<$crate::adapter_types::Target>,
                ctx: $crate::adapter_types::StepContext,
            ) -> Result<(), $crate::adapter_types::StepError> {
                <$t as $crate::Adapter>::undo_step(step, target, ctx)
            }
        }
        $crate::adapter::export_adapter_world!(__CutoverAdapterExport with_types_in $crate::adapter);
    };
}

/// Log a line from an adapter.
pub fn log(level: at::Level, message: &str) {
    adapter::cutover::plugin::log::write(level, message)
}

/// Report progress of the current adapter call.
pub fn progress(message: &str, fraction: Option<f32>) {
    adapter::cutover::plugin::log::progress(message, fraction)
}

/// Log a line from a strategy.
pub fn strategy_log(level: st::Level, message: &str) {
    strategy::cutover::plugin::log::write(level, message)
}

/// Secrets the operator maps in the spec's `[secrets]`.
pub mod secrets {
    /// The secret's value; the error names the spec key to add when it is not granted.
    pub fn get(name: &str) -> Result<String, String> {
        crate::adapter::cutover::plugin::secrets::get(name)
    }
}
