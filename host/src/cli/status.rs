//! `cutover status`: where a rollout stands and what the operator can do in it.

use super::*;

/// A rollout's status with what the operator can do in it.
pub(crate) fn advice(row: &crate::journal::RolloutRow, interrupted: bool) -> String {
    let id = row.id;
    let back = row.direction == crate::journal::Direction::Rollback;
    let way = if back {
        " (it goes on rolling back)"
    } else {
        ""
    };
    match row.status {
        Status::Running if interrupted && row.plan.is_empty() => format!(
            "interrupted before it was planned (process {} is gone): `cutover resume {id}` plans and runs it, `cutover abort {id}` gives it up",
            row.pid
        ),
        Status::Running if interrupted => format!(
            "interrupted (process {} is gone): run `cutover resume {id}`{way}, or `cutover rollback {id}` to undo",
            row.pid
        ),
        Status::Interrupted => format!(
            "interrupted: run `cutover resume {id}`{way}, or `cutover rollback {id}` to undo"
        ),
        _ if engine::rollback_pending(row) => format!(
            "{}, but a rollback of it began: `cutover rollback {id}` goes on with it",
            row.status.as_str()
        ),
        Status::Paused if back => format!(
            "paused while rolling back: answer as the reason says, then `cutover resume {id}` goes on rolling back"
        ),
        s => s.as_str().to_string(),
    }
}

/// A rollout's targets with their states derived from the step records.
pub(crate) fn target_rows(
    journal: &Journal,
    row: &crate::journal::RolloutRow,
) -> Result<Vec<TargetRow>> {
    let plan: Option<engine::plan::XPlan> = serde_json::from_str(&row.plan).ok();
    engine::state::targets(journal, row.id, plan.as_ref())
}

/// The hosts a rollout lost, each with its targets (from the journaled spec).
fn lost_hosts(
    journal: &Journal,
    row: &crate::journal::RolloutRow,
) -> Result<Vec<(crate::journal::LostHost, Vec<String>)>> {
    let lost = journal.lost_hosts(row.id)?;
    if lost.is_empty() {
        return Ok(Vec::new());
    }
    let spec = crate::spec::parse(Path::new(&row.spec_path), &row.spec_text).ok();
    Ok(lost
        .into_iter()
        .map(|h| {
            let on = spec
                .iter()
                .flat_map(|s| s.targets.iter())
                .filter(|t| t.host == h.host)
                .map(|t| t.id.clone())
                .collect();
            (h, on)
        })
        .collect())
}

/// A step record as `status --json` and the dashboard show it: its error redacted, secret
/// outputs never shown.
pub(crate) fn step_json(s: &crate::journal::StepRow, redact: &Redactor) -> serde_json::Value {
    json!({
        "seq": s.seq, "stage": s.stage, "target": s.target, "step": s.step,
        "action": s.action, "attempt": s.attempt, "state": s.state,
        "error": s.error.as_deref().map(|e| redact.redact(e)),
        "outputs": s.outputs.iter().map(|o| json!({
            "key": o.key,
            "value": if o.secret { "«redacted»".to_string() } else { redact.redact(&o.value) },
            "secret": o.secret,
        })).collect::<Vec<_>>(),
        "started_ms": s.started, "ended_ms": s.ended,
    })
}

/// The secret outputs of rollout `id`'s steps, to hide wherever its text is shown.
pub(crate) fn redactor_for(journal: &Journal, id: i64) -> Result<Redactor> {
    let r = Redactor::default();
    for s in journal.steps(id)? {
        for o in s.outputs.iter().filter(|o| o.secret) {
            r.add(&o.value);
        }
    }
    Ok(r)
}

/// `cutover status [ID]`
pub fn status(ctx: &Ctx, id: Option<i64>, json_out: bool) -> Result<i32> {
    let journal = ctx.journal()?;
    let id = match id.or(journal.latest()?) {
        Some(id) => id,
        None => anyhow::bail!("the journal has no rollouts yet"),
    };
    let row = journal.rollout(id)?;
    let redact = redactor_for(&journal, id)?;
    let targets = target_rows(&journal, &row)?;
    let steps = journal.steps(id)?;
    let plan: Option<engine::plan::XPlan> = serde_json::from_str(&row.plan).ok();
    let alive = engine::pid_alive(row.pid);
    let interrupted = row.status == Status::Running && !alive;
    let in_flight: Vec<_> = steps
        .iter()
        .filter(|s| s.state == crate::journal::StepState::Started)
        .collect();
    let lost = lost_hosts(&journal, &row)?;
    let plugins = journal.plugins(id)?;
    let measurements = journal.measurements(id)?;
    let deliveries = journal.rollout_deliveries(id)?;
    let actions = journal.actions(id)?;
    if json_out {
        let out = json!({
            "id": row.id,
            "name": row.name,
            "spec": row.spec_path,
            "status": row.status.as_str(),
            "interrupted": interrupted || row.status == Status::Interrupted,
            "direction": row.direction.as_str(),
            "leases": journal.node_leases(id)?,
            "plugins": plugins,
            "lost_hosts": lost.iter().map(|(h, on)| json!({
                "host": h.host, "reason": redact.redact(&h.reason), "at_ms": h.at_ms, "targets": on,
            })).collect::<Vec<_>>(),
            "advice": advice(&row, interrupted),
            "measurements": measurements,
            "notifications": deliveries.iter().map(|d| json!({
                "event": d.event, "url": d.url, "key": d.key, "attempts": d.attempts,
                "delivered_ms": d.delivered, "last_error": redact.redact(&d.last_error),
            })).collect::<Vec<_>>(),
            "reason": redact.redact(&row.reason),
            "stage": row.stage,
            "stages": plan.as_ref().map(|p| p.stages.len()).unwrap_or(0),
            "plan": plan,
            "targets": targets.iter().map(|t| json!({
                "id": t.target, "state": t.state.as_str(), "detail": redact.redact(&t.detail),
            })).collect::<Vec<_>>(),
            "steps": steps.iter().map(|s| step_json(s, &redact)).collect::<Vec<_>>(),
            "actions": actions.iter().map(|a| json!({
                "action": a.action, "who": a.who, "at_ms": a.ts, "result": redact.redact(&a.result),
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    let state = advice(&row, interrupted);
    show!("rollout {id} ({}): {state}", row.name);
    show!("  spec: {}", row.spec_path);
    for p in &plugins {
        show!("  {}: {} ({})", p.role, p.digest, p.source);
    }
    if !row.reason.is_empty() {
        show!("  why: {}", redact.redact(&row.reason));
    }
    if let Some(p) = &plan {
        let next = p
            .stages
            .get(row.stage as usize)
            .map(|s| s.describe())
            .unwrap_or_else(|| "none".into());
        show!(
            "  stage {}/{}; next: {next}",
            row.stage.min(p.stages.len() as i64),
            p.stages.len()
        );
    }
    let count = |s: TargetState| targets.iter().filter(|t| t.state == s).count();
    show!(
        "  targets: {} updated, {} running, {} failed, {} rolled back, {} need attention",
        count(TargetState::Updated),
        count(TargetState::Running),
        count(TargetState::Failed),
        count(TargetState::RolledBack),
        count(TargetState::NeedsAttention)
    );
    for t in targets.iter().filter(|t| t.state != TargetState::Updated) {
        let detail = if t.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", redact.redact(&t.detail))
        };
        show!("    {} {}{detail}", t.target, t.state.as_str());
    }
    for s in in_flight {
        show!(
            "  in flight: {} `{}` on {}",
            if s.action == crate::journal::Action::Undo {
                "undo of"
            } else {
                "step"
            },
            s.step,
            if s.target.is_empty() {
                "the fleet"
            } else {
                &s.target
            }
        );
    }
    let again = if interrupted || matches!(row.status, Status::Interrupted | Status::Paused) {
        "resume"
    } else {
        "rollback"
    };
    for (h, on) in &lost {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(h.at_ms.max(0) as u64);
        show!(
            "  host `{}` lost at {}: {}",
            h.host,
            humantime::format_rfc3339_seconds(at),
            redact.redact(&h.reason)
        );
        show!(
            "    {}; once `ssh {host}` answers again, `cutover {again} {id}` reaches it; without it, `cutover {again} {id} --without-host {host}` goes on with the other hosts",
            if on.is_empty() {
                "its fleet steps".to_string()
            } else {
                format!("its targets: {}", on.join(", "))
            },
            host = h.host
        );
    }
    super::report::measurements(&measurements);
    super::report::deliveries(&deliveries);
    if !actions.is_empty() {
        show!("  operator actions:");
        for a in &actions {
            let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(a.ts.max(0) as u64);
            show!(
                "    {} {} by {}: {}",
                humantime::format_rfc3339_seconds(at),
                a.action,
                a.who,
                redact.redact(&a.result)
            );
        }
    }
    let events = journal.events(id, 5)?;
    if !events.is_empty() {
        show!("  last log lines:");
        for e in events {
            let who = if e.target.is_empty() {
                "fleet".to_string()
            } else {
                e.target.clone()
            };
            let step = if e.step.is_empty() {
                String::new()
            } else {
                format!(" {}", e.step)
            };
            show!(
                "    [{}] {who}{step}: {}",
                e.level,
                redact.redact(&e.message)
            );
        }
    }
    Ok(code(if interrupted {
        Status::Paused
    } else {
        row.status
    }))
}
