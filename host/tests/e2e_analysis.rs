//! Analysis gates against a real Prometheus (Debian's `prometheus`, on loopback) scraping the
//! release-dir simulator's nodes, which count requests and errors; traffic runs the whole
//! time. A canary whose error rate rises is rolled back by the analysis with no person
//! involved; a healthy one proceeds; a Prometheus that is down makes the analysis
//! inconclusive (a pause), never passed.

mod common;

use common::*;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const NODES: u16 = 4;

struct Prometheus {
    child: Child,
    _data: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Prometheus on `port`, scraping the nodes' `/metrics` every second.
fn prometheus(port: u16, base: u16) -> Prometheus {
    let data = tempfile::tempdir().unwrap();
    let targets: Vec<String> = (1..=NODES)
        .map(|i| format!("'127.0.0.1:{}'", base + i))
        .collect();
    let config = data.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: nodes\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        ),
    )
    .unwrap();
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            data.path().join("tsdb").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus runs (Debian package prometheus; examples/test-suite installs it)");
    let ready = format!("http://127.0.0.1:{port}/-/ready");
    wait_for(
        "prometheus ready",
        std::time::Duration::from_secs(30),
        || ureq::get(&ready).call().is_ok(),
    );
    // Wait until it has scraped every node at least twice.
    let up = format!("http://127.0.0.1:{port}/api/v1/query?query=count(up%3D%3D1)");
    wait_for(
        "prometheus scraping",
        std::time::Duration::from_secs(30),
        || {
            ureq::get(&up)
                .call()
                .ok()
                .and_then(|r| r.into_body().read_to_string().ok())
                .is_some_and(|b| b.contains(&format!("\"{NODES}\"")))
        },
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    Prometheus { child, _data: data }
}

/// Requests to every node's `/work` until dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Traffic {
    fn start(base: u16) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let agent: ureq::Agent = ureq::Agent::config_builder()
                .timeout_global(Some(std::time::Duration::from_secs(2)))
                .http_status_as_error(false)
                .build()
                .into();
            while !s.load(Ordering::SeqCst) {
                for i in 1..=NODES {
                    let _ = agent
                        .get(format!("http://127.0.0.1:{}/work", base + i))
                        .call();
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A canary rollout of 4 nodes with an error-rate analysis after the canary.
fn fleet(base: u16, prometheus_url: &str) -> SimFleet {
    let f = SimFleet::build(
        "node-sim",
        &[
            "--nodes",
            &NODES.to_string(),
            "--base-port",
            &base.to_string(),
            "--strategy",
            "canary",
        ],
    );
    let provider = plugins().join("prometheus_analysis.wasm");
    let spec = std::fs::read_to_string(f.spec()).unwrap();
    std::fs::write(
        f.spec(),
        spec.replace("group-size = \"4\"", "group-size = \"4\"\nanalysis = \"error-rate\"")
            + &format!(
                "\n[[analysis]]\nname = \"error-rate\"\nprovider = \"{}\"\ninterval = \"2s\"\ncount = 5\nsuccess = \"value < 0.05\"\ninconclusive-limit = 2\n[analysis.params]\nurl = \"{prometheus_url}\"\nquery = \"sum(rate(node_errors_total[10s])) / sum(rate(node_requests_total[10s]))\"\n",
                provider.display()
            ),
    )
    .unwrap();
    f
}

fn versions(f: &SimFleet) -> Vec<String> {
    (1..=NODES)
        .map(|i| {
            let link =
                std::fs::read_link(f.path().join(format!("nodes/node-{i:02}/current"))).unwrap();
            link.file_name().unwrap().to_string_lossy().into_owned()
        })
        .collect()
}

#[test]
fn a_canary_whose_error_rate_rises_is_rolled_back_by_the_analysis() {
    let base = 17100;
    let f = fleet(base, "http://127.0.0.1:17190");
    let _prom = prometheus(17190, base);
    for i in 1..=NODES {
        std::fs::write(
            f.path().join(format!("nodes/node-{i:02}/fail-work")),
            "2.0.0",
        )
        .unwrap();
    }
    let _traffic = Traffic::start(base);
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("analysis `error-rate` failed"), "{out}");
    let s = status_json(&f.journal(), 1);
    assert_eq!(s["status"], "rolled-back", "{s}");
    let ms = s["measurements"].as_array().unwrap();
    assert!(
        ms.iter()
            .any(|m| m["outcome"] == "fail" && m["value"].as_f64().unwrap() > 0.05),
        "{s}"
    );
    assert_eq!(
        versions(&f),
        vec!["1.0.0"; NODES as usize],
        "every node back on 1.0.0"
    );
    // Only the canary was ever updated.
    let updated = lines(&f.path().join("nodes/node-02/sim.log"));
    assert!(!updated.iter().any(|l| l.contains("2.0.0")), "{updated:?}");
}

#[test]
fn a_healthy_canary_passes_the_analysis_and_the_rollout_completes() {
    let base = 17200;
    let f = fleet(base, "http://127.0.0.1:17290");
    let _prom = prometheus(17290, base);
    let _traffic = Traffic::start(base);
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    let s = status_json(&f.journal(), 1);
    let ms = s["measurements"].as_array().unwrap();
    assert_eq!(
        ms.iter().filter(|m| m["outcome"] == "pass").count(),
        5,
        "{s}"
    );
    assert_eq!(versions(&f), vec!["2.0.0"; NODES as usize]);
    let shown = text(&f.run(&["status", "1"]));
    assert!(
        shown.contains("analysis `error-rate`") && shown.contains("pass"),
        "{shown}"
    );
}

#[test]
fn a_prometheus_that_is_down_makes_the_analysis_inconclusive_not_passed() {
    let base = 17300;
    // Nothing listens on 17399.
    let f = fleet(base, "http://127.0.0.1:17399");
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(3), "paused: {out}");
    assert!(
        out.contains("analysis `error-rate` is inconclusive"),
        "{out}"
    );
    let s = status_json(&f.journal(), 1);
    assert_eq!(s["status"], "paused", "{s}");
    assert!(
        s["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["outcome"] == "inconclusive"),
        "{s}"
    );
    // Only the canary moved; the rest waits for a person.
    assert_eq!(versions(&f)[1..], vec!["1.0.0"; NODES as usize - 1]);
}
