//! Analysis gates in-process: a fake provider gives the measurements, paused time makes the
//! intervals free.

use super::harness::{Harness, RELEASE_DIR};
use crate::engine::analysis::Measure;
use crate::engine::transport::BoxFuture;
use crate::journal::{Status, TargetState};
use crate::plugin::model::DecisionKind;
use crate::spec::analysis::Analysis;
use std::sync::{Arc, Mutex};

/// Gives the values in order (then the last again); `None` is an inconclusive measurement.
/// With `crash_at`, the measurement of that number never answers and the "process" dies.
struct FakeMeasure {
    values: Vec<Option<f64>>,
    taken: Mutex<usize>,
    crash_at: Option<usize>,
    crashed: Arc<tokio::sync::Notify>,
}

impl FakeMeasure {
    fn new(values: &[Option<f64>]) -> Arc<FakeMeasure> {
        Arc::new(FakeMeasure {
            values: values.to_vec(),
            taken: Mutex::new(0),
            crash_at: None,
            crashed: Default::default(),
        })
    }

    fn taken(&self) -> usize {
        *self.taken.lock().unwrap()
    }
}

impl Measure for FakeMeasure {
    fn measure<'a>(&'a self, _: &'a Analysis) -> BoxFuture<'a, Result<f64, String>> {
        Box::pin(async move {
            let n = {
                let mut t = self.taken.lock().unwrap();
                *t += 1;
                *t
            };
            if self.crash_at == Some(n) {
                self.crashed.notify_one();
                std::future::pending::<()>().await;
            }
            let v = self.values[(n - 1).min(self.values.len() - 1)];
            v.ok_or_else(|| "the provider did not answer".to_string())
        })
    }
}

const GATE: &str = "[[analysis]]\nname = \"errors\"\nprovider = \"p.wasm\"\nafter-wave = 1\ninterval = \"30s\"\ncount = 3\nsuccess = \"value < 0.05\"\n";

fn outcomes(h: &Harness) -> Vec<String> {
    h.env
        .journal
        .measurements(h.id)
        .unwrap()
        .into_iter()
        .map(|m| m.outcome)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_healthy_canary_passes_its_analysis_and_the_rollout_goes_on() {
    let h = Harness::with_spec(4, 1, RELEASE_DIR, DecisionKind::Proceed, GATE);
    assert!(matches!(
        h.plan.stages[1],
        crate::engine::plan::XStage::Analysis { .. }
    ));
    let m = FakeMeasure::new(&[Some(0.01)]);
    let o = h.run().with_measure(m.clone()).drive().await.unwrap();
    assert_eq!(o.status, Status::Completed, "{}", o.reason);
    assert_eq!(outcomes(&h), ["pass", "pass", "pass"]);
    assert_eq!(h.on_new().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn a_rising_error_rate_fails_the_analysis_and_rolls_back_without_a_person() {
    let h = Harness::with_spec(4, 1, RELEASE_DIR, DecisionKind::Proceed, GATE);
    let m = FakeMeasure::new(&[Some(0.01), Some(0.4)]);
    let o = h.run().with_measure(m.clone()).drive().await.unwrap();
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    assert!(
        o.reason.contains("analysis `errors` failed"),
        "{}",
        o.reason
    );
    assert_eq!(outcomes(&h), ["pass", "fail"]);
    assert!(h.on_new().is_empty());
    assert_eq!(h.states()["t1"], TargetState::RolledBack);
    assert_eq!(
        h.transport.count("run stop t2"),
        0,
        "the next wave never started"
    );
}

#[tokio::test(start_paused = true)]
async fn no_answer_is_inconclusive_and_pauses_for_a_person_never_passes() {
    let h = Harness::with_spec(3, 1, RELEASE_DIR, DecisionKind::Proceed, GATE);
    let m = FakeMeasure::new(&[None]);
    let o = h.run().with_measure(m.clone()).drive().await.unwrap();
    assert_eq!(o.status, Status::Paused, "{}", o.reason);
    assert!(
        o.reason.contains("inconclusive") && o.reason.contains("cutover approve"),
        "{}",
        o.reason
    );
    assert_eq!(outcomes(&h), ["inconclusive"]);
    assert_eq!(h.transport.count("run stop t2"), 0);
    // The operator accepts it: the gate is passed without measuring again.
    let row = h.env.journal.rollout(h.id).unwrap();
    h.env.journal.approve(h.id, row.stage).unwrap();
    let o = h.resume(&Default::default()).await;
    assert_eq!(o.status, Status::Completed, "{}", o.reason);
    assert_eq!(m.taken(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_crash_during_an_analysis_continues_it_on_resume_instead_of_restarting() {
    let h = Harness::with_spec(3, 1, RELEASE_DIR, DecisionKind::Proceed, GATE);
    let m = Arc::new(FakeMeasure {
        values: vec![Some(0.01)],
        taken: Mutex::new(0),
        crash_at: Some(3),
        crashed: Default::default(),
    });
    let run = h.run().with_measure(m.clone());
    let crashed = m.crashed.clone();
    let out = tokio::select! {
        o = run.drive() => Some(o.unwrap()),
        _ = crashed.notified() => None,
    };
    assert!(out.is_none(), "{out:?}");
    assert_eq!(outcomes(&h), ["pass", "pass"]);
    // A new process: only the third measurement is left.
    let fresh = FakeMeasure::new(&[Some(0.02)]);
    let row = h.env.journal.rollout(h.id).unwrap();
    let o = crate::engine::continue_run(
        &h.env,
        &row,
        h.run().with_measure(fresh.clone()),
        &Default::default(),
    )
    .await
    .unwrap();
    assert_eq!(o.status, Status::Completed, "{}", o.reason);
    assert_eq!(
        fresh.taken(),
        1,
        "the analysis continued: {:?}",
        outcomes(&h)
    );
    assert_eq!(outcomes(&h), ["pass", "pass", "resume", "pass"]);
}

#[tokio::test(start_paused = true)]
async fn a_background_analysis_that_breaks_rolls_the_rollout_back() {
    let bg = "[[analysis]]\nname = \"alarm\"\nprovider = \"p.wasm\"\nbackground = true\ninterval = \"1s\"\nsuccess = \"value < 1\"\n";
    let h = Harness::with_spec(6, 1, RELEASE_DIR, DecisionKind::Proceed, bg);
    let m = FakeMeasure::new(&[Some(0.0), Some(0.0), Some(5.0)]);
    let o = h.run().with_measure(m.clone()).drive().await.unwrap();
    assert_eq!(o.status, Status::RolledBack, "{}", o.reason);
    assert!(
        o.reason.contains("background analysis `alarm` failed"),
        "{}",
        o.reason
    );
    assert!(h.on_new().is_empty());
}
