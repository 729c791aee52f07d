//! Parameters and labels: lookups with errors that name the missing key.

use crate::adapter_types::{Output, Pair, StepError, Target};

/// Find `key` in a list of pairs.
pub fn get<'a>(pairs: &'a [Pair], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|p| p.key == key)
        .map(|p| p.value.as_str())
}

/// A target label, or an error naming the label to add in the spec.
pub fn label<'a>(target: &'a Target, key: &str) -> Result<&'a str, StepError> {
    get(&target.labels, key).ok_or_else(|| {
        crate::step::fail(format!(
            "target `{}` has no label `{key}`: add `{key} = \"...\"` to its [[targets]] entry",
            target.id
        ))
    })
}

/// A spec parameter, or an error naming the key to add under `[adapter.params]`.
pub fn param<'a>(params: &'a [Pair], key: &str) -> Result<&'a str, StepError> {
    get(params, key).ok_or_else(|| {
        crate::step::fail(format!(
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

/// Parse a parameter as an integer, naming the key when it is not one.
pub fn int(params: &[Pair], key: &str, default: u64) -> Result<u64, String> {
    match get(params, key) {
        None => Ok(default),
        Some(v) => v
            .trim()
            .parse()
            .map_err(|_| format!("parameter `{key}` must be a whole number, got `{v}`")),
    }
}

/// The latest output named `key` of earlier steps.
pub fn output<'a>(outputs: &'a [Output], key: &str) -> Option<&'a str> {
    outputs
        .iter()
        .rev()
        .find(|o| o.key == key)
        .map(|o| o.value.as_str())
}
