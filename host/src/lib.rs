//! Cutover: zero-downtime fleet rollouts driven by sandboxed WebAssembly plugins.
//!
//! The binary is a thin CLI over this library: [`spec`] reads a rollout spec, [`plugin`]
//! loads and sandboxes plugins, [`engine`] runs a rollout and [`journal`] makes it durable.

pub mod bench;
pub mod cli;
pub mod engine;
pub mod journal;
pub mod kit;
pub mod plugin;
pub mod redact;
pub mod remote;
pub mod serve;
pub mod spec;
pub mod store;
pub mod ui;
