//! SIGTERM and a terminal's Ctrl-C: no new step starts, the steps in flight finish (their
//! scripts are not hit), the rollout ends `interrupted`, and `resume` finishes it with every
//! stop and start run once.

mod common;

use common::*;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

fn log(f: &SimFleet, i: usize) -> Vec<String> {
    lines(&f.path().join(format!("nodes/node-{i:02}/sim.log")))
}

fn count(f: &SimFleet, i: usize, line: &str) -> usize {
    log(f, i).iter().filter(|l| *l == line).count()
}

/// Send `signal` to the run once group 1 is stopping its nodes; the run's exit code.
fn interrupt(f: &SimFleet, whole_group: bool) -> Option<i32> {
    std::fs::write(f.path().join("nodes/start-delay-ms"), "400").unwrap();
    // Its own process group, as a shell gives a foreground job.
    let mut child = Command::new(cutover())
        .arg("--journal")
        .arg(f.journal())
        .args(["run", &f.spec()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    wait_for("the first start", Duration::from_secs(60), || {
        (1..=4).any(|i| count(f, i, "stop 1.0.0") == 1)
    });
    let pid = child.id() as i32;
    // A terminal's Ctrl-C signals the whole foreground group; `kill` signals one process.
    let (target, sig) = if whole_group {
        (format!("-{pid}"), "-INT")
    } else {
        (pid.to_string(), "-TERM")
    };
    let o = Command::new("kill")
        .args([sig, "--", &target])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let status = wait_exit(&mut child, Duration::from_secs(60));
    status
        .expect("cutover exits after its steps in flight finish")
        .code()
}

fn check_interrupted_then_resume(f: &SimFleet, code: Option<i32>) {
    assert_eq!(code, Some(3), "interrupted");
    let s = status_json(&f.journal(), 1);
    assert_eq!(s["status"], "interrupted", "{s}");
    assert!(
        s["reason"].as_str().unwrap().contains("interrupted by SIG"),
        "{s}"
    );
    // Nothing was left in flight: every step that began also ended.
    assert!(in_flight(&f.journal()).is_empty(), "{s}");
    // Later groups were never touched.
    for i in 9..=12 {
        assert_eq!(log(f, i), vec!["start 1.0.0"], "node {i}");
    }
    let o = f.run(&["resume", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=12 {
        assert_eq!(count(f, i, "stop 1.0.0"), 1, "node {i}: {:?}", log(f, i));
        assert_eq!(count(f, i, "start 2.0.0"), 1, "node {i}: {:?}", log(f, i));
    }
}

#[test]
fn sigterm_lets_the_steps_in_flight_finish_and_resume_goes_on() {
    let f = SimFleet::build("node-sim", &["--nodes", "12", "--base-port", "24000"]);
    let code = interrupt(&f, false);
    check_interrupted_then_resume(&f, code);
}

#[test]
fn a_ctrl_c_at_the_terminal_reaches_cutover_and_not_the_step_scripts() {
    let f = SimFleet::build("node-sim", &["--nodes", "12", "--base-port", "24100"]);
    let code = interrupt(&f, true);
    check_interrupted_then_resume(&f, code);
}
