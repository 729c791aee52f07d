//! taskctl on a simulated TASKCTL platform (1 server, 2 master agents, 4 slave agents, every
//! node with real long-running processes), through the real binary and plugins.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Command;

/// A simulated platform: 1 server, 2 master agents, 4 slave agents.
struct Platform(SimFleet);

impl std::ops::Deref for Platform {
    type Target = SimFleet;
    fn deref(&self) -> &SimFleet {
        &self.0
    }
}

/// The master groups of the simulated platform: master, slaves.
const GROUPS: &[(&str, &[&str])] = &[
    ("magent-1", &["sagent-1a", "sagent-1b"]),
    ("magent-2", &["sagent-2a", "sagent-2b"]),
];
const SLAVES: &[&str] = &["sagent-1a", "sagent-1b", "sagent-2a", "sagent-2b"];
const MASTERS: &[&str] = &["magent-1", "magent-2"];
const ALL: &[&str] = &[
    "server",
    "magent-1",
    "sagent-1a",
    "sagent-1b",
    "magent-2",
    "sagent-2a",
    "sagent-2b",
];

impl Platform {
    fn new() -> Platform {
        Platform(SimFleet::build("taskctl-sim", &["--group-size", "3"]))
    }

    fn node(&self, name: &str) -> PathBuf {
        self.path().join("nodes").join(name)
    }

    /// Run a node's TASKCTL command; its output.
    fn ctl(&self, name: &str, cmd: &str) -> String {
        let o = Command::new(self.node(name).join("bin").join(cmd))
            .output()
            .unwrap();
        text(&o)
    }

    fn version(&self, name: &str) -> String {
        std::fs::read_to_string(self.node(name).join("current/VERSION"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// `(node, down|up)` in the order the simulator recorded them.
    fn events(&self) -> Vec<(String, String)> {
        lines(&self.path().join("events.log"))
            .iter()
            .map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f[1].to_string(), f[2].to_string())
            })
            .collect()
    }

    /// The role processes running from a node's home, by name (from /proc).
    fn processes(&self, name: &str) -> BTreeSet<String> {
        let home = format!("{}/bin/", self.node(name).display());
        let mut found = BTreeSet::new();
        for e in std::fs::read_dir("/proc").unwrap().filter_map(|e| e.ok()) {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            let argv0 = String::from_utf8_lossy(cmdline.split(|b| *b == 0).next().unwrap_or(&[]))
                .to_string();
            let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
            if argv0.starts_with(&home) && !stat.contains(") Z ") {
                let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                found.insert(comm.trim().to_string());
            }
        }
        found
    }

    /// Node `name` is started on `version` with its role's processes and the platform's
    /// configuration.
    fn assert_on(&self, name: &str, version: &str) {
        assert_eq!(self.version(name), version, "{name}");
        let row = self
            .ctl("server", "listcirn")
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap()
            .to_string();
        assert!(row.ends_with("5-启动状态"), "{row}");
        let want: BTreeSet<String> = if name == "server" {
            "ctlcpg ctlsps ctldrr ctldar ctlstr ctldsy ctlemr ctlucd ctljmm ctlinit"
        } else {
            "ctlcpg ctlsps ctldrr ctldar ctlstr ctlinit"
        }
        .split(' ')
        .map(str::to_string)
        .collect();
        assert_eq!(self.processes(name), want, "{name}");
    }

    /// At no recorded moment were a master and all its slaves down together.
    fn assert_groups_served(&self) {
        let mut down = BTreeSet::new();
        for (n, (node, what)) in self.events().iter().enumerate() {
            if what == "down" {
                down.insert(node.clone());
            } else {
                down.remove(node);
            }
            for (master, slaves) in GROUPS {
                let all = down.contains(*master) && slaves.iter().all(|s| down.contains(*s));
                assert!(!all, "event {n}: group {master} fully down: {down:?}");
            }
        }
    }

    fn listings(&self, name: &str) -> BTreeMap<&'static str, String> {
        ["listjt", "listapp", "listpara"]
            .into_iter()
            .map(|l| (l, self.ctl(name, l)))
            .collect()
    }
}

fn position(events: &[(String, String)], node: &str, what: &str, last: bool) -> usize {
    let mut it = events
        .iter()
        .enumerate()
        .filter(|(_, (n, w))| n == node && w == what)
        .map(|(i, _)| i);
    if last { it.next_back() } else { it.next() }
        .unwrap_or_else(|| panic!("no `{what}` of {node} in {events:?}"))
}

#[test]
fn the_tree_is_upgraded_level_by_level_and_no_master_group_is_ever_fully_down() {
    let p = Platform::new();
    let before: Vec<_> = ALL.iter().map(|n| p.listings(n)).collect();
    let start = p.events().len();
    let o = run(&p.journal(), &["run", &p.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for (n, name) in ALL.iter().enumerate() {
        p.assert_on(name, "8.1.0");
        assert_eq!(p.listings(name), before[n], "{name}: configuration changed");
    }
    p.assert_groups_served();
    // Levels: every slave back up before any master went down, every master before the server.
    let events: Vec<_> = p.events()[start..].to_vec();
    let last_slave_up = SLAVES
        .iter()
        .map(|s| position(&events, s, "up", true))
        .max()
        .unwrap();
    let first_master_down = MASTERS
        .iter()
        .map(|m| position(&events, m, "down", false))
        .min()
        .unwrap();
    let last_master_up = MASTERS
        .iter()
        .map(|m| position(&events, m, "up", true))
        .max()
        .unwrap();
    let server_down = position(&events, "server", "down", false);
    assert!(last_slave_up < first_master_down, "{events:?}");
    assert!(last_master_up < server_down, "{events:?}");
    // Each node went down and up exactly once.
    assert_eq!(events.len(), 14, "{events:?}");
}

#[test]
fn a_strategy_that_takes_a_whole_master_group_at_once_is_refused_before_any_step() {
    let p = Platform::new();
    let spec = std::fs::read_to_string(p.spec()).unwrap();
    let bad = fixtures().join("bad_strategy.wasm");
    let grouped = plugins().join("grouped.wasm");
    std::fs::write(
        p.spec(),
        spec.replace(&grouped.display().to_string(), &bad.display().to_string()),
    )
    .unwrap();
    let events = p.events().len();
    let o = run(&p.journal(), &["run", &p.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("the plan of bad-strategy@0.1.0 was refused: constraint `master group magent-1 keeps balancing load` is broken by stage 1 (wave everything)"),
        "{out}"
    );
    assert_eq!(p.events().len(), events, "a node was touched");
    let s = status_json(&p.journal(), 1);
    assert!(s["steps"].as_array().unwrap().is_empty(), "{s}");
    for name in ALL {
        p.assert_on(name, "8.0.0");
    }
}

#[test]
fn a_node_that_fails_to_start_is_undone_and_its_group_stays_served() {
    let p = Platform::new();
    std::fs::write(p.node("magent-1").join("fail-start"), "8.1.0").unwrap();
    let o = run(&p.journal(), &["run", &p.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("magent-1 failed"), "{out}");
    assert!(out.contains("completed-with-failures"), "{out}");
    p.assert_on("magent-1", "8.0.0");
    for name in ALL.iter().filter(|n| **n != "magent-1") {
        p.assert_on(name, "8.1.0");
    }
    p.assert_groups_served();
}

#[test]
fn a_fleet_that_is_not_a_taskctl_tree_is_refused_naming_the_node() {
    let p = Platform::new();
    let spec = std::fs::read_to_string(p.spec()).unwrap();
    // A slave agent hung directly under the server.
    let broken = spec.replacen("parent = \"magent-1\"", "parent = \"server\"", 1);
    std::fs::write(p.spec(), &broken).unwrap();
    let o = run(&p.journal(), &["plan", &p.spec()]);
    let out = text(&o);
    assert_ne!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains(
            "target `sagent-1a`: a cntSAgent's parent must be a cntMAgent, but `server` is cntServer"
        ),
        "{out}"
    );
    // An unknown node type.
    let broken = spec.replacen("type = \"cntMAgent\"", "type = \"cntAgent\"", 1);
    std::fs::write(p.spec(), &broken).unwrap();
    let out = text(&run(&p.journal(), &["plan", &p.spec()]));
    assert!(
        out.contains("`type = \"cntAgent\"` is not a node type"),
        "{out}"
    );
}

#[test]
fn taskctl_passes_the_conformance_run() {
    let p = Platform::new();
    // Left out of the comparisons: the agents' runtime folder (process table).
    let report = p.conformance("taskctl.wasm", &["--ignore", "**/run/**"]);
    assert!(report.contains("a second run changes nothing"), "{report}");
}
