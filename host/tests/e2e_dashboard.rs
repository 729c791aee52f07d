//! `cutover serve` in a real browser: headless Chromium from Debian, driven over WebDriver
//! (chromedriver), follows real release-dir rollouts of node-sim fleets live, approves a
//! paused canary and aborts a soaking rollout by clicking; a request without the token changes
//! nothing, and neither the token nor a secret output ever reaches the page.
//!
//! Screenshots go to `$DASHBOARD_SCREENSHOTS` (default `<target>/dashboard-screenshots`);
//! the README's come from `DASHBOARD_SCREENSHOTS=examples/dashboard/screenshots`.

mod common;
mod web;

use common::hostile::Hostile;
use common::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use web::{http, json_server, Browser, Proc, SHOWN};

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

/// The server, the browser on its page, and what the phases of the test share.
struct Dash {
    b: Browser,
    addr: String,
    journal: std::path::PathBuf,
    token: String,
    /// When the test began (actions are recorded after it).
    t0: i64,
    _server: Proc,
}

impl Dash {
    /// `rollout` shown on the page, selected by clicking it in the list.
    fn open(&self, rollout: i64) {
        let row = format!("#rollouts tr[data-rollout=\"{rollout}\"]");
        self.b.wait_present(&row, SHOWN);
        self.b.click(&row);
        self.b
            .wait_attr("#detail h2", "data-rollout", &rollout.to_string(), SHOWN);
    }

    /// Click the action button `action` and confirm (the token is asked for the first time).
    fn act(&self, action: &str) {
        self.b.click(&format!("#act-{action}"));
        if self.b.attr("#token-modal", "hidden").is_none() {
            self.b.type_into("#token-input", &self.token);
            self.b.click("#token-save");
        }
        self.b
            .wait_attr("#confirm-modal", "hidden", "(absent)", SHOWN);
        self.b.click("#confirm-yes");
    }

    /// The page was never reloaded (SSE updated it).
    fn assert_same_page(&self) {
        assert_eq!(
            self.b.js("return window.loadedOnce;"),
            "yes",
            "the page was reloaded"
        );
    }
}

/// 6 node-sim nodes: a canary of 1 with slow starts (the page shows it running before it is
/// updated), an analysis gate of two measurements through `http-analysis`, an approval gate,
/// then groups of 2.
fn canary_fleet() -> SimFleet {
    let a = SimFleet::build("node-sim", &["--nodes", "6", "--base-port", "25100"]);
    a.set_spec("release-dir-demo", "shop-canary");
    a.set_spec("grouped.wasm", "canary.wasm");
    a.set_spec(
        "group-size = \"4\"",
        "group-size = \"2\"\ncanary = \"1\"\ncanary-approval = \"true\"",
    );
    std::fs::write(a.path().join("nodes/start-delay-ms"), "2000").unwrap();
    let checks = json_server(r#"{"checks": {"error_rate": 0.01}}"#);
    let mut spec = std::fs::read_to_string(a.spec()).unwrap();
    spec.push_str(&format!(
        "\n[[analysis]]\nname = \"error-rate\"\nprovider = \"{}\"\nafter-wave = 1\ninterval = \"1s\"\n\
         count = 2\nsuccess = \"value < 0.05\"\n[analysis.params]\nurl = \"http://127.0.0.1:{checks}/checks\"\n\
         pointer = \"/checks/error_rate\"\n",
        plugins().join("http_analysis.wasm").display()
    ));
    std::fs::write(a.spec(), spec).unwrap();
    a
}

#[test]
fn the_dashboard_follows_rollouts_live_and_its_buttons_act() {
    let t0 = now_ms();
    let token = unique("dashboard-token");
    let a = canary_fleet();
    let journal = a.journal();
    let (server, addr, printed) = serve(
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
    let b = Browser::start();
    b.goto(&format!("http://{addr}/"));
    b.wait_attr("#live", "data-live", "yes", SHOWN);
    // Marks this page load: a reload would lose it.
    b.js("window.loadedOnce = 'yes'; return null;");
    let d = Dash {
        b,
        addr,
        journal,
        token,
        t0,
        _server: server,
    };
    follow_and_approve(&d, &a);
    abort_by_clicking(&d);
    refused_without_the_token(&d, &a);
    roll_back_by_clicking(&d, &a);
    no_secret_on_the_page(&d);
    d.assert_same_page();
}

/// (1) The canary's rollout appears and progresses on the page without a reload, up to its
/// approval gate; (2) approved by clicking, it completes, and the journal has who and when.
fn follow_and_approve(d: &Dash, a: &SimFleet) {
    let b = &d.b;
    let mut running = a.spawn_run();
    d.open(1);
    let node1 = "#targets tr[data-target=\"node-01\"]";
    let seen = b.wait_attr(node1, "data-state", "running", SHOWN);
    let seen_after = b.wait_attr(node1, "data-state", "updated", SHOWN);
    eprintln!("node-01 on the page: {seen:?} then {seen_after:?}");
    b.wait_attr("#status", "data-status", "paused", SHOWN);
    // The analysis gate passed with its two measurements, on the timeline and listed.
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
    d.assert_same_page();
    assert_eq!(
        wait_exit(&mut running, DEADLINE).and_then(|s| s.code()),
        Some(3),
        "the run pauses at the gate"
    );
    assert_eq!(
        b.attr("#act-approve", "disabled"),
        None,
        "Approve is enabled on a paused rollout"
    );
    b.screenshot("paused-canary.png");

    // The page asks for the token, then for a confirmation.
    b.click("#act-approve");
    b.wait_attr("#token-modal", "hidden", "(absent)", SHOWN);
    b.type_into("#token-input", &d.token);
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
    let s = status_json(&d.journal, 1);
    assert_eq!(s["status"], "completed", "{s}");
    assert!(s["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["state"] == "updated"));
    for i in 1..=6 {
        assert_eq!(current(a, i), "2.0.0", "node {i}");
    }
    // Recorded with who and when; the result once the approving process ended.
    wait_for("the approval's result", SHOWN, || {
        actions(&d.journal, 1)
            .first()
            .is_some_and(|a| a.3.starts_with("completed"))
    });
    let acts = actions(&d.journal, 1);
    assert_eq!(acts.len(), 1, "{acts:?}");
    let (action, who, ts, result) = &acts[0];
    assert_eq!((action.as_str(), who.as_str()), ("approve", "alice"));
    assert!(*ts >= d.t0 && *ts <= now_ms(), "{ts}");
    assert_eq!(result, "completed (exit 0)");
    let s = status_json(&d.journal, 1);
    assert_eq!(s["actions"][0]["who"], "alice", "{s}");
    let shown = text(&run(&d.journal, &["status", "1"]));
    assert!(
        shown.contains("approve by alice: completed (exit 0)"),
        "{shown}"
    );
}

/// (3) A second rollout, soaking for 10 minutes between its groups, is aborted by clicking.
fn abort_by_clicking(d: &Dash) {
    let b = &d.b;
    let fleet = SimFleet::build("node-sim", &["--nodes", "4", "--base-port", "25200"]);
    fleet.set_spec("release-dir-demo", "shop-soak");
    fleet.set_spec(
        "group-size = \"4\"",
        "group-size = \"2\"\nsoak-seconds = 600",
    );
    let mut running = spawn(
        &d.journal,
        &["run", &fleet.spec()],
        &[],
        Stdio::null(),
        Stdio::null(),
    );
    d.open(2);
    b.wait_attr(
        "#stages li[data-kind=\"soak\"]",
        "data-state",
        "current",
        SHOWN,
    );
    b.wait_attr("#status", "data-status", "running", SHOWN);
    d.act("abort");
    b.wait_attr("#status", "data-status", "aborted", SHOWN);
    assert_eq!(
        wait_exit(&mut running, DEADLINE).and_then(|s| s.code()),
        Some(4),
        "the run ends aborted"
    );
    assert_eq!(status_json(&d.journal, 2)["status"], "aborted");
    for i in 3..=4 {
        assert_eq!(
            node_log(&fleet, i),
            vec!["start 1.0.0"],
            "node {i} untouched"
        );
    }
    b.wait_present("#actions tr[data-action=\"abort\"]", SHOWN);
    let acts = actions(&d.journal, 2);
    assert_eq!(acts.len(), 1, "{acts:?}");
    assert_eq!((acts[0].0.as_str(), acts[0].1.as_str()), ("abort", "alice"));
    assert!(acts[0].3.starts_with("abort requested"), "{acts:?}");
    b.screenshot("aborted.png");
}

/// (4) Without the token, or with a wrong one, nothing happens: 401, no record, no change.
/// A request addressed to another name (DNS rebinding) gets nothing either.
fn refused_without_the_token(d: &Dash, a: &SimFleet) {
    for auth in [None, Some("Bearer not-the-token-at-all")] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let (code, body) = http(&d.addr, "POST", "/api/rollouts/1/rollback", &headers);
        assert_eq!(code, 401, "{body}");
    }
    assert_eq!(actions(&d.journal, 1).len(), 1);
    assert_eq!(status_json(&d.journal, 1)["status"], "completed");
    for i in 1..=6 {
        assert_eq!(current(a, i), "2.0.0", "node {i}");
    }
    let (code, _) = http(
        &d.addr,
        "GET",
        "/api/rollouts",
        &[("host", "evil.example:80")],
    );
    assert_eq!(code, 421);
}

/// With the token, the completed canary rollout is rolled back by clicking, by a process of
/// its own that the server records the end of.
fn roll_back_by_clicking(d: &Dash, a: &SimFleet) {
    d.open(1);
    d.act("rollback");
    d.b.wait_attr("#status", "data-status", "rolled-back", SHOWN);
    wait_for("the rollback's result", SHOWN, || {
        actions(&d.journal, 1)
            .get(1)
            .is_some_and(|a| !a.3.starts_with("started"))
    });
    let acts = actions(&d.journal, 1);
    assert_eq!(
        (acts[1].0.as_str(), acts[1].1.as_str(), acts[1].3.as_str()),
        ("rollback", "alice", "rolled-back (exit 2)")
    );
    for i in 1..=6 {
        assert_eq!(current(a, i), "1.0.0", "node {i}");
    }
}

/// (5) A step's secret output is listed redacted, never in clear; the token is never shown.
fn no_secret_on_the_page(d: &Dash) {
    let h = Hostile::new("leak");
    let spec = h.write_spec();
    let o = run_env(&d.journal, &["run", spec.to_str().unwrap()], h.envs());
    assert_ne!(o.status.code(), Some(1), "{}", text(&o));
    d.open(3);
    d.b.wait_present(
        "#targets tr[data-target=\"t2\"] .chip[data-step=\"attack\"]",
        SHOWN,
    );
    let page = d.b.source();
    assert!(
        page.contains("«redacted»"),
        "the secret output is listed, redacted"
    );
    let (_, api) = http(&d.addr, "GET", "/api/rollouts/3", &[]);
    for shown in [&page, &api] {
        assert!(
            !shown.contains("k3y-0f-the-engine"),
            "a secret output was shown"
        );
        assert!(!shown.contains(&d.token), "the token was shown");
    }
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
