//! What a rollout holds on its nodes (lease files) and the hosts it lost.

use super::{Journal, LostHost};
use anyhow::Result;
use rusqlite::params;
use std::path::PathBuf;

impl Journal {
    /// Record the lease files `rollout` holds on its nodes.
    pub fn record_leases(&self, rollout: i64, paths: &[PathBuf]) -> Result<()> {
        let mut c = self.writing()?;
        let tx = c.transaction()?;
        for p in paths {
            tx.execute(
                "INSERT OR IGNORE INTO node_leases(rollout, path) VALUES(?1, ?2)",
                params![rollout, p.display().to_string()],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The lease files `rollout` holds on its nodes.
    pub fn node_leases(&self, rollout: i64) -> Result<Vec<PathBuf>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare("SELECT path FROM node_leases WHERE rollout = ?1 ORDER BY path")?;
        let rows = st.query_map(params![rollout], |r| r.get::<_, String>(0))?;
        Ok(rows
            .collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .map(PathBuf::from)
            .collect())
    }

    /// The hosts `rollout` lost and has not reached again since.
    pub fn lost_hosts(&self, rollout: i64) -> Result<Vec<LostHost>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(
            "SELECT host, reason, ts FROM lost_hosts WHERE rollout = ?1 ORDER BY ts, host",
        )?;
        let rows = st.query_map(params![rollout], |r| {
            Ok(LostHost {
                host: r.get(0)?,
                reason: r.get(1)?,
                at_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// Every host of `rollout` was reached again: forget that any was lost.
    pub fn hosts_back(&self, rollout: i64) -> Result<()> {
        self.writing()?.execute(
            "DELETE FROM lost_hosts WHERE rollout = ?1",
            params![rollout],
        )?;
        Ok(())
    }
}
