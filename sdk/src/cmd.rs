//! Running granted commands through the host.

use crate::adapter::cutover::plugin::exec::{self, Command, Exit};
use crate::adapter_types::StepError;
use crate::step::fail;

/// Run `program args...` and require exit code 0; the error carries the output tail.
pub fn run_ok(program: &str, args: &[&str], timeout_ms: Option<u64>) -> Result<Exit, StepError> {
    let exit = run(program, args, timeout_ms)?;
    if exit.code == Some(0) {
        Ok(exit)
    } else {
        Err(fail(describe_failure(program, &exit)))
    }
}

/// Run `program args...` and return how it ended (any exit code).
pub fn run(program: &str, args: &[&str], timeout_ms: Option<u64>) -> Result<Exit, StepError> {
    exec::run(&Command {
        program: program.to_string(),
        args: args.iter().map(|a| a.to_string()).collect(),
        cwd: None,
        env: Vec::new(),
        stdin: None,
        timeout_ms,
    })
    .map_err(fail)
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
