//! The dashboard's JSON: the list of rollouts and one rollout's timeline, read from the
//! journal and redacted as `cutover status` does.

use super::{blocking, error, Shared, State};
use crate::engine::plan::{XPlan, XStage};
use crate::journal::{RolloutRow, Status, TargetState};
use anyhow::Result;
use axum::extract::{Path, State as Ax};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

/// Log lines a timeline carries (the newest).
const EVENTS: usize = 300;

/// `GET /api/rollouts`
pub(super) async fn list(Ax(st): Ax<State>) -> Response {
    match blocking(move || rollouts(&st)).await {
        Ok(v) => axum::Json(v).into_response(),
        Err(r) => r,
    }
}

/// `GET /api/rollouts/{id}`
pub(super) async fn one(Ax(st): Ax<State>, Path(id): Path<i64>) -> Response {
    match blocking(move || timeline(&st, id)).await {
        Ok(Some(v)) => axum::Json(v).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, format!("no rollout {id}")),
        Err(r) => r,
    }
}

/// Every rollout, newest first, with its target counts.
pub(super) fn rollouts(st: &Shared) -> Result<Value> {
    let j = &st.journal;
    let mut known = st.finished.lock().unwrap();
    let mut out = Vec::new();
    for row in j.rollouts()? {
        // A finished rollout's entry changes only with its row (a later rollback): counting
        // its targets again at every change of the journal would read all its steps.
        if let Some((at, v)) = known.get(&row.id) {
            if *at == row.updated {
                out.push(v.clone());
                continue;
            }
        }
        let targets = crate::cli::target_rows(j, &row)?;
        let count = |s: TargetState| targets.iter().filter(|t| t.state == s).count();
        let v = json!({
            "id": row.id,
            "name": row.name,
            "status": row.status.as_str(),
            "advice": crate::cli::advice(&row, interrupted(&row)),
            "created_ms": row.created,
            "updated_ms": row.updated,
            "targets": targets.len(),
            "updated": count(TargetState::Updated),
            "failed": count(TargetState::Failed) + count(TargetState::NeedsAttention),
        });
        if row.status.is_final() && !crate::engine::rollback_pending(&row) {
            known.insert(row.id, (row.updated, v.clone()));
        }
        out.push(v);
    }
    Ok(Value::Array(out))
}

/// Whether a rollout marked running has lost its process.
fn interrupted(row: &RolloutRow) -> bool {
    row.status == Status::Running && !crate::engine::pid_alive(row.pid)
}

/// Which actions make sense for `row` now; `busy` when an action process of this server
/// still works on it.
pub(super) fn allowed(row: &RolloutRow, busy: bool) -> Value {
    let driven = row.status == Status::Running && !interrupted(row);
    let pending_back = crate::engine::rollback_pending(row);
    let open = !row.status.is_final();
    json!({
        "approve": !busy && row.status == Status::Paused,
        "abort": open,
        "resume": !busy && !driven && (open || pending_back),
        "rollback": !busy && !driven && row.status != Status::RolledBack,
    })
}

/// One rollout: its plan's stages with where it stands, its targets with their steps, the
/// gates, measurements, log lines and operator actions. None when there is no such rollout.
pub(super) fn timeline(st: &Shared, id: i64) -> Result<Option<Value>> {
    let j = &st.journal;
    // Rollouts are never deleted: ids run from 1 to the newest.
    if id < 1 || j.latest()?.is_none_or(|newest| id > newest) {
        return Ok(None);
    }
    let row = j.rollout(id)?;
    let redact = crate::cli::redactor_for(j, id)?;
    let plan: Option<XPlan> = serde_json::from_str(&row.plan).ok();
    let targets = crate::cli::target_rows(j, &row)?;
    let steps = j.steps(id)?;
    let finished = row.status.is_final();
    let mut stages = Vec::new();
    for (i, stage) in plan.iter().flat_map(|p| p.stages.iter()).enumerate() {
        let i = i as i64;
        let state = if i < row.stage || (finished && row.status == Status::Completed) {
            "done"
        } else if i == row.stage && !finished {
            "current"
        } else {
            "not-reached"
        };
        let mut v = serde_json::to_value(stage)?;
        v["index"] = json!(i);
        v["describe"] = json!(stage.describe());
        v["state"] = json!(state);
        if matches!(stage, XStage::Approval { .. }) {
            v["approved"] = json!(j.approved(id, i)?);
        }
        stages.push(v);
    }
    let step_json = |s: &crate::journal::StepRow| {
        let mut v = crate::cli::step_json(s, &redact);
        v["duration_ms"] = json!(s.ended.map(|e| e - s.started));
        v
    };
    let busy = st.busy.lock().unwrap().contains_key(&id);
    Ok(Some(json!({
        "id": row.id,
        "name": row.name,
        "spec": row.spec_path,
        "status": row.status.as_str(),
        "interrupted": interrupted(&row) || row.status == Status::Interrupted,
        "advice": redact.redact(&crate::cli::advice(&row, interrupted(&row))),
        "reason": redact.redact(&row.reason),
        "direction": row.direction.as_str(),
        "stage": row.stage,
        "created_ms": row.created,
        "updated_ms": row.updated,
        "busy": busy,
        "allowed": allowed(&row, busy),
        "plugins": j.plugins(id)?,
        "stages": stages,
        "standby": plan.as_ref().map(|p| p.standby.clone()).unwrap_or_default(),
        "targets": targets.iter().map(|t| json!({
            "id": t.target, "state": t.state.as_str(), "detail": redact.redact(&t.detail),
            "steps": steps.iter().filter(|s| s.target == t.target).map(step_json).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "fleet_steps": steps.iter().filter(|s| s.target.is_empty()).map(step_json).collect::<Vec<_>>(),
        "measurements": measurements(st, id, &redact)?,
        "events": j.events(id, EVENTS)?.iter().map(|e| json!({
            "ts": e.ts, "level": e.level, "target": e.target, "step": e.step,
            "message": redact.redact(&e.message),
        })).collect::<Vec<_>>(),
        "actions": j.actions(id)?.iter().map(|a| json!({
            "id": a.id, "action": a.action, "who": a.who, "ts": a.ts,
            "result": redact.redact(&a.result),
        })).collect::<Vec<_>>(),
    })))
}

/// A number that changes whenever another connection (a rollout's process, or this server's
/// own writes) commits to the journal.
pub(super) fn data_version(st: &Shared) -> Result<i64> {
    let c = st.reader.lock().unwrap();
    Ok(c.query_row("PRAGMA data_version", [], |r| r.get(0))?)
}

/// The analysis measurements of rollout `id`, their details redacted.
fn measurements(st: &Shared, id: i64, redact: &crate::redact::Redactor) -> Result<Vec<Value>> {
    Ok(st
        .journal
        .measurements(id)?
        .into_iter()
        .map(|m| {
            json!({
                "stage": m.stage, "analysis": m.analysis, "seq": m.seq, "ts": m.ts,
                "value": m.value, "outcome": m.outcome, "detail": redact.redact(&m.detail),
            })
        })
        .collect())
}
