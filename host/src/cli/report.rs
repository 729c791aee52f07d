//! `status` lines for analysis measurements and webhook deliveries.

use crate::journal::measurements::Measurement;
use crate::journal::outbox::Delivery;

/// Each analysis: its measurements in order, with their outcomes.
pub fn measurements(ms: &[Measurement]) {
    let mut names: Vec<&str> = ms.iter().map(|m| m.analysis.as_str()).collect();
    names.dedup();
    names.sort();
    names.dedup();
    for name in names {
        let mine: Vec<&Measurement> = ms.iter().filter(|m| m.analysis == name).collect();
        let shown: Vec<String> = mine
            .iter()
            .map(|m| match (m.outcome.as_str(), m.value) {
                ("resume", _) => "| resumed |".to_string(),
                (o, Some(v)) => format!("{v:.4} {o}"),
                (o, None) => o.to_string(),
            })
            .collect();
        let where_ = if mine.first().is_some_and(|m| m.stage < 0) {
            "background".to_string()
        } else {
            format!("stage {}", mine.first().map(|m| m.stage + 1).unwrap_or(0))
        };
        show!("  analysis `{name}` ({where_}): {}", shown.join(", "));
        if let Some(last) = mine.iter().rev().find(|m| !m.detail.is_empty()) {
            show!("    last note: {}", last.detail);
        }
    }
}

/// Webhook deliveries: how many were made, and those still waiting.
pub fn deliveries(ds: &[Delivery]) {
    if ds.is_empty() {
        return;
    }
    let done = ds.iter().filter(|d| d.delivered.is_some()).count();
    show!("  notifications: {done} of {} delivered", ds.len());
    for d in ds.iter().filter(|d| d.delivered.is_none()) {
        show!(
            "    waiting: {} to {} ({} attempt(s){})",
            d.event,
            d.url,
            d.attempts,
            if d.last_error.is_empty() {
                String::new()
            } else {
                format!(", last: {}", d.last_error)
            }
        );
    }
}
