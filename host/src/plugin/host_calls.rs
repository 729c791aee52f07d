//! What plugins can call: logging, clock, exec, HTTP and secrets, each checked against the
//! call's effective capabilities. A denial names the grant to add.

use super::bindings::adapter::cutover::plugin::{adapter_types, clock, exec, files, http, secrets};
use super::bindings::strategy::cutover::plugin::{log, strategy_types, types};
use super::bindings::{Level, Pair};
use super::runtime::CallState;
use std::time::Duration;

impl types::Host for CallState {}
impl strategy_types::Host for CallState {}
impl adapter_types::Host for CallState {}

impl log::Host for CallState {
    async fn write(&mut self, level: Level, message: String) {
        let env = self.env.clone();
        env.sink.log(&env, level, &message);
    }

    async fn progress(&mut self, message: String, fraction: Option<f32>) {
        let env = self.env.clone();
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
        tokio::time::sleep(Duration::from_millis(ms)).await
    }
}

impl exec::Host for CallState {
    async fn run(&mut self, cmd: exec::Command) -> Result<exec::Exit, String> {
        let env = self.env.clone();
        let program = super::caps::normalize(std::path::Path::new(&cmd.program))
            .display()
            .to_string();
        if !env.caps.exec.contains(&program) {
            return Err(format!(
                "exec of `{}` denied for {}: not among its granted commands ({}); the plugin must request it in describe() and the spec must grant it under [grants] exec",
                cmd.program,
                env.plugin,
                if env.caps.exec.is_empty() { "none".to_string() } else { env.caps.exec.join(", ") }
            ));
        }
        let mut c = tokio::process::Command::new(&program);
        c.args(&cmd.args)
            .env_clear()
            .env(
                "PATH",
                std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .stdin(if cmd.stdin.is_some() {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        for Pair { key, value } in &cmd.env {
            c.env(key, value);
        }
        if let Some(cwd) = &cmd.cwd {
            c.current_dir(cwd);
        }
        let mut child = c
            .spawn()
            .map_err(|e| format!("cannot start `{program}`: {e}"))?;
        if let Some(input) = cmd.stdin {
            use tokio::io::AsyncWriteExt;
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(&input).await;
            }
        }
        let limit = cmd
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(env.budget)
            .min(env.budget);
        match tokio::time::timeout(limit, child.wait_with_output()).await {
            Ok(Ok(out)) => Ok(exec::Exit {
                code: out.status.code(),
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                timed_out: false,
            }),
            Ok(Err(e)) => Err(format!("`{program}` failed: {e}")),
            Err(_) => Ok(exec::Exit {
                code: None,
                stdout: String::new(),
                stderr: format!("killed after {limit:?}"),
                timed_out: true,
            }),
        }
    }
}

impl http::Host for CallState {
    async fn send(&mut self, req: http::Request) -> Result<http::Response, String> {
        let env = self.env.clone();
        let uri: ureq::http::Uri = req
            .url
            .parse()
            .map_err(|e| format!("bad URL `{}`: {e}", req.url))?;
        let host = uri.host().unwrap_or_default().to_string();
        let port = uri
            .port_u16()
            .unwrap_or(if uri.scheme_str() == Some("https") {
                443
            } else {
                80
            });
        if !super::caps::http_allowed(&env.caps, &host, port) {
            return Err(format!(
                "HTTP to `{host}:{port}` denied for {}: not among its granted hosts ({}); the plugin must request it in describe() and the spec must grant it under [grants] http",
                env.plugin,
                if env.caps.http.is_empty() { "none".to_string() } else { env.caps.http.join(", ") }
            ));
        }
        let limit = req
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(Duration::from_secs(30))
            .min(env.budget);
        let url = req.url.clone();
        tokio::task::spawn_blocking(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(limit))
                .http_status_as_error(false)
                .build()
                .into();
            let mut b = ureq::http::Request::builder()
                .method(req.method.as_str())
                .uri(&req.url);
            for Pair { key, value } in &req.headers {
                b = b.header(key.as_str(), value.as_str());
            }
            let request = b
                .body(req.body.unwrap_or_default())
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
        })
        .await
        .map_err(|e| format!("HTTP worker failed: {e}"))?
    }
}

impl files::Host for CallState {
    async fn copy_tree(&mut self, from: String, to: String) -> Result<files::CopyStats, String> {
        let env = self.env.clone();
        tokio::task::spawn_blocking(move || {
            let mut last = std::time::Instant::now();
            super::files::copy_tree(&env.caps, &env.plugin, &from, &to, &mut |s| {
                if last.elapsed() >= Duration::from_millis(500) {
                    last = std::time::Instant::now();
                    let msg = format!("copying {from}: {} files, {} MiB", s.files, s.bytes >> 20);
                    env.sink.progress(&env, &msg, None);
                }
            })
            .map(|s| files::CopyStats {
                files: s.files,
                dirs: s.dirs,
                bytes: s.bytes,
            })
        })
        .await
        .map_err(|e| format!("copy worker failed: {e}"))?
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
            None => Err(format!(
                "secret `{name}` denied for {}: the plugin must request it in describe() and the spec must map it under [secrets] ({name} = {{ env = \"VAR\" }})",
                self.env.plugin
            )),
        }
    }
}
