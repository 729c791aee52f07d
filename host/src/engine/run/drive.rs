//! The stage driver: stages in order, waves with bounded concurrency, the strategy's
//! decision after each wave, fleet steps and gates.

use super::*;

impl Inner {
    pub(super) async fn drive_stages(self: Arc<Self>) -> Result<Outcome> {
        let mut cursor = self.env.journal.rollout(self.id)?.stage as usize;
        let total = self.plan.stages.len();
        while cursor < total {
            if self.abort.load(Ordering::SeqCst) {
                return self.finish(
                    Status::Aborted,
                    format!("aborted by the operator before stage {}", cursor + 1),
                );
            }
            if let Some(Halt::Signal(why)) = self.halted() {
                return self.finish(
                    Status::Interrupted,
                    format!(
                        "{why} before stage {}: no new step was started and the steps in flight finished; `cutover resume {id}` goes on, `cutover rollback {id}` undoes",
                        cursor + 1,
                        id = self.id
                    ),
                );
            }
            let alarm = self.alarm.lock().unwrap().clone();
            if let Some(why) = alarm {
                self.env.ui.note(&format!("✘ {why}; rolling back"));
                return self.rollback_all(cursor, &why).await;
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
                    if let Some(Halt::Signal(why)) = self.halted() {
                        return self.finish(
                            Status::Interrupted,
                            format!(
                                "{why}: `cutover resume {id}` settles fleet step `{step}` and goes on, `cutover rollback {id}` undoes",
                                id = self.id
                            ),
                        );
                    }
                }
                XStage::Wave {
                    name,
                    targets,
                    finalize,
                    index,
                } => {
                    // One read of the journal serves the wave check and the wave.
                    let progress = self.progress()?;
                    let states = self.states_of(&progress);
                    if !*finalize {
                        let pending: std::collections::BTreeSet<String> = states
                            .iter()
                            .filter(|(_, s)| **s == TargetState::Pending)
                            .map(|(t, _)| t.clone())
                            .collect();
                        if let Err(why) = crate::engine::plan::check_wave(
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
                    // Asked before the wave: a target that fails is undone (or kept) at once.
                    let keep = match index {
                        Some(i) => match self.decider.keeps_failed(*i).await {
                            Ok(k) => k,
                            Err(fault) => {
                                return self.finish(
                                    Status::Paused,
                                    format!("the strategy could not say how failures in wave {name} are handled: {fault}; `cutover resume {id}` asks again, `cutover rollback {id}` undoes", id = self.id),
                                );
                            }
                        },
                        None => false,
                    };
                    let (succeeded, failed) = self
                        .clone()
                        .wave(cursor, name, targets, *finalize, keep, &states, progress)
                        .await?;
                    if let Some(Halt::Signal(why)) = self.halted() {
                        return self.finish(
                            Status::Interrupted,
                            format!(
                                "{why} during wave {name}: no new step was started and the steps in flight finished; `cutover resume {id}` goes on, `cutover rollback {id}` undoes",
                                id = self.id
                            ),
                        );
                    }
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
                        let decision = match self.decider.decide(&report).await {
                            Ok(d) => d,
                            Err(fault) => {
                                self.env.journal.set_stage(self.id, cursor as i64 + 1)?;
                                return self.finish(
                                    Status::Paused,
                                    format!("the strategy could not decide after wave {name}: {fault}; `cutover resume {}` goes on, `cutover rollback {}` undoes", self.id, self.id),
                                );
                            }
                        };
                        let kind = crate::plugin::model::decision_name(decision.kind);
                        let reason = decision.reason.clone().unwrap_or_else(|| kind.to_string());
                        if !failed.is_empty() || decision.kind != DecisionKind::Proceed {
                            self.env.ui.note(&format!(
                                "strategy {}: {kind} ({reason})",
                                self.decider.label()
                            ));
                        }
                        self.env.journal.write_later(vec![Op::Event {
                            rollout: self.id,
                            level: "info".into(),
                            target: String::new(),
                            step: String::new(),
                            message: match &decision.reason {
                                None => format!("after wave {name}: {kind}"),
                                Some(_) => format!("after wave {name}: {kind}: {reason}"),
                            },
                        }]);
                        self.env.journal.notify(
                            self.id,
                            "wave-done",
                            serde_json::json!({ "wave": name, "index": index, "failed": failed, "decision": kind }),
                        )?;
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
                XStage::Analysis { name, .. } => {
                    if !self.env.journal.approved(self.id, cursor as i64)? {
                        match self.analysis_gate(cursor, name).await? {
                            gate::Verdict::Passed => {}
                            gate::Verdict::Halted => continue,
                            gate::Verdict::Failed(why) => {
                                let reason = format!("analysis `{name}` failed: {why}");
                                self.env.ui.note(&format!("✘ {reason}; rolling back"));
                                return self.rollback_all(cursor, &reason).await;
                            }
                            gate::Verdict::Inconclusive(why) => {
                                self.env.journal.set_stage(self.id, cursor as i64)?;
                                return self.finish(
                                    Status::Paused,
                                    format!(
                                        "analysis `{name}` is inconclusive: {why}; `cutover approve {id}` accepts it, `cutover resume {id}` measures again, `cutover rollback {id}` undoes",
                                        id = self.id
                                    ),
                                );
                            }
                        }
                    }
                }
                XStage::Soak { seconds } => {
                    let soak =
                        Duration::from_secs((*seconds).min(crate::engine::plan::MAX_SOAK_SECONDS));
                    let start = tokio::time::Instant::now();
                    while start.elapsed() < soak {
                        if self.abort.load(Ordering::SeqCst) || self.halted().is_some() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    if self.halted().is_some() || self.abort.load(Ordering::SeqCst) {
                        // The soak starts over on resume: the stage is not passed.
                        continue;
                    }
                }
            }
            cursor += 1;
            self.env.journal.set_stage(self.id, cursor as i64)?;
        }
        let progress = self.progress()?;
        let mut failed: Vec<String> = self
            .states_of(&progress)
            .into_iter()
            .filter(|(_, s)| matches!(s, TargetState::Failed | TargetState::NeedsAttention))
            .map(|(t, _)| t)
            .collect();
        failed.sort();
        let (kept, reverted): (Vec<String>, Vec<String>) = failed
            .into_iter()
            .partition(|t| progress.get(t).is_some_and(|p| p.kept.is_some()));
        let mut why = Vec::new();
        if !reverted.is_empty() {
            why.push(format!(
                "{} target(s) failed and stay on the old version: {}",
                reverted.len(),
                reverted.join(", ")
            ));
        }
        if !kept.is_empty() {
            why.push(format!(
                "{} target(s) failed and were left as they are for the operator (on-failure = complete): {}",
                kept.len(),
                kept.join(", ")
            ));
        }
        if why.is_empty() {
            self.finish(Status::Completed, String::new())
        } else {
            self.finish(Status::CompletedWithFailures, why.join("; "))
        }
    }

    /// Run one wave, given the targets' states as the journal has them; returns
    /// (succeeded, failed) target ids. With `keep`, a target that fails is left as it is.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn wave(
        self: Arc<Self>,
        stage: usize,
        name: &str,
        targets: &[String],
        finalize: bool,
        keep: bool,
        states: &HashMap<String, TargetState>,
        progress: HashMap<String, Progress>,
    ) -> Result<(Vec<String>, Vec<String>)> {
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
            if self.halted().is_some() {
                break;
            }
            let me = self.clone();
            let prog = progress.get(t).cloned().unwrap_or_default();
            let t = t.clone();
            tasks.spawn(async move {
                let _permit = permit;
                if me.abort.load(Ordering::SeqCst) || me.halted().is_some() {
                    return Ok((t, None));
                }
                let r = me.target(stage, &t, prog, finalize, keep).await;
                r.map(|s| (t, Some(s)))
            });
        }
        // Every target task runs to its end, even when another one fails to journal: a
        // step is never cut off half-way because of someone else's error.
        let mut fault = None;
        while let Some(joined) = tasks.join_next().await {
            let (t, state) = match joined? {
                Ok(v) => v,
                Err(e) => {
                    fault.get_or_insert(e);
                    continue;
                }
            };
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
        if let Some(e) = fault {
            return Err(e);
        }
        Ok((succeeded, failed))
    }
    /// Run a fleet step unless it already completed; the failure message, if it failed.
    pub(super) async fn fleet_step(
        self: Arc<Self>,
        stage: usize,
        step: &str,
    ) -> Result<Option<String>> {
        let mut prog = self.progress()?.remove("").unwrap_or_default();
        if prog.is_done(step) {
            return Ok(None);
        }
        let mut pending = Vec::new();
        // A fleet step whose host was lost stays in flight, like a target step: the run
        // is halted and the driver ends it interrupted before the next stage.
        let failure = match self
            .run_step(stage, &Subject::Fleet, step, &mut prog, &mut pending)
            .await?
        {
            super::step::Ended::Done => None,
            super::step::Ended::Failed(why) => Some(why),
            super::step::Ended::Unknown => None,
        };
        self.env.journal.write(pending).await?;
        Ok(failure)
    }
}
