//! `cutover serve` in a real browser: headless Chromium from Debian, driven over WebDriver
//! (chromedriver), follows real release-dir rollouts of node-sim fleets live, approves a
//! paused canary and aborts a soaking rollout by clicking; a request without the token changes
//! nothing, and neither the token nor a secret output ever reaches the page.
//!
//! Screenshots go to `$DASHBOARD_SCREENSHOTS` (default `<target>/dashboard-screenshots`);
//! the README's come from `DASHBOARD_SCREENSHOTS=examples/dashboard/screenshots`.

mod common;

use common::hostile::Hostile;
use common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// How long the page may take to show a change.
const SHOWN: Duration = Duration::from_secs(60);

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cutover serve` on a free loopback port: the process, its address and what it printed.
fn serve(journal: &Path, envs: &[(&str, &str)], extra: &[&str]) -> (Proc, String, Vec<String>) {
    let mut child = Command::new(cutover())
        .arg("--journal")
        .arg(journal)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("CUTOVER_TOKEN")
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cutover serve starts");
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for _ in 0..2 {
        let mut l = String::new();
        out.read_line(&mut l).unwrap();
        lines.push(l.trim_end().to_string());
    }
    // Keep reading, so that the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let addr = lines[0]
        .split("http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no address in {lines:?}"))
        .trim_end_matches('/')
        .to_string();
    (Proc(child), addr, lines)
}

/// A loopback HTTP server answering every request with the JSON `body`, for the test's
/// life; its port.
fn json_server(body: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// One HTTP/1.1 request to `addr`: status and body.
fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: 0\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

/// Headless Chromium driven through chromedriver.
struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    _driver: Proc,
}

impl Browser {
    fn start() -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "the dashboard tests need Debian's chromium and chromium-driver (examples/test-suite installs them)"
        );
        let port = free_port();
        let driver = Proc(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        wait_for("chromedriver to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1360,1000", "--hide-scrollbars", "--force-device-scale-factor=1"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = rt
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a WebDriver session in headless Chromium");
        Browser {
            rt,
            client: Some(client),
            _driver: driver,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).unwrap();
    }

    /// Run `script` in the page; its value.
    fn js(&self, script: &str) -> serde_json::Value {
        self.rt
            .block_on(self.c().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Attribute `attr` of the first element matching `css`, read in one go (the page
    /// re-renders as the journal changes).
    fn attr(&self, css: &str, attr: &str) -> Option<String> {
        let v = self.js(&format!(
            "const e = document.querySelector({}); return e ? e.getAttribute({}) : null;",
            json!(css),
            json!(attr)
        ));
        v.as_str().map(str::to_string)
    }

    /// Wait until attribute `attr` of `css` is `want`; the values seen on the way.
    fn wait_attr(&self, css: &str, attr: &str, want: &str, limit: Duration) -> Vec<String> {
        let until = Instant::now() + limit;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let v = self.attr(css, attr).unwrap_or_else(|| "(absent)".into());
            if seen.last() != Some(&v) {
                seen.push(v.clone());
            }
            if v == want {
                return seen;
            }
            assert!(
                Instant::now() < until,
                "the page never showed {css} with {attr}={want}; it showed {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `css` matches `n` elements.
    fn wait_count(&self, css: &str, n: usize, limit: Duration) {
        let until = Instant::now() + limit;
        loop {
            let v = self.js(&format!(
                "return document.querySelectorAll({}).length;",
                json!(css)
            ));
            if v == n {
                return;
            }
            assert!(
                Instant::now() < until,
                "the page showed {v} of {css}, not {n}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `css` matches an element.
    fn wait_present(&self, css: &str, limit: Duration) {
        let until = Instant::now() + limit;
        while self.js(&format!("return !!document.querySelector({});", json!(css))) != true {
            assert!(Instant::now() < until, "the page never showed {css}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Click the element `css` as a user would (found again if the page re-rendered it).
    fn click(&self, css: &str) {
        let until = Instant::now() + SHOWN;
        loop {
            let r = self.rt.block_on(async {
                let e = self.c().find(Locator::Css(css)).await?;
                e.click().await
            });
            match r {
                Ok(()) => return,
                Err(e) => assert!(Instant::now() < until, "cannot click {css}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn type_into(&self, css: &str, text: &str) {
        self.rt
            .block_on(async {
                let e = self.c().find(Locator::Css(css)).await?;
                e.send_keys(text).await
            })
            .unwrap();
    }

    fn source(&self) -> String {
        self.rt.block_on(self.c().source()).unwrap()
    }

    /// Write a screenshot of the window to `name` in the screenshot folder.
    fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.rt.block_on(self.c().screenshot()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = screenshots();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
    }
}

fn screenshots() -> PathBuf {
    match std::env::var_os("DASHBOARD_SCREENSHOTS") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root().join(d)
            }
        }
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"))
            .join("dashboard-screenshots"),
    }
}

/// The version a node-sim node points at.
fn current(fleet: &SimFleet, i: usize) -> String {
    std::fs::read_to_string(
        fleet
            .path()
            .join(format!("nodes/node-{i:02}/current/VERSION")),
    )
    .unwrap()
    .trim()
    .to_string()
}

fn node_log(fleet: &SimFleet, i: usize) -> Vec<String> {
    lines(&fleet.path().join(format!("nodes/node-{i:02}/sim.log")))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The actions the journal recorded for `rollout`: (action, who, ts, result).
fn actions(journal: &Path, rollout: i64) -> Vec<(String, String, i64, String)> {
    journal_query(
        journal,
        &format!(
            "SELECT action, who, ts, result FROM actions WHERE rollout = {rollout} ORDER BY id"
        ),
    )
    .into_iter()
    .map(|r| {
        (
            r[0].clone(),
            r[1].clone(),
            r[2].parse().unwrap(),
            r[3].clone(),
        )
    })
    .collect()
}

#[test]
fn the_dashboard_follows_rollouts_live_and_its_buttons_act() {
    let t0 = now_ms();
    let token = unique("dashboard-token");
    // A canary of 1 node waiting for approval, then groups of 2; slow starts, so that the
    // page shows the canary running before it is updated.
    let a = SimFleet::build("node-sim", &["--nodes", "6", "--base-port", "25100"]);
    a.set_spec("release-dir-demo", "shop-canary");
    a.set_spec("grouped.wasm", "canary.wasm");
    a.set_spec(
        "group-size = \"4\"",
        "group-size = \"2\"\ncanary = \"1\"\ncanary-approval = \"true\"",
    );
    std::fs::write(a.path().join("nodes/start-delay-ms"), "2000").unwrap();
    // After the canary, an analysis gate: two measurements of an error rate, through the
    // http-analysis provider.
    let checks = json_server(r#"{"checks": {"error_rate": 0.01}}"#);
    let mut spec = std::fs::read_to_string(a.spec()).unwrap();
    spec.push_str(&format!(
        "\n[[analysis]]\nname = \"error-rate\"\nprovider = \"{}\"\nafter-wave = 1\ninterval = \"1s\"\n\
         count = 2\nsuccess = \"value < 0.05\"\n[analysis.params]\nurl = \"http://127.0.0.1:{checks}/checks\"\n\
         pointer = \"/checks/error_rate\"\n",
        plugins().join("http_analysis.wasm").display()
    ));
    std::fs::write(a.spec(), spec).unwrap();
    let journal = a.journal();

    let (_server, addr, printed) = serve(
        &journal,
        &[("CUTOVER_TOKEN", token.as_str())],
        &["--operator", "alice"],
    );
    assert!(
        printed[1].contains("as configured (not shown)"),
        "{printed:?}"
    );
    assert!(
        !printed.join("\n").contains(&token),
        "a configured token is never printed"
    );
    let url = format!("http://{addr}/");
    let b = Browser::start();
    b.goto(&url);
    b.wait_attr("#live", "data-live", "yes", SHOWN);
    // Marks this page load: a reload would lose it.
    b.js("window.loadedOnce = 'yes'; return null;");

    // (1) The rollout appears and progresses on the page without a reload.
    let mut run_a = a.spawn_run();
    b.wait_present("#rollouts tr[data-rollout=\"1\"]", SHOWN);
    b.click("#rollouts tr[data-rollout=\"1\"]");
    let node1 = "#targets tr[data-target=\"node-01\"]";
    let seen = b.wait_attr(node1, "data-state", "running", SHOWN);
    let seen_after = b.wait_attr(node1, "data-state", "updated", SHOWN);
    eprintln!("node-01 on the page: {seen:?} then {seen_after:?}");
    b.wait_attr("#status", "data-status", "paused", SHOWN);
    // The analysis gate passed with its two measurements, shown on the timeline and listed.
    b.wait_attr(
        "#stages li[data-kind=\"analysis\"]",
        "data-state",
        "done",
        SHOWN,
    );
    b.wait_count(
        "#stages li[data-kind=\"analysis\"] .chip[data-outcome=\"pass\"]",
        2,
        SHOWN,
    );
    b.wait_count("#measurements tbody tr[data-outcome=\"pass\"]", 2, SHOWN);
    b.wait_attr(
        "#stages li[data-kind=\"approval\"]",
        "data-state",
        "current",
        SHOWN,
    );
    assert_eq!(
        b.attr("#targets tr[data-target=\"node-02\"]", "data-state")
            .as_deref(),
        Some("pending")
    );
    assert_eq!(
        b.js("return window.loadedOnce;"),
        "yes",
        "the page was reloaded"
    );
    assert_eq!(
        wait_exit(&mut run_a, DEADLINE).and_then(|s| s.code()),
        Some(3),
        "the run pauses at the gate"
    );
    assert_eq!(
        b.attr("#act-approve", "disabled"),
        None,
        "Approve is enabled on a paused rollout"
    );
    b.screenshot("paused-canary.png");

    // (2) Approve by clicking: the page asks for the token, then for a confirmation.
    b.click("#act-approve");
    b.wait_attr("#token-modal", "hidden", "(absent)", SHOWN);
    b.type_into("#token-input", &token);
    b.click("#token-save");
    b.wait_attr("#confirm-modal", "hidden", "(absent)", SHOWN);
    b.click("#confirm-yes");
    b.wait_attr(
        "#status",
        "data-status",
        "completed",
        Duration::from_secs(120),
    );
    for i in 1..=6 {
        b.wait_attr(
            &format!("#targets tr[data-target=\"node-{i:02}\"]"),
            "data-state",
            "updated",
            SHOWN,
        );
    }
    b.wait_present("#actions tr[data-action=\"approve\"]", SHOWN);
    let s = status_json(&journal, 1);
    assert_eq!(s["status"], "completed", "{s}");
    assert!(s["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["state"] == "updated"));
    for i in 1..=6 {
        assert_eq!(current(&a, i), "2.0.0", "node {i}");
    }
    // Recorded with who and when; the result once the approving process ended.
    wait_for("the approval's result", SHOWN, || {
        actions(&journal, 1)
            .first()
            .is_some_and(|a| a.3.starts_with("completed"))
    });
    let acts = actions(&journal, 1);
    assert_eq!(acts.len(), 1, "{acts:?}");
    let (action, who, ts, result) = &acts[0];
    assert_eq!((action.as_str(), who.as_str()), ("approve", "alice"));
    assert!(*ts >= t0 && *ts <= now_ms(), "{ts}");
    assert_eq!(result, "completed (exit 0)");
    assert_eq!(s["actions"][0]["who"], "alice", "{s}");
    let shown = text(&run(&journal, &["status", "1"]));
    assert!(
        shown.contains("approve by alice: completed (exit 0)"),
        "{shown}"
    );

    // (3) A second rollout, soaking for 10 minutes between its groups, aborted by clicking.
    let bfleet = SimFleet::build("node-sim", &["--nodes", "4", "--base-port", "25200"]);
    bfleet.set_spec("release-dir-demo", "shop-soak");
    bfleet.set_spec(
        "group-size = \"4\"",
        "group-size = \"2\"\nsoak-seconds = 600",
    );
    let mut run_b = spawn(
        &journal,
        &["run", &bfleet.spec()],
        &[],
        Stdio::null(),
        Stdio::null(),
    );
    b.wait_present("#rollouts tr[data-rollout=\"2\"]", SHOWN);
    b.click("#rollouts tr[data-rollout=\"2\"]");
    b.wait_attr(
        "#stages li[data-kind=\"soak\"]",
        "data-state",
        "current",
        SHOWN,
    );
    b.wait_attr("#status", "data-status", "running", SHOWN);
    b.click("#act-abort");
    b.wait_attr("#confirm-modal", "hidden", "(absent)", SHOWN);
    b.click("#confirm-yes");
    b.wait_attr("#status", "data-status", "aborted", SHOWN);
    assert_eq!(
        wait_exit(&mut run_b, DEADLINE).and_then(|s| s.code()),
        Some(4),
        "the run ends aborted"
    );
    assert_eq!(status_json(&journal, 2)["status"], "aborted");
    for i in 3..=4 {
        assert_eq!(
            node_log(&bfleet, i),
            vec!["start 1.0.0"],
            "node {i} untouched"
        );
    }
    b.wait_present("#actions tr[data-action=\"abort\"]", SHOWN);
    let acts = actions(&journal, 2);
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!((acts[0].0.as_str(), acts[0].1.as_str()), ("abort", "alice"));
    assert!(acts[0].3.starts_with("abort requested"), "{acts:?}");
    b.screenshot("aborted.png");

    // (4) Without the token (or with a wrong one) nothing happens: 401, no record, no change.
    for auth in [None, Some("Bearer not-the-token-at-all")] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let (code, body) = http(&addr, "POST", "/api/rollouts/1/rollback", &headers);
        assert_eq!(code, 401, "{body}");
    }
    assert_eq!(actions(&journal, 1).len(), 1);
    assert_eq!(status_json(&journal, 1)["status"], "completed");
    for i in 1..=6 {
        assert_eq!(current(&a, i), "2.0.0", "node {i}");
    }
    // A page of another name (DNS rebinding) gets nothing.
    let (code, _) = http(
        &addr,
        "GET",
        "/api/rollouts",
        &[("host", "evil.example:80")],
    );
    assert_eq!(code, 421);

    // (5) A step's secret output is never shown, nor is the token.
    let h = Hostile::new("leak");
    let spec = h.write_spec();
    let o = run_env(&journal, &["run", spec.to_str().unwrap()], h.envs());
    assert_ne!(o.status.code(), Some(1), "{}", text(&o));
    b.wait_present("#rollouts tr[data-rollout=\"3\"]", SHOWN);
    b.click("#rollouts tr[data-rollout=\"3\"]");
    b.wait_present(
        "#targets tr[data-target=\"t2\"] .chip[data-step=\"attack\"]",
        SHOWN,
    );
    let page = b.source();
    assert!(
        page.contains("«redacted»"),
        "the secret output is listed, redacted"
    );
    let (_, api) = http(&addr, "GET", "/api/rollouts/3", &[]);
    for shown in [&page, &api] {
        assert!(
            !shown.contains("k3y-0f-the-engine"),
            "a secret output was shown"
        );
        assert!(!shown.contains(&token), "the token was shown");
    }
    assert_eq!(
        b.js("return window.loadedOnce;"),
        "yes",
        "the page was reloaded"
    );
}

#[test]
fn serve_makes_a_token_when_none_is_configured_and_keeps_to_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    let (_server, addr, printed) = serve(&journal, &[], &[]);
    let token = printed[1]
        .strip_prefix("token for actions: ")
        .and_then(|t| t.split_whitespace().next())
        .unwrap_or_else(|| panic!("{printed:?}"))
        .to_string();
    assert_eq!(token.len(), 64, "{printed:?}");
    let bearer = format!("Bearer {token}");
    // The printed token is accepted (there is no rollout 7), a wrong one is not.
    let (code, body) = http(
        &addr,
        "POST",
        "/api/rollouts/7/approve",
        &[("authorization", &bearer)],
    );
    assert_eq!(code, 404, "{body}");
    let (code, _) = http(&addr, "POST", "/api/rollouts/7/approve", &[]);
    assert_eq!(code, 401);
    let (code, body) = http(&addr, "GET", "/api/rollouts", &[]);
    assert_eq!((code, body.trim()), (200, "[]"));
    let (code, page) = http(&addr, "GET", "/", &[]);
    assert_eq!(code, 200);
    assert!(page.contains("<script src=\"/page.js\">") && !page.contains(&token));
    // Another address than loopback needs --public.
    let o = run(&journal, &["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("--public"), "{}", text(&o));
}
