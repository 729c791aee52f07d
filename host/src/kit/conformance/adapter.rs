//! The adapter checks: its description, then, given a spec with a test fleet, every step on
//! every target with faults injected: each idempotent step run a second time as after a
//! crash before its record (nothing may change), each undo run right after its step (twice
//! when declared idempotent) and the step run again, each step within its budget; finally
//! every target rolled back, newest step first, and what was there before must be back.

use super::snapshot::{Filter, Snapshot};
use super::Report;
use crate::engine::duration::step_budget;
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
    let adapter = Arc::new(load_adapter(env, &spec)?.0);
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
    // Every directory any step may write, as it is before the first step.
    let all = run.observed_all();
    let start = Snapshot::take(&all, &run.filter);
    report.note(format!(
        "comparing {} files and folders under {}",
        start.len(),
        if all.is_empty() {
            "no writable directory (only the steps' results are checked)".to_string()
        } else {
            all.iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    // In the order of a rollout; then everything undone in the reverse order, as a
    // rollback after a failure at the very end does.
    let mut order = vec![(Subject::Fleet, StepKind::FleetPrepare)];
    order.extend(
        run.setup
            .targets
            .iter()
            .map(|t| (Subject::Target(t.clone()), StepKind::TargetRollout)),
    );
    order.push((Subject::Fleet, StepKind::FleetSwitch));
    order.push((Subject::Fleet, StepKind::FleetFinalize));
    order.extend(
        run.setup
            .targets
            .iter()
            .map(|t| (Subject::Target(t.clone()), StepKind::TargetFinalize)),
    );
    let mut done = Vec::new();
    for (who, kind) in &order {
        let d = run.subject(who, *kind, report).await;
        let complete = d.complete;
        done.push(d);
        if !complete {
            break;
        }
    }
    let mut undone = 0;
    for d in done.iter().rev() {
        undone += run.roll_back(d, report).await;
    }
    if undone == 0 {
        return Ok(());
    }
    let diff = Snapshot::take(&all, &run.filter).diff(&start);
    if diff.alters() {
        report.fail(format!(
            "rollback ({undone} steps undone, newest first) did not put the targets back: {}",
            diff.describe()
        ));
    } else {
        report.pass(format!(
            "rollback: {undone} steps undone, newest first, put the targets back"
        ));
        if !diff.added.is_empty() {
            report.note(format!(
                "the rollback left new entries (fine for staged files, not for anything that changes behaviour): {}",
                diff.describe_added()
            ));
        }
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
        let call = crate::engine::prepare::fleet_call(
            &self.setup.adapter_label,
            &self.setup.fleet_caps,
            &self.setup.secrets,
            env.sink(None),
            self.spec.limits,
        );
        let ctx = crate::plugin::model::PreflightContext {
            rollout_id: "plugin-test".into(),
            params: self.setup.adapter_params.clone(),
            strategy: "plugin-test".into(),
            dirs: call.dir_grants(),
            waves: vec![self.setup.targets.iter().map(|t| t.id.clone()).collect()],
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
        let dirs: Vec<PathBuf> = steps
            .iter()
            .flat_map(|s| self.caps(who, &s.name).dirs)
            .filter(|d| d.write)
            .map(|d| d.path)
            .collect();
        // A directory inside another is read once, with it.
        outermost(dirs)
    }

    fn call(&self, who: &Subject, step: &Step, outputs: &[Output], attempt: u32) -> StepCall {
        StepCall {
            step: step.name.clone(),
            host: "local".into(),
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
            rerun: step.idempotent,
        }
    }

    /// Every read-write directory of any step for any subject, outermost ones only.
    fn observed_all(&self) -> Vec<PathBuf> {
        let steps: Vec<&Step> = self.setup.desc.steps.iter().collect();
        let mut dirs = self.observed(&Subject::Fleet, &steps);
        for t in &self.setup.targets {
            dirs.extend(self.observed(&Subject::Target(t.clone()), &steps));
        }
        outermost(dirs)
    }

    /// Run the steps of `kind` for `who`, checking each; what was done, to roll back later
    /// (not `complete` when a step failed: the run stops there).
    async fn subject<'a>(&'a self, who: &Subject, kind: StepKind, report: &mut Report) -> Done<'a> {
        let steps: Vec<&Step> = self
            .setup
            .desc
            .steps
            .iter()
            .filter(|s| s.kind == kind)
            .collect();
        let mut done = Done {
            who: match who {
                Subject::Fleet => Subject::Fleet,
                Subject::Target(t) => Subject::Target(t.clone()),
            },
            steps: Vec::new(),
            outputs: Vec::new(),
            complete: true,
        };
        if steps.is_empty() || (kind.scope() == Scope::Target) != matches!(who, Subject::Target(_))
        {
            return done;
        }
        let dirs = self.observed(who, &steps);
        let snap = || Snapshot::take(&dirs, &self.filter);
        let mut outputs: Vec<Output> = Vec::new();
        for step in steps {
            let what = format!("step `{}` on {}", step.name, who.name());
            let first = self.call(who, step, &outputs, 1);
            let started = Instant::now();
            let produced = match self.transport.run(&first).await {
                Ok(o) => o,
                Err(e) => {
                    report.fail(format!(
                        "{what} failed: {}",
                        overran(&e.message, first.budget)
                    ));
                    done.outputs = outputs;
                    done.complete = false;
                    return done;
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
                    Ok(_) => {
                        let d = snap().diff(&after);
                        if d.is_empty() {
                            report.pass(format!("{what}: a second run changes nothing"));
                        } else {
                            report.fail(format!(
                                "{what}: declared idempotent, but running it again (as after a crash) changed the target: {}",
                                d.describe()
                            ));
                        }
                    }
                }
            }
            let mut with_own = outputs.clone();
            with_own.extend(produced.iter().cloned());
            if step.undoable {
                // The next step failing: this one is undone at once (and, when its undo is
                // declared idempotent, undone again as after a crash during the undo); then
                // run again, as a retry would.
                let undo = self.call(who, step, &with_own, 1);
                let mut undone = self.transport.undo(&undo).await;
                if undone.is_ok() && step.undo_idempotent {
                    undone = self.transport.undo(&undo).await;
                }
                match undone {
                    Err(e) => report.fail(format!(
                        "{what}: its undo failed: {}",
                        overran(&e.message, undo.budget)
                    )),
                    Ok(()) => report.pass(format!(
                        "{what}: its undo runs{}",
                        if step.undo_idempotent { ", twice" } else { "" }
                    )),
                }
                match self.transport.run(&self.call(who, step, &outputs, 3)).await {
                    Ok(o) => {
                        with_own = outputs.clone();
                        with_own.extend(o);
                        done.steps.push(step);
                    }
                    Err(e) => {
                        report.fail(format!(
                            "{what}: running it again after its undo failed: {}",
                            e.message
                        ));
                        done.outputs = outputs;
                        done.complete = false;
                        return done;
                    }
                }
            }
            outputs = with_own;
        }
        done.outputs = outputs;
        done
    }

    /// Undo what `d` did, newest first; the number of steps undone.
    async fn roll_back(&self, d: &Done<'_>, report: &mut Report) -> usize {
        let mut undone = 0;
        for step in d.steps.iter().rev() {
            let call = self.call(&d.who, step, &d.outputs, 1);
            match self.transport.undo(&call).await {
                Ok(()) => undone += 1,
                Err(e) => report.fail(format!(
                    "rollback of {}: the undo of step `{}` failed: {}",
                    d.who.name(),
                    step.name,
                    e.message
                )),
            }
        }
        undone
    }
}

/// The steps run for one subject, with the outputs they left.
struct Done<'a> {
    who: Subject,
    steps: Vec<&'a Step>,
    outputs: Vec<Output>,
    /// Every step ran.
    complete: bool,
}

/// `dirs` without those inside another.
fn outermost(mut dirs: Vec<PathBuf>) -> Vec<PathBuf> {
    dirs.sort();
    dirs.dedup();
    let all = dirs.clone();
    dirs.retain(|d| !all.iter().any(|o| o != d && d.starts_with(o)));
    dirs
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
