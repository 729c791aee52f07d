//! The `canary` and `blue-green` strategies through the real binary: canaries on the
//! release-dir simulator, blue-green with the fleet-step fixture.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A release-dir fleet of 6 simulated nodes whose spec uses the `canary` strategy.
struct Fleet {
    dir: tempfile::TempDir,
    sim: PathBuf,
}

impl Fleet {
    fn new(port: u16, strategy_params: &str) -> Fleet {
        let sim = simulator("node-sim");
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new(&sim)
            .arg("fleet")
            .arg(dir.path())
            .args(["--nodes", "6", "--base-port", &port.to_string()])
            .args(["--strategy", "canary", "--plugins"])
            .arg(plugins())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let spec = dir.path().join("rollout.toml");
        let s = std::fs::read_to_string(&spec).unwrap();
        let s = s.replace(
            "group-size = \"4\"",
            &format!("group-size = \"2\"\n{strategy_params}"),
        );
        std::fs::write(&spec, s).unwrap();
        Fleet { dir, sim }
    }

    fn spec(&self) -> String {
        self.dir.path().join("rollout.toml").display().to_string()
    }

    fn journal(&self) -> PathBuf {
        self.dir.path().join("journal.db")
    }

    fn node(&self, i: usize) -> PathBuf {
        self.dir.path().join("nodes").join(format!("node-{i:02}"))
    }

    fn current(&self, i: usize) -> String {
        std::fs::read_to_string(self.node(i).join("current/VERSION"))
            .unwrap()
            .trim()
            .to_string()
    }

    fn log(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(self.node(i).join("sim.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = Command::new(&self.sim)
            .arg("teardown")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn a_failing_canary_is_rolled_back_and_the_rest_is_never_touched() {
    let f = Fleet::new(22100, "canary = \"1\"");
    std::fs::write(f.node(1).join("fail-health"), "2.0.0").unwrap();
    let o = run(&f.journal(), &["run", &f.spec()]);
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
    let f = Fleet::new(22200, "canary = \"1\"\ncanary-approval = \"true\"");
    let p = run(&f.journal(), &["plan", "--json", &f.spec()]);
    let plan: serde_json::Value = serde_json::from_slice(&p.stdout).unwrap();
    assert_eq!(plan["stages"][0]["name"], "canary", "{plan}");
    assert_eq!(plan["stages"][0]["targets"], serde_json::json!(["node-01"]));
    let o = run(&f.journal(), &["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o));
    assert_eq!(f.current(1), "2.0.0");
    for i in 2..=6 {
        assert_eq!(
            f.log(i),
            vec!["start 1.0.0"],
            "node {i} moved before approval"
        );
    }
    let o = run(&f.journal(), &["approve", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=6 {
        assert_eq!(f.current(i), "2.0.0", "node {i}");
    }
}

/// A blue-green rollout of the fleet-step fixture: t1, t2 blue; t3, t4 green.
fn blue_green(dir: &Path, fail: &str) -> (i32, Vec<String>, String) {
    let plugins = plugins();
    let spec = dir.join("bg.toml");
    let mut text_spec = format!(
        r#"[rollout]
concurrency = 1
[strategy]
plugin = "{s}"
[strategy.params]
keep-blue-seconds = "1"
[adapter]
plugin = "{a}"
[adapter.params]
dir = "{d}"
fail = "{fail}"
[grants]
dirs = [{{ path = "{d}", access = "read-write" }}]
"#,
        s = plugins.join("blue_green.wasm").display(),
        a = plugins.join("fleet_fixture.wasm").display(),
        d = dir.display(),
    );
    for (id, color) in [
        ("t1", "blue"),
        ("t2", "blue"),
        ("t3", "green"),
        ("t4", "green"),
    ] {
        text_spec.push_str(&format!(
            "[[targets]]\nid = \"{id}\"\ncolor = \"{color}\"\n"
        ));
    }
    std::fs::write(&spec, text_spec).unwrap();
    let journal = dir.join("j.db");
    let o = run(&journal, &["run", spec.to_str().unwrap()]);
    let log = std::fs::read_to_string(dir.join("steps.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    (o.status.code().unwrap_or(-1), log, text(&o))
}

#[test]
fn blue_green_updates_green_switches_and_keeps_blue() {
    let dir = tempfile::tempdir().unwrap();
    let (code, log, out) = blue_green(dir.path(), "");
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        log,
        [
            "prepare (fleet of 4)",
            "update t3",
            "update t4",
            "switch (fleet of 4)",
            "announce (fleet of 4)",
            "cleanup t3",
            "cleanup t4",
        ],
        "{out}"
    );
    assert!(out.contains("gate: soak for 1s"), "{out}");
}

#[test]
fn a_failed_switch_rolls_green_back_and_leaves_blue_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (code, log, out) = blue_green(dir.path(), "switch");
    assert_eq!(code, 2, "{out}");
    assert!(
        log.iter().all(|l| !l.contains("t1") && !l.contains("t2")),
        "{log:?}"
    );
    assert!(log.contains(&"undo update t3".to_string()), "{log:?}");
    assert!(log.contains(&"undo update t4".to_string()), "{log:?}");
}
