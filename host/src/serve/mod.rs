//! `cutover serve`: a web dashboard of the journal. Every rollout with its live timeline
//! (stages, targets, steps, gates, measurements, log lines) pushed as server-sent events, and
//! the operator actions `approve`, `abort`, `rollback` and `resume`, which need a token and
//! are recorded in the journal with who asked and when.
//!
//! It listens on loopback unless told otherwise, answers only requests addressed to the name
//! it listens on (no DNS rebinding), and shows only what `cutover status` shows: redacted
//! journal text, never a secret output nor the token.

mod actions;
mod api;
mod auth;
mod sse;

use crate::journal::{Journal, Sync};
use anyhow::{bail, Context, Result};
use axum::extract::State as Ax;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// How `cutover serve` was asked to run.
pub struct Options {
    /// Where to listen; loopback unless `public`.
    pub listen: SocketAddr,
    /// Allow a non-loopback address.
    pub public: bool,
    /// Tokens, one a line: `TOKEN` or `NAME TOKEN` (NAME is recorded as who acted).
    pub token_file: Option<PathBuf>,
    /// Who acts with a token that has no name (default: the user running the server).
    pub operator: Option<String>,
}

/// What every request handler shares.
pub(crate) struct Shared {
    journal: Arc<Journal>,
    /// A read-only connection that tells when the journal changed (`PRAGMA data_version`).
    reader: Mutex<rusqlite::Connection>,
    tokens: Vec<auth::Token>,
    operator: String,
    /// `Host` headers the server answers (empty: any, with `--public`).
    hosts: Vec<String>,
    /// The `cutover` binary and the options its action processes get.
    exe: PathBuf,
    journal_path: PathBuf,
    store: PathBuf,
    /// Where action processes write their output.
    logs: PathBuf,
    /// Rollouts with an action process of this server still running (rollout → pid).
    busy: Mutex<HashMap<i64, u32>>,
    /// The list entries of finished rollouts, with the `updated` time of the row they show.
    finished: Mutex<HashMap<i64, (i64, serde_json::Value)>>,
}

type State = Arc<Shared>;

/// Serve the dashboard of `journal` until interrupted (SIGINT or SIGTERM).
pub async fn run(journal: &Path, store: &Path, opts: Options) -> Result<i32> {
    if !opts.listen.ip().is_loopback() && !opts.public {
        bail!(
            "{} is not a loopback address: the dashboard serves plain HTTP and its actions change rollouts; add --public to listen there anyway (behind TLS and a firewall)",
            opts.listen
        );
    }
    let (tokens, generated) = auth::tokens(opts.token_file.as_deref())?;
    let journal_path = std::path::absolute(journal)?;
    let journal = Arc::new(Journal::open(&journal_path, Sync::Full)?);
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        journal,
        reader: Mutex::new(rusqlite::Connection::open_with_flags(
            &journal_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )?),
        tokens,
        operator: opts.operator.unwrap_or_else(auth::os_user),
        hosts: if opts.public {
            Vec::new()
        } else {
            allowed_hosts(addr)
        },
        exe: std::env::current_exe().context("finding the cutover binary")?,
        logs: journal_path
            .parent()
            .unwrap_or(Path::new("."))
            .join("actions"),
        journal_path,
        store: std::path::absolute(store)?,
        busy: Mutex::new(HashMap::new()),
        finished: Mutex::new(HashMap::new()),
    });
    println!(
        "dashboard of {}: http://{addr}/",
        shared.journal_path.display()
    );
    match generated {
        Some(t) => println!(
            "token for actions: {t} (made for this run; set CUTOVER_TOKEN or --token-file to choose one)"
        ),
        None => println!("token for actions: as configured (not shown)"),
    }
    if opts.public {
        eprintln!(
            "warning: listening on {addr} in plain HTTP: put it behind TLS, tokens cross the network"
        );
    }
    let app = router(shared);
    let server = axum::serve(listener, app);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = server => r.context("serving the dashboard")?,
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
    // Action processes are not ours to stop: each goes on driving its rollout.
    Ok(0)
}

/// The names a loopback server may be reached by.
fn allowed_hosts(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    vec![
        addr.to_string(),
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ]
}

fn router(shared: State) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/page.js", get(script))
        .route("/api/rollouts", get(api::list))
        .route("/api/rollouts/{id}", get(api::one))
        .route("/api/rollouts/{id}/{action}", post(actions::act))
        .route("/api/events", get(sse::events))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

/// Refuse requests addressed to another name (DNS rebinding), and add the headers that keep
/// the page to itself.
async fn guard(Ax(st): Ax<State>, req: Request<axum::body::Body>, next: Next) -> Response {
    if !st.hosts.is_empty() {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !st.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return (StatusCode::MISDIRECTED_REQUEST, "unknown host name\n").into_response();
        }
    }
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn page() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        include_str!("page.html"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("page.js"),
    )
}

/// A JSON error answer.
pub(crate) fn error(code: StatusCode, message: impl Into<String>) -> Response {
    (
        code,
        axum::Json(serde_json::json!({ "error": message.into() })),
    )
        .into_response()
}

/// Run journal reads off the async threads; an error becomes a 500 answer.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T, Response> {
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}"))),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}
