//! The adapter checks: its description, then, given a spec with a test fleet, every step on
//! every target with faults injected: each idempotent step run a second time as after a
//! crash before its record (nothing may change), each undo run right after its step (the
//! target must be as before), each step within its budget; finally every target rolled back.

use super::snapshot::{Filter, Snapshot};
use super::Report;
use crate::engine::plan::step_budget;
use crate::engine::prepare::{load_adapter, resolve_adapter, AdapterSetup};
use crate::engine::transport::{Local, StepCall, Transport};
use crate::engine::Env;
use crate::plugin::authority::Effective;
use crate::plugin::model::{Output, Scope, Step, StepContext, StepKind, Target};
use crate::plugin::{CallEnv, NullSink};
use crate::spec::Spec;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Check the adapter in `plugin`; with a spec, run its steps on the spec's targets.
pub async fn adapter(
    env: &Env,
    plugin: &Path,
    spec: Option<Spec>,
    ignore: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
    let loaded = env.runtime.adapter(plugin, None, 256 << 20)?;
    report.pass(format!("loads: {}", loaded.load_note));
    let desc = match loaded
        .describe(CallEnv::bare(
            &loaded.label,
            Duration::from_secs(10),
            Arc::new(NullSink),
        ))
        .await
    {
        Ok(d) => d,
        Err(e) => {
            report.fail(format!("describe: {e}"));
            return Ok(());
        }
    };
    report.pass(format!(
        "describe: {}@{}, {} steps, {} parameters, {} lease templates",
        desc.name,
        desc.version,
        desc.steps.len(),
        desc.parameters.len(),
        desc.leases.len()
    ));
    let Some(mut spec) = spec else {
        report.note("no --spec: steps were not run (give a spec with a test fleet to run them)");
        return Ok(());
    };
    spec.adapter.path = plugin.to_path_buf();
    spec.adapter.sha256 = None;
    let adapter = Arc::new(load_adapter(env, &spec)?);
    let setup = match resolve_adapter(env, &spec, &adapter).await {
        Ok(s) => s,
        Err(e) => {
            report.fail(format!("{e:#}"));
            return Ok(());
        }
    };
    let run = Runner {
        transport: Local {
            adapter: adapter.clone(),
            label: setup.adapter_label.clone(),
            sink: env.sink(None),
            secrets: setup.secrets.clone(),
            limits: spec.limits,
        },
        setup,
        spec,
        filter: Filter::new(ignore),
    };
    run.preflight(env, report).await;
    if report.failures() > 0 {
        return Ok(());
    }
    let fleet = Subject::Fleet;
    run.subject(&fleet, StepKind::FleetPrepare, report).await;
    for t in &run.setup.targets {
        run.subject(&Subject::Target(t.clone()), StepKind::TargetRollout, report)
            .await;
    }
    run.subject(&fleet, StepKind::FleetSwitch, report).await;
    run.subject(&fleet, StepKind::FleetFinalize, report).await;
    for t in &run.setup.targets {
        run.subject(
            &Subject::Target(t.clone()),
            StepKind::TargetFinalize,
            report,
        )
        .await;
    }
    Ok(())
}

/// Whom a sequence of steps is for.
enum Subject {
    Fleet,
    Target(Target),
}

impl Subject {
    fn id(&self) -> &str {
        match self {
            Subject::Fleet => "",
            Subject::Target(t) => &t.id,
        }
    }

    fn name(&self) -> String {
        match self {
            Subject::Fleet => "the fleet".into(),
            Subject::Target(t) => format!("target `{}`", t.id),
        }
    }
}

struct Runner {
    transport: Local,
    setup: AdapterSetup,
    spec: Spec,
    filter: Filter,
}

impl Runner {
    async fn preflight(&self, env: &Env, report: &mut Report) {
        let call = Arc::new(CallEnv {
            plugin: self.setup.adapter_label.clone(),
            step: None,
            target: None,
            caps: self.setup.fleet_caps.clone(),
            secrets: self.setup.fleet_caps.secret_values(&self.setup.secrets),
            sink: env.sink(None),
            budget: self.spec.limits.call_timeout,
            limits: self.spec.limits,
        });
        let ctx = crate::plugin::model::PreflightContext {
            rollout_id: "plugin-test".into(),
            params: self.setup.adapter_params.clone(),
            strategy: "plugin-test".into(),
            dirs: call.dir_grants(),
        };
        match self
            .transport
            .adapter
            .preflight(call, &self.setup.targets, &ctx)
            .await
        {
            Ok(Ok(findings)) => {
                let blockers: Vec<String> = findings
                    .iter()
                    .filter(|f| f.severity == crate::plugin::model::Severity::Blocker)
                    .map(|f| match &f.target {
                        Some(t) => format!("{t}: {}", f.message),
                        None => f.message.clone(),
                    })
                    .collect();
                if blockers.is_empty() {
                    report.pass(format!(
                        "preflight: {} findings, no blocker",
                        findings.len()
                    ));
                } else {
                    report.fail(format!(
                        "preflight blocks the test fleet: {}",
                        blockers.join("; ")
                    ));
                }
            }
            Ok(Err(e)) => report.fail(format!("preflight refused: {}", e.message)),
            Err(f) => report.fail(format!("preflight: {f}")),
        }
    }

    fn caps(&self, who: &Subject, step: &str) -> Effective {
        if let Some(c) = self
            .setup
            .step_caps
            .get(&(who.id().to_string(), step.to_string()))
        {
            return c.clone();
        }
        match who {
            Subject::Fleet => self.setup.fleet_caps.clone(),
            Subject::Target(t) => self.setup.target_caps[&t.id].clone(),
        }
    }

    /// The read-write directories any of `steps` may change for `who`.
    fn observed(&self, who: &Subject, steps: &[&Step]) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = steps
            .iter()
            .flat_map(|s| self.caps(who, &s.name).dirs)
            .filter(|d| d.write)
            .map(|d| d.path)
            .collect();
        dirs.sort();
        dirs.dedup();
        // A directory inside another is read once, with it.
        let all = dirs.clone();
        dirs.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
        dirs
    }

    fn call(&self, who: &Subject, step: &Step, outputs: &[Output], attempt: u32) -> StepCall {
        StepCall {
            step: step.name.clone(),
            target: match who {
                Subject::Fleet => None,
                Subject::Target(t) => Some(t.clone()),
            },
            ctx: StepContext {
                rollout_id: "plugin-test".into(),
                params: self.setup.adapter_params.clone(),
                outputs: outputs.to_vec(),
                attempt,
                fleet: match who {
                    Subject::Fleet => self.setup.targets.clone(),
                    Subject::Target(_) => Vec::new(),
                },
                dirs: Vec::new(),
            },
            caps: self.caps(who, &step.name),
            budget: step_budget(
                &self.setup.desc,
                &self.spec.timeouts,
                self.spec.limits.max_step_timeout,
                &step.name,
            ),
        }
    }

    /// Run the steps of `kind` for `who`, checking each, then undo them newest first.
    async fn subject(&self, who: &Subject, kind: StepKind, report: &mut Report) {
        let steps: Vec<&Step> = self
            .setup
            .desc
            .steps
            .iter()
            .filter(|s| s.kind == kind)
            .collect();
        if steps.is_empty() || (kind.scope() == Scope::Target) != matches!(who, Subject::Target(_))
        {
            return;
        }
        let dirs = self.observed(who, &steps);
        let snap = || Snapshot::take(&dirs, &self.filter);
        if dirs.is_empty() {
            report.note(format!(
                "{} ({}): the steps may write no directory, so only their results are checked",
                who.name(),
                kind.name()
            ));
        } else {
            report.note(format!(
                "{} ({}): comparing {} files and folders under {}",
                who.name(),
                kind.name(),
                snap().len(),
                dirs.iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let mut outputs: Vec<Output> = Vec::new();
        let mut done: Vec<(&Step, Vec<Output>)> = Vec::new();
        for step in steps {
            let what = format!("step `{}` on {}", step.name, who.name());
            let before = snap();
            let first = self.call(who, step, &outputs, 1);
            let started = Instant::now();
            let produced = match self.transport.run(&first).await {
                Ok(o) => o,
                Err(e) => {
                    report.fail(format!(
                        "{what} failed: {}",
                        overran(&e.message, first.budget)
                    ));
                    break;
                }
            };
            let took = started.elapsed();
            let after = snap();
            report.pass(format!(
                "{what}: done in {:.1} s of its {} s budget",
                took.as_secs_f64(),
                first.budget.as_secs()
            ));
            if took > first.budget.mul_f64(0.8) {
                report.note(format!("{what} used over 80% of its budget"));
            }
            if step.idempotent {
                // A crash after the step ran but before its end was journaled: the host runs
                // it again with what it knew before.
                let again = self.call(who, step, &outputs, 2);
                match self.transport.run(&again).await {
                    Err(e) => report.fail(format!(
                        "{what}: declared idempotent, but running it again (as after a crash) failed: {}",
                        overran(&e.message, again.budget)
                    )),
                    Ok(_) => match snap().diff(&after) {
                        Some(d) => report.fail(format!(
                            "{what}: declared idempotent, but running it again (as after a crash) changed the target: {d}"
                        )),
                        None => report.pass(format!("{what}: a second run changes nothing")),
                    },
                }
            }
            let mut with_own = outputs.clone();
            with_own.extend(produced.iter().cloned());
            if step.undoable {
                // The next step failing: this one is undone at once.
                let undo = self.call(who, step, &with_own, 1);
                match self.transport.undo(&undo).await {
                    Err(e) => report.fail(format!(
                        "{what}: its undo failed: {}",
                        overran(&e.message, undo.budget)
                    )),
                    Ok(()) => match snap().diff(&before) {
                        Some(d) => report
                            .fail(format!("{what}: its undo did not put the target back: {d}")),
                        None => report.pass(format!("{what}: its undo puts the target back")),
                    },
                }
                // On with the procedure: the step again, as after a retry.
                let redo = self.call(who, step, &outputs, 3);
                match self.transport.run(&redo).await {
                    Ok(o) => {
                        with_own = outputs.clone();
                        with_own.extend(o.iter().cloned());
                        done.push((step, o));
                    }
                    Err(e) => {
                        report.fail(format!(
                            "{what}: running it again after its undo failed: {}",
                            e.message
                        ));
                        break;
                    }
                }
            }
            outputs = with_own;
        }
        // Leave the target as it was: every undoable step undone, newest first.
        let mut undone = 0;
        for (step, _) in done.iter().rev() {
            let call = self.call(who, step, &outputs, 1);
            match self.transport.undo(&call).await {
                Ok(()) => undone += 1,
                Err(e) => report.fail(format!(
                    "rollback of {}: the undo of step `{}` failed: {}",
                    who.name(),
                    step.name,
                    e.message
                )),
            }
        }
        if undone > 0 {
            report.pass(format!(
                "rollback of {}: {undone} steps undone, newest first",
                who.name()
            ));
        }
    }
}

/// A fault message, saying "overran its budget" when the sandbox stopped it for time.
fn overran(message: &str, budget: Duration) -> String {
    if message.contains("ran out of time") {
        format!(
            "it overran its budget of {} s ({message})",
            budget.as_secs()
        )
    } else {
        message.to_string()
    }
}
