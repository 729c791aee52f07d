//! Crash injection: the real binary is made to exit right after its Nth durable journal
//! commit (`CUTOVER_FAILPOINT=crash-after-commit=N`), for every N of a 20-node release-dir
//! rollout, of its rollback, and of a resume. After each crash the operator does what
//! `status` advises (answering for steps in flight from the node's own log); then every node
//! runs the expected version, every stop and start ran exactly once (node-sim's log), and
//! `status` agrees with the nodes.

mod common;

use common::*;
use std::process::Command;

const NODES: usize = 20;

struct Fleet(SimFleet);

impl Fleet {
    fn new(base_port: u16) -> Fleet {
        let f = Fleet(SimFleet::build(
            "node-sim",
            &[
                "--nodes",
                &NODES.to_string(),
                "--base-port",
                &base_port.to_string(),
            ],
        ));
        f.0.set_spec("group-size = \"4\"", "group-size = \"5\"");
        f
    }

    fn log(&self, i: usize) -> Vec<String> {
        lines(&self.0.path().join(format!("nodes/node-{i:02}/sim.log")))
    }

    fn count(&self, i: usize, line: &str) -> usize {
        self.log(i).iter().filter(|l| *l == line).count()
    }

    fn current(&self, i: usize) -> String {
        std::fs::read_to_string(
            self.0
                .path()
                .join(format!("nodes/node-{i:02}/current/VERSION")),
        )
        .unwrap_or_default()
        .trim()
        .to_string()
    }

    /// `cutover ARGS`, exiting after commit `n` when given; its exit code and output.
    fn cutover(&self, args: &[&str], crash_after: Option<u64>) -> (Option<i32>, String) {
        self.cutover_with(args, crash_after.map(|n| format!("crash-after-commit={n}")))
    }

    /// `cutover ARGS` with a failpoint.
    fn cutover_with(&self, args: &[&str], failpoint: Option<String>) -> (Option<i32>, String) {
        let mut c = Command::new(cutover());
        c.arg("--journal").arg(self.0.journal()).args(args);
        if let Some(f) = failpoint {
            c.env("CUTOVER_FAILPOINT", f);
        }
        let o = c.output().unwrap();
        (o.status.code(), text(&o))
    }

    fn serving(&self, i: usize) -> String {
        node_health(&self.0.path().join(format!("nodes/node-{i:02}")))
    }

    /// What the node logs show of a step (or undo) left in flight: did it happen?
    fn happened(&self, target: &str, step: &str, action: &str) -> bool {
        let i: usize = target.trim_start_matches("node-").parse().unwrap();
        match (action, step) {
            ("run", "stop") => self.count(i, "stop 1.0.0") == 1,
            ("run", "start") => self.count(i, "start 2.0.0") == 1,
            // The undo of `start` stops the new release; that of `stop` starts the old one
            // again (it also started once when the fleet was built).
            ("undo", "start") => self.count(i, "stop 2.0.0") == 1,
            ("undo", "stop") => self.count(i, "start 1.0.0") == 2,
            other => panic!("{other:?} is not a step release-dir declares non-idempotent"),
        }
    }

    /// Do what `status` advises until the rollout is final; its status.
    fn operate(&self, history: &mut Vec<String>) -> String {
        // Scripts the crash left running finish on their own.
        std::thread::sleep(std::time::Duration::from_millis(300));
        for _ in 0..6 {
            let s = status_json(&self.0.journal(), 1);
            let status = s["status"].as_str().unwrap_or_default().to_string();
            history.push(format!("{status}: {}", s["advice"]));
            let advice = s["advice"].as_str().unwrap_or_default();
            if advice.contains("`cutover rollback 1` goes on") {
                let (code, out) = self.cutover(&["rollback", "1"], None);
                history.push(format!(
                    "rollback: {code:?}: {}",
                    out.lines().last().unwrap_or("")
                ));
                continue;
            }
            if !["running", "paused", "interrupted"].contains(&status.as_str()) {
                return status;
            }
            let mut args = vec!["resume".to_string(), "1".to_string()];
            for step in s["steps"].as_array().unwrap() {
                if step["state"] != "started" {
                    continue;
                }
                let (t, n, a) = (
                    step["target"].as_str().unwrap(),
                    step["step"].as_str().unwrap(),
                    step["action"].as_str().unwrap(),
                );
                if ["stop", "start"].contains(&n) {
                    let answer = if self.happened(t, n, a) {
                        "done"
                    } else {
                        "retry"
                    };
                    args.push("--in-flight".into());
                    args.push(format!("{t}={answer}"));
                }
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let (code, out) = self.cutover(&args, None);
            history.push(format!(
                "resume: {code:?}: {}",
                out.lines().last().unwrap_or("")
            ));
        }
        panic!("the rollout never ended: {history:#?}");
    }

    /// Every node runs `version`, each stop and start ran exactly once, and `status` says
    /// every target is `state`.
    fn check(&self, version: &str, state: &str, rolled_back: bool, history: &[String]) {
        for i in 1..=NODES {
            let log = self.log(i);
            assert_eq!(self.current(i), version, "node {i}: {log:?}\n{history:#?}");
            assert_eq!(
                log.last().map(String::as_str),
                Some(format!("start {version}").as_str()),
                "node {i} runs it: {log:?}\n{history:#?}"
            );
            assert_eq!(
                self.count(i, "stop 1.0.0"),
                1,
                "node {i}: {log:?}\n{history:#?}"
            );
            assert_eq!(
                self.count(i, "start 2.0.0"),
                1,
                "node {i}: {log:?}\n{history:#?}"
            );
            let (old_starts, new_stops) = if rolled_back { (2, 1) } else { (1, 0) };
            assert_eq!(
                self.count(i, "start 1.0.0"),
                old_starts,
                "node {i}: {log:?}\n{history:#?}"
            );
            assert_eq!(
                self.count(i, "stop 2.0.0"),
                new_stops,
                "node {i}: {log:?}\n{history:#?}"
            );
        }
        let s = status_json(&self.0.journal(), 1);
        let targets = s["targets"].as_array().unwrap();
        assert_eq!(targets.len(), NODES, "{history:#?}");
        for t in targets {
            assert_eq!(t["state"], state, "{t}\n{history:#?}");
        }
    }
}

/// Crash at every commit of `crashing` (run after `setup`), operate, check. Node ports stay
/// below 32768, out of the kernel's range for client sockets, so a node restarting on its
/// port never finds it taken by a connection.
fn sweep(
    base_port: u16,
    setup: impl Fn(&Fleet),
    crashing: impl Fn(&Fleet) -> Vec<String>,
    end: (&str, &str, bool),
) -> u64 {
    let mut n = 1;
    loop {
        let f = Fleet::new(base_port + (n % 40) as u16 * 25);
        setup(&f);
        let args = crashing(&f);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out) = f.cutover(&args, Some(n));
        let mut history = vec![format!("{args:?} with a crash after commit {n}: {code:?}")];
        let finished = code != Some(137);
        if finished {
            history.push(out);
        }
        let status = f.operate(&mut history);
        let final_status = if end.2 { "rolled-back" } else { "completed" };
        assert_eq!(status, final_status, "{history:#?}");
        f.check(end.0, end.1, end.2, &history);
        if finished {
            return n;
        }
        n += 1;
    }
}

#[test]
fn a_crash_after_any_commit_of_a_rollout_is_recovered_exactly_once() {
    let commits = sweep(
        25000,
        |_| {},
        |f| vec!["run".into(), f.0.spec()],
        ("2.0.0", "updated", false),
    );
    eprintln!("a 20-node rollout makes {} durable commits", commits - 1);
    assert!(commits > 20);
}

#[test]
fn a_crash_after_any_commit_of_a_rollback_is_recovered_exactly_once() {
    let commits = sweep(
        26100,
        |f| {
            let (code, out) = f.cutover(&["run", &f.0.spec()], None);
            assert_eq!(code, Some(0), "{out}");
        },
        |_| vec!["rollback".into(), "1".into()],
        ("1.0.0", "rolled-back", true),
    );
    eprintln!("its rollback makes {} durable commits", commits - 1);
    assert!(commits > 20);
}

#[test]
fn a_crash_after_any_commit_of_a_resume_is_recovered_exactly_once() {
    // The rollout first dies mid-way (after commit 40), then its resume dies after each
    // commit in turn.
    let commits = sweep(
        27200,
        |f| {
            let (code, _) = f.cutover(&["run", &f.0.spec()], Some(40));
            assert_eq!(code, Some(137));
            std::thread::sleep(std::time::Duration::from_millis(300));
        },
        |f| {
            // A resume answering for what the first crash left in flight, as an operator would.
            let mut args = vec!["resume".to_string(), "1".to_string()];
            for (t, s) in in_flight(&f.0.journal()) {
                if ["stop", "start"].contains(&s.as_str()) {
                    let answer = if f.happened(&t, &s, "run") {
                        "done"
                    } else {
                        "retry"
                    };
                    args.push("--in-flight".into());
                    args.push(format!("{t}={answer}"));
                }
            }
            args
        },
        ("2.0.0", "updated", false),
    );
    eprintln!("the resume makes {} durable commits", commits - 1);
}

#[test]
fn a_journal_that_cannot_be_written_stops_new_steps_and_kills_none_half_way() {
    for (k, n) in [5u64, 30, 60, 90].into_iter().enumerate() {
        let f = Fleet::new(28300 + k as u16 * 25);
        let spec = f.0.spec();
        let (code, out) = f.cutover_with(&["run", &spec], Some(format!("journal-fault-after={n}")));
        let mut history = vec![format!("journal fault after commit {n}: {code:?}\n{out}")];
        assert_eq!(code, Some(1), "{history:#?}");
        assert!(
            out.contains("could not be written") && out.contains("journal.db"),
            "{history:#?}"
        );
        assert!(out.contains("no new step was started"), "{history:#?}");
        // No script was killed half-way: a node that serves runs what `current` says (a node
        // may be down between its `stop` and `start` steps, which resume finishes).
        for i in 1..=NODES {
            let serving = f.serving(i);
            if serving != "down" {
                assert_eq!(
                    serving,
                    format!("version {} ok", f.current(i)),
                    "node {i}: {history:#?}"
                );
            }
        }
        let status = f.operate(&mut history);
        assert_eq!(status, "completed", "{history:#?}");
        f.check("2.0.0", "updated", false, &history);
    }
}
