//! The management API simulator (Talend Management Console + pairing service) on loopback.
//!
//! State lives in `state.json` next to `requests.log` (every request: method, path and
//! query, status), so tests and `talend-sim status` read the same truth the API serves.
//!
//! TMC Processing API endpoints (bearer token required), each imitating a documented surface
//! and nothing more:
//! - `DELETE /processing/runtimes/remote-engines/{id}/pairing?keepOsgiDeployments=..&keepMicroserviceDeployments=..`
//!   unpairs the engine and issues a new pre-authorized key. The path and both flags are
//!   Talend's upgrade procedure (seeds/talend-remote-engine-upgrade.ja.txt, step 1); the
//!   answer is plain text (the TMC v2.0 API description: `unpair_remote_engine`, "Return
//!   type str", "Accept: text/plain"), so the simulator answers an empty text body and the
//!   key is read from the engine entry, as the procedure says ("[Remote Engine key]").
//!   Without `keepOsgiDeployments=true` the engine's tasks are undeployed.
//! - `GET /processing/runtimes/remote-engines/{id}`: the engine entry ("Get Remote Engine by
//!   id"). Fields: `id`, `name`, `status` (`PAIRED` as in the documented filter example
//!   `status==PAIRED`, "Getting Started with Talend Cloud APIs"; any other value means not
//!   paired: the simulator says `NOT_PAIRED`), `availability` and `preAuthorizedKey` (the
//!   fields of Talend's own API client, Talend/tmc_rest_api `dom/Engine.java`; the key is the
//!   console's "Remote Engine key"), and `version` (release notes R2026-10: "the running
//!   version of a paired Talend Remote Engine ... null when an engine is unpaired").
//! - `GET /processing/executables/tasks`: `{"items": [{"executable": <task id>, "name"}]}`
//!   (Talend/tmc_rest_api `ExecutableTaskService`, `ExecutableItems`, `Executable`).
//! - `GET /processing/executables/tasks/{id}/run-config`: `{"trigger", "runtime": {"type":
//!   "REMOTE_ENGINE", "id": <engine id>}}` (`ExecutableRunConfig`, `RunConfig`, `Runtime`:
//!   type in CLOUD, REMOTE_ENGINE, REMOTE_ENGINE_CLUSTER, CLOUD_EXCLUSIVE).
//! - `GET /processing/executables/tasks/{id}/executions`: `{"items": [...]}`, newest first,
//!   each with `executionId`, `startTimestamp`, `finishTimestamp`, `executionStatus`,
//!   `remoteEngineId`, `errorMessage` (`TaskExecutionService`, `ExecutionItems`,
//!   `Execution`). The status of a running Route or Data Service execution is not
//!   documented: the simulator says `EXECUTING` (the adapter's `running-statuses` default);
//!   an ended one is `EXECUTION_TERMINATED` or `EXECUTION_FAILED`, the job phases of "Job
//!   management logs" in the Remote Engine user guide.
//!
//! Pairing service (what `pairing.service.url` points at): the engines' own channel, which
//! Talend does not document and the adapter never calls (it has no token and is reachable
//! only from the simulated engines' point of view):
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
        // A plain-text answer (the unpairing's) comes as a JSON string.
        let (answer, kind) = match answer {
            Value::String(text) => (text, "text/plain"),
            v => (v.to_string(), "application/json"),
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
        let response = tiny_http::Response::from_string(answer)
            .with_status_code(status)
            .with_header(
                format!("content-type: {kind}")
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
const TASKS: &str = "/processing/executables/tasks";

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
        let token = self.state["token"].as_str().unwrap_or_default();
        let authorized = auth == Some(&format!("Bearer {token}"));
        if (path.starts_with(ENGINES) || path.starts_with(TASKS)) && !authorized {
            return Ok((401, json!({ "message": "missing or invalid bearer token" })));
        }
        if let Some(rest) = path.strip_prefix(TASKS) {
            return Ok(
                match (method, rest.split('/').collect::<Vec<_>>().as_slice()) {
                    ("GET", [""]) => (200, self.tasks()),
                    ("GET", ["", id, what]) => match self.task_engine(id) {
                        None => (404, json!({ "message": format!("no task {id}") })),
                        Some(engine) => match *what {
                            "run-config" => (
                                200,
                                json!({
                                    "trigger": { "type": "MANUAL" },
                                    "runtime": { "type": "REMOTE_ENGINE", "id": engine },
                                }),
                            ),
                            "executions" => (200, json!({ "items": self.executions(id) })),
                            _ => (404, json!({ "message": "no such endpoint" })),
                        },
                    },
                    _ => (404, json!({ "message": "no such endpoint" })),
                },
            );
        }
        if let Some(rest) = path.strip_prefix(ENGINES) {
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
        let paired = e["status"] == "PAIRED";
        json!({
            "id": id,
            "name": e["name"],
            "status": e["status"],
            "availability": e["availability"],
            "version": if paired { e["version"].clone() } else { Value::Null },
            "preAuthorizedKey": e["key"],
        })
    }

    /// Every task deployed on an engine of the account (an undeployed task is gone).
    fn tasks(&self) -> Value {
        let mut items = Vec::new();
        for e in self.state["engines"].as_object().unwrap().values() {
            for t in e["tasks"].as_array().into_iter().flatten() {
                if t["status"] != "UNDEPLOYED" {
                    items.push(json!({ "executable": t["id"], "name": t["name"] }));
                }
            }
        }
        json!({ "items": items })
    }

    /// The engine a task is deployed on.
    fn task_engine(&self, task: &str) -> Option<String> {
        self.state["engines"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, e)| {
                e["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|t| t["id"] == task && t["status"] != "UNDEPLOYED")
            })
            .map(|(id, _)| id.clone())
    }

    /// A task's executions, newest first.
    fn executions(&self, task: &str) -> Vec<Value> {
        let mut v = self.state["executions"][task]
            .as_array()
            .cloned()
            .unwrap_or_default();
        v.reverse();
        v
    }

    /// Record what an engine reported of its tasks as executions: a task that starts running
    /// begins one, a task that stops or fails ends the running one.
    fn executions_from(&mut self, engine: &str, tasks: &Value) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        if !self.state["executions"].is_object() {
            self.state["executions"] = json!({});
        }
        for t in tasks.as_array().into_iter().flatten() {
            let id = t["id"].as_str().unwrap_or_default().to_string();
            let list = self.state["executions"]
                .as_object_mut()
                .unwrap()
                .entry(id.clone())
                .or_insert_with(|| json!([]));
            let runs = list.as_array_mut().unwrap();
            let running = runs
                .last()
                .is_some_and(|r| r["executionStatus"] == "EXECUTING");
            match t["status"].as_str().unwrap_or_default() {
                "RUNNING" if !running => runs.push(json!({
                    "executionId": format!("{id}-{}", runs.len() + 1),
                    "startTimestamp": now,
                    "finishTimestamp": null,
                    "executionStatus": "EXECUTING",
                    "remoteEngineId": engine,
                })),
                "FAILED" => runs.push(json!({
                    "executionId": format!("{id}-{}", runs.len() + 1),
                    "startTimestamp": now,
                    "finishTimestamp": now,
                    "executionStatus": "EXECUTION_FAILED",
                    "remoteEngineId": engine,
                    "errorMessage": t["reason"],
                })),
                "STOPPED" | "UNDEPLOYED" if running => {
                    let last = runs.last_mut().unwrap();
                    last["executionStatus"] = json!("EXECUTION_TERMINATED");
                    last["finishTimestamp"] = json!(now);
                }
                _ => {}
            }
        }
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
            let tasks = e["tasks"].clone();
            self.executions_from(id, &tasks);
        }
        self.save()?;
        Ok((200, json!("")))
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
            // A pairing is a (re)started engine: what ran before ended with the old process.
            let mut before = e["tasks"].clone();
            for t in before.as_array_mut().into_iter().flatten() {
                t["status"] = json!("STOPPED");
            }
            e["tasks"] = body["tasks"].clone();
            self.executions_from(&id, &before);
            self.executions_from(&id, &body["tasks"]);
        }
        let e = &mut self.state["engines"][&id];
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
            self.executions_from(id, &body["tasks"]);
        }
        self.save()?;
        Ok((200, json!({})))
    }
}
