//! The controller's side of one session: `ssh` to a host carrying the agent protocol, through
//! the system OpenSSH client (so `~/.ssh/config`, known_hosts, agents, jump hosts and
//! certificates apply, and host key checking stays on). Calls run concurrently over it.

use super::proto::{self, LeaseOp, Reply, Request};
use crate::plugin::{CallEnv, Sink};
use crate::spec::Ssh;
use anyhow::{anyhow, bail, Context, Result};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};

/// Replies waiting for their call, by id; log lines go to the call's sink.
type Pending = Arc<
    Mutex<
        HashMap<
            u64,
            (
                oneshot::Sender<Reply>,
                Option<(Arc<CallEnv>, Arc<dyn Sink>)>,
            ),
        >,
    >,
>;

/// One live session with a host's agent.
pub struct Session {
    pub host: String,
    tx: mpsc::UnboundedSender<Request>,
    pending: Pending,
    next: AtomicU64,
    /// What the agent said of itself.
    pub agent: String,
    /// False once the agent's output has ended: nothing sent now can reach it.
    alive: Arc<AtomicBool>,
    _child: tokio::process::Child,
}

/// Why a call got no reply.
pub(super) enum NoReply {
    /// It never left: the session was already gone, so the call did not run.
    Unsent(String),
    /// It was sent, and the session was lost before the reply: its outcome is unknown.
    Lost(String),
}

impl Session {
    /// Open `ssh HOST AGENT agent --stdio`, handshake and make sure the agent holds the
    /// plugin. Errors name the host and say what failed (unreachable, host key, version).
    pub async fn open(host: &str, ssh: &Ssh, plugin: &[u8], digest: &str) -> Result<Session> {
        let start = super::install::start(ssh)?;
        let mut cmd = super::install::command(host, ssh, &start.command);
        cmd.stdin(Stdio::piped()).kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("host `{host}`: cannot start {}", ssh.program))?;
        let mut stdin = child.stdin.take().expect("piped");
        let mut stdout = tokio::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut stderr = child.stderr.take().expect("piped");
        if let Some(binary) = start.upload {
            if let Err(e) = install(ssh, binary, &mut stdin, &mut stdout).await {
                let mut text = String::new();
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut text),
                )
                .await;
                let _ = child.kill().await;
                bail!(
                    "host `{host}`: no agent answered ({e:#}): {}",
                    explain(text.trim())
                );
            }
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        tokio::spawn(async move {
            let mut out = FramedWrite::new(stdin, proto::codec());
            while let Some(r) = rx.recv().await {
                let Ok(frame) = proto::encode(&r) else {
                    continue;
                };
                if out.send(frame).await.is_err() {
                    break;
                }
            }
        });
        let pending: Pending = Arc::default();
        let (first_tx, first_rx) = oneshot::channel::<Reply>();
        let mut first = Some(first_tx);
        let waiting = pending.clone();
        let name = host.to_string();
        let alive = Arc::new(AtomicBool::new(true));
        let reading = alive.clone();
        tokio::spawn(async move {
            let mut input = FramedRead::new(stdout, proto::codec());
            while let Some(Ok(frame)) = input.next().await {
                let Ok(reply) = proto::decode::<Reply>(&frame) else {
                    break;
                };
                route(&name, reply, &waiting, &mut first);
            }
            // The session is gone: every call still waiting learns it.
            reading.store(false, Ordering::SeqCst);
            waiting.lock().unwrap().clear();
        });
        tx.send(Request::Hello {
            protocol: proto::PROTOCOL,
            cutover: env!("CARGO_PKG_VERSION").to_string(),
        })
        .ok();
        let hello = tokio::time::timeout(
            ssh.connect_timeout + std::time::Duration::from_secs(5),
            first_rx,
        )
        .await;
        let why = |stderr: &mut tokio::process::ChildStderr| {
            let mut text = String::new();
            let _ = futures_util::FutureExt::now_or_never(tokio::io::AsyncReadExt::read_to_string(
                stderr, &mut text,
            ));
            text.trim().to_string()
        };
        let agent = match hello {
            Ok(Ok(Reply::Hello {
                protocol,
                cutover,
                host: remote,
            })) if protocol == proto::PROTOCOL => format!("cutover {cutover} on {remote}"),
            Ok(Ok(Reply::Hello { protocol, cutover, .. })) => bail!(
                "host `{host}`: its agent (cutover {cutover}) speaks protocol {protocol}, this controller {}",
                proto::PROTOCOL
            ),
            Ok(Ok(Reply::Refused { message, .. })) => bail!("host `{host}`: {message}"),
            _ => {
                let _ = child.wait().await;
                bail!("host `{host}`: no agent answered: {}", explain(&why(&mut stderr)))
            }
        };
        let session = Session {
            host: host.to_string(),
            tx,
            pending,
            next: AtomicU64::new(1),
            agent,
            alive,
            _child: child,
        };
        session.ensure_plugin(plugin, digest).await?;
        Ok(session)
    }

    pub(super) async fn ask(
        &self,
        make: impl FnOnce(u64) -> Request,
        sink: Option<(Arc<CallEnv>, Arc<dyn Sink>)>,
    ) -> Result<Reply> {
        self.send(make, sink).await.map_err(|e| match e {
            NoReply::Unsent(m) | NoReply::Lost(m) => anyhow!(m),
        })
    }

    /// Send a call and wait for its reply, telling a call that never left from one lost on
    /// the way.
    pub(super) async fn send(
        &self,
        make: impl FnOnce(u64) -> Request,
        sink: Option<(Arc<CallEnv>, Arc<dyn Sink>)>,
    ) -> Result<Reply, NoReply> {
        let closed = || NoReply::Unsent(format!("host `{}`: the session is closed", self.host));
        if !self.alive.load(Ordering::SeqCst) {
            return Err(closed());
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(id, (tx, sink));
        self.tx.send(make(id)).map_err(|_| closed())?;
        rx.await
            .map_err(|_| NoReply::Lost(format!("host `{}`: the connection was lost", self.host)))
    }

    async fn ensure_plugin(&self, bytes: &[u8], digest: &str) -> Result<()> {
        let d = digest.to_string();
        match self.ask(|id| Request::Have { id, digest: d }, None).await? {
            Reply::Have { present: true, .. } => return Ok(()),
            Reply::Have { .. } => {}
            other => bail!("host `{}`: unexpected answer {other:?}", self.host),
        }
        let d = digest.to_string();
        let bytes = bytes.to_vec();
        match self
            .ask(
                |id| Request::Plugin {
                    id,
                    digest: d,
                    bytes,
                },
                None,
            )
            .await?
        {
            Reply::Stored { .. } => Ok(()),
            Reply::Refused { message, .. } => bail!("host `{}`: {message}", self.host),
            other => bail!("host `{}`: unexpected answer {other:?}", self.host),
        }
    }

    /// How many calls wait for their answer on this session.
    pub(super) fn load(&self) -> usize {
        self.pending.lock().unwrap().len()
    }

    /// Take, renew or release lease records on the host.
    pub async fn lease(
        &self,
        op: LeaseOp,
        paths: &[std::path::PathBuf],
        holder: &crate::engine::lease::Holder,
    ) -> Result<()> {
        let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let holder = serde_json::to_string(holder)?;
        match self
            .ask(
                |id| Request::Lease {
                    id,
                    op,
                    paths,
                    holder,
                },
                None,
            )
            .await?
        {
            Reply::Leased { result: Ok(()), .. } => Ok(()),
            Reply::Leased { result: Err(e), .. } => bail!("host `{}`: {e}", self.host),
            other => bail!("host `{}`: unexpected answer {other:?}", self.host),
        }
    }
}

/// Put the agent on the host when its cache lacks it: read `have` or `need`, and after
/// `need` send this binary and wait for `stored` (the host checked its sha256).
async fn install(
    ssh: &Ssh,
    binary: &std::path::Path,
    stdin: &mut tokio::process::ChildStdin,
    stdout: &mut tokio::io::BufReader<tokio::process::ChildStdout>,
) -> Result<()> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    async fn line(
        r: &mut tokio::io::BufReader<tokio::process::ChildStdout>,
        within: Duration,
    ) -> Result<String> {
        let mut l = String::new();
        match tokio::time::timeout(within, r.read_line(&mut l)).await {
            Ok(Ok(n)) if n > 0 => Ok(l.trim().to_string()),
            Ok(_) => bail!("the connection closed"),
            Err(_) => bail!("no answer within {} s", within.as_secs()),
        }
    }
    match line(stdout, ssh.connect_timeout + Duration::from_secs(5)).await? {
        l if l == "have" => Ok(()),
        l if l == "need" => {
            let bytes = tokio::fs::read(binary).await?;
            stdin
                .write_all(&bytes)
                .await
                .context("uploading the agent")?;
            stdin.flush().await?;
            // A slow link may take a while for the binary: bounded, but generously.
            match line(stdout, Duration::from_secs(600)).await {
                Ok(l) if l == "stored" => Ok(()),
                Ok(l) => bail!("uploading the agent: unexpected answer `{l}`"),
                Err(e) => Err(e.context("uploading the agent failed")),
            }
        }
        l => bail!("checking for the agent: unexpected answer `{l}`"),
    }
}

/// Hand a reply to whoever waits for it.
fn route(host: &str, reply: Reply, pending: &Pending, first: &mut Option<oneshot::Sender<Reply>>) {
    let id = match &reply {
        Reply::Hello { .. } | Reply::Refused { .. } if first.is_some() => {
            let _ = first.take().unwrap().send(reply);
            return;
        }
        Reply::Log { id, level, message } => {
            if let Some((_, Some((env, sink)))) = pending.lock().unwrap().get(id) {
                sink.log(env, *level, message);
            }
            return;
        }
        Reply::Progress {
            id,
            message,
            fraction,
        } => {
            if let Some((_, Some((env, sink)))) = pending.lock().unwrap().get(id) {
                sink.progress(env, message, *fraction);
            }
            return;
        }
        Reply::Ran { id, .. }
        | Reply::Undone { id, .. }
        | Reply::Leased { id, .. }
        | Reply::Preflighted { id, .. }
        | Reply::Have { id, .. }
        | Reply::Stored { id, .. }
        | Reply::Refused { id: Some(id), .. } => *id,
        Reply::Refused { id: None, message } => {
            // The agent gave up on the session: every waiting call fails with its reason.
            for (_, (tx, _)) in pending.lock().unwrap().drain() {
                let _ = tx.send(Reply::Refused {
                    id: None,
                    message: format!("host `{host}`: {message}"),
                });
            }
            return;
        }
        Reply::Hello { .. } => return,
    };
    if let Some((tx, _)) = pending.lock().unwrap().remove(&id) {
        let _ = tx.send(reply);
    }
}

/// A sentence for what `ssh` printed when it could not connect.
pub(crate) fn explain(stderr: &str) -> String {
    if stderr.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || stderr.contains("Host key verification failed")
    {
        format!(
            "its host key is unknown or changed; ssh refused it ({})",
            last_line(stderr)
        )
    } else if stderr.is_empty() {
        "the session closed without a word".into()
    } else {
        last_line(stderr)
    }
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}
