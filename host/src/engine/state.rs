//! Where each target stands, derived from the journal's step records: the same code serves
//! a fresh run (no records), a resume after a crash and a rollback.

use crate::journal::{Action, OutputRec, StepRow};
use std::collections::HashMap;

/// One target's (or the fleet's, under "") progress.
#[derive(Debug, Default, Clone)]
pub struct Progress {
    /// Completed and not undone steps, in the order they completed, with their outputs.
    pub done: Vec<(String, Vec<OutputRec>)>,
    /// The last step that failed (after the last success), with what it kept.
    pub failed: Option<(String, Vec<OutputRec>, String)>,
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
}

/// Progress per target from the step records of one rollout (ordered by seq).
pub fn derive(rows: &[StepRow]) -> HashMap<String, Progress> {
    let mut map: HashMap<String, Progress> = HashMap::new();
    for r in rows {
        let p = map.entry(r.target.clone()).or_default();
        let a = p.attempts.entry(r.step.clone()).or_insert(0);
        if r.action == Action::Run {
            *a = (*a).max(r.attempt);
        }
        match (r.action, r.state.as_str()) {
            (Action::Run, "ok") => {
                p.done.retain(|(s, _)| s != &r.step);
                p.done.push((r.step.clone(), r.outputs.clone()));
                p.failed = None;
            }
            (Action::Run, "failed") => {
                p.failed = Some((
                    r.step.clone(),
                    r.outputs.clone(),
                    r.error.clone().unwrap_or_default(),
                ));
            }
            (Action::Undo, "ok") => p.done.retain(|(s, _)| s != &r.step),
            (_, "started") => p.in_flight.push(r.clone()),
            _ => {}
        }
    }
    map
}
