//! The boundary between the engine and where adapter code runs. Local targets run the
//! adapter in this process's sandbox; a remote transport runs the same sandbox on the
//! target's host, so adapters never change.

use crate::plugin::authority::{self, text, Effective};
use crate::plugin::model::{Output, StepContext, Target};
use crate::plugin::{AdapterPlugin, CallEnv, Sink};
use crate::spec::Limits;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed future, as a trait object can return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One step call.
pub struct StepCall {
    pub step: String,
    pub target: Option<Target>,
    /// Where it runs: `local`, or the host whose agent runs it (the target's host, or the
    /// spec's `fleet-host` for a fleet step).
    pub host: String,
    pub ctx: StepContext,
    pub caps: Effective,
    pub budget: Duration,
    /// The call may run again when its outcome is unknown (the step, or its undo, is
    /// declared idempotent).
    pub rerun: bool,
}

/// Most bytes of outputs one step may return (they are journaled).
pub const MAX_OUTPUTS: usize = 1 << 20;

/// Why a step did not complete: the adapter's own error or a fault of its sandbox.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StepFailure {
    pub message: String,
    pub transient: bool,
    pub outputs: Vec<Output>,
    /// Whether the step's host was lost while it ran.
    #[serde(default)]
    pub lost: Lost,
}

/// What became of a step whose host's connection was lost while it ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Lost {
    /// The host was not lost: the failure is the step's own.
    #[default]
    No,
    /// The host came back, but the step may not run again: its outcome is unknown, and it
    /// is handled like a crash (it stays in flight; `resume` settles it).
    Unknown,
    /// The host did not come back within the step's budget (or was lost earlier in the
    /// run): the step failed, and so does every later call to that host in this run.
    HostDown(String),
}

/// Runs adapter steps somewhere.
pub trait Transport: Send + Sync {
    /// Run a step.
    fn run<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<Vec<Output>, StepFailure>>;
    /// Undo a completed step.
    fn undo<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<(), StepFailure>>;
}

/// Adapter steps in this process's sandbox.
pub struct Local {
    pub adapter: Arc<AdapterPlugin>,
    pub label: String,
    pub sink: Arc<dyn Sink>,
    pub secrets: BTreeMap<String, String>,
    pub limits: Limits,
}

impl Local {
    fn env(&self, call: &StepCall) -> Arc<CallEnv> {
        let secrets = call.caps.secret_values(&self.secrets);
        Arc::new(CallEnv {
            plugin: self.label.clone(),
            step: Some(call.step.clone()),
            target: call.target.as_ref().map(|t| t.id.clone()),
            caps: call.caps.clone(),
            secrets,
            sink: self.sink.clone(),
            budget: call.budget,
            limits: self.limits,
        })
    }

    /// A failure the plugin reported, bounded in size, with the grant to add when the host can
    /// tell that a guest file error came from a path outside the grants.
    fn failure(
        &self,
        call: &StepCall,
        message: String,
        transient: bool,
        outputs: Vec<Output>,
    ) -> StepFailure {
        let mut message = text::cut(&message, self.limits.log_line_size, "log-line-size");
        if let Some(why) = authority::paths::explain(&call.caps, &message) {
            message = format!("{message} ({why})");
        }
        StepFailure {
            message,
            transient,
            outputs: bounded(outputs).unwrap_or_default(),
            lost: Lost::No,
        }
    }
}

/// Outputs as returned, unless they are too large to journal.
fn bounded(outputs: Vec<Output>) -> Result<Vec<Output>, String> {
    let size: usize = outputs.iter().map(|o| o.key.len() + o.value.len()).sum();
    if size > MAX_OUTPUTS {
        Err(format!(
            "the step returned {size} bytes of outputs, more than the {MAX_OUTPUTS} a step may keep in the journal"
        ))
    } else {
        Ok(outputs)
    }
}

/// The call's context, told which directories the call was granted.
fn with_dirs(ctx: &StepContext, env: &CallEnv) -> StepContext {
    StepContext {
        dirs: env.dir_grants(),
        ..ctx.clone()
    }
}

fn fault(e: crate::plugin::PluginFault) -> StepFailure {
    StepFailure {
        message: e.to_string(),
        transient: false,
        outputs: Vec::new(),
        lost: Lost::No,
    }
}

impl Transport for Local {
    fn run<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<Vec<Output>, StepFailure>> {
        Box::pin(async move {
            let env = self.env(call);
            let ctx = with_dirs(&call.ctx, &env);
            match self
                .adapter
                .run_step(env, &call.step, call.target.as_ref(), &ctx)
                .await
            {
                Ok(Ok(out)) => bounded(out).map_err(|m| self.failure(call, m, false, Vec::new())),
                Ok(Err(e)) => Err(self.failure(call, e.message, e.transient, e.outputs)),
                Err(f) => Err(fault(f)),
            }
        })
    }

    fn undo<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<(), StepFailure>> {
        Box::pin(async move {
            let env = self.env(call);
            let ctx = with_dirs(&call.ctx, &env);
            match self
                .adapter
                .undo_step(env, &call.step, call.target.as_ref(), &ctx)
                .await
            {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(self.failure(call, e.message, e.transient, e.outputs)),
                Err(f) => Err(fault(f)),
            }
        })
    }
}
