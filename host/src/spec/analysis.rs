//! The spec's `[[analysis]]` tables: measurements that gate a rollout, taken by a provider
//! plugin over time.

use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// One analysis: where it runs, how often, and what passes.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// Unique within the spec; journaled with each measurement.
    pub name: String,
    /// The provider: an adapter plugin with a fleet step `measure` that outputs `value`.
    pub provider: super::PluginRef,
    /// A stage after this wave (1-based); none with `background`.
    pub after_wave: Option<u32>,
    /// Watch the whole rollout instead of gating one point of it.
    pub background: bool,
    pub interval: Duration,
    /// Measurements of a gate (a background analysis measures until the rollout ends).
    pub count: u32,
    pub success: Condition,
    /// Failed measurements tolerated; one more fails the analysis.
    pub failure_limit: u32,
    /// Inconclusive measurements in a row tolerated; one more pauses for a person.
    pub inconclusive_limit: u32,
}

/// `value OP NUMBER`, e.g. `value < 0.05`.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub op: String,
    pub threshold: f64,
}

impl Condition {
    pub fn parse(s: &str) -> Result<Condition, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let bad = || {
            format!("`{s}` is not a condition: write `value < 0.05` (operators < <= > >= == !=)")
        };
        match words[..] {
            ["value", op, n] if ["<", "<=", ">", ">=", "==", "!="].contains(&op) => Ok(Condition {
                op: op.to_string(),
                threshold: n.parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }

    pub fn holds(&self, v: f64) -> bool {
        match self.op.as_str() {
            "<" => v < self.threshold,
            "<=" => v <= self.threshold,
            ">" => v > self.threshold,
            ">=" => v >= self.threshold,
            "==" => v == self.threshold,
            _ => v != self.threshold,
        }
    }
}

impl std::fmt::Display for Condition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "value {} {}", self.op, self.threshold)
    }
}

/// `[[analysis]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAnalysis {
    name: String,
    provider: String,
    sha256: Option<String>,
    after_wave: Option<Spanned<i64>>,
    #[serde(default)]
    background: bool,
    interval: Option<Spanned<String>>,
    count: Option<Spanned<i64>>,
    success: Spanned<String>,
    failure_limit: Option<i64>,
    inconclusive_limit: Option<i64>,
    #[serde(default)]
    params: std::collections::BTreeMap<String, toml::Value>,
}

impl RawAnalysis {
    /// Check it; errors carry the span of the key at fault.
    pub(super) fn check(
        self,
        provider: impl Fn(&str, Option<String>, Vec<(String, String)>) -> super::PluginRef,
    ) -> Result<Analysis, (std::ops::Range<usize>, String)> {
        let name = self.name.clone();
        let interval = match &self.interval {
            None => Duration::from_secs(60),
            Some(s) => humantime::parse_duration(s.get_ref()).map_err(|_| {
                (
                    s.span(),
                    format!("key `analysis.{name}.interval` must be a duration such as \"30s\""),
                )
            })?,
        };
        let count = match &self.count {
            None => 1,
            Some(c) if *c.get_ref() >= 1 && *c.get_ref() <= 10_000 => *c.get_ref() as u32,
            Some(c) => {
                return Err((
                    c.span(),
                    format!("key `analysis.{name}.count` must be between 1 and 10000"),
                ))
            }
        };
        let after_wave = match &self.after_wave {
            None => None,
            Some(w) if *w.get_ref() >= 1 => Some(*w.get_ref() as u32),
            Some(w) => {
                return Err((
                    w.span(),
                    format!("key `analysis.{name}.after-wave` counts waves from 1"),
                ))
            }
        };
        if self.background && after_wave.is_some() {
            let span = self.after_wave.as_ref().map(|w| w.span()).unwrap_or(0..0);
            return Err((
                span,
                format!(
                    "analysis `{name}`: `after-wave` and `background = true` exclude each other"
                ),
            ));
        }
        let success = Condition::parse(self.success.get_ref()).map_err(|e| {
            (
                self.success.span(),
                format!("key `analysis.{name}.success`: {e}"),
            )
        })?;
        Ok(Analysis {
            provider: provider(
                &self.provider,
                self.sha256.clone(),
                super::flatten(&self.params),
            ),
            name,
            after_wave: if self.background {
                None
            } else {
                after_wave.or(Some(1))
            },
            background: self.background,
            interval,
            count,
            success,
            failure_limit: self.failure_limit.unwrap_or(0).max(0) as u32,
            inconclusive_limit: self.inconclusive_limit.unwrap_or(0).max(0) as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions() {
        let c = Condition::parse("value < 0.05").unwrap();
        assert!(c.holds(0.01) && !c.holds(0.05) && !c.holds(0.5));
        assert!(Condition::parse("value >= 10").unwrap().holds(10.0));
        assert!(Condition::parse("rate < 1").is_err());
        assert!(Condition::parse("value < lots").is_err());
    }
}
