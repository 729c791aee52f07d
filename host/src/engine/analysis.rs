//! Analysis gates: where the spec's `[[analysis]]` tables go in a plan, and how a
//! measurement is taken. A provider is an adapter plugin with a fleet step `measure` (no
//! undo, idempotent) that outputs `value`, a number; it runs with the spec's grants and the
//! analysis's `params`. A provider that fails, or gives no number, makes the measurement
//! inconclusive, never passed.

use super::plan::{XPlan, XStage};
use super::prepare::{admit, resolve_adapter, AdapterSetup};
use super::transport::BoxFuture;
use super::Env;
use crate::plugin::model::StepContext;
use crate::plugin::AdapterPlugin;
use crate::spec::analysis::Analysis;
use crate::spec::Spec;
use anyhow::{anyhow, bail, Result};
use std::collections::HashMap;
use std::sync::Arc;

/// Insert the analysis gates after their waves; analyses named in the strategy's `analysis`
/// parameter go after the first wave.
pub fn place(plan: &mut XPlan, spec: &Spec) -> Result<()> {
    let named: Vec<String> = spec
        .strategy
        .params
        .iter()
        .filter(|(k, _)| k == "analysis")
        .flat_map(|(_, v)| {
            v.split(',')
                .map(|s| s.trim().to_string())
                .collect::<Vec<_>>()
        })
        .filter(|s| !s.is_empty())
        .collect();
    for n in &named {
        if !spec.analyses.iter().any(|a| &a.name == n) {
            bail!(
                "{}: [strategy.params] analysis names `{n}`, which no [[analysis]] table defines",
                spec.path.display()
            );
        }
    }
    for a in spec.analyses.iter().filter(|a| !a.background) {
        let after = if named.contains(&a.name) {
            1
        } else {
            a.after_wave.unwrap_or(1)
        };
        let at = plan
            .stages
            .iter()
            .position(|s| matches!(s, XStage::Wave { index: Some(i), .. } if *i + 1 == after))
            .ok_or_else(|| {
                anyhow!(
                    "{}: analysis `{}` goes after wave {after}, but the plan has {} wave(s)",
                    spec.path.display(),
                    a.name,
                    plan.waves
                )
            })?;
        // After the wave and the gates already placed there.
        let mut at = at + 1;
        while matches!(plan.stages.get(at), Some(XStage::Analysis { .. })) {
            at += 1;
        }
        plan.stages.insert(
            at,
            XStage::Analysis {
                name: a.name.clone(),
                count: a.count,
                interval: a.interval.as_secs(),
            },
        );
    }
    Ok(())
}

/// Takes one measurement of an analysis: the value, or why there is none (inconclusive).
pub trait Measure: Send + Sync {
    fn measure<'a>(&'a self, analysis: &'a Analysis) -> BoxFuture<'a, Result<f64, String>>;
}

/// Measurements by the spec's provider plugins, loaded on first use.
pub struct Providers {
    env: Env,
    spec: Spec,
    loaded: tokio::sync::Mutex<HashMap<String, Arc<(AdapterPlugin, AdapterSetup)>>>,
}

impl Providers {
    pub fn new(env: Env, spec: Spec) -> Providers {
        Providers {
            env,
            spec,
            loaded: Default::default(),
        }
    }

    async fn provider(&self, a: &Analysis) -> Result<Arc<(AdapterPlugin, AdapterSetup)>> {
        let mut loaded = self.loaded.lock().await;
        if let Some(p) = loaded.get(&a.name) {
            return Ok(p.clone());
        }
        let role = format!("analysis provider `{}`", a.name);
        let (path, plugin) = admit(&self.env, &self.spec, &role, &a.provider)?;
        let adapter =
            self.env
                .runtime
                .adapter(&path, Some(&plugin.digest[7..]), self.spec.limits.memory)?;
        // The provider's parameters are the analysis's; its grants are the spec's.
        let mut spec = self.spec.clone();
        spec.adapter = a.provider.clone();
        spec.timeouts.clear();
        let setup = resolve_adapter(&self.env, &spec, &adapter).await?;
        if !setup.desc.steps.iter().any(|s| s.name == "measure") {
            bail!(
                "{} is not an analysis provider: it has no step `measure` (its steps: {})",
                setup.adapter_label,
                setup
                    .desc
                    .steps
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        let p = Arc::new((adapter, setup));
        loaded.insert(a.name.clone(), p.clone());
        Ok(p)
    }
}

impl Measure for Providers {
    fn measure<'a>(&'a self, a: &'a Analysis) -> BoxFuture<'a, Result<f64, String>> {
        Box::pin(async move {
            let p = self.provider(a).await.map_err(|e| format!("{e:#}"))?;
            let (plugin, setup) = &*p;
            let caps = setup
                .step_caps
                .get(&(String::new(), "measure".to_string()))
                .unwrap_or(&setup.fleet_caps);
            let budget = setup
                .desc
                .steps
                .iter()
                .find(|s| s.name == "measure")
                .map(|s| std::time::Duration::from_secs(s.default_timeout_s.into()))
                .unwrap_or(self.spec.limits.call_timeout)
                .min(self.spec.limits.max_step_timeout);
            let call = crate::plugin::CallEnv {
                plugin: setup.adapter_label.clone(),
                step: Some("measure".into()),
                target: None,
                caps: caps.clone(),
                secrets: caps.secret_values(&setup.secrets),
                sink: self.env.sink(None),
                budget,
                limits: self.spec.limits,
            };
            let ctx = StepContext {
                rollout_id: String::new(),
                params: setup.adapter_params.clone(),
                outputs: Vec::new(),
                attempt: 1,
                fleet: setup.targets.clone(),
                dirs: call.dir_grants(),
            };
            let outputs = plugin
                .run_step(Arc::new(call), "measure", None, &ctx)
                .await
                .map_err(|f| f.to_string())?
                .map_err(|e| e.message)?;
            let v = outputs
                .iter()
                .find(|o| o.key == "value")
                .ok_or_else(|| format!("{} gave no `value`", setup.adapter_label))?;
            v.value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| {
                    format!(
                        "{} gave `value` = `{}`, not a number",
                        setup.adapter_label, v.value
                    )
                })
        })
    }
}
