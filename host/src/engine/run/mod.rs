//! Running the stages of a rollout: waves of targets with bounded concurrency, each target's
//! steps in order with every start and end journaled before the next, undo on failure, the
//! strategy's decision after each wave.

use super::state::{derive, Progress, Subject};
use super::{Env, Setup};
use crate::engine::plan::StepInfo;
use crate::engine::plan::{XPlan, XStage};
use crate::engine::transport::{BoxFuture, StepCall, Transport};
use crate::journal::{Action, Op, OutputRec, Status, StepEnd, StepStart, StepState, TargetState};
use crate::plugin::model::{
    Constraint, Decision, DecisionKind, Output, Pair, Phase, Scope, Step, StepContext, WaveReport,
};
use crate::plugin::{CallEnv, Sink, StrategyPlugin};
use anyhow::Result;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

mod drive;
mod gate;
mod settle;
mod step;
mod undo;

pub use settle::{InFlight, InFlightChoices};

/// How a rollout ended (or paused).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: i64,
    pub status: Status,
    pub reason: String,
}

/// Most attempts of a step that fails with a transient error.
const MAX_ATTEMPTS: u32 = 3;

/// One rollout being driven by this process.
pub(crate) struct Run {
    inner: Arc<Inner>,
}

struct Inner {
    env: Env,
    id: i64,
    p: Arc<Setup>,
    plan: XPlan,
    /// The adapter's constraints, checked again before each wave starts.
    constraints: Vec<Constraint>,
    transport: Arc<dyn Transport>,
    decider: Arc<dyn Decide>,
    target_index: HashMap<String, usize>,
    seq: AtomicI64,
    abort: AtomicBool,
    /// Flips to true when the operator aborts: steps in flight are interrupted.
    aborted: tokio::sync::watch::Sender<bool>,
    /// Why no new step may start (a signal, a journal fault); steps in flight finish.
    halt: std::sync::Mutex<Option<Halt>>,
    failed_total: AtomicU32,
    /// Takes the measurements of analysis gates.
    measure: Arc<dyn crate::engine::analysis::Measure>,
    /// Why a background analysis wants the rollout rolled back.
    alarm: std::sync::Mutex<Option<String>>,
}

/// Who decides what the fleet does after each wave: the strategy plugin, or a fake in tests.
pub trait Decide: Send + Sync {
    /// The decision after a wave; an error is a fault of the strategy.
    fn decide<'a>(&'a self, report: &'a WaveReport) -> BoxFuture<'a, Result<Decision, String>>;
    /// `name@version`, shown with the decision.
    fn label(&self) -> &str;
    /// Whether targets failing in wave `wave_index` are left as they are instead of undone.
    fn keeps_failed(&self, wave_index: u32) -> BoxFuture<'_, Result<bool, String>> {
        let _ = wave_index;
        Box::pin(async { Ok(false) })
    }
}

/// The strategy plugin as a [`Decide`].
pub struct PluginDecider {
    pub plugin: Arc<StrategyPlugin>,
    pub label: String,
    pub params: Vec<Pair>,
    pub budget: Duration,
    pub sink: Arc<dyn Sink>,
}

impl Decide for PluginDecider {
    fn decide<'a>(&'a self, report: &'a WaveReport) -> BoxFuture<'a, Result<Decision, String>> {
        Box::pin(async move {
            let env = CallEnv::bare(&self.label, self.budget, self.sink.clone());
            self.plugin
                .decide(env, report, &self.params)
                .await
                .map_err(|f| f.to_string())
        })
    }

    fn label(&self) -> &str {
        &self.label
    }

    fn keeps_failed(&self, wave_index: u32) -> BoxFuture<'_, Result<bool, String>> {
        Box::pin(async move {
            let env = CallEnv::bare(&self.label, self.budget, self.sink.clone());
            self.plugin
                .keeps_failed(env, wave_index, &self.params)
                .await
                .map_err(|f| f.to_string())
        })
    }
}

impl Run {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        env: Env,
        id: i64,
        p: Arc<Setup>,
        transport: Arc<dyn Transport>,
        decider: Arc<dyn Decide>,
        plan: XPlan,
        constraints: Vec<Constraint>,
        first_seq: i64,
    ) -> Result<Run> {
        let mut plan = plan;
        if plan.steps.is_empty() {
            // A plan journaled before step declarations were kept with it.
            plan.steps = crate::engine::plan::StepInfo::of(&p.desc);
        }
        let failed_total = derive(&env.journal.steps(id)?)
            .values()
            .filter(|pr| {
                matches!(
                    pr.state(&plan.steps),
                    TargetState::Failed | TargetState::NeedsAttention
                )
            })
            .count() as u32;
        let (env_measure, p_measure) = (env.clone(), p.spec.clone());
        let target_index = p
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i))
            .collect();
        Ok(Run {
            inner: Arc::new(Inner {
                env,
                id,
                p,
                plan,
                constraints,
                transport,
                decider,
                target_index,
                seq: AtomicI64::new(first_seq),
                abort: AtomicBool::new(false),
                aborted: tokio::sync::watch::Sender::new(false),
                halt: std::sync::Mutex::new(None),
                failed_total: AtomicU32::new(failed_total),
                measure: Arc::new(crate::engine::analysis::Providers::new(
                    env_measure,
                    p_measure,
                )),
                alarm: std::sync::Mutex::new(None),
            }),
        })
    }

    /// Take analysis measurements with `m` instead of the spec's providers (tests).
    #[cfg(test)]
    pub(crate) fn with_measure(mut self, m: Arc<dyn crate::engine::analysis::Measure>) -> Self {
        Arc::get_mut(&mut self.inner)
            .expect("before the run starts")
            .measure = m;
        self
    }

    pub(crate) fn target_keys(&self) -> Vec<String> {
        self.inner
            .p
            .targets
            .iter()
            .map(|t| format!("{}/{}", t.host, t.id))
            .collect()
    }

    /// What a first SIGTERM does, for tests that cannot send one to themselves.
    #[cfg(test)]
    pub(crate) fn interrupter(&self) -> impl Fn() + Send + 'static {
        let me = self.inner.clone();
        move || me.stop(Halt::Signal("interrupted by SIGTERM".into()))
    }

    /// Run the stages from the journaled cursor to the end (or a pause).
    pub(crate) async fn drive(self) -> Result<Outcome> {
        let me = self.inner.clone();
        let poller = tokio::spawn(poll_abort(me.clone()));
        let signals = tokio::spawn(watch_signals(me.clone()));
        let renewer = tokio::spawn(renew_leases(me.clone()));
        let watchers: Vec<_> =
            me.p.spec
                .analyses
                .iter()
                .filter(|a| a.background)
                .map(|a| tokio::spawn(me.clone().background(a.clone())))
                .collect();
        let out = me.clone().drive_stages().await;
        for w in watchers {
            w.abort();
        }
        poller.abort();
        signals.abort();
        renewer.abort();
        me.journal_fault(out)
    }

    /// Undo every target and fleet step that completed.
    pub(crate) async fn rollback_all(self, reason: &str) -> Result<Outcome> {
        let me = self.inner.clone();
        let signals = tokio::spawn(watch_signals(me.clone()));
        let renewer = tokio::spawn(renew_leases(me.clone()));
        let out = me.rollback_all(me.plan.stages.len(), reason).await;
        signals.abort();
        renewer.abort();
        me.journal_fault(out)
    }
}

/// Keep the node leases alive while this process runs the rollout.
async fn renew_leases(me: Arc<Inner>) {
    if me.p.lease_paths.is_empty() {
        return;
    }
    let holder = crate::engine::lease::Holder::me(me.id, me.env.journal.path(), "");
    loop {
        tokio::time::sleep(crate::engine::lease::RENEW_EVERY).await;
        crate::engine::lease::renew(&me.p.lease_paths, &holder);
    }
}

/// Why a run stops starting steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Halt {
    /// SIGINT or SIGTERM: the rollout ends `interrupted`, `resume` goes on.
    Signal(String),
    /// The journal cannot be written: nothing more can be recorded.
    Journal(String),
}

/// SIGINT and SIGTERM: the first stops new steps (those in flight finish), the second
/// interrupts the steps in flight too. Step programs run in their own process groups, so a
/// Ctrl-C at the terminal reaches only Cutover.
async fn watch_signals(me: Arc<Inner>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    let mut seen = 0;
    loop {
        let name = tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        };
        seen += 1;
        if seen == 1 {
            me.stop(Halt::Signal(format!("interrupted by {name}")));
            me.env.ui.note(&format!(
                "{name}: no new step starts; the steps in flight finish (send it again to interrupt them)"
            ));
        } else {
            me.env
                .ui
                .note(&format!("{name} again: interrupting the steps in flight"));
            me.aborted.send_replace(true);
        }
    }
}

async fn poll_abort(me: Arc<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if let Ok(r) = me.env.journal.rollout(me.id) {
            if r.abort_requested {
                me.abort.store(true, Ordering::SeqCst);
                me.aborted.send_replace(true);
                return;
            }
        }
    }
}

fn to_rec(o: &Output) -> OutputRec {
    OutputRec {
        key: o.key.clone(),
        value: o.value.clone(),
        secret: o.secret,
    }
}

fn to_out(o: &OutputRec) -> Output {
    Output {
        key: o.key.clone(),
        value: o.value.clone(),
        secret: o.secret,
    }
}

impl Inner {
    fn next_seq(&self) -> i64 {
        self.seq.fetch_add(1, Ordering::SeqCst)
    }

    fn budget(&self, step: &str) -> Duration {
        crate::engine::duration::step_budget(
            &self.p.desc,
            &self.p.spec.timeouts,
            self.p.spec.limits.max_step_timeout,
            step,
        )
    }

    fn finish(&self, status: Status, reason: String) -> Result<Outcome> {
        self.env.journal.set_status(self.id, status, &reason)?;
        if status.is_final() {
            crate::engine::release(&self.env.journal, self.id)?;
        }
        Ok(Outcome {
            id: self.id,
            status,
            reason,
        })
    }

    /// The result of a journal write: a failure stops every target from starting another
    /// step (the journal cannot record it).
    pub(super) fn recorded<T>(&self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            self.stop(Halt::Journal(e.to_string()));
        }
        r
    }

    /// Stop starting steps, for `why` (the first reason is kept).
    pub(super) fn stop(&self, why: Halt) {
        let mut h = self.halt.lock().unwrap();
        if h.is_none() {
            *h = Some(why);
        }
    }

    /// Why no new step may start, if so.
    pub(super) fn halted(&self) -> Option<Halt> {
        self.halt.lock().unwrap().clone()
    }

    /// A journal fault becomes the run's error, saying what was and was not done.
    fn journal_fault(&self, out: Result<Outcome>) -> Result<Outcome> {
        if let Err(e) = &out {
            if crate::journal::WriteFailed::is(e) {
                self.stop(Halt::Journal(e.to_string()));
            }
        }
        if let Some(Halt::Journal(e)) = self.halted() {
            anyhow::bail!(
                "the journal {} could not be written ({e}): no new step was started and the steps in flight were let finish; when it can be written again, `cutover status {id}` shows where the rollout stands and `cutover resume {id}` goes on",
                self.env.journal.path().display(),
                id = self.id
            )
        }
        out
    }

    /// Each target's state, given the progress read from the journal.
    pub(super) fn states_of(
        &self,
        progress: &HashMap<String, Progress>,
    ) -> HashMap<String, TargetState> {
        self.p
            .targets
            .iter()
            .map(|t| {
                let state = progress
                    .get(&t.id)
                    .map(|p| p.state(&self.plan.steps))
                    .unwrap_or(TargetState::Pending);
                (t.id.clone(), state)
            })
            .collect()
    }

    fn progress(&self) -> Result<HashMap<String, Progress>> {
        Ok(derive(&self.env.journal.steps(self.id)?))
    }
}
