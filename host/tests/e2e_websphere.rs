//! websphere-edition on 6 simulated cluster members behind a real HAProxy, through the real
//! binary, with clients looping through the router the whole time, each keeping its session:
//! grouped and atomic rollouts, soft and hard resets, failures in and after the first group,
//! and the SOAP request timeout check.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Child, Command};

/// A started cell of 6 members with HAProxy in front.
struct Cell {
    fleet: SimFleet,
    router: u16,
}

impl Cell {
    fn new(port: u16, extra: &[&str]) -> Cell {
        Cell::sized(port, 6, extra)
    }

    fn sized(port: u16, members: usize, extra: &[&str]) -> Cell {
        let (p, n) = (port.to_string(), members.to_string());
        let mut args = vec!["--members", &n, "--port", &p];
        args.extend_from_slice(extra);
        Cell {
            fleet: SimFleet::build("websphere-sim", &args),
            router: port + 21,
        }
    }

    fn state(&self) -> serde_json::Value {
        serde_json::from_str(
            &std::fs::read_to_string(self.fleet.path().join("state.json")).unwrap(),
        )
        .unwrap()
    }

    /// Make the new edition fail to start on a member.
    fn fail_start(&self, member: &str) {
        std::fs::write(
            self.fleet.path().join("faults").join(member),
            "start-app Shop-edition2.0\n",
        )
        .unwrap();
    }

    /// Which edition each member runs.
    fn running(&self) -> Vec<String> {
        let s = self.state();
        (1..=6)
            .map(|i| {
                s["running"][format!("member{i}")]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        a.as_str()
                            .unwrap()
                            .trim_start_matches("Shop-edition")
                            .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect()
    }

    fn traffic(&self) -> Traffic {
        let out = self.fleet.path().join("traffic.json");
        let stop = self.fleet.path().join("traffic.stop");
        let child = Command::new(simulator("websphere-sim"))
            .arg("traffic")
            .arg(format!("http://127.0.0.1:{}", self.router))
            .args(["--clients", "6", "--new", "2.0", "--stop"])
            .arg(&stop)
            .arg("--out")
            .arg(&out)
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        Traffic { child, out, stop }
    }
}

/// Clients looping through the router until `finish`.
struct Traffic {
    child: Child,
    out: PathBuf,
    stop: PathBuf,
}

impl Traffic {
    fn finish(mut self) -> serde_json::Value {
        std::fs::write(&self.stop, "").unwrap();
        self.child.wait().unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&self.out).unwrap()).unwrap();
        eprintln!("traffic: {v}");
        v
    }
}

fn assert_clean(t: &serde_json::Value) {
    assert!(t["requests"].as_u64().unwrap() > 100, "{t}");
    assert_eq!(t["failures"], 0, "failed requests: {t}");
    assert_eq!(t["lost_sessions"], 0, "lost sessions: {t}");
}

fn events(c: &Cell) -> Vec<String> {
    lines(&c.fleet.path().join("events.log"))
}

#[test]
fn grouped_soft_rollout_of_6_members_loses_no_request_and_no_session() {
    let c = Cell::new(19300, &["--request-timeout", "0"]);
    let t = c.traffic();
    let o = c.fleet.run(&["run", &c.fleet.spec()]);
    let traffic = t.finish();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("completed — 6 updated"), "{}", text(&o));
    assert_clean(&traffic);
    assert!(
        traffic["editions"]["2.0"].as_u64().unwrap() > 0,
        "{traffic}"
    );
    assert_eq!(c.running(), vec!["2.0"; 6]);
    assert_eq!(c.state()["editions"]["2.0"], "active");
    assert_eq!(c.state()["editions"]["1.0"], "inactive");
    // Groups of 2; each member's old edition stopped and the new one started once.
    let ev = events(&c);
    for i in 1..=6 {
        let m = format!("member{i}");
        assert_eq!(
            ev.iter()
                .filter(|l| **l == format!("stopApplication {m} Shop-edition1.0"))
                .count(),
            1,
            "{ev:?}"
        );
        assert_eq!(
            ev.iter()
                .filter(|l| **l == format!("startApplication {m} Shop-edition2.0"))
                .count(),
            1,
            "{ev:?}"
        );
    }
    assert!(
        !ev.iter().any(|l| l.starts_with("stopServer")),
        "a soft reset restarts no server: {ev:?}"
    );
}

#[test]
fn atomic_hard_rollout_switches_in_one_step_and_serves_one_edition() {
    let c = Cell::new(
        19330,
        &[
            "--request-timeout",
            "0",
            "--mode",
            "atomic",
            "--reset",
            "hard",
        ],
    );
    let t = c.traffic();
    let o = c.fleet.run(&["run", &c.fleet.spec()]);
    let traffic = t.finish();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("fleet step `switch`"), "{out}");
    assert_clean(&traffic);
    // Once the new edition answered, the old one never did again.
    assert_eq!(traffic["old_after_new"], 0, "{traffic}");
    assert_eq!(c.running(), vec!["2.0"; 6]);
    let ev = events(&c);
    assert_eq!(
        ev.iter().filter(|l| l.starts_with("stopServer")).count(),
        6,
        "a hard reset restarts every server once: {ev:?}"
    );
    assert_eq!(
        ev.iter().filter(|l| l.starts_with("startServer")).count(),
        6,
        "{ev:?}"
    );
}

#[test]
fn atomic_without_a_switch_step_says_what_it_cannot_guarantee() {
    let c = Cell::new(19360, &["--request-timeout", "0", "--mode", "atomic"]);
    c.fleet.set_spec("switch-step = \"switch\"\n", "");
    c.fleet.set_spec(
        "rollout-strategy = \"atomic\"",
        "rollout-strategy = \"grouped\"",
    );
    let o = c.fleet.run(&["plan", &c.fleet.spec()]);
    let out = text(&o);
    assert!(
        out.contains("atomic without `switch-step`: one consistent version is not guaranteed"),
        "{out}"
    );
    assert!(out.contains("both editions serve requests"), "{out}");
}

#[test]
fn a_failure_in_the_first_group_leaves_the_old_edition_active_everywhere() {
    let c = Cell::new(19390, &["--request-timeout", "0"]);
    c.fail_start("member1");
    let t = c.traffic();
    let o = c.fleet.run(&["run", &c.fleet.spec()]);
    let traffic = t.finish();
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("failed in the first wave: rolling back"),
        "{out}"
    );
    assert_clean(&traffic);
    assert_eq!(c.running(), vec!["1.0"; 6]);
    assert_eq!(c.state()["editions"]["1.0"], "active");
    assert_eq!(c.state()["editions"]["2.0"], "inactive");
    assert!(
        !events(&c).iter().any(|l| l.starts_with("activateEdition")),
        "{:?}",
        events(&c)
    );
}

#[test]
fn a_later_failure_with_on_failure_complete_completes_with_the_member_reported() {
    let c = Cell::new(19420, &["--request-timeout", "0"]);
    c.fleet.set_spec(
        "group-size = 2\n",
        "group-size = 2\non-failure = \"complete\"\n",
    );
    c.fail_start("member5");
    let t = c.traffic();
    let o = c.fleet.run(&["run", &c.fleet.spec()]);
    let traffic = t.finish();
    let out = text(&o);
    assert!(
        out.contains("completed-with-failures") || out.contains("completed with failures"),
        "{out}"
    );
    assert!(out.contains("member5"), "{out}");
    assert_clean(&traffic);
    assert_eq!(c.state()["editions"]["2.0"], "active");
    assert_eq!(c.state()["editions"]["1.0"], "inactive");
    let running = c.running();
    assert_eq!(
        running[4], "",
        "member5 is left as it is for the operator, not reverted: {running:?}"
    );
    for (i, r) in running.iter().enumerate().filter(|(i, _)| *i != 4) {
        assert_eq!(r, "2.0", "member{}: {running:?}", i + 1);
    }
    let s = status_json(&c.fleet.journal(), 1);
    assert!(
        s.to_string().contains("needs-attention") || s.to_string().contains("needs_attention"),
        "{s}"
    );
}

#[test]
fn preflight_refuses_a_short_soap_timeout_and_plan_shows_ibms_estimate() {
    let c = Cell::new(19450, &["--request-timeout", "180"]);
    let o = c.fleet.run(&["plan", &c.fleet.spec()]);
    let out = text(&o);
    // 3 groups of 2 × (2 + 300 + 600) s.
    assert!(
        out.contains("com.ibm.SOAP.requestTimeout = 180 s in"),
        "{out}"
    );
    assert!(
        out.contains("profile/properties/soap.client.props"),
        "{out}"
    );
    assert!(
        out.contains(
            "3 group(s) × (drainage interval 2 s + quiesce ≈ 300 s + restart ≈ 600 s) = 2706 s"
        ),
        "{out}"
    );
    assert!(out.contains("expected"), "{out}");
    let o = c.fleet.run(&["plan", &c.fleet.spec(), "--json"]);
    let plan: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    let worst = plan["worst_case_seconds"].as_u64().unwrap_or(0);
    assert!(
        worst >= 2706,
        "the worst case covers IBM's estimate: {plan}"
    );
    let o = c.fleet.run(&["run", &c.fleet.spec()]);
    let out = text(&o);
    assert!(
        !o.status.success() && out.contains("preflight refused the change"),
        "{out}"
    );
    assert!(out.contains("set it to at least 2706"), "{out}");
    assert!(events(&c).is_empty(), "nothing ran: {:?}", events(&c));
    // Group size 6 of 6 members: at most 5 out at once, as IBM resizes it.
    std::fs::write(
        c.fleet.path().join("profile/properties/soap.client.props"),
        "com.ibm.SOAP.requestTimeout=0\n",
    )
    .unwrap();
    c.fleet.set_spec("group-size = 2", "group-size = 6");
    let o = c.fleet.run(&["plan", &c.fleet.spec()]);
    let out = text(&o);
    assert!(
        out.contains("5 targets") || out.contains("(member1, member2, member3, member4, member5)"),
        "{out}"
    );
}

#[test]
fn one_member_is_rolled_out_alone_the_other_half_skipped() {
    let c = Cell::sized(19480, 1, &["--request-timeout", "0", "--mode", "atomic"]);
    let o = c.fleet.run(&["run", &c.fleet.spec()]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    assert!(
        out.contains("one member: as IBM documents for single-server targets"),
        "{out}"
    );
    assert!(out.contains("fleet step `switch`"), "{out}");
    let s = c.state();
    assert_eq!(s["running"]["member1"][0], "Shop-edition2.0", "{s}");
    assert_eq!(s["editions"]["2.0"], "active", "{s}");
}

#[test]
fn preflight_refuses_an_operator_role_and_a_new_edition_without_a_routing_policy() {
    // Only edition 1.0 has a routing policy (work class) in this cell.
    let c = Cell::new(19510, &["--request-timeout", "0", "--routing", "1.0"]);
    c.fleet
        .set_spec("admin-role = \"configurator\"", "admin-role = \"operator\"");
    let o = c.fleet.run(&["run", &c.fleet.spec()]);
    let out = text(&o);
    assert!(
        !o.status.success() && out.contains("preflight refused the change"),
        "{out}"
    );
    assert!(out.contains("admin-role is `operator`: an edition rollout needs the configurator or administrator role"), "{out}");
    assert!(
        out.contains("no routing policy for edition 2.0 (`Shop-edition2.0`)"),
        "{out}"
    );
    assert!(events(&c).is_empty(), "nothing ran: {:?}", events(&c));
}
