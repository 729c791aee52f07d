//! The journal: every rollout, stage, step start and end, in embedded SQLite (WAL mode).
//!
//! Hot-path records go through one writer thread that commits whatever is queued in a single
//! transaction (group commit across concurrent targets) and acknowledges each record only
//! once it is durable, so a step never starts before its start record is on disk.

mod actions;
pub mod failpoint;
mod hosts;
pub mod measurements;
pub mod outbox;
mod plugins;
mod records;
mod schema;
mod writer;

pub use actions::ActionRow;
pub use plugins::LoadedPlugin;
pub use records::*;

use anyhow::{anyhow, bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use schema::connect;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Mutex};
use tokio::sync::oneshot;
use writer::writer_loop;

struct Msg {
    ops: Vec<Op>,
    ack: Option<oneshot::Sender<Result<(), String>>>,
}

/// The journal of a machine: control-plane queries on one connection, hot-path writes on a
/// writer thread.
pub struct Journal {
    path: PathBuf,
    /// Every secret value known to this process: no text reaches the journal without being
    /// redacted against it, so no later reader can show one (secret outputs are kept whole,
    /// so that a resume has them).
    redact: std::sync::RwLock<Option<std::sync::Arc<crate::redact::Redactor>>>,
    /// Webhooks told of rollout events (see `outbox`).
    hooks: std::sync::RwLock<Vec<crate::spec::notify::Hook>>,
    conn: Mutex<Connection>,
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Journal {
    /// Open (creating if needed) the journal at `path`.
    pub fn open(path: &Path, sync: Sync) -> Result<Journal> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
            }
        }
        let conn = connect(path, sync)?;
        let mut conn = conn;
        schema::migrate(&mut conn, path)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let wconn = connect(path, sync)?;
        let writer = std::thread::Builder::new()
            .name("journal-writer".into())
            .spawn(move || writer_loop(wconn, rx))?;
        Ok(Journal {
            path: path.to_path_buf(),
            redact: std::sync::RwLock::new(None),
            hooks: std::sync::RwLock::new(Vec::new()),
            conn: Mutex::new(conn),
            tx: Mutex::new(Some(tx)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The connection for one durable write: refused while a journal fault is injected,
    /// counted as a commit when done.
    fn writing(&self) -> Result<Writing<'_>> {
        failpoint::fault().map_err(WriteFailed)?;
        Ok(Writing(self.conn.lock().unwrap()))
    }

    /// Where the journal lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Redact every text written from now on against `r`'s secrets.
    pub fn set_redactor(&self, r: std::sync::Arc<crate::redact::Redactor>) {
        *self.redact.write().unwrap() = Some(r);
    }

    fn scrub(&self, text: &str) -> String {
        match &*self.redact.read().unwrap() {
            Some(r) => r.redact(text),
            None => text.to_string(),
        }
    }

    /// `ops` with their text redacted: messages, errors, details and non-secret outputs.
    fn scrub_ops(&self, mut ops: Vec<Op>) -> Vec<Op> {
        if self.redact.read().unwrap().is_none() {
            return ops;
        }
        for op in &mut ops {
            match op {
                Op::Begin(_) => {}
                Op::Finish(StepEnd { outputs, error, .. }) => {
                    for o in outputs.iter_mut().filter(|o| !o.secret) {
                        o.value = self.scrub(&o.value);
                    }
                    if let Some(e) = error {
                        *e = self.scrub(e);
                    }
                }
                Op::Detail { detail, .. } => *detail = self.scrub(detail),
                Op::Event { message, .. } => *message = self.scrub(message),
                Op::HostDown { reason, .. } => *reason = self.scrub(reason),
            }
        }
        ops
    }

    fn sender(&self) -> Result<mpsc::Sender<Msg>> {
        self.tx
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| anyhow!("journal closed"))
    }

    /// Write `ops` and wait until they are durable.
    pub async fn write(&self, ops: Vec<Op>) -> Result<()> {
        let ops = self.scrub_ops(ops);
        let (ack, done) = oneshot::channel();
        self.sender()?
            .send(Msg {
                ops,
                ack: Some(ack),
            })
            .map_err(|_| anyhow!("journal writer stopped"))?;
        done.await
            .map_err(|_| anyhow!("journal writer stopped"))?
            .map_err(|e| anyhow::Error::new(WriteFailed(e)))
    }

    /// Begin a step: its start record, with the `pending` records that ride along (group
    /// commit), is durable on return, before the step runs.
    pub async fn begin_step(&self, mut pending: Vec<Op>, start: StepStart) -> Result<()> {
        pending.push(Op::Begin(start));
        self.write(pending).await
    }

    /// End a step now: durable on return.
    pub async fn finish_step(&self, end: StepEnd) -> Result<()> {
        self.write(vec![Op::Finish(end)]).await
    }

    /// Queue `ops` without waiting (log lines).
    pub fn write_later(&self, ops: Vec<Op>) {
        let ops = self.scrub_ops(ops);
        if let Ok(tx) = self.sender() {
            let _ = tx.send(Msg { ops, ack: None });
        }
    }

    /// Wait for queued writes and stop the writer.
    pub fn close(&self) {
        self.tx.lock().unwrap().take();
        if let Some(h) = self.writer.lock().unwrap().take() {
            let _ = h.join();
        }
    }

    /// Record a new rollout; returns its id.
    pub fn create_rollout(&self, name: &str, spec_path: &str, spec_text: &str) -> Result<i64> {
        self.start_rollout(name, spec_path, spec_text, &[])
    }

    /// Create a rollout with the plugins it loaded, in one durable commit.
    pub fn start_rollout(
        &self,
        name: &str,
        spec_path: &str,
        spec_text: &str,
        plugins: &[LoadedPlugin],
    ) -> Result<i64> {
        let mut c = self.writing()?;
        let tx = c.transaction()?;
        let now = now_ms();
        tx.execute(
            "INSERT INTO rollouts(name, spec_path, spec_text, status, created, updated, pid) VALUES(?1, ?2, ?3, 'running', ?4, ?4, ?5)",
            params![name, spec_path, spec_text, now, std::process::id()],
        )?;
        let id = tx.last_insert_rowid();
        for p in plugins {
            plugins::insert(&tx, id, p)?;
        }
        tx.commit()?;
        Ok(id)
    }

    /// Take the lease on `targets` for `rollout`, or name the rollout that holds one.
    pub fn acquire(&self, rollout: i64, targets: &[String]) -> Result<()> {
        let mut c = self.writing()?;
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for t in targets {
            let holder: Option<(i64, String)> = tx
                .query_row(
                    "SELECT l.rollout, r.status FROM leases l JOIN rollouts r ON r.id = l.rollout WHERE l.target = ?1",
                    params![t],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((other, status)) = holder {
                if other != rollout && !Status::parse(&status).is_final() {
                    bail!(
                        "target `{t}` is in rollout {other} ({status}): only one rollout per target at a time; finish it with `cutover resume {other}`, `cutover abort {other}` or `cutover rollback {other}`"
                    );
                }
            }
            tx.execute(
                "INSERT OR REPLACE INTO leases(target, rollout) VALUES(?1, ?2)",
                params![t, rollout],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Drop the leases of `rollout`.
    pub fn release(&self, rollout: i64) -> Result<()> {
        let c = self.writing()?;
        c.execute("DELETE FROM leases WHERE rollout = ?1", params![rollout])?;
        c.execute(
            "DELETE FROM node_leases WHERE rollout = ?1",
            params![rollout],
        )?;
        Ok(())
    }

    /// Set status and reason (durable on return).
    /// The event it reports goes to the webhook outbox in the same commit.
    pub fn set_status(&self, rollout: i64, status: Status, reason: &str) -> Result<()> {
        let hooks = self.hooks();
        let mut c = self.writing()?;
        let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let reason = self.scrub(reason);
        tx.execute(
            "UPDATE rollouts SET status = ?2, reason = ?3, updated = ?4 WHERE id = ?1",
            params![rollout, status.as_str(), reason, now_ms()],
        )?;
        let event = outbox::status_event(status, &reason);
        let queued = match event {
            Some(e) => outbox::enqueue(&tx, &hooks, rollout, e, &serde_json::Value::Null)?,
            None => 0,
        };
        tx.commit()?;
        if let (Some(e), true) = (event, queued > 0) {
            failpoint::event_committed(e);
        }
        Ok(())
    }

    /// Record which way the rollout goes, with why (durable on return).
    pub fn set_direction(&self, rollout: i64, direction: Direction, reason: &str) -> Result<()> {
        let c = self.writing()?;
        c.execute(
            "UPDATE rollouts SET direction = ?2, reason = ?3, updated = ?4 WHERE id = ?1",
            params![rollout, direction.as_str(), self.scrub(reason), now_ms()],
        )?;
        Ok(())
    }

    /// Store the plan (JSON).
    pub fn set_plan(&self, rollout: i64, plan: &str) -> Result<()> {
        let c = self.writing()?;
        c.execute(
            "UPDATE rollouts SET plan = ?2, updated = ?3 WHERE id = ?1",
            params![rollout, self.scrub(plan), now_ms()],
        )?;
        Ok(())
    }

    /// Move the stage cursor (durable on return).
    pub fn set_stage(&self, rollout: i64, stage: i64) -> Result<()> {
        let c = self.writing()?;
        c.execute(
            "UPDATE rollouts SET stage = ?2, updated = ?3 WHERE id = ?1",
            params![rollout, stage, now_ms()],
        )?;
        Ok(())
    }

    /// Record the process now running the rollout.
    pub fn claim(&self, rollout: i64) -> Result<()> {
        let c = self.writing()?;
        c.execute(
            "UPDATE rollouts SET pid = ?2, status = 'running', abort_requested = 0, updated = ?3 WHERE id = ?1",
            params![rollout, std::process::id(), now_ms()],
        )?;
        Ok(())
    }

    /// Ask the process running `rollout` to stop after its current steps.
    pub fn request_abort(&self, rollout: i64) -> Result<()> {
        let c = self.writing()?;
        c.execute(
            "UPDATE rollouts SET abort_requested = 1 WHERE id = ?1",
            params![rollout],
        )?;
        Ok(())
    }

    /// Record an approval of the gate at `stage`.
    pub fn approve(&self, rollout: i64, stage: i64) -> Result<()> {
        let c = self.writing()?;
        c.execute(
            "INSERT OR IGNORE INTO approvals(rollout, stage) VALUES(?1, ?2)",
            params![rollout, stage],
        )?;
        Ok(())
    }

    /// Whether the gate at `stage` was approved.
    pub fn approved(&self, rollout: i64, stage: i64) -> Result<bool> {
        let c = self.conn.lock().unwrap();
        Ok(c.query_row(
            "SELECT 1 FROM approvals WHERE rollout = ?1 AND stage = ?2",
            params![rollout, stage],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
    }

    /// Mark a step row that was in flight at a crash as `ok`, `failed` or `abandoned`.
    pub fn settle(&self, rollout: i64, seq: i64, state: StepState) -> Result<()> {
        let c = self.writing()?;
        c.execute(
            "UPDATE steps SET state = ?3, ended = ?4, error = CASE WHEN ?3 = 'failed' THEN 'marked failed by the operator after a crash' ELSE error END WHERE rollout = ?1 AND seq = ?2 AND state = 'started'",
            params![rollout, seq, state.as_str(), now_ms()],
        )?;
        Ok(())
    }

    /// One rollout.
    pub fn rollout(&self, id: i64) -> Result<RolloutRow> {
        let c = self.conn.lock().unwrap();
        c.query_row(
            &format!("{ROLLOUT_COLS} WHERE id = ?1"),
            params![id],
            rollout_row,
        )
        .optional()?
        .ok_or_else(|| anyhow!("no rollout {id} in journal {}", self.path.display()))
    }

    /// Every rollout, newest first.
    pub fn rollouts(&self) -> Result<Vec<RolloutRow>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(&format!("{ROLLOUT_COLS} ORDER BY id DESC"))?;
        let rows = st.query_map([], rollout_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The newest rollout, if any.
    pub fn latest(&self) -> Result<Option<i64>> {
        let c = self.conn.lock().unwrap();
        Ok(c.query_row("SELECT MAX(id) FROM rollouts", [], |r| r.get(0))?)
    }

    /// Step rows of a rollout in order.
    pub fn steps(&self, rollout: i64) -> Result<Vec<StepRow>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(
            "SELECT seq, stage, target, step, action, attempt, state, outputs, error, started, ended FROM steps WHERE rollout = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map(params![rollout], |r| {
            let outputs: String = r.get(7)?;
            let action: String = r.get(4)?;
            Ok(StepRow {
                seq: r.get(0)?,
                stage: r.get(1)?,
                target: r.get(2)?,
                step: r.get(3)?,
                action: if action == "undo" {
                    Action::Undo
                } else {
                    Action::Run
                },
                attempt: r.get(5)?,
                state: StepState::parse(&r.get::<_, String>(6)?),
                outputs: serde_json::from_str(&outputs).unwrap_or_default(),
                error: r.get(8)?,
                started: r.get(9)?,
                ended: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The sequence number the next step record of `rollout` takes.
    pub fn next_seq(&self, rollout: i64) -> Result<i64> {
        let c = self.conn.lock().unwrap();
        let max: Option<i64> = c.query_row(
            "SELECT MAX(seq) FROM steps WHERE rollout = ?1",
            params![rollout],
            |r| r.get(0),
        )?;
        Ok(max.unwrap_or(0) + 1)
    }

    /// What the engine last said of each target of a rollout (target → detail).
    pub fn details(&self, rollout: i64) -> Result<std::collections::HashMap<String, String>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare("SELECT target, detail FROM targets WHERE rollout = ?1")?;
        let rows = st.query_map(params![rollout], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The last `limit` log lines of a rollout, oldest first.
    pub fn events(&self, rollout: i64, limit: usize) -> Result<Vec<EventRow>> {
        let c = self.conn.lock().unwrap();
        let mut st = c.prepare(
            "SELECT ts, level, target, step, message FROM (SELECT * FROM events WHERE rollout = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
        )?;
        let rows = st.query_map(params![rollout, limit as i64], |r| {
            Ok(EventRow {
                ts: r.get(0)?,
                level: r.get(1)?,
                target: r.get(2)?,
                step: r.get(3)?,
                message: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        self.close();
    }
}

/// A write the journal could not make durable: whoever gets it must stop starting steps.
#[derive(Debug, thiserror::Error)]
#[error("journal write failed: {0}")]
pub struct WriteFailed(pub String);

impl WriteFailed {
    /// Whether `e` is (or was caused by) a failed journal write.
    pub fn is(e: &anyhow::Error) -> bool {
        e.chain().any(|c| c.is::<WriteFailed>())
    }
}

/// A connection held for a write; dropping it counts the commit.
struct Writing<'a>(std::sync::MutexGuard<'a, Connection>);

impl std::ops::Deref for Writing<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.0
    }
}

impl std::ops::DerefMut for Writing<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        &mut self.0
    }
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        failpoint::committed();
    }
}

const ROLLOUT_COLS: &str = "SELECT id, name, spec_path, spec_text, status, reason, plan, stage, pid, created, updated, abort_requested, direction FROM rollouts";

fn rollout_row(r: &rusqlite::Row) -> rusqlite::Result<RolloutRow> {
    let status: String = r.get(4)?;
    Ok(RolloutRow {
        id: r.get(0)?,
        name: r.get(1)?,
        spec_path: r.get(2)?,
        spec_text: r.get(3)?,
        status: Status::parse(&status),
        reason: r.get(5)?,
        plan: r.get(6)?,
        stage: r.get(7)?,
        pid: r.get(8)?,
        created: r.get(9)?,
        updated: r.get(10)?,
        abort_requested: r.get::<_, i64>(11)? != 0,
        direction: Direction::parse(&r.get::<_, String>(12)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn records_are_durable_and_leases_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let j = Journal::open(&path, Sync::Full).unwrap();
        let a = j.create_rollout("a", "a.toml", "x").unwrap();
        let b = j.create_rollout("b", "b.toml", "x").unwrap();
        j.acquire(a, &["local/n1".into(), "local/n2".into()])
            .unwrap();
        let err = j.acquire(b, &["local/n2".into()]).unwrap_err().to_string();
        assert!(err.contains(&format!("rollout {a}")), "{err}");
        let start = StepStart {
            rollout: a,
            seq: 1,
            stage: 0,
            target: "n1".into(),
            step: "stop".into(),
            action: Action::Run,
            attempt: 1,
        };
        j.begin_step(Vec::new(), start).await.unwrap();
        // A second connection (another process) sees it as soon as `write` returned.
        let other = Journal::open(&path, Sync::Full).unwrap();
        let steps = other.steps(a).unwrap();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].state, StepState::Started);
        j.set_status(a, Status::Completed, "").unwrap();
        other.acquire(b, &["local/n2".into()]).unwrap();
    }
}

#[cfg(test)]
mod schema_tests {
    use super::*;

    #[test]
    fn an_older_journal_is_migrated_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            // A journal as version 1 wrote it: its tables, no version set.
            let c = Connection::open(&path).unwrap();
            c.execute_batch(
                "CREATE TABLE rollouts(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, spec_path TEXT NOT NULL, spec_text TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '', plan TEXT NOT NULL DEFAULT '', stage INTEGER NOT NULL DEFAULT 0, pid INTEGER NOT NULL DEFAULT 0, created INTEGER NOT NULL, updated INTEGER NOT NULL, abort_requested INTEGER NOT NULL DEFAULT 0);
                 INSERT INTO rollouts(name, spec_path, spec_text, status, created, updated) VALUES('old', 's', 't', 'completed', 0, 0);",
            )
            .unwrap();
        }
        let j = Journal::open(&path, Sync::Normal).unwrap();
        let row = j.rollout(1).unwrap();
        assert_eq!(row.direction, Direction::Forward);
        assert!(j.node_leases(1).unwrap().is_empty());
        j.close();
        drop(j);
        let c = Connection::open(&path).unwrap();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, schema::VERSION);
        c.pragma_update(None, "user_version", schema::VERSION + 1)
            .unwrap();
        drop(c);
        let e = Journal::open(&path, Sync::Normal)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("newer cutover"), "{e}");
    }
}
