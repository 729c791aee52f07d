//! liferay-cluster on 4 simulated Liferay nodes behind a real nginx, through the real binary:
//! the update matrix in preflight, and zero failed requests through the load balancer during a
//! rolling restart and a blue-green switch.

mod common;

use common::*;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

/// A simulated cluster of 4 nodes behind nginx.
struct Cluster {
    fleet: SimFleet,
    lb_port: u16,
}

impl std::ops::Deref for Cluster {
    type Target = SimFleet;
    fn deref(&self) -> &SimFleet {
        &self.fleet
    }
}

impl Cluster {
    fn new(port: u16, mode: &str) -> Cluster {
        let lb_port = port - 10;
        let fleet = SimFleet::build(
            "liferay-sim",
            &[
                "--nodes",
                "4",
                "--port",
                &port.to_string(),
                "--lb-port",
                &lb_port.to_string(),
                "--mode",
                mode,
            ],
        );
        Cluster { fleet, lb_port }
    }

    fn reloads(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.path().join("lb/reloads"))
            .map(|r| r.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap().trim().to_string())
            .collect()
    }

    /// What the load balancer answers, `n` times.
    fn served_by(&self, n: usize) -> Vec<String> {
        (0..n)
            .map(|_| get(&format!("http://127.0.0.1:{}/", self.lb_port)).1)
            .collect()
    }
}

/// A plain HTTP GET: (status, body); status 0 when there was no answer.
fn get(url: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    match agent.get(url).call() {
        Ok(r) => {
            let status = r.status().as_u16();
            (status, r.into_body().read_to_string().unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// Requests through the load balancer from 3 threads until stopped: (sent, failed).
struct Load {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(lb_port: u16) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let failed = Arc::new(AtomicUsize::new(0));
        let threads = (0..3)
            .map(|_| {
                let (stop, sent, failed) = (stop.clone(), sent.clone(), failed.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::SeqCst) {
                        let (status, _) = get(&format!("http://127.0.0.1:{lb_port}/"));
                        sent.fetch_add(1, Ordering::SeqCst);
                        if status != 200 {
                            failed.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            sent,
            failed,
            threads,
        }
    }

    fn finish(self, what: &str) -> (usize, usize) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            t.join().unwrap();
        }
        let (sent, failed) = (
            self.sent.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        );
        eprintln!("{what}: {sent} requests through nginx, {failed} failed");
        (sent, failed)
    }
}

#[test]
fn the_matrix_refuses_a_rolling_restart_for_each_no_row_and_blue_green_accepts_it() {
    let c = Cluster::new(18810, "rolling");
    let cases = [
        (
            "module = \"blog-1.1.0.jar\"",
            "module = \"blog-2.0.0.jar\"",
            "schema-incompatible",
            "Liferay-Require-SchemaVersion 2.0.0, but Release_ holds 1.0.0",
        ),
        (
            "module = \"blog-1.1.0.jar\"",
            "module = \"cluster-tuning-1.0.0.jar\"",
            "cluster-code",
            "contains package com.liferay.portal.kernel.cluster.messaging",
        ),
        (
            "module = \"blog-1.1.0.jar\"",
            "module = \"blog-1.1.0.jar\"\nfixpack = \"fixpack-de-12.zip\"",
            "fixpack-nonrevertible",
            "fix pack de-12 is not revertible",
        ),
        (
            "module = \"blog-1.1.0.jar\"",
            "module = \"blog-1.1.0.jar\"\njava-version = \"21.0.1\"",
            "java-major",
            "Java 17.0.9 → 21.0.1 is a major upgrade",
        ),
    ];
    let original = std::fs::read_to_string(c.spec()).unwrap();
    for (from, to, row, why) in cases {
        std::fs::write(c.spec(), &original).unwrap();
        c.set_spec(from, to);
        let o = run(&c.journal(), &["plan", &c.spec()]);
        let out = text(&o);
        assert!(
            out.contains("a rolling restart is not supported for")
                && out.contains(&format!("row `{row}`"))
                && out.contains(why),
            "{row}: {out}"
        );
        // The same change with blue-green: no blocker, the row is reported as information.
        let rolling = plugins().join("rolling.wasm").display().to_string();
        let bg = plugins().join("blue_green.wasm").display().to_string();
        c.set_spec(&rolling, &bg);
        c.set_spec("mode = \"rolling\"", "mode = \"blue-green\"");
        let o = run(&c.journal(), &["plan", &c.spec()]);
        let out = text(&o);
        assert!(
            o.status.success() && !out.contains("BLOCKER"),
            "{row} with blue-green: {out}"
        );
        assert!(out.contains(why), "{row}: {out}");
    }
    // Compatible changes pass a rolling restart.
    std::fs::write(c.spec(), &original).unwrap();
    c.set_spec(
        "module = \"blog-1.1.0.jar\"",
        "module = \"blog-1.1.0.jar\"\nfixpack = \"fixpack-de-11.zip\"\njava-version = \"17.0.12\"",
    );
    let o = run(&c.journal(), &["plan", &c.spec()]);
    assert!(
        o.status.success() && !text(&o).contains("BLOCKER"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_rolling_restart_of_4_nodes_loses_no_request() {
    let c = Cluster::new(18830, "rolling");
    let load = Load::start(c.lb_port);
    let o = run(&c.journal(), &["run", &c.spec()]);
    let (sent, failed) = load.finish("rolling restart");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(failed, 0, "{failed} of {sent} requests failed");
    assert!(sent > 100, "only {sent} requests");
    for i in 1..=4 {
        let port = 18830 + i;
        let (status, body) = get(&format!("http://127.0.0.1:{port}/modules"));
        assert_eq!(status, 200);
        let r: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            r["modules"],
            serde_json::json!(["com.acme.blog.service-1.1.0.jar"]),
            "node-{i}"
        );
        assert_eq!(r["release"]["com.acme.blog.service"], "1.1.0");
        assert!(r["properties"]
            .as_str()
            .unwrap()
            .contains("session.timeout=45"));
    }
    // Each node was taken out and put back: 8 reloads; all 4 serve again.
    assert_eq!(c.reloads().len(), 8, "{:?}", c.reloads());
    let served: std::collections::BTreeSet<String> = c.served_by(16).into_iter().collect();
    assert_eq!(served.len(), 4, "{served:?}");
}

#[test]
fn a_blue_green_switch_loses_no_request_and_switches_back_in_one_reload() {
    let c = Cluster::new(18850, "blue-green");
    // A non-backward-compatible schema change: blue-green only.
    c.set_spec("module = \"blog-1.1.0.jar\"", "module = \"blog-2.0.0.jar\"");
    let load = Load::start(c.lb_port);
    let o = run(&c.journal(), &["run", &c.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(c
        .served_by(8)
        .iter()
        .all(|b| b.starts_with("node-3") || b.starts_with("node-4")));
    assert_eq!(c.reloads().len(), 1, "{:?}", c.reloads());
    // Blue was kept intact: never stopped, still on the old module.
    for i in 1..=2 {
        let (_, body) = get(&format!("http://127.0.0.1:{}/modules", 18850 + i));
        assert!(
            body.contains("com.acme.blog.service-1.0.0.jar"),
            "node-{i}: {body}"
        );
    }
    let o = run(&c.journal(), &["rollback", "1"]);
    let (sent, failed) = load.finish("blue-green switch and switch back");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        c.reloads().len(),
        2,
        "one reload to switch back: {:?}",
        c.reloads()
    );
    assert!(c.reloads()[1].contains("switch back to blue"));
    assert!(c
        .served_by(8)
        .iter()
        .all(|b| b.starts_with("node-1") || b.starts_with("node-2")));
    assert_eq!(failed, 0, "{failed} of {sent} requests failed");
    assert!(sent > 50, "only {sent} requests");
}

#[test]
fn a_rolling_restart_takes_one_node_at_a_time_whatever_the_group_size() {
    let c = Cluster::new(18870, "rolling");
    let rolling = plugins().join("rolling.wasm").display().to_string();
    let grouped = plugins().join("grouped.wasm").display().to_string();
    c.set_spec(&rolling, &grouped);
    c.set_spec(
        "on-failure = \"pause\"",
        "on-failure = \"pause\"\ngroup-size = 2",
    );
    // The adapter's constraint turns groups of two into waves of one.
    let o = run(&c.journal(), &["plan", "--json", &c.spec()]);
    assert!(o.status.success(), "{}", text(&o));
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let waves: Vec<usize> = p["stages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["targets"].as_array().map(|t| t.len()))
        .collect();
    assert_eq!(waves, vec![1, 1, 1, 1], "{p}");
    let load = Load::start(c.lb_port);
    let o = run(&c.journal(), &["run", &c.spec()]);
    let (sent, failed) = load.finish("group-size 2, one node at a time");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(failed, 0, "{failed} of {sent} requests failed");
    // Never fewer than three live servers of four; at the end all four serve.
    let reloads = c.reloads();
    assert!(
        reloads.iter().all(|l| l
            .split_once(": ")
            .is_some_and(|(_, live)| live.split_whitespace().count() >= 3)),
        "a moment with two nodes out: {reloads:?}"
    );
    let served: std::collections::BTreeSet<String> = c.served_by(16).into_iter().collect();
    assert_eq!(served.len(), 4, "{served:?}");
}

#[test]
fn liferay_cluster_passes_the_conformance_run() {
    let c = Cluster::new(18890, "rolling");
    // Left out of the comparisons: the node's runtime folder (pid files).
    let report = c.conformance("liferay_cluster.wasm", &["--ignore", "**/run/**"]);
    assert!(report.contains("put the targets back"), "{report}");
}
