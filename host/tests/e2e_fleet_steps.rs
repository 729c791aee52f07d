//! Fleet-scope steps in every phase, and their undo, through the real binary; the
//! `blue-green` strategy on the same fixture.

mod common;

use common::*;

/// What a rollout of the fleet-step fixture did.
struct Outcome {
    code: i32,
    /// The fixture's record of steps and undos, in order.
    log: Vec<String>,
    status: serde_json::Value,
    /// What `cutover run` printed.
    out: String,
}

/// Run the fixture (one target at a time) with `strategy` and its `[strategy.params]`
/// lines; `fail` names a step that fails; each target is an id and its label lines.
fn rollout(strategy: &str, params: &str, fail: &str, targets: &[(&str, &str)]) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("fleet.toml");
    let mut text_spec = fleet_fixture_spec(
        strategy,
        params,
        "",
        &format!("fail = \"{fail}\""),
        dir.path(),
    );
    for (id, labels) in targets {
        text_spec.push_str(&format!("[[targets]]\nid = \"{id}\"\n{labels}\n"));
    }
    std::fs::write(&spec, text_spec).unwrap();
    let journal = dir.path().join("j.db");
    let o = run(&journal, &["run", spec.to_str().unwrap()]);
    Outcome {
        code: o.status.code().unwrap_or(-1),
        log: lines(&dir.path().join("steps.log")),
        status: status_json(&journal, 1),
        out: text(&o),
    }
}

/// Two targets, one at a time with `grouped`.
fn grouped(fail: &str) -> Outcome {
    rollout(
        "grouped",
        "group-size = 1\non-failure = \"continue\"",
        fail,
        &[("t1", ""), ("t2", "")],
    )
}

/// Blue-green: t1, t2 blue; t3, t4 green.
fn blue_green(fail: &str) -> Outcome {
    rollout(
        "blue_green",
        "keep-blue-seconds = \"1\"",
        fail,
        &[
            ("t1", "color = \"blue\""),
            ("t2", "color = \"blue\""),
            ("t3", "color = \"green\""),
            ("t4", "color = \"green\""),
        ],
    )
}

#[test]
fn fleet_steps_run_once_in_their_phases() {
    let Outcome {
        code, log, status, ..
    } = grouped("");
    assert_eq!(code, 0, "{status}");
    assert_eq!(log, FLEET_FIXTURE_RUN);
}

#[test]
fn a_failed_fleet_step_rolls_back_everything_newest_first() {
    let Outcome {
        code, log, status, ..
    } = grouped("switch");
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

#[test]
fn blue_green_updates_green_switches_and_keeps_blue() {
    let Outcome { code, log, out, .. } = blue_green("");
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
    let Outcome { code, log, out, .. } = blue_green("switch");
    assert_eq!(code, 2, "{out}");
    assert!(
        log.iter().all(|l| !l.contains("t1") && !l.contains("t2")),
        "{log:?}"
    );
    assert!(log.contains(&"undo update t3".to_string()), "{log:?}");
    assert!(log.contains(&"undo update t4".to_string()), "{log:?}");
}

#[test]
fn a_failed_canary_health_gate_rolls_the_canary_back_and_leaves_the_rest() {
    let Outcome {
        code,
        log,
        status,
        out,
    } = rollout(
        "canary",
        "canary = \"1\"\nhealth-step = \"switch\"",
        "switch",
        &[("t1", ""), ("t2", ""), ("t3", "")],
    );
    assert_eq!(code, 2, "{out}");
    assert_eq!(status["status"], "rolled-back", "{status}");
    assert_eq!(
        log,
        [
            "prepare (fleet of 3)",
            "update t1",
            "undo update t1",
            "undo prepare"
        ],
        "{out}"
    );
}
