//! Building an adapter's description: steps, parameters and capability requests.

use crate::adapter_types::{Access, Capability, DirRequest, Parameter, Phase, Scope, Step};

/// A step run once per target in the `rollout` phase. Its undo is declared as idempotent as
/// the step itself.
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
        // An idempotent step's undo usually is too; set it to false where it is not.
        undo_idempotent: idempotent,
        default_timeout_s,
        capabilities: Vec::new(),
    }
}

/// `step` with capabilities only it (and its undo) gets, on top of the description's. Give
/// write access and the programs a step runs to different steps: the host refuses a call
/// that could write a program it may run.
pub fn with_caps(step: Step, capabilities: Vec<Capability>) -> Step {
    Step {
        capabilities,
        ..step
    }
}

/// A program `exec` may run (`{label}` placeholders allowed).
pub fn exec(path: &str) -> Capability {
    Capability::Exec(path.into())
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
