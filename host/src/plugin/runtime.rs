//! Loading plugins and calling them: one engine, a cache of precompiled components, one
//! `InstancePre` per plugin, a fresh `Store` per call with a memory cap and a time budget.

use super::authority::{self, Effective};
use super::cache::{sha256_hex, Cache};
use super::calls::{
    call_name, file_label, link_error, AdapterPlugin, AdapterPre, StrategyPlugin, StrategyPre,
};
use super::contract::{contract, Version};
use super::model::{self as m, Level};
use super::since_v1_0_0 as v1_0;
use super::since_v1_1_0 as v1_1;
use super::since_v1_2_0 as v1_2;
use super::since_v1_3_0 as v1_3;
use crate::spec::Limits;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
    v1_2: v1_2::Linkers,
    v1_3: v1_3::Linkers,
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
        let v1_2 = v1_2::Linkers::new(&engine)?;
        let v1_3 = v1_3::Linkers::new(&engine)?;
        Ok(Arc::new(Runtime {
            cache: Cache::new(cache_dir, &engine),
            engine,
            v1_0,
            v1_1,
            v1_2,
            v1_3,
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
            (1, 1, _) => self.v1_1.strategy(&component).map(StrategyPre::V1_1),
            (1, 2, _) => self.v1_2.strategy(&component).map(StrategyPre::V1_2),
            _ => self.v1_3.strategy(&component).map(StrategyPre::V1_3),
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
            (1, 1, _) => self.v1_1.adapter(&component).map(AdapterPre::V1_1),
            (1, 2, _) => self.v1_2.adapter(&component).map(AdapterPre::V1_2),
            _ => self.v1_3.adapter(&component).map(AdapterPre::V1_3),
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
    pub(super) fn store(
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
