//! One rollout per node, whatever journal or spec names it: leases live on the nodes.

mod common;

use common::*;
use std::path::PathBuf;
use std::time::Duration;

fn fleet(base_port: u16) -> SimFleet {
    let f = SimFleet::build(
        "node-sim",
        &["--nodes", "6", "--base-port", &base_port.to_string()],
    );
    // Slow starts keep the first rollout running while the second one tries.
    std::fs::write(f.path().join("nodes/start-delay-ms"), "300").unwrap();
    f
}

fn log(f: &SimFleet, i: usize) -> Vec<String> {
    lines(&f.path().join(format!("nodes/node-{i:02}/sim.log")))
}

fn lease(f: &SimFleet, i: usize) -> PathBuf {
    f.path().join(format!("nodes/node-{i:02}/.cutover-lease"))
}

/// The same spec with other target ids (same node roots).
fn renamed_spec(f: &SimFleet) -> String {
    let text = std::fs::read_to_string(f.spec()).unwrap();
    let p = f.path().join("renamed.toml");
    std::fs::write(&p, text.replace("id = \"node-", "id = \"other-")).unwrap();
    p.display().to_string()
}

#[test]
fn a_second_rollout_from_another_journal_or_spec_is_refused_naming_the_holder() {
    let f = fleet(23000);
    let mut first = f.spawn_run();
    wait_for(
        "the first rollout to take its leases",
        Duration::from_secs(60),
        || lease(&f, 1).exists(),
    );
    let other = f.path().join("other.db");
    for spec in [f.spec(), renamed_spec(&f)] {
        let o = run(&other, &["run", &spec]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(out.contains("is leased by rollout 1 of journal"), "{out}");
        assert!(out.contains(&f.journal().display().to_string()), "{out}");
        assert!(out.contains("nothing was touched"), "{out}");
    }
    assert_eq!(first.wait().unwrap().code(), Some(0));
    // Only the first rollout stopped and started the nodes, once each; its leases are gone.
    for i in 1..=6 {
        let l = log(&f, i);
        assert_eq!(l.iter().filter(|x| *x == "stop 1.0.0").count(), 1, "{l:?}");
        assert_eq!(l.iter().filter(|x| *x == "start 2.0.0").count(), 1, "{l:?}");
        assert!(!lease(&f, i).exists());
    }
    // Refused rollouts left nothing behind either: the next one may run.
    let o = run(&other, &["plan", &f.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn a_dead_holders_lease_is_broken_only_on_purpose_and_a_resume_retakes_its_own() {
    let f = fleet(23100);
    let mut first = f.spawn_run();
    wait_for("the first stop", Duration::from_secs(60), || {
        log(&f, 1).iter().any(|l| l.starts_with("stop"))
    });
    first.kill().unwrap();
    first.wait().unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let other = f.path().join("other.db");
    let o = run(&other, &["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is leased by rollout 1"), "{}", text(&o));
    // `status` of the dead rollout lists its leases; its own resume takes them back.
    let s = status_json(&f.journal(), 1);
    assert_eq!(s["leases"].as_array().unwrap().len(), 6, "{s}");
    // Breaking says whose lease it was.
    let o = run(&other, &["lease", "break", lease(&f, 1).to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("broke the lease") && text(&o).contains("rollout 1 of journal"),
        "{}",
        text(&o)
    );
    assert!(!lease(&f, 1).exists());
    // The first rollout's resume retakes what is left of its leases and finishes.
    let mut o = f.run(&["resume", "1"]);
    if o.status.code() == Some(3) {
        let mut args = vec!["resume".to_string(), "1".to_string()];
        for (t, s) in in_flight(&f.journal()) {
            let i: usize = t.trim_start_matches("node-").parse().unwrap();
            let want = if s == "stop" {
                "stop 1.0.0"
            } else {
                "start 2.0.0"
            };
            let done = log(&f, i).iter().any(|l| l == want);
            args.push("--in-flight".into());
            args.push(format!("{t}={}", if done { "done" } else { "retry" }));
        }
        o = f.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=6 {
        assert!(!lease(&f, i).exists(), "node {i}");
    }
}
