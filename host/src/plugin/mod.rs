//! Plugins: loading, caching, sandboxing and calling WebAssembly components.

pub mod bindings;
pub mod cache;
pub mod caps;
pub mod files;
mod host_calls;
pub mod runtime;

pub use runtime::{
    AdapterPlugin, CallEnv, FaultKind, NullSink, PluginFault, Runtime, Sink, StrategyPlugin, World,
};
