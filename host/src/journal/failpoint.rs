//! Test hooks, compiled in and inert unless the environment variable `CUTOVER_FAILPOINT` is
//! set (documented in the README as a test hook, for crash-injection tests):
//!
//! - `crash-after-commit=N`: the process exits (status 137, no cleanup) right after the Nth
//!   durable journal commit, as a `kill -9` there would leave it;
//! - `journal-fault-after=N`: every journal write after the Nth commit fails, as a full or
//!   broken disk would;
//! - `crash-after-event=EVENT`: the process exits (status 137) right after the commit that
//!   queued a webhook delivery of EVENT, before anything delivers it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Crash,
    Fault,
}

static COMMITS: AtomicU64 = AtomicU64::new(0);

fn armed() -> Option<(Kind, u64)> {
    static SPEC: OnceLock<Option<(Kind, u64)>> = OnceLock::new();
    *SPEC.get_or_init(|| {
        let v = std::env::var("CUTOVER_FAILPOINT").ok()?;
        let (name, n) = v.split_once('=')?;
        let n: u64 = n.trim().parse().ok()?;
        match name.trim() {
            "crash-after-commit" => Some((Kind::Crash, n)),
            "journal-fault-after" => Some((Kind::Fault, n)),
            _ => None,
        }
    })
}

/// Count a durable commit; the crash hook exits here.
pub fn committed() {
    let n = COMMITS.fetch_add(1, Ordering::SeqCst) + 1;
    if armed() == Some((Kind::Crash, n)) {
        eprintln!("CUTOVER_FAILPOINT: exiting right after durable journal commit {n}");
        std::process::exit(137);
    }
}

/// The injected journal fault, once armed and due.
pub fn fault() -> Result<(), String> {
    match armed() {
        Some((Kind::Fault, n)) if COMMITS.load(Ordering::SeqCst) >= n => Err(format!(
            "injected journal fault after commit {n} (CUTOVER_FAILPOINT)"
        )),
        _ => Ok(()),
    }
}

/// A webhook delivery of `event` was just committed; the crash hook exits here.
pub fn event_committed(event: &str) {
    if let Ok(v) = std::env::var("CUTOVER_FAILPOINT") {
        if v.strip_prefix("crash-after-event=") == Some(event) {
            eprintln!("CUTOVER_FAILPOINT: exiting right after queuing the `{event}` webhook");
            std::process::exit(137);
        }
    }
}
