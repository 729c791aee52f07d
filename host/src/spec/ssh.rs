//! The spec's `[ssh]` table: how the controller reaches remote targets.

use serde::Deserialize;
use std::time::Duration;

/// How remote hosts are reached: the system OpenSSH client, so `~/.ssh/config`, known_hosts,
/// agents, jump hosts and certificates apply as they do for the operator.
#[derive(Debug, Clone)]
pub struct Ssh {
    /// The client program (default `ssh`).
    pub program: String,
    /// Extra arguments before the host, e.g. `["-F", "ssh_config", "-J", "bastion"]`.
    pub options: Vec<String>,
    /// How long connecting and the agent's handshake may take (default 10 s).
    pub connect_timeout: Duration,
    /// SSH sessions per host, each with its own agent; calls go to the least busy (default 1:
    /// one session carries every call, concurrently).
    pub connections: usize,
    /// The command that starts `cutover` on the remote hosts, or `upload` (the default): the
    /// controller installs its own binary into the remote cache when the host lacks it
    /// (checked by sha256).
    pub agent: String,
    /// The agent's folder on the remote hosts: the uploaded binary and the plugins (default
    /// `${XDG_CACHE_HOME:-$HOME/.cache}/cutover-agent`, per user).
    pub cache: String,
}

impl Default for Ssh {
    fn default() -> Self {
        Ssh {
            program: "ssh".into(),
            options: Vec::new(),
            connect_timeout: Duration::from_secs(10),
            connections: 1,
            agent: "upload".into(),
            cache: "${XDG_CACHE_HOME:-$HOME/.cache}/cutover-agent".into(),
        }
    }
}

/// `[ssh]` as written.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawSsh {
    program: Option<String>,
    #[serde(default)]
    options: Vec<String>,
    connect_timeout: Option<String>,
    connections: Option<i64>,
    agent: Option<String>,
    cache: Option<String>,
}

impl RawSsh {
    /// The table, checked; an error names the key.
    pub(super) fn parse(self) -> Result<Ssh, String> {
        let mut s = Ssh::default();
        if let Some(p) = self.program {
            s.program = p;
        }
        s.options = self.options;
        if let Some(t) = self.connect_timeout {
            s.connect_timeout = humantime::parse_duration(&t).map_err(|_| {
                format!("key `ssh.connect-timeout`: `{t}` is not a duration (write e.g. \"10s\")")
            })?;
        }
        if let Some(n) = self.connections {
            if !(1..=16).contains(&n) {
                return Err(format!(
                    "key `ssh.connections`: {n} is out of range (1 to 16 sessions per host)"
                ));
            }
            s.connections = n as usize;
        }
        if let Some(a) = self.agent {
            s.agent = a;
        }
        if let Some(c) = self.cache {
            if c.contains(['\'', '"', '`', '\\']) {
                return Err(format!(
                    "key `ssh.cache`: `{c}` must not hold quotes or backslashes"
                ));
            }
            s.cache = c;
        }
        Ok(s)
    }
}
