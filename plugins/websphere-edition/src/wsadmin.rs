//! Running wsadmin (Jython) against the deployment manager, in the forms IBM documents:
//! `wsadmin -lang jython -conntype SOAP -host H -port P [-user U -password W] -c "..."` and
//! `-f script args` ("wsadmin scripting tool", rxml_commandline). wsadmin prints WASX7209I
//! on connecting; a failed command prints WASX7015E (and exits non-zero).

use cutover_sdk::{cmd, fail, secrets, Call, Pair, Result};

/// How to reach the deployment manager.
pub struct Wsadmin {
    program: String,
    args: Vec<String>,
}

/// A Jython string literal of `s` (quotes and backslashes escaped; no line breaks).
pub fn q(s: &str) -> Result<String> {
    if s.contains(['\n', '\r']) {
        return Err(fail(format!(
            "`{s}` contains a line break, which a wsadmin command cannot carry"
        )));
    }
    Ok(format!(
        "'{}'",
        s.replace('\\', "\\\\").replace('\'', "\\'")
    ))
}

impl Wsadmin {
    /// From the spec's parameters (`wsadmin`, `dmgr-host`, `dmgr-port`, `wsadmin-user` and the
    /// secret named by `wsadmin-password`).
    pub fn new(params: &[Pair]) -> Result<Wsadmin> {
        let get = |k: &str| cutover_sdk::params::get(params, k);
        let program = cutover_sdk::params::param(params, "wsadmin")?.to_string();
        let mut args: Vec<String> = ["-lang", "jython", "-conntype", "SOAP", "-host"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(get("dmgr-host").unwrap_or("localhost").into());
        args.push("-port".into());
        args.push(get("dmgr-port").unwrap_or("8879").into());
        if let Some(user) = get("wsadmin-user").filter(|u| !u.is_empty()) {
            args.extend(["-user".into(), user.into()]);
            if let Some(secret) = get("wsadmin-password").filter(|s| !s.is_empty()) {
                args.extend(["-password".into(), secrets::get(secret)?]);
            }
        }
        Ok(Wsadmin { program, args })
    }

    pub fn of(c: &Call) -> Result<Wsadmin> {
        Wsadmin::new(c.params())
    }

    fn run(&self, extra: &[String], what: &str, timeout_s: u64) -> Result<Vec<String>> {
        let mut args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        args.extend(extra.iter().map(String::as_str));
        let exit = cmd::run(&self.program, &args, Some(timeout_s * 1000))?;
        let lines: Vec<String> = exit
            .stdout
            .lines()
            .filter(|l| !l.starts_with("WASX7209I"))
            .map(str::to_string)
            .collect();
        if exit.code != Some(0) || lines.iter().any(|l| l.starts_with("WASX7015E")) {
            let said: Vec<&str> = exit
                .stdout
                .lines()
                .chain(exit.stderr.lines())
                .filter(|l| !l.starts_with("WASX7209I") && !l.trim().is_empty())
                .collect();
            return Err(fail(format!(
                "wsadmin failed to {what}: {}",
                if said.is_empty() {
                    cmd::describe_failure(&self.program, &exit)
                } else {
                    said.join(" | ")
                }
            )));
        }
        Ok(lines)
    }

    /// Run Jython statements (joined with `;`); the lines they printed.
    pub fn jython(&self, statements: &[String], what: &str, timeout_s: u64) -> Result<Vec<String>> {
        self.run(&["-c".into(), statements.join("; ")], what, timeout_s)
    }

    /// Whether an MBean matching `query` is registered: `completeObjectName` answers an
    /// empty string when none is ("If the server is stopped, the completeObjectName command
    /// returns an empty string").
    pub fn exists(&self, query: &str, what: &str) -> Result<bool> {
        let out = self.jython(
            &[format!(
                "print AdminControl.completeObjectName({})",
                q(query)?
            )],
            what,
            120,
        )?;
        Ok(out.iter().any(|l| l.starts_with("WebSphere:")))
    }

    /// Run a script file with arguments; the lines it printed.
    pub fn script(&self, file: &str, script_args: &[&str], what: &str) -> Result<Vec<String>> {
        let mut extra = vec!["-f".to_string(), file.to_string()];
        extra.extend(script_args.iter().map(|s| s.to_string()));
        self.run(&extra, what, 300)
    }
}

/// The object-name query of a member's MBean of `kind` (`type=Server,node=N,process=S,*`).
pub fn mbean(kind: &str, node: &str, server: &str) -> String {
    format!("type={kind},node={node},process={server},*")
}
