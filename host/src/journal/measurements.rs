//! Measurements of analysis gates: each one journaled as it is taken, so a resume continues
//! an analysis instead of restarting it, and `status` shows them.

use super::{now_ms, Journal};
use anyhow::Result;
use rusqlite::params;

/// One measurement (or a `resume` marker: a later run of the stage began).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Measurement {
    pub stage: i64,
    pub analysis: String,
    pub seq: i64,
    pub ts: i64,
    pub value: Option<f64>,
    /// `pass`, `fail`, `inconclusive` or `resume`.
    pub outcome: String,
    pub detail: String,
}

impl Journal {
    /// Record a measurement (durable on return); its sequence number.
    pub fn measured(
        &self,
        rollout: i64,
        stage: i64,
        analysis: &str,
        value: Option<f64>,
        outcome: &str,
        detail: &str,
    ) -> Result<i64> {
        let c = self.writing()?;
        let seq: i64 = c.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM measurements WHERE rollout = ?1 AND analysis = ?2",
            params![rollout, analysis],
            |r| r.get(0),
        )?;
        c.execute(
            "INSERT INTO measurements(rollout, stage, analysis, seq, ts, value, outcome, detail) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![rollout, stage, analysis, seq, now_ms(), value, outcome, self.scrub(detail)],
        )?;
        Ok(seq)
    }

    /// The measurements of `rollout`, oldest first.
    pub fn measurements(&self, rollout: i64) -> Result<Vec<Measurement>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(
            "SELECT stage, analysis, seq, ts, value, outcome, detail FROM measurements WHERE rollout = ?1 ORDER BY ts, seq",
        )?;
        let rows = st.query_map(params![rollout], |r| {
            Ok(Measurement {
                stage: r.get(0)?,
                analysis: r.get(1)?,
                seq: r.get(2)?,
                ts: r.get(3)?,
                value: r.get(4)?,
                outcome: r.get(5)?,
                detail: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
