//! The Talend Management Console Processing API calls of the procedure: only documented
//! endpoints and fields (see the README of the adapter for where each is documented).

use cutover_sdk::params::{get, param};
use cutover_sdk::{fail, secrets, web, Error, Pair, Result};
use serde_json::Value;

/// The API base URL and its bearer token.
pub struct Api {
    base: String,
    token: String,
}

/// An engine entry as the console shows it.
pub struct EngineEntry {
    /// `PAIRED`, or something else (not paired).
    pub status: String,
    /// The running version of a paired engine (`null` when unpaired or unknown).
    pub version: Option<String>,
    /// The console's "Remote Engine key" field.
    pub key: Option<String>,
}

impl EngineEntry {
    /// Paired, as the documented filter `status==PAIRED` names it.
    pub fn paired(&self) -> bool {
        self.status == "PAIRED"
    }
}

/// The latest execution of a task.
pub struct Execution {
    pub status: String,
    pub engine: Option<String>,
    pub error: Option<String>,
}

impl Api {
    /// From the `api` parameter and the secret named by `token-secret`.
    pub fn new(params: &[Pair]) -> Result<Api> {
        let base = param(params, "api")?.trim_end_matches('/').to_string();
        let name = get(params, "token-secret").unwrap_or("tmc-token");
        let token = secrets::get(name)?;
        Ok(Api { base, token })
    }

    fn engine_url(&self, id: &str) -> String {
        format!("{}/processing/runtimes/remote-engines/{id}", self.base)
    }

    fn tasks_url(&self) -> String {
        format!("{}/processing/executables/tasks", self.base)
    }

    /// The answer's body; network errors and 5xx are transient, other failures permanent.
    fn send(&self, method: &str, url: &str) -> Result<String> {
        let r = web::send(method, url, Some(&self.token), None, Some(15_000))
            .map_err(|e| Error::transient(format!("{method} {url}: {e}")))?;
        let body = String::from_utf8_lossy(&r.body).into_owned();
        let message = || {
            serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.trim().to_string())
        };
        match r.status {
            200..=299 => Ok(body),
            401 | 403 => Err(fail(format!(
                "{method} {url}: {} {}: check the token in the secret named by `token-secret`",
                r.status,
                message()
            ))),
            404 => Err(fail(format!("{method} {url}: 404 {}", message()))),
            500..=599 => Err(Error::transient(format!(
                "{method} {url}: {} {}",
                r.status,
                message()
            ))),
            s => Err(fail(format!("{method} {url}: {s} {}", message()))),
        }
    }

    /// A JSON answer.
    fn json(&self, url: &str) -> Result<Value> {
        let body = self.send("GET", url)?;
        serde_json::from_str(&body)
            .map_err(|e| fail(format!("GET {url}: the answer is not JSON: {e}")))
    }

    /// `GET .../remote-engines/{id}`.
    pub fn engine(&self, id: &str) -> Result<EngineEntry> {
        let v = self.json(&self.engine_url(id)).map_err(|mut e| {
            if !e.transient {
                e.hint = Some("check the target's `engine-id`".into());
            }
            e
        })?;
        let s = |k: &str| v[k].as_str().map(str::to_string);
        Ok(EngineEntry {
            status: s("status").unwrap_or_default(),
            version: s("version"),
            key: s("preAuthorizedKey"),
        })
    }

    /// `DELETE .../pairing?keepOsgiDeployments=true&keepMicroserviceDeployments=true`, then
    /// the new pre-authorized key from the engine entry (the answer is plain text).
    pub fn unpair(&self, id: &str) -> Result<String> {
        let url = format!(
            "{}/pairing?keepOsgiDeployments=true&keepMicroserviceDeployments=true",
            self.engine_url(id)
        );
        self.send("DELETE", &url)?;
        self.engine(id)?.key.filter(|k| !k.is_empty()).ok_or_else(|| {
            fail(format!(
                "engine {id} is unpaired, but its entry shows no preAuthorizedKey: find the key in the console's Remote Engine key field"
            ))
        })
    }

    /// Ids and names of the tasks whose run configuration puts them on engine `id`.
    pub fn engine_tasks(&self, id: &str) -> Result<Vec<(String, String)>> {
        let v = self.json(&self.tasks_url())?;
        let mut mine = Vec::new();
        for t in items(&v) {
            let Some(task) = t["executable"].as_str() else {
                continue;
            };
            let rc = self.json(&format!("{}/{task}/run-config", self.tasks_url()))?;
            let rt = &rc["runtime"];
            if rt["type"] == "REMOTE_ENGINE" && (rt["id"] == id || rt["engineId"] == id) {
                let name = t["name"].as_str().unwrap_or("").to_string();
                mine.push((task.to_string(), name));
            }
        }
        Ok(mine)
    }

    /// The newest execution of `task`, if it has any.
    pub fn latest_execution(&self, task: &str) -> Result<Option<Execution>> {
        let v = self.json(&format!("{}/{task}/executions", self.tasks_url()))?;
        let all = items(&v);
        let newest = all.iter().max_by_key(|e| stamp(&e["startTimestamp"]));
        Ok(newest.map(|e| Execution {
            status: e["executionStatus"].as_str().unwrap_or("").to_string(),
            engine: e["remoteEngineId"].as_str().map(str::to_string),
            error: e["errorMessage"].as_str().map(str::to_string),
        }))
    }
}

/// The `items` of a listing (or the listing itself when it is an array).
fn items(v: &Value) -> Vec<Value> {
    v["items"]
        .as_array()
        .or_else(|| v.as_array())
        .cloned()
        .unwrap_or_default()
}

/// A start timestamp to order executions: a number, or text compared as written (ISO 8601
/// orders as text).
fn stamp(v: &Value) -> (u64, String) {
    match v {
        Value::Number(n) => (n.as_u64().unwrap_or(0), String::new()),
        Value::String(s) => (s.parse().unwrap_or(0), s.clone()),
        _ => (0, String::new()),
    }
}
