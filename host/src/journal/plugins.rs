//! The plugins each rollout loaded, by digest: what `resume` and `rollback` load again, and
//! what the plugin store must keep.

use super::{Journal, Status};
use anyhow::Result;
use rusqlite::params;

/// A plugin a rollout loaded.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LoadedPlugin {
    /// `strategy` or `adapter`.
    pub role: String,
    /// `sha256:…`, kept in the plugin store.
    pub digest: String,
    /// What the spec named: a file or a reference.
    pub source: String,
    /// The key id of its verified signature; empty when no trust policy asked for one.
    pub signer: String,
}

/// Record the plugin `rollout` loaded (in the caller's transaction).
pub(super) fn insert(c: &rusqlite::Connection, rollout: i64, p: &LoadedPlugin) -> Result<()> {
    c.execute(
        "INSERT OR REPLACE INTO plugins(rollout, role, digest, source, signer) VALUES(?1, ?2, ?3, ?4, ?5)",
        params![rollout, p.role, p.digest, p.source, p.signer],
    )?;
    Ok(())
}

impl Journal {
    /// The plugins `rollout` loaded (none for a rollout started before they were recorded).
    pub fn plugins(&self, rollout: i64) -> Result<Vec<LoadedPlugin>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(
            "SELECT role, digest, source, signer FROM plugins WHERE rollout = ?1 ORDER BY role",
        )?;
        let rows = st.query_map(params![rollout], |r| {
            Ok(LoadedPlugin {
                role: r.get(0)?,
                digest: r.get(1)?,
                source: r.get(2)?,
                signer: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
    }

    /// The digests of rollouts that may still resume or roll back (not completed or rolled
    /// back): the plugin store keeps them.
    pub fn plugins_in_use(&self) -> Result<Vec<String>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(
            "SELECT DISTINCT p.digest FROM plugins p JOIN rollouts r ON r.id = p.rollout \
             WHERE r.status NOT IN (?1, ?2) ORDER BY p.digest",
        )?;
        let rows = st.query_map(
            params![Status::Completed.as_str(), Status::RolledBack.as_str()],
            |r| r.get(0),
        )?;
        Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
    }
}
