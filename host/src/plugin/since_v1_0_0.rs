//! Contract 1.0.0 (`wit/since_v1.0.0`, frozen): its generated bindings, the host calls they
//! carry to [`host_calls`](super::host_calls), and conversions to and from the host's
//! [`model`](super::model). Nothing outside this file sees a generated type.

use super::host_calls as hc;
use super::model as m;
use super::runtime::CallState;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

contract_worlds!("../wit/since_v1.0.0");

use adapter::cutover::plugin::{exec, files, http, log, secrets, types as t};
use adapter::exports::cutover::plugin::adapter as a;
use strategy::exports::cutover::plugin::strategy as s;

/// The major and minor version of this contract.
pub const VERSION: (u64, u64) = (1, 0);

/// 1.0 is the first version: it added nothing.
fn added_capability(_: a::Capability) -> m::Capability {
    unreachable!("every capability of 1.0 is converted in contract_1x.rs")
}

preflight_context!();

include!("contract_1x.rs");
