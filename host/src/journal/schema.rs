//! The journal's tables, and the migrations that bring an older journal up to date.

use super::*;

/// The schema version this build writes. A journal outlives the binary that wrote it: an
/// older journal is migrated forward on open; a newer one is refused.
pub const VERSION: i64 = 8;

/// Version 1: the tables as first released.
const V1: &str = r#"
CREATE TABLE IF NOT EXISTS rollouts(
  id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, spec_path TEXT NOT NULL,
  spec_text TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
  plan TEXT NOT NULL DEFAULT '', stage INTEGER NOT NULL DEFAULT 0, pid INTEGER NOT NULL DEFAULT 0,
  created INTEGER NOT NULL, updated INTEGER NOT NULL, abort_requested INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS leases(target TEXT PRIMARY KEY, rollout INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS steps(
  rollout INTEGER NOT NULL, seq INTEGER NOT NULL, stage INTEGER NOT NULL, target TEXT NOT NULL,
  step TEXT NOT NULL, action TEXT NOT NULL, attempt INTEGER NOT NULL, state TEXT NOT NULL,
  outputs TEXT NOT NULL DEFAULT '[]', error TEXT, started INTEGER NOT NULL, ended INTEGER,
  PRIMARY KEY(rollout, seq));
CREATE TABLE IF NOT EXISTS targets(
  rollout INTEGER NOT NULL, target TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '',
  PRIMARY KEY(rollout, target));
CREATE TABLE IF NOT EXISTS events(
  id INTEGER PRIMARY KEY AUTOINCREMENT, rollout INTEGER NOT NULL, ts INTEGER NOT NULL,
  level TEXT NOT NULL, target TEXT NOT NULL, step TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approvals(rollout INTEGER NOT NULL, stage INTEGER NOT NULL,
  PRIMARY KEY(rollout, stage));
"#;

/// Each later version and what brings a journal to it.
const MIGRATIONS: &[(i64, &str)] = &[
    (
        2,
    // Which way a rollout is going: a rollback is recorded before its first undo, so a
    // crash never turns it back into a forward run.
        "ALTER TABLE rollouts ADD COLUMN direction TEXT NOT NULL DEFAULT 'forward';",
    ),
    (
        3,
        // The lease files a rollout took on its nodes, removed when it ends, even by a
        // command that loads no plugin (`abort`).
        "CREATE TABLE IF NOT EXISTS node_leases(rollout INTEGER NOT NULL, path TEXT NOT NULL, PRIMARY KEY(rollout, path));",
    ),
    (
        4,
        // Remote hosts a rollout lost (they did not come back within a step's budget),
        // shown by `status` until every host is reached again.
        "CREATE TABLE IF NOT EXISTS lost_hosts(rollout INTEGER NOT NULL, host TEXT NOT NULL, reason TEXT NOT NULL, ts INTEGER NOT NULL, PRIMARY KEY(rollout, host));",
    ),
    (
        5,
        // The exact plugins a rollout loaded (by digest, kept in the plugin store), so that
        // `resume` and `rollback` load the same bytes whatever the spec's file or reference
        // holds by then, and who signed them.
        "CREATE TABLE IF NOT EXISTS plugins(rollout INTEGER NOT NULL, role TEXT NOT NULL, digest TEXT NOT NULL, source TEXT NOT NULL, signer TEXT NOT NULL DEFAULT '', PRIMARY KEY(rollout, role));",
    ),
    (
        6,
        // The measurements of analysis gates, so a resume continues an analysis where it
        // stopped and `status` shows them. `value` is null for an inconclusive measurement;
        // `outcome` is pass, fail, inconclusive, or resume (a later run of the stage began).
        "CREATE TABLE IF NOT EXISTS measurements(rollout INTEGER NOT NULL, stage INTEGER NOT NULL, analysis TEXT NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, value REAL, outcome TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '', PRIMARY KEY(rollout, analysis, seq));",
    ),
    (
        7,
        // Webhook deliveries waiting or done: written in the same commit as the state change
        // they report, delivered at least once (by whichever cutover next opens the journal
        // after a crash), each with its idempotency key.
        "CREATE TABLE IF NOT EXISTS outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, rollout INTEGER NOT NULL, event TEXT NOT NULL, url TEXT NOT NULL, body TEXT NOT NULL, key TEXT NOT NULL UNIQUE, created INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0, delivered INTEGER, last_error TEXT NOT NULL DEFAULT '');",
    ),
    (
        8,
        // Operator actions taken through `cutover serve`: who asked for what, when, and how
        // it went (shown by `status` and the dashboard).
        "CREATE TABLE IF NOT EXISTS actions(id INTEGER PRIMARY KEY AUTOINCREMENT, rollout INTEGER NOT NULL, action TEXT NOT NULL, who TEXT NOT NULL, ts INTEGER NOT NULL, result TEXT NOT NULL DEFAULT '');",
    ),
];

/// Bring the journal at `path` up to [`VERSION`].
pub(super) fn migrate(conn: &mut Connection, path: &Path) -> Result<()> {
    let mut v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if v > VERSION {
        bail!(
            "journal {} has schema version {v}, written by a newer cutover; this one knows up to version {VERSION}: use the newer cutover, or another --journal",
            path.display()
        );
    }
    if v == 0 {
        // A new journal, or one from before versioning: both have (or get) version 1.
        conn.execute_batch(V1)?;
        v = 1;
    }
    for (to, sql) in MIGRATIONS.iter().filter(|(to, _)| *to > v) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let now: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now < *to {
            tx.execute_batch(sql)
                .with_context(|| format!("migrating journal {} to version {to}", path.display()))?;
            tx.pragma_update(None, "user_version", to)?;
        }
        tx.commit()?;
    }
    Ok(())
}

/// Open a connection in WAL mode with the given durability.
pub(super) fn connect(path: &Path, sync: Sync) -> Result<Connection> {
    let conn = Connection::open(path)
        .with_context(|| format!("cannot open journal {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        },
    )?;
    Ok(conn)
}
