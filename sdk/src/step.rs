//! Building step results.

use crate::adapter_types::{Output, StepError};

/// A permanent step failure with a message.
pub fn fail(message: impl Into<String>) -> StepError {
    StepError {
        message: message.into(),
        transient: false,
        outputs: Vec::new(),
    }
}

/// A failure worth retrying.
pub fn transient(message: impl Into<String>) -> StepError {
    StepError {
        message: message.into(),
        transient: true,
        outputs: Vec::new(),
    }
}

/// A plain output value.
pub fn out(key: &str, value: impl Into<String>) -> Output {
    Output {
        key: key.to_string(),
        value: value.into(),
        secret: false,
    }
}

/// An output value kept in the journal and redacted wherever it is shown.
pub fn secret(key: &str, value: impl Into<String>) -> Output {
    Output {
        key: key.to_string(),
        value: value.into(),
        secret: true,
    }
}
