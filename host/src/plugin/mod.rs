//! Plugins: loading, caching, sandboxing and calling WebAssembly components.

pub mod authority;
pub mod bindings;
pub mod cache;
pub mod files;
mod host_calls;
pub mod process;
pub mod runtime;

pub use runtime::{
    AdapterPlugin, CallEnv, FaultKind, NullSink, PluginFault, Runtime, Sink, StrategyPlugin, World,
};
