//! What plugins can call: logging, clock, exec, HTTP, files and secrets. Every decision is
//! the capability authority's ([`authority`](super::authority)); this file only carries the
//! calls out. A denial names the grant to add.

use super::bindings::adapter::cutover::plugin::{adapter_types, clock, exec, files, http, secrets};
use super::bindings::strategy::cutover::plugin::{log, strategy_types, types};
use super::bindings::{Level, Pair};
use super::runtime::CallState;
use super::{authority, authority::text, process};
use std::sync::Arc;
use std::time::Duration;

impl types::Host for CallState {}
impl strategy_types::Host for CallState {}
impl adapter_types::Host for CallState {}

impl log::Host for CallState {
    async fn write(&mut self, level: Level, message: String) {
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

    async fn progress(&mut self, message: String, fraction: Option<f32>) {
        let env = self.env.clone();
        let message = text::cut(&message, 1024, "log-line-size");
        env.sink.progress(&env, &message, fraction);
    }
}

impl clock::Host for CallState {
    async fn now_ms(&mut self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    async fn sleep_ms(&mut self, ms: u64) {
        tokio::time::sleep(Duration::from_millis(ms).min(self.env.budget)).await
    }
}

impl exec::Host for CallState {
    async fn run(&mut self, cmd: exec::Command) -> Result<exec::Exit, String> {
        let env = self.env.clone();
        let caps = &env.caps;
        let program =
            authority::exec::program(caps, &env.plugin, &cmd.program).map_err(|d| d.to_string())?;
        let vars: Vec<(String, String)> = cmd
            .env
            .into_iter()
            .map(|Pair { key, value }| (key, value))
            .collect();
        authority::exec::env(caps, &env.plugin, &vars).map_err(|d| d.to_string())?;
        let cwd = match &cmd.cwd {
            Some(c) => authority::exec::cwd(caps, &env.plugin, c).map_err(|d| d.to_string())?,
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
            env: authority::exec::environment(caps, &vars),
            cwd,
            stdin: cmd.stdin,
            timeout,
            keep: env.limits.exec_output,
        })
        .await
        .map_err(|e| format!("cannot start `{}`: {e}", program.arg0))?;
        Ok(exec::Exit {
            code: done.code,
            stdout: done.stdout,
            stderr: done.stderr,
            timed_out: done.timed_out,
        })
    }
}

/// One HTTP exchange without following redirects.
fn exchange(
    req: &http::Request,
    url: &str,
    body: Option<&[u8]>,
    limit: Duration,
    drop_auth: bool,
) -> Result<http::Response, String> {
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
        .map_err(|e| format!("bad request to `{url}`: {e}"))?;
    let resp = agent
        .run(request)
        .map_err(|e| format!("{} {url}: {e}", req.method))?;
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
        .map_err(|e| format!("reading the response of {url}: {e}"))?;
    Ok(http::Response {
        status,
        headers,
        body,
    })
}

impl http::Host for CallState {
    async fn send(&mut self, req: http::Request) -> Result<http::Response, String> {
        let env = self.env.clone();
        authority::http::check(&env.caps, &env.plugin, &req.url)?;
        let limit = req
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(30))
            .min(env.budget);
        let work = tokio::task::spawn_blocking(move || {
            let origin = authority::http::parse(&req.url)?;
            let mut url = req.url.clone();
            let mut body = req.body.clone();
            for _ in 0..=authority::http::MAX_REDIRECTS {
                let (_, host, port) = authority::http::parse(&url)?;
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
            Err(format!(
                "{} {}: more than {} redirects",
                req.method,
                req.url,
                authority::http::MAX_REDIRECTS
            ))
        });
        match tokio::time::timeout(limit + Duration::from_secs(1), work).await {
            Ok(r) => r.map_err(|e| format!("HTTP worker failed: {e}"))?,
            Err(_) => Err(format!("no HTTP answer within {limit:?}")),
        }
    }
}

impl files::Host for CallState {
    async fn copy_tree(&mut self, from: String, to: String) -> Result<files::CopyStats, String> {
        let env = self.env.clone();
        // Dropped with the call (its budget ran out, or the step was interrupted): the copy
        // stops at its next file instead of going on unseen.
        let live = Arc::new(());
        let watch = Arc::downgrade(&live);
        let work = tokio::task::spawn_blocking(move || {
            let mut last = std::time::Instant::now();
            super::files::copy_tree(&env.caps, &env.plugin, &from, &to, &mut |s| {
                if last.elapsed() >= Duration::from_millis(500) {
                    last = std::time::Instant::now();
                    let msg = format!("copying {from}: {} files, {} MiB", s.files, s.bytes >> 20);
                    env.sink.progress(&env, &msg, None);
                }
                watch.strong_count() > 0
            })
            .map(|s| files::CopyStats {
                files: s.files,
                dirs: s.dirs,
                bytes: s.bytes,
            })
        });
        let r = work.await.map_err(|e| format!("copy worker failed: {e}"))?;
        drop(live);
        r
    }

    async fn write_atomic(&mut self, path: String, contents: Vec<u8>) -> Result<(), String> {
        let env = self.env.clone();
        tokio::task::spawn_blocking(move || {
            super::files::write_atomic(&env.caps, &env.plugin, &path, &contents)
        })
        .await
        .map_err(|e| format!("write worker failed: {e}"))?
    }
}

impl secrets::Host for CallState {
    async fn get(&mut self, name: String) -> Result<String, String> {
        match self.env.secrets.get(&name) {
            Some(v) => Ok(v.clone()),
            None => Err(authority::Denied::ungranted(
                authority::GrantKey::Secrets,
                &self.env.plugin,
                format!("secret `{name}`"),
                format!("add `{name} = {{ env = \"VAR\" }}` under [secrets] if it should have it"),
            )
            .to_string()),
        }
    }
}
