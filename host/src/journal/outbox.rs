//! The webhook outbox: each rollout event a webhook wants is written in the same commit as
//! the state change it reports, then delivered, at least once, by this process or by the
//! next cutover that opens the journal after a crash. Receivers dedupe on the idempotency key.

use super::{now_ms, Journal, Status};
use crate::spec::notify::Hook;
use anyhow::Result;
use rusqlite::{params, Connection};

/// A delivery waiting or done.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Delivery {
    pub id: i64,
    pub rollout: i64,
    pub event: String,
    pub url: String,
    pub body: String,
    pub key: String,
    pub attempts: i64,
    /// Not before this (ms since the epoch).
    pub next_try: i64,
    pub delivered: Option<i64>,
    pub last_error: String,
}

/// The event a status change reports, if any.
pub fn status_event(status: Status, reason: &str) -> Option<&'static str> {
    Some(match status {
        Status::Paused if reason.starts_with("waiting for approval") => "needs-approval",
        Status::Paused => "paused",
        Status::Failed => "failed",
        Status::RolledBack => "rolled-back",
        Status::Completed | Status::CompletedWithFailures => "completed",
        Status::Aborted => "aborted",
        _ => return None,
    })
}

/// Queue `event` of `rollout` for every hook that wants it, in the caller's transaction.
pub(super) fn enqueue(
    c: &Connection,
    hooks: &[Hook],
    rollout: i64,
    event: &str,
    detail: &serde_json::Value,
) -> Result<usize> {
    let wanted: Vec<&Hook> = hooks
        .iter()
        .filter(|h| h.events.iter().any(|e| e == event))
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let (name, status, reason): (String, String, String) = c.query_row(
        "SELECT name, status, reason FROM rollouts WHERE id = ?1",
        params![rollout],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let n: i64 = c.query_row(
        "SELECT COUNT(*) FROM outbox WHERE rollout = ?1",
        params![rollout],
        |r| r.get(0),
    )?;
    let now = now_ms();
    for (i, h) in wanted.iter().enumerate() {
        let key = format!("cutover-{rollout}-{}-{event}", n + i as i64 + 1);
        let body = serde_json::json!({
            "key": key,
            "event": event,
            "rollout": rollout,
            "name": name,
            "status": status,
            "reason": reason,
            "detail": detail,
            "ts": now,
        });
        c.execute(
            "INSERT INTO outbox(rollout, event, url, body, key, created) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
            params![rollout, event, h.url, body.to_string(), key, now],
        )?;
    }
    Ok(wanted.len())
}

impl Journal {
    /// Webhooks told of this process's rollouts from now on.
    pub fn set_hooks(&self, hooks: Vec<Hook>) {
        *self.hooks.write().unwrap() = hooks;
    }

    pub fn hooks(&self) -> Vec<Hook> {
        self.hooks.read().unwrap().clone()
    }

    /// Record `event` for the webhooks that want it (durable on return).
    pub fn notify(&self, rollout: i64, event: &str, detail: serde_json::Value) -> Result<()> {
        let hooks = self.hooks();
        if hooks.is_empty() {
            return Ok(());
        }
        let mut c = self.writing()?;
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let n = enqueue(&tx, &hooks, rollout, event, &detail)?;
        tx.commit()?;
        if n > 0 {
            super::failpoint::event_committed(event);
        }
        Ok(())
    }

    /// Deliveries not yet made whose next try is due.
    pub fn due_deliveries(&self, now: i64) -> Result<Vec<Delivery>> {
        self.deliveries(
            "WHERE delivered IS NULL AND next_try <= ?1 ORDER BY id",
            params![now],
        )
    }

    /// Every delivery of `rollout`.
    pub fn rollout_deliveries(&self, rollout: i64) -> Result<Vec<Delivery>> {
        self.deliveries("WHERE rollout = ?1 ORDER BY id", params![rollout])
    }

    fn deliveries(&self, filter: &str, p: impl rusqlite::Params) -> Result<Vec<Delivery>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(&format!(
            "SELECT id, rollout, event, url, body, key, attempts, next_try, delivered, last_error FROM outbox {filter}"
        ))?;
        let rows = st.query_map(p, |r| {
            Ok(Delivery {
                id: r.get(0)?,
                rollout: r.get(1)?,
                event: r.get(2)?,
                url: r.get(3)?,
                body: r.get(4)?,
                key: r.get(5)?,
                attempts: r.get(6)?,
                next_try: r.get(7)?,
                delivered: r.get(8)?,
                last_error: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Mark a delivery made, or failed with its next try.
    pub fn delivery_tried(
        &self,
        id: i64,
        result: std::result::Result<(), (String, i64)>,
    ) -> Result<()> {
        let c = self.writing()?;
        match result {
            Ok(()) => c.execute(
                "UPDATE outbox SET attempts = attempts + 1, delivered = ?2, last_error = '' WHERE id = ?1",
                params![id, now_ms()],
            )?,
            Err((why, next)) => c.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_try = ?2, last_error = ?3 WHERE id = ?1",
                params![id, next, why],
            )?,
        };
        Ok(())
    }
}
