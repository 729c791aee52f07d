//! Building an adapter's description: steps, parameters and capability requests.

use crate::adapter_types::{Access, Capability, DirRequest, Parameter, Phase, Scope, Step};

/// A step run once per target in the `rollout` phase.
pub fn target_step(
    name: &str,
    description: &str,
    undoable: bool,
    idempotent: bool,
    default_timeout_s: u32,
) -> Step {
    Step {
        name: name.into(),
        description: description.into(),
        scope: Scope::Target,
        phase: Phase::Rollout,
        undoable,
        idempotent,
        default_timeout_s,
    }
}

/// A step run once for the whole fleet in `phase`.
pub fn fleet_step(
    name: &str,
    description: &str,
    phase: Phase,
    undoable: bool,
    idempotent: bool,
    default_timeout_s: u32,
) -> Step {
    Step {
        scope: Scope::Fleet,
        phase,
        ..target_step(name, description, undoable, idempotent, default_timeout_s)
    }
}

/// A parameter: from `[adapter.params]`, or per target (a label) when `per_target`.
pub fn parameter(
    name: &str,
    description: &str,
    required: bool,
    per_target: bool,
    default: Option<&str>,
) -> Parameter {
    Parameter {
        name: name.into(),
        description: description.into(),
        required,
        per_target,
        default: default.map(str::to_string),
    }
}

/// A directory request (`{label}` placeholders allowed).
pub fn dir(path: &str, access: Access) -> Capability {
    Capability::Dir(DirRequest {
        path: path.into(),
        access,
    })
}
