//! Running the stages of a rollout: waves of targets with bounded concurrency, each target's
//! steps in order with every start and end journaled before the next, undo on failure, the
//! strategy's decision after each wave.

use super::plan::{XPlan, XStage};
use super::state::{derive, Progress};
use super::transport::{Local, StepCall, Transport};
use super::{Env, Prepared};
use crate::journal::{Action, Op, OutputRec, Status, TargetState};
use crate::plugin::bindings::{
    Constraint, DecisionKind, Output, Phase, Scope, Step, StepContext, WaveReport,
};
use crate::plugin::CallEnv;
use anyhow::Result;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How a rollout ended (or paused).
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub id: i64,
    pub status: Status,
    pub reason: String,
}

/// What to do with a non-idempotent step that was running when cutover stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlight {
    /// It completed: go on after it.
    Done,
    /// Run it again.
    Retry,
    /// It failed: undo the target.
    Failed,
}

/// The operator's answers about in-flight steps: one for all, and/or one per target
/// (`fleet` names the fleet's own steps).
#[derive(Debug, Clone, Default)]
pub struct InFlightChoices {
    pub all: Option<InFlight>,
    pub per_target: HashMap<String, InFlight>,
}

impl InFlightChoices {
    /// Parse `done`, `retry`, `failed` or `TARGET=done|retry|failed` values.
    pub fn parse(values: &[String]) -> Result<Self, String> {
        let mut c = InFlightChoices::default();
        for v in values {
            let (target, choice) = match v.split_once('=') {
                Some((t, c)) => (Some(t.trim()), c.trim()),
                None => (None, v.trim()),
            };
            let choice = match choice {
                "done" => InFlight::Done,
                "retry" => InFlight::Retry,
                "failed" => InFlight::Failed,
                other => {
                    return Err(format!(
                        "--in-flight `{other}` is not done, retry or failed (write e.g. `done` or `node-05=retry`)"
                    ))
                }
            };
            match target {
                Some(t) => {
                    let t = if t == "fleet" { "" } else { t };
                    c.per_target.insert(t.to_string(), choice);
                }
                None => c.all = Some(choice),
            }
        }
        Ok(c)
    }

    fn for_target(&self, target: &str) -> Option<InFlight> {
        self.per_target.get(target).copied().or(self.all)
    }
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
    p: Prepared,
    plan: XPlan,
    /// The adapter's constraints, checked again before each wave starts.
    constraints: Vec<Constraint>,
    transport: Arc<dyn Transport>,
    steps: HashMap<String, Step>,
    target_index: HashMap<String, usize>,
    seq: AtomicI64,
    abort: AtomicBool,
    /// Flips to true when the operator aborts: steps in flight are interrupted.
    aborted: tokio::sync::watch::Sender<bool>,
    failed_total: AtomicU32,
}

impl Run {
    pub(crate) fn new(
        env: Env,
        id: i64,
        p: Prepared,
        plan: XPlan,
        constraints: Vec<Constraint>,
        first_seq: i64,
    ) -> Result<Run> {
        let transport = Arc::new(Local {
            adapter: p.adapter.clone(),
            label: p.adapter_label.clone(),
            sink: env.sink(Some(id)),
            secrets: p.secrets.clone(),
            limits: p.spec.limits,
        });
        let steps = p
            .desc
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.clone()))
            .collect();
        let failed_total = env
            .journal
            .targets(id)?
            .iter()
            .filter(|t| matches!(t.state, TargetState::Failed | TargetState::NeedsAttention))
            .count() as u32;
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
                steps,
                target_index,
                seq: AtomicI64::new(first_seq),
                abort: AtomicBool::new(false),
                aborted: tokio::sync::watch::Sender::new(false),
                failed_total: AtomicU32::new(failed_total),
            }),
        })
    }

    pub(crate) fn target_keys(&self) -> Vec<String> {
        self.inner
            .p
            .targets
            .iter()
            .map(|t| format!("{}/{}", t.host, t.id))
            .collect()
    }

    /// Resolve records left `started` by a crash. Returns an outcome when the rollout must
    /// pause for the operator.
    pub(crate) fn settle_in_flight(&self, choices: &InFlightChoices) -> Result<Option<Outcome>> {
        let me = &self.inner;
        let rows = me.env.journal.steps(me.id)?;
        let mut blocked = Vec::new();
        for p in derive(&rows).values() {
            for r in &p.in_flight {
                let idempotent = me.steps.get(&r.step).map(|s| s.idempotent).unwrap_or(false);
                let who = if r.target.is_empty() {
                    "the fleet".to_string()
                } else {
                    format!("target `{}`", r.target)
                };
                if r.action == Action::Undo || idempotent {
                    me.env.journal.settle(me.id, r.seq, "abandoned")?;
                    me.env.ui.note(&format!(
                        "{} of step `{}` on {who} was in flight when cutover stopped: it is idempotent and runs again",
                        if r.action == Action::Undo { "undo" } else { "run" },
                        r.step
                    ));
                    continue;
                }
                match choices.for_target(&r.target) {
                    Some(InFlight::Done) => me.env.journal.settle(me.id, r.seq, "ok")?,
                    Some(InFlight::Retry) => me.env.journal.settle(me.id, r.seq, "abandoned")?,
                    Some(InFlight::Failed) => me.env.journal.settle(me.id, r.seq, "failed")?,
                    None => blocked.push(format!("step `{}` on {who}", r.step)),
                }
            }
        }
        if blocked.is_empty() {
            return Ok(None);
        }
        let reason = format!(
            "{} was in flight when cutover stopped and is not idempotent: check it, then run `cutover resume {id} --in-flight TARGET=done` if it completed, `TARGET=retry` to run it again or `TARGET=failed` to undo the target (repeat per target; a bare `done|retry|failed` answers for all)",
            blocked.join(", "),
            id = me.id
        );
        me.env.journal.set_status(me.id, Status::Paused, &reason)?;
        Ok(Some(Outcome {
            id: me.id,
            status: Status::Paused,
            reason,
        }))
    }

    /// Run the stages from the journaled cursor to the end (or a pause).
    pub(crate) async fn drive(self) -> Result<Outcome> {
        let me = self.inner.clone();
        let poller = tokio::spawn(poll_abort(me.clone()));
        let out = me.clone().drive_stages().await;
        poller.abort();
        out
    }

    /// Undo every target and fleet step that completed.
    pub(crate) async fn rollback_all(self, reason: &str) -> Result<Outcome> {
        let me = self.inner.clone();
        me.rollback_all(me.plan.stages.len(), reason).await
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
        super::plan::step_budget(
            &self.p.desc,
            &self.p.spec.timeouts,
            self.p.spec.limits.max_step_timeout,
            step,
        )
    }

    fn finish(&self, status: Status, reason: String) -> Result<Outcome> {
        self.env.journal.set_status(self.id, status, &reason)?;
        if status.is_final() {
            self.env.journal.release(self.id)?;
        }
        Ok(Outcome {
            id: self.id,
            status,
            reason,
        })
    }

    fn progress(&self) -> Result<HashMap<String, Progress>> {
        Ok(derive(&self.env.journal.steps(self.id)?))
    }

    async fn drive_stages(self: Arc<Self>) -> Result<Outcome> {
        let mut cursor = self.env.journal.rollout(self.id)?.stage as usize;
        let total = self.plan.stages.len();
        while cursor < total {
            if self.abort.load(Ordering::SeqCst) {
                return self.finish(
                    Status::Aborted,
                    format!("aborted by the operator before stage {}", cursor + 1),
                );
            }
            let stage = &self.plan.stages[cursor];
            self.env.ui.note(&format!(
                "[stage {}/{total}] {}",
                cursor + 1,
                stage.describe()
            ));
            match stage {
                XStage::Fleet { step } => {
                    if let Some(why) = self.clone().fleet_step(cursor, step).await? {
                        let reason = format!("fleet: {why}");
                        self.env.ui.note(&format!("✘ {reason}; rolling back"));
                        return self.rollback_all(cursor, &reason).await;
                    }
                }
                XStage::Wave {
                    name,
                    targets,
                    finalize,
                    index,
                } => {
                    let states: HashMap<String, TargetState> = self
                        .env
                        .journal
                        .targets(self.id)?
                        .into_iter()
                        .map(|t| (t.target, t.state))
                        .collect();
                    if !*finalize {
                        let pending: std::collections::BTreeSet<String> = states
                            .iter()
                            .filter(|(_, s)| **s == TargetState::Pending)
                            .map(|(t, _)| t.clone())
                            .collect();
                        if let Err(why) = super::plan::check_wave(
                            cursor,
                            name,
                            targets,
                            &self.constraints,
                            &pending,
                        ) {
                            return self.finish(
                                Status::Failed,
                                format!("refused before the wave started: {why}"),
                            );
                        }
                    }
                    let (succeeded, failed) = self
                        .clone()
                        .wave(cursor, name, targets, *finalize, &states)
                        .await?;
                    if self.abort.load(Ordering::SeqCst) {
                        self.env.journal.set_stage(self.id, cursor as i64 + 1)?;
                        return self.finish(
                            Status::Aborted,
                            format!("aborted by the operator during wave {name}"),
                        );
                    }
                    if let Some(index) = index {
                        let report = WaveReport {
                            wave_index: *index,
                            wave_count: self.plan.waves,
                            succeeded,
                            failed: failed.clone(),
                            failed_total: self.failed_total.load(Ordering::SeqCst),
                            target_count: self.p.targets.len() as u32,
                        };
                        let senv = CallEnv::bare(
                            &self.p.strategy_label,
                            self.p.spec.limits.call_timeout,
                            self.env.sink(Some(self.id)),
                        );
                        let decision = match self
                            .p
                            .strategy
                            .decide(senv, &report, &self.p.strategy_params)
                            .await
                        {
                            Ok(d) => d,
                            Err(fault) => {
                                self.env.journal.set_stage(self.id, cursor as i64 + 1)?;
                                return self.finish(
                                    Status::Paused,
                                    format!("the strategy could not decide after wave {name}: {fault}; `cutover resume {}` goes on, `cutover rollback {}` undoes", self.id, self.id),
                                );
                            }
                        };
                        let kind = crate::plugin::bindings::decision_name(decision.kind);
                        let reason = if decision.reason.is_empty() {
                            kind.to_string()
                        } else {
                            decision.reason.clone()
                        };
                        if !failed.is_empty() || decision.kind != DecisionKind::Proceed {
                            self.env.ui.note(&format!(
                                "strategy {}: {kind} ({reason})",
                                self.p.strategy_label
                            ));
                        }
                        self.env.journal.write_later(vec![Op::Event {
                            rollout: self.id,
                            level: "info".into(),
                            target: String::new(),
                            step: String::new(),
                            message: if decision.reason.is_empty() {
                                format!("after wave {name}: {kind}")
                            } else {
                                format!("after wave {name}: {kind}: {reason}")
                            },
                        }]);
                        match decision.kind {
                            DecisionKind::Proceed => {}
                            DecisionKind::Pause => {
                                self.env.journal.set_stage(self.id, cursor as i64 + 1)?;
                                return self.finish(
                                    Status::Paused,
                                    format!("{reason}; `cutover resume {id}` or `cutover approve {id}` goes on, `cutover rollback {id}` undoes", id = self.id),
                                );
                            }
                            DecisionKind::Abort => {
                                self.env.journal.set_stage(self.id, cursor as i64 + 1)?;
                                return self.finish(Status::Aborted, reason);
                            }
                            DecisionKind::Rollback => {
                                return self.rollback_all(cursor, &reason).await;
                            }
                        }
                    }
                }
                XStage::Approval { message } => {
                    if !self.env.journal.approved(self.id, cursor as i64)? {
                        self.env.journal.set_stage(self.id, cursor as i64)?;
                        return self.finish(
                            Status::Paused,
                            format!(
                                "waiting for approval: {message}; run `cutover approve {}`",
                                self.id
                            ),
                        );
                    }
                }
                XStage::Soak { seconds } => {
                    let soak = Duration::from_secs((*seconds).min(super::plan::MAX_SOAK_SECONDS));
                    let start = std::time::Instant::now();
                    while start.elapsed() < soak {
                        if self.abort.load(Ordering::SeqCst) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
            cursor += 1;
            self.env.journal.set_stage(self.id, cursor as i64)?;
        }
        let failed: Vec<String> = self
            .env
            .journal
            .targets(self.id)?
            .into_iter()
            .filter(|t| matches!(t.state, TargetState::Failed | TargetState::NeedsAttention))
            .map(|t| t.target)
            .collect();
        if failed.is_empty() {
            self.finish(Status::Completed, String::new())
        } else {
            self.finish(
                Status::CompletedWithFailures,
                format!(
                    "{} target(s) failed and stay on the old version: {}",
                    failed.len(),
                    failed.join(", ")
                ),
            )
        }
    }

    /// Run one wave, given the targets' states as the journal has them; returns
    /// (succeeded, failed) target ids.
    async fn wave(
        self: Arc<Self>,
        stage: usize,
        name: &str,
        targets: &[String],
        finalize: bool,
        states: &HashMap<String, TargetState>,
    ) -> Result<(Vec<String>, Vec<String>)> {
        let progress = self.progress()?;
        let limit = self
            .p
            .spec
            .concurrency
            .min(crate::plugin::runtime::MAX_LIVE_INSTANCES as usize / 2);
        let sem = Arc::new(Semaphore::new(limit));
        let mut succeeded = Vec::new();
        let mut failed = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        self.env.ui.wave_start(name, targets.len());
        for t in targets {
            let state = states.get(t).copied().unwrap_or(TargetState::Pending);
            let runnable = if finalize {
                state == TargetState::Updated
            } else {
                matches!(state, TargetState::Pending | TargetState::Running)
            };
            if !runnable {
                match state {
                    TargetState::Updated => succeeded.push(t.clone()),
                    TargetState::Pending => {}
                    _ => failed.push(t.clone()),
                }
                continue;
            }
            // Take the permit before spawning: at most `limit` target tasks exist at once.
            let permit = sem.clone().acquire_owned().await?;
            let me = self.clone();
            let prog = progress.get(t).cloned().unwrap_or_default();
            let t = t.clone();
            tasks.spawn(async move {
                let _permit = permit;
                if me.abort.load(Ordering::SeqCst) {
                    return Ok((t, None));
                }
                let r = me.target(stage, &t, prog, finalize).await;
                r.map(|s| (t, Some(s)))
            });
        }
        while let Some(joined) = tasks.join_next().await {
            let (t, state) = joined??;
            match state {
                Some(TargetState::Updated) => succeeded.push(t),
                Some(_) => {
                    self.failed_total.fetch_add(1, Ordering::SeqCst);
                    failed.push(t)
                }
                None => {}
            }
        }
        self.env.ui.wave_end();
        Ok((succeeded, failed))
    }

    fn target_steps(&self, finalize: bool) -> Vec<&Step> {
        let phase = if finalize {
            Phase::Finalize
        } else {
            Phase::Rollout
        };
        self.p
            .desc
            .steps
            .iter()
            .filter(|s| s.scope == Scope::Target && s.phase == phase)
            .collect()
    }

    /// The context of a call; only fleet steps get the whole fleet (a target step on a big
    /// fleet would otherwise copy every target into the sandbox).
    fn context(&self, outputs: &[OutputRec], attempt: u32, fleet: bool) -> StepContext {
        StepContext {
            rollout_id: self.id.to_string(),
            params: self.p.adapter_params.clone(),
            outputs: outputs.iter().map(to_out).collect(),
            attempt,
            fleet: if fleet {
                self.p.targets.clone()
            } else {
                Vec::new()
            },
        }
    }

    fn call(&self, step: &str, target: &str, outputs: &[OutputRec], attempt: u32) -> StepCall {
        let t = self
            .target_index
            .get(target)
            .map(|i| self.p.targets[*i].clone());
        let own = if self.p.step_caps.is_empty() {
            None
        } else {
            self.p
                .step_caps
                .get(&(target.to_string(), step.to_string()))
        };
        let caps = match own {
            Some(c) => c.clone(),
            None if target.is_empty() => self.p.fleet_caps.clone(),
            None => self.p.target_caps.get(target).cloned().unwrap_or_default(),
        };
        StepCall {
            step: step.to_string(),
            target: t,
            ctx: self.context(outputs, attempt, target.is_empty()),
            caps,
            budget: self.budget(step),
        }
    }

    /// Journal records of a step starting.
    fn start_op(
        &self,
        stage: usize,
        target: &str,
        step: &str,
        action: Action,
        attempt: u32,
    ) -> (i64, Op) {
        let seq = self.next_seq();
        let op = Op::StepStart {
            rollout: self.id,
            seq,
            stage: stage as i64,
            target: target.to_string(),
            step: step.to_string(),
            action,
            attempt,
        };
        (seq, op)
    }

    /// Journal record of a step ending.
    fn end_op(&self, seq: i64, outputs: Vec<OutputRec>, error: Option<String>) -> Op {
        Op::StepEnd {
            rollout: self.id,
            seq,
            ok: error.is_none(),
            outputs,
            error,
        }
    }

    /// Run one step of a target (or of the fleet, target ""), retrying transient failures.
    /// Its start record is written, with `pending`, before the step runs; on success its end
    /// record is left in `pending` for the next write. Returns the failure message, if any.
    async fn run_step(
        &self,
        stage: usize,
        target: &str,
        step: &str,
        prog: &mut Progress,
        pending: &mut Vec<Op>,
    ) -> Result<Option<String>> {
        let mut attempt = prog.attempts.get(step).copied().unwrap_or(0) + 1;
        loop {
            let (seq, start) = self.start_op(stage, target, step, Action::Run, attempt);
            pending.push(start);
            self.env.journal.write(std::mem::take(pending)).await?;
            let call = self.call(step, target, &prog.outputs(), attempt);
            let mut aborted = self.aborted.subscribe();
            // An abort interrupts the step: its sandbox stops at the next epoch tick and the
            // programs it started are killed with their process group. Undos are not
            // interrupted: they are the way back.
            let ran = tokio::select! {
                r = self.transport.run(&call) => r,
                _ = aborted.wait_for(|a| *a) => Err(super::transport::StepFailure {
                    message: "interrupted: the operator aborted the rollout".into(),
                    transient: false,
                    outputs: Vec::new(),
                }),
            };
            let (outputs, failure) = match ran {
                Ok(outs) => (outs, None),
                Err(f) => (f.outputs, Some((f.message, f.transient))),
            };
            let recs: Vec<OutputRec> = outputs.iter().map(to_rec).collect();
            for o in recs.iter().filter(|o| o.secret) {
                self.env.redact.add(&o.value);
            }
            let Some((message, transient)) = failure else {
                pending.push(self.end_op(seq, recs.clone(), None));
                prog.done.push((step.to_string(), recs));
                prog.failed = None;
                return Ok(None);
            };
            let message = self.env.redact.redact(&message);
            self.env
                .journal
                .write(vec![self.end_op(seq, recs.clone(), Some(message.clone()))])
                .await?;
            prog.failed = Some((step.to_string(), recs, message.clone()));
            if !(transient && attempt < MAX_ATTEMPTS) || self.abort.load(Ordering::SeqCst) {
                return Ok(Some(format!("step `{step}` failed: {message}")));
            }
            let who = if target.is_empty() { "fleet" } else { target };
            self.env.ui.log(
                who,
                step,
                crate::plugin::bindings::Level::Warn,
                &format!("attempt {attempt} failed ({message}); retrying"),
            );
            tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            attempt += 1;
        }
    }

    /// Run the steps a target still needs; on failure undo what it completed.
    async fn target(
        self: Arc<Self>,
        stage: usize,
        target: &str,
        mut prog: Progress,
        finalize: bool,
    ) -> Result<TargetState> {
        let steps = self.target_steps(finalize);
        let mut pending = vec![Op::Target {
            rollout: self.id,
            target: target.to_string(),
            state: TargetState::Running,
            detail: String::new(),
        }];
        let mut failure: Option<String> = prog
            .failed
            .as_ref()
            .filter(|(s, _, _)| !prog.is_done(s) && steps.iter().any(|x| &x.name == s))
            .map(|(s, _, e)| format!("step `{s}` failed: {e}"));
        if failure.is_none() {
            for (n, step) in steps.iter().enumerate() {
                if prog.is_done(&step.name) {
                    continue;
                }
                self.env.ui.step(target, &step.name, n + 1, steps.len());
                failure = self
                    .run_step(stage, target, &step.name, &mut prog, &mut pending)
                    .await?;
                if failure.is_some() {
                    break;
                }
            }
        }
        let (state, detail) = match failure {
            None => (TargetState::Updated, String::new()),
            Some(why) => match self.undo_target(stage, target, &prog).await {
                Ok(n) => (
                    TargetState::Failed,
                    format!("{why}; {n} completed step(s) undone"),
                ),
                Err(e) => (
                    TargetState::NeedsAttention,
                    format!("{why}; undo failed: {e}"),
                ),
            },
        };
        pending.push(Op::Target {
            rollout: self.id,
            target: target.to_string(),
            state,
            detail: detail.clone(),
        });
        self.env.journal.write(pending).await?;
        self.env.ui.target_done(target, state, &detail);
        Ok(state)
    }

    /// Undo a target's completed undoable steps, newest first. Returns how many.
    async fn undo_target(
        &self,
        stage: usize,
        target: &str,
        prog: &Progress,
    ) -> Result<usize, String> {
        let outputs = prog.outputs();
        let mut n = 0;
        for (step, _) in prog.done.iter().rev() {
            let undoable = self.steps.get(step).map(|s| s.undoable).unwrap_or(false);
            if !undoable {
                continue;
            }
            self.env
                .ui
                .step(target, &format!("undo {step}"), n + 1, prog.done.len());
            let (seq, start) = self.start_op(stage, target, step, Action::Undo, 1);
            self.env
                .journal
                .write(vec![start])
                .await
                .map_err(|e| e.to_string())?;
            let call = self.call(step, target, &outputs, 1);
            let result = self.transport.undo(&call).await;
            let error = result
                .as_ref()
                .err()
                .map(|f| self.env.redact.redact(&f.message));
            self.env
                .journal
                .write(vec![self.end_op(seq, Vec::new(), error.clone())])
                .await
                .map_err(|e| e.to_string())?;
            if let Some(e) = error {
                return Err(format!("undo of `{step}`: {e}"));
            }
            n += 1;
        }
        Ok(n)
    }

    /// Run a fleet step unless it already completed; the failure message, if it failed.
    async fn fleet_step(self: Arc<Self>, stage: usize, step: &str) -> Result<Option<String>> {
        let mut prog = self.progress()?.remove("").unwrap_or_default();
        if prog.is_done(step) {
            return Ok(None);
        }
        let mut pending = Vec::new();
        let failure = self
            .run_step(stage, "", step, &mut prog, &mut pending)
            .await?;
        self.env.journal.write(pending).await?;
        Ok(failure)
    }

    /// Undo everything completed in stages `..=upto`, newest stage first.
    async fn rollback_all(self: &Arc<Self>, upto: usize, reason: &str) -> Result<Outcome> {
        self.env.ui.note(&format!("↺ rolling back: {reason}"));
        let progress = self.progress()?;
        let last = upto.min(self.plan.stages.len().saturating_sub(1));
        let mut trouble = Vec::new();
        for i in (0..=last).rev() {
            match &self.plan.stages[i] {
                XStage::Wave { name, targets, .. } => {
                    let mut tasks = tokio::task::JoinSet::new();
                    let sem = Arc::new(Semaphore::new(self.p.spec.concurrency));
                    let touched: Vec<&String> = targets
                        .iter()
                        .filter(|t| {
                            progress.get(*t).is_some_and(|p| {
                                p.done
                                    .iter()
                                    .any(|(s, _)| self.steps.get(s).is_some_and(|s| s.undoable))
                            })
                        })
                        .collect();
                    if touched.is_empty() {
                        continue;
                    }
                    self.env
                        .ui
                        .wave_start(&format!("rollback of {name}"), touched.len());
                    for t in touched {
                        let me = self.clone();
                        let prog = progress.get(t).cloned().unwrap_or_default();
                        let t = t.clone();
                        let sem = sem.clone();
                        tasks.spawn(async move {
                            let _p = sem.acquire_owned().await;
                            let r = me.undo_target(i, &t, &prog).await;
                            let (state, detail) = match &r {
                                Ok(n) => (TargetState::RolledBack, format!("{n} step(s) undone")),
                                Err(e) => {
                                    (TargetState::NeedsAttention, format!("undo failed: {e}"))
                                }
                            };
                            me.env
                                .journal
                                .write(vec![Op::Target {
                                    rollout: me.id,
                                    target: t.clone(),
                                    state,
                                    detail: detail.clone(),
                                }])
                                .await?;
                            me.env.ui.target_done(&t, state, &detail);
                            anyhow::Ok(r.err().map(|e| format!("{t}: {e}")))
                        });
                    }
                    while let Some(j) = tasks.join_next().await {
                        if let Some(e) = j?? {
                            trouble.push(e);
                        }
                    }
                    self.env.ui.wave_end();
                }
                XStage::Fleet { step } => {
                    let fleet = progress.get("").cloned().unwrap_or_default();
                    let undoable = self.steps.get(step).map(|s| s.undoable).unwrap_or(false);
                    if fleet.is_done(step) && undoable {
                        let only = Progress {
                            done: fleet
                                .done
                                .iter()
                                .filter(|(s, _)| s == step)
                                .cloned()
                                .collect(),
                            ..fleet.clone()
                        };
                        match self.undo_target(i, "", &only).await {
                            Ok(_) => self.env.ui.note(&format!("  ↺ fleet step `{step}` undone")),
                            Err(e) => {
                                self.env
                                    .ui
                                    .note(&format!("  ✘ fleet step `{step}`: undo failed: {e}"));
                                trouble.push(format!("fleet: {e}"));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if trouble.is_empty() {
            self.finish(Status::RolledBack, reason.to_string())
        } else {
            self.finish(
                Status::Failed,
                format!(
                    "{reason}; rollback incomplete, needs attention: {}",
                    trouble.join("; ")
                ),
            )
        }
    }
}
