//! Analysis gates while a rollout runs: each measurement journaled as it is taken, so a
//! resume continues the analysis where it stopped; and background analyses, which watch the
//! whole rollout and roll it back when their condition breaks.

use super::*;
use crate::spec::analysis::Analysis;

/// How an analysis gate ended.
pub(super) enum Verdict {
    Passed,
    Failed(String),
    /// Too many measurements without an answer: a person decides.
    Inconclusive(String),
    /// The run is stopping (a signal, an abort): the gate starts over on resume.
    Halted,
}

impl Inner {
    fn analysis(&self, name: &str) -> Result<Analysis> {
        self.p
            .spec
            .analyses
            .iter()
            .find(|a| a.name == name)
            .cloned()
            .ok_or_else(|| {
                anyhow::anyhow!("the plan has analysis `{name}`, which the spec no longer defines")
            })
    }

    /// Wait `d`, unless the run stops first (then false).
    async fn wait(&self, d: Duration) -> bool {
        let start = tokio::time::Instant::now();
        while start.elapsed() < d {
            if self.abort.load(Ordering::SeqCst) || self.halted().is_some() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100).min(d)).await;
        }
        !(self.abort.load(Ordering::SeqCst) || self.halted().is_some())
    }

    /// Take one measurement and journal it; its outcome.
    async fn measure_once(&self, stage: i64, a: &Analysis) -> Result<&'static str> {
        let (value, outcome, detail) = match self.measure.measure(a).await {
            Ok(v) if a.success.holds(v) => (Some(v), "pass", String::new()),
            Ok(v) => (Some(v), "fail", format!("{v} does not meet {}", a.success)),
            Err(why) => (None, "inconclusive", why),
        };
        self.env
            .journal
            .measured(self.id, stage, &a.name, value, outcome, &detail)?;
        let shown = value
            .map(|v| format!("{v}"))
            .unwrap_or_else(|| "no value".into());
        self.env.ui.note(&format!(
            "  analysis `{}`: {shown} → {outcome}{}",
            a.name,
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        ));
        Ok(outcome)
    }

    /// Run the gate at `stage`, continuing from the measurements already journaled there.
    pub(super) async fn analysis_gate(&self, stage: usize, name: &str) -> Result<Verdict> {
        let a = self.analysis(name)?;
        let stage = stage as i64;
        let earlier: Vec<_> = self
            .env
            .journal
            .measurements(self.id)?
            .into_iter()
            .filter(|m| m.stage == stage && m.analysis == a.name)
            .collect();
        let mut taken = earlier
            .iter()
            .filter(|m| m.outcome == "pass" || m.outcome == "fail")
            .count() as u32;
        let mut failed = earlier.iter().filter(|m| m.outcome == "fail").count() as u32;
        if !earlier.is_empty() {
            // Inconclusive measurements before a resume are the operator's to have judged.
            self.env
                .journal
                .measured(self.id, stage, &a.name, None, "resume", "")?;
            self.env.ui.note(&format!(
                "  analysis `{}`: continuing after {taken} of {} measurement(s)",
                a.name, a.count
            ));
        }
        let mut streak = 0u32;
        let mut first = earlier.is_empty();
        while taken < a.count {
            if !first && !self.wait(a.interval).await {
                return Ok(Verdict::Halted);
            }
            first = false;
            match self.measure_once(stage, &a).await? {
                "pass" => {
                    taken += 1;
                    streak = 0;
                }
                "fail" => {
                    taken += 1;
                    streak = 0;
                    failed += 1;
                    if failed > a.failure_limit {
                        return Ok(Verdict::Failed(format!(
                            "{failed} measurement(s) failed {}, more than failure-limit = {}",
                            a.success, a.failure_limit
                        )));
                    }
                }
                _ => {
                    streak += 1;
                    if streak > a.inconclusive_limit {
                        return Ok(Verdict::Inconclusive(format!(
                            "{streak} measurement(s) in a row gave no value, more than inconclusive-limit = {}",
                            a.inconclusive_limit
                        )));
                    }
                }
            }
        }
        Ok(Verdict::Passed)
    }

    /// Watch the rollout with a background analysis until the run ends: when it fails, the
    /// alarm is raised and the driver rolls back at the next stage.
    pub(super) async fn background(self: Arc<Self>, a: Analysis) {
        let mut failed = self
            .env
            .journal
            .measurements(self.id)
            .map(|ms| {
                ms.iter()
                    .filter(|m| m.analysis == a.name && m.outcome == "fail")
                    .count() as u32
            })
            .unwrap_or(0);
        loop {
            match self.measure_once(-1, &a).await {
                Ok("fail") => {
                    failed += 1;
                    if failed > a.failure_limit {
                        *self.alarm.lock().unwrap() = Some(format!(
                            "background analysis `{}` failed: {failed} measurement(s) did not meet {}",
                            a.name, a.success
                        ));
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
            if !self.wait(a.interval).await {
                return;
            }
        }
    }
}
