//! The engine: load the plugins, check grants, preflight, plan, verify the plan, run it,
//! journal every step, and resume or roll back after a crash.

pub mod analysis;
pub mod duration;
pub mod lease;
pub mod notify;
pub mod plan;
pub mod prepare;
mod run;
pub mod state;
pub mod transport;

#[cfg(test)]
mod tests;

use crate::journal::{Direction, Journal, Op, Status};
use crate::plugin::model::{Finding, Level, Severity};
use crate::plugin::{CallEnv, Runtime, Sink};
use crate::redact::Redactor;
use crate::spec::Spec;
use crate::ui::Ui;
use anyhow::{anyhow, bail, Result};
use plan::XPlan;
use std::sync::Arc;

pub use prepare::{prepare, Prepared, Setup};
pub use run::{Decide, InFlight, InFlightChoices, Outcome};

/// Shared services of a command.
#[derive(Clone)]
pub struct Env {
    pub runtime: Arc<Runtime>,
    pub journal: Arc<Journal>,
    pub ui: Arc<dyn Ui>,
    pub redact: Arc<Redactor>,
    /// Remote hosts this command leaves out (`--without-host`): not reached, and every call
    /// to them fails at once as to a lost host.
    pub away: Vec<String>,
    /// Where plugins are kept by digest.
    pub store: Arc<crate::store::Store>,
}

/// Forwards plugin logs to the UI and the journal.
pub(crate) struct EngineSink {
    pub rollout: Option<i64>,
    pub journal: Arc<Journal>,
    pub ui: Arc<dyn Ui>,
    pub redact: Arc<Redactor>,
}

impl Sink for EngineSink {
    fn log(&self, call: &CallEnv, level: Level, message: &str) {
        let target = call.target.clone().unwrap_or_default();
        let step = call.step.clone().unwrap_or_default();
        self.ui.log(&target, &step, level, message);
        if let Some(r) = self.rollout {
            self.journal.write_later(vec![Op::Event {
                rollout: r,
                level: crate::plugin::model::level_name(level).to_string(),
                target,
                step,
                message: self.redact.redact(message),
            }]);
        }
    }

    fn progress(&self, call: &CallEnv, message: &str, fraction: Option<f32>) {
        let target = call.target.clone().unwrap_or_default();
        let step = call.step.clone().unwrap_or_default();
        self.ui.progress(&target, &step, message, fraction);
    }
}

impl Env {
    pub(crate) fn sink(&self, rollout: Option<i64>) -> Arc<dyn Sink> {
        Arc::new(EngineSink {
            rollout,
            journal: self.journal.clone(),
            ui: self.ui.clone(),
            redact: self.redact.clone(),
        })
    }
}

/// Render findings; true when any blocks the rollout.
pub fn show_findings(ui: &dyn Ui, findings: &[Finding]) -> bool {
    let mut blocked = false;
    for f in findings {
        let sev = match f.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Blocker => {
                blocked = true;
                "BLOCKER"
            }
        };
        let who = f.target.as_deref().unwrap_or("fleet");
        ui.note(&format!("preflight {sev}: {who}: {}", f.message));
    }
    blocked
}

/// Start a rollout of `spec`: lease, preflight, plan, run.
pub async fn start(env: &Env, spec: Spec) -> Result<Outcome> {
    let mut prepared = prepare(env, spec).await?;
    let spec = &prepared.spec;
    let id = env.journal.start_rollout(
        &spec.name,
        &std::path::absolute(&spec.path)
            .unwrap_or(spec.path.clone())
            .display()
            .to_string(),
        &spec.text,
        &prepared.plugins,
    )?;
    env.journal.notify(
        id,
        "started",
        serde_json::json!({ "targets": prepared.targets.len(), "strategy": prepared.strategy_label, "adapter": prepared.adapter_label }),
    )?;
    let keys: Vec<String> = prepared
        .targets
        .iter()
        .map(|t| format!("{}/{}", t.host, t.id))
        .collect();
    if let Err(e) = env.journal.acquire(id, &keys) {
        env.journal
            .set_status(id, Status::Failed, &format!("refused: {e}"))?;
        return Err(e);
    }
    match crate::remote::route::connect(env, &prepared, id).await {
        Ok(r) => prepared.remote = r,
        Err(e) => {
            env.journal
                .set_status(id, Status::Failed, &format!("refused: {e:#}"))?;
            env.journal.release(id)?;
            return Err(e);
        }
    }
    if let Err(e) = take_leases(env, &prepared, id).await {
        env.journal
            .set_status(id, Status::Failed, &format!("refused: {e:#}"))?;
        env.journal.release(id)?;
        return Err(e.context("a node is in another rollout; nothing was touched"));
    }
    env.ui.note(&format!(
        "rollout {id}: {} with {} on {} target(s)",
        prepared.adapter_label,
        prepared.strategy_label,
        prepared.targets.len()
    ));
    launch(env, &prepared, id).await
}

/// Preflight, plan and run rollout `id`, which has a lease and no plan yet.
async fn launch(env: &Env, prepared: &Prepared, id: i64) -> Result<Outcome> {
    let fail = |reason: String| -> Result<Outcome> {
        env.journal.set_status(id, Status::Failed, &reason)?;
        release(&env.journal, id)?;
        Ok(Outcome {
            id,
            status: Status::Failed,
            reason,
        })
    };
    let (plan, constraints) = match prepared.plan(env).await {
        Ok(p) => p,
        Err(e) => return fail(format!("{e:#}")),
    };
    let findings = match prepared.preflight(env, Some(id), &plan).await {
        Ok(f) => f,
        Err(e) => return fail(format!("preflight: {e:#}")),
    };
    if show_findings(env.ui.as_ref(), &findings) {
        let blockers: Vec<String> = findings
            .iter()
            .filter(|f| f.severity == Severity::Blocker)
            .map(|f| format!("{}: {}", f.target.as_deref().unwrap_or("fleet"), f.message))
            .collect();
        return fail(format!(
            "preflight refused the change before anything ran: {}",
            blockers.join("; ")
        ));
    }
    env.journal.set_plan(id, &serde_json::to_string(&plan)?)?;
    prepared.run(env, id, plan, constraints, 1)?.drive().await
}

/// Whether a finished rollout has a rollback that began and did not end.
pub fn rollback_pending(row: &crate::journal::RolloutRow) -> bool {
    row.direction == Direction::Rollback
        && matches!(
            row.status,
            Status::Completed | Status::CompletedWithFailures | Status::Aborted
        )
}

/// Take the node leases of rollout `id`, before anything is touched (again on resume: a
/// rollout retakes its own).
async fn take_leases(env: &Env, prepared: &Prepared, id: i64) -> Result<()> {
    let me = lease::Holder::me(
        id,
        env.journal.path(),
        &prepared.spec.path.display().to_string(),
    );
    lease::take(&prepared.lease_paths, &me)?;
    if let Some(remote) = &prepared.remote {
        if let Err(e) =
            crate::remote::route::take_leases(remote, &prepared.remote_leases, &me).await
        {
            lease::release(&prepared.lease_paths, &me);
            return Err(e);
        }
    }
    env.journal.record_leases(id, &prepared.lease_paths)
}

/// End rollout `id`'s hold on its targets: the journal's lease and the leases on the nodes.
pub(crate) fn release(journal: &Journal, id: i64) -> Result<()> {
    let me = lease::Holder::me(id, journal.path(), "");
    lease::release(&journal.node_leases(id)?, &me);
    journal.release(id)
}

/// Load a journaled rollout's spec and plugins again and retake its leases.
async fn reprepare(env: &Env, row: &crate::journal::RolloutRow) -> Result<Prepared> {
    let mut spec = crate::spec::parse(std::path::Path::new(&row.spec_path), &row.spec_text)?;
    // The very plugins the rollout started with, from the store, whatever the spec's files or
    // references hold now.
    for p in env.journal.plugins(row.id)? {
        let named = if p.role == "strategy" {
            &mut spec.strategy
        } else {
            &mut spec.adapter
        };
        named.reference = Some(p.digest.clone());
        named.sha256 = None;
    }
    let mut prepared = prepare(env, spec).await?;
    prepared.remote = crate::remote::route::connect(env, &prepared, row.id).await?;
    if env.away.is_empty() {
        // Every host answered: none is lost any more.
        env.journal.hosts_back(row.id)?;
    }
    take_leases(env, &prepared, row.id).await?;
    Ok(prepared)
}

/// Load a journaled rollout's spec and plan again.
async fn reload(env: &Env, id: i64) -> Result<(run::Run, crate::journal::RolloutRow)> {
    let row = env.journal.rollout(id)?;
    let prepared = reprepare(env, &row).await?;
    let plan: XPlan = serde_json::from_str(&row.plan).map_err(|_| {
        anyhow!("rollout {id} has no plan in the journal (it failed before planning)")
    })?;
    // The adapter's constraints hold for the journaled plan now too (the adapter may have
    // been upgraded since), or nothing more runs.
    let constraints = prepared.constraints(env).await?;
    plan::recheck(&plan, &constraints).map_err(|e| {
        anyhow!("rollout {id} cannot go on: its plan breaks the adapter's constraints: {e}")
    })?;
    let first_seq = env.journal.next_seq(id)?;
    Ok((prepared.run(env, id, plan, constraints, first_seq)?, row))
}

fn ensure_not_running(row: &crate::journal::RolloutRow) -> Result<()> {
    if row.status == Status::Running && row.pid != std::process::id() as i64 && pid_alive(row.pid) {
        bail!(
            "rollout {} is being run by process {}; use `cutover abort {}` to stop it",
            row.id,
            row.pid,
            row.id
        );
    }
    Ok(())
}

/// Whether a process with this pid exists.
pub fn pid_alive(pid: i64) -> bool {
    pid > 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Continue a paused or interrupted rollout at the exact step where it stopped, in the
/// direction it was going: a rollback that was interrupted goes on rolling back.
pub async fn resume(env: &Env, id: i64, in_flight: &InFlightChoices) -> Result<Outcome> {
    let row = env.journal.rollout(id)?;
    if rollback_pending(&row) {
        // A rollback of a finished rollout was started and stopped: go on with it.
        return rollback(env, id).await;
    }
    if row.status.is_final() {
        bail!("rollout {id} is {}: nothing to resume", row.status.as_str());
    }
    ensure_not_running(&row)?;
    if row.plan.is_empty() {
        // Stopped before it was planned: nothing has run, so it starts over from preflight.
        let prepared = reprepare(env, &row).await?;
        env.journal.claim(id)?;
        env.ui.note(&format!(
            "rollout {id}: it stopped before it was planned; planning it now"
        ));
        return launch(env, &prepared, id).await;
    }
    let (run, row) = reload(env, id).await?;
    continue_run(env, &row, run, in_flight).await
}

/// Go on with a journaled rollout in this process: settle what a crash left in flight, then
/// continue in the direction it was going.
pub(crate) async fn continue_run(
    env: &Env,
    row: &crate::journal::RolloutRow,
    run: run::Run,
    in_flight: &InFlightChoices,
) -> Result<Outcome> {
    let id = row.id;
    env.journal.claim(id)?;
    if let Some(outcome) = run.settle_in_flight(in_flight)? {
        return Ok(outcome);
    }
    if row.direction == Direction::Rollback {
        env.ui.note(&format!("rollout {id}: resuming its rollback"));
        return run
            .rollback_all("rolled back (resumed after an interruption)")
            .await;
    }
    env.ui.note(&format!(
        "rollout {id}: resuming at stage {}",
        row.stage + 1
    ));
    run.drive().await
}

/// Approve the gate a rollout waits at, and continue it.
pub async fn approve(env: &Env, id: i64) -> Result<Outcome> {
    let row = env.journal.rollout(id)?;
    if row.status != Status::Paused {
        bail!("rollout {id} is {}, not paused", row.status.as_str());
    }
    env.journal.approve(id, row.stage)?;
    resume(env, id, &InFlightChoices::default()).await
}

/// Stop a rollout: a running one stops after its current steps; a paused or interrupted
/// one is marked aborted at once. Updated targets stay updated.
pub fn abort(env: &Env, id: i64) -> Result<Status> {
    abort_in(&env.journal, id)
}

/// [`abort`] with the journal alone: it loads no plugin (what `cutover serve` calls).
pub fn abort_in(journal: &Journal, id: i64) -> Result<Status> {
    let row = journal.rollout(id)?;
    if row.status.is_final() {
        bail!("rollout {id} is already {}", row.status.as_str());
    }
    if row.status == Status::Running && pid_alive(row.pid) && row.pid != std::process::id() as i64 {
        journal.request_abort(id)?;
        return Ok(Status::Running);
    }
    // This command loaded no spec: the rollout's own (journaled) names its webhooks.
    if let Ok(spec) = crate::spec::parse(std::path::Path::new(&row.spec_path), &row.spec_text) {
        // A broken hook file never stands in the way of an abort.
        if let Err(e) = notify::configure(journal, &spec) {
            eprintln!("warning: rollout {id}'s webhooks are not told of the abort: {e:#}");
        }
    }
    journal.set_status(id, Status::Aborted, "aborted by the operator")?;
    release(journal, id)?;
    Ok(Status::Aborted)
}

/// Undo every updated target of a rollout that is not running.
pub async fn rollback(env: &Env, id: i64) -> Result<Outcome> {
    let row = env.journal.rollout(id)?;
    if row.status == Status::RolledBack {
        bail!("rollout {id} is already rolled back");
    }
    ensure_not_running(&row)?;
    if row.plan.is_empty() {
        let reason = "rolled back: it stopped before it was planned, so nothing had run";
        env.journal.set_status(id, Status::RolledBack, reason)?;
        release(&env.journal, id)?;
        return Ok(Outcome {
            id,
            status: Status::RolledBack,
            reason: reason.into(),
        });
    }
    // The direction is durable before anything else (the leases reload takes included): a
    // crash from here on leaves a rollout that `status` says to roll back.
    env.journal
        .set_direction(id, Direction::Rollback, "rolled back by the operator")?;
    let (run, _) = reload(env, id).await?;
    rollback_run(env, id, run).await
}

/// Roll back a journaled rollout in this process.
pub(crate) async fn rollback_run(env: &Env, id: i64, run: run::Run) -> Result<Outcome> {
    // The direction is durable before anything else: if the operator must first answer for a
    // step left in flight, the `resume` that follows goes on rolling back.
    env.journal
        .set_direction(id, Direction::Rollback, "rolled back by the operator")?;
    env.journal.claim(id)?;
    env.journal.acquire(id, &run.target_keys())?;
    if let Some(outcome) = run.settle_in_flight(&InFlightChoices::default())? {
        return Ok(outcome);
    }
    run.rollback_all("rolled back by the operator").await
}
