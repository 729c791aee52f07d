//! Loading plugins and calling them: one engine, a cache of precompiled components, one
//! `InstancePre` per plugin, a fresh `Store` per call with a memory cap and a time budget.

use super::authority::{self, Effective};
use super::bindings::{adapter, strategy, Level};
use super::cache::{sha256_hex, Cache};
use crate::spec::Limits;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceTable};
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
}

impl std::fmt::Display for FaultKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FaultKind::Trap => "trapped",
            FaultKind::MemoryLimit => "hit its memory limit",
            FaultKind::Timeout => "ran out of time",
            FaultKind::Setup => "could not start",
        })
    }
}

/// The plugin runtime: engine, linkers and cache.
pub struct Runtime {
    engine: Engine,
    cache: Cache,
    strategy_linker: Linker<CallState>,
    adapter_linker: Linker<CallState>,
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
        let mut strategy_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut strategy_linker)?;
        strategy::Strategy::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut strategy_linker,
            |s| s,
        )?;
        let mut adapter_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut adapter_linker)?;
        adapter::Adapter::add_to_linker::<_, wasmtime::component::HasSelf<_>>(
            &mut adapter_linker,
            |s| s,
        )?;
        Ok(Arc::new(Runtime {
            cache: Cache::new(cache_dir, &engine),
            engine,
            strategy_linker,
            adapter_linker,
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

    /// Which world a component exports, from its export names.
    pub fn world_of(&self, component: &Component) -> Option<World> {
        let ty = component.component_type();
        let names: Vec<String> = ty
            .exports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        if names.iter().any(|n| n == "describe") && names.iter().any(|n| n == "run-step") {
            Some(World::Adapter)
        } else if names.iter().any(|n| n == "decide") && names.iter().any(|n| n == "plan") {
            Some(World::Strategy)
        } else {
            None
        }
    }

    /// The `cutover:plugin` version a component was built against, from its imports.
    pub fn api_version(&self, component: &Component) -> Option<String> {
        let ty = component.component_type();
        let names: Vec<String> = ty
            .imports(&self.engine)
            .map(|(n, _)| n.to_string())
            .collect();
        names
            .iter()
            .filter_map(|n| n.strip_prefix("cutover:plugin/"))
            .find_map(|n| n.split_once('@').map(|(_, v)| v.to_string()))
    }

    /// The component in `path`, checked to implement `want`, and a line saying whether it was
    /// deserialized from the cache or compiled.
    fn load(
        &self,
        path: &Path,
        pin: Option<&str>,
        want: World,
    ) -> Result<(Component, String, String)> {
        let (component, digest, hit) = self.component(path, pin)?;
        if self.world_of(&component) != Some(want) {
            let (world, exports) = match want {
                World::Strategy => ("strategy", "plan/decide"),
                World::Adapter => ("adapter", "describe/run-step"),
            };
            bail!(
                "{} is not a {world} plugin (it does not export {exports})",
                path.display()
            );
        }
        let how = if hit {
            "deserialized from the precompiled cache"
        } else {
            "compiled and added to the precompiled cache"
        };
        let note = format!("{} (sha256 {}): {how}", path.display(), &digest[..12]);
        Ok((component, digest, note))
    }

    /// Load a strategy plugin.
    pub fn strategy(
        self: &Arc<Self>,
        path: &Path,
        pin: Option<&str>,
        memory: usize,
    ) -> Result<StrategyPlugin> {
        let (component, digest, load_note) = self.load(path, pin, World::Strategy)?;
        let pre = self
            .strategy_linker
            .instantiate_pre(&component)
            .map_err(|e| link_error(path, e))?;
        Ok(StrategyPlugin {
            rt: self.clone(),
            pre: strategy::StrategyPre::new(pre)?,
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
        let (component, digest, load_note) = self.load(path, pin, World::Adapter)?;
        let pre = self
            .adapter_linker
            .instantiate_pre(&component)
            .map_err(|e| link_error(path, e))?;
        Ok(AdapterPlugin {
            rt: self.clone(),
            pre: adapter::AdapterPre::new(pre)?,
            label: file_label(path),
            digest,
            load_note,
            memory: memory.min(MAX_MEMORY),
        })
    }

    fn store(&self, env: Arc<CallEnv>, memory: usize) -> Result<Store<CallState>, PluginFault> {
        let mut b = WasiCtxBuilder::new();
        let mut granted = Vec::new();
        for cap in &env.caps.dirs {
            let perms = if cap.write {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            let guest = cap.path.display().to_string();
            granted.push(format!(
                "{guest}={}",
                if cap.write { "read-write" } else { "read" }
            ));
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
        b.env("CUTOVER_GRANTED_DIRS", granted.join(";"));
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
        "{} imports something this host does not provide (built against another cutover:plugin version?): {e}",
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
        let mut $store = $self.rt.store(env.clone(), $self.memory)?;
        let fut = async {
            let $inst = $self.pre.instantiate_async(&mut $store).await?;
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

/// A loaded strategy plugin.
pub struct StrategyPlugin {
    rt: Arc<Runtime>,
    /// How it was loaded: from the precompiled cache or compiled (shown with `-v`).
    pub load_note: String,
    pre: strategy::StrategyPre<CallState>,
    /// Shown in errors until `info` tells the real name.
    pub label: String,
    pub digest: String,
    memory: usize,
}

impl StrategyPlugin {
    /// Name, version, summary.
    pub async fn info(&self, env: Arc<CallEnv>) -> Result<(String, String, String), PluginFault> {
        call_plugin!(self, env, "info".into(), |i, s| i.call_info(&mut s))
    }

    /// Ask for a plan.
    pub async fn plan(
        &self,
        env: Arc<CallEnv>,
        targets: &[super::bindings::Target],
        constraints: &[super::bindings::Constraint],
        params: &[super::bindings::Pair],
    ) -> Result<Result<super::bindings::Plan, super::bindings::PluginError>, PluginFault> {
        call_plugin!(self, env, "plan".into(), |i, s| i.call_plan(
            &mut s,
            targets,
            constraints,
            params
        ))
    }

    /// Ask what to do after a wave.
    pub async fn decide(
        &self,
        env: Arc<CallEnv>,
        report: &super::bindings::WaveReport,
        params: &[super::bindings::Pair],
    ) -> Result<super::bindings::Decision, PluginFault> {
        call_plugin!(self, env, "decide".into(), |i, s| i
            .call_decide(&mut s, report, params))
    }
}

/// A loaded adapter plugin.
pub struct AdapterPlugin {
    rt: Arc<Runtime>,
    /// How it was loaded: from the precompiled cache or compiled (shown with `-v`).
    pub load_note: String,
    pre: adapter::AdapterPre<CallState>,
    pub label: String,
    pub digest: String,
    memory: usize,
}

impl AdapterPlugin {
    /// Create a store and instantiate without calling anything (for `cutover bench`).
    pub async fn instantiate_only(&self, env: Arc<CallEnv>) -> Result<(), PluginFault> {
        call_plugin!(self, env, "instantiate".into(), |i, _s| async move {
            let _ = i;
            wasmtime::Result::<()>::Ok(())
        })
    }

    /// Create a store only (for `cutover bench`).
    pub fn store_only(&self, env: Arc<CallEnv>) -> Result<(), PluginFault> {
        self.rt.store(env, self.memory).map(|_| ())
    }

    /// What the adapter is and needs.
    pub async fn describe(
        &self,
        env: Arc<CallEnv>,
    ) -> Result<super::bindings::Description, PluginFault> {
        call_plugin!(self, env, "describe".into(), |i, s| i.call_describe(&mut s))
    }

    /// Check the change before anything runs.
    pub async fn preflight(
        &self,
        env: Arc<CallEnv>,
        targets: &[super::bindings::Target],
        params: &[super::bindings::Pair],
        strategy: &str,
    ) -> Result<Result<Vec<super::bindings::Finding>, super::bindings::PluginError>, PluginFault>
    {
        call_plugin!(self, env, "preflight".into(), |i, s| i
            .call_preflight(&mut s, targets, params, strategy))
    }

    /// Topology rules.
    pub async fn constraints(
        &self,
        env: Arc<CallEnv>,
        targets: &[super::bindings::Target],
        params: &[super::bindings::Pair],
    ) -> Result<Result<Vec<super::bindings::Constraint>, super::bindings::PluginError>, PluginFault>
    {
        call_plugin!(self, env, "constraints".into(), |i, s| i
            .call_constraints(&mut s, targets, params))
    }

    /// Run one step.
    pub async fn run_step(
        &self,
        env: Arc<CallEnv>,
        step: &str,
        target: Option<&super::bindings::Target>,
        ctx: &super::bindings::StepContext,
    ) -> Result<Result<Vec<super::bindings::Output>, super::bindings::StepError>, PluginFault> {
        let what = call_name(&env);
        call_plugin!(self, env, what, |i, s| i
            .call_run_step(&mut s, step, target, ctx))
    }

    /// Undo one step.
    pub async fn undo_step(
        &self,
        env: Arc<CallEnv>,
        step: &str,
        target: Option<&super::bindings::Target>,
        ctx: &super::bindings::StepContext,
    ) -> Result<Result<(), super::bindings::StepError>, PluginFault> {
        let what = format!("undo of {}", call_name(&env));
        call_plugin!(self, env, what, |i, s| i
            .call_undo_step(&mut s, step, target, ctx))
    }
}
