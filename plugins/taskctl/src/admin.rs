//! The `ctladmin` character client (seed L115-123, L141-145): commands typed in a logged-in
//! session. How the client is started without a terminal (its options, how it logs in, how
//! it reads commands) is not documented, so all of it is a parameter:
//!
//! - `ctladmin`: the program, on the target's host;
//! - `ctladmin-args`: its arguments (space-separated), default none;
//! - `ctladmin-input`: `stdin` (default: the command is written to its standard input, one
//!   line, after the login lines) or `args` (the command's words follow `ctladmin-args`);
//! - `ctladmin-login`: the name of a secret whose lines are written to its standard input
//!   before the command (a user and a password, say), default none.
//!
//! One session per command, so each command's output is its own.

use cutover_sdk::{cmd, fail, secrets, Call, Result};

/// Seed L143: the `listcirn` status of a started node. No other status text is documented.
pub const STARTED: &str = "5-启动状态";

/// How to run `ctladmin`.
pub struct Admin {
    program: String,
    args: Vec<String>,
    on_stdin: bool,
    login: Option<String>,
}

impl Admin {
    pub fn of(c: &Call) -> Result<Admin> {
        let on_stdin = match c.value_or("ctladmin-input", "stdin") {
            "stdin" => true,
            "args" => false,
            other => {
                return Err(fail(format!(
                    "parameter `ctladmin-input` must be stdin or args, got `{other}`"
                )))
            }
        };
        let login = match c.value_or("ctladmin-login", "") {
            "" => None,
            name => Some(secrets::get(name)?),
        };
        Ok(Admin {
            program: c.value_or("ctladmin", "").to_string(),
            args: c
                .value_or("ctladmin-args", "")
                .split_whitespace()
                .map(str::to_string)
                .collect(),
            on_stdin,
            login,
        })
    }

    /// Run one session with `command` (`listcirn`, `listjt`, ...); its standard output.
    pub fn run(&self, command: &str) -> Result<String> {
        if self.program.is_empty() {
            return Err(fail(
                "no `ctladmin`: set it (the ctladmin program on the target's host) on the \
                 target or under [adapter.params]",
            ));
        }
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut input = String::new();
        if let Some(login) = &self.login {
            input.push_str(login.trim_end_matches('\n'));
            input.push('\n');
        }
        if self.on_stdin {
            input.push_str(command);
            input.push('\n');
        } else {
            args.extend(command.split_whitespace());
        }
        let exit = cmd::run_input(&self.program, &args, input.as_bytes(), None)?;
        if exit.code != Some(0) {
            return Err(fail(format!(
                "ctladmin `{command}`: {}",
                cmd::describe_failure(&self.program, &exit)
            )));
        }
        Ok(exit.stdout)
    }
}

/// The row of a `listcirn` listing (seed L119: the platform's nodes with their CTL node
/// numbers; its columns are not documented) naming node `name` as a whole word. A node's
/// name can also stand in its children's rows (as their parent), so of the rows naming it,
/// the one naming it in the earliest column.
pub fn row<'a>(listing: &'a str, name: &str) -> Option<&'a str> {
    listing
        .lines()
        .filter_map(|l| Some((l.split_whitespace().position(|w| w == name)?, l)))
        .min_by_key(|(at, _)| *at)
        .map(|(_, l)| l.trim())
}

/// Whether a `listcirn` row shows the documented started status; any other text, which the
/// seed does not show, counts as not started.
pub fn started(row: &str) -> bool {
    row.split_whitespace().any(|w| w == STARTED)
}
