//! Webhook delivery from the journal's outbox: a POST of the event's JSON with its
//! `Idempotency-Key`, retried with backoff until the receiver answers 2xx. Every command
//! that drives a rollout delivers while it runs and before it exits; what is left (a
//! receiver down, a crash) is delivered by the next one.

use crate::journal::{now_ms, Journal};
use crate::spec::notify::Hook;
use crate::spec::{SecretSource, Spec};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

/// Bearer tokens of the hooks, by URL.
fn tokens() -> &'static RwLock<HashMap<String, String>> {
    static T: OnceLock<RwLock<HashMap<String, String>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// Tell the journal which hooks this rollout has (the spec's and `$CUTOVER_NOTIFY`'s), and
/// resolve their secrets.
pub fn configure(journal: &Journal, spec: &Spec) -> anyhow::Result<()> {
    let mut hooks: Vec<Hook> = spec.notify.clone();
    hooks.extend(crate::spec::notify::host_hooks()?);
    let mut t = tokens().write().unwrap();
    for h in &hooks {
        if let Some(name) = &h.secret {
            let value = match spec.secrets.get(name) {
                Some(SecretSource::Env(v)) => std::env::var(v).ok(),
                Some(SecretSource::File(p)) => std::fs::read_to_string(p)
                    .ok()
                    .map(|s| s.trim().to_string()),
                None => None,
            };
            match value {
                Some(v) => {
                    t.insert(h.url.clone(), v);
                }
                None => anyhow::bail!("notify secret `{name}` has no value (its [secrets] entry is empty or unreadable)"),
            }
        }
    }
    journal.set_hooks(hooks);
    Ok(())
}

/// Seconds before try number `attempts + 1`: 1, 2, 4 … up to 5 minutes.
fn backoff(attempts: i64) -> i64 {
    1000 * (1i64 << attempts.clamp(0, 8)).min(300)
}

/// Deliver what is due once, in order per receiver: a receiver's next event waits until the
/// one before it is delivered. How many deliveries are still waiting.
pub fn deliver_due(journal: &Journal) -> usize {
    let waiting = match journal.due_deliveries(i64::MAX) {
        Ok(d) => d,
        Err(_) => return 0,
    };
    if waiting.is_empty() {
        return 0;
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let now = now_ms();
    let mut blocked: std::collections::HashSet<String> = Default::default();
    let mut left = 0;
    for d in waiting {
        if blocked.contains(&d.url) || d.next_try > now {
            blocked.insert(d.url.clone());
            left += 1;
            continue;
        }
        let mut req = agent
            .post(&d.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &d.key)
            .header("X-Cutover-Event", &d.event);
        if let Some(t) = tokens().read().unwrap().get(&d.url) {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let result = match req.send(d.body.as_bytes()) {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("{} answered {}", d.url, r.status())),
            Err(e) => Err(format!("{}: {e}", d.url)),
        };
        if result.is_err() {
            blocked.insert(d.url.clone());
            left += 1;
        }
        let _ = journal.delivery_tried(
            d.id,
            result.map_err(|e| (e, now_ms() + backoff(d.attempts))),
        );
    }
    left
}

/// Deliveries in the background while a command runs.
pub struct Deliverer {
    stop: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    journal: Arc<Journal>,
}

impl Deliverer {
    pub fn start(journal: Arc<Journal>) -> Deliverer {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, j) = (stop.clone(), journal.clone());
        let task = tokio::spawn(async move {
            while !s.load(std::sync::atomic::Ordering::SeqCst) {
                let j = j.clone();
                let _ = tokio::task::spawn_blocking(move || deliver_due(&j)).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        });
        Deliverer {
            stop,
            task,
            journal,
        }
    }

    /// Stop, then deliver what is due for up to `limit` more (what is left waits for the
    /// next command).
    pub async fn finish(self, limit: Duration) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.task.await;
        let j = self.journal.clone();
        let _ = tokio::task::spawn_blocking(move || flush(&j, limit)).await;
    }
}

/// Deliver until nothing is waiting, or `limit` has passed.
pub fn flush(journal: &Journal, limit: Duration) {
    let until = std::time::Instant::now() + limit;
    while deliver_due(journal) > 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(200));
    }
}
