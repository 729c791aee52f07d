//! Steps left in flight by a crash: re-run what is idempotent, ask the operator about the
//! rest.

use super::*;

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

    pub(super) fn for_target(&self, target: &str) -> Option<InFlight> {
        self.per_target.get(target).copied().or(self.all)
    }
}

impl Run {
    /// Resolve records left `started` by a crash. Returns an outcome when the rollout must
    /// pause for the operator.
    pub(crate) fn settle_in_flight(&self, choices: &InFlightChoices) -> Result<Option<Outcome>> {
        let me = &self.inner;
        let rows = me.env.journal.steps(me.id)?;
        let mut blocked = Vec::new();
        for p in derive(&rows).values() {
            for r in &p.in_flight {
                let undo = r.action == Action::Undo;
                let idempotent = StepInfo::find(&me.plan.steps, &r.step).is_some_and(|s| {
                    if undo {
                        s.undo_idempotent
                    } else {
                        s.idempotent
                    }
                });
                let who = Subject::of(&r.target).shown();
                let what = format!(
                    "{}`{}` on {who}",
                    if undo { "the undo of step " } else { "step " },
                    r.step
                );
                if idempotent {
                    me.env.journal.settle(me.id, r.seq, StepState::Abandoned)?;
                    me.env.ui.note(&format!(
                        "{what} was in flight when cutover stopped: it is idempotent and runs again"
                    ));
                    continue;
                }
                // The operator's answer: done (it completed), retry (run it again), failed
                // (a forward step: undo the target; an undo: the target needs attention).
                match choices.for_target(&r.target) {
                    Some(InFlight::Done) => me.env.journal.settle(me.id, r.seq, StepState::Ok)?,
                    Some(InFlight::Retry) => {
                        me.env.journal.settle(me.id, r.seq, StepState::Abandoned)?
                    }
                    Some(InFlight::Failed) => {
                        me.env.journal.settle(me.id, r.seq, StepState::Failed)?
                    }
                    None => blocked.push(what),
                }
            }
        }
        if blocked.is_empty() {
            return Ok(None);
        }
        let reason = format!(
            "{} was in flight when cutover stopped and is not idempotent: check it, then run `cutover resume {id} --in-flight TARGET=done` if it completed, `TARGET=retry` to run it again or `TARGET=failed` if it did not (a step: the target is undone; an undo: the target is left for you) (repeat per target, `fleet=` for fleet steps; a bare `done|retry|failed` answers for all)",
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
}
