//! Building preflight results: findings, and the error that refuses a fleet.

use crate::{Error, Finding, Severity};

/// A finding about `target` (or the whole fleet when none).
pub fn finding(severity: Severity, target: Option<&str>, message: impl Into<String>) -> Finding {
    Finding {
        severity,
        target: target.map(str::to_string),
        message: message.into(),
    }
}

/// A finding that stops the rollout before anything runs.
pub fn blocker(target: Option<&str>, message: impl Into<String>) -> Finding {
    finding(Severity::Blocker, target, message)
}

/// A finding worth saying that does not stop anything (e.g. what could not be checked).
pub fn info(target: Option<&str>, message: impl Into<String>) -> Finding {
    finding(Severity::Info, target, message)
}

/// A finding the operator should read; it does not stop the rollout.
pub fn warning(target: Option<&str>, message: impl Into<String>) -> Finding {
    finding(Severity::Warning, target, message)
}

/// An error from `preflight` or `constraints`, shown to the operator as is.
pub fn refuse(message: impl Into<String>) -> Error {
    Error::new(message)
}
