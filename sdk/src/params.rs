//! Parameters and labels: lookups with errors that name the missing key.

use crate::{Error, Output, Pair, Result, Target};
use std::str::FromStr;

/// Find `key` in a list of pairs.
pub fn get<'a>(pairs: &'a [Pair], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// A target label, or an error naming the label to add in the spec.
pub fn label<'a>(target: &'a Target, key: &str) -> Result<&'a str> {
    get(&target.labels, key).ok_or_else(|| {
        Error::new(format!(
            "target `{}` has no label `{key}`: add `{key} = \"...\"` to its [[targets]] entry",
            target.id
        ))
    })
}

/// A spec parameter, or an error naming the key to add under `[adapter.params]`.
pub fn param<'a>(params: &'a [Pair], key: &str) -> Result<&'a str> {
    get(params, key).ok_or_else(|| {
        Error::new(format!(
            "missing adapter parameter `{key}`: add it under [adapter.params]"
        ))
    })
}

/// A label of the target if present, else a spec parameter, else `default`.
pub fn label_or_param<'a>(
    target: &'a Target,
    params: &'a [Pair],
    key: &str,
    default: &'a str,
) -> &'a str {
    get(&target.labels, key)
        .or_else(|| get(params, key))
        .unwrap_or(default)
}

/// `value` parsed as `T` (`default` when absent); the error names `key` and the value.
pub fn parse<T: FromStr>(key: &str, value: Option<&str>, default: T) -> Result<T> {
    match value {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|_| {
            let kind = match std::any::type_name::<T>() {
                "bool" => "`true` or `false`",
                "f32" | "f64" => "number",
                t if t.starts_with('u') || t.starts_with('i') => "whole number",
                _ => "value of the right form",
            };
            Error::new(format!("parameter `{key}` must be a {kind}, got `{v}`"))
        }),
    }
}

/// A spec parameter parsed as an integer (`default` when absent).
pub fn int(params: &[Pair], key: &str, default: u64) -> Result<u64> {
    parse(key, get(params, key), default)
}

/// The latest output named `key` of earlier steps.
pub fn output<'a>(outputs: &'a [Output], key: &str) -> Option<&'a str> {
    outputs
        .iter()
        .rev()
        .find(|o| o.key == key)
        .map(|o| o.value.as_str())
}

/// A declared parameter: from `[adapter.params]`, or per target (a label) when `per_target`.
pub fn declare(
    name: &str,
    description: &str,
    required: bool,
    per_target: bool,
    default: Option<&str>,
) -> crate::Parameter {
    crate::Parameter {
        name: name.into(),
        description: description.into(),
        required,
        per_target,
        default: default.map(str::to_string),
    }
}
