//! Plugins: loading, caching, sandboxing and calling WebAssembly components.

pub mod authority;
pub mod cache;
pub mod files;
mod host_calls;
pub mod model;
pub mod process;
pub mod runtime;
pub mod since_v1_0_0;
pub mod since_v1_1_0;
mod tcp;
pub mod validate;

pub use runtime::{
    AdapterPlugin, CallEnv, FaultKind, NullSink, PluginFault, Runtime, Sink, StrategyPlugin, World,
};
