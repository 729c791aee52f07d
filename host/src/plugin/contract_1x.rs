// What every 1.x contract version's bindings share: the linkers, the calls into a plugin,
// the conversions to and from the host's model, and the host calls of the 1.0 interfaces.
// Each `since_v1_*` module includes it after generating its bindings and naming them `t`
// (types), `a` (adapter exports), `s` (strategy exports), `log`, `exec`, `http`, `files` and
// `secrets`; the generated types of two versions are distinct, the code over them the same.

/// The linkers of both worlds.
pub struct Linkers {
    strategy: Linker<CallState>,
    adapter: Linker<CallState>,
}

impl Linkers {
    /// Linkers with WASI and the host calls of this contract version.
    pub fn new(engine: &Engine) -> wasmtime::Result<Linkers> {
        let mut strategy = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut strategy)?;
        strategy::StrategyPlugin::add_to_linker::<_, HasSelf<_>>(&mut strategy, |s| s)?;
        let mut adapter = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut adapter)?;
        adapter::AdapterPlugin::add_to_linker::<_, HasSelf<_>>(&mut adapter, |s| s)?;
        Ok(Linkers { strategy, adapter })
    }

    /// Prepare a strategy component.
    pub fn strategy(&self, c: &Component) -> wasmtime::Result<Strategy> {
        Ok(Strategy(strategy::StrategyPluginPre::new(
            self.strategy.instantiate_pre(c)?,
        )?))
    }

    /// Prepare an adapter component.
    pub fn adapter(&self, c: &Component) -> wasmtime::Result<Adapter> {
        Ok(Adapter(adapter::AdapterPluginPre::new(
            self.adapter.instantiate_pre(c)?,
        )?))
    }
}

/// A strategy built for this contract version.
pub struct Strategy(strategy::StrategyPluginPre<CallState>);

impl Strategy {
    /// `info`.
    pub async fn info(&self, store: &mut Store<CallState>) -> wasmtime::Result<m::StrategyInfo> {
        let i = self.0.instantiate_async(&mut *store).await?;
        let info = i.cutover_plugin_strategy().call_info(store).await?;
        Ok(m::StrategyInfo {
            name: info.name,
            version: info.version,
            summary: info.summary,
        })
    }

    /// `plan`.
    pub async fn plan(
        &self,
        store: &mut Store<CallState>,
        targets: &[m::Target],
        constraints: &[m::Constraint],
        params: &[m::Pair],
    ) -> wasmtime::Result<Result<m::Plan, m::PluginError>> {
        let i = self.0.instantiate_async(&mut *store).await?;
        let targets: Vec<t::Target> = targets.iter().map(target).collect();
        let constraints: Vec<t::Constraint> = constraints.iter().map(constraint_to).collect();
        let params = pairs(params);
        let r = i
            .cutover_plugin_strategy()
            .call_plan(store, &targets, &constraints, &params)
            .await?;
        Ok(r.map(plan).map_err(plugin_error))
    }

    /// `decide`.
    pub async fn decide(
        &self,
        store: &mut Store<CallState>,
        r: &m::WaveReport,
        params: &[m::Pair],
    ) -> wasmtime::Result<m::Decision> {
        let i = self.0.instantiate_async(&mut *store).await?;
        let report = s::WaveReport {
            wave_index: r.wave_index,
            wave_count: r.wave_count,
            succeeded: r.succeeded.clone(),
            failed: r.failed.clone(),
            failed_total: r.failed_total,
            target_count: r.target_count,
        };
        let d = i
            .cutover_plugin_strategy()
            .call_decide(store, &report, &pairs(params))
            .await?;
        Ok(m::Decision {
            kind: match d.kind {
                s::DecisionKind::Proceed => m::DecisionKind::Proceed,
                s::DecisionKind::Pause => m::DecisionKind::Pause,
                s::DecisionKind::Abort => m::DecisionKind::Abort,
                s::DecisionKind::Rollback => m::DecisionKind::Rollback,
            },
            reason: d.reason,
        })
    }
}

/// An adapter built for this contract version.
#[derive(Clone)]
pub struct Adapter(adapter::AdapterPluginPre<CallState>);

impl Adapter {
    /// Instantiate without calling anything.
    pub async fn instantiate(&self, store: &mut Store<CallState>) -> wasmtime::Result<()> {
        self.0.instantiate_async(store).await.map(drop)
    }

    /// `describe`.
    pub async fn describe(&self, store: &mut Store<CallState>) -> wasmtime::Result<m::Description> {
        let i = self.0.instantiate_async(&mut *store).await?;
        let d = i.cutover_plugin_adapter().call_describe(store).await?;
        Ok(m::Description {
            name: d.name,
            version: d.version,
            summary: d.summary,
            parameters: d
                .parameters
                .into_iter()
                .map(|p| m::Parameter {
                    name: p.name,
                    description: p.description,
                    required: p.required,
                    per_target: p.per_target,
                    default: p.default,
                })
                .collect(),
            capabilities: d.capabilities.into_iter().map(capability).collect(),
            steps: d
                .steps
                .into_iter()
                .map(|s| m::Step {
                    name: s.name,
                    description: s.description,
                    kind: match s.kind {
                        a::StepKind::TargetRollout => m::StepKind::TargetRollout,
                        a::StepKind::TargetFinalize => m::StepKind::TargetFinalize,
                        a::StepKind::FleetPrepare => m::StepKind::FleetPrepare,
                        a::StepKind::FleetSwitch => m::StepKind::FleetSwitch,
                        a::StepKind::FleetFinalize => m::StepKind::FleetFinalize,
                    },
                    undoable: s.undoable,
                    idempotent: s.idempotent,
                    undo_idempotent: s.undo_idempotent,
                    default_timeout_s: s.default_timeout_s,
                    capabilities: s.capabilities.into_iter().map(capability).collect(),
                })
                .collect(),
            leases: d.leases,
        })
    }

    /// `preflight`.
    pub async fn preflight(
        &self,
        store: &mut Store<CallState>,
        targets: &[m::Target],
        ctx: &m::PreflightContext,
    ) -> wasmtime::Result<Result<Vec<m::Finding>, m::PluginError>> {
        let i = self.0.instantiate_async(&mut *store).await?;
        let targets: Vec<t::Target> = targets.iter().map(target).collect();
        let ctx = preflight_context(ctx);
        let r = i
            .cutover_plugin_adapter()
            .call_preflight(store, &targets, &ctx)
            .await?;
        Ok(r.map(|fs| {
            fs.into_iter()
                .map(|f| m::Finding {
                    severity: match f.severity {
                        a::Severity::Info => m::Severity::Info,
                        a::Severity::Warning => m::Severity::Warning,
                        a::Severity::Blocker => m::Severity::Blocker,
                    },
                    target: f.target,
                    message: f.message,
                })
                .collect()
        })
        .map_err(plugin_error))
    }

    /// `constraints`.
    pub async fn constraints(
        &self,
        store: &mut Store<CallState>,
        targets: &[m::Target],
        params: &[m::Pair],
    ) -> wasmtime::Result<Result<Vec<m::Constraint>, m::PluginError>> {
        let i = self.0.instantiate_async(&mut *store).await?;
        let targets: Vec<t::Target> = targets.iter().map(target).collect();
        let r = i
            .cutover_plugin_adapter()
            .call_constraints(store, &targets, &pairs(params))
            .await?;
        Ok(r.map(|cs| cs.into_iter().map(constraint_from).collect())
            .map_err(plugin_error))
    }

    /// `run-step`.
    pub async fn run_step(
        &self,
        store: &mut Store<CallState>,
        step: &str,
        tgt: Option<&m::Target>,
        ctx: &m::StepContext,
    ) -> wasmtime::Result<Result<Vec<m::Output>, m::StepError>> {
        let i = self.0.instantiate_async(&mut *store).await?;
        let tgt = tgt.map(target);
        let r = i
            .cutover_plugin_adapter()
            .call_run_step(store, step, tgt.as_ref(), &step_context(ctx))
            .await?;
        Ok(r.map(|o| o.into_iter().map(output_from).collect())
            .map_err(step_error))
    }

    /// `undo-step`.
    pub async fn undo_step(
        &self,
        store: &mut Store<CallState>,
        step: &str,
        tgt: Option<&m::Target>,
        ctx: &m::StepContext,
    ) -> wasmtime::Result<Result<(), m::StepError>> {
        let i = self.0.instantiate_async(&mut *store).await?;
        let tgt = tgt.map(target);
        let r = i
            .cutover_plugin_adapter()
            .call_undo_step(store, step, tgt.as_ref(), &step_context(ctx))
            .await?;
        Ok(r.map_err(step_error))
    }
}

fn pairs(p: &[m::Pair]) -> Vec<t::Pair> {
    p.iter()
        .map(|p| t::Pair {
            key: p.key.clone(),
            value: p.value.clone(),
        })
        .collect()
}

fn pairs_from(p: Vec<t::Pair>) -> Vec<m::Pair> {
    p.into_iter()
        .map(|p| m::Pair {
            key: p.key,
            value: p.value,
        })
        .collect()
}

fn target(x: &m::Target) -> t::Target {
    t::Target {
        id: x.id.clone(),
        host: x.host.clone(),
        labels: pairs(&x.labels),
    }
}

fn constraint_to(c: &m::Constraint) -> t::Constraint {
    t::Constraint {
        name: c.name.clone(),
        kind: match &c.kind {
            m::ConstraintKind::MaxTogether(x) => t::ConstraintKind::MaxTogether(t::MaxTogether {
                members: x.members.clone(),
                max: x.max,
            }),
            m::ConstraintKind::Order(x) => t::ConstraintKind::Order(t::Order {
                first: x.first.clone(),
                then: x.then.clone(),
            }),
        },
    }
}

fn constraint_from(c: t::Constraint) -> m::Constraint {
    m::Constraint {
        name: c.name,
        kind: match c.kind {
            t::ConstraintKind::MaxTogether(x) => m::ConstraintKind::MaxTogether(m::MaxTogether {
                members: x.members,
                max: x.max,
            }),
            t::ConstraintKind::Order(x) => m::ConstraintKind::Order(m::Order {
                first: x.first,
                then: x.then,
            }),
        },
    }
}

fn plugin_error(e: t::PluginError) -> m::PluginError {
    m::PluginError {
        message: e.message,
        hint: e.hint,
    }
}

fn plan(p: s::RolloutPlan) -> m::Plan {
    m::Plan {
        stages: p
            .stages
            .into_iter()
            .map(|st| match st {
                s::Stage::Wave(w) => m::Stage::Wave(m::Wave {
                    name: w.name,
                    targets: w.targets,
                }),
                s::Stage::FleetStep(n) => m::Stage::FleetStep(n),
                s::Stage::Gate(s::Gate::Approval(x)) => m::Stage::Gate(m::Gate::Approval(x)),
                s::Stage::Gate(s::Gate::Soak(x)) => m::Stage::Gate(m::Gate::Soak(x)),
            })
            .collect(),
        standby: p.standby,
    }
}

fn access(x: t::Access) -> m::Access {
    match x {
        t::Access::Read => m::Access::Read,
        t::Access::ReadWrite => m::Access::ReadWrite,
    }
}

fn dir_grant(d: &m::DirGrant) -> t::DirGrant {
    t::DirGrant {
        path: d.path.clone(),
        access: match d.access {
            m::Access::Read => t::Access::Read,
            m::Access::ReadWrite => t::Access::ReadWrite,
        },
    }
}

fn capability(c: a::Capability) -> m::Capability {
    match c {
        a::Capability::Dir(d) => m::Capability::Dir(m::DirRequest {
            path: d.path,
            access: access(d.access),
        }),
        a::Capability::Exec(x) => m::Capability::Exec(x),
        a::Capability::Http(x) => m::Capability::Http(x),
        a::Capability::Secret(x) => m::Capability::Secret(x),
        a::Capability::Env(x) => m::Capability::Env(x),
        #[allow(unreachable_patterns)] // In 1.0, where there is no other.
        other => added_capability(other),
    }
}

fn output_to(o: &m::Output) -> a::Output {
    a::Output {
        key: o.key.clone(),
        value: o.value.clone(),
        secret: o.secret,
    }
}

fn output_from(o: a::Output) -> m::Output {
    m::Output {
        key: o.key,
        value: o.value,
        secret: o.secret,
    }
}

fn step_context(c: &m::StepContext) -> a::StepContext {
    a::StepContext {
        rollout_id: c.rollout_id.clone(),
        params: pairs(&c.params),
        outputs: c.outputs.iter().map(output_to).collect(),
        attempt: c.attempt,
        fleet: c.fleet.iter().map(target).collect(),
        dirs: c.dirs.iter().map(dir_grant).collect(),
    }
}

fn step_error(e: a::StepError) -> m::StepError {
    m::StepError {
        message: e.message,
        transient: e.transient,
        outputs: e.outputs.into_iter().map(output_from).collect(),
    }
}

fn level(l: t::Level) -> m::Level {
    match l {
        t::Level::Debug => m::Level::Debug,
        t::Level::Info => m::Level::Info,
        t::Level::Warn => m::Level::Warn,
        t::Level::Error => m::Level::Error,
    }
}

impl t::Host for CallState {
    fn convert_host_error(&mut self, e: m::HostError) -> wasmtime::Result<t::HostError> {
        Ok(match e {
            m::HostError::Denied { grant, message } => {
                t::HostError::Denied(t::Denial { grant, message })
            }
            m::HostError::NotFound(x) => t::HostError::NotFound(x),
            m::HostError::TimedOut(x) => t::HostError::TimedOut(x),
            m::HostError::Invalid(x) => t::HostError::Invalid(x),
            m::HostError::Io(x) => t::HostError::Io(x),
        })
    }
}

impl log::Host for CallState {
    async fn write(&mut self, l: t::Level, message: String) -> wasmtime::Result<()> {
        self.log(level(l), message);
        Ok(())
    }

    async fn progress(&mut self, message: String, fraction: Option<f32>) -> wasmtime::Result<()> {
        CallState::progress(self, message, fraction);
        Ok(())
    }
}

impl exec::Host for CallState {
    async fn run(&mut self, c: exec::Command) -> Result<exec::Exit, m::HostError> {
        let cmd = hc::Command {
            program: c.program,
            args: c.args,
            cwd: c.cwd,
            env: c.env.into_iter().map(|p| (p.key, p.value)).collect(),
            stdin: c.stdin,
            timeout_ms: c.timeout_ms,
        };
        let e = self.exec(cmd).await?;
        Ok(exec::Exit {
            code: e.code,
            stdout: e.stdout,
            stderr: e.stderr,
            timed_out: e.timed_out,
        })
    }
}

impl http::Host for CallState {
    async fn send(&mut self, r: http::Request) -> Result<http::Response, m::HostError> {
        let req = hc::Request {
            method: r.method,
            url: r.url,
            headers: pairs_from(r.headers),
            body: r.body,
            timeout_ms: r.timeout_ms,
        };
        let resp = self.http(req).await?;
        Ok(http::Response {
            status: resp.status,
            headers: pairs(&resp.headers),
            body: resp.body,
        })
    }
}

impl files::Host for CallState {
    async fn copy_tree(
        &mut self,
        from: String,
        to: String,
    ) -> Result<files::CopyStats, m::HostError> {
        let s = CallState::copy_tree(self, from, to, Vec::new()).await?;
        Ok(files::CopyStats {
            files: s.files,
            dirs: s.dirs,
            bytes: s.bytes,
        })
    }

    async fn write_atomic(&mut self, path: String, contents: Vec<u8>) -> Result<(), m::HostError> {
        CallState::write_atomic(self, path, contents).await
    }
}

impl secrets::Host for CallState {
    async fn get(&mut self, name: String) -> Result<String, m::HostError> {
        self.secret(&name)
    }
}
