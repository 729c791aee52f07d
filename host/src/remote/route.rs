//! Which transport runs a call: the local sandbox for `local` targets and fleet steps, the
//! host's agent for the others; and opening every host's session before anything runs.

use super::client::Session;
use super::proto::LeaseOp;
use super::transport::Remote;
use crate::engine::lease::{Holder, RENEW_EVERY};
use crate::engine::prepare::Prepared;
use crate::engine::transport::{BoxFuture, Local, StepCall, StepFailure, Transport};
use crate::engine::Env;
use crate::plugin::model::Output;
use anyhow::{bail, Result};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Local targets and fleet steps here, remote targets on their hosts.
pub struct Routed {
    pub local: Local,
    pub remote: Arc<Remote>,
}

fn is_remote(call: &StepCall) -> bool {
    call.host != "local"
}

impl Transport for Routed {
    fn run<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<Vec<Output>, StepFailure>> {
        if is_remote(call) {
            self.remote.run(call)
        } else {
            self.local.run(call)
        }
    }

    fn undo<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<(), StepFailure>> {
        if is_remote(call) {
            self.remote.undo(call)
        } else {
            self.local.undo(call)
        }
    }
}

/// Reach every remote host of `p` and handshake with its agent, all at once; the hosts that
/// fail are listed together and nothing runs. None when every target is local.
pub async fn connect(env: &Env, p: &Prepared, rollout: i64) -> Result<Option<Arc<Remote>>> {
    let mut hosts: Vec<String> = p
        .targets
        .iter()
        .filter(|t| t.host != "local")
        .map(|t| t.host.clone())
        .chain(Some(p.spec.fleet_host.clone()).filter(|h| h != "local"))
        .collect();
    hosts.sort();
    hosts.dedup();
    if let Some(h) = env.away.iter().find(|h| !hosts.contains(h)) {
        bail!(
            "--without-host {h}: no target of this rollout is on host `{h}` (its hosts: {})",
            hosts.join(", ")
        );
    }
    let down: BTreeMap<String, String> = env
        .away
        .iter()
        .map(|h| {
            (
                h.clone(),
                "left out by the operator (--without-host)".to_string(),
            )
        })
        .collect();
    hosts.retain(|h| !down.contains_key(h));
    if hosts.is_empty() && down.is_empty() {
        return Ok(None);
    }
    let (bytes, digest) =
        crate::plugin::Runtime::read(&p.spec.adapter.path, p.spec.adapter.sha256.as_deref())?;
    let bytes = Arc::new(bytes);
    let open = |h: &String| {
        let (ssh, bytes, digest) = (p.spec.ssh.clone(), bytes.clone(), digest.clone());
        let h = h.clone();
        async move { Session::open(&h, &ssh, &bytes, &digest).await }
    };
    // The first session of each host installs the agent when it lacks it; the others
    // follow, once it is there.
    let opened = futures_util::future::join_all(hosts.iter().map(open)).await;
    let mut sessions: BTreeMap<String, Vec<std::sync::Mutex<Arc<Session>>>> = BTreeMap::new();
    let mut refused = Vec::new();
    for (h, r) in hosts.iter().zip(opened) {
        match r {
            Ok(s) => {
                env.ui.log(
                    "",
                    "ssh",
                    crate::plugin::model::Level::Debug,
                    &format!("{h}: {}", s.agent),
                );
                sessions.insert(h.clone(), vec![std::sync::Mutex::new(Arc::new(s))]);
            }
            Err(e) => refused.push(format!("{e:#}")),
        }
    }
    let more: Vec<String> = sessions
        .keys()
        .flat_map(|h| std::iter::repeat_n(h.clone(), p.spec.ssh.connections - 1))
        .collect();
    let opened = futures_util::future::join_all(more.iter().map(open)).await;
    for (h, r) in more.into_iter().zip(opened) {
        match r {
            Ok(s) => sessions
                .get_mut(&h)
                .expect("opened above")
                .push(std::sync::Mutex::new(Arc::new(s))),
            Err(e) => refused.push(format!("{e:#}")),
        }
    }
    if !refused.is_empty() {
        bail!(
            "{} of {} hosts cannot be used; nothing was touched:\n  - {}",
            refused.len(),
            hosts.len(),
            refused.join("\n  - ")
        );
    }
    Ok(Some(Arc::new(Remote {
        sessions,
        ssh: p.spec.ssh.clone(),
        plugin: bytes,
        digest,
        label: p.adapter_label.clone(),
        sink: env.sink(Some(rollout)),
        secrets: p.secrets.clone(),
        limits: p.spec.limits,
        down: std::sync::Mutex::new(down),
    })))
}

/// Take the leases on every remote host (an error names the host and the holder), then keep
/// them renewed while `remote` lives; leases not released expire after their TTL.
pub async fn take_leases(
    remote: &Arc<Remote>,
    leases: &BTreeMap<String, Vec<std::path::PathBuf>>,
    me: &Holder,
) -> Result<()> {
    for (host, paths) in leases {
        if remote.down.lock().unwrap().contains_key(host) {
            // Left out by the operator: nothing runs there, nothing is leased there.
            continue;
        }
        let s = remote
            .session_of(host)
            .ok_or_else(|| anyhow::anyhow!("host `{host}`: no session"))?;
        s.lease(LeaseOp::Take, paths, me).await?;
    }
    let weak = Arc::downgrade(remote);
    let (leases, me) = (leases.clone(), me.clone());
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW_EVERY).await;
            let Some(remote) = weak.upgrade() else { return };
            for (host, paths) in &leases {
                let Some(s) = remote.session_of(host) else {
                    continue;
                };
                let _ = s.lease(LeaseOp::Renew, paths, &me).await;
            }
        }
    });
    Ok(())
}

/// Release the leases on every remote host (best effort: what is not released expires).
pub async fn release_leases(
    remote: &Remote,
    leases: &BTreeMap<String, Vec<std::path::PathBuf>>,
    me: &Holder,
) {
    for (host, paths) in leases {
        let Some(s) = remote.session_of(host) else {
            continue;
        };
        let _ = s.lease(LeaseOp::Release, paths, me).await;
    }
}
