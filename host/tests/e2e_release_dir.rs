//! release-dir on 12 simulated nodes with `grouped` groups of 4, through the real binary; and
//! the `canary` strategy on 6 of them.

mod common;

use common::*;
use std::path::PathBuf;
use std::time::Duration;

/// A simulated fleet of 12 nodes (node-sim).
struct Fleet(SimFleet);

impl std::ops::Deref for Fleet {
    type Target = SimFleet;
    fn deref(&self) -> &SimFleet {
        &self.0
    }
}

impl Fleet {
    fn new(base_port: u16) -> Fleet {
        Fleet(SimFleet::build(
            "node-sim",
            &["--nodes", "12", "--base-port", &base_port.to_string()],
        ))
    }

    /// 6 nodes with the `canary` strategy: groups of 2 after the canaries, `params` added.
    fn canary(base_port: u16, params: &str) -> Fleet {
        let f = Fleet(SimFleet::build(
            "node-sim",
            &["--nodes", "6", "--base-port", &base_port.to_string()],
        ));
        f.set_spec("grouped.wasm", "canary.wasm");
        f.set_spec(
            "group-size = \"4\"",
            &format!("group-size = \"2\"\n{params}"),
        );
        f
    }

    fn node(&self, i: usize) -> PathBuf {
        self.path().join("nodes").join(format!("node-{i:02}"))
    }

    fn current(&self, i: usize) -> String {
        std::fs::read_to_string(self.node(i).join("current/VERSION"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// What the node's server says it runs.
    fn running(&self, i: usize) -> String {
        node_health(&self.node(i))
    }

    /// Node `i` points at `version` and its server really runs it.
    fn assert_on(&self, i: usize, version: &str) {
        assert_eq!(self.current(i), version, "node {i}: current");
        assert_eq!(
            self.running(i),
            format!("version {version} ok"),
            "node {i}: running"
        );
    }

    fn log(&self, i: usize) -> Vec<String> {
        lines(&self.node(i).join("sim.log"))
    }

    fn count(&self, i: usize, line: &str) -> usize {
        self.log(i).iter().filter(|l| *l == line).count()
    }
}

#[test]
fn every_node_ends_on_the_new_version() {
    let f = Fleet::new(21000);
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=12 {
        f.assert_on(i, "2.0.0");
        assert_eq!(f.count(i, "stop 1.0.0"), 1, "node {i}: {:?}", f.log(i));
        assert_eq!(f.count(i, "start 2.0.0"), 1, "node {i}: {:?}", f.log(i));
    }
    // The release was copied with its permissions (an executable stays executable).
    use std::os::unix::fs::PermissionsExt;
    let launch = f.node(3).join("releases/2.0.0/bin/launch");
    let mode = std::fs::metadata(&launch).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o755, "{}", launch.display());
    let s = status_json(&f.journal(), 1);
    assert_eq!(s["status"], "completed");
    assert_eq!(s["targets"].as_array().unwrap().len(), 12);
    assert!(s["targets"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["state"] == "updated"));
    // Every step start and end was journaled: 12 targets x 5 steps, all ok.
    let steps = s["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 60);
    assert!(steps.iter().all(|s| s["state"] == "ok"));
}

#[test]
fn a_health_failure_in_the_first_group_leaves_every_node_on_the_old_version() {
    let f = Fleet::new(21100);
    std::fs::write(f.node(2).join("fail-health"), "2.0.0").unwrap();
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("rolled-back"), "{}", text(&o));
    for i in 1..=12 {
        f.assert_on(i, "1.0.0");
    }
    // Groups 2 and 3 were never touched.
    for i in 5..=12 {
        assert_eq!(f.log(i), vec!["start 1.0.0"], "node {i}");
    }
    let s = status_json(&f.journal(), 1);
    assert_eq!(s["status"], "rolled-back");
    let node2 = s["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == "node-02")
        .unwrap();
    assert!(
        node2["detail"].as_str().unwrap().contains("health"),
        "{node2}"
    );
}

#[test]
fn a_failure_in_the_second_group_continues_and_is_reported() {
    let f = Fleet::new(21200);
    std::fs::write(f.node(6).join("fail-health"), "2.0.0").unwrap();
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("completed-with-failures"), "{out}");
    assert!(out.contains("node-06 failed"), "{out}");
    for i in 1..=12 {
        let want = if i == 6 { "1.0.0" } else { "2.0.0" };
        f.assert_on(i, want);
    }
}

#[test]
fn a_failure_in_the_second_group_pauses_then_approve_goes_on() {
    let f = Fleet::new(21300);
    f.set_spec("on-failure = \"continue\"", "on-failure = \"pause\"");
    std::fs::write(f.node(7).join("fail-start"), "2.0.0").unwrap();
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(status_json(&f.journal(), 1)["status"], "paused");
    for i in 9..=12 {
        assert_eq!(f.log(i), vec!["start 1.0.0"], "group 3 untouched: node {i}");
    }
    assert_eq!(f.current(7), "1.0.0");
    assert_eq!(f.running(7), "version 1.0.0 ok");
    let o = f.run(&["approve", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(
        status_json(&f.journal(), 1)["status"],
        "completed-with-failures"
    );
    for i in 9..=12 {
        assert_eq!(f.current(i), "2.0.0", "node {i}");
    }
}

#[test]
fn a_failure_in_the_second_group_rolls_back_everything_by_policy() {
    let f = Fleet::new(21400);
    f.set_spec("on-failure = \"continue\"", "on-failure = \"rollback\"");
    std::fs::write(f.node(5).join("fail-health"), "2.0.0").unwrap();
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert_eq!(status_json(&f.journal(), 1)["status"], "rolled-back");
    for i in 1..=12 {
        f.assert_on(i, "1.0.0");
    }
}

#[test]
fn kill_9_mid_rollout_then_resume_runs_each_non_idempotent_step_once() {
    let f = Fleet::new(21500);
    // Slow starts and stops widen the window in which the kill lands inside a step.
    std::fs::write(f.path().join("nodes/start-delay-ms"), "150").unwrap();
    let mut child = f.spawn_run();
    // Kill it in the middle of group 2.
    wait_for("group 2 to start", Duration::from_secs(60), || {
        (5..=8).any(|i| f.log(i).iter().any(|l| l.starts_with("stop 1.0.0")))
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Let scripts that were running finish on their own (they are not cutover's to stop).
    std::thread::sleep(Duration::from_millis(600));

    let s = status_json(&f.journal(), 1);
    assert_eq!(s["status"], "running");
    assert_eq!(s["interrupted"], true, "{s}");

    // A second rollout on the same targets is refused before anything is touched.
    let logs_before: Vec<_> = (1..=12).map(|i| f.log(i)).collect();
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is in rollout 1"), "{}", text(&o));
    assert_eq!(logs_before, (1..=12).map(|i| f.log(i)).collect::<Vec<_>>());

    let mut o = f.run(&["resume", "1"]);
    if o.status.code() == Some(3) {
        // A non-idempotent step was in flight: the operator checks the node and says what
        // happened; the simulator's own log is the node's truth.
        let out = text(&o);
        assert!(out.contains("--in-flight"), "{out}");
        let mut answers = Vec::new();
        for (target, step) in in_flight(&f.journal()) {
            let i: usize = target.trim_start_matches("node-").parse().unwrap();
            let happened = match step.as_str() {
                "stop" => f.count(i, "stop 1.0.0") == 1,
                "start" => f.count(i, "start 2.0.0") == 1,
                other => panic!("unexpected non-idempotent step {other}"),
            };
            let choice = if happened { "done" } else { "retry" };
            eprintln!("in flight at the kill: {step} on {target}: {choice}");
            answers.push("--in-flight".to_string());
            answers.push(format!("{target}={choice}"));
        }
        assert!(!answers.is_empty());
        let mut args = vec!["resume".to_string(), "1".to_string()];
        args.extend(answers);
        o = f.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=12 {
        f.assert_on(i, "2.0.0");
        assert_eq!(f.count(i, "stop 1.0.0"), 1, "node {i}: {:?}", f.log(i));
        assert_eq!(f.count(i, "start 2.0.0"), 1, "node {i}: {:?}", f.log(i));
    }
    // Even a step the operator settled after the crash can be undone.
    let o = f.run(&["rollback", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    for i in 1..=12 {
        f.assert_on(i, "1.0.0");
    }
}

#[test]
fn rollback_command_restores_the_old_version() {
    let f = Fleet::new(21600);
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = f.run(&["rollback", "1"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    for i in 1..=12 {
        f.assert_on(i, "1.0.0");
    }
    let o = f.run(&["history", "--json"]);
    let h: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(h[0]["status"], "rolled-back");
}

#[test]
fn plan_shows_the_waves_and_touches_nothing() {
    let f = Fleet::new(21700);
    let o = f.run(&["plan", "--json", &f.spec()]);
    assert!(o.status.success(), "{}", text(&o));
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["waves"], 3);
    assert_eq!(p["stages"][0]["targets"].as_array().unwrap().len(), 4);
    // release-dir estimates every step (contract 1.2): 6 s usual per node, health at worst
    // its health-timeout (30 s) + 1; three waves of 4 nodes, 4 at a time.
    assert_eq!(p["expected_seconds"], 3 * 6, "{p}");
    assert_eq!(p["unestimated_steps"], serde_json::json!([]));
    let worst = p["worst_case_seconds"].as_u64().unwrap();
    assert!(
        worst >= 3 * 31 && worst > p["expected_seconds"].as_u64().unwrap(),
        "{p}"
    );
    let o = f.run(&["plan", &f.spec()]);
    let out = text(&o);
    assert!(
        out.contains("expected: 18s") && out.contains("note: 3 wave(s)"),
        "{out}"
    );
    for i in 1..=12 {
        assert_eq!(f.log(i), vec!["start 1.0.0"], "node {i}");
    }
}

#[test]
fn abort_interrupts_the_steps_in_flight_and_undoes_their_targets() {
    let f = Fleet::new(21800);
    std::fs::write(f.path().join("nodes/start-delay-ms"), "300").unwrap();
    let child = f.spawn_run();
    wait_for("the first stop", Duration::from_secs(60), || {
        (1..=4).any(|i| f.log(i).iter().any(|l| l.starts_with("stop 1.0.0")))
    });
    let o = f.run(&["abort", "1"]);
    assert!(text(&o).contains("abort requested"), "{}", text(&o));
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert_eq!(status_json(&f.journal(), 1)["status"], "aborted");
    // Group 1 was interrupted mid-way and undone: the old release runs again; later groups
    // were never touched.
    for i in 1..=4 {
        assert_eq!(f.current(i), "1.0.0", "node {i}");
        assert_eq!(
            f.log(i).last().map(String::as_str),
            Some("start 1.0.0"),
            "node {i}: {:?}",
            f.log(i)
        );
    }
    for i in 5..=12 {
        assert_eq!(f.log(i), vec!["start 1.0.0"], "node {i}");
    }
    // The lease is released: a new rollout may start.
    let o = f.run(&["plan", &f.spec()]);
    assert!(o.status.success());
}

#[test]
fn an_idempotent_step_in_flight_at_a_crash_runs_again_on_resume() {
    let f = Fleet::new(21900);
    // node-05 reports unhealthy, so its idempotent `health` step keeps polling...
    std::fs::write(f.node(5).join("fail-health"), "2.0.0").unwrap();
    let mut child = f.spawn_run();
    wait_for(
        "node-05 polling its health",
        Duration::from_secs(60),
        || {
            // Only node-05's health check in flight: its wave mates have finished.
            f.journal().exists()
                && in_flight(&f.journal()) == [("node-05".to_string(), "health".to_string())]
        },
    );
    // ...when cutover dies. The node recovers meanwhile.
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::remove_file(f.node(5).join("fail-health")).unwrap();
    let o = f.run(&["resume", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("idempotent and runs again"),
        "{}",
        text(&o)
    );
    for i in 1..=12 {
        assert_eq!(f.running(i), "version 2.0.0 ok", "node {i}");
        assert_eq!(f.count(i, "start 2.0.0"), 1, "node {i}: {:?}", f.log(i));
    }
    let s = status_json(&f.journal(), 1);
    let health_runs = s["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["target"] == "node-05" && x["step"] == "health")
        .count();
    assert_eq!(health_runs, 2, "the interrupted run and the re-run");
}

#[test]
fn atomic_and_rolling_plans() {
    let f = Fleet::new(22000);
    let plugins = plugins();
    let s = std::fs::read_to_string(f.spec()).unwrap();
    std::fs::write(f.spec(), s.replace("grouped.wasm", "atomic.wasm")).unwrap();
    let o = f.run(&["plan", "--json", &f.spec()]);
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["strategy"], "atomic@0.1.0");
    assert_eq!(p["waves"], 2);
    assert_eq!(p["stages"][0]["targets"].as_array().unwrap().len(), 6);
    std::fs::write(f.spec(), s.replace("grouped.wasm", "rolling.wasm")).unwrap();
    let o = f.run(&["plan", "--json", &f.spec()]);
    let p: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(p["waves"], 12);
    // A single target with `atomic`: one wave, and it runs.
    let one = s.split("\n[[targets]]").next().unwrap().to_string()
        + "\n[[targets]]"
        + s.split("\n[[targets]]").nth(1).unwrap();
    std::fs::write(f.spec(), one.replace("grouped.wasm", "atomic.wasm")).unwrap();
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(f.current(1), "2.0.0");
    assert_eq!(f.current(2), "1.0.0");
    assert!(plugins.join("atomic.wasm").exists());
}

#[test]
fn an_approval_gate_pauses_after_the_first_group_until_approved() {
    let f = Fleet::new(22100);
    f.set_spec(
        "on-failure = \"continue\"",
        "on-failure = \"continue\"\napprove-first-group = true\nsoak-seconds = 1",
    );
    let o = f.run(&["plan", &f.spec()]);
    let plan = text(&o);
    assert!(plan.contains("gate: wait for `cutover approve`"), "{plan}");
    assert!(plan.contains("gate: soak for 1s"), "{plan}");
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let s = status_json(&f.journal(), 1);
    assert_eq!(s["status"], "paused");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("waiting for approval"),
        "{s}"
    );
    for i in 1..=4 {
        assert_eq!(f.current(i), "2.0.0", "node {i}");
    }
    for i in 5..=12 {
        assert_eq!(
            f.log(i),
            vec!["start 1.0.0"],
            "node {i} untouched before approval"
        );
    }
    // Resuming without approval stays at the gate.
    let o = f.run(&["resume", "1"]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    let o = f.run(&["approve", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=12 {
        assert_eq!(f.current(i), "2.0.0", "node {i}");
    }
}

#[test]
fn a_failing_canary_is_rolled_back_and_the_rest_is_never_touched() {
    let f = Fleet::canary(22300, "canary = \"1\"");
    std::fs::write(f.node(1).join("fail-health"), "2.0.0").unwrap();
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert_eq!(status_json(&f.journal(), 1)["status"], "rolled-back");
    assert_eq!(f.current(1), "1.0.0");
    assert_eq!(f.log(1).last().unwrap(), "start 1.0.0", "{:?}", f.log(1));
    for i in 2..=6 {
        assert_eq!(f.log(i), vec!["start 1.0.0"], "node {i} was touched");
    }
}

#[test]
fn a_paused_canary_is_released_by_approve() {
    let f = Fleet::canary(22400, "canary = \"1\"\ncanary-approval = \"true\"");
    let p = f.run(&["plan", "--json", &f.spec()]);
    let plan: serde_json::Value = serde_json::from_slice(&p.stdout).unwrap();
    assert_eq!(plan["stages"][0]["name"], "canary", "{plan}");
    assert_eq!(plan["stages"][0]["targets"], serde_json::json!(["node-01"]));
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(f.current(1), "2.0.0");
    for i in 2..=6 {
        assert_eq!(
            f.log(i),
            vec!["start 1.0.0"],
            "node {i} moved before approval"
        );
    }
    let o = f.run(&["approve", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=6 {
        assert_eq!(f.current(i), "2.0.0", "node {i}");
    }
}

#[test]
fn release_dir_passes_the_conformance_run() {
    let f = Fleet::new(22200);
    // The simulated server rewrites its pid file on every start.
    let report = f.conformance("release_dir.wasm", &["--ignore", "**/pid"]);
    assert!(
        report.contains("rollback: 36 steps undone, newest first, put the targets back"),
        "{report}"
    );
    assert!(
        report.contains("step `fetch` on target `node-12`: a second run changes nothing"),
        "{report}"
    );
    // The run leaves every node as it found it.
    for i in [1, 12] {
        f.assert_on(i, "1.0.0");
    }
}
