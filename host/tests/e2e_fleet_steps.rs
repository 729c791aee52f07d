//! Fleet-scope steps in every phase, and their undo, through the real binary.

mod common;

use common::*;

fn rollout(fail: &str) -> (i32, Vec<String>, serde_json::Value) {
    let plugins = plugins();
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.toml");
    std::fs::write(
        &spec,
        format!(
            r#"[rollout]
concurrency = 1
[strategy]
plugin = "{s}"
[strategy.params]
group-size = 1
on-failure = "continue"
[adapter]
plugin = "{a}"
[adapter.params]
dir = "{d}"
fail = "{fail}"
[grants]
dirs = [{{ path = "{d}", access = "read-write" }}]
[[targets]]
id = "t1"
[[targets]]
id = "t2"
"#,
            s = plugins.join("grouped.wasm").display(),
            a = plugins.join("fleet_fixture.wasm").display(),
            d = dir.path().display(),
        ),
    )
    .unwrap();
    let journal = dir.path().join("j.db");
    let o = run(&journal, &["run", spec.to_str().unwrap()]);
    let log = std::fs::read_to_string(dir.path().join("steps.log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    (o.status.code().unwrap_or(-1), log, status_json(&journal, 1))
}

#[test]
fn fleet_steps_run_once_in_their_phases() {
    let (code, log, status) = rollout("");
    assert_eq!(code, 0, "{status}");
    assert_eq!(
        log,
        [
            "prepare (fleet of 2)",
            "update t1",
            "update t2",
            "switch (fleet of 2)",
            "announce (fleet of 2)",
            "cleanup t1",
            "cleanup t2",
        ]
    );
}

#[test]
fn a_failed_fleet_step_rolls_back_everything_newest_first() {
    let (code, log, status) = rollout("switch");
    assert_eq!(code, 2, "{status}");
    assert_eq!(status["status"], "rolled-back");
    assert!(
        status["reason"].as_str().unwrap().contains("switch fails"),
        "{status}"
    );
    assert_eq!(
        log,
        [
            "prepare (fleet of 2)",
            "update t1",
            "update t2",
            "undo update t2",
            "undo update t1",
            "undo prepare",
        ]
    );
}
