//! Analysis providers: adapter plugins whose fleet step `measure` (idempotent, no undo)
//! outputs `value`, a number, which the host checks against an `[[analysis]]` condition.
//! An error from `measure` makes the measurement inconclusive, never passed.

use crate::params::declare;
use crate::{output, About, Call, Cap, Error, Output, Parameter, Result, StepDef};

/// The `measure` step, running `run`.
pub const fn measure_step(run: crate::RunFn, caps: &'static [crate::Cap]) -> StepDef {
    StepDef {
        name: "measure",
        about: "take one measurement: output `value`",
        run,
        idempotent: true,
        timeout_s: 30,
        caps,
        ..StepDef::FLEET
    }
}

/// An HTTP provider: parameters `url` (described by `url_about`), then `more`, then
/// `timeout-ms` (described by `timeout_about`, default 5 s); HTTP to `{url}` and nothing else.
pub fn http_provider(
    name: &'static str,
    version: &'static str,
    summary: &'static str,
    url_about: &str,
    more: Vec<Parameter>,
    timeout_about: &str,
) -> About {
    let mut parameters = vec![declare("url", url_about, true, false, None)];
    parameters.extend(more);
    parameters.push(declare(
        "timeout-ms",
        timeout_about,
        false,
        false,
        Some("5000"),
    ));
    About {
        name,
        version,
        summary,
        parameters,
        capabilities: vec![Cap::Http("{url}").capability()],
        leases: vec![],
    }
}

/// GET `url` within the provider's `timeout-ms`: (status, body).
pub fn get(c: &Call, url: &str) -> Result<(u16, String)> {
    crate::web::get(url, Some(c.get("timeout-ms", 5000)?))
}

/// The outputs of a measurement of `v`; NaN and infinities are refused as inconclusive.
pub fn value(v: f64) -> Result<Vec<Output>> {
    if !v.is_finite() {
        return Err(Error::new(format!("the measurement is {v}, not a number")));
    }
    Ok(vec![output("value", v.to_string())])
}

/// `s` percent-encoded for a URL query value (RFC 3986 unreserved characters kept).
pub fn query_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn encodes_promql() {
        assert_eq!(
            super::query_encode("sum(rate(x[30s])) / 2"),
            "sum%28rate%28x%5B30s%5D%29%29%20%2F%202"
        );
        assert!(super::value(f64::NAN).is_err());
        assert_eq!(super::value(0.25).unwrap()[0].value, "0.25");
    }
}
