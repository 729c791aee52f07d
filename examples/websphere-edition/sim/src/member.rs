//! One cluster member: an application server on loopback serving the application edition it
//! runs, with HTTP sessions kept in the cell's shared session store (the stand-in for
//! WebSphere's database session persistence, "Configuring for database session persistence",
//! https://www.ibm.com/docs/en/was-nd/9.0.5?topic=sessions-configuring-database-session-persistence),
//! so a client whose member goes away keeps its session on another one.

use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A member's run-time state, shared by its HTTP threads and the deployment manager.
pub struct Member {
    pub name: String,
    pub node: String,
    pub port: u16,
    /// Applications (edition deployments, e.g. `App-edition1.0`) running on this server.
    pub apps: Mutex<BTreeSet<String>>,
    /// Requests being served (PMI `webAppModule.servlets.concurrentRequests`, ID 12).
    pub concurrent: AtomicUsize,
    /// Requests being served that use a session (PMI `servletSessionsModule.activeSessions`,
    /// ID 6: "a session is active if the server is currently processing a request that uses
    /// that session").
    pub active_sessions: AtomicUsize,
    /// Requests served since start (PMI `webAppModule.servlets.totalRequests`, ID 11).
    pub total: AtomicUsize,
    server: Mutex<Option<Arc<tiny_http::Server>>>,
    running: AtomicBool,
    sessions: PathBuf,
    work: Duration,
}

impl Member {
    pub fn new(
        name: &str,
        node: &str,
        port: u16,
        apps: BTreeSet<String>,
        sessions: PathBuf,
        work: Duration,
    ) -> Arc<Member> {
        Arc::new(Member {
            name: name.into(),
            node: node.into(),
            port,
            apps: Mutex::new(apps),
            concurrent: AtomicUsize::new(0),
            active_sessions: AtomicUsize::new(0),
            total: AtomicUsize::new(0),
            server: Mutex::new(None),
            running: AtomicBool::new(false),
            sessions,
            work,
        })
    }

    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Start listening (the server process starts).
    pub fn start(self: &Arc<Self>) -> Result<()> {
        if self.running() {
            return Ok(());
        }
        let server = Arc::new(
            tiny_http::Server::http(("127.0.0.1", self.port))
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("member {} listening on {}", self.name, self.port))?,
        );
        *self.server.lock().unwrap() = Some(server.clone());
        self.running.store(true, Ordering::SeqCst);
        let me = self.clone();
        std::thread::spawn(move || {
            for req in server.incoming_requests() {
                let me = me.clone();
                std::thread::spawn(move || me.serve(req));
            }
        });
        Ok(())
    }

    /// Stop the server: wait for the requests in flight (up to `quiesce`), then close.
    pub fn stop(&self, quiesce: Duration) {
        self.running.store(false, Ordering::SeqCst);
        let until = std::time::Instant::now() + quiesce;
        while self.concurrent.load(Ordering::SeqCst) > 0 && std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(s) = self.server.lock().unwrap().take() {
            s.unblock();
        }
        self.concurrent.store(0, Ordering::SeqCst);
        self.active_sessions.store(0, Ordering::SeqCst);
        self.total.store(0, Ordering::SeqCst);
    }

    /// The edition this member serves: the one application of the edition family running.
    fn edition(&self) -> Option<String> {
        let apps = self.apps.lock().unwrap();
        apps.iter()
            .find_map(|a| a.split_once("-edition").map(|(_, e)| e.to_string()))
    }

    fn serve(&self, req: tiny_http::Request) {
        let url = req.url().to_string();
        if url == "/app/ping" {
            let (code, body) = match self.edition() {
                Some(e) => (200, format!("edition={e}\n")),
                None => (404, "SRVE0190E: File not found: /ping\n".into()),
            };
            let _ = req.respond(tiny_http::Response::from_string(body).with_status_code(code));
            return;
        }
        self.concurrent.fetch_add(1, Ordering::SeqCst);
        self.total.fetch_add(1, Ordering::SeqCst);
        let cookie = req
            .headers()
            .iter()
            .find(|h| h.field.equiv("Cookie"))
            .and_then(|h| {
                h.value
                    .as_str()
                    .split(';')
                    .find_map(|c| c.trim().strip_prefix("JSESSIONID=").map(str::to_string))
            });
        if cookie.is_some() {
            self.active_sessions.fetch_add(1, Ordering::SeqCst);
        }
        std::thread::sleep(self.work);
        let resp = match self.edition() {
            // An application that is not running answers as WebSphere's web container does.
            None => tiny_http::Response::from_string("SRVE0190E: File not found\n")
                .with_status_code(404),
            Some(edition) => {
                let (id, count) = self.session(cookie.as_deref());
                let mut r = tiny_http::Response::from_string(format!(
                    "edition={edition} member={} session={id} count={count}\n",
                    self.name
                ));
                r.add_header(
                    tiny_http::Header::from_bytes("Set-Cookie", format!("JSESSIONID={id}; Path=/"))
                        .unwrap(),
                );
                r
            }
        };
        if cookie.is_some() {
            self.active_sessions.fetch_sub(1, Ordering::SeqCst);
        }
        let _ = req.respond(resp);
        self.concurrent.fetch_sub(1, Ordering::SeqCst);
    }

    /// The session's request count after this request, from the shared store; an unknown
    /// or missing id starts a new session.
    fn session(&self, id: Option<&str>) -> (String, u64) {
        let known = id
            .filter(|i| i.chars().all(|c| c.is_ascii_alphanumeric()))
            .and_then(|i| {
                let n: u64 = std::fs::read_to_string(self.sessions.join(i))
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((i.to_string(), n))
            });
        let (id, n) = known.unwrap_or_else(|| {
            let id = format!(
                "{:x}{:04x}",
                simkit::now_ms(),
                rand_suffix(self.total.load(Ordering::SeqCst))
            );
            (id, 0)
        });
        let _ = simkit::write_atomic(&self.sessions.join(&id), format!("{}\n", n + 1).as_bytes());
        (id, n + 1)
    }
}

fn rand_suffix(seed: usize) -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos() as u64;
    (t ^ (seed as u64).wrapping_mul(0x9e37_79b9)) & 0xffff
}
