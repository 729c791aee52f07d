//! liferay-cluster on 4 simulated Liferay nodes behind a real nginx, through the real binary:
//! the update matrix in preflight from the documented sources (jar manifest, `Release_` through
//! a mysql client, `java -version`, the Patching Tool), zero failed requests through the load
//! balancer during a rolling restart and a blue-green switch, the switch back refused after a
//! schema upgrade, and an irreversible change with every node down, restored on failure.

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
        Cluster::with(port, &["--mode", mode])
    }

    fn with(port: u16, args: &[&str]) -> Cluster {
        let lb_port = port - 10;
        let (port_s, lb_s) = (port.to_string(), lb_port.to_string());
        let mut all = vec!["--nodes", "4", "--port", &port_s, "--lb-port", &lb_s];
        all.extend_from_slice(args);
        let fleet = SimFleet::build("liferay-sim", &all);
        Cluster { fleet, lb_port }
    }

    fn node(&self, i: usize) -> PathBuf {
        self.path().join(format!("nodes/node-{i}"))
    }

    /// The jars in a node's `osgi/modules`.
    fn modules(&self, i: usize) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.node(i).join("osgi/modules"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    }

    /// The blog module's schema in `Release_` of `database`, read with the fleet's mysql client.
    fn release(&self, database: &str) -> String {
        let o = std::process::Command::new(self.path().join("bin/mysql"))
            .args(["-N", "-B", "-e"])
            .arg("SELECT schemaVersion FROM Release_ WHERE servletContextName IN ('com.acme.blog.service')")
            .arg(database)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    }

    /// What node `i` answers itself (not through nginx).
    fn page(&self, i: usize) -> (u16, String) {
        let port: u16 = std::fs::read_to_string(self.node(i).join("port"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        get(&format!("http://127.0.0.1:{port}/"))
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

/// `cutover plan` of the spec: (succeeded, output).
fn plan(c: &Cluster) -> (bool, String) {
    let o = run(&c.journal(), &["plan", &c.spec()]);
    (o.status.success(), text(&o))
}

/// Switch the spec to the blue-green strategy and mode.
fn to_blue_green(c: &Cluster) {
    let rolling = plugins().join("rolling.wasm").display().to_string();
    let bg = plugins().join("blue_green.wasm").display().to_string();
    c.set_spec(&rolling, &bg);
    c.set_spec("mode = \"rolling\"", "mode = \"blue-green\"");
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
            "module = \"blog-1.1.0.jar\"\nfixpack = \"liferay-fix-pack-de-12-7010.zip\"",
            "fixpack-nonrevertible",
            "fix pack liferay-fix-pack-de-12-7010.zip is not revertible",
        ),
        (
            "module = \"blog-1.1.0.jar\"",
            "module = \"blog-1.1.0.jar\"\njava-version = \"21.0.1\"",
            "java-major",
            "Java 17.0.9 → 21.0.1 is a major upgrade",
        ),
        // Any schema change needs the operator's word that the old code still works.
        (
            "schema-compatible = true",
            "schema-compatible = false",
            "schema-incompatible",
            "Liferay-Require-SchemaVersion 1.1.0, but Release_ holds 1.0.0",
        ),
    ];
    let original = std::fs::read_to_string(c.spec()).unwrap();
    for (from, to, row, why) in cases {
        std::fs::write(c.spec(), &original).unwrap();
        c.set_spec(from, to);
        let (_, out) = plan(&c);
        assert!(
            out.contains("a rolling restart is not supported for")
                && out.contains(&format!("row `{row}`"))
                && out.contains(why),
            "{row}: {out}"
        );
        // The same change with blue-green: no blocker, the row is reported as information;
        // except an irreversible schema change while green shares blue's database.
        to_blue_green(&c);
        let (ok, out) = plan(&c);
        assert!(ok && out.contains(why), "{row}: {out}");
        if row == "schema-incompatible" {
            assert!(
                out.contains("BLOCKER")
                    && out.contains("blue-green with a shared database is refused"),
                "{row} with blue-green on one database: {out}"
            );
        } else {
            assert!(!out.contains("BLOCKER"), "{row} with blue-green: {out}");
        }
    }
    // Compatible changes pass a rolling restart; the patch is revertible by the operator's word.
    std::fs::write(c.spec(), &original).unwrap();
    c.set_spec(
        "module = \"blog-1.1.0.jar\"",
        "module = \"blog-1.1.0.jar\"\nfixpack = \"liferay-fix-pack-de-11-7010.zip\"\nfixpack-revertible = true\njava-version = \"17.0.12\"",
    );
    let (ok, out) = plan(&c);
    assert!(ok && !out.contains("BLOCKER"), "{out}");
    assert!(
        out.contains("Java 17.0.9 → 17.0.12 is a minor upgrade")
            && out.contains("installed patches: none"),
        "{out}"
    );
}

#[test]
fn a_rolling_restart_of_4_nodes_loses_no_request() {
    let c = Cluster::new(18830, "rolling");
    c.set_spec(
        "module = \"blog-1.1.0.jar\"",
        "module = \"blog-1.1.0.jar\"\nfixpack = \"liferay-fix-pack-de-11-7010.zip\"\nfixpack-revertible = true",
    );
    let load = Load::start(c.lb_port);
    let o = run(&c.journal(), &["run", &c.spec()]);
    let (sent, failed) = load.finish("rolling restart");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(failed, 0, "{failed} of {sent} requests failed");
    assert!(sent > 100, "only {sent} requests");
    assert_eq!(c.release("lportal"), "1.1.0");
    for i in 1..=4 {
        assert_eq!(
            c.modules(i),
            ["com.acme.blog.service-1.1.0.jar"],
            "node-{i}"
        );
        assert!(
            std::fs::read_to_string(c.node(i).join("portal-ext.properties"))
                .unwrap()
                .contains("session.timeout=45")
        );
        assert!(c.node(i).join("patching/de-11-7010").exists(), "node-{i}");
    }
    // Each node was taken out and put back: 8 reloads; all 4 serve again.
    assert_eq!(c.reloads().len(), 8, "{:?}", c.reloads());
    let served: std::collections::BTreeSet<String> = c.served_by(16).into_iter().collect();
    assert_eq!(served.len(), 4, "{served:?}");
    // Tomcat's manager ended each drain well before the 30 s interval.
    let s = status_json(&c.journal(), 1);
    let drains: Vec<u64> = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["step"] == "drain")
        .filter_map(|x| x["outputs"][0]["value"].as_str()?.parse().ok())
        .collect();
    assert!(
        drains.len() == 4 && drains.iter().all(|ms| *ms < 5000),
        "{drains:?}"
    );
}

#[test]
fn a_blue_green_switch_loses_no_request_and_switches_back_in_one_reload() {
    let c = Cluster::new(18850, "blue-green");
    // A non-backward-compatible schema change: blue-green only, green on its own database.
    c.set_spec("module = \"blog-1.1.0.jar\"", "module = \"blog-2.0.0.jar\"");
    c.set_spec(
        "schema-compatible = true",
        "schema-compatible = false\nswitch-back-after-upgrade = true",
    );
    let load = Load::start(c.lb_port);
    let o = run(&c.journal(), &["run", &c.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(c
        .served_by(8)
        .iter()
        .all(|b| b.starts_with("node-3") || b.starts_with("node-4")));
    assert_eq!(c.reloads().len(), 1, "{:?}", c.reloads());
    // Blue was kept intact: never stopped, still on the old module and its own database.
    assert_eq!(
        (c.release("lportal"), c.release("lportal_green")),
        ("1.0.0".into(), "2.0.0".into())
    );
    for i in 1..=2 {
        assert_eq!(
            c.modules(i),
            ["com.acme.blog.service-1.0.0.jar"],
            "node-{i}"
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
fn the_switch_back_after_a_schema_upgrade_is_refused_without_the_override() {
    let c = Cluster::new(18910, "blue-green");
    c.set_spec("module = \"blog-1.1.0.jar\"", "module = \"blog-2.0.0.jar\"");
    let o = run(&c.journal(), &["run", &c.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&c.journal(), &["rollback", "1"]);
    let out = text(&o);
    assert!(
        out.contains("rollback incomplete, needs attention")
            && out.contains("the switch back to blue is refused after the schema upgrade com.acme.blog.service 1.0.0 → 2.0.0")
            && out.contains("only in green's `lportal_green`")
            && out.contains("switch-back-after-upgrade = true"),
        "{out}"
    );
    // Traffic stays on green, which keeps running the new module.
    assert_eq!(c.reloads().len(), 1, "{:?}", c.reloads());
    assert!(c
        .served_by(8)
        .iter()
        .all(|b| b.starts_with("node-3") || b.starts_with("node-4")));
    for i in 3..=4 {
        assert_eq!(c.page(i).0, 200, "node-{i}");
        assert_eq!(
            c.modules(i),
            ["com.acme.blog.service-2.0.0.jar"],
            "node-{i}"
        );
    }
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
fn an_irreversible_change_with_every_node_down_completes() {
    let c = Cluster::new(17500, "all-down");
    c.set_spec("module = \"blog-1.1.0.jar\"", "module = \"blog-2.0.0.jar\"");
    c.set_spec("schema-compatible = true", "schema-compatible = false");
    let (ok, out) = plan(&c);
    assert!(
        ok && !out.contains("BLOCKER") && out.contains("all-down: every node stops"),
        "{out}"
    );
    let o = run(&c.journal(), &["run", &c.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(c.release("lportal"), "2.0.0");
    for i in 1..=4 {
        assert_eq!(
            c.modules(i),
            ["com.acme.blog.service-2.0.0.jar"],
            "node-{i}"
        );
        assert_eq!(c.page(i).0, 200, "node-{i}");
    }
    // The database was backed up with every node down, before the first one started again.
    let backup = c.path().join("backups/lportal-rollout-1.backup");
    assert!(std::fs::read_to_string(&backup)
        .unwrap()
        .contains("\"1.0.0\""));
    let served: std::collections::BTreeSet<String> = c.served_by(16).into_iter().collect();
    assert_eq!(served.len(), 4, "{served:?}");
}

#[test]
fn a_failed_update_with_every_node_down_restores_the_database_and_the_old_version() {
    let c = Cluster::new(17530, "all-down");
    c.set_spec("module = \"blog-1.1.0.jar\"", "module = \"blog-2.0.0.jar\"");
    c.set_spec("schema-compatible = true", "schema-compatible = false");
    c.set_spec("on-failure = \"pause\"", "on-failure = \"rollback\"");
    // node-3 fails to start, after node-1 ran the data upgrade and node-2 came up on it.
    std::fs::write(c.node(3).join("fail-start"), "").unwrap();
    let o = run(&c.journal(), &["run", &c.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("fleet step `backup` undone") && out.contains("fleet step `stop-all` undone"),
        "{out}"
    );
    assert_eq!(c.release("lportal"), "1.0.0", "{out}");
    for i in 1..=4 {
        assert_eq!(
            c.modules(i),
            ["com.acme.blog.service-1.0.0.jar"],
            "node-{i}"
        );
        let (status, body) = c.page(i);
        assert_eq!(status, 200, "node-{i}: {body}");
    }
    let log = std::fs::read_to_string(c.node(1).join("sim.log")).unwrap();
    assert!(
        log.contains("upgrade com.acme.blog.service schema to 2.0.0"),
        "{log}"
    );
    let served: std::collections::BTreeSet<String> = c.served_by(16).into_iter().collect();
    assert_eq!(served.len(), 4, "{served:?}");
}

#[test]
fn liferay_cluster_passes_the_conformance_run() {
    let c = Cluster::new(18890, "rolling");
    // Left out of the comparisons: the node's runtime folder (pid files) and its logs.
    let report = c.conformance(
        "liferay_cluster.wasm",
        &["--ignore", "**/run/**", "--ignore", "**/logs/**"],
    );
    assert!(report.contains("put the targets back"), "{report}");
}
