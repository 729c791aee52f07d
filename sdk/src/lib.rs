//! Write Cutover plugins in Rust, against the `cutover:plugin@1.3.0` contract (its WIT
//! travels with this crate, in `wit/`).
//!
//! An **adapter** implements [`Adapter`]: what it is ([`Adapter::about`]) and one table of
//! steps ([`Adapter::STEPS`]), each naming the functions that run and undo it. That table
//! is both what the host is told (`describe`) and what dispatches calls, so the two cannot
//! drift. Then `cutover_sdk::export_adapter!(MyAdapter);`.
//!
//! A **strategy** implements [`Strategy`] and calls [`export_strategy!`].
//!
//! Everything fallible returns [`Result`], whose [`Error`] converts from host errors, I/O
//! errors and strings, so `?` works everywhere. Log with [`info!`], [`warn!`], [`debug!`],
//! [`error!`] and [`progress!`].
//!
//! Build with `cargo build --release --target wasm32-wasip2`; the `.wasm` file in
//! `target/wasm32-wasip2/release/` is the plugin. `cutover plugin new` writes a crate with
//! the recommended build settings; `cutover plugin test` checks a plugin against the contract.

pub mod analysis;
mod call;
pub mod cmd;
pub mod config;
mod error;
pub mod files;
pub mod inplace;
#[cfg(feature = "jar")]
pub mod jar;
mod logging;
pub mod osgi;
pub mod params;
pub mod preflight;
pub mod release;
pub mod rewrite;
mod steps;
pub mod tcp;
pub mod unix;
pub mod wait;
pub mod waves;
pub mod web;

pub use call::Call;
pub use error::{Error, Result};
pub use logging::{log, progress};
pub use steps::{Cap, RunFn, StepDef};

#[doc(hidden)]
pub mod __private {
    //! Generated bindings, used by the export macros only.

    #[allow(clippy::too_many_arguments)]
    pub mod adapter {
        wit_bindgen::generate!({
            world: "adapter-plugin",
            path: "wit",
            default_bindings_module: "cutover_sdk::__private::adapter",
            pub_export_macro: true,
            export_macro_name: "export_adapter_world",
        });
    }

    #[allow(clippy::too_many_arguments)]
    pub mod strategy {
        wit_bindgen::generate!({
            world: "strategy-plugin",
            path: "wit",
            default_bindings_module: "cutover_sdk::__private::strategy",
            pub_export_macro: true,
            export_macro_name: "export_strategy_world",
            with: {
                "cutover:plugin/types@1.3.0": crate::__private::adapter::cutover::plugin::types,
                "cutover:plugin/log@1.3.0": crate::__private::adapter::cutover::plugin::log,
            },
        });
    }

    pub use crate::steps::{describe, run, undo};
    pub use crate::{adapter_glue, strategy_glue};
}

use __private::adapter::cutover::plugin as host;
use __private::adapter::exports::cutover::plugin::adapter as a;
use __private::strategy::exports::cutover::plugin::strategy as s;

pub use a::{
    Capability, Description, DirRequest, Finding, Output, Parameter, PreflightContext,
    RolloutEstimate as Estimate, Severity, Step, StepContext, StepEstimate, StepKind,
};
pub use host::types::{
    Access, Constraint, ConstraintKind, Denial, DirGrant, HostError, Level, MaxTogether, Order,
    Pair, PluginError, Target,
};
pub use s::{
    Decision, DecisionKind, Gate, RolloutPlan as Plan, Stage, StrategyInfo, Wave, WaveReport,
};

/// What an adapter is, apart from its steps.
pub struct About {
    pub name: &'static str,
    /// Semver of the adapter itself (usually `env!("CARGO_PKG_VERSION")`).
    pub version: &'static str,
    pub summary: &'static str,
    pub parameters: Vec<Parameter>,
    /// Capabilities every step gets (steps add their own in [`StepDef::caps`]).
    pub capabilities: Vec<Capability>,
    /// Lease record templates, e.g. `{root}/.cutover-lease`.
    pub leases: Vec<String>,
}

/// One product's upgrade procedure. Adapters keep no state between calls: what a step needs
/// later goes into its outputs.
pub trait Adapter {
    /// Name, version, parameters, capabilities and leases.
    fn about() -> About;
    /// The steps in the order they run; each names its run and undo functions.
    const STEPS: &'static [StepDef];
    /// Check the change before anything runs.
    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        let _ = (targets, ctx);
        Ok(Vec::new())
    }
    /// Topology rules every plan must respect.
    fn constraints(targets: Vec<Target>, params: Vec<Pair>) -> Result<Vec<Constraint>> {
        let _ = (targets, params);
        Ok(Vec::new())
    }
    /// How long the steps take, and notes that follow from a plan of `waves` waves (for
    /// `cutover plan`); by default nothing is estimated.
    fn estimate(targets: Vec<Target>, params: Vec<Pair>, waves: u32) -> Result<Estimate> {
        let _ = (targets, params, waves);
        Ok(Estimate {
            steps: Vec::new(),
            notes: Vec::new(),
        })
    }
}

/// The order and pace of a rollout. Pure logic: no files, no network.
pub trait Strategy {
    /// Name, version, one-line summary.
    fn info() -> StrategyInfo;
    /// Order the targets into stages.
    fn plan(targets: Vec<Target>, constraints: Vec<Constraint>, params: Vec<Pair>) -> Result<Plan>;
    /// After each wave: proceed, pause, abort or roll back.
    fn decide(report: WaveReport, params: Vec<Pair>) -> Decision;
    /// Whether the targets failing in wave `wave_index` (from 0) are left as they are for
    /// the operator instead of undone; by default they are undone.
    fn keeps_failed(wave_index: u32, params: Vec<Pair>) -> bool {
        let _ = (wave_index, params);
        false
    }
}

/// Export a type implementing [`Adapter`] as the plugin's `cutover:plugin/adapter@1.3.0`.
#[macro_export]
macro_rules! export_adapter {
    ($t:ty) => {
        $crate::__private::adapter_glue!($t);
        $crate::__private::adapter::export_adapter_world!(__CutoverAdapterExport with_types_in $crate::__private::adapter);
    };
}

/// Export a type implementing [`Strategy`] as the plugin's `cutover:plugin/strategy@1.3.0`.
#[macro_export]
macro_rules! export_strategy {
    ($t:ty) => {
        $crate::__private::strategy_glue!($t);
        $crate::__private::strategy::export_strategy_world!(__CutoverStrategyExport with_types_in $crate::__private::strategy);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! adapter_glue {
    ($t:ty) => {
        struct __CutoverAdapterExport;
        impl $crate::__private::adapter::exports::cutover::plugin::adapter::Guest
            for __CutoverAdapterExport
        {
            fn describe() -> $crate::Description {
                $crate::__private::describe(
                    <$t as $crate::Adapter>::about(),
                    <$t as $crate::Adapter>::STEPS,
                )
            }
            fn preflight(
                targets: Vec<$crate::Target>,
                ctx: $crate::PreflightContext,
            ) -> ::core::result::Result<Vec<$crate::Finding>, $crate::PluginError> {
                $crate::files::set_granted(&ctx.dirs);
                <$t as $crate::Adapter>::preflight(targets, ctx).map_err(Into::into)
            }
            fn constraints(
                targets: Vec<$crate::Target>,
                params: Vec<$crate::Pair>,
            ) -> ::core::result::Result<Vec<$crate::Constraint>, $crate::PluginError> {
                <$t as $crate::Adapter>::constraints(targets, params).map_err(Into::into)
            }
            fn estimate(
                targets: Vec<$crate::Target>,
                params: Vec<$crate::Pair>,
                waves: u32,
            ) -> ::core::result::Result<$crate::Estimate, $crate::PluginError> {
                <$t as $crate::Adapter>::estimate(targets, params, waves).map_err(Into::into)
            }
            fn run_step(
                step: String,
                target: Option<$crate::Target>,
                ctx: $crate::StepContext,
            ) -> ::core::result::Result<
                Vec<$crate::Output>,
                $crate::__private::adapter::exports::cutover::plugin::adapter::StepError,
            > {
                $crate::__private::run(<$t as $crate::Adapter>::STEPS, step, target, ctx)
            }
            fn undo_step(
                step: String,
                target: Option<$crate::Target>,
                ctx: $crate::StepContext,
            ) -> ::core::result::Result<
                (),
                $crate::__private::adapter::exports::cutover::plugin::adapter::StepError,
            > {
                $crate::__private::undo(<$t as $crate::Adapter>::STEPS, step, target, ctx)
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! strategy_glue {
    ($t:ty) => {
        struct __CutoverStrategyExport;
        impl $crate::__private::strategy::exports::cutover::plugin::strategy::Guest
            for __CutoverStrategyExport
        {
            fn info() -> $crate::StrategyInfo {
                <$t as $crate::Strategy>::info()
            }
            fn plan(
                targets: Vec<$crate::Target>,
                constraints: Vec<$crate::Constraint>,
                params: Vec<$crate::Pair>,
            ) -> ::core::result::Result<$crate::Plan, $crate::PluginError> {
                <$t as $crate::Strategy>::plan(targets, constraints, params).map_err(Into::into)
            }
            fn decide(report: $crate::WaveReport, params: Vec<$crate::Pair>) -> $crate::Decision {
                <$t as $crate::Strategy>::decide(report, params)
            }
            fn keeps_failed(wave_index: u32, params: Vec<$crate::Pair>) -> bool {
                <$t as $crate::Strategy>::keeps_failed(wave_index, params)
            }
        }
    };
}

/// A plain output value.
pub fn output(key: &str, value: impl Into<String>) -> Output {
    Output {
        key: key.to_string(),
        value: value.into(),
        secret: false,
    }
}

/// An output value kept in the journal and redacted wherever it is shown.
pub fn secret_output(key: &str, value: impl Into<String>) -> Output {
    Output {
        key: key.to_string(),
        value: value.into(),
        secret: true,
    }
}

/// A permanent failure with a message (the same as [`Error::new`]).
pub fn fail(message: impl Into<String>) -> Error {
    Error::new(message)
}

/// Secrets the operator maps in the spec's `[secrets]`.
pub mod secrets {
    /// The secret's value; a denial names the spec key to add when it is not granted.
    pub fn get(name: &str) -> crate::Result<String> {
        crate::__private::adapter::cutover::plugin::secrets::get(name).map_err(Into::into)
    }
}
