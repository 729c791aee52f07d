//! The agent protocol: what the controller and `cutover agent --stdio` say to each other over
//! one SSH session. Each message is one length-delimited frame (tokio-util's codec) holding
//! a postcard encoding of [`Request`] or [`Reply`]; calls carry an id, so many run at once.

use crate::engine::transport::StepFailure;
use crate::plugin::authority::Effective;
use crate::plugin::model::{Finding, Level, Output, PreflightContext, StepContext, Target};
use crate::spec::Limits;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped on any change to the messages; both sides must agree.
pub const PROTOCOL: u32 = 1;

/// Largest frame either side accepts (a plugin is sent in one).
pub const MAX_FRAME: usize = 256 << 20;

/// From the controller to the agent.
#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    /// The first message: who is calling.
    Hello { protocol: u32, cutover: String },
    /// Does the agent hold the plugin with this sha256?
    Have { id: u64, digest: String },
    /// A plugin's bytes, stored by the agent in its cache under their sha256.
    Plugin {
        id: u64,
        digest: String,
        bytes: Vec<u8>,
    },
    /// Run a step.
    Run { id: u64, call: Box<WireCall> },
    /// Undo a step.
    Undo { id: u64, call: Box<WireCall> },
    /// Check the change on this host's targets before anything runs.
    Preflight { id: u64, call: Box<PreflightCall> },
    /// Lease records on this host (see `engine::lease`).
    Lease {
        id: u64,
        op: LeaseOp,
        paths: Vec<String>,
        holder: String,
    },
}

/// A preflight as the agent needs it.
#[derive(Debug, Serialize, Deserialize)]
pub struct PreflightCall {
    pub digest: String,
    pub label: String,
    pub targets: Vec<Target>,
    pub ctx: PreflightContext,
    pub caps: Effective,
    pub secrets: BTreeMap<String, String>,
    pub limits: Limits,
}

/// What to do with leases.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub enum LeaseOp {
    Take,
    Renew,
    Release,
}

/// A step call as the agent needs it: everything resolved by the controller; the agent
/// enforces it with the same capability code as a local run.
#[derive(Debug, Serialize, Deserialize)]
pub struct WireCall {
    pub digest: String,
    /// `name@version` of the adapter.
    pub label: String,
    pub step: String,
    pub target: Option<Target>,
    pub ctx: StepContext,
    pub caps: Effective,
    pub budget_ms: u64,
    /// Only the secrets this call is granted; never written to disk.
    pub secrets: BTreeMap<String, String>,
    pub limits: Limits,
}

/// From the agent to the controller.
#[derive(Debug, Serialize, Deserialize)]
pub enum Reply {
    Hello {
        protocol: u32,
        cutover: String,
        host: String,
    },
    Have {
        id: u64,
        present: bool,
    },
    Stored {
        id: u64,
    },
    Log {
        id: u64,
        level: Level,
        message: String,
    },
    Progress {
        id: u64,
        message: String,
        fraction: Option<f32>,
    },
    Ran {
        id: u64,
        result: Result<Vec<Output>, StepFailure>,
    },
    Undone {
        id: u64,
        result: Result<(), StepFailure>,
    },
    Leased {
        id: u64,
        result: Result<(), String>,
    },
    Preflighted {
        id: u64,
        result: Result<Vec<Finding>, String>,
    },
    /// The request could not be served at all (no id: the session as a whole).
    Refused {
        id: Option<u64>,
        message: String,
    },
}

/// Encode a message for a frame.
pub fn encode<T: Serialize>(m: &T) -> anyhow::Result<bytes::Bytes> {
    Ok(postcard::to_stdvec(m)?.into())
}

/// Decode a frame.
pub fn decode<'a, T: Deserialize<'a>>(frame: &'a [u8]) -> anyhow::Result<T> {
    Ok(postcard::from_bytes(frame)?)
}

/// The codec of both sides.
pub fn codec() -> tokio_util::codec::LengthDelimitedCodec {
    tokio_util::codec::LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec()
}
