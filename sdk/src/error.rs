//! One error type for plugin code: host errors, I/O errors and messages convert into it, so
//! `?` works everywhere; the export glue turns it into what the contract returns.

use crate::__private::adapter::exports::cutover::plugin::adapter::StepError;
use crate::{HostError, Output, PluginError};

/// A plugin's error: a message for the operator and what the host should know about it.
#[derive(Debug, Clone)]
pub struct Error {
    /// Shown to the operator as is.
    pub message: String,
    /// What the operator can do about it, if known.
    pub hint: Option<String>,
    /// Retrying might help (the host may retry a step within its budget).
    pub transient: bool,
    /// Outputs worth keeping though the step failed (e.g. a key already issued).
    pub outputs: Vec<Output>,
    /// The host's refusal, when the error is one: the spec key that would allow it.
    pub denied_by: Option<String>,
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A permanent failure.
    pub fn new(message: impl Into<String>) -> Error {
        Error {
            message: message.into(),
            hint: None,
            transient: false,
            outputs: Vec::new(),
            denied_by: None,
        }
    }

    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Error {
        Error {
            transient: true,
            ..Error::new(message)
        }
    }

    /// The same error with a hint for the operator.
    pub fn hint(self, hint: impl Into<String>) -> Error {
        Error {
            hint: Some(hint.into()),
            ..self
        }
    }

    /// The same error keeping `outputs`.
    pub fn keep(self, outputs: Vec<Output>) -> Error {
        Error { outputs, ..self }
    }

    /// The same error with `context: ` in front of its message.
    pub fn context(self, context: impl std::fmt::Display) -> Error {
        Error {
            message: format!("{context}: {}", self.message),
            ..self
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(h) = &self.hint {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<HostError> for Error {
    fn from(e: HostError) -> Error {
        match e {
            HostError::Denied(d) => Error {
                denied_by: Some(d.grant),
                ..Error::new(d.message)
            },
            HostError::TimedOut(m) => Error::transient(m),
            HostError::NotFound(m) | HostError::Invalid(m) | HostError::Io(m) => Error::new(m),
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::new(e.to_string())
    }
}

impl From<String> for Error {
    fn from(m: String) -> Error {
        Error::new(m)
    }
}

impl From<&str> for Error {
    fn from(m: &str) -> Error {
        Error::new(m)
    }
}

impl From<Error> for StepError {
    fn from(e: Error) -> StepError {
        StepError {
            message: e.to_string(),
            transient: e.transient,
            outputs: e.outputs,
        }
    }
}

impl From<Error> for PluginError {
    fn from(e: Error) -> PluginError {
        PluginError {
            message: e.message,
            hint: e.hint,
        }
    }
}
