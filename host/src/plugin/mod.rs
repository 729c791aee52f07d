//! Plugins: loading, caching, sandboxing and calling WebAssembly components.

pub mod authority;
pub mod cache;
mod calls;
pub mod contract;
pub mod files;
mod host_calls;
pub mod model;
pub mod process;
pub mod runtime;
/// The bindings of one 1.x contract version (`wit/since_vX.Y.Z`): modules `adapter` (the
/// `adapter-plugin` world and every shared interface) and `strategy` (the `strategy-plugin`
/// world, sharing `types` and `log` with the adapter's).
macro_rules! contract_worlds {
    ($path:tt) => {
        /// The `adapter-plugin` world (and every shared interface).
        mod adapter {
            wasmtime::component::bindgen!({
                path: $path,
                world: "adapter-plugin",
                imports: { default: async | trappable },
                exports: { default: async },
                trappable_error_type: {
                    "cutover:plugin/types.host-error" => crate::plugin::model::HostError,
                },
            });
        }

        /// The `strategy-plugin` world, sharing `types` and `log` with the adapter's bindings.
        mod strategy {
            wasmtime::component::bindgen!({
                path: $path,
                world: "strategy-plugin",
                imports: { default: async | trappable },
                exports: { default: async },
                with: {
                    "cutover:plugin/types": super::adapter::cutover::plugin::types,
                    "cutover:plugin/log": super::adapter::cutover::plugin::log,
                },
            });
        }
    };
}

/// `fn preflight_context`: what `preflight` is told, in one contract version's terms, with
/// the fields that version added after 1.0 (`waves: ...` from 1.3 on).
macro_rules! preflight_context {
    ($($field:ident: $value:expr),*) => {
        /// What `preflight` is told, in this version's terms.
        fn preflight_context(ctx: &m::PreflightContext) -> a::PreflightContext {
            a::PreflightContext {
                rollout_id: ctx.rollout_id.clone(),
                params: pairs(&ctx.params),
                strategy: ctx.strategy.clone(),
                dirs: ctx.dirs.iter().map(dir_grant).collect(),
                $($field: $value(ctx),)*
            }
        }
    };
}

pub mod since_v1_0_0;
pub mod since_v1_1_0;
pub mod since_v1_2_0;
pub mod since_v1_3_0;
mod tcp;
pub mod validate;

pub use calls::{AdapterPlugin, StrategyPlugin};
pub use runtime::{CallEnv, FaultKind, NullSink, PluginFault, Runtime, Sink, World};
