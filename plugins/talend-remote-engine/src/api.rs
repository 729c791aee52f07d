//! The Talend Management Console API calls of the procedure.

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
    /// `PAIRED` or `NOT_PAIRED`.
    pub status: String,
    pub version: Option<String>,
    /// The console's "Remote Engine key" field.
    pub key: Option<String>,
    /// Reported by some consoles (and the simulator): where the paired engine runs.
    pub install_directory: Option<String>,
    tasks: Vec<Value>,
}

impl EngineEntry {
    /// Ids of the tasks the console lists for the engine.
    pub fn task_ids(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter_map(|t| t["id"].as_str().map(str::to_string))
            .collect()
    }

    /// Ids of the tasks with status `RUNNING`.
    pub fn running(&self) -> Vec<String> {
        self.tasks
            .iter()
            .filter(|t| t["status"] == "RUNNING")
            .filter_map(|t| t["id"].as_str().map(str::to_string))
            .collect()
    }

    /// "id (NAME, STATUS: reason)" for a message.
    pub fn describe_task(&self, id: &str) -> String {
        match self.tasks.iter().find(|t| t["id"] == id) {
            None => format!("{id} (not listed)"),
            Some(t) => {
                let reason = t["reason"]
                    .as_str()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default();
                format!(
                    "{id} ({} {}, {}{reason})",
                    t["type"].as_str().unwrap_or("task"),
                    t["name"].as_str().unwrap_or(""),
                    t["status"].as_str().unwrap_or("?")
                )
            }
        }
    }
}

impl Api {
    /// From the `api` parameter and the secret named by `token-secret`.
    pub fn new(params: &[Pair]) -> Result<Api> {
        let base = param(params, "api")?.trim_end_matches('/').to_string();
        let name = get(params, "token-secret").unwrap_or("tmc-token");
        let token = secrets::get(name)?;
        Ok(Api { base, token })
    }

    fn url(&self, id: &str) -> String {
        format!("{}/processing/runtimes/remote-engines/{id}", self.base)
    }

    /// The JSON answer; network errors and 5xx are transient, other failures permanent.
    fn call(&self, method: &str, url: &str) -> Result<Value> {
        let r = web::send(method, url, Some(&self.token), None, Some(15_000))
            .map_err(|e| Error::transient(format!("{method} {url}: {e}")))?;
        let body = String::from_utf8_lossy(&r.body);
        let message = || {
            serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["message"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.trim().to_string())
        };
        match r.status {
            200..=299 => serde_json::from_str(&body)
                .map_err(|e| fail(format!("{method} {url}: the answer is not JSON: {e}"))),
            401 | 403 => Err(fail(format!(
                "{method} {url}: {} {}: check the token in the secret named by `token-secret`",
                r.status,
                message()
            ))),
            404 => Err(fail(format!(
                "{method} {url}: 404 {}: check the target's `engine-id`",
                message()
            ))),
            500..=599 => Err(Error::transient(format!(
                "{method} {url}: {} {}",
                r.status,
                message()
            ))),
            s => Err(fail(format!("{method} {url}: {s} {}", message()))),
        }
    }

    /// `GET .../remote-engines/{id}`.
    pub fn engine(&self, id: &str) -> Result<EngineEntry> {
        let v = self.call("GET", &self.url(id))?;
        let s = |k: &str| v[k].as_str().map(str::to_string);
        Ok(EngineEntry {
            status: s("status").unwrap_or_default(),
            version: s("version"),
            key: s("preAuthorizedKey"),
            install_directory: s("installDirectory"),
            tasks: v["tasks"].as_array().cloned().unwrap_or_default(),
        })
    }

    /// `DELETE .../pairing?keepOsgiDeployments=true&keepMicroserviceDeployments=true`: the new
    /// pre-authorized key.
    pub fn unpair(&self, id: &str) -> Result<String> {
        let url = format!(
            "{}/pairing?keepOsgiDeployments=true&keepMicroserviceDeployments=true",
            self.url(id)
        );
        let v = self.call("DELETE", &url)?;
        v["preAuthorizedKey"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| fail(format!("DELETE {url}: the answer carries no preAuthorizedKey: find the key in the console's Remote Engine key field")))
    }
}
