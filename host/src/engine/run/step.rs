//! One target's steps: each journaled before it runs and after it ends, transient failures
//! retried, the target undone when a step fails.

use super::*;
use crate::engine::transport::Lost;

/// How a step ended.
pub(super) enum Ended {
    Done,
    /// Failed, with the message saying how.
    Failed(String),
    /// Its outcome is unknown (its host was lost while it ran): it stays in flight.
    Unknown,
}

/// Why a failed target was not undone.
pub(super) const KEPT: &str =
    "left as it is for the operator, nothing undone (the strategy keeps targets that fail after the first wave: on-failure = complete)";

impl Inner {
    pub(super) fn target_steps(&self, finalize: bool) -> Vec<&Step> {
        let phase = if finalize {
            Phase::Finalize
        } else {
            Phase::Rollout
        };
        self.p
            .desc
            .steps
            .iter()
            .filter(|s| s.scope() == Scope::Target && s.phase() == phase)
            .collect()
    }

    /// The context of a call; only fleet steps get the whole fleet (a target step on a big
    /// fleet would otherwise copy every target into the sandbox).
    pub(super) fn context(&self, outputs: &[OutputRec], attempt: u32, fleet: bool) -> StepContext {
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
            // Filled by the transport, which knows the call's grants.
            dirs: Vec::new(),
        }
    }

    pub(super) fn call(
        &self,
        step: &str,
        who: &Subject,
        outputs: &[OutputRec],
        attempt: u32,
    ) -> StepCall {
        let target = who.key();
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
            None if who.is_fleet() => self.p.fleet_caps.clone(),
            None => self.p.target_caps.get(target).cloned().unwrap_or_default(),
        };
        let host = match &t {
            Some(t) => t.host.clone(),
            None => self.p.spec.fleet_host.clone(),
        };
        StepCall {
            step: step.to_string(),
            host,
            target: t,
            ctx: self.context(outputs, attempt, who.is_fleet()),
            caps,
            budget: self.budget(step),
            rerun: self
                .p
                .desc
                .steps
                .iter()
                .any(|s| s.name == step && s.idempotent),
        }
    }

    /// The record of a step (or undo) beginning.
    pub(super) fn begin(
        &self,
        stage: usize,
        who: &Subject,
        step: &str,
        action: Action,
        attempt: u32,
    ) -> StepStart {
        StepStart {
            rollout: self.id,
            seq: self.next_seq(),
            stage: stage as i64,
            target: who.key().to_string(),
            step: step.to_string(),
            action,
            attempt,
        }
    }

    /// The record of a step ending; `error` when it failed.
    pub(super) fn end(&self, seq: i64, outputs: Vec<OutputRec>, error: Option<String>) -> StepEnd {
        StepEnd {
            rollout: self.id,
            seq,
            outputs,
            error,
            unreached: false,
            kept: false,
        }
    }

    /// Run one step of a target (or of the fleet), retrying transient failures.
    /// Its start record is written, with `pending`, before the step runs; on success its end
    /// record is left in `pending` for the next write. Returns the failure message, if any.
    pub(super) async fn run_step(
        &self,
        stage: usize,
        who: &Subject,
        step: &str,
        prog: &mut Progress,
        pending: &mut Vec<Op>,
    ) -> Result<Ended> {
        let mut attempt = prog.attempts.get(step).copied().unwrap_or(0) + 1;
        loop {
            let start = self.begin(stage, who, step, Action::Run, attempt);
            let seq = start.seq;
            self.env
                .journal
                .begin_step(std::mem::take(pending), start)
                .await?;
            let call = self.call(step, who, &prog.outputs(), attempt);
            let mut aborted = self.aborted.subscribe();
            // An abort interrupts the step: its sandbox stops at the next epoch tick and the
            // programs it started are killed with their process group. Undos are not
            // interrupted: they are the way back.
            let ran = tokio::select! {
                r = self.transport.run(&call) => r,
                _ = aborted.wait_for(|a| *a) => Err(crate::engine::transport::StepFailure {
                    message: "interrupted: the operator aborted the rollout".into(),
                    transient: false,
                    outputs: Vec::new(), lost: crate::engine::transport::Lost::No }),
            };
            let (outputs, failure) = match ran {
                Ok(outs) => (outs, None),
                Err(f) if f.lost == Lost::Unknown => {
                    // The host went away with the step running and came back: its outcome
                    // is unknown, as after a crash. The step stays in flight in the journal;
                    // the run stops starting steps and `resume` settles it (an idempotent
                    // step re-runs, a non-idempotent one asks `--in-flight`).
                    let why = self.env.redact.redact(&f.message);
                    self.stop(Halt::Signal(format!(
                        "the connection was lost during step `{step}` of {} ({why})",
                        who.label()
                    )));
                    return Ok(Ended::Unknown);
                }
                Err(f) => {
                    if let Lost::HostDown(host) = &f.lost {
                        // The host did not come back: the step fails, and so do the other
                        // calls to that host; `status` shows it until it is reached again.
                        pending.push(Op::HostDown {
                            rollout: self.id,
                            host: host.clone(),
                            reason: self.env.redact.redact(&f.message),
                        });
                    }
                    (f.outputs, Some((f.message, f.transient)))
                }
            };
            let recs: Vec<OutputRec> = outputs.iter().map(to_rec).collect();
            for o in recs.iter().filter(|o| o.secret) {
                self.env.redact.add(&o.value);
            }
            let Some((message, transient)) = failure else {
                pending.push(Op::Finish(self.end(seq, recs.clone(), None)));
                prog.done.push((step.to_string(), recs));
                prog.failed = None;
                return Ok(Ended::Done);
            };
            let message = self.env.redact.redact(&message);
            self.env
                .journal
                .finish_step(self.end(seq, recs.clone(), Some(message.clone())))
                .await?;
            prog.failed = Some((step.to_string(), recs, message.clone()));
            if !(transient && attempt < MAX_ATTEMPTS) || self.abort.load(Ordering::SeqCst) {
                return Ok(Ended::Failed(format!("step `{step}` failed: {message}")));
            }
            self.env.ui.log(
                who.label(),
                step,
                crate::plugin::model::Level::Warn,
                &format!("attempt {attempt} failed ({message}); retrying"),
            );
            tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
            attempt += 1;
        }
    }

    /// Stopped between two steps (or undos): record what is done and leave the target where
    /// it is; `resume` goes on from here.
    async fn leave(&self, pending: Vec<Op>) -> TargetState {
        let _ = self.recorded(self.env.journal.write(pending).await);
        TargetState::Running
    }

    /// Run the steps a target still needs; on failure undo what it completed.
    pub(super) async fn target(
        self: Arc<Self>,
        stage: usize,
        target: &str,
        mut prog: Progress,
        finalize: bool,
        keep: bool,
    ) -> Result<TargetState> {
        let steps = self.target_steps(finalize);
        let who = Subject::Target(target.to_string());
        let mut pending = vec![Op::Detail {
            rollout: self.id,
            target: target.to_string(),
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
                if self.halted().is_some() {
                    return Ok(self.leave(pending).await);
                }
                self.env.ui.step(target, &step.name, n + 1, steps.len());
                failure = match self.recorded(
                    self.run_step(stage, &who, &step.name, &mut prog, &mut pending)
                        .await,
                )? {
                    Ended::Done => None,
                    Ended::Failed(why) => Some(why),
                    Ended::Unknown => return Ok(self.leave(pending).await),
                };
                if failure.is_some() {
                    break;
                }
            }
        }
        if matches!(self.halted(), Some(Halt::Journal(_))) {
            // Nothing can be recorded: an undo now would be lost to the journal.
            anyhow::bail!("the journal cannot be written");
        }
        let (state, detail) = match failure {
            None => (TargetState::Updated, String::new()),
            Some(why) if keep => {
                let step = prog
                    .failed
                    .as_ref()
                    .map(|(s, _, _)| s.clone())
                    .unwrap_or_default();
                let start = self.begin(stage, &who, &step, Action::Undo, 1);
                let mut end = self.end(start.seq, Vec::new(), Some(KEPT.to_string()));
                end.kept = true;
                // One commit: never an undo that looks in flight after a crash.
                pending.extend([Op::Begin(start), Op::Finish(end)]);
                (TargetState::NeedsAttention, format!("{why}; {KEPT}"))
            }
            Some(why) => match self.undo_target(stage, &who, &prog).await {
                Err(e) if e == super::undo::STOPPED => return Ok(self.leave(pending).await),
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
        pending.push(Op::Detail {
            rollout: self.id,
            target: target.to_string(),
            detail: detail.clone(),
        });
        self.recorded(self.env.journal.write(pending).await)?;
        self.env.ui.target_done(target, state, &detail);
        Ok(state)
    }
}
