//! What the journal holds: records of rollouts, steps, targets and events.

use serde::{Deserialize, Serialize};

/// A value a step produced, as journaled.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct OutputRec {
    pub key: String,
    pub value: String,
    #[serde(default)]
    pub secret: bool,
}

/// One journaled write.
#[derive(Debug, Clone)]
pub enum Op {
    /// A step (or its undo) starts.
    Begin(StepStart),
    /// It ended.
    Finish(StepEnd),
    /// What happened to a target, in words (its state is derived from its step records).
    Detail {
        rollout: i64,
        target: String,
        detail: String,
    },
    /// A remote host did not come back within a step's budget: its targets failed.
    HostDown {
        rollout: i64,
        host: String,
        reason: String,
    },
    /// A log line of a plugin or the engine.
    Event {
        rollout: i64,
        level: String,
        target: String,
        step: String,
        message: String,
    },
}

/// Run or undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    Run,
    Undo,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::Undo => "undo",
        }
    }
}

/// Where a target stands in a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetState {
    Pending,
    Running,
    Updated,
    Failed,
    RolledBack,
    /// An undo failed: the operator must look.
    NeedsAttention,
}

impl TargetState {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetState::Pending => "pending",
            TargetState::Running => "running",
            TargetState::Updated => "updated",
            TargetState::Failed => "failed",
            TargetState::RolledBack => "rolled-back",
            TargetState::NeedsAttention => "needs-attention",
        }
    }

    pub fn parse(s: &str) -> TargetState {
        match s {
            "running" => TargetState::Running,
            "updated" => TargetState::Updated,
            "failed" => TargetState::Failed,
            "rolled-back" => TargetState::RolledBack,
            "needs-attention" => TargetState::NeedsAttention,
            _ => TargetState::Pending,
        }
    }
}

/// A rollout's overall status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Running,
    Paused,
    /// Stopped by a signal or a journal fault with steps let finish; `resume` goes on.
    Interrupted,
    Completed,
    CompletedWithFailures,
    Aborted,
    RolledBack,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Interrupted => "interrupted",
            Status::Completed => "completed",
            Status::CompletedWithFailures => "completed-with-failures",
            Status::Aborted => "aborted",
            Status::RolledBack => "rolled-back",
            Status::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Status {
        match s {
            "paused" => Status::Paused,
            "interrupted" => Status::Interrupted,
            "completed" => Status::Completed,
            "completed-with-failures" => Status::CompletedWithFailures,
            "aborted" => Status::Aborted,
            "rolled-back" => Status::RolledBack,
            "failed" => Status::Failed,
            _ => Status::Running,
        }
    }

    /// Finished rollouts hold no lease and cannot be resumed.
    pub fn is_final(self) -> bool {
        !matches!(self, Status::Running | Status::Paused | Status::Interrupted)
    }
}

/// A rollout row.
#[derive(Debug, Clone, Serialize)]
pub struct RolloutRow {
    pub id: i64,
    pub name: String,
    pub spec_path: String,
    #[serde(skip)]
    pub spec_text: String,
    pub status: Status,
    pub reason: String,
    #[serde(skip)]
    pub plan: String,
    /// Index of the next stage to run.
    pub stage: i64,
    pub pid: i64,
    pub created: i64,
    pub updated: i64,
    /// Set by `cutover abort` while another process runs the rollout.
    pub abort_requested: bool,
    pub direction: Direction,
}

/// A step row.
#[derive(Debug, Clone, Serialize)]
pub struct StepRow {
    pub seq: i64,
    pub stage: i64,
    pub target: String,
    pub step: String,
    pub action: Action,
    pub attempt: u32,
    pub state: StepState,
    pub outputs: Vec<OutputRec>,
    pub error: Option<String>,
    pub started: i64,
    pub ended: Option<i64>,
}

/// A log line of a rollout.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    pub ts: i64,
    pub level: String,
    pub target: String,
    pub step: String,
    pub message: String,
}

/// A target row.
#[derive(Debug, Clone, Serialize)]
pub struct TargetRow {
    pub target: String,
    pub state: TargetState,
    pub detail: String,
}

/// How durable a commit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// fsync the WAL at every commit: survives power loss (the default).
    Full,
    /// Survives a crash of cutover, not of the machine.
    Normal,
}

/// Which way a rollout is going. A rollback is recorded before its first undo, so `resume`
/// after a crash goes on in the same direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    Forward,
    Rollback,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Forward => "forward",
            Direction::Rollback => "rollback",
        }
    }

    pub fn parse(s: &str) -> Direction {
        if s == "rollback" {
            Direction::Rollback
        } else {
            Direction::Forward
        }
    }
}

/// Where one step record stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Begun and not (yet) ended: in flight, or left so by a crash.
    Started,
    Ok,
    Failed,
    /// Left in flight by a crash and to be run again.
    Abandoned,
    /// An undo that could not reach its host (it did not come back): the next rollback
    /// tries it again.
    Unreached,
    /// An undo deliberately not run: the strategy leaves targets failing in that wave as
    /// they are, for the operator (`on-failure = "complete"`). Its error says why.
    Kept,
}

impl StepState {
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Started => "started",
            StepState::Ok => "ok",
            StepState::Failed => "failed",
            StepState::Abandoned => "abandoned",
            StepState::Unreached => "unreached",
            StepState::Kept => "kept",
        }
    }

    pub fn parse(s: &str) -> StepState {
        match s {
            "ok" => StepState::Ok,
            "failed" => StepState::Failed,
            "abandoned" => StepState::Abandoned,
            "unreached" => StepState::Unreached,
            "kept" => StepState::Kept,
            _ => StepState::Started,
        }
    }
}

/// A step (or undo) beginning: durable before it runs.
#[derive(Debug, Clone)]
pub struct StepStart {
    pub rollout: i64,
    pub seq: i64,
    pub stage: i64,
    pub target: String,
    pub step: String,
    pub action: Action,
    pub attempt: u32,
}

/// A step (or undo) ending.
#[derive(Debug, Clone)]
pub struct StepEnd {
    pub rollout: i64,
    pub seq: i64,
    pub outputs: Vec<OutputRec>,
    /// None when it succeeded.
    pub error: Option<String>,
    /// It failed because its host could not be reached (recorded as `unreached`).
    pub unreached: bool,
    /// An undo left undone on purpose (recorded as `kept`, with `error` saying why).
    pub kept: bool,
}

/// A host a rollout lost (see [`Op::HostDown`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostHost {
    pub host: String,
    pub reason: String,
    /// When it was found down (ms since the epoch).
    pub at_ms: i64,
}
