//! Running granted commands through the host.

use crate::__private::adapter::cutover::plugin::exec;
pub use crate::__private::adapter::cutover::plugin::exec::{Command, Exit};
use crate::{Error, Result};

/// Run `program args...` and require exit code 0; the error carries the output tail.
pub fn run_ok(program: &str, args: &[&str], timeout_ms: Option<u64>) -> Result<Exit> {
    let exit = run(program, args, timeout_ms)?;
    if exit.code == Some(0) {
        Ok(exit)
    } else {
        Err(Error::new(describe_failure(program, &exit)))
    }
}

/// Run `program args...` and return how it ended (any exit code).
pub fn run(program: &str, args: &[&str], timeout_ms: Option<u64>) -> Result<Exit> {
    exec::run(&Command {
        program: program.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: None,
        env: Vec::new(),
        stdin: None,
        timeout_ms,
    })
    .map_err(Error::from)
}

/// Run `program args...` with `input` on its standard input (a console fed its commands, a
/// login read from a secret) and return how it ended (any exit code).
pub fn run_input(
    program: &str,
    args: &[&str],
    input: &[u8],
    timeout_ms: Option<u64>,
) -> Result<Exit> {
    exec::run(&Command {
        program: program.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: None,
        env: Vec::new(),
        stdin: Some(input.to_vec()),
        timeout_ms,
    })
    .map_err(Error::from)
}

/// Run a fully described command (environment, working directory, input) and return how it
/// ended.
pub fn run_command(cmd: &Command) -> Result<Exit> {
    exec::run(cmd).map_err(Error::from)
}

/// "`prog` exited with 3: <last lines of stderr/stdout>".
pub fn describe_failure(program: &str, exit: &Exit) -> String {
    let how = if exit.timed_out {
        "timed out".to_string()
    } else {
        match exit.code {
            Some(c) => format!("exited with {c}"),
            None => "was killed".to_string(),
        }
    };
    let text = if exit.stderr.trim().is_empty() {
        &exit.stdout
    } else {
        &exit.stderr
    };
    let tail: Vec<&str> = text.lines().rev().take(5).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    format!("`{program}` {how}: {}", tail.join(" | "))
}
