//! Webhooks: the spec's `[[notify]]` tables, and the host-wide file `$CUTOVER_NOTIFY` with
//! the same tables, each a URL and the rollout events it is told of.

use serde::Deserialize;

/// The events a webhook can be told of.
pub const EVENTS: &[&str] = &[
    "started",
    "wave-done",
    "paused",
    "needs-approval",
    "failed",
    "rolled-back",
    "completed",
    "aborted",
];

/// One webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub url: String,
    /// The events it wants (all when the spec names none).
    pub events: Vec<String>,
    /// A secret whose value is sent as `Authorization: Bearer …`.
    pub secret: Option<String>,
}

/// `[[notify]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHook {
    url: String,
    #[serde(default)]
    events: Vec<String>,
    secret: Option<String>,
}

impl RawHook {
    pub(super) fn check(self) -> Result<Hook, String> {
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "notify url `{}` must start with http:// or https://",
                self.url
            ));
        }
        for e in &self.events {
            if !EVENTS.contains(&e.as_str()) {
                return Err(format!(
                    "notify event `{e}` is not one of: {}",
                    EVENTS.join(", ")
                ));
            }
        }
        Ok(Hook {
            url: self.url,
            events: if self.events.is_empty() {
                EVENTS.iter().map(|e| e.to_string()).collect()
            } else {
                self.events
            },
            secret: self.secret,
        })
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HostFile {
    #[serde(default)]
    notify: Vec<RawHook>,
}

/// The hooks of the host-wide file named by `$CUTOVER_NOTIFY` (none when unset).
pub fn host_hooks() -> anyhow::Result<Vec<Hook>> {
    let Ok(path) = std::env::var("CUTOVER_NOTIFY") else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("$CUTOVER_NOTIFY names {path}: {e}"))?;
    let f: HostFile =
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("{path}: {}", e.message()))?;
    f.notify
        .into_iter()
        .map(|h| h.check().map_err(|e| anyhow::anyhow!("{path}: {e}")))
        .collect()
}
