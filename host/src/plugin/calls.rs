//! Calls into a loaded plugin: a fresh store and instance per call within its budget, on
//! whichever contract version the plugin was built for, faults classified.

use super::model as m;
use super::runtime::{CallEnv, CallState, FaultKind, PluginFault, Runtime};
use super::since_v1_0_0 as v1_0;
use super::since_v1_1_0 as v1_1;
use super::since_v1_2_0 as v1_2;
use super::since_v1_3_0 as v1_3;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::Store;

pub(super) fn link_error(path: &Path, e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{} imports something this host does not provide: {e}",
        path.display()
    )
}

pub(super) fn file_label(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into())
}

pub(super) fn call_name(env: &CallEnv) -> String {
    match (&env.step, &env.target) {
        (Some(s), Some(t)) => format!("step `{s}` on target `{t}`"),
        (Some(s), None) => format!("fleet step `{s}`"),
        _ => "call".to_string(),
    }
}

fn classify(plugin: &str, call: String, e: wasmtime::Error) -> PluginFault {
    let text = format!("{e:#}");
    let kind = if text.contains("forcing trap when growing memory")
        || text.contains("forcing a memory growth failure to be a trap")
        || text.contains("memory") && text.contains("limit")
    {
        FaultKind::MemoryLimit
    } else if e.downcast_ref::<wasmtime::Trap>().is_some() {
        FaultKind::Trap
    } else {
        FaultKind::Setup
    };
    PluginFault {
        plugin: plugin.to_string(),
        call,
        kind,
        detail: text.lines().next().unwrap_or_default().to_string() + &root_cause(&e),
    }
}

fn root_cause(e: &wasmtime::Error) -> String {
    let root = e.root_cause().to_string();
    if format!("{e}") == root {
        String::new()
    } else {
        format!(" ({root})")
    }
}

/// Run `body` with a fresh store and instance within the call's budget.
macro_rules! call_plugin {
    ($self:ident, $env:expr, $what:expr, |$inst:ident, $store:ident| $body:expr) => {{
        let env: Arc<CallEnv> = $env;
        let budget = env.budget;
        let what: String = $what;
        let mut $store = $self.rt.store(env.clone(), $self.memory, false)?;
        let fut = async {
            let $inst = &$self.pre;
            let $store = &mut $store;
            $body.await
        };
        match tokio::time::timeout(budget, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(classify(&env.plugin, what, e)),
            Err(_) => Err(PluginFault {
                plugin: env.plugin.clone(),
                call: what,
                kind: FaultKind::Timeout,
                detail: format!("no answer within {budget:?}"),
            }),
        }
    }};
}

/// A strategy, as prepared for the contract version it was built for.
pub(super) enum StrategyPre {
    V1_0(v1_0::Strategy),
    V1_1(v1_1::Strategy),
    V1_2(v1_2::Strategy),
    V1_3(v1_3::Strategy),
}

/// An adapter, as prepared for the contract version it was built for.
#[derive(Clone)]
pub(super) enum AdapterPre {
    V1_0(v1_0::Adapter),
    V1_1(v1_1::Adapter),
    V1_2(v1_2::Adapter),
    V1_3(v1_3::Adapter),
}

/// The same call on whichever contract version a plugin was prepared for.
macro_rules! each_version {
    ($enum:ident, $pre:expr, |$p:ident| $call:expr) => {
        async {
            match $pre {
                $enum::V1_0($p) => $call.await,
                $enum::V1_1($p) => $call.await,
                $enum::V1_2($p) => $call.await,
                $enum::V1_3($p) => $call.await,
            }
        }
    };
}

/// A call contract 1.2 added, on a plugin built for 1.2 or later (checked before).
macro_rules! since_v1_2 {
    ($enum:ident, $pre:expr, |$p:ident| $call:expr) => {
        async {
            match $pre {
                $enum::V1_2($p) => $call.await,
                $enum::V1_3($p) => $call.await,
                _ => unreachable!("checked: a plugin of contract 1.2 or later"),
            }
        }
    };
}

impl AdapterPre {
    async fn run_step(
        &self,
        s: &mut Store<CallState>,
        step: &str,
        t: Option<&m::Target>,
        c: &m::StepContext,
    ) -> wasmtime::Result<Result<Vec<m::Output>, m::StepError>> {
        each_version!(AdapterPre, self, |p| p.run_step(s, step, t, c)).await
    }

    async fn undo_step(
        &self,
        s: &mut Store<CallState>,
        step: &str,
        t: Option<&m::Target>,
        c: &m::StepContext,
    ) -> wasmtime::Result<Result<(), m::StepError>> {
        each_version!(AdapterPre, self, |p| p.undo_step(s, step, t, c)).await
    }
}

/// A loaded strategy plugin.
pub struct StrategyPlugin {
    pub(super) rt: Arc<Runtime>,
    /// How it was loaded: from the precompiled cache or compiled (shown with `-v`).
    pub load_note: String,
    pub(super) pre: StrategyPre,
    /// Shown in errors until `info` tells the real name.
    pub label: String,
    pub digest: String,
    pub(super) memory: usize,
}

impl StrategyPlugin {
    /// Name, version, summary.
    pub async fn info(&self, env: Arc<CallEnv>) -> Result<m::StrategyInfo, PluginFault> {
        call_plugin!(self, env, "info".into(), |p, s| each_version!(
            StrategyPre,
            p,
            |p| p.info(s)
        ))
    }

    /// Ask for a plan.
    pub async fn plan(
        &self,
        env: Arc<CallEnv>,
        targets: &[m::Target],
        constraints: &[m::Constraint],
        params: &[m::Pair],
    ) -> Result<Result<m::Plan, m::PluginError>, PluginFault> {
        call_plugin!(self, env, "plan".into(), |p, s| each_version!(
            StrategyPre,
            p,
            |p| p.plan(s, targets, constraints, params)
        ))
    }

    /// Whether targets failing in wave `wave_index` stay as they are instead of being undone
    /// (contract 1.2; always false for older strategies).
    pub async fn keeps_failed(
        &self,
        env: Arc<CallEnv>,
        wave_index: u32,
        params: &[m::Pair],
    ) -> Result<bool, PluginFault> {
        if !matches!(self.pre, StrategyPre::V1_2(_) | StrategyPre::V1_3(_)) {
            return Ok(false);
        }
        call_plugin!(self, env, "keeps-failed".into(), |p, s| since_v1_2!(
            StrategyPre,
            p,
            |p| p.keeps_failed(s, wave_index, params)
        ))
    }

    /// Ask what to do after a wave.
    pub async fn decide(
        &self,
        env: Arc<CallEnv>,
        report: &m::WaveReport,
        params: &[m::Pair],
    ) -> Result<m::Decision, PluginFault> {
        call_plugin!(self, env, "decide".into(), |p, s| each_version!(
            StrategyPre,
            p,
            |p| p.decide(s, report, params)
        ))
    }
}

/// A step or its undo.
type StepFn<T> = for<'a> fn(
    &'a AdapterPre,
    &'a mut Store<CallState>,
    &'a str,
    Option<&'a m::Target>,
    &'a m::StepContext,
) -> Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send + 'a>>;

/// A loaded adapter plugin.
pub struct AdapterPlugin {
    pub(super) rt: Arc<Runtime>,
    /// How it was loaded: from the precompiled cache or compiled (shown with `-v`).
    pub load_note: String,
    pub(super) pre: AdapterPre,
    pub label: String,
    pub digest: String,
    pub(super) memory: usize,
}

impl AdapterPlugin {
    /// Create a store and instantiate without calling anything (for `cutover bench`).
    pub async fn instantiate_only(&self, env: Arc<CallEnv>) -> Result<(), PluginFault> {
        call_plugin!(self, env, "instantiate".into(), |p, s| each_version!(
            AdapterPre,
            p,
            |p| p.instantiate(s)
        ))
    }

    /// Create a store only (for `cutover bench`).
    pub fn store_only(&self, env: Arc<CallEnv>) -> Result<(), PluginFault> {
        self.rt.store(env, self.memory, false).map(|_| ())
    }

    /// What the adapter is and needs, checked against the contract's rules: an
    /// inconsistent description is an [`FaultKind::Invalid`] fault naming every problem.
    pub async fn describe(&self, env: Arc<CallEnv>) -> Result<m::Description, PluginFault> {
        let plugin = env.plugin.clone();
        let d = call_plugin!(self, env, "describe".into(), |p, s| each_version!(
            AdapterPre,
            p,
            |p| p.describe(s)
        ))?;
        let problems = super::validate::description(&d);
        if problems.is_empty() {
            Ok(d)
        } else {
            Err(PluginFault {
                plugin,
                call: "describe".into(),
                kind: FaultKind::Invalid,
                detail: problems.join("; "),
            })
        }
    }

    /// Expected step durations and plan notes (contract 1.2; empty for older adapters).
    pub async fn estimate(
        &self,
        env: Arc<CallEnv>,
        targets: &[m::Target],
        params: &[m::Pair],
        waves: u32,
    ) -> Result<Result<m::Estimate, m::PluginError>, PluginFault> {
        if !matches!(self.pre, AdapterPre::V1_2(_) | AdapterPre::V1_3(_)) {
            return Ok(Ok(m::Estimate::default()));
        }
        call_plugin!(self, env, "estimate".into(), |p, s| since_v1_2!(
            AdapterPre,
            p,
            |p| p.estimate(s, targets, params, waves)
        ))
    }

    /// Check the change before anything runs.
    pub async fn preflight(
        &self,
        env: Arc<CallEnv>,
        targets: &[m::Target],
        ctx: &m::PreflightContext,
    ) -> Result<Result<Vec<m::Finding>, m::PluginError>, PluginFault> {
        call_plugin!(self, env, "preflight".into(), |p, s| each_version!(
            AdapterPre,
            p,
            |p| p.preflight(s, targets, ctx)
        ))
    }

    /// Topology rules.
    pub async fn constraints(
        &self,
        env: Arc<CallEnv>,
        targets: &[m::Target],
        params: &[m::Pair],
    ) -> Result<Result<Vec<m::Constraint>, m::PluginError>, PluginFault> {
        call_plugin!(self, env, "constraints".into(), |p, s| each_version!(
            AdapterPre,
            p,
            |p| p.constraints(s, targets, params)
        ))
    }

    /// Run one step.
    pub async fn run_step(
        &self,
        env: Arc<CallEnv>,
        step: &str,
        target: Option<&m::Target>,
        ctx: &m::StepContext,
    ) -> Result<Result<Vec<m::Output>, m::StepError>, PluginFault> {
        let what = call_name(&env);
        self.step_call(env, what, step, target, ctx, |p, s, st, t, c| {
            Box::pin(p.run_step(s, st, t, c))
        })
        .await
    }

    /// Undo one step.
    pub async fn undo_step(
        &self,
        env: Arc<CallEnv>,
        step: &str,
        target: Option<&m::Target>,
        ctx: &m::StepContext,
    ) -> Result<Result<(), m::StepError>, PluginFault> {
        let what = format!("undo of {}", call_name(&env));
        self.step_call(env, what, step, target, ctx, |p, s, st, t, c| {
            Box::pin(p.undo_step(s, st, t, c))
        })
        .await
    }

    /// A step call (`call` runs it or its undo): on a thread of its own when it has
    /// directory grants ([`Self::on_own_thread`]), here otherwise.
    async fn step_call<T: Send + 'static>(
        &self,
        env: Arc<CallEnv>,
        what: String,
        step: &str,
        target: Option<&m::Target>,
        ctx: &m::StepContext,
        call: StepFn<T>,
    ) -> Result<T, PluginFault> {
        if env.caps.dirs.is_empty() {
            return call_plugin!(self, env, what, |p, s| call(p, s, step, target, ctx));
        }
        let (step, target, ctx) = (step.to_string(), target.cloned(), ctx.clone());
        self.on_own_thread(env, what, move |p, mut s| {
            Box::pin(async move { call(&p, &mut s, &step, target.as_ref(), &ctx).await })
        })
        .await
    }

    /// Run a call that has directory grants on a thread of its own, where the guest's file
    /// operations block that thread instead of each being handed to the blocking pool and
    /// back (a rewrite of thousands of small files is otherwise dominated by the hand-offs).
    /// Its budget is enforced from here: a guest blocked in a read (on a FIFO, say) cannot
    /// hold the run, and dropping the call (an abort) cancels it at its next epoch tick.
    async fn on_own_thread<T: Send + 'static>(
        &self,
        env: Arc<CallEnv>,
        what: String,
        call: impl FnOnce(
                AdapterPre,
                Store<CallState>,
            ) -> Pin<Box<dyn Future<Output = wasmtime::Result<T>> + Send>>
            + Send
            + 'static,
    ) -> Result<T, PluginFault> {
        let budget = env.budget;
        let store = self.rt.store(env.clone(), self.memory, true)?;
        let pre = self.pre.clone();
        let (keep, cancelled) = tokio::sync::oneshot::channel::<()>();
        let runtime = tokio::runtime::Handle::current();
        let work = tokio::task::spawn_blocking(move || {
            runtime.block_on(async move {
                tokio::select! {
                    r = tokio::time::timeout(budget, call(pre, store)) => r.ok(),
                    _ = cancelled => None,
                }
            })
        });
        let timeout = || PluginFault {
            plugin: env.plugin.clone(),
            call: what.clone(),
            kind: FaultKind::Timeout,
            detail: format!("no answer within {budget:?}"),
        };
        let answer = tokio::time::timeout(budget + Duration::from_secs(2), work).await;
        drop(keep);
        match answer {
            Ok(Ok(Some(Ok(v)))) => Ok(v),
            Ok(Ok(Some(Err(e)))) => Err(classify(&env.plugin, what, e)),
            Ok(Ok(None)) | Err(_) => Err(timeout()),
            Ok(Err(e)) => Err(PluginFault {
                plugin: env.plugin.clone(),
                call: what,
                kind: FaultKind::Trap,
                detail: format!("the call's thread failed: {e}"),
            }),
        }
    }
}
