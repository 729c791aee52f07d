//! The commands behind the CLI: each opens what it needs, prints for a person (or JSON) and
//! returns the process exit code.
//!
//! Exit codes: 0 completed; 1 error; 2 completed with failed targets, rolled back or failed;
//! 3 paused (waiting for approval or the operator); 4 aborted.

use crate::engine::{self, Env, InFlightChoices, Outcome};
use crate::journal::{Journal, Status, Sync, TargetRow, TargetState};
use crate::plugin::model::{Access, Capability, Phase, Scope};
use crate::plugin::{CallEnv, NullSink, Runtime, World};
use crate::redact::Redactor;
use crate::ui::Term;
use anyhow::Result;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Print a line that may hold plugin text: control characters escaped, further lines marked
/// as continuations, so a plugin cannot write to the terminal or fake a line of ours.
macro_rules! show {
    ($($t:tt)*) => {
        println!("{}", crate::plugin::authority::text::quoted(&format!($($t)*)))
    };
}

/// [`show!`] on standard error.
macro_rules! show_err {
    ($($t:tt)*) => {
        eprintln!("{}", crate::plugin::authority::text::quoted(&format!($($t)*)))
    };
}

mod report;
mod status;
pub mod store;
pub use status::status;
pub(crate) use status::{advice, redactor_for, step_json, target_rows};

/// Where the journal and the plugin cache live, and how verbose to be.
pub struct Ctx {
    journal: PathBuf,
    verbose: bool,
    store: PathBuf,
}

impl Ctx {
    /// `journal` defaults to `.cutover/journal.db`.
    /// `store` defaults to [`Store::default_root`](crate::store::Store::default_root).
    pub fn new(journal: Option<PathBuf>, verbose: bool, store: Option<PathBuf>) -> Self {
        Ctx {
            journal: journal.unwrap_or_else(|| PathBuf::from(".cutover/journal.db")),
            verbose,
            store: store.unwrap_or_else(crate::store::Store::default_root),
        }
    }

    /// The plugin store.
    pub fn store(&self) -> Result<crate::store::Store> {
        crate::store::Store::open(&self.store)
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.journal
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .join("cache")
    }

    fn env(&self) -> Result<Env> {
        let redact = Arc::new(Redactor::default());
        let journal = Journal::open(&self.journal, Sync::Full)?;
        journal.set_redactor(redact.clone());
        Ok(Env {
            runtime: Runtime::new(self.cache_dir())?,
            journal: Arc::new(journal),
            ui: Arc::new(Term::new(redact.clone(), self.verbose)),
            redact,
            away: Vec::new(),
            store: Arc::new(self.store()?),
        })
    }

    /// Where the journal is.
    pub fn journal_path(&self) -> &Path {
        &self.journal
    }

    /// Where the plugin store is.
    pub fn store_path(&self) -> &Path {
        &self.store
    }

    pub(crate) fn journal(&self) -> Result<Journal> {
        if !self.journal.exists() {
            anyhow::bail!(
                "no journal at {} (run a rollout first, or pass --journal)",
                self.journal.display()
            );
        }
        Journal::open(&self.journal, Sync::Full)
    }
}

fn code(status: Status) -> i32 {
    match status {
        Status::Completed => 0,
        Status::Paused | Status::Running | Status::Interrupted => 3,
        Status::Aborted => 4,
        _ => 2,
    }
}

/// `cutover plan SPEC`
pub async fn plan(ctx: &Ctx, spec: &Path, json_out: bool) -> Result<i32> {
    let env = ctx.env()?;
    let spec = crate::spec::load(spec)?;
    let mut prepared = engine::prepare(&env, spec).await?;
    // Remote targets are checked by their hosts' agents: every host is reached first.
    prepared.remote = crate::remote::route::connect(&env, &prepared, 0).await?;
    let (plan, _) = prepared.plan(&env).await?;
    let findings = prepared.preflight(&env, None, &plan).await?;
    let mut by_host: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    for t in &prepared.targets {
        by_host
            .entry(t.host.as_str())
            .or_default()
            .push(t.id.as_str());
    }
    let estimate = prepared.estimate(&env, plan.waves).await?;
    let took = engine::duration::durations(
        &plan,
        &prepared.desc,
        &estimate,
        &prepared.spec.timeouts,
        prepared.spec.limits.max_step_timeout,
        prepared.spec.concurrency,
    );
    if json_out {
        let out = json!({
            "strategy": prepared.strategy_label,
            "adapter": prepared.adapter_label,
            "targets": prepared.targets.len(),
            "concurrency": prepared.spec.concurrency,
            "waves": plan.waves,
            "stages": plan.stages,
            "expected_seconds": took.expected.as_secs(),
            "worst_case_seconds": took.worst.as_secs(),
            "unestimated_steps": took.unestimated,
            "approval_gates": took.approvals,
            "estimate": estimate,
            "hosts": by_host,
            "fleet_host": prepared.spec.fleet_host,
            "findings": findings.iter().map(|f| json!({
                "severity": crate::plugin::model::severity_name(f.severity),
                "target": f.target,
                "message": f.message,
            })).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        show!(
            "{} with {} on {} target(s), {} at a time",
            prepared.adapter_label,
            prepared.strategy_label,
            prepared.targets.len(),
            prepared.spec.concurrency
        );
        let steps: Vec<String> = prepared
            .desc
            .steps
            .iter()
            .filter(|s| s.scope() == Scope::Target && s.phase() == Phase::Rollout)
            .map(|s| s.name.clone())
            .collect();
        show!("per target: {}", steps.join(" → "));
        if by_host.keys().any(|h| *h != "local") {
            for (host, ids) in &by_host {
                show!("on {host}: {}", ids.join(", "));
            }
        }
        if prepared
            .desc
            .steps
            .iter()
            .any(|s| s.scope() == Scope::Fleet)
        {
            show!("fleet steps on {}", prepared.spec.fleet_host);
        }
        for (i, s) in plan.stages.iter().enumerate() {
            show!("  {:>3}. {}", i + 1, s.describe());
        }
        let waits = match took.approvals {
            0 => String::new(),
            n => format!(", plus {n} approval gate(s)"),
        };
        if !estimate.steps.is_empty() {
            let left = if took.unestimated.is_empty() {
                String::new()
            } else {
                format!(
                    "; not estimated by the adapter: {}",
                    took.unestimated.join(", ")
                )
            };
            show!(
                "expected: {} (the adapter's estimates{waits}{left})",
                humantime::format_duration(took.expected)
            );
        }
        show!(
            "worst case: {} (every step taking its worst, at most its time budget{waits})",
            humantime::format_duration(took.worst)
        );
        for note in &estimate.notes {
            show!("note: {note}");
        }
        engine::show_findings(env.ui.as_ref(), &findings);
    }
    Ok(0)
}

fn summary(env: &Env, outcome: &Outcome) -> Result<i32> {
    let targets = target_rows(&env.journal, &env.journal.rollout(outcome.id)?)?;
    let count = |s: TargetState| targets.iter().filter(|t| t.state == s).count();
    eprintln!();
    show_err!(
        "rollout {}: {} — {} updated, {} failed, {} rolled back, {} need attention, {} not started",
        outcome.id,
        outcome.status.as_str(),
        count(TargetState::Updated),
        count(TargetState::Failed),
        count(TargetState::RolledBack),
        count(TargetState::NeedsAttention),
        count(TargetState::Pending) + count(TargetState::Running),
    );
    if !outcome.reason.is_empty() {
        show_err!("  {}", env.redact.redact(&outcome.reason));
    }
    for t in targets
        .iter()
        .filter(|t| !matches!(t.state, TargetState::Updated | TargetState::Pending))
    {
        show_err!(
            "  {} {}: {}",
            t.target,
            t.state.as_str(),
            env.redact.redact(&t.detail)
        );
    }
    Ok(code(outcome.status))
}

/// `cutover run SPEC`
pub async fn run(ctx: &Ctx, spec: &Path) -> Result<i32> {
    let env = ctx.env()?;
    let spec = crate::spec::load(spec)?;
    let hooks = engine::notify::Deliverer::start(env.journal.clone());
    let outcome = engine::start(&env, spec).await;
    hooks.finish(std::time::Duration::from_secs(10)).await;
    let outcome = outcome?;
    summary(&env, &outcome)
}

/// `cutover resume ID`
pub async fn resume(ctx: &Ctx, id: i64, in_flight: &[String], away: &[String]) -> Result<i32> {
    let choices = InFlightChoices::parse(in_flight).map_err(anyhow::Error::msg)?;
    let mut env = ctx.env()?;
    env.away = away.to_vec();
    let hooks = engine::notify::Deliverer::start(env.journal.clone());
    let outcome = engine::resume(&env, id, &choices).await;
    hooks.finish(std::time::Duration::from_secs(10)).await;
    let outcome = outcome?;
    summary(&env, &outcome)
}

/// `cutover approve ID`
pub async fn approve(ctx: &Ctx, id: i64) -> Result<i32> {
    let env = ctx.env()?;
    let hooks = engine::notify::Deliverer::start(env.journal.clone());
    let outcome = engine::approve(&env, id).await;
    hooks.finish(std::time::Duration::from_secs(10)).await;
    let outcome = outcome?;
    summary(&env, &outcome)
}

/// `cutover rollback ID`
pub async fn rollback(ctx: &Ctx, id: i64, away: &[String]) -> Result<i32> {
    let mut env = ctx.env()?;
    env.away = away.to_vec();
    let hooks = engine::notify::Deliverer::start(env.journal.clone());
    let outcome = engine::rollback(&env, id).await;
    hooks.finish(std::time::Duration::from_secs(10)).await;
    let outcome = outcome?;
    summary(&env, &outcome)
}

/// `cutover abort ID`
pub fn abort(ctx: &Ctx, id: i64) -> Result<i32> {
    let journal = Arc::new(ctx.journal()?);
    let redact = Arc::new(Redactor::default());
    let env = Env {
        runtime: Runtime::new(ctx.cache_dir())?,
        journal,
        ui: Arc::new(Term::new(redact.clone(), false)),
        redact,
        away: Vec::new(),
        store: Arc::new(ctx.store()?),
    };
    let status = engine::abort(&env, id)?;
    engine::notify::flush(&env.journal, std::time::Duration::from_secs(10));
    match status {
        Status::Running => {
            show!("rollout {id}: abort requested; steps in flight are interrupted and their targets undone (undos run to the end)")
        }
        s => show!("rollout {id}: {}", s.as_str()),
    }
    Ok(0)
}

/// `cutover lease break PATH`
pub fn lease_break(path: &Path) -> Result<i32> {
    show!("{}", engine::lease::break_lease(path)?);
    Ok(0)
}

/// `cutover history`
pub fn history(ctx: &Ctx, json_out: bool) -> Result<i32> {
    let journal = ctx.journal()?;
    let rows = journal.rollouts()?;
    if json_out {
        let out: Vec<_> = rows
            .iter()
            .map(|r| {
                let targets = target_rows(&journal, r).map(|t| t.len()).unwrap_or(0);
                json!({
                    "id": r.id, "name": r.name, "spec": r.spec_path, "status": r.status.as_str(),
                    "reason": r.reason, "created_ms": r.created, "updated_ms": r.updated,
                    "targets": targets,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    show!(
        "{:>5}  {:<24} {:<24} {:>8}  started",
        "id",
        "name",
        "status",
        "targets"
    );
    for r in rows {
        let started = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_millis(r.created as u64),
        );
        let targets = target_rows(&journal, &r)?.len();
        show!(
            "{:>5}  {:<24} {:<24} {:>8}  {started}",
            r.id,
            r.name,
            r.status.as_str(),
            targets
        );
    }
    Ok(0)
}

/// `cutover plugin new KIND NAME`
pub fn plugin_new(
    kind: crate::kit::template::Kind,
    name: &str,
    dir: &Path,
    sdk: Option<&Path>,
) -> Result<i32> {
    let root = crate::kit::template::create(kind, name, dir, sdk)?;
    let file = name.replace('-', "_");
    show!("created {}", root.display());
    show!(
        "  build: (cd {} && cargo build --release --target wasm32-wasip2)",
        root.display()
    );
    let wasm = root.join(format!("target/wasm32-wasip2/release/{file}.wasm"));
    match kind {
        crate::kit::template::Kind::Adapter => show!(
            "  test:  cutover plugin test {} --spec {}",
            wasm.display(),
            root.join("test-fleet.toml").display()
        ),
        crate::kit::template::Kind::Strategy => {
            show!("  test:  cutover plugin test {}", wasm.display())
        }
    }
    Ok(0)
}

/// `cutover plugin test PLUGIN [--spec SPEC]`
pub async fn plugin_test(
    ctx: &Ctx,
    plugin: &Path,
    spec: Option<&Path>,
    ignore: &[String],
) -> Result<i32> {
    crate::kit::test(&ctx.cache_dir(), plugin, spec, ignore, ctx.verbose).await
}

/// `cutover plugin inspect PATH`
pub async fn inspect(ctx: &Ctx, path: &Path, json_out: bool) -> Result<i32> {
    let rt = Runtime::new(ctx.cache_dir())?;
    let (component, digest, _) = rt.component(path, None)?;
    let (world, v) = rt
        .contract_of(&component)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let api = format!("{}.{}.{}", v.0, v.1, v.2);
    // Its signature beside it (`FILE.minisig`; the store keeps one beside each blob), named,
    // not verified here (`plugin verify` does that against keys).
    let signer = std::fs::read_to_string(crate::store::trust::sidecar(path))
        .ok()
        .and_then(|s| crate::store::trust::signer_of(&s).ok());
    let signed = signer.as_ref().map_or("unsigned".to_string(), |k| {
        format!("signed by key {k} (`cutover plugin verify` checks it)")
    });
    let sink = Arc::new(NullSink);
    let budget = std::time::Duration::from_secs(10);
    match world {
        World::Strategy => {
            let s = rt.strategy(path, None, 64 << 20)?;
            let crate::plugin::model::StrategyInfo {
                name,
                version,
                summary,
            } = s.info(CallEnv::bare(&s.label, budget, sink)).await?;
            if json_out {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "world": "strategy", "api": api, "name": name, "version": version,
                        "summary": summary, "sha256": digest, "signer": signer,
                    }))?
                );
            } else {
                show!("{name} {version}: strategy (cutover:plugin@{api})");
                show!("  {summary}");
                show!("  sha256 {digest}, {signed}");
            }
        }
        World::Adapter => {
            let a = rt.adapter(path, None, 64 << 20)?;
            let d = a.describe(CallEnv::bare(&a.label, budget, sink)).await?;
            let shown = |c: &Capability| match c {
                Capability::Dir(r) => format!(
                    "dir {} ({})",
                    r.path,
                    if matches!(r.access, Access::ReadWrite) {
                        "read-write"
                    } else {
                        "read"
                    }
                ),
                Capability::Exec(e) => format!("exec {e}"),
                Capability::Http(h) => format!("http {h}"),
                Capability::Tcp(a) => format!("tcp {a}"),
                Capability::Secret(s) => format!("secret {s}"),
                Capability::Env(e) => format!("env {e}"),
            };
            // The description's requests, then each step's own.
            let mut caps: Vec<String> = d.capabilities.iter().map(shown).collect();
            for s in &d.steps {
                caps.extend(
                    s.capabilities
                        .iter()
                        .map(|c| format!("{} (step {})", shown(c), s.name)),
                );
            }
            if json_out {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({
                        "world": "adapter", "api": api, "name": d.name, "version": d.version,
                        "summary": d.summary, "sha256": digest, "signer": signer, "capabilities": caps,
                        "parameters": d.parameters.iter().map(|p| json!({
                            "name": p.name, "description": p.description, "required": p.required,
                            "per_target": p.per_target, "default": p.default,
                        })).collect::<Vec<_>>(),
                        "steps": d.steps.iter().map(|s| json!({
                            "name": s.name, "description": s.description,
                            "kind": s.kind.name(),
                            "undoable": s.undoable, "idempotent": s.idempotent,
                            "undo_idempotent": s.undo_idempotent,
                            "default_timeout_s": s.default_timeout_s,
                        })).collect::<Vec<_>>(),
                        "leases": d.leases,
                    }))?
                );
            } else {
                show!("{} {}: adapter (cutover:plugin@{api})", d.name, d.version);
                show!("  {}", d.summary);
                show!("  sha256 {digest}, {signed}");
                show!("  steps:");
                for s in &d.steps {
                    let undo = match (s.undoable, s.undo_idempotent) {
                        (true, true) => "undo (idempotent)",
                        (true, false) => "undo",
                        _ => "",
                    };
                    show!(
                        "    {:<18} {:<15} {:<10} {:<17} {:>5}s  {}",
                        s.name,
                        s.kind.name(),
                        if s.idempotent { "idempotent" } else { "" },
                        undo,
                        s.default_timeout_s,
                        s.description
                    );
                }
                if !d.leases.is_empty() {
                    show!("  leases: {}", d.leases.join(", "));
                }
                show!("  parameters:");
                for p in &d.parameters {
                    show!(
                        "    {:<14} {}{}{}",
                        p.name,
                        if p.required { "required; " } else { "" },
                        if p.per_target { "per target; " } else { "" },
                        p.description
                    );
                }
                show!("  requests:");
                for c in caps {
                    show!("    {c}");
                }
            }
        }
    }
    Ok(0)
}
