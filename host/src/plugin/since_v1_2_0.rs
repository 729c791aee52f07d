//! Contract 1.2.0 (`wit/since_v1.2.0`, frozen): its generated bindings, the host calls they carry to
//! [`host_calls`](super::host_calls), and conversions to and from the host's
//! [`model`](super::model). Nothing outside this file sees a generated type.

use super::host_calls as hc;
use super::model as m;
use super::runtime::CallState;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

contract_worlds!("../wit/since_v1.2.0");

use adapter::cutover::plugin::{exec, files, http, log, secrets, tcp, tree, types as t};
use adapter::exports::cutover::plugin::adapter as a;
use strategy::exports::cutover::plugin::strategy as s;

/// The major and minor version of this contract.
pub const VERSION: (u64, u64) = (1, 2);

/// The capabilities 1.1 added (1.2 added none).
fn added_capability(c: a::Capability) -> m::Capability {
    match c {
        a::Capability::Tcp(x) => m::Capability::Tcp(x),
        _ => unreachable!("a capability of 1.0, converted in contract_1x.rs"),
    }
}

preflight_context!();

include!("contract_1x.rs");
include!("contract_tcp.rs");
include!("contract_1_2.rs");
