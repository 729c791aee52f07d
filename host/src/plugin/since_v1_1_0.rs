//! Contract 1.1.0 (`wit/since_v1.1.0`, frozen): its generated bindings, the host calls they
//! carry to [`host_calls`](super::host_calls), and conversions to and from the host's
//! [`model`](super::model). Nothing outside this file sees a generated type.

use super::host_calls as hc;
use super::model as m;
use super::runtime::CallState;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Engine, Store};

/// The `adapter-plugin` world (and every shared interface).
mod adapter {
    wasmtime::component::bindgen!({
        path: "../wit/since_v1.1.0",
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
        path: "../wit/since_v1.1.0",
        world: "strategy-plugin",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "cutover:plugin/types": super::adapter::cutover::plugin::types,
            "cutover:plugin/log": super::adapter::cutover::plugin::log,
        },
    });
}

use adapter::cutover::plugin::{exec, files, http, log, secrets, tcp, types as t};
use adapter::exports::cutover::plugin::adapter as a;
use strategy::exports::cutover::plugin::strategy as s;

/// The major and minor version of this contract.
pub const VERSION: (u64, u64) = (1, 1);

fn capability(c: a::Capability) -> m::Capability {
    match c {
        a::Capability::Dir(d) => m::Capability::Dir(m::DirRequest {
            path: d.path,
            access: access(d.access),
        }),
        a::Capability::Exec(x) => m::Capability::Exec(x),
        a::Capability::Http(x) => m::Capability::Http(x),
        a::Capability::Tcp(x) => m::Capability::Tcp(x),
        a::Capability::Secret(x) => m::Capability::Secret(x),
        a::Capability::Env(x) => m::Capability::Env(x),
    }
}

include!("contract_1x.rs");

impl tcp::Host for CallState {
    async fn converse(&mut self, c: tcp::Conversation) -> Result<Vec<Vec<u8>>, m::HostError> {
        let talk = hc::Conversation {
            address: c.address,
            exchanges: c
                .exchanges
                .into_iter()
                .map(|e| hc::Exchange {
                    send: e.send,
                    until: e.until,
                })
                .collect(),
            timeout_ms: c.timeout_ms,
        };
        CallState::converse(self, talk).await
    }
}
