//! `POST /api/rollouts/{id}/{approve|abort|rollback|resume}`: the operator actions. Each
//! needs a token and is recorded in the journal with who asked and when, refused ones too.
//!
//! `abort` is carried out here (it only writes the journal). The others drive a rollout for
//! as long as it takes, so each runs as its own `cutover` process in its own process group:
//! the rollout goes on if the server stops. Its output goes to `actions/` beside the journal,
//! and how it ended is recorded on the action when it exits.

use super::{api, auth, blocking, error, Shared, State};
use crate::journal::Status;
use axum::extract::{Path, State as Ax};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

const ACTIONS: [&str; 4] = ["approve", "abort", "rollback", "resume"];

/// What the journal said of an action before anything ran.
enum Decided {
    NotFound,
    Refused(String),
    Aborted(String),
    /// Start a process for it: the action's id (the rollout is marked busy).
    Spawn(i64),
}

pub(super) async fn act(
    Ax(st): Ax<State>,
    Path((id, action)): Path<(i64, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(action) = ACTIONS.iter().copied().find(|a| *a == action) else {
        return error(StatusCode::NOT_FOUND, format!("no action `{action}`"));
    };
    let Some(token) = auth::check_request(&st.tokens, &headers) else {
        let mut r = error(
            StatusCode::UNAUTHORIZED,
            "a valid token is needed (Authorization: Bearer TOKEN)",
        );
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, "Bearer".parse().unwrap());
        return r;
    };
    let who = token.name.clone().unwrap_or_else(|| st.operator.clone());
    let s = st.clone();
    let decided = match blocking(move || decide(&s, id, action, &who)).await {
        Ok(d) => d,
        Err(r) => return r,
    };
    match decided {
        Decided::NotFound => error(StatusCode::NOT_FOUND, format!("no rollout {id}")),
        Decided::Refused(why) => error(StatusCode::CONFLICT, why),
        Decided::Aborted(result) => {
            (StatusCode::OK, axum::Json(json!({ "result": result }))).into_response()
        }
        Decided::Spawn(aid) => match spawn(&st, id, action, aid) {
            Ok(result) => (
                StatusCode::ACCEPTED,
                axum::Json(json!({ "result": result })),
            )
                .into_response(),
            Err(e) => {
                let why = format!("could not start `cutover {action}`: {e:#}");
                st.busy.lock().unwrap().remove(&id);
                let s = st.clone();
                let w = why.clone();
                let _ = blocking(move || s.journal.set_action_result(aid, &w)).await;
                error(StatusCode::INTERNAL_SERVER_ERROR, why)
            }
        },
    }
}

/// Check `action` against where rollout `id` stands, record it, and carry out an abort.
fn decide(st: &Shared, id: i64, action: &str, who: &str) -> anyhow::Result<Decided> {
    let j = &st.journal;
    if id < 1 || j.latest()?.is_none_or(|newest| id > newest) {
        return Ok(Decided::NotFound);
    }
    let row = j.rollout(id)?;
    // Held while deciding, so that two requests cannot both start a process.
    let mut busy = st.busy.lock().unwrap();
    let allowed = api::allowed(&row, busy.contains_key(&id));
    if allowed[action] != true {
        let why = if busy.contains_key(&id) && action != "abort" {
            format!("rollout {id}: an action started here is still running")
        } else {
            format!(
                "rollout {id} is {}: `{action}` does not apply",
                crate::cli::advice(&row, !crate::engine::pid_alive(row.pid))
            )
        };
        j.record_action(id, action, who, &format!("refused: {why}"))?;
        return Ok(Decided::Refused(why));
    }
    if action == "abort" {
        drop(busy);
        let result = match crate::engine::abort_in(j, id) {
            Ok(Status::Running) => {
                "abort requested: steps in flight are interrupted and their targets undone"
                    .to_string()
            }
            Ok(s) => s.as_str().to_string(),
            Err(e) => format!("refused: {e:#}"),
        };
        // The `aborted` webhook, if the rollout has one (what is left waits for the next
        // command).
        crate::engine::notify::flush(j, std::time::Duration::from_secs(2));
        j.record_action(id, action, who, &result)?;
        return Ok(Decided::Aborted(result));
    }
    let aid = j.record_action(id, action, who, "starting")?;
    busy.insert(id, 0);
    Ok(Decided::Spawn(aid))
}

/// Start `cutover ACTION ID` on the server's journal, detached; wait for it in the background
/// and record how it ended. What to say now.
fn spawn(st: &State, id: i64, action: &'static str, aid: i64) -> anyhow::Result<String> {
    std::fs::create_dir_all(&st.logs)?;
    let log: PathBuf = st
        .logs
        .join(format!("rollout-{id}-action-{aid}-{action}.log"));
    let out = std::fs::File::create(&log)?;
    let mut child = tokio::process::Command::new(&st.exe)
        .arg("--journal")
        .arg(&st.journal_path)
        .arg("--store")
        .arg(&st.store)
        .arg(action)
        .arg(id.to_string())
        .env_remove("CUTOVER_TOKEN")
        .stdin(std::process::Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .process_group(0)
        .spawn()?;
    let pid = child.id().unwrap_or(0);
    st.busy.lock().unwrap().insert(id, pid);
    let result = format!("started (pid {pid})");
    st.journal.set_action_result(aid, &result)?;
    let st = Arc::clone(st);
    tokio::spawn(async move {
        let code = child.wait().await.ok().and_then(|s| s.code());
        // Free first: recording the result is what tells the pages to read again.
        st.busy.lock().unwrap().remove(&id);
        let _ = tokio::task::spawn_blocking(move || {
            let ended = ended(&st, id, code, &log);
            let _ = st.journal.set_action_result(aid, &ended);
        })
        .await;
    });
    Ok(result)
}

/// How an action process ended: the rollout's status then, or its error.
fn ended(st: &Shared, id: i64, code: Option<i32>, log: &std::path::Path) -> String {
    let code_text = code.map_or("killed".to_string(), |c| format!("exit {c}"));
    if code == Some(1) {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(e) = text.lines().rev().find(|l| l.starts_with("error: ")) {
            return format!("{e} ({code_text})");
        }
    }
    match st.journal.rollout(id) {
        Ok(row) => format!("{} ({code_text})", row.status.as_str()),
        Err(_) => code_text,
    }
}
