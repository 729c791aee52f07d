//! `http-analysis`: an analysis provider that GETs a URL answering JSON and takes the number
//! at a JSON pointer (RFC 6901, e.g. `/checks/errors/rate`). A status other than 2xx, no
//! JSON, or no number there make the measurement inconclusive.

use cutover_sdk::params::declare;
use cutover_sdk::{analysis, fail, About, Call, Output, Result, StepDef};

struct HttpJson;

fn measure(c: &Call) -> Result<Vec<Output>> {
    let url = c.param("url")?;
    let pointer = c.param("pointer")?;
    let (status, body) = analysis::get(c, url)?;
    if !(200..300).contains(&status) {
        return Err(fail(format!("{url} answered {status}")));
    }
    let doc: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| fail(format!("{url}: no JSON: {e}")))?;
    let at = doc
        .pointer(pointer)
        .ok_or_else(|| fail(format!("{url} has nothing at {pointer}")))?;
    let v = match at {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        serde_json::Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        _ => None,
    };
    analysis::value(v.ok_or_else(|| fail(format!("{url}: {pointer} is {at}, not a number")))?)
}

impl cutover_sdk::Adapter for HttpJson {
    fn about() -> About {
        analysis::http_provider(
            "http-analysis",
            env!("CARGO_PKG_VERSION"),
            "analysis provider: a number from a JSON answer",
            "the URL to GET",
            vec![declare(
                "pointer",
                "JSON pointer to the number, e.g. /errors/rate",
                true,
                false,
                None,
            )],
            "how long the request may take",
        )
    }

    const STEPS: &'static [StepDef] = &[analysis::measure_step(measure, &[])];
}

cutover_sdk::export_adapter!(HttpJson);
