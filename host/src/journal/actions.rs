//! Operator actions taken through `cutover serve`: who asked for what on which rollout, when,
//! and how it went.

use super::{now_ms, Journal};
use anyhow::Result;
use rusqlite::params;

/// One recorded operator action.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ActionRow {
    pub id: i64,
    pub rollout: i64,
    /// `approve`, `abort`, `rollback` or `resume`.
    pub action: String,
    /// The operator, as the server knows them (a token's label or its `--operator`).
    pub who: String,
    /// When it was asked for (ms since the Unix epoch).
    pub ts: i64,
    /// How it went: `started (pid N)`, then the rollout's status when its process ended, or
    /// why it was refused.
    pub result: String,
}

impl Journal {
    /// Record that `who` asked for `action` on `rollout`, with its first `result` (durable on
    /// return); the action's id.
    pub fn record_action(
        &self,
        rollout: i64,
        action: &str,
        who: &str,
        result: &str,
    ) -> Result<i64> {
        let c = self.writing()?;
        c.execute(
            "INSERT INTO actions(rollout, action, who, ts, result) VALUES(?1, ?2, ?3, ?4, ?5)",
            params![rollout, action, who, now_ms(), self.scrub(result)],
        )?;
        Ok(c.last_insert_rowid())
    }

    /// Set how action `id` went.
    pub fn set_action_result(&self, id: i64, result: &str) -> Result<()> {
        self.writing()?.execute(
            "UPDATE actions SET result = ?2 WHERE id = ?1",
            params![id, self.scrub(result)],
        )?;
        Ok(())
    }

    /// The actions recorded for `rollout`, oldest first.
    pub fn actions(&self, rollout: i64) -> Result<Vec<ActionRow>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(
            "SELECT id, rollout, action, who, ts, result FROM actions WHERE rollout = ?1 ORDER BY id",
        )?;
        let rows = st.query_map(params![rollout], |r| {
            Ok(ActionRow {
                id: r.get(0)?,
                rollout: r.get(1)?,
                action: r.get(2)?,
                who: r.get(3)?,
                ts: r.get(4)?,
                result: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Sync;
    use super::*;

    #[test]
    fn actions_are_recorded_with_who_and_when() {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open(&dir.path().join("j.db"), Sync::Normal).unwrap();
        let r = j.create_rollout("a", "a.toml", "x").unwrap();
        let before = now_ms();
        let id = j.record_action(r, "approve", "alice", "started").unwrap();
        j.set_action_result(id, "completed").unwrap();
        let rows = j.actions(r).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(
            (rows[0].action.as_str(), rows[0].who.as_str()),
            ("approve", "alice")
        );
        assert_eq!(rows[0].result, "completed");
        assert!(rows[0].ts >= before);
        assert!(j.actions(r + 1).unwrap().is_empty());
    }
}
