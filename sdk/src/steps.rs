//! The step table: one [`StepDef`] per step drives both `describe` and the dispatch of
//! `run-step` and `undo-step`.

use crate::__private::adapter::exports::cutover::plugin::adapter::StepError;
use crate::{
    About, Access, Call, Capability, Description, DirRequest, Output, Result, Step, StepContext,
    StepKind, Target,
};

/// A capability request, written as a constant (`{name}` placeholders allowed).
#[derive(Debug, Clone, Copy)]
pub enum Cap {
    /// A directory with its access.
    Dir(&'static str, Access),
    /// A program `exec` may run.
    Exec(&'static str),
    /// A host (`host[:port]` or a URL) HTTP may reach.
    Http(&'static str),
    /// A `host:port` TCP conversations may reach (see [`crate::tcp`]).
    Tcp(&'static str),
    /// A secret `secrets::get` may read.
    Secret(&'static str),
    /// An environment variable the adapter may set for its programs.
    Env(&'static str),
}

impl Cap {
    /// The contract's form.
    pub fn capability(self) -> Capability {
        match self {
            Cap::Dir(p, access) => Capability::Dir(DirRequest {
                path: p.into(),
                access,
            }),
            Cap::Exec(x) => Capability::Exec(x.into()),
            Cap::Http(x) => Capability::Http(x.into()),
            Cap::Tcp(x) => Capability::Tcp(x.into()),
            Cap::Secret(x) => Capability::Secret(x.into()),
            Cap::Env(x) => Capability::Env(x.into()),
        }
    }
}

/// What a step runs.
pub type RunFn = fn(&Call) -> Result<Vec<Output>>;
/// What undoes a step.
pub type UndoFn = fn(&Call) -> Result<()>;

/// One step: what the host is told about it and the functions that run and undo it. Start
/// from [`StepDef::TARGET`] or [`StepDef::FLEET`] and set what differs:
///
/// ```ignore
/// StepDef { name: "switch", about: "point `current` at the new release", run: switch,
///           undo: Some(switch_back), idempotent: true, timeout_s: 10,
///           caps: &[Cap::Dir("{root}", Access::ReadWrite)], ..StepDef::TARGET }
/// ```
#[derive(Clone, Copy)]
pub struct StepDef {
    /// Unique within the adapter: lowercase letters, digits and `-`.
    pub name: &'static str,
    /// One line for the operator.
    pub about: &'static str,
    pub kind: StepKind,
    pub run: RunFn,
    /// The undo; the step is undoable exactly when there is one.
    pub undo: Option<UndoFn>,
    /// Running it twice has the effect of running it once.
    pub idempotent: bool,
    /// The same for its undo.
    pub undo_idempotent: bool,
    /// Default budget in seconds.
    pub timeout_s: u32,
    /// Capabilities only this step (and its undo) gets.
    pub caps: &'static [Cap],
}

fn missing(c: &Call) -> Result<Vec<Output>> {
    Err(crate::Error::new(format!(
        "step `{}` has no run function",
        c.step
    )))
}

impl StepDef {
    /// A target step of the rollout phase, not idempotent, no undo, 60 s.
    pub const TARGET: StepDef = StepDef {
        name: "",
        about: "",
        kind: StepKind::TargetRollout,
        run: missing,
        undo: None,
        idempotent: false,
        undo_idempotent: false,
        timeout_s: 60,
        caps: &[],
    };

    /// A fleet step of the switch phase, not idempotent, no undo, 60 s.
    pub const FLEET: StepDef = StepDef {
        kind: StepKind::FleetSwitch,
        ..StepDef::TARGET
    };

    /// What the host is told.
    pub fn step(&self) -> Step {
        Step {
            name: self.name.into(),
            description: self.about.into(),
            kind: self.kind,
            undoable: self.undo.is_some(),
            idempotent: self.idempotent,
            undo_idempotent: self.undo.is_some() && self.undo_idempotent,
            default_timeout_s: self.timeout_s,
            capabilities: self.caps.iter().map(|c| c.capability()).collect(),
        }
    }
}

/// The description: `about` plus the table's steps.
pub fn describe(about: About, steps: &[StepDef]) -> Description {
    Description {
        name: about.name.into(),
        version: about.version.into(),
        summary: about.summary.into(),
        parameters: about.parameters,
        capabilities: about.capabilities,
        steps: steps.iter().map(StepDef::step).collect(),
        leases: about.leases,
    }
}

fn find<'a>(steps: &'a [StepDef], name: &str) -> std::result::Result<&'a StepDef, StepError> {
    steps.iter().find(|s| s.name == name).ok_or_else(|| {
        crate::Error::new(format!(
            "unknown step `{name}` (this adapter has: {})",
            steps.iter().map(|s| s.name).collect::<Vec<_>>().join(", ")
        ))
        .into()
    })
}

/// Dispatch `run-step`.
pub fn run(
    steps: &[StepDef],
    step: String,
    target: Option<Target>,
    ctx: StepContext,
) -> std::result::Result<Vec<Output>, StepError> {
    let def = find(steps, &step)?;
    crate::files::set_granted(&ctx.dirs);
    (def.run)(&Call { step, target, ctx }).map_err(Into::into)
}

/// Dispatch `undo-step`.
pub fn undo(
    steps: &[StepDef],
    step: String,
    target: Option<Target>,
    ctx: StepContext,
) -> std::result::Result<(), StepError> {
    let def = find(steps, &step)?;
    let Some(undo) = def.undo else {
        return Err(crate::Error::new(format!("step `{step}` has no undo")).into());
    };
    crate::files::set_granted(&ctx.dirs);
    undo(&Call { step, target, ctx }).map_err(Into::into)
}
