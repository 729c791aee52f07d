//! The management API simulator (Talend Management Console + pairing service) on loopback.
//!
//! State lives in `state.json` next to `requests.log` (every request: method, path and
//! query, status), so tests and `talend-sim status` read the same truth the API serves.
//!
//! TMC endpoints (bearer token required):
//! - `DELETE /processing/runtimes/remote-engines/{id}/pairing?keepOsgiDeployments=..&keepMicroserviceDeployments=..`
//!   unpairs the engine and answers `{"preAuthorizedKey": "<new key>"}`. Without
//!   `keepOsgiDeployments=true` the engine's tasks are undeployed, as the real console does.
//! - `GET /processing/runtimes/remote-engines/{id}`: the engine entry: status
//!   (`PAIRED`/`NOT_PAIRED`), availability, version, the pre-authorized key (the console's
//!   "Remote Engine key" field), and its tasks with their status.
//!
//! Pairing service (what `pairing.service.url` points at; engines call it, no token):
//! - `POST /pairing-service/pair` `{key, installDirectory, version, tasks}`: pairs the engine
//!   whose current key this is (401 for any other key).
//! - `GET /pairing-service/engines/{id}`: pairing status, polled by running engines.
//! - `POST /pairing-service/engines/{id}/tasks` `{installDirectory, availability, tasks}`.
//!
//! Failure injection: a file `unpair-answer-delay-ms` in the state folder delays every
//! unpairing's answer (the state has changed already), so a client can die before it lands.
//!
//! `POST /sim/shutdown` stops the simulator (used by `talend-sim teardown`).

use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Serve the API for the state in `dir` on 127.0.0.1:`port` until killed.
pub fn serve(dir: &Path, port: u16) -> Result<()> {
    let server = tiny_http::Server::http(("127.0.0.1", port))
        .map_err(|e| anyhow::anyhow!("listening on 127.0.0.1:{port}: {e}"))?;
    let mut api = Api {
        dir: dir.to_path_buf(),
        state: load(dir)?,
    };
    for mut request in server.incoming_requests() {
        if request.url() == "/sim/shutdown" {
            let _ = request.respond(tiny_http::Response::from_string("bye"));
            return Ok(());
        }
        let method = request.method().as_str().to_string();
        let url = request.url().to_string();
        let auth = request
            .headers()
            .iter()
            .find(|h| h.field.equiv("authorization"))
            .map(|h| h.value.as_str().to_string());
        let mut body = String::new();
        let _ = request.as_reader().read_to_string(&mut body);
        let (status, answer) = match api.handle(&method, &url, auth.as_deref(), &body) {
            Ok(r) => r,
            Err(e) => (500, json!({ "message": format!("{e:#}") })),
        };
        if !url.starts_with("/pairing-service/engines/") || method != "GET" {
            crate::append(
                &dir.join("requests.log"),
                &format!("{method} {url} {status}"),
            )?;
        }
        if method == "DELETE" {
            // Failure injection: an answer that comes late (its client may be gone by then).
            let delay: u64 = crate::read(&dir.join("unpair-answer-delay-ms"))
                .parse()
                .unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(delay));
        }
        let response = tiny_http::Response::from_string(answer.to_string())
            .with_status_code(status)
            .with_header(
                "content-type: application/json"
                    .parse::<tiny_http::Header>()
                    .unwrap(),
            );
        let _ = request.respond(response);
    }
    Ok(())
}

/// The API's state from `state.json`.
pub fn load(dir: &Path) -> Result<Value> {
    let path = dir.join("state.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

struct Api {
    dir: PathBuf,
    state: Value,
}

const ENGINES: &str = "/processing/runtimes/remote-engines/";

impl Api {
    fn save(&self) -> Result<()> {
        crate::write_atomic(
            &self.dir.join("state.json"),
            serde_json::to_string_pretty(&self.state)?.as_bytes(),
        )
    }

    fn handle(
        &mut self,
        method: &str,
        url: &str,
        auth: Option<&str>,
        body: &str,
    ) -> Result<(u16, Value)> {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        if let Some(rest) = path.strip_prefix(ENGINES) {
            let token = self.state["token"].as_str().unwrap_or_default();
            if auth != Some(&format!("Bearer {token}")) {
                return Ok((401, json!({ "message": "missing or invalid bearer token" })));
            }
            let (id, tail) = rest.split_once('/').unwrap_or((rest, ""));
            if self.state["engines"].get(id).is_none() {
                return Ok((404, json!({ "message": format!("no remote engine {id}") })));
            }
            return match (method, tail) {
                ("DELETE", "pairing") => self.unpair(id, query),
                ("GET", "") => Ok((200, self.entry(id))),
                _ => Ok((405, json!({ "message": "not supported by the simulator" }))),
            };
        }
        if let Some(rest) = path.strip_prefix("/pairing-service/") {
            let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            return match (method, rest.split('/').collect::<Vec<_>>().as_slice()) {
                ("POST", ["pair"]) => self.pair(&body),
                ("GET", ["engines", id]) => Ok(match self.state["engines"].get(*id) {
                    Some(e) => (
                        200,
                        json!({ "status": e["status"], "installDirectory": e["installDirectory"] }),
                    ),
                    None => (404, json!({ "message": "unknown engine" })),
                }),
                ("POST", ["engines", id, "tasks"]) => self.report(id, &body),
                _ => Ok((404, json!({ "message": "no such endpoint" }))),
            };
        }
        Ok((404, json!({ "message": "no such endpoint" })))
    }

    /// The engine entry as the console shows it.
    fn entry(&self, id: &str) -> Value {
        let e = &self.state["engines"][id];
        json!({
            "id": id,
            "name": e["name"],
            "status": e["status"],
            "availability": e["availability"],
            "version": e["version"],
            "installDirectory": e["installDirectory"],
            "preAuthorizedKey": e["key"],
            "tasks": e["tasks"],
        })
    }

    fn unpair(&mut self, id: &str, query: &str) -> Result<(u16, Value)> {
        let flag = |name: &str| query.split('&').any(|kv| kv == format!("{name}=true"));
        let (keep_osgi, keep_micro) = (
            flag("keepOsgiDeployments"),
            flag("keepMicroserviceDeployments"),
        );
        let e = &mut self.state["engines"][id];
        if e["status"] != "PAIRED" {
            return Ok((
                409,
                json!({ "message": format!("remote engine {id} is not paired") }),
            ));
        }
        let key = crate::Rng::new(e["keys"].as_array().map_or(0, |k| k.len() as u64)).uuid();
        e["status"] = json!("NOT_PAIRED");
        e["availability"] = json!("NOT_AVAILABLE");
        e["key"] = json!(key);
        e["keys"].as_array_mut().unwrap().push(json!(key));
        e["pairedKey"] = Value::Null;
        e["unpairs"].as_array_mut().unwrap().push(json!({
            "keepOsgiDeployments": keep_osgi,
            "keepMicroserviceDeployments": keep_micro,
        }));
        if !keep_osgi {
            for t in e["tasks"].as_array_mut().unwrap() {
                t["status"] = json!("UNDEPLOYED");
            }
            e["undeployed"] = json!(true);
        }
        self.save()?;
        Ok((200, json!({ "preAuthorizedKey": key })))
    }

    fn pair(&mut self, body: &Value) -> Result<(u16, Value)> {
        let key = body["key"].as_str().unwrap_or_default();
        let install = body["installDirectory"].clone();
        let found = self.state["engines"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, e)| e["key"] == key)
            .map(|(id, _)| id.clone());
        let Some(id) = found else {
            return Ok((401, json!({ "message": "invalid pre-authorized key" })));
        };
        let e = &mut self.state["engines"][&id];
        if e["status"] == "PAIRED" && e["installDirectory"] != install {
            return Ok((
                409,
                json!({ "message": format!("remote engine {id} is paired with another installation") }),
            ));
        }
        e["status"] = json!("PAIRED");
        e["pairedKey"] = json!(key);
        e["installDirectory"] = install;
        e["version"] = body["version"].clone();
        e["availability"] = json!("AVAILABLE");
        if e["undeployed"] != true {
            e["tasks"] = body["tasks"].clone();
        }
        e["pairings"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "key": key, "installDirectory": body["installDirectory"] }));
        self.save()?;
        Ok((200, json!({ "engineId": id })))
    }

    fn report(&mut self, id: &str, body: &Value) -> Result<(u16, Value)> {
        let Some(e) = self.state["engines"].get_mut(id) else {
            return Ok((404, json!({ "message": "unknown engine" })));
        };
        if e["status"] != "PAIRED" || e["installDirectory"] != body["installDirectory"] {
            return Ok((
                409,
                json!({ "message": "engine not paired with this installation" }),
            ));
        }
        e["availability"] = body["availability"].clone();
        if e["undeployed"] != true {
            e["tasks"] = body["tasks"].clone();
        }
        self.save()?;
        Ok((200, json!({})))
    }
}
