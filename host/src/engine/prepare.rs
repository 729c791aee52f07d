//! Loading a spec's plugins, describing the adapter, checking parameters and resolving grants:
//! everything before a rollout touches anything.

use super::run::{self, Decide};
use super::transport::{Local, Transport};
use super::{plan, Env};
use crate::plugin::authority::{self as caps, Effective};
use crate::plugin::model::{Constraint, Description, Estimate, Finding, Level, Pair, Target};
use crate::plugin::{AdapterPlugin, CallEnv, StrategyPlugin};
use crate::spec::{SecretSource, Spec};
use anyhow::{anyhow, bail, Context, Result};
use plan::XPlan;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// What a rollout runs with, as plain data (no plugin in it), so the run loop can also be
/// driven by a fake transport and strategy.
pub struct Setup {
    pub spec: Spec,
    /// `name@version` of the strategy.
    pub strategy_label: String,
    pub strategy_params: Vec<Pair>,
    /// The adapter's side (its fields read through `Deref`).
    pub resolved: AdapterSetup,
    /// The plugins loaded, by digest (kept in the plugin store).
    pub plugins: Vec<crate::journal::LoadedPlugin>,
}

impl std::ops::Deref for Setup {
    type Target = AdapterSetup;
    fn deref(&self) -> &AdapterSetup {
        &self.resolved
    }
}

/// A spec with its plugins loaded and its grants resolved.
pub struct Prepared {
    pub setup: Arc<Setup>,
    pub strategy: Arc<StrategyPlugin>,
    pub adapter: Arc<AdapterPlugin>,
    /// Sessions with the remote targets' hosts, once connected.
    pub remote: Option<Arc<crate::remote::transport::Remote>>,
}

impl std::ops::Deref for Prepared {
    type Target = Setup;
    fn deref(&self) -> &Setup {
        &self.setup
    }
}

fn pairs(v: &[(String, String)]) -> Vec<Pair> {
    v.iter()
        .map(|(k, v)| Pair {
            key: k.clone(),
            value: v.clone(),
        })
        .collect()
}

/// The adapter's side of a spec: its description, parameters, targets and resolved grants.
pub struct AdapterSetup {
    /// `name@version` of the adapter.
    pub adapter_label: String,
    pub desc: Description,
    pub targets: Vec<Target>,
    pub adapter_params: Vec<Pair>,
    pub secrets: BTreeMap<String, String>,
    pub fleet_caps: Effective,
    pub target_caps: HashMap<String, Effective>,
    /// Capabilities of steps that request their own, by (target, step); the fleet is "".
    pub step_caps: HashMap<(String, String), Effective>,
    /// The lease files on the controller's nodes (and fleet-wide resources).
    pub lease_paths: Vec<std::path::PathBuf>,
    /// Lease files on remote hosts, by host.
    pub remote_leases: BTreeMap<String, Vec<std::path::PathBuf>>,
}

/// Load the plugins of `spec`, describe the adapter, check its parameters and resolve its
/// grants. Nothing on the targets is touched.
pub async fn prepare(env: &Env, spec: Spec) -> Result<Prepared> {
    super::notify::configure(&env.journal, &spec)
        .with_context(|| format!("{}: [[notify]]", spec.path.display()))?;
    if spec.strategy.path.as_os_str().is_empty() && spec.strategy.reference.is_none() {
        bail!(
            "{}: no [strategy] table: a rollout needs one (`plugin = \"grouped.wasm\"`)",
            spec.path.display()
        );
    }
    let (spath, strategy_plugin) =
        admit(env, &spec, "strategy", &spec.strategy).context("loading the strategy")?;
    let strategy = env
        .runtime
        .strategy(
            &spath,
            Some(&strategy_plugin.digest[7..]),
            spec.limits.memory,
        )
        .context("loading the strategy")?;
    let (adapter, adapter_plugin) = load_adapter(env, &spec)?;
    let plugins = vec![strategy_plugin, adapter_plugin];
    env.ui.log("", "load", Level::Debug, &strategy.load_note);
    let crate::plugin::model::StrategyInfo {
        name: sname,
        version: sver,
        ..
    } = strategy
        .info(CallEnv::bare(
            &strategy.label,
            spec.limits.call_timeout,
            env.sink(None),
        ))
        .await?;
    let a = resolve_adapter(env, &spec, &adapter).await?;
    Ok(Prepared {
        setup: Arc::new(Setup {
            strategy_label: format!("{sname}@{sver}"),
            strategy_params: pairs(&spec.strategy.params),
            spec,
            resolved: a,
            plugins,
        }),
        strategy: Arc::new(strategy),
        adapter: Arc::new(adapter),
        remote: None,
    })
}

/// What a spec names a plugin by: its file or its reference.
fn source(p: &crate::spec::PluginRef) -> String {
    p.reference
        .clone()
        .unwrap_or_else(|| p.path.display().to_string())
}

/// The trust policy of `spec`: its `[trust] keys` and the host-wide `$CUTOVER_TRUST`.
fn trusted(spec: &Spec) -> Result<Vec<crate::store::trust::Key>> {
    let base = spec.path.parent().unwrap_or(std::path::Path::new("."));
    let mut keys = spec
        .trust
        .iter()
        .map(|k| crate::store::trust::key(k, base))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("{}: [trust] keys", spec.path.display()))?;
    keys.extend(crate::store::trust::host_keys()?);
    Ok(keys)
}

/// The plugin `p` names as `role`, kept in the plugin store: the file to load (the spec's own
/// file, or the store's copy for a reference) and what the journal records of it. A pin
/// (`sha256`) must match either way; with a trust policy, so must a signature by a trusted
/// key, or the plugin is refused before anything runs.
pub fn admit(
    env: &Env,
    spec: &Spec,
    role: &str,
    p: &crate::spec::PluginRef,
) -> Result<(std::path::PathBuf, crate::journal::LoadedPlugin)> {
    let (path, digest) = match &p.reference {
        None => {
            // Loaded from the spec's own file (its name shows in messages), checked against
            // the digest just kept.
            let digest = env.store.add_file(&p.path, p.sha256.as_deref())?;
            (p.path.clone(), digest)
        }
        Some(r) => {
            let digest = env.store.resolve(r)?;
            if let Some(pin) = &p.sha256 {
                if digest[7..] != **pin {
                    bail!("{r} is {digest} in the plugin store, but the spec pins sha256 {pin}: install the pinned version, or update the pin");
                }
            }
            (env.store.blob(&digest), digest)
        }
    };
    let keys = trusted(spec)?;
    let mut signer = String::new();
    if !keys.is_empty() {
        let listed: Vec<String> = keys
            .iter()
            .map(|k| format!("{} ({})", k.id, k.from))
            .collect();
        let named = format!("the {role} plugin {} ({digest})", source(p));
        let Some(sig) = env.store.signature(&digest) else {
            bail!(
                "{named} is unsigned, and the trust policy requires a signature by one of: {}; sign it (`cutover plugin sign`) and install it with its .minisig",
                listed.join(", ")
            );
        };
        let bytes = std::fs::read(&path)?;
        signer = crate::store::trust::verify(&bytes, &sig, &keys).map_err(|why| {
            anyhow!(
                "{named} is refused: {why}; the trust policy lists {}",
                listed.join(", ")
            )
        })?;
    }
    Ok((
        path,
        crate::journal::LoadedPlugin {
            role: role.into(),
            digest,
            source: source(p),
            signer,
        },
    ))
}

/// Load the adapter a spec names; what the journal records of it.
pub fn load_adapter(
    env: &Env,
    spec: &Spec,
) -> Result<(AdapterPlugin, crate::journal::LoadedPlugin)> {
    let (path, loaded) =
        admit(env, spec, "adapter", &spec.adapter).context("loading the adapter")?;
    let adapter = env
        .runtime
        .adapter(&path, Some(&loaded.digest[7..]), spec.limits.memory)
        .context("loading the adapter")?;
    env.ui.log("", "load", Level::Debug, &adapter.load_note);
    Ok((adapter, loaded))
}

/// Describe `adapter`, check the spec's parameters against it and resolve its grants for
/// every target and step.
pub async fn resolve_adapter(
    env: &Env,
    spec: &Spec,
    adapter: &AdapterPlugin,
) -> Result<AdapterSetup> {
    let desc = adapter
        .describe(CallEnv::bare(
            &adapter.label,
            spec.limits.call_timeout,
            env.sink(None),
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
    let mut resolve = |caps: &[crate::plugin::model::Capability], t: Option<&Target>| {
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

    let all_leases = super::lease::paths(
        &desc.leases,
        &targets,
        &pairs(&adapter_params),
        &spec.grants,
    )
    .map_err(|e| anyhow!("{}: {adapter_label}: {e}", spec.path.display()))?;
    let mut lease_paths = Vec::new();
    let mut remote_leases: BTreeMap<String, Vec<std::path::PathBuf>> = BTreeMap::new();
    for (host, p) in all_leases {
        if host == "local" {
            lease_paths.push(p);
        } else {
            remote_leases.entry(host).or_default().push(p);
        }
    }
    Ok(AdapterSetup {
        adapter_label,
        desc,
        targets,
        adapter_params: pairs(&adapter_params),
        secrets,
        fleet_caps,
        target_caps,
        step_caps,
        lease_paths,
        remote_leases,
    })
}

impl Prepared {
    /// The run of rollout `id` with this spec's plugins, from journal record `first_seq` on.
    pub(crate) fn run(
        &self,
        env: &Env,
        id: i64,
        plan: XPlan,
        constraints: Vec<Constraint>,
        first_seq: i64,
    ) -> Result<run::Run> {
        let (transport, decider) = self.runner(env, id);
        run::Run::new(
            env.clone(),
            id,
            self.setup.clone(),
            transport,
            decider,
            plan,
            constraints,
            first_seq,
        )
    }

    /// Where the steps run and who decides after each wave, for rollout `id`.
    fn runner(&self, env: &Env, id: i64) -> (Arc<dyn Transport>, Arc<dyn Decide>) {
        let local = Local {
            adapter: self.adapter.clone(),
            label: self.adapter_label.clone(),
            sink: env.sink(Some(id)),
            secrets: self.secrets.clone(),
            limits: self.spec.limits,
        };
        let transport: Arc<dyn Transport> = match &self.remote {
            Some(remote) => Arc::new(crate::remote::route::Routed {
                local,
                remote: remote.clone(),
            }),
            None => Arc::new(local),
        };
        let decider = Arc::new(run::PluginDecider {
            plugin: self.strategy.clone(),
            label: self.strategy_label.clone(),
            params: self.strategy_params.clone(),
            budget: self.spec.limits.call_timeout,
            sink: env.sink(Some(id)),
        });
        (transport, decider)
    }

    fn fleet_env(&self, env: &Env, rollout: Option<i64>) -> Arc<CallEnv> {
        fleet_call(
            &self.adapter_label,
            &self.fleet_caps,
            &self.secrets,
            env.sink(rollout),
            self.spec.limits,
        )
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

    /// The adapter's estimate of its steps for a plan of `waves` waves (contract 1.2; empty
    /// for older adapters).
    pub async fn estimate(&self, env: &Env, waves: u32) -> Result<Estimate> {
        self.adapter
            .estimate(
                self.fleet_env(env, None),
                &self.targets,
                &self.adapter_params,
                waves,
            )
            .await?
            .map_err(|e| {
                anyhow!(
                    "{} could not estimate its steps: {}",
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
        let mut plan = plan::expand(&plan, &self.desc, &self.targets, &constraints)
            .map_err(|e| anyhow!("the plan of {} was refused: {e}", self.strategy_label))?;
        super::analysis::place(&mut plan, &self.spec)?;
        Ok((plan, constraints))
    }

    /// Preflight findings of the adapter, told the waves of `plan`.
    pub async fn preflight(
        &self,
        env: &Env,
        rollout: Option<i64>,
        plan: &XPlan,
    ) -> Result<Vec<Finding>> {
        let call = self.fleet_env(env, rollout);
        let ctx = crate::plugin::model::PreflightContext {
            rollout_id: rollout.map(|r| r.to_string()).unwrap_or_default(),
            params: self.adapter_params.clone(),
            strategy: self.strategy_label.clone(),
            dirs: call.dir_grants(),
            waves: plan.wave_targets(),
        };
        // Remote targets are checked by their hosts' agents, where their files are; the
        // controller checks only local ones (or the fleet, when every target is local).
        let mut findings = Vec::new();
        let local: Vec<Target> = self
            .targets
            .iter()
            .filter(|t| t.host == "local")
            .cloned()
            .collect();
        if let Some(remote) = &self.remote {
            for host in remote.sessions.keys() {
                let on: Vec<Target> = self
                    .targets
                    .iter()
                    .filter(|t| &t.host == host)
                    .cloned()
                    .collect();
                let f = remote
                    .preflight(host, on, ctx.clone(), &self.fleet_caps)
                    .await
                    .map_err(|e| anyhow!("{} preflight failed: {e:#}", self.adapter_label))?;
                findings.extend(f);
            }
            if local.is_empty() {
                return Ok(findings);
            }
        }
        let mine = self
            .adapter
            .preflight(call, &local, &ctx)
            .await?
            .map_err(|e| {
                anyhow!(
                    "{} preflight failed: {}",
                    self.adapter_label,
                    plugin_error(&e)
                )
            })?;
        findings.extend(mine);
        Ok(findings)
    }
}

fn plugin_error(e: &crate::plugin::model::PluginError) -> String {
    match &e.hint {
        Some(h) => format!("{} ({h})", e.message),
        None => e.message.clone(),
    }
}

/// A fleet-wide adapter call (preflight, constraints) with the fleet's grants.
pub fn fleet_call(
    label: &str,
    caps: &Effective,
    secrets: &BTreeMap<String, String>,
    sink: Arc<dyn crate::plugin::Sink>,
    limits: crate::spec::Limits,
) -> Arc<CallEnv> {
    Arc::new(CallEnv {
        plugin: label.to_string(),
        step: None,
        target: None,
        caps: caps.clone(),
        secrets: caps.secret_values(secrets),
        sink,
        budget: limits.call_timeout,
        limits,
    })
}
