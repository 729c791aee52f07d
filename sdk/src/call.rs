//! One step call: its target, parameters, earlier outputs and attempt, with lookups whose
//! errors name the key to add.

use crate::{params, Error, Output, Pair, Result, StepContext, Target};
use std::str::FromStr;

/// A step call as the step function sees it.
pub struct Call {
    /// The step's name.
    pub step: String,
    /// The target, none for fleet steps.
    pub target: Option<Target>,
    pub ctx: StepContext,
}

impl Call {
    /// The target; an error for fleet steps.
    pub fn target(&self) -> Result<&Target> {
        self.target.as_ref().ok_or_else(|| {
            Error::new(format!(
                "step `{}` runs per target, not for the fleet",
                self.step
            ))
        })
    }

    /// A label of the target, or an error naming the label to add in the spec.
    pub fn label(&self, key: &str) -> Result<&str> {
        params::label(self.target()?, key)
    }

    /// A spec parameter, or an error naming the key to add under `[adapter.params]`.
    pub fn param(&self, key: &str) -> Result<&str> {
        params::param(&self.ctx.params, key)
    }

    /// A spec parameter if set.
    pub fn param_opt(&self, key: &str) -> Option<&str> {
        params::get(&self.ctx.params, key)
    }

    /// The target's label, else the spec parameter, else `default`.
    pub fn value_or<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.target
            .as_ref()
            .and_then(|t| params::get(&t.labels, key))
            .or_else(|| params::get(&self.ctx.params, key))
            .unwrap_or(default)
    }

    /// A parameter (label first, then spec) parsed as `T`, `default` when absent; the error
    /// names the key and the value.
    pub fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T> {
        let v = self
            .target
            .as_ref()
            .and_then(|t| params::get(&t.labels, key))
            .or_else(|| params::get(&self.ctx.params, key));
        params::parse(key, v, default)
    }

    /// The spec's parameters.
    pub fn params(&self) -> &[Pair] {
        &self.ctx.params
    }

    /// The latest output named `key` of earlier steps.
    pub fn output(&self, key: &str) -> Option<&str> {
        params::output(&self.ctx.outputs, key)
    }

    /// Outputs of earlier steps.
    pub fn outputs(&self) -> &[Output] {
        &self.ctx.outputs
    }

    /// 1 on the first run of this step, more on a re-run.
    pub fn attempt(&self) -> u32 {
        self.ctx.attempt
    }

    /// Every target of the rollout (fleet steps only).
    pub fn fleet(&self) -> &[Target] {
        &self.ctx.fleet
    }
}
