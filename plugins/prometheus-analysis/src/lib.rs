//! `prometheus-analysis`: an analysis provider that evaluates a PromQL `query` through
//! Prometheus's HTTP API (`GET <url>/api/v1/query?query=…`, "Querying Prometheus: HTTP API",
//! https://prometheus.io/docs/prometheus/latest/querying/api/). The value is the scalar, or
//! the single sample of an instant vector. An empty vector, several series, NaN, an error or
//! an unreachable Prometheus make the measurement inconclusive.

use cutover_sdk::params::declare;
use cutover_sdk::{analysis, fail, About, Call, Output, Result, StepDef};
use serde_json::Value;

struct Prometheus;

fn number(v: &Value) -> Option<f64> {
    // A sample is [timestamp, "value"]; the value is a string ("NaN" and "+Inf" included).
    v.get(1)?.as_str()?.parse().ok()
}

fn measure(c: &Call) -> Result<Vec<Output>> {
    let base = c.param("url")?.trim_end_matches('/');
    let query = c.param("query")?;
    let url = format!(
        "{base}/api/v1/query?query={}",
        analysis::query_encode(query)
    );
    let (status, body) = analysis::get(c, &url)?;
    let doc: Value = serde_json::from_str(&body)
        .map_err(|e| fail(format!("{url} answered {status} with no JSON: {e}")))?;
    if doc["status"] != "success" {
        return Err(fail(format!(
            "Prometheus answered {status}: {} {}",
            doc["errorType"].as_str().unwrap_or(""),
            doc["error"].as_str().unwrap_or(&body)
        )));
    }
    let data = &doc["data"];
    let v = match data["resultType"].as_str() {
        Some("scalar") => number(&data["result"]),
        Some("vector") => match data["result"].as_array().map(Vec::as_slice) {
            Some([one]) => number(&one["value"]),
            Some([]) => return Err(fail(format!("`{query}` has no data yet"))),
            Some(many) => {
                return Err(fail(format!(
                    "`{query}` gives {} series; aggregate it to one (e.g. sum(...))",
                    many.len()
                )))
            }
            None => None,
        },
        other => {
            return Err(fail(format!(
                "`{query}` gives a {other:?}, not a scalar or an instant vector"
            )))
        }
    };
    analysis::value(v.ok_or_else(|| fail(format!("`{query}`: no number in {data}")))?)
}

impl cutover_sdk::Adapter for Prometheus {
    fn about() -> About {
        analysis::http_provider(
            "prometheus-analysis",
            env!("CARGO_PKG_VERSION"),
            "analysis provider: a PromQL query through Prometheus's HTTP API",
            "Prometheus's base URL, e.g. http://127.0.0.1:9090",
            vec![declare(
                "query",
                "a PromQL expression giving one number",
                true,
                false,
                None,
            )],
            "how long a query may take",
        )
    }

    const STEPS: &'static [StepDef] = &[analysis::measure_step(measure, &[])];
}

cutover_sdk::export_adapter!(Prometheus);
