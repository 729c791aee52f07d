//! The host's own model of what plugins say and are told. The engine works only with these
//! types; each contract version (`since_v1_0_0`, ...) converts its generated bindings to and
//! from them, so a new contract version never touches the engine.

/// A key/value pair: parameters, labels and step outputs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Pair {
    pub key: String,
    pub value: String,
}

/// One node of the fleet.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub id: String,
    pub host: String,
    pub labels: Vec<Pair>,
}

/// A rule every plan must respect.
#[derive(Debug, Clone)]
pub struct Constraint {
    pub name: String,
    pub kind: ConstraintKind,
}

/// The kinds of constraint.
#[derive(Debug, Clone)]
pub enum ConstraintKind {
    MaxTogether(MaxTogether),
    Order(Order),
}

/// At most `max` of `members` in one wave.
#[derive(Debug, Clone)]
pub struct MaxTogether {
    pub members: Vec<String>,
    pub max: u32,
}

/// Every target of `first` in an earlier wave than every target of `then`.
#[derive(Debug, Clone)]
pub struct Order {
    pub first: Vec<String>,
    pub then: Vec<String>,
}

/// An error a plugin reports on purpose.
#[derive(Debug, Clone)]
pub struct PluginError {
    pub message: String,
    pub hint: Option<String>,
}

/// Severity of a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// Access to a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Access {
    Read,
    ReadWrite,
}

/// Why a host call failed, as the plugin is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// Not granted; `grant` is the spec key that would allow it.
    Denied {
        grant: String,
        message: String,
    },
    NotFound(String),
    TimedOut(String),
    Invalid(String),
    Io(String),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::Denied { message, .. } => f.write_str(message),
            HostError::NotFound(m)
            | HostError::TimedOut(m)
            | HostError::Invalid(m)
            | HostError::Io(m) => f.write_str(m),
        }
    }
}

impl From<super::authority::Denied> for HostError {
    fn from(d: super::authority::Denied) -> Self {
        HostError::Denied {
            grant: d.key.to_string(),
            message: d.to_string(),
        }
    }
}

/// What a strategy is.
#[derive(Debug, Clone)]
pub struct StrategyInfo {
    pub name: String,
    pub version: String,
    pub summary: String,
}

/// A batch of targets updated together.
#[derive(Debug, Clone)]
pub struct Wave {
    pub name: String,
    pub targets: Vec<String>,
}

/// A point where the rollout waits.
#[derive(Debug, Clone)]
pub enum Gate {
    Approval(String),
    Soak(u64),
}

/// One stage of a strategy's plan.
#[derive(Debug, Clone)]
pub enum Stage {
    Wave(Wave),
    FleetStep(String),
    Gate(Gate),
}

/// A strategy's plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub stages: Vec<Stage>,
    pub standby: Vec<String>,
}

/// What happened in a wave.
#[derive(Debug, Clone)]
pub struct WaveReport {
    pub wave_index: u32,
    pub wave_count: u32,
    pub succeeded: Vec<String>,
    pub failed: Vec<String>,
    pub failed_total: u32,
    pub target_count: u32,
}

/// What the fleet does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecisionKind {
    Proceed,
    Pause,
    Abort,
    Rollback,
}

/// A strategy's decision after a wave.
#[derive(Debug, Clone)]
pub struct Decision {
    pub kind: DecisionKind,
    pub reason: Option<String>,
}

/// Where and when a step runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    TargetRollout,
    TargetFinalize,
    FleetPrepare,
    FleetSwitch,
    FleetFinalize,
}

/// Where a step runs (a view of [`StepKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Target,
    Fleet,
}

/// When a step runs (a view of [`StepKind`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Prepare,
    Rollout,
    Switch,
    Finalize,
}

impl StepKind {
    /// Where the step runs.
    pub fn scope(self) -> Scope {
        match self {
            StepKind::TargetRollout | StepKind::TargetFinalize => Scope::Target,
            _ => Scope::Fleet,
        }
    }

    /// When the step runs.
    pub fn phase(self) -> Phase {
        match self {
            StepKind::TargetRollout => Phase::Rollout,
            StepKind::FleetPrepare => Phase::Prepare,
            StepKind::FleetSwitch => Phase::Switch,
            StepKind::TargetFinalize | StepKind::FleetFinalize => Phase::Finalize,
        }
    }

    /// The kind of scope × phase, if the pair exists (no target step prepares or switches).
    pub fn of(scope: Scope, phase: Phase) -> Option<StepKind> {
        Some(match (scope, phase) {
            (Scope::Target, Phase::Rollout) => StepKind::TargetRollout,
            (Scope::Target, Phase::Finalize) => StepKind::TargetFinalize,
            (Scope::Fleet, Phase::Prepare) => StepKind::FleetPrepare,
            (Scope::Fleet, Phase::Switch) => StepKind::FleetSwitch,
            (Scope::Fleet, Phase::Finalize) => StepKind::FleetFinalize,
            _ => return None,
        })
    }

    /// Its name in the contract, e.g. `target-rollout`.
    pub fn name(self) -> &'static str {
        match self {
            StepKind::TargetRollout => "target-rollout",
            StepKind::TargetFinalize => "target-finalize",
            StepKind::FleetPrepare => "fleet-prepare",
            StepKind::FleetSwitch => "fleet-switch",
            StepKind::FleetFinalize => "fleet-finalize",
        }
    }
}

/// One step of an adapter's procedure.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub description: String,
    pub kind: StepKind,
    pub undoable: bool,
    pub idempotent: bool,
    pub undo_idempotent: bool,
    pub default_timeout_s: u32,
    pub capabilities: Vec<Capability>,
}

impl Step {
    /// Where the step runs.
    pub fn scope(&self) -> Scope {
        self.kind.scope()
    }

    /// When the step runs.
    pub fn phase(&self) -> Phase {
        self.kind.phase()
    }
}

/// A parameter an adapter accepts.
#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    pub description: String,
    pub required: bool,
    pub per_target: bool,
    pub default: Option<String>,
}

/// A capability an adapter asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    Dir(DirRequest),
    Exec(String),
    Http(String),
    /// A `host:port` for `tcp.converse` (contract 1.1).
    Tcp(String),
    Secret(String),
    Env(String),
}

/// A directory request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRequest {
    pub path: String,
    pub access: Access,
}

/// What an adapter says it is.
#[derive(Debug, Clone)]
pub struct Description {
    pub name: String,
    pub version: String,
    pub summary: String,
    pub parameters: Vec<Parameter>,
    pub capabilities: Vec<Capability>,
    pub steps: Vec<Step>,
    pub leases: Vec<String>,
}

/// How long one step takes, as the adapter estimates it (contract 1.2).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StepEstimate {
    pub step: String,
    pub expected_s: u32,
    /// None: the step's timeout.
    pub worst_s: Option<u32>,
}

/// An adapter's estimate for a rollout (contract 1.2; empty for older adapters).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Estimate {
    pub steps: Vec<StepEstimate>,
    pub notes: Vec<String>,
}

/// Severity of a preflight finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Severity {
    Info,
    Warning,
    Blocker,
}

/// A preflight finding.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub severity: Severity,
    pub target: Option<String>,
    pub message: String,
}

/// A value a step produced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Output {
    pub key: String,
    pub value: String,
    pub secret: bool,
}

/// A directory granted to a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirGrant {
    pub path: String,
    pub access: Access,
}

/// What `preflight` is told.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PreflightContext {
    pub rollout_id: String,
    pub params: Vec<Pair>,
    pub strategy: String,
    pub dirs: Vec<DirGrant>,
    /// The plan's waves (target ids), empty when there is no plan yet (told from 1.3 on).
    #[serde(default)]
    pub waves: Vec<Vec<String>>,
}

/// What a step call is told.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct StepContext {
    pub rollout_id: String,
    pub params: Vec<Pair>,
    pub outputs: Vec<Output>,
    pub attempt: u32,
    pub fleet: Vec<Target>,
    pub dirs: Vec<DirGrant>,
}

/// Why a step failed.
#[derive(Debug, Clone)]
pub struct StepError {
    pub message: String,
    pub transient: bool,
    pub outputs: Vec<Output>,
}

/// Lowercase name of a log level.
pub fn level_name(l: Level) -> &'static str {
    match l {
        Level::Debug => "debug",
        Level::Info => "info",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// Lowercase name of a decision.
pub fn decision_name(d: DecisionKind) -> &'static str {
    match d {
        DecisionKind::Proceed => "proceed",
        DecisionKind::Pause => "pause",
        DecisionKind::Abort => "abort",
        DecisionKind::Rollback => "rollback",
    }
}

/// Lowercase name of a finding's severity.
pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Blocker => "blocker",
    }
}
