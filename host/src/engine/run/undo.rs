//! Going back: a target's completed undoable steps newest first, and the rollback of a
//! whole rollout, newest stage first.

use super::*;
use crate::engine::transport::Lost;

/// What `undo_target` returns when it stopped between two undos for a signal or a journal
/// fault: the target is left where it is, for `resume`.
pub(super) const STOPPED: &str = "stopped before its next undo";

impl Inner {
    /// Undo a target's completed undoable steps, newest first. Returns how many.
    pub(super) async fn undo_target(
        &self,
        stage: usize,
        who: &Subject,
        prog: &Progress,
    ) -> Result<usize, String> {
        let outputs = prog.outputs();
        let mut n = 0;
        for (step, _) in prog.done.iter().rev() {
            if !StepInfo::undoable(&self.plan.steps, step) {
                continue;
            }
            if self.halted().is_some() {
                return Err(STOPPED.into());
            }
            self.env
                .ui
                .step(who.key(), &format!("undo {step}"), n + 1, prog.done.len());
            let start = self.begin(stage, who, step, Action::Undo, 1);
            let seq = start.seq;
            self.recorded(self.env.journal.begin_step(Vec::new(), start).await)
                .map_err(|e| e.to_string())?;
            let mut call = self.call(step, who, &outputs, 1);
            call.rerun = self
                .p
                .desc
                .steps
                .iter()
                .any(|s| &s.name == step && s.undo_idempotent);
            let result = self.transport.undo(&call).await;
            if let Err(f) = &result {
                let why = self.env.redact.redact(&f.message);
                match &f.lost {
                    Lost::Unknown => {
                        // Its host came back after the undo was sent: the undo stays in
                        // flight and `resume` settles it, as after a crash.
                        self.stop(Halt::Signal(format!(
                            "the connection was lost during the undo of `{step}` of {} ({why})",
                            who.label()
                        )));
                        return Err(STOPPED.into());
                    }
                    Lost::HostDown(host) => {
                        let op = Op::HostDown {
                            rollout: self.id,
                            host: host.clone(),
                            reason: why,
                        };
                        self.recorded(self.env.journal.write(vec![op]).await)
                            .map_err(|e| e.to_string())?;
                    }
                    Lost::No => {}
                }
            }
            let error = result
                .as_ref()
                .err()
                .map(|f| self.env.redact.redact(&f.message));
            let mut end = self.end(seq, Vec::new(), error.clone());
            end.unreached = result
                .as_ref()
                .is_err_and(|f| matches!(f.lost, Lost::HostDown(_)));
            self.recorded(self.env.journal.finish_step(end).await)
                .map_err(|e| e.to_string())?;
            if let Some(e) = error {
                return Err(format!("undo of `{step}`: {e}"));
            }
            n += 1;
        }
        Ok(n)
    }

    /// Undo everything completed in stages `..=upto`, newest stage first.
    pub(super) async fn rollback_all(
        self: &Arc<Self>,
        upto: usize,
        reason: &str,
    ) -> Result<Outcome> {
        // Durable before the first undo: after a crash, `resume` goes on rolling back.
        self.env
            .journal
            .set_direction(self.id, crate::journal::Direction::Rollback, reason)?;
        self.env.ui.note(&format!("↺ rolling back: {reason}"));
        let progress = self.progress()?;
        let last = upto.min(self.plan.stages.len().saturating_sub(1));
        let mut trouble = Vec::new();
        for i in (0..=last).rev() {
            match &self.plan.stages[i] {
                XStage::Wave { name, targets, .. } => {
                    let mut tasks = tokio::task::JoinSet::new();
                    let sem = Arc::new(Semaphore::new(self.p.spec.concurrency));
                    // A target whose undo failed (or was answered failed) is left for the
                    // operator: undoing more of it could make things worse.
                    for t in targets {
                        if let Some((step, e)) =
                            progress.get(t).and_then(|p| p.undo_failed.as_ref())
                        {
                            trouble.push(format!("{t}: undo of `{step}` failed: {e}"));
                        }
                    }
                    let touched: Vec<&String> = targets
                        .iter()
                        .filter(|t| {
                            progress.get(*t).is_some_and(|p| {
                                p.undo_failed.is_none() && p.undo_pending(&self.plan.steps)
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
                            let r = me.undo_target(i, &Subject::Target(t.clone()), &prog).await;
                            if r.as_ref().is_err_and(|e| e == STOPPED) {
                                return anyhow::Ok(None);
                            }
                            let (state, detail) = match &r {
                                Ok(n) => (TargetState::RolledBack, format!("{n} step(s) undone")),
                                Err(e) => {
                                    (TargetState::NeedsAttention, format!("undo failed: {e}"))
                                }
                            };
                            let row = Op::Detail {
                                rollout: me.id,
                                target: t.clone(),
                                detail: detail.clone(),
                            };
                            me.recorded(me.env.journal.write(vec![row]).await)?;
                            me.env.ui.target_done(&t, state, &detail);
                            anyhow::Ok(r.err().map(|e| format!("{t}: {e}")))
                        });
                    }
                    while let Some(j) = tasks.join_next().await {
                        let r = match j? {
                            Ok(r) => r,
                            Err(e) => {
                                self.stop(Halt::Journal(e.to_string()));
                                continue;
                            }
                        };
                        if let Some(e) = r {
                            trouble.push(e);
                        }
                    }
                    self.env.ui.wave_end();
                }
                XStage::Fleet { step } => {
                    let fleet = progress.get("").cloned().unwrap_or_default();
                    if fleet.is_done(step) && StepInfo::undoable(&self.plan.steps, step) {
                        let only = Progress {
                            done: fleet
                                .done
                                .iter()
                                .filter(|(s, _)| s == step)
                                .cloned()
                                .collect(),
                            ..fleet.clone()
                        };
                        match self.undo_target(i, &Subject::Fleet, &only).await {
                            Ok(_) => self.env.ui.note(&format!("  ↺ fleet step `{step}` undone")),
                            Err(e) if e == STOPPED => {}
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
        if let Some(Halt::Signal(why)) = self.halted() {
            return self.finish(
                Status::Interrupted,
                format!(
                    "{why} while rolling back ({reason}): the undos in flight finished; `cutover resume {}` goes on rolling back",
                    self.id
                ),
            );
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
