//! What plugins can call: logging, exec, HTTP, TCP, files and secrets, in the host's own types.
//! Every decision is the capability authority's ([`authority`](super::authority)); this file
//! only carries the calls out. Each contract version's bindings (`since_v1_0_0`, ...) call
//! these. A refusal is a [`HostError::Denied`] naming the grant to add.

use super::model::{HostError, Level, Pair};
use super::runtime::CallState;
use super::{authority, authority::text, process};
use std::sync::Arc;
use std::time::Duration;

/// A program to run (see `exec.command` in the contract).
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub env: Vec<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub timeout_ms: Option<u64>,
}

/// How a program ended.
pub struct Exit {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

/// An HTTP request.
pub struct Request {
    pub method: String,
    pub url: String,
    pub headers: Vec<Pair>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: Option<u64>,
}

/// An HTTP response.
pub struct Response {
    pub status: u16,
    pub headers: Vec<Pair>,
    pub body: Vec<u8>,
}

pub use super::files::{CopyStats, Substitution};
pub use super::tcp::Exchange;

/// A TCP conversation (see `tcp.conversation` in the contract).
pub struct Conversation {
    pub address: String,
    pub exchanges: Vec<Exchange>,
    pub timeout_ms: Option<u64>,
}

impl CallState {
    /// Write one log line of the call.
    pub fn log(&mut self, level: Level, message: String) {
        let env = self.env.clone();
        self.logs += 1;
        if self.logs > env.limits.log_lines {
            if self.logs == env.limits.log_lines + 1 {
                let note = format!(
                    "further log lines of this call are not kept ([limits] log-lines = {})",
                    env.limits.log_lines
                );
                env.sink.log(&env, Level::Warn, &note);
            }
            return;
        }
        let message = text::cut(&message, env.limits.log_line_size, "log-line-size");
        env.sink.log(&env, level, &message);
    }

    /// Report progress of the call.
    pub fn progress(&mut self, message: String, fraction: Option<f32>) {
        let env = self.env.clone();
        let message = text::cut(&message, 1024, "log-line-size");
        env.sink.progress(&env, &message, fraction);
    }

    /// Run a granted program.
    pub async fn exec(&mut self, cmd: Command) -> Result<Exit, HostError> {
        let env = self.env.clone();
        let caps = &env.caps;
        let program = authority::exec::program(caps, &env.plugin, &cmd.program)?;
        authority::exec::env(caps, &env.plugin, &cmd.env)?;
        let cwd = match &cmd.cwd {
            Some(c) => authority::exec::cwd(caps, &env.plugin, c)?,
            None => "/".into(),
        };
        let timeout = cmd
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(env.budget)
            .min(env.budget);
        let done = process::run(process::Launch {
            real: &program.real,
            arg0: &program.arg0,
            args: &cmd.args,
            env: authority::exec::environment(caps, &cmd.env),
            cwd,
            stdin: cmd.stdin,
            timeout,
            keep: env.limits.exec_output,
        })
        .await
        .map_err(|e| {
            let msg = format!("cannot start `{}`: {e}", program.arg0);
            if e.kind() == std::io::ErrorKind::NotFound {
                HostError::NotFound(msg)
            } else {
                HostError::Io(msg)
            }
        })?;
        Ok(Exit {
            code: done.code,
            stdout: done.stdout,
            stderr: done.stderr,
            timed_out: done.timed_out,
        })
    }

    /// Send an HTTP request to a granted host, following redirects to granted hosts.
    pub async fn http(&mut self, req: Request) -> Result<Response, HostError> {
        let env = self.env.clone();
        authority::http::check(&env.caps, &env.plugin, &req.url)?;
        let limit = req
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(30))
            .min(env.budget);
        let work = tokio::task::spawn_blocking(move || {
            let origin = authority::http::parse(&req.url).map_err(HostError::Invalid)?;
            let mut url = req.url.clone();
            let mut body = req.body.clone();
            for _ in 0..=authority::http::MAX_REDIRECTS {
                let (_, host, port) = authority::http::parse(&url).map_err(HostError::Invalid)?;
                let cross = (host.as_str(), port) != (origin.1.as_str(), origin.2);
                let resp = exchange(&req, &url, body.as_deref(), limit, cross)?;
                let location = resp
                    .headers
                    .iter()
                    .find(|p| p.key.eq_ignore_ascii_case("location"))
                    .map(|p| p.value.clone());
                match (resp.status, location) {
                    (301 | 302 | 303 | 307 | 308, Some(loc)) => {
                        url = authority::http::redirect(&env.caps, &env.plugin, &url, &loc)?;
                        if resp.status == 303 {
                            body = None;
                        }
                    }
                    _ => return Ok(resp),
                }
            }
            Err(HostError::Io(format!(
                "{} {}: more than {} redirects",
                req.method,
                req.url,
                authority::http::MAX_REDIRECTS
            )))
        });
        match tokio::time::timeout(limit + Duration::from_secs(1), work).await {
            Ok(r) => r.map_err(|e| HostError::Io(format!("HTTP worker failed: {e}")))?,
            Err(_) => Err(HostError::TimedOut(format!(
                "no HTTP answer within {limit:?}"
            ))),
        }
    }

    /// Hold a conversation with a granted `host:port`.
    pub async fn converse(&mut self, c: Conversation) -> Result<Vec<Vec<u8>>, HostError> {
        let env = self.env.clone();
        let (host, port) = authority::tcp::check(&env.caps, &env.plugin, &c.address)?;
        let limit = c
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(30))
            .min(env.budget);
        super::tcp::converse(&host, port, &c.exchanges, limit, env.limits.exec_output).await
    }

    /// Copy a tree inside the granted directories, applying `subs` to the files they name.
    pub async fn copy_tree(
        &mut self,
        from: String,
        to: String,
        subs: Vec<Substitution>,
    ) -> Result<CopyStats, HostError> {
        let env = self.env.clone();
        // Dropped with the call (its budget ran out, or the step was interrupted): the copy
        // stops at its next file instead of going on unseen.
        let live = Arc::new(());
        let watch = Arc::downgrade(&live);
        let work = tokio::task::spawn_blocking(move || {
            let mut last = std::time::Instant::now();
            super::files::copy_substituting(&env.caps, &env.plugin, &from, &to, &subs, &mut |s| {
                if last.elapsed() >= Duration::from_millis(500) {
                    last = std::time::Instant::now();
                    let msg = format!("copying {from}: {} files, {} MiB", s.files, s.bytes >> 20);
                    env.sink.progress(&env, &msg, None);
                }
                watch.strong_count() > 0
            })
        });
        let r = work
            .await
            .map_err(|e| HostError::Io(format!("copy worker failed: {e}")))?;
        drop(live);
        r
    }

    /// Replace a file atomically inside a read-write grant. A small file is written on the
    /// call's own thread, like the guest's own file operations; a large one on the blocking
    /// pool.
    pub async fn write_atomic(&mut self, path: String, contents: Vec<u8>) -> Result<(), HostError> {
        let env = self.env.clone();
        if contents.len() <= 1 << 20 {
            return super::files::write_atomic(&env.caps, &env.plugin, &path, &contents);
        }
        tokio::task::spawn_blocking(move || {
            super::files::write_atomic(&env.caps, &env.plugin, &path, &contents)
        })
        .await
        .map_err(|e| HostError::Io(format!("write worker failed: {e}")))?
    }

    /// A granted secret's value.
    pub fn secret(&self, name: &str) -> Result<String, HostError> {
        match self.env.secrets.get(name) {
            Some(v) => Ok(v.clone()),
            None => Err(authority::Denied::ungranted(
                authority::GrantKey::Secrets,
                &self.env.plugin,
                format!("secret `{name}`"),
                format!("add `{name} = {{ env = \"VAR\" }}` under [secrets] if it should have it"),
            )
            .into()),
        }
    }
}

/// One HTTP exchange without following redirects.
fn exchange(
    req: &Request,
    url: &str,
    body: Option<&[u8]>,
    limit: Duration,
    drop_auth: bool,
) -> Result<Response, HostError> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(limit))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut b = ureq::http::Request::builder()
        .method(req.method.as_str())
        .uri(url);
    for Pair { key, value } in &req.headers {
        if drop_auth && key.eq_ignore_ascii_case("authorization") {
            continue;
        }
        b = b.header(key.as_str(), value.as_str());
    }
    let request = b
        .body(body.unwrap_or_default().to_vec())
        .map_err(|e| HostError::Invalid(format!("bad request to `{url}`: {e}")))?;
    let resp = agent.run(request).map_err(|e| match e {
        ureq::Error::Timeout(_) => HostError::TimedOut(format!("{} {url}: {e}", req.method)),
        e => HostError::Io(format!("{} {url}: {e}", req.method)),
    })?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| Pair {
            key: k.as_str().to_string(),
            value: v.to_str().unwrap_or_default().to_string(),
        })
        .collect();
    let body = resp
        .into_body()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .map_err(|e| HostError::Io(format!("reading the response of {url}: {e}")))?;
    Ok(Response {
        status,
        headers,
        body,
    })
}
