//! Leases on the nodes: one rollout per node whatever journal or spec names it.
//!
//! An adapter declares where its lease records live (`description.leases`: path templates
//! such as `{root}/.cutover-lease`, per target when they use target labels, fleet-wide when
//! they use only parameters, e.g. a load balancer's folder). Before a rollout touches
//! anything it takes every lease: a small JSON file created exclusively, holding the owner,
//! the rollout, its journal, when it was taken and until when it holds. A running rollout
//! renews them; a finished one removes them. A lease held by another rollout refuses the
//! rollout, naming the holder; one whose holder stopped renewing is stale, and only
//! `cutover lease break PATH` (which says what it breaks) removes it.

use crate::plugin::authority::{expand, normalize};
use crate::plugin::model::{Pair, Target};
use crate::spec::Grants;
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a lease holds without renewal.
pub const TTL: Duration = Duration::from_secs(60);
/// How often a running rollout renews its leases.
pub const RENEW_EVERY: Duration = Duration::from_secs(15);

/// Who holds a lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// `user@host pid N`.
    pub owner: String,
    pub rollout: i64,
    /// The holder's journal (absolute path).
    pub journal: String,
    pub spec: String,
    pub taken_ms: i64,
    pub expires_ms: i64,
}

impl Holder {
    /// This process, for `rollout` of `journal`.
    pub fn me(rollout: i64, journal: &Path, spec: &str) -> Holder {
        let user = std::env::var("USER").unwrap_or_else(|_| "?".into());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let now = crate::journal::now_ms();
        Holder {
            owner: format!("{user}@{host} pid {}", std::process::id()),
            rollout,
            journal: std::path::absolute(journal)
                .unwrap_or_else(|_| journal.to_path_buf())
                .display()
                .to_string(),
            spec: spec.to_string(),
            taken_ms: now,
            expires_ms: now + TTL.as_millis() as i64,
        }
    }

    /// The same rollout (of the same journal): a resume retakes its own leases.
    fn same(&self, other: &Holder) -> bool {
        self.rollout == other.rollout && self.journal == other.journal
    }

    fn describe(&self) -> String {
        let now = crate::journal::now_ms();
        let when = |ms: i64| {
            humantime::format_rfc3339_seconds(
                std::time::UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64),
            )
        };
        format!(
            "rollout {} of journal {} ({}, spec {}, taken {}, {} {})",
            self.rollout,
            self.journal,
            self.owner,
            self.spec,
            when(self.taken_ms),
            if self.expires_ms < now {
                "stale since"
            } else {
                "held until"
            },
            when(self.expires_ms)
        )
    }
}

/// The lease files of a fleet: every template expanded for every target (a fleet-wide one
/// once), each checked to lie in a read-write `[grants] dirs` entry, with the host it is on
/// (`local` for fleet-wide ones).
pub fn paths(
    templates: &[String],
    targets: &[Target],
    params: &[Pair],
    grants: &Grants,
) -> Result<Vec<(String, PathBuf)>> {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|p| (p.key.clone(), p.value.clone()))
        .collect();
    let mut out: Vec<(String, PathBuf)> = Vec::new();
    for tpl in templates {
        let per_target = targets.iter().map(Some).collect::<Vec<_>>();
        let scopes = if per_target.is_empty() {
            vec![None]
        } else {
            per_target
        };
        for t in scopes {
            let Some(p) = expand(tpl, t, &params).map_err(|e| anyhow!("lease `{tpl}`: {e}"))?
            else {
                continue;
            };
            let p = normalize(Path::new(&p));
            if !grants
                .dirs
                .iter()
                .any(|g| g.write && p.starts_with(normalize(&g.path)))
            {
                bail!(
                    "the adapter keeps its lease at `{}`, outside every read-write entry of [grants] dirs: grant its folder read-write",
                    p.display()
                );
            }
            let host = t.map(|t| t.host.clone()).unwrap_or_else(|| "local".into());
            if !out.iter().any(|(h, q)| *h == host && *q == p) {
                out.push((host, p));
            }
        }
    }
    Ok(out)
}

fn read(path: &Path) -> Option<Holder> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write(path: &Path, h: &Holder, exclusive: bool) -> std::io::Result<()> {
    let text = serde_json::to_vec_pretty(h).unwrap_or_default();
    if exclusive {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        f.write_all(&text)?;
        return f.sync_all();
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::fs::write(&tmp, &text)?;
    std::fs::rename(&tmp, path)
}

/// Take every lease for `me`, or none: a lease held by another rollout (live or stale)
/// refuses, naming the holder; the leases taken by this call are given back.
pub fn take(paths: &[PathBuf], me: &Holder) -> Result<()> {
    let mut taken = Vec::new();
    let refuse = |taken: &[&PathBuf], why: String| -> Result<()> {
        for p in taken {
            let _ = std::fs::remove_file(p);
        }
        Err(anyhow!(why))
    };
    for p in paths {
        match write(p, me, true) {
            Ok(()) => taken.push(p),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => match read(p) {
                Some(h) if h.same(me) => write(p, me, false)?,
                Some(h) => {
                    let stale = h.expires_ms < crate::journal::now_ms();
                    return refuse(
                        &taken,
                        format!(
                            "{} is leased by {}{}",
                            p.display(),
                            h.describe(),
                            if stale {
                                format!(": its holder stopped renewing it; if that rollout is gone, `cutover lease break {}` removes the lease", p.display())
                            } else {
                                String::new()
                            }
                        ),
                    );
                }
                None => {
                    return refuse(
                        &taken,
                        format!(
                            "{} holds no lease Cutover can read: check it and remove it by hand",
                            p.display()
                        ),
                    )
                }
            },
            Err(e) => {
                return refuse(
                    &taken,
                    format!("cannot take the lease {}: {e}", p.display()),
                )
            }
        }
    }
    Ok(())
}

/// Push the expiry of `me`'s leases forward.
pub fn renew(paths: &[PathBuf], me: &Holder) {
    for p in paths {
        if let Some(h) = read(p).filter(|h| h.same(me)) {
            let renewed = Holder {
                expires_ms: crate::journal::now_ms() + TTL.as_millis() as i64,
                ..h
            };
            let _ = write(p, &renewed, false);
        }
    }
}

/// Remove `me`'s leases (others' are left alone).
pub fn release(paths: &[PathBuf], me: &Holder) {
    for p in paths {
        if read(p).is_some_and(|h| h.same(me)) {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `cutover lease break PATH`: remove a lease, saying whose it was.
pub fn break_lease(path: &Path) -> Result<String> {
    let h = read(path).ok_or_else(|| anyhow!("{} holds no lease", path.display()))?;
    std::fs::remove_file(path)?;
    Ok(format!(
        "broke the lease {} of {}",
        path.display(),
        h.describe()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rollout_per_lease_and_a_resume_retakes_its_own() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a.lease"), t.path().join("b.lease"));
        let me = Holder::me(1, &t.path().join("j1.db"), "s.toml");
        take(&[a.clone(), b.clone()], &me).unwrap();
        // The same rollout again (a resume): fine.
        take(&[a.clone(), b.clone()], &me).unwrap();
        // Another journal's rollout 1: refused, naming the holder, taking nothing.
        let other = Holder::me(1, &t.path().join("j2.db"), "s.toml");
        let c = t.path().join("c.lease");
        let e = take(&[c.clone(), a.clone()], &other)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is leased by rollout 1 of journal") && e.contains("j1.db"),
            "{e}"
        );
        assert!(!c.exists(), "all or nothing");
        // Stale: said so, with the command to break it.
        let stale = Holder {
            expires_ms: 0,
            ..me.clone()
        };
        write(&a, &stale, false).unwrap();
        let e = take(std::slice::from_ref(&a), &other)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("stale since") && e.contains("cutover lease break"),
            "{e}"
        );
        let said = break_lease(&a).unwrap();
        assert!(said.contains("j1.db"), "{said}");
        take(std::slice::from_ref(&a), &other).unwrap();
        release(&[a.clone(), b.clone()], &me);
        assert!(a.exists(), "another holder's lease stays");
        assert!(!b.exists());
    }
}
