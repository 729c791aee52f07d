//! Loading plugins and calling them: one engine, a cache of precompiled components, one
//! `InstancePre` per plugin, a fresh `Store` per call with a memory cap and a time budget.

use super::authority::{self, Effective};
use super::cache::{sha256_hex, Cache};
use super::model::{self as m, Level};
use super::since_v1_0_0 as v1_0;
use super::since_v1_1_0 as v1_1;
use crate::spec::Limits;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, ResourceTable};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

/// Most plugin instances alive at once (bounds a wave's concurrency).
pub const MAX_LIVE_INSTANCES: u32 = 1000;
/// Largest linear memory any plugin may have, whatever the spec says.
pub const MAX_MEMORY: usize = 1 << 30;

/// Where log lines and progress of plugin calls go.
pub trait Sink: Send + Sync {
    fn log(&self, call: &CallEnv, level: Level, message: &str);
    fn progress(&self, call: &CallEnv, message: &str, fraction: Option<f32>);
}

/// A sink that drops everything.
pub struct NullSink;

impl Sink for NullSink {
    fn log(&self, _: &CallEnv, _: Level, _: &str) {}
    fn progress(&self, _: &CallEnv, _: &str, _: Option<f32>) {}
}

/// Who is calling and what the call may do.
pub struct CallEnv {
    /// `name@version` of the plugin.
    pub plugin: String,
    pub step: Option<String>,
    pub target: Option<String>,
    pub caps: Effective,
    /// Values of the granted secrets.
    pub secrets: BTreeMap<String, String>,
    pub sink: Arc<dyn Sink>,
    /// Wall-clock budget of the call.
    pub budget: Duration,
    /// The spec's limits (output, log lines).
    pub limits: Limits,
}

impl CallEnv {
    /// The directories granted to the call, as the plugin is told.
    pub fn dir_grants(&self) -> Vec<m::DirGrant> {
        self.caps
            .dirs
            .iter()
            .map(|d| m::DirGrant {
                path: d.path.display().to_string(),
                access: if d.write {
                    m::Access::ReadWrite
                } else {
                    m::Access::Read
                },
            })
            .collect()
    }

    /// A call with no capabilities (strategies, inspection).
    pub fn bare(plugin: &str, budget: Duration, sink: Arc<dyn Sink>) -> Arc<Self> {
        Arc::new(CallEnv {
            plugin: plugin.to_string(),
            step: None,
            target: None,
            caps: Effective::default(),
            secrets: BTreeMap::new(),
            sink,
            budget,
            limits: Limits::default(),
        })
    }
}

/// The data of one `Store`: WASI state restricted to the call's grants.
pub struct CallState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    pub(crate) env: Arc<CallEnv>,
    /// Log lines written by this call so far.
    pub(crate) logs: usize,
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Why a plugin call failed on the host side (a fault, not an error the plugin meant).
#[derive(Debug, thiserror::Error)]
#[error("plugin {plugin}: {call}: {kind}: {detail}")]
pub struct PluginFault {
    pub plugin: String,
    pub call: String,
    pub kind: FaultKind,
    pub detail: String,
}

/// The kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// The plugin trapped (panic, unreachable, bad memory access).
    Trap,
    /// It tried to grow its memory past the cap.
    MemoryLimit,
    /// It ran past its time budget.
    Timeout,
    /// It could not be instantiated or a capability could not be set up.
    Setup,
    /// It answered something the contract does not allow (e.g. duplicate step names).
    Invalid,
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultKind::Trap => "trapped",
            FaultKind::MemoryLimit => "hit its memory limit",
            FaultKind::Timeout => "ran out of time",
            FaultKind::Setup => "could not start",
            FaultKind::Invalid => "broke the plugin contract",
        })
    }
}

/// The plugin runtime: engine, linkers and cache.
pub struct Runtime {
    engine: Engine,
    cache: Cache,
    v1_0: v1_0::Linkers,
    v1_1: v1_1::Linkers,
}

/// Which world a component implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum World {
    Strategy,
    Adapter,
}

impl Runtime {
    /// A runtime caching precompiled plugins in `cache_dir`.
    pub fn new(cache_dir: PathBuf) -> Result<Arc<Self>> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_LIVE_INSTANCES)
            .total_core_instances(MAX_LIVE_INSTANCES * 4)
            .total_memories(MAX_LIVE_INSTANCES * 2)
            .total_tables(MAX_LIVE_INSTANCES * 4)
            .total_stacks(MAX_LIVE_INSTANCES)
            .max_memory_size(MAX_MEMORY)
            // Reset small memories and stacks in place rather than returning their pages to
            // the kernel after every call (which costs a TLB shootdown and page faults on
            // the next call): plugins built with a small stack fit entirely.
            .linear_memory_keep_resident(128 << 10)
            .table_keep_resident(16 << 10)
            .async_stack_keep_resident(128 << 10);
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .memory_reservation(MAX_MEMORY as u64)
            .memory_guard_size(32 << 20)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine =
            Engine::new(&config).map_err(|e| anyhow::anyhow!("starting the plugin engine: {e}"))?;
        let ticker = engine.weak();
        std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(move || {
                while let Some(engine) = ticker.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(Duration::from_millis(10));
                }
            })?;
        let v1_0 = v1_0::Linkers::new(&engine)?;
        let v1_1 = v1_1::Linkers::new(&engine)?;
        Ok(Arc::new(Runtime {
            cache: Cache::new(cache_dir, &engine),
            engine,
            v1_0,
            v1_1,
        }))
    }

    /// Read a plugin file and check its sha256 pin.
    pub fn read(path: &Path, pin: Option<&str>) -> Result<(Vec<u8>, String)> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read plugin {}", path.display()))?;
        let digest = sha256_hex(&bytes);
        if let Some(pin) = pin {
            if pin != digest {
                bail!(
                    "plugin {} does not match its pin: sha256 is {digest}, the spec pins {pin}",
                    path.display()
                );
            }
        }
        Ok((bytes, digest))
    }

    /// Compile (or fetch from the cache) the component in `path`.
    pub fn component(&self, path: &Path, pin: Option<&str>) -> Result<(Component, String, bool)> {
        let (bytes, digest) = Self::read(path, pin)?;
        let (c, hit) = self
            .cache
            .load(&self.engine, &digest, &bytes)
            .with_context(|| format!("{} is not a valid WebAssembly component", path.display()))?;
        Ok((c, digest, hit))
    }

    /// Which world a component implements and the contract version it was built for,
    /// read from its export (`cutover:plugin/adapter@1.1.0`); an error says why this host
    /// cannot load it.
    pub fn contract_of(&self, component: &Component) -> Result<(World, Version), String> {
        let ty = component.component_type();
        let names: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        contract(&names)
    }

    /// The component in `path`, checked to implement `want`, and a line saying whether it was
    /// deserialized from the cache or compiled.
    fn load(
        &self,
        path: &Path,
        pin: Option<&str>,
        want: World,
    ) -> Result<(Component, Version, String, String)> {
        let (component, digest, hit) = self.component(path, pin)?;
        let (world, version) = self
            .contract_of(&component)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if world != want {
            bail!(
                "{} is {}, not {}",
                path.display(),
                world.article(),
                want.article()
            );
        }
        let how = if hit {
            "deserialized from the precompiled cache"
        } else {
            "compiled and added to the precompiled cache"
        };
        let note = format!("{} (sha256 {}): {how}", path.display(), &digest[..12]);
        Ok((component, version, digest, note))
    }

    /// Load a strategy plugin.
    pub fn strategy(
        self: &Arc<Self>,
        path: &Path,
        pin: Option<&str>,
        memory: usize,
    ) -> Result<StrategyPlugin> {
        let (component, version, digest, load_note) = self.load(path, pin, World::Strategy)?;
        let pre = match version {
            (1, 0, _) => self.v1_0.strategy(&component).map(StrategyPre::V1_0),
            _ => self.v1_1.strategy(&component).map(StrategyPre::V1_1),
        }
        .map_err(|e| link_error(path, e))?;
        Ok(StrategyPlugin {
            rt: self.clone(),
            pre,
            label: file_label(path),
            digest,
            load_note,
            memory: memory.min(MAX_MEMORY),
        })
    }

    /// Load an adapter plugin.
    pub fn adapter(
        self: &Arc<Self>,
        path: &Path,
        pin: Option<&str>,
        memory: usize,
    ) -> Result<AdapterPlugin> {
        let (component, version, digest, load_note) = self.load(path, pin, World::Adapter)?;
        let pre = match version {
            (1, 0, _) => self.v1_0.adapter(&component).map(AdapterPre::V1_0),
            _ => self.v1_1.adapter(&component).map(AdapterPre::V1_1),
        }
        .map_err(|e| link_error(path, e))?;
        Ok(AdapterPlugin {
            rt: self.clone(),
            pre,
            label: file_label(path),
            digest,
            load_note,
            memory: memory.min(MAX_MEMORY),
        })
    }

    /// A store for one call. With `own_thread`, the call runs on a thread of its own (see
    /// [`AdapterPlugin::on_own_thread`]) and its file operations may block it; otherwise they
    /// go to the blocking pool, so that a read blocked on a FIFO cannot block the task that
    /// enforces the call's budget.
    fn store(
        &self,
        env: Arc<CallEnv>,
        memory: usize,
        own_thread: bool,
    ) -> Result<Store<CallState>, PluginFault> {
        let mut b = WasiCtxBuilder::new();
        // No WASI sockets: network access goes through the contract's `http` and `tcp`,
        // which the authority decides per granted host.
        b.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        // Before the preopens, which take it.
        b.allow_blocking_current_thread(own_thread);
        for cap in &env.caps.dirs {
            let perms = if cap.write {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            let guest = cap.path.display().to_string();
            let setup = |detail: String| PluginFault {
                plugin: env.plugin.clone(),
                call: call_name(&env),
                kind: FaultKind::Setup,
                detail,
            };
            // Opened by the authority without following links; WASI gets that very
            // directory through its descriptor, never by re-opening the path.
            let Some(fd) = authority::paths::open_granted(cap, &env.plugin).map_err(setup)? else {
                // Granted but absent (e.g. an install a preflight is checking for): the
                // plugin sees it as missing, which is what it is.
                continue;
            };
            let handle = format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&fd));
            b.preopened_dir(&handle, &guest, perms)
                .map_err(|e| setup(format!("cannot open granted directory {guest}: {e}")))?;
        }
        let limits = StoreLimitsBuilder::new()
            .memory_size(memory)
            .trap_on_grow_failure(true)
            .build();
        let mut store = Store::new(
            &self.engine,
            CallState {
                wasi: b.build(),
                table: ResourceTable::new(),
                limits,
                env,
                logs: 0,
            },
        );
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        Ok(store)
    }
}

fn link_error(path: &Path, e: wasmtime::Error) -> anyhow::Error {
    anyhow::anyhow!(
        "{} imports something this host does not provide: {e}",
        path.display()
    )
}

fn file_label(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "plugin".into())
}

fn call_name(env: &CallEnv) -> String {
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
enum StrategyPre {
    V1_0(v1_0::Strategy),
    V1_1(v1_1::Strategy),
}

/// An adapter, as prepared for the contract version it was built for.
#[derive(Clone)]
enum AdapterPre {
    V1_0(v1_0::Adapter),
    V1_1(v1_1::Adapter),
}

/// The same call on whichever contract version a plugin was prepared for.
macro_rules! each_version {
    ($enum:ident, $pre:expr, |$p:ident| $call:expr) => {
        async {
            match $pre {
                $enum::V1_0($p) => $call.await,
                $enum::V1_1($p) => $call.await,
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
    rt: Arc<Runtime>,
    /// How it was loaded: from the precompiled cache or compiled (shown with `-v`).
    pub load_note: String,
    pre: StrategyPre,
    /// Shown in errors until `info` tells the real name.
    pub label: String,
    pub digest: String,
    memory: usize,
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
    rt: Arc<Runtime>,
    /// How it was loaded: from the precompiled cache or compiled (shown with `-v`).
    pub load_note: String,
    pre: AdapterPre,
    pub label: String,
    pub digest: String,
    memory: usize,
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

/// A contract version, `major.minor.patch`.
pub type Version = (u64, u64, u64);

impl World {
    fn article(self) -> &'static str {
        match self {
            World::Strategy => "a strategy plugin",
            World::Adapter => "an adapter plugin",
        }
    }
}

/// The contract versions this host loads, for messages: "1.0 and 1.1".
pub fn supported() -> String {
    format!(
        "{}.{} and {}.{}",
        v1_0::VERSION.0,
        v1_0::VERSION.1,
        v1_1::VERSION.0,
        v1_1::VERSION.1
    )
}

/// World and version from a component's export names.
fn contract(exports: &[String]) -> Result<(World, Version), String> {
    for name in exports {
        let Some(rest) = name.strip_prefix("cutover:plugin/") else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        let world = match iface {
            "adapter" => World::Adapter,
            "strategy" => World::Strategy,
            _ => continue,
        };
        let mut parts = version.split(['.', '-', '+']).map(|p| p.parse::<u64>());
        let v = match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c),
            _ => {
                return Err(format!(
                    "exports {name}, whose version this host cannot read"
                ))
            }
        };
        let built = format!("{}.{}.{}", v.0, v.1, v.2);
        return match v {
            (1, minor, _) if minor <= v1_1::VERSION.1 => Ok((world, v)),
            (1, _, _) => Err(format!(
                "was built for cutover:plugin {built}, newer than this host knows (it loads {}); update cutover",
                supported()
            )),
            _ => Err(format!(
                "was built for cutover:plugin {built}, a major version this host does not load (it loads {}); rebuild the plugin with a cutover-sdk for {}.{}",
                supported(),
                v1_1::VERSION.0,
                v1_1::VERSION.1
            )),
        };
    }
    if exports.iter().any(|n| n == "describe" || n == "plan") {
        return Err(format!(
            "was built for the draft contract cutover:plugin 0.1, which this host no longer loads (it loads {}); rebuild it with a cutover-sdk for {}",
            supported(),
            supported()
        ));
    }
    Err(format!(
        "is not a Cutover plugin: it exports no cutover:plugin/adapter or cutover:plugin/strategy interface (exports: {})",
        if exports.is_empty() { "none".to_string() } else { exports.join(", ") }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn contract_version_comes_from_the_export() {
        let ok = contract(&names(&["cutover:plugin/adapter@1.0.0"])).unwrap();
        assert_eq!(ok, (World::Adapter, (1, 0, 0)));
        let ok = contract(&names(&["cutover:plugin/strategy@1.0.3"])).unwrap();
        assert_eq!(ok, (World::Strategy, (1, 0, 3)));
        let e = contract(&names(&["cutover:plugin/adapter@2.0.0"])).unwrap_err();
        assert!(e.contains("2.0.0") && e.contains("major version"), "{e}");
        let e = contract(&names(&["cutover:plugin/adapter@1.7.0"])).unwrap_err();
        assert!(e.contains("newer than this host"), "{e}");
        let e = contract(&names(&["describe", "run-step"])).unwrap_err();
        assert!(e.contains("draft contract"), "{e}");
        let e = contract(&names(&["wasi:cli/run@0.2.0"])).unwrap_err();
        assert!(e.contains("not a Cutover plugin"), "{e}");
    }
}
