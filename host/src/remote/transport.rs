//! Steps of remote targets: each call to the least busy session of its host, reconnecting
//! within the call's budget when a session is lost, and a host that does not come back (or
//! that the operator leaves out) down for the rest of the run.

use super::client::{NoReply, Session};
use super::proto::{Reply, Request, WireCall};
use crate::engine::transport::{BoxFuture, Lost, StepCall, StepFailure, Transport};
use crate::plugin::model::Output;
use crate::plugin::{CallEnv, Sink};
use crate::spec::Limits;
use anyhow::{anyhow, bail, Result};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Steps of remote targets, over `[ssh] connections` sessions per host.
pub struct Remote {
    /// The live sessions of each host (one replaced when it is lost and reopened).
    pub sessions: BTreeMap<String, Vec<Mutex<Arc<Session>>>>,
    /// How hosts are reached, and the adapter they run, for reopening a lost session.
    pub ssh: crate::spec::Ssh,
    pub plugin: Arc<Vec<u8>>,
    pub digest: String,
    pub label: String,
    pub sink: Arc<dyn Sink>,
    pub secrets: BTreeMap<String, String>,
    pub limits: Limits,
    /// Hosts that did not come back within a step's budget, with why: every later call to
    /// them in this run fails at once.
    pub down: Mutex<BTreeMap<String, String>>,
}

impl Remote {
    fn wire(&self, call: &StepCall) -> Box<WireCall> {
        Box::new(WireCall {
            digest: self.digest.clone(),
            label: self.label.clone(),
            step: call.step.clone(),
            target: call.target.clone(),
            ctx: call.ctx.clone(),
            caps: call.caps.clone(),
            budget_ms: call.budget.as_millis() as u64,
            secrets: call.caps.secret_values(&self.secrets),
            limits: self.limits,
        })
    }

    /// The first live session of `host` (leases and preflight go through it).
    pub fn session_of(&self, host: &str) -> Option<Arc<Session>> {
        self.sessions
            .get(host)
            .and_then(|s| s.first())
            .map(|s| s.lock().unwrap().clone())
    }

    /// The session of `host` with the fewest calls waiting, and its slot.
    fn pick(&self, host: &str) -> Option<(usize, Arc<Session>)> {
        self.sessions
            .get(host)?
            .iter()
            .map(|s| s.lock().unwrap().clone())
            .enumerate()
            .min_by_key(|(_, s)| s.load())
    }

    /// Session `slot` of `host` open again, tried with backoff until `deadline`.
    async fn reopen(&self, host: &str, slot: usize, deadline: Instant) -> Option<Arc<Session>> {
        let mut wait = Duration::from_millis(250);
        while Instant::now() + wait < deadline {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(5));
            if let Ok(s) = Session::open(host, &self.ssh, &self.plugin, &self.digest).await {
                let s = Arc::new(s);
                *self.sessions.get(host)?.get(slot)?.lock().unwrap() = s.clone();
                return Some(s);
            }
        }
        None
    }

    /// Send a call, and when the session is lost while it runs: reconnect within the call's
    /// budget and send it again when it may run again; otherwise its outcome is unknown
    /// (`Lost::Unknown`). A host that does not come back within the budget is down for the
    /// rest of the run (`Lost::HostDown`): this call and every later one to it fail.
    async fn call(
        &self,
        call: &StepCall,
        make: impl Fn(u64) -> Request,
    ) -> Result<Reply, StepFailure> {
        let host = call.host.as_str();
        if let Some(why) = self.down.lock().unwrap().get(host) {
            return Err(down(
                host,
                format!("host `{host}` is down ({why}); not tried again in this run"),
            ));
        }
        let deadline = Instant::now() + call.budget;
        let (slot, mut s) = self
            .pick(host)
            .ok_or_else(|| down(host, format!("host `{host}`: no session")))?;
        loop {
            let (err, sent) = match s
                .send(&make, Some((self.env(call), self.sink.clone())))
                .await
            {
                Ok(Reply::Refused { id: None, message }) => {
                    (format!("the agent gave up: {message}"), true)
                }
                Ok(reply) => return Ok(reply),
                Err(NoReply::Lost(e)) => (e, true),
                Err(NoReply::Unsent(e)) => (e, false),
            };
            let Some(again) = self.reopen(host, slot, deadline).await else {
                let why = format!(
                    "lost during `{}`{} and not back within its budget of {} s: {err}",
                    call.step,
                    call.target
                        .as_ref()
                        .map(|t| format!(" of {}", t.id))
                        .unwrap_or_default(),
                    call.budget.as_secs(),
                );
                self.down
                    .lock()
                    .unwrap()
                    .entry(host.to_string())
                    .or_insert_with(|| why.clone());
                let outcome = if sent {
                    format!("the outcome of `{}` is unknown", call.step)
                } else {
                    format!("`{}` was not sent", call.step)
                };
                return Err(down(host, format!("host `{host}` {why}; {outcome}")));
            };
            if sent && !call.rerun {
                return Err(lost(
                    host,
                    &format!(
                        "{err}; reconnected, but `{}` is not idempotent: its outcome is unknown",
                        call.step
                    ),
                ));
            }
            s = again;
        }
    }

    /// The call's environment on this side: what its log lines and progress are shown with
    /// (its secrets travel in the request, never here).
    fn env(&self, call: &StepCall) -> Arc<CallEnv> {
        self.env_of(
            Some(call.step.clone()),
            call.target.as_ref().map(|t| t.id.clone()),
            call.caps.clone(),
            call.budget,
        )
    }

    fn env_of(
        &self,
        step: Option<String>,
        target: Option<String>,
        caps: crate::plugin::authority::Effective,
        budget: Duration,
    ) -> Arc<CallEnv> {
        Arc::new(CallEnv {
            plugin: self.label.clone(),
            step,
            target,
            caps,
            secrets: BTreeMap::new(),
            sink: self.sink.clone(),
            budget,
            limits: self.limits,
        })
    }
}

/// A step whose host was lost and came back: its outcome is unknown.
fn lost(host: &str, why: &str) -> StepFailure {
    StepFailure {
        message: format!("host `{host}`: {why}"),
        transient: false,
        outputs: Vec::new(),
        lost: Lost::Unknown,
    }
}

/// A step whose host is down: it failed.
fn down(host: &str, message: String) -> StepFailure {
    StepFailure {
        message,
        transient: false,
        outputs: Vec::new(),
        lost: Lost::HostDown(host.to_string()),
    }
}

impl Transport for Remote {
    fn run<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<Vec<Output>, StepFailure>> {
        Box::pin(async move {
            match self
                .call(call, |id| Request::Run {
                    id,
                    call: self.wire(call),
                })
                .await?
            {
                Reply::Ran { result, .. } => result,
                other => Err(lost(&call.host, &format!("unexpected answer {other:?}"))),
            }
        })
    }

    fn undo<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<(), StepFailure>> {
        Box::pin(async move {
            match self
                .call(call, |id| Request::Undo {
                    id,
                    call: self.wire(call),
                })
                .await?
            {
                Reply::Undone { result, .. } => result,
                other => Err(lost(&call.host, &format!("unexpected answer {other:?}"))),
            }
        })
    }
}

impl Remote {
    /// Preflight of `targets` (all on `host`) by that host's agent.
    pub async fn preflight(
        &self,
        host: &str,
        targets: Vec<crate::plugin::model::Target>,
        ctx: crate::plugin::model::PreflightContext,
        caps: &crate::plugin::authority::Effective,
    ) -> Result<Vec<crate::plugin::model::Finding>> {
        let s = self
            .session_of(host)
            .ok_or_else(|| anyhow!("host `{host}`: no session"))?;
        let (digest, label, limits) = (self.digest.clone(), self.label.clone(), self.limits);
        let secrets = caps.secret_values(&self.secrets);
        let caps = caps.clone();
        let env = self.env_of(None, None, caps.clone(), limits.call_timeout);
        match s
            .ask(
                |id| Request::Preflight {
                    id,
                    call: Box::new(super::proto::PreflightCall {
                        digest,
                        label,
                        targets,
                        ctx,
                        caps,
                        secrets,
                        limits,
                    }),
                },
                Some((env, self.sink.clone())),
            )
            .await?
        {
            Reply::Preflighted { result, .. } => result.map_err(|e| anyhow!("host `{host}`: {e}")),
            other => bail!("host `{host}`: unexpected answer {other:?}"),
        }
    }
}
