//! Spec values as plugins and limits see them: parameters flattened to strings, sizes,
//! absolute paths.

use std::collections::BTreeMap;
use std::path::Path;

pub(super) fn absolutize(p: &Path) -> String {
    std::path::absolute(p)
        .unwrap_or_else(|_| p.to_path_buf())
        .display()
        .to_string()
}

pub(super) fn flatten(params: &BTreeMap<String, toml::Value>) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(k, v)| (k.clone(), value_string(v)))
        .collect()
}

/// A TOML value as the string a plugin sees (strings unquoted, the rest as JSON).
pub(super) fn value_string(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => serde_json::to_string(other).unwrap_or_default(),
    }
}

/// "256MiB", "1GiB", "512KiB", or plain bytes.
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: usize = num.parse().ok()?;
    let mult = match unit.trim() {
        "" | "B" => 1,
        "KiB" | "K" | "KB" => 1 << 10,
        "MiB" | "M" | "MB" => 1 << 20,
        "GiB" | "G" | "GB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}
