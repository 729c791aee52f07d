//! Where each target stands, derived from the journal's step records: the same code serves
//! a fresh run (no records), a resume after a crash, a rollback and every later reader
//! (`status`, `history`). A target's state is never stored on its own, so a crash between
//! two writes cannot leave a state that disagrees with the steps.

use super::plan::{StepInfo, XPlan};
use crate::journal::{Action, Journal, OutputRec, StepRow, StepState, TargetRow, TargetState};
use std::collections::HashMap;

/// Whom a step runs for: the whole fleet, or one target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subject {
    Fleet,
    Target(String),
}

impl Subject {
    /// Its key in the journal: "" for the fleet, else the target id.
    pub fn key(&self) -> &str {
        match self {
            Subject::Fleet => "",
            Subject::Target(t) => t,
        }
    }

    /// The subject a journal key names.
    pub fn of(key: &str) -> Subject {
        if key.is_empty() {
            Subject::Fleet
        } else {
            Subject::Target(key.to_string())
        }
    }

    pub fn is_fleet(&self) -> bool {
        matches!(self, Subject::Fleet)
    }

    /// As a person reads it: "the fleet" or "target `id`".
    pub fn shown(&self) -> String {
        match self {
            Subject::Fleet => "the fleet".into(),
            Subject::Target(t) => format!("target `{t}`"),
        }
    }

    /// As the progress output labels it: "fleet" or the id.
    pub fn label(&self) -> &str {
        match self {
            Subject::Fleet => "fleet",
            Subject::Target(t) => t,
        }
    }
}

/// One target's (or the fleet's, under "") progress.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    /// Completed and not undone steps, in the order they completed, with their outputs.
    pub done: Vec<(String, Vec<OutputRec>)>,
    /// The last step that failed (after the last success), with what it kept.
    pub failed: Option<(String, Vec<OutputRec>, String)>,
    /// Steps undone after they completed.
    pub undone: Vec<String>,
    /// An undo that failed and has not succeeded since: the step and the error.
    pub undo_failed: Option<(String, String)>,
    /// An undo whose host could not be reached (step, why): the next rollback tries again.
    pub undo_unreached: Option<(String, String)>,
    /// Failed and deliberately not undone (the failed step, why): left for the operator.
    pub kept: Option<(String, String)>,
    /// Highest attempt per step.
    pub attempts: HashMap<String, u32>,
    /// Records started and never ended (a crash).
    pub in_flight: Vec<StepRow>,
}

impl Progress {
    /// Whether `step` completed.
    pub fn is_done(&self, step: &str) -> bool {
        self.done.iter().any(|(s, _)| s == step)
    }

    /// Every output so far (done steps, then what a failed step kept).
    pub fn outputs(&self) -> Vec<OutputRec> {
        let mut out: Vec<OutputRec> = self.done.iter().flat_map(|(_, o)| o.clone()).collect();
        if let Some((_, o, _)) = &self.failed {
            out.extend(o.iter().cloned());
        }
        out
    }

    /// Whether completed steps remain to undo.
    pub fn undo_pending(&self, steps: &[StepInfo]) -> bool {
        self.done.iter().any(|(s, _)| StepInfo::undoable(steps, s))
    }

    /// The target's state, given its steps' declarations: the one transition function.
    pub fn state(&self, steps: &[StepInfo]) -> TargetState {
        let undo_pending = self.undo_pending(steps);
        if !self.in_flight.is_empty() {
            return TargetState::Running;
        }
        if self.undo_failed.is_some() || self.undo_unreached.is_some() || self.kept.is_some() {
            return TargetState::NeedsAttention;
        }
        if self.failed.is_some() || !self.undone.is_empty() {
            return match (undo_pending, self.failed.is_some()) {
                (true, _) => TargetState::Running,
                (false, true) => TargetState::Failed,
                (false, false) => TargetState::RolledBack,
            };
        }
        let rollout: Vec<&StepInfo> = steps.iter().filter(|s| s.rollout).collect();
        if !rollout.is_empty() && rollout.iter().all(|s| self.is_done(&s.name)) {
            TargetState::Updated
        } else if self.done.is_empty() && self.attempts.is_empty() {
            TargetState::Pending
        } else {
            TargetState::Running
        }
    }
}

/// Progress per target from the step records of one rollout (ordered by seq).
pub fn derive(rows: &[StepRow]) -> HashMap<String, Progress> {
    let mut map: HashMap<String, Progress> = HashMap::new();
    for r in rows {
        let p = map.entry(r.target.clone()).or_default();
        if r.action == Action::Run {
            let a = p.attempts.entry(r.step.clone()).or_insert(0);
            *a = (*a).max(r.attempt);
        }
        match (r.action, r.state) {
            (Action::Run, StepState::Ok) => {
                p.done.retain(|(s, _)| s != &r.step);
                p.done.push((r.step.clone(), r.outputs.clone()));
                p.failed = None;
            }
            (Action::Run, StepState::Failed) => {
                p.failed = Some((
                    r.step.clone(),
                    r.outputs.clone(),
                    r.error.clone().unwrap_or_default(),
                ));
            }
            (Action::Undo, StepState::Ok) => {
                p.done.retain(|(s, _)| s != &r.step);
                p.undone.push(r.step.clone());
                p.kept = None;
                if p.undo_failed.as_ref().is_some_and(|(s, _)| s == &r.step) {
                    p.undo_failed = None;
                }
                if p.undo_unreached.as_ref().is_some_and(|(s, _)| s == &r.step) {
                    p.undo_unreached = None;
                }
            }
            (Action::Undo, StepState::Failed) => {
                p.undo_failed = Some((r.step.clone(), r.error.clone().unwrap_or_default()));
            }
            (Action::Undo, StepState::Kept) => {
                p.kept = Some((r.step.clone(), r.error.clone().unwrap_or_default()));
            }
            (Action::Undo, StepState::Unreached) => {
                p.undo_unreached = Some((r.step.clone(), r.error.clone().unwrap_or_default()));
            }
            (_, StepState::Started) => p.in_flight.push(r.clone()),
            _ => {}
        }
    }
    map
}

/// Every target of a rollout with its derived state and the last detail the engine wrote.
pub fn targets(journal: &Journal, id: i64, plan: Option<&XPlan>) -> anyhow::Result<Vec<TargetRow>> {
    let details = journal.details(id)?;
    let Some(plan) = plan else {
        return Ok(Vec::new());
    };
    let progress = derive(&journal.steps(id)?);
    Ok(plan
        .targets()
        .into_iter()
        .map(|t| TargetRow {
            state: progress
                .get(&t)
                .map(|p| p.state(&plan.steps))
                .unwrap_or(TargetState::Pending),
            detail: details.get(&t).cloned().unwrap_or_default(),
            target: t,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Action;

    fn info(name: &str, undoable: bool) -> StepInfo {
        StepInfo {
            name: name.into(),
            target: true,
            rollout: true,
            undoable,
            idempotent: false,
            undo_idempotent: false,
        }
    }

    fn row(seq: i64, step: &str, action: Action, state: &str) -> StepRow {
        let state = StepState::parse(state);
        StepRow {
            seq,
            stage: 0,
            target: "t".into(),
            step: step.into(),
            action,
            attempt: 1,
            state,
            outputs: vec![],
            error: None,
            started: 0,
            ended: None,
        }
    }

    #[test]
    fn states_follow_the_step_records_only() {
        use Action::*;
        let steps = [info("a", true), info("b", true)];
        let state = |rows: &[StepRow]| derive(rows).get("t").map(|p| p.state(&steps));
        assert_eq!(state(&[]), None);
        assert_eq!(
            state(&[row(1, "a", Run, "started")]),
            Some(TargetState::Running)
        );
        let updated = [row(1, "a", Run, "ok"), row(2, "b", Run, "ok")];
        assert_eq!(state(&updated), Some(TargetState::Updated));
        // Every undo done after success (a rollback), whatever a target row might say.
        let mut rolled = updated.to_vec();
        rolled.extend([row(3, "b", Undo, "ok"), row(4, "a", Undo, "ok")]);
        assert_eq!(state(&rolled), Some(TargetState::RolledBack));
        // Half undone, then a crash: still to finish.
        assert_eq!(state(&rolled[..3]), Some(TargetState::Running));
        let failed = [
            row(1, "a", Run, "ok"),
            row(2, "b", Run, "failed"),
            row(3, "a", Undo, "ok"),
        ];
        assert_eq!(state(&failed), Some(TargetState::Failed));
        assert_eq!(state(&failed[..2]), Some(TargetState::Running));
        let stuck = [row(1, "a", Run, "ok"), row(2, "a", Undo, "failed")];
        assert_eq!(state(&stuck), Some(TargetState::NeedsAttention));
        let retried = [
            row(1, "a", Run, "failed"),
            row(2, "a", Run, "ok"),
            row(3, "b", Run, "ok"),
        ];
        assert_eq!(state(&retried), Some(TargetState::Updated));
    }
}
