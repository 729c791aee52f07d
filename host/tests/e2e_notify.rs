//! Webhooks through the real binary to a receiver on loopback: every event delivered with its
//! idempotency key (retried while the receiver fails), and a crash between an event and its
//! delivery loses nothing: the next command delivers it.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// What the receiver got: (idempotency key header, event, authorization, body).
type Got = Arc<Mutex<Vec<(String, String, String, serde_json::Value)>>>;

/// A webhook receiver on `port` that answers 500 to the first `fail_first` requests.
fn receiver(port: u16, fail_first: usize) -> Got {
    let got: Got = Default::default();
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let g = got.clone();
    std::thread::spawn(move || {
        let mut seen = 0;
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let mut headers = std::collections::HashMap::new();
            loop {
                let mut l = String::new();
                if r.read_line(&mut l).unwrap_or(0) == 0 || l.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = l.split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
                }
            }
            let len: usize = headers
                .get("content-length")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            seen += 1;
            let status = if seen <= fail_first {
                "500 Internal Server Error"
            } else {
                g.lock().unwrap().push((
                    headers.get("idempotency-key").cloned().unwrap_or_default(),
                    headers.get("x-cutover-event").cloned().unwrap_or_default(),
                    headers.get("authorization").cloned().unwrap_or_default(),
                    serde_json::from_slice(&body).unwrap_or_default(),
                ));
                "200 OK"
            };
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    got
}

/// A release-dir fleet of 4 nodes in groups of 2 that waits for approval after the first,
/// telling a webhook on `port` of every event.
fn fleet(base: u16, port: u16) -> SimFleet {
    let f = SimFleet::build(
        "node-sim",
        &[
            "--nodes",
            "4",
            "--base-port",
            &base.to_string(),
            "--group-size",
            "2",
        ],
    );
    std::fs::write(f.path().join("hook-token"), "s3cret-hook-token\n").unwrap();
    let spec = std::fs::read_to_string(f.spec()).unwrap();
    std::fs::write(
        f.spec(),
        spec.replace("on-failure = \"continue\"", "on-failure = \"continue\"\napprove-first-group = true")
            + &format!(
                "\n[secrets]\nhook-token = {{ file = \"{}\" }}\n\n[[notify]]\nurl = \"http://127.0.0.1:{port}/hook\"\nsecret = \"hook-token\"\n",
                f.path().join("hook-token").display()
            ),
    )
    .unwrap();
    f
}

/// The events of a rollout paused for approval after its first group, then approved.
const APPROVED: [&str; 5] = [
    "started",
    "wave-done",
    "needs-approval",
    "wave-done",
    "completed",
];

fn events(got: &Got) -> Vec<String> {
    got.lock()
        .unwrap()
        .iter()
        .map(|(_, e, _, _)| e.clone())
        .collect()
}

#[test]
fn every_event_reaches_the_receiver_with_its_idempotency_key_retried_while_it_fails() {
    let got = receiver(17450, 2);
    let f = fleet(17400, 17450);
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(
        o.status.code(),
        Some(3),
        "paused for approval: {}",
        text(&o)
    );
    let o = f.run(&["approve", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        events(&got),
        APPROVED,
        "the first two tries failed and were retried"
    );
    for (key, event, auth, body) in got.lock().unwrap().iter() {
        assert_eq!(body["key"], *key, "{body}");
        assert_eq!(body["event"], *event, "{body}");
        assert_eq!(body["rollout"], 1);
        assert_eq!(auth, "Bearer s3cret-hook-token");
    }
    let keys: std::collections::BTreeSet<String> =
        got.lock().unwrap().iter().map(|g| g.0.clone()).collect();
    assert_eq!(keys.len(), 5, "one key per event");
    let s = status_json(&f.journal(), 1);
    let n = s["notifications"].as_array().unwrap();
    assert!(n.iter().all(|d| d["delivered_ms"].is_i64()), "{s}");
    assert!(
        n.iter().any(|d| d["attempts"].as_i64().unwrap() > 1),
        "a retried delivery: {s}"
    );
    assert!(!s.to_string().contains("s3cret-hook-token"), "{s}");
}

#[test]
fn a_crash_between_an_event_and_its_delivery_loses_nothing() {
    let got = receiver(17460, 0);
    let f = fleet(17420, 17460);
    let o = run_env(
        &f.journal(),
        &["run", &f.spec()],
        &[(
            "CUTOVER_FAILPOINT".into(),
            "crash-after-event=needs-approval".into(),
        )],
    );
    assert_eq!(o.status.code(), Some(137), "{}", text(&o));
    // The event is in the journal, not delivered: the process died right after committing it.
    assert!(
        !events(&got).contains(&"needs-approval".to_string()),
        "{:?}",
        events(&got)
    );
    let s = status_json(&f.journal(), 1);
    let waiting: Vec<&serde_json::Value> = s["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["delivered_ms"].is_null())
        .collect();
    assert_eq!(waiting.last().unwrap()["event"], "needs-approval", "{s}");
    // The next command delivers it, then goes on.
    let o = f.run(&["approve", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(events(&got), APPROVED, "each event once, in order");
}

#[test]
fn a_host_wide_hook_file_is_told_only_the_events_it_names() {
    let got = receiver(17470, 0);
    let f = SimFleet::build(
        "node-sim",
        &["--nodes", "4", "--base-port", "17430", "--group-size", "2"],
    );
    // node-02 refuses to start 2.0.0: the first group fails and is rolled back.
    std::fs::write(f.path().join("nodes/node-02/fail-start"), "2.0.0").unwrap();
    let hooks = f.path().join("notify.toml");
    std::fs::write(
        &hooks,
        "[[notify]]\nurl = \"http://127.0.0.1:17470/all\"\nevents = [\"rolled-back\", \"failed\"]\n",
    )
    .unwrap();
    let f = f.with_env("CUTOVER_NOTIFY", hooks.to_str().unwrap());
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(events(&got), ["rolled-back"], "only what the file names");
    let body = got.lock().unwrap()[0].3.clone();
    assert_eq!(body["status"], "rolled-back", "{body}");
    assert!(
        body["reason"].as_str().unwrap().contains("first wave"),
        "{body}"
    );
    // A hook file that names an unknown event is refused before anything runs.
    std::fs::write(
        &hooks,
        "[[notify]]\nurl = \"http://127.0.0.1:17470/x\"\nevents = [\"deployed\"]\n",
    )
    .unwrap();
    let o = f.run(&["plan", &f.spec()]);
    let out = text(&o);
    assert!(
        !o.status.success() && out.contains("notify event `deployed` is not one of"),
        "{out}"
    );
}

#[test]
fn aborting_a_paused_rollout_tells_the_webhooks() {
    let got = receiver(17480, 0);
    let f = fleet(17440, 17480);
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = f.run(&["abort", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        events(&got),
        ["started", "wave-done", "needs-approval", "aborted"]
    );
}
