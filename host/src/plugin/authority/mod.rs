//! The capability authority: every allow/deny decision about what a plugin may touch is made
//! here, and nowhere else. A security review reads this module.
//!
//! - [`grants`]: what a plugin requested in `describe`, expanded per target and step,
//!   intersected with the spec's `[grants]`; conflicting requests (a call that could write a
//!   program it may run) are refused before anything runs.
//! - [`paths`]: granted directories are opened from the operator's grant without following a
//!   symbolic link; host-side file calls (`copy-tree`, `write-atomic`) work through those
//!   handles only, never by re-opening a path string.
//! - [`exec`]: which program, environment and working directory a call may use.
//! - [`http`]: which hosts, redirects included.
//! - [`tcp`]: which `host:port` addresses a conversation may reach.
//! - [`text`]: plugin text made safe to show and bounded in size.
//!
//! A refusal is a [`Denied`], which names the spec key (`[grants] dirs`, ...) to change.

pub mod exec;
pub mod grants;
pub mod http;
pub mod paths;
pub mod tcp;
pub mod text;

pub use exec::env_name_ok;
pub use grants::{expand, normalize, resolve};

use std::path::PathBuf;

/// The spec key a denial is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantKey {
    Dirs,
    Exec,
    Http,
    Tcp,
    Env,
    Secrets,
}

impl std::fmt::Display for GrantKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            GrantKey::Dirs => "[grants] dirs",
            GrantKey::Exec => "[grants] exec",
            GrantKey::Http => "[grants] http",
            GrantKey::Tcp => "[grants] tcp",
            GrantKey::Env => "[grants] env",
            GrantKey::Secrets => "[secrets]",
        })
    }
}

/// A refused request: what was wanted, by whom, why, and how to allow it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{wanted} denied for {plugin}: {why}; {fix}")]
pub struct Denied {
    /// The grant key concerned.
    pub key: GrantKey,
    /// `name@version` of the plugin.
    pub plugin: String,
    /// What was attempted, e.g. "exec of `/bin/sh`".
    pub wanted: String,
    /// Why it is refused.
    pub why: String,
    /// What would allow it; always names `key`.
    pub fix: String,
}

impl Denied {
    /// A denial whose fix is the usual one: request it in `describe()`, grant it in the spec.
    pub fn ungranted(key: GrantKey, plugin: &str, wanted: String, why: String) -> Denied {
        Denied {
            key,
            plugin: plugin.to_string(),
            wanted,
            why,
            fix: format!(
                "the plugin must request it in describe() and the spec must grant it under {key}"
            ),
        }
    }
}

/// One granted directory of a call.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirCap {
    /// The directory, preopened at the same path inside the sandbox.
    pub path: PathBuf,
    /// Read-write (else read-only).
    pub write: bool,
    /// The operator's outermost grant holding it: the one place opened by its path; every
    /// component below it is opened without following symbolic links.
    pub anchor: PathBuf,
}

/// The capabilities one plugin call gets.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Effective {
    pub dirs: Vec<DirCap>,
    /// Programs `exec.run` may start (absolute, normalised paths).
    pub exec: Vec<String>,
    /// `host[:port]` patterns HTTP may reach.
    pub http: Vec<String>,
    /// `host:port` patterns TCP conversations may reach.
    #[serde(default)]
    pub tcp: Vec<String>,
    /// Secret names readable.
    pub secrets: Vec<String>,
    /// Environment variables the plugin may set for its programs.
    pub env: Vec<String>,
    /// Host environment variables passed to every program (the operator's `pass-env`).
    pub pass_env: Vec<String>,
}

impl Effective {
    /// `self` plus everything in `more` (a step's own capabilities).
    pub fn merged(&self, more: &Effective) -> Effective {
        fn add<T: Clone + PartialEq>(into: &mut Vec<T>, from: &[T]) {
            for x in from {
                if !into.contains(x) {
                    into.push(x.clone());
                }
            }
        }
        let mut out = self.clone();
        for d in &more.dirs {
            match out.dirs.iter_mut().find(|x| x.path == d.path) {
                Some(x) => x.write |= d.write,
                None => out.dirs.push(d.clone()),
            }
        }
        add(&mut out.exec, &more.exec);
        add(&mut out.http, &more.http);
        add(&mut out.tcp, &more.tcp);
        add(&mut out.secrets, &more.secrets);
        add(&mut out.env, &more.env);
        add(&mut out.pass_env, &more.pass_env);
        out
    }

    /// The values of the secrets this call may read, out of every secret the spec maps.
    pub fn secret_values(
        &self,
        all: &std::collections::BTreeMap<String, String>,
    ) -> std::collections::BTreeMap<String, String> {
        self.secrets
            .iter()
            .filter_map(|n| all.get(n).map(|v| (n.clone(), v.clone())))
            .collect()
    }

    /// The granted directories as the operator reads them: `path read|read-write, ...`.
    pub fn dirs_list(&self) -> String {
        if self.dirs.is_empty() {
            return "none".into();
        }
        self.dirs
            .iter()
            .map(|d| {
                format!(
                    "{} {}",
                    d.path.display(),
                    if d.write { "read-write" } else { "read" }
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
