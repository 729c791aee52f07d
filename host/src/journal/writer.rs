//! The writer thread: batches of records committed together (group commit).

use super::*;

/// Commit what arrives, in batches.
pub(super) fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Msg>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
            if batch.len() >= 4096 {
                break;
            }
        }
        let result = failpoint::fault().and_then(|()| {
            apply(&mut conn, &batch).map_err(|e| e.to_string())?;
            failpoint::committed();
            Ok(())
        });
        for m in batch {
            if let Some(ack) = m.ack {
                let _ = ack.send(result.clone());
            }
        }
    }
}

fn apply(conn: &mut Connection, batch: &[Msg]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let now = now_ms();
    for op in batch.iter().flat_map(|m| m.ops.iter()) {
        match op {
            Op::Begin(StepStart {
                rollout,
                seq,
                stage,
                target,
                step,
                action,
                attempt,
            }) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO steps(rollout, seq, stage, target, step, action, attempt, state, started) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 'started', ?8)",
                )?
                .execute(params![rollout, seq, stage, target, step, action.as_str(), attempt, now])?;
            }
            Op::Finish(StepEnd {
                rollout,
                seq,
                outputs,
                error,
                unreached,
                kept,
            }) => {
                let out = serde_json::to_string(outputs).unwrap_or_else(|_| "[]".into());
                let state = match (error, unreached, kept) {
                    (None, _, _) => StepState::Ok,
                    (Some(_), _, true) => StepState::Kept,
                    (Some(_), true, false) => StepState::Unreached,
                    (Some(_), false, false) => StepState::Failed,
                };
                tx.prepare_cached(
                    "UPDATE steps SET state = ?3, outputs = ?4, error = ?5, ended = ?6 WHERE rollout = ?1 AND seq = ?2",
                )?
                .execute(params![rollout, seq, state.as_str(), out, error, now])?;
            }
            Op::Detail {
                rollout,
                target,
                detail,
            } => {
                // The `state` column of version 1 is no longer written: a target's state is
                // derived from its step records (`engine::state`).
                tx.prepare_cached(
                    "INSERT INTO targets(rollout, target, state, detail) VALUES(?1, ?2, '', ?3) ON CONFLICT(rollout, target) DO UPDATE SET detail = excluded.detail",
                )?
                .execute(params![rollout, target, detail])?;
            }
            Op::Event {
                rollout,
                level,
                target,
                step,
                message,
            } => {
                tx.prepare_cached(
                    "INSERT INTO events(rollout, ts, level, target, step, message) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                )?
                .execute(params![rollout, now, level, target, step, message])?;
            }
            Op::HostDown {
                rollout,
                host,
                reason,
            } => {
                tx.prepare_cached(
                    "INSERT OR IGNORE INTO lost_hosts(rollout, host, reason, ts) VALUES(?1, ?2, ?3, ?4)",
                )?
                .execute(params![rollout, host, reason, now])?;
            }
        }
    }
    tx.commit()
}
