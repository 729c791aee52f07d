//! taskctl on a simulated TASKCTL platform (1 server, 2 master agents, 4 slave agents, every
//! node with real long-running processes), through the real binary and plugins. The
//! simulator's `ctladmin` wants its login on standard input; its `ipcs` lists the nodes'
//! shared memory and message queues.

mod common;

use common::*;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

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

    /// Run `command` in a `ctladmin` session of node `name`, logged in; its output.
    fn admin(&self, name: &str, command: &str) -> String {
        let mut child = Command::new(self.node(name).join("bin/ctladmin"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let login = std::fs::read_to_string(self.path().join("ctladmin.login")).unwrap();
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{login}{command}").unwrap();
        drop(stdin);
        text(&child.wait_with_output().unwrap())
    }

    /// The release node `name` runs (the simulator's marker in its `lib/`).
    fn version(&self, name: &str) -> String {
        std::fs::read_to_string(self.node(name).join("lib/VERSION"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// Keys of the objects `ipcs -m` (or `-q`) lists for node `name`'s account.
    fn ipc(&self, name: &str, option: &str) -> Vec<String> {
        let account = format!("tc_{}", name.replace("agent-", ""));
        let o = Command::new(self.path().join("sbin/ipcs"))
            .arg(option)
            .output()
            .unwrap();
        text(&o)
            .lines()
            .filter(|l| l.split_whitespace().nth(2) == Some(account.as_str()))
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
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

    /// Node `name` is started on `version` with its role's processes, its listener's shared
    /// memory and message queues, and the platform's configuration.
    fn assert_on(&self, name: &str, version: &str) {
        assert_eq!(self.version(name), version, "{name}");
        let listing = self.admin("server", "listcirn");
        let row = listing
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("{listing}"))
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
        assert_eq!(self.ipc(name, "-m").len(), 1, "{name}: shared memory");
        assert_eq!(self.ipc(name, "-q").len(), 2, "{name}: message queues");
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
            .map(|l| (l, self.admin(name, l)))
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
    // The old programs are kept for a later rollback, in the node's home.
    let kept = p.node("magent-1").join(".cutover-backup/1/lib/VERSION");
    assert_eq!(std::fs::read_to_string(kept).unwrap().trim(), "8.0.0");
}

#[test]
fn a_completed_upgrade_rolls_back_to_the_old_programs_and_leaves_no_backup() {
    let p = Platform::new();
    // This time ctladmin gets its commands as arguments (the login still on stdin).
    p.set_spec(
        "settle-timeout = \"10\"\n",
        "settle-timeout = \"10\"\nctladmin-input = \"args\"\n",
    );
    let o = run(&p.journal(), &["run", &p.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let o = run(&p.journal(), &["rollback", "1"]);
    let out = text(&o);
    assert!(
        out.contains("rolled-back — 0 updated, 0 failed, 7 rolled back"),
        "{out}"
    );
    for name in ALL {
        p.assert_on(name, "8.0.0");
        assert!(!p.node(name).join(".cutover-backup").exists(), "{name}");
    }
    p.assert_groups_served();
}

#[test]
fn preflight_says_what_it_could_not_check_and_blocks_a_node_without_its_programs() {
    let p = Platform::new();
    // No version file named; one node without its IPC account.
    p.set_spec("version-file = \"lib/VERSION\"\n", "");
    p.set_spec("ipc-owner = \"tc_s1a\"\n", "");
    let o = run(&p.journal(), &["plan", &p.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for line in [
        "preflight info: fleet: not checked: the version a node runs. The seed documents no version command or file",
        "preflight warning: sagent-1a: not checked: shared memory and message queues after ctlinit and ctlshut",
        "preflight info: fleet: not checked before the rollout (preflight runs no program): that each node is started in listcirn",
        "preflight info: fleet: not checked at all: the listener's port",
        "preflight info: fleet: install replaces bin, lib in each node's home",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
    assert!(
        !out.contains("magent-1: not checked: shared memory"),
        "{out}"
    );
    // A node without one of its programs: `run` stops before touching any node.
    std::fs::remove_file(p.node("sagent-2b").join("bin/ctlshut")).unwrap();
    let events = p.events().len();
    let o = run(&p.journal(), &["run", &p.spec()]);
    let out = text(&o);
    assert_ne!(o.status.code(), Some(0), "{out}");
    let missing = format!(
        "preflight BLOCKER: sagent-2b: {}/bin/ctlshut is missing",
        p.node("sagent-2b").display()
    );
    assert!(out.contains(&missing), "{out}");
    assert_eq!(p.events().len(), events, "a node was touched: {out}");
}

#[test]
fn shared_memory_left_after_ctlshut_fails_the_node_which_comes_back_on_its_old_version() {
    let p = Platform::new();
    p.set_spec("settle-timeout = \"10\"", "settle-timeout = \"2\"");
    std::fs::write(p.node("magent-2").join("keep-shm"), "").unwrap();
    let o = run(&p.journal(), &["run", &p.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(
            "magent-2 failed: step `stop-listener` failed: node magent-2: shared memory or message \
             queues not released after ctlshut: ipcs shows for owner tc_m2: shared memory \
             segments: key 0x54430005"
        ),
        "{out}"
    );
    assert!(
        out.contains("ran ctlinit to put the node back as ctlshut found it"),
        "{out}"
    );
    p.assert_on("magent-2", "8.0.0");
    for name in ALL.iter().filter(|n| **n != "magent-2") {
        p.assert_on(name, "8.1.0");
    }
    p.assert_groups_served();
}

#[test]
fn a_process_missing_after_start_fails_verify_and_the_node_is_undone() {
    let p = Platform::new();
    p.set_spec("settle-timeout = \"10\"", "settle-timeout = \"2\"");
    std::fs::write(p.node("server").join("fail-proc"), "8.1.0 ctljmm").unwrap();
    let o = run(&p.journal(), &["run", &p.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains(
            "server failed: step `verify` failed: node server: processes not running after \
             ctlstart: ctljmm"
        ),
        "{out}"
    );
    p.assert_on("server", "8.0.0");
    for name in ALL.iter().filter(|n| **n != "server") {
        p.assert_on(name, "8.1.0");
    }
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
