//! `cutover agent --stdio`: the controller's hands on a remote host. It serves requests read
//! from standard input (one SSH session) and runs steps in the same sandbox as a local run,
//! with the grants the controller resolved, enforced here where the files and programs are.

use super::proto::{self, LeaseOp, Reply, Request, WireCall};
use crate::engine::lease;
use crate::engine::transport::{Local, StepCall, Transport};
use crate::plugin::model::Level;
use crate::plugin::{AdapterPlugin, CallEnv, Runtime, Sink};
use anyhow::{Context, Result};
use futures_util::{SinkExt, StreamExt};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::codec::{FramedRead, FramedWrite};

/// Where the agent keeps plugins and their precompiled forms: `$XDG_CACHE_HOME/cutover-agent`
/// or `~/.cache/cutover-agent`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("cutover-agent")
}

/// Log lines and progress of a call, sent back as they happen.
struct Forward {
    id: u64,
    tx: mpsc::UnboundedSender<Reply>,
}

impl Sink for Forward {
    fn log(&self, _: &CallEnv, level: Level, message: &str) {
        let _ = self.tx.send(Reply::Log {
            id: self.id,
            level,
            message: message.to_string(),
        });
    }

    fn progress(&self, _: &CallEnv, message: &str, fraction: Option<f32>) {
        let _ = self.tx.send(Reply::Progress {
            id: self.id,
            message: message.to_string(),
            fraction,
        });
    }
}

struct Agent {
    runtime: Arc<Runtime>,
    dir: PathBuf,
    plugins: Mutex<HashMap<String, Arc<AdapterPlugin>>>,
    tx: mpsc::UnboundedSender<Reply>,
}

impl Agent {
    fn plugin(&self, digest: &str, memory: usize) -> Result<Arc<AdapterPlugin>> {
        if let Some(p) = self.plugins.lock().unwrap().get(digest) {
            return Ok(p.clone());
        }
        let path = self.dir.join("plugins").join(format!("{digest}.wasm"));
        let p = Arc::new(self.runtime.adapter(&path, Some(digest), memory)?);
        self.plugins
            .lock()
            .unwrap()
            .insert(digest.to_string(), p.clone());
        Ok(p)
    }

    fn store(&self, digest: &str, bytes: &[u8]) -> Result<()> {
        let got = crate::plugin::cache::sha256_hex(bytes);
        anyhow::ensure!(
            got == digest,
            "plugin bytes have sha256 {got}, not {digest}"
        );
        let dir = self.dir.join("plugins");
        std::fs::create_dir_all(&dir)?;
        let tmp = dir.join(format!(".{digest}.{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(&tmp, dir.join(format!("{digest}.wasm")))?;
        Ok(())
    }

    async fn preflight(
        &self,
        id: u64,
        call: super::proto::PreflightCall,
    ) -> Result<Vec<crate::plugin::model::Finding>, String> {
        let super::proto::PreflightCall {
            digest,
            label,
            targets,
            mut ctx,
            caps,
            secrets,
            limits,
        } = call;
        let digest = digest.as_str();
        let plugin = self
            .plugin(digest, limits.memory)
            .map_err(|e| format!("{e:#}"))?;
        let env = crate::engine::prepare::fleet_call(
            &label,
            &caps,
            &secrets,
            Arc::new(Forward {
                id,
                tx: self.tx.clone(),
            }),
            limits,
        );
        ctx.dirs = env.dir_grants();
        match plugin.preflight(env, &targets, &ctx).await {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(e)) => Err(match e.hint {
                Some(h) => format!("{} ({h})", e.message),
                None => e.message,
            }),
            Err(fault) => Err(fault.to_string()),
        }
    }

    async fn step(self: Arc<Self>, id: u64, call: WireCall, undo: bool) {
        let fail = |message: String| crate::engine::transport::StepFailure {
            message,
            transient: false,
            outputs: Vec::new(),
            lost: crate::engine::transport::Lost::No,
        };
        let plugin = match self.plugin(&call.digest, call.limits.memory) {
            Ok(p) => p,
            Err(e) => {
                let result = Err(fail(format!("{e:#}")));
                let _ = self.tx.send(if undo {
                    Reply::Undone {
                        id,
                        result: result.map(drop),
                    }
                } else {
                    Reply::Ran { id, result }
                });
                return;
            }
        };
        let local = Local {
            adapter: plugin,
            label: call.label,
            sink: Arc::new(Forward {
                id,
                tx: self.tx.clone(),
            }),
            secrets: call.secrets,
            limits: call.limits,
        };
        let step = StepCall {
            step: call.step,
            host: "local".into(),
            target: call.target,
            ctx: call.ctx,
            caps: call.caps,
            budget: Duration::from_millis(call.budget_ms),
            rerun: false,
        };
        let reply = if undo {
            Reply::Undone {
                id,
                result: local.undo(&step).await,
            }
        } else {
            Reply::Ran {
                id,
                result: local.run(&step).await,
            }
        };
        let _ = self.tx.send(reply);
    }
}

/// Serve requests from standard input until it closes.
pub async fn serve_stdio(cache: Option<PathBuf>) -> Result<()> {
    serve(cache, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serve requests from `input`, answering on `output`, until `input` closes.
async fn serve(
    cache: Option<PathBuf>,
    input: impl tokio::io::AsyncRead + Unpin,
    output: impl tokio::io::AsyncWrite + Send + Unpin + 'static,
) -> Result<()> {
    let dir = cache.unwrap_or_else(cache_dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let runtime = Runtime::new(dir.join("compiled"))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
    let writer = tokio::spawn(async move {
        let mut out = FramedWrite::new(output, proto::codec());
        while let Some(reply) = rx.recv().await {
            let Ok(frame) = proto::encode(&reply) else {
                continue;
            };
            if out.send(frame).await.is_err() {
                break;
            }
        }
    });
    let agent = Arc::new(Agent {
        runtime,
        dir,
        plugins: Mutex::new(HashMap::new()),
        tx: tx.clone(),
    });
    let mut input = FramedRead::new(input, proto::codec());
    while let Some(frame) = input.next().await {
        let request: Request = match frame
            .map_err(anyhow::Error::from)
            .and_then(|f| proto::decode(&f))
        {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Reply::Refused {
                    id: None,
                    message: format!("unreadable request: {e:#}"),
                });
                break;
            }
        };
        match request {
            Request::Hello { protocol, cutover } => {
                let _ = tx.send(Reply::Hello {
                    protocol: proto::PROTOCOL,
                    cutover: env!("CARGO_PKG_VERSION").to_string(),
                    host: hostname(),
                });
                if protocol != proto::PROTOCOL {
                    let _ = tx.send(Reply::Refused {
                        id: None,
                        message: format!(
                            "agent speaks protocol {} (cutover {}), the controller {protocol} (cutover {cutover})",
                            proto::PROTOCOL,
                            env!("CARGO_PKG_VERSION")
                        ),
                    });
                    break;
                }
            }
            Request::Have { id, digest } => {
                let present = agent
                    .dir
                    .join("plugins")
                    .join(format!("{digest}.wasm"))
                    .is_file();
                let _ = tx.send(Reply::Have { id, present });
            }
            Request::Plugin { id, digest, bytes } => match agent.store(&digest, &bytes) {
                Ok(()) => {
                    let _ = tx.send(Reply::Stored { id });
                }
                Err(e) => {
                    let _ = tx.send(Reply::Refused {
                        id: Some(id),
                        message: format!("storing plugin {digest}: {e:#}"),
                    });
                }
            },
            Request::Run { id, call } => {
                tokio::spawn(agent.clone().step(id, *call, false));
            }
            Request::Undo { id, call } => {
                tokio::spawn(agent.clone().step(id, *call, true));
            }
            Request::Preflight { id, call } => {
                let agent = agent.clone();
                tokio::spawn(async move {
                    let result = agent.preflight(id, *call).await;
                    let _ = agent.tx.send(Reply::Preflighted { id, result });
                });
            }
            Request::Lease {
                id,
                op,
                paths,
                holder,
            } => {
                let result = leases(op, &paths, &holder);
                let _ = tx.send(Reply::Leased { id, result });
            }
        }
    }
    drop(tx);
    drop(agent);
    let _ = writer.await;
    Ok(())
}

fn leases(op: LeaseOp, paths: &[String], holder: &str) -> Result<(), String> {
    let holder: lease::Holder = serde_json::from_str(holder).map_err(|e| e.to_string())?;
    let paths: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
    match op {
        LeaseOp::Take => lease::take(&paths, &holder).map_err(|e| format!("{e:#}")),
        LeaseOp::Renew => {
            lease::renew(&paths, &holder);
            Ok(())
        }
        LeaseOp::Release => {
            lease::release(&paths, &holder);
            Ok(())
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Send `requests` to an agent over in-memory pipes; every reply until it hangs up.
    async fn exchange(requests: Vec<Request>) -> Vec<Reply> {
        let dir = tempfile::tempdir().unwrap();
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (their_in, their_out) = tokio::io::split(theirs);
        let agent = tokio::spawn(serve(Some(dir.path().to_path_buf()), their_in, their_out));
        let (our_in, our_out) = tokio::io::split(ours);
        let mut out = FramedWrite::new(our_out, proto::codec());
        for r in requests {
            out.send(proto::encode(&r).unwrap()).await.unwrap();
        }
        // Closing our side ends the agent's input, as when ssh ends.
        SinkExt::<bytes::Bytes>::close(&mut out).await.unwrap();
        let mut replies = Vec::new();
        let mut input = FramedRead::new(our_in, proto::codec());
        while let Some(Ok(frame)) = input.next().await {
            replies.push(proto::decode::<Reply>(&frame).unwrap());
        }
        agent.await.unwrap().unwrap();
        replies
    }

    #[tokio::test]
    async fn a_controller_of_another_protocol_is_refused_naming_both_versions() {
        let replies = exchange(vec![
            Request::Hello {
                protocol: proto::PROTOCOL + 1,
                cutover: "9.9.9".into(),
            },
            Request::Have {
                id: 1,
                digest: "x".into(),
            },
        ])
        .await;
        assert_eq!(replies.len(), 2, "{replies:?}");
        let Reply::Refused { id: None, message } = &replies[1] else {
            panic!("{replies:?}")
        };
        assert!(
            message.contains(&format!(
                "the controller {} (cutover 9.9.9)",
                proto::PROTOCOL + 1
            )),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_controller_of_the_same_protocol_is_served() {
        let replies = exchange(vec![
            Request::Hello {
                protocol: proto::PROTOCOL,
                cutover: env!("CARGO_PKG_VERSION").into(),
            },
            Request::Have {
                id: 1,
                digest: "x".into(),
            },
        ])
        .await;
        assert!(
            matches!(
                replies[..],
                [
                    Reply::Hello { .. },
                    Reply::Have {
                        id: 1,
                        present: false
                    }
                ]
            ),
            "{replies:?}"
        );
    }
}
