//! Logging and progress through the host (lines are journaled and shown by the CLI).

use crate::__private::adapter::cutover::plugin::log as host;
use crate::Level;

/// Write one log line.
pub fn log(level: Level, message: &str) {
    host::write(level, message)
}

/// Report progress of the current call: a message and an optional fraction 0.0..=1.0.
pub fn progress(message: &str, fraction: Option<f32>) {
    host::progress(message, fraction)
}

/// Log at info level, with `format!` arguments.
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { $crate::log($crate::Level::Info, &format!($($arg)*)) };
}

/// Log at warn level, with `format!` arguments.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => { $crate::log($crate::Level::Warn, &format!($($arg)*)) };
}

/// Log at debug level, with `format!` arguments.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { $crate::log($crate::Level::Debug, &format!($($arg)*)) };
}

/// Log at error level, with `format!` arguments.
#[macro_export]
macro_rules! error {
    ($($arg:tt)*) => { $crate::log($crate::Level::Error, &format!($($arg)*)) };
}

/// Report progress with `format!` arguments: `progress!(0.5, "copied {n} files")`.
#[macro_export]
macro_rules! progress {
    ($fraction:expr, $($arg:tt)*) => { $crate::progress(&format!($($arg)*), Some($fraction)) };
}

/// Fail with a formatted message: `bail!("no {key}")` returns `Err(Error::new(...))`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::Error::new(format!($($arg)*))) };
}
