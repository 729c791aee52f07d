//! The engine: load the plugins, check grants, preflight, plan, verify the plan, run it,
//! journal every step, and resume or roll back after a crash.

pub mod plan;
mod run;
pub mod state;
pub mod transport;

use crate::journal::{Journal, Op, Status};
use crate::plugin::authority::{self as caps, Effective};
use crate::plugin::bindings::{Constraint, Description, Finding, Level, Pair, Severity, Target};
use crate::plugin::{AdapterPlugin, CallEnv, Runtime, Sink, StrategyPlugin};
use crate::redact::Redactor;
use crate::spec::{SecretSource, Spec};
use crate::ui::Ui;
use anyhow::{anyhow, bail, Context, Result};
use plan::XPlan;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

pub use run::{InFlight, InFlightChoices, Outcome};

/// Shared services of a command.
#[derive(Clone)]
pub struct Env {
    pub runtime: Arc<Runtime>,
    pub journal: Arc<Journal>,
    pub ui: Arc<dyn Ui>,
    pub redact: Arc<Redactor>,
}

/// A spec with its plugins loaded and its grants resolved.
pub struct Prepared {
    pub spec: Spec,
    pub strategy: StrategyPlugin,
    /// `name@version` of the strategy.
    pub strategy_label: String,
    pub adapter: Arc<AdapterPlugin>,
    pub adapter_label: String,
    pub desc: Description,
    pub targets: Vec<Target>,
    pub adapter_params: Vec<Pair>,
    pub strategy_params: Vec<Pair>,
    pub secrets: BTreeMap<String, String>,
    pub fleet_caps: Effective,
    pub target_caps: HashMap<String, Effective>,
    /// Capabilities of steps that request their own, by (target, step); the fleet is "".
    pub step_caps: HashMap<(String, String), Effective>,
}

fn pairs(v: &[(String, String)]) -> Vec<Pair> {
    v.iter()
        .map(|(k, v)| Pair {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
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
                level: crate::plugin::bindings::level_name(level).to_string(),
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

/// Load the plugins of `spec`, describe the adapter, check its parameters and resolve its
/// grants. Nothing on the targets is touched.
pub async fn prepare(env: &Env, spec: Spec) -> Result<Prepared> {
    let strategy = env
        .runtime
        .strategy(
            &spec.strategy.path,
            spec.strategy.sha256.as_deref(),
            spec.limits.memory,
        )
        .context("loading the strategy")?;
    let adapter = env
        .runtime
        .adapter(
            &spec.adapter.path,
            spec.adapter.sha256.as_deref(),
            spec.limits.memory,
        )
        .context("loading the adapter")?;
    for note in [&strategy.load_note, &adapter.load_note] {
        env.ui.log("", "load", Level::Debug, note);
    }
    let sink = env.sink(None);
    let (sname, sver, _) = strategy
        .info(CallEnv::bare(
            &strategy.label,
            spec.limits.call_timeout,
            sink.clone(),
        ))
        .await?;
    let desc = adapter
        .describe(CallEnv::bare(
            &adapter.label,
            spec.limits.call_timeout,
            sink,
        ))
        .await?;
    let adapter_label = format!("{}@{}", desc.name, desc.version);

    // Parameters: required ones present, unknown ones refused.
    let known: Vec<&str> = desc.parameters.iter().map(|p| p.name.as_str()).collect();
    for (k, _) in &spec.adapter.params {
        if !known.contains(&k.as_str()) {
            bail!(
                "{}: [adapter.params] key `{k}` is not a parameter of {adapter_label} (it takes: {})",
                spec.path.display(),
                known.join(", ")
            );
        }
    }
    let mut adapter_params = spec.adapter.params.clone();
    for p in &desc.parameters {
        let in_params = adapter_params.iter().any(|(k, _)| k == &p.name);
        if p.per_target {
            for t in &spec.targets {
                let has = t.labels.iter().any(|(k, _)| k == &p.name) || in_params;
                if !has && p.default.is_none() && p.required {
                    bail!(
                        "{}: target `{}` needs `{}` ({}) : add it to its [[targets]] entry or under [adapter.params]",
                        spec.path.display(),
                        t.id,
                        p.name,
                        p.description
                    );
                }
            }
        } else if !in_params {
            match &p.default {
                Some(d) => adapter_params.push((p.name.clone(), d.clone())),
                None if p.required => bail!(
                    "{}: [adapter.params] needs `{}` ({})",
                    spec.path.display(),
                    p.name,
                    p.description
                ),
                None => {}
            }
        }
    }
    for step in spec.timeouts.keys() {
        if !desc.steps.iter().any(|s| &s.name == step) {
            bail!(
                "{}: [adapter.timeouts] key `{step}` is not a step of {adapter_label} (its steps: {})",
                spec.path.display(),
                desc.steps.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
            );
        }
    }

    let targets: Vec<Target> = spec
        .targets
        .iter()
        .map(|t| Target {
            id: t.id.clone(),
            host: t.host.clone(),
            labels: pairs(&t.labels),
        })
        .collect();

    // Grants: every requested capability must be granted, for every target and step, and no
    // call may be able to write a program it may run.
    let mut denied = Vec::new();
    let mut resolve = |caps: &[crate::plugin::bindings::Capability], t: Option<&Target>| {
        caps::resolve(
            &adapter_label,
            caps,
            t,
            &targets,
            &adapter_params,
            &spec.grants,
            &spec.secrets,
        )
        .unwrap_or_else(|d| {
            denied.extend(d);
            Effective::default()
        })
    };
    let fleet_caps = resolve(&desc.capabilities, None);
    let mut target_caps = HashMap::new();
    for t in &targets {
        target_caps.insert(t.id.clone(), resolve(&desc.capabilities, Some(t)));
    }
    let mut step_caps = HashMap::new();
    for step in desc.steps.iter().filter(|s| !s.capabilities.is_empty()) {
        let own = resolve(&step.capabilities, None);
        step_caps.insert((String::new(), step.name.clone()), fleet_caps.merged(&own));
        for t in &targets {
            let own = resolve(&step.capabilities, Some(t));
            step_caps.insert(
                (t.id.clone(), step.name.clone()),
                target_caps[&t.id].merged(&own),
            );
        }
    }
    let mut calls: Vec<(String, &Effective)> = vec![(String::new(), &fleet_caps)];
    calls.extend(
        target_caps
            .iter()
            .map(|(t, c)| (format!(" (target `{t}`)"), c)),
    );
    calls.extend(step_caps.iter().map(|((t, s), c)| {
        (
            format!(
                " (step `{s}`{})",
                if t.is_empty() {
                    String::new()
                } else {
                    format!(", target `{t}`")
                }
            ),
            c,
        )
    }));
    for (who, c) in calls {
        denied.extend(caps::grants::conflicts(&adapter_label, &who, c));
    }
    denied.sort();
    denied.dedup();
    if !denied.is_empty() {
        bail!(
            "{}: the adapter needs grants the spec does not give:\n  - {}",
            spec.path.display(),
            denied.join("\n  - ")
        );
    }

    let mut secrets = BTreeMap::new();
    let wanted: std::collections::BTreeSet<&String> = fleet_caps
        .secrets
        .iter()
        .chain(step_caps.values().flat_map(|c| c.secrets.iter()))
        .collect();
    for name in wanted {
        let value = match &spec.secrets[name] {
            SecretSource::Env(var) => std::env::var(var).map_err(|_| {
                anyhow!(
                    "secret `{name}` comes from the environment variable {var}, which is not set"
                )
            })?,
            SecretSource::File(p) => std::fs::read_to_string(p)
                .map_err(|e| anyhow!("secret `{name}` comes from {}: {e}", p.display()))?
                .trim_end()
                .to_string(),
        };
        env.redact.add(&value);
        secrets.insert(name.clone(), value);
    }

    Ok(Prepared {
        strategy_label: format!("{sname}@{sver}"),
        strategy_params: pairs(&spec.strategy.params),
        adapter_params: pairs(&adapter_params),
        spec,
        strategy,
        adapter: Arc::new(adapter),
        adapter_label,
        desc,
        targets,
        secrets,
        fleet_caps,
        target_caps,
        step_caps,
    })
}

impl Prepared {
    fn fleet_env(&self, env: &Env, rollout: Option<i64>) -> Arc<CallEnv> {
        Arc::new(CallEnv {
            plugin: self.adapter_label.clone(),
            step: None,
            target: None,
            caps: self.fleet_caps.clone(),
            secrets: self.fleet_caps.secret_values(&self.secrets),
            sink: env.sink(rollout),
            budget: self.spec.limits.call_timeout,
            limits: self.spec.limits,
        })
    }

    /// The adapter's constraints for this fleet.
    pub async fn constraints(&self, env: &Env) -> Result<Vec<Constraint>> {
        self.adapter
            .constraints(
                self.fleet_env(env, None),
                &self.targets,
                &self.adapter_params,
            )
            .await?
            .map_err(|e| {
                anyhow!(
                    "{} refused the fleet: {}",
                    self.adapter_label,
                    plugin_error(&e)
                )
            })
    }

    /// The adapter's constraints, then the strategy's plan, verified and expanded.
    pub async fn plan(&self, env: &Env) -> Result<(XPlan, Vec<Constraint>)> {
        let constraints = self.constraints(env).await?;
        let senv = CallEnv::bare(
            &self.strategy_label,
            self.spec.limits.call_timeout,
            env.sink(None),
        );
        let plan = self
            .strategy
            .plan(senv, &self.targets, &constraints, &self.strategy_params)
            .await?
            .map_err(|e| {
                anyhow!(
                    "{} could not plan: {}",
                    self.strategy_label,
                    plugin_error(&e)
                )
            })?;
        let plan = plan::expand(&plan, &self.desc, &self.targets, &constraints)
            .map_err(|e| anyhow!("the plan of {} was refused: {e}", self.strategy_label))?;
        Ok((plan, constraints))
    }

    /// Preflight findings of the adapter.
    pub async fn preflight(&self, env: &Env, rollout: Option<i64>) -> Result<Vec<Finding>> {
        self.adapter
            .preflight(
                self.fleet_env(env, rollout),
                &self.targets,
                &self.adapter_params,
                &self.strategy_label,
            )
            .await?
            .map_err(|e| {
                anyhow!(
                    "{} preflight failed: {}",
                    self.adapter_label,
                    plugin_error(&e)
                )
            })
    }
}

fn plugin_error(e: &crate::plugin::bindings::PluginError) -> String {
    match &e.hint {
        Some(h) => format!("{} ({h})", e.message),
        None => e.message.clone(),
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
    let prepared = prepare(env, spec).await?;
    let spec = &prepared.spec;
    let id = env.journal.create_rollout(
        &spec.name,
        &std::path::absolute(&spec.path)
            .unwrap_or(spec.path.clone())
            .display()
            .to_string(),
        &spec.text,
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
    env.ui.note(&format!(
        "rollout {id}: {} with {} on {} target(s)",
        prepared.adapter_label,
        prepared.strategy_label,
        prepared.targets.len()
    ));
    let fail = |reason: String| -> Result<Outcome> {
        env.journal.set_status(id, Status::Failed, &reason)?;
        env.journal.release(id)?;
        Ok(Outcome {
            id,
            status: Status::Failed,
            reason,
        })
    };
    let findings = match prepared.preflight(env, Some(id)).await {
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
    let (plan, constraints) = match prepared.plan(env).await {
        Ok(p) => p,
        Err(e) => return fail(format!("{e:#}")),
    };
    env.journal.set_plan(id, &serde_json::to_string(&plan)?)?;
    run::Run::new(env.clone(), id, prepared, plan, constraints, 1)?
        .drive()
        .await
}

/// Load a journaled rollout's spec and plan again.
async fn reload(env: &Env, id: i64) -> Result<(run::Run, crate::journal::RolloutRow)> {
    let row = env.journal.rollout(id)?;
    let spec = crate::spec::parse(std::path::Path::new(&row.spec_path), &row.spec_text)?;
    let prepared = prepare(env, spec).await?;
    let plan: XPlan = serde_json::from_str(&row.plan).map_err(|_| {
        anyhow!("rollout {id} has no plan in the journal (it failed before planning)")
    })?;
    // The adapter's constraints hold for the journaled plan now too (the adapter may have
    // been upgraded since), or nothing more runs.
    let constraints = prepared.constraints(env).await?;
    plan::recheck(&plan, &constraints).map_err(|e| {
        anyhow!("rollout {id} cannot go on: its plan breaks the adapter's constraints: {e}")
    })?;
    let first_seq = env
        .journal
        .steps(id)?
        .iter()
        .map(|s| s.seq)
        .max()
        .unwrap_or(0)
        + 1;
    Ok((
        run::Run::new(env.clone(), id, prepared, plan, constraints, first_seq)?,
        row,
    ))
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

/// Continue a paused or interrupted rollout at the exact step where it stopped.
pub async fn resume(env: &Env, id: i64, in_flight: &InFlightChoices) -> Result<Outcome> {
    let row = env.journal.rollout(id)?;
    if row.status.is_final() {
        bail!("rollout {id} is {}: nothing to resume", row.status.as_str());
    }
    ensure_not_running(&row)?;
    let (run, _) = reload(env, id).await?;
    env.journal.claim(id)?;
    if let Some(outcome) = run.settle_in_flight(in_flight)? {
        return Ok(outcome);
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
    let row = env.journal.rollout(id)?;
    if row.status.is_final() {
        bail!("rollout {id} is already {}", row.status.as_str());
    }
    if row.status == Status::Running && pid_alive(row.pid) && row.pid != std::process::id() as i64 {
        env.journal.request_abort(id)?;
        return Ok(Status::Running);
    }
    env.journal
        .set_status(id, Status::Aborted, "aborted by the operator")?;
    env.journal.release(id)?;
    Ok(Status::Aborted)
}

/// Undo every updated target of a rollout that is not running.
pub async fn rollback(env: &Env, id: i64) -> Result<Outcome> {
    let row = env.journal.rollout(id)?;
    if row.status == Status::RolledBack {
        bail!("rollout {id} is already rolled back");
    }
    ensure_not_running(&row)?;
    let (run, _) = reload(env, id).await?;
    env.journal.claim(id)?;
    env.journal.acquire(id, &run.target_keys())?;
    run.rollback_all("rolled back by the operator").await
}
