//! The `osgi-grid` adapter against real OSGi frameworks (Eclipse Equinox and Apache Felix,
//! one per node, driven through their own remote consoles) and the `xscmd` simulator in
//! `examples/osgi-grid/`.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

struct Grid(SimFleet);

impl std::ops::Deref for Grid {
    type Target = SimFleet;
    fn deref(&self) -> &SimFleet {
        &self.0
    }
}

/// The Java runtime's home, as xscmd needs it in `JAVA_HOME`.
fn java_home() -> String {
    let o = std::process::Command::new("sh")
        .args(["-c", "readlink -f \"$(command -v java)\""])
        .output()
        .unwrap();
    let java = String::from_utf8_lossy(&o.stdout).trim().to_string();
    let home = std::path::Path::new(&java)
        .parent()
        .and_then(|p| p.parent());
    home.expect("java is installed").display().to_string()
}

/// The example grid's catalog endpoint and credentials (as `fleet` writes them).
const CONNECTION: [&str; 6] = [
    "-cep",
    "127.0.0.1:2809",
    "-user",
    "gridadmin",
    "-pwd",
    "s3cret-grid",
];

impl Grid {
    /// Three nodes on `framework` (`equinox` or `felix`), their consoles on `port`+1...
    fn new(port: u16, framework: &str) -> Grid {
        Grid(
            SimFleet::build(
                "osgi-grid-sim",
                &[
                    "--nodes",
                    "3",
                    "--port",
                    &port.to_string(),
                    "--framework",
                    framework,
                ],
            )
            .with_env("JAVA_HOME", &java_home()),
        )
    }

    /// The xscmd simulator's grid state.
    fn state(&self) -> Value {
        let s = std::fs::read_to_string(self.path().join("grid/state.json")).unwrap();
        serde_json::from_str(&s).unwrap()
    }

    /// Map set `i` (0: MyGrid/MyMapSet, both services; 1: MyGrid/SessionMapSet, the
    /// serializer only).
    fn map_set(&self, i: usize) -> Value {
        self.state()["mapSets"][i].clone()
    }

    /// Run the grid's xscmd, connected as the spec connects.
    fn xscmd(&self, args: &[&str]) -> String {
        let o = std::process::Command::new(self.path().join("bin/xscmd"))
            .args(args)
            .args(CONNECTION)
            .env("JAVA_HOME", java_home())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout).to_string()
    }

    /// Every xscmd command the grid saw, without its time stamp.
    fn commands(&self) -> Vec<String> {
        lines(&self.path().join("grid/xscmd.log"))
            .into_iter()
            .map(|l| l.split_once(' ').unwrap().1.to_string())
            .collect()
    }

    /// The plugin bundles in server `i`'s framework, from its own console listing (`ss` or
    /// `lb -s`, through `osgi-grid-sim status`): (version, state in lowercase).
    fn bundles(&self, i: usize) -> Vec<(String, String)> {
        let o = std::process::Command::new(simulator("osgi-grid-sim"))
            .arg("status")
            .arg(self.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).to_string();
        let line = out
            .lines()
            .find_map(|l| l.strip_prefix(&format!("server{i}: ")))
            .unwrap_or_else(|| panic!("no server{i} in {out}"));
        line.split("; ")
            .filter(|b| !b.is_empty())
            .map(|b| {
                let w: Vec<&str> = b.split_whitespace().collect();
                assert!(w.len() == 4, "{b}");
                (w[2].to_string(), w[3].to_lowercase())
            })
            .collect()
    }

    /// Write a bundle with `version` and these rankings into the fleet's bundles folder and
    /// point the spec at it.
    fn use_bundle(&self, file: &str, version: &str, rankings: &[(&str, &str)]) {
        let mut args = vec![
            "bundle".to_string(),
            self.path().join("bundles").join(file).display().to_string(),
            "--version".into(),
            version.into(),
        ];
        for (svc, r) in rankings {
            args.push("--service".into());
            args.push(format!("{svc}={r}"));
        }
        let o = std::process::Command::new(simulator("osgi-grid-sim"))
            .args(&args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        let spec = std::fs::read_to_string(self.spec()).unwrap();
        let from = spec
            .lines()
            .find(|l| l.starts_with("bundle = "))
            .unwrap()
            .to_string();
        self.set_spec(&from, &format!("bundle = \"{file}\""));
    }

    /// Start a rollout, SIGKILL cutover while `osgiUpdate` quiesces MyGrid/MyMapSet
    /// (balancing suspended), and wait for that update to complete in the grid without
    /// cutover.
    fn kill_mid_update(&self) {
        std::fs::write(self.path().join("grid/update-delay-ms"), "3000").unwrap();
        let mut child = self.spawn_run();
        wait_for(
            "osgiUpdate to quiesce the grid",
            Duration::from_secs(120),
            || self.map_set(0)["quiesced"] == true,
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        wait_for(
            "the started update to complete",
            Duration::from_secs(60),
            || self.map_set(0)["updates"] == 1,
        );
        assert_eq!(self.map_set(0)["balancing"], "suspended");
        std::fs::remove_file(self.path().join("grid/update-delay-ms")).unwrap();
    }

    /// Every server of every map set reports `ranking` active (the documented `osgiCurrent`
    /// table: service, ranking, grid, map set, server), and balancing is active everywhere.
    fn assert_grid(&self, ranking: i64) {
        let current = self.xscmd(&["-c", "osgiCurrent"]);
        let rows: Vec<Vec<&str>> = current
            .lines()
            .filter(|l| l.starts_with("my"))
            .map(|l| l.split_whitespace().collect())
            .collect();
        // MyMapSet uses both services, SessionMapSet one: 3 × 3 servers.
        assert_eq!(rows.len(), 9, "{current}");
        for i in 1..=3 {
            assert!(
                rows.iter().any(|r| r[4] == format!("server{i}")),
                "{current}"
            );
        }
        assert!(
            rows.iter().all(|r| r[1] == ranking.to_string()),
            "{current}"
        );
        assert_eq!(self.map_set(0)["balancing"], "active");
        assert_eq!(self.map_set(1)["balancing"], "active");
    }
}

const SERVICES: [&str; 2] = ["myLoaderServiceFactory", "mySerializerServiceFactory"];

fn old_and_new(version: &str) -> Vec<(String, String)> {
    vec![(version.to_string(), "active".to_string())]
}

/// Three nodes move to bundle 1.1.0 and ranking 2 live on `framework`, through the documented
/// order of xscmd commands, for both map sets the bundle's services are used in.
fn three_nodes_move_live(port: u16, framework: &str) {
    let g = Grid::new(port, framework);
    g.assert_grid(1);
    let o = g.run(&["run", &g.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("completed — 3 updated"), "{out}");
    assert!(
        out.contains("map sets to suspend and update: MyGrid/MyMapSet (myLoaderServiceFactory, mySerializerServiceFactory); MyGrid/SessionMapSet (mySerializerServiceFactory)"),
        "{out}"
    );
    // Every server reports ranking 2 active; balancing is active again; one update each.
    g.assert_grid(2);
    assert_eq!(g.map_set(0)["updates"], 1);
    assert_eq!(g.map_set(1)["updates"], 1);
    // Each framework's own listing: the new bundle active, the old one uninstalled.
    for i in 1..=3 {
        assert_eq!(g.bundles(i), old_and_new("1.1.0"), "server{i}");
    }
    // The documented order: osgiAll and osgiCheck, suspend, osgiCheck again, update, resume.
    let sr = "myLoaderServiceFactory;2,mySerializerServiceFactory;2";
    let grid_wide: Vec<String> = g
        .commands()
        .into_iter()
        .filter(|c| !c.starts_with("-c osgiCurrent"))
        .collect();
    assert_eq!(
        grid_wide,
        vec![
            "-c osgiAll -> ok".to_string(),
            format!("-c osgiCheck -sr {sr} -> ok"),
            "-c suspendBalancing -g MyGrid -ms MyMapSet -> ok".into(),
            "-c suspendBalancing -g MyGrid -ms SessionMapSet -> ok".into(),
            format!("-c osgiCheck -sr {sr} -> ok"),
            format!("-c osgiUpdate -sr {sr} -g MyGrid -ms MyMapSet -> ok"),
            "-c osgiCheck -sr mySerializerServiceFactory;2 -> ok".into(),
            "-c osgiUpdate -sr mySerializerServiceFactory;2 -g MyGrid -ms SessionMapSet -> ok"
                .into(),
            "-c resumeBalancing -g MyGrid -ms MyMapSet -> ok".into(),
            "-c resumeBalancing -g MyGrid -ms SessionMapSet -> ok".into(),
        ]
    );
}

#[test]
fn equinox_nodes_move_to_bundle_1_1_0_and_ranking_2_live() {
    three_nodes_move_live(18900, "equinox");
}

#[test]
fn felix_nodes_move_to_bundle_1_1_0_and_ranking_2_live() {
    three_nodes_move_live(18970, "felix");
}

#[test]
fn a_failed_osgi_update_keeps_ranking_1_uninstalls_the_new_bundles_and_resumes_balancing() {
    let g = Grid::new(18910, "equinox");
    std::fs::write(
        g.path().join("grid/fail-update"),
        "ClassCastException in myLoaderServiceFactory",
    )
    .unwrap();
    let o = g.run(&["run", &g.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("fleet: step `update` failed"), "{out}");
    assert!(
        out.contains("the update was rolled back and the previous service rankings were restored"),
        "{out}"
    );
    assert!(
        out.contains("rolled-back — 0 updated, 0 failed, 3 rolled back"),
        "{out}"
    );
    g.assert_grid(1);
    assert_eq!(g.map_set(0)["updates"], 0);
    for i in 1..=3 {
        assert_eq!(
            g.bundles(i),
            old_and_new("1.0.0"),
            "server{i}: the new bundle is stopped and uninstalled, the old one runs"
        );
        assert!(!g
            .path()
            .join(format!("nodes/server{i}/bundles/grid-plugins-1.1.0.jar"))
            .exists());
    }
    let commands = g.commands();
    let failed = commands
        .iter()
        .position(|c| c.starts_with("-c osgiUpdate") && c.contains("-> failed"))
        .expect("the update failed");
    for ms in ["MyMapSet", "SessionMapSet"] {
        let resumed = commands
            .iter()
            .rposition(|c| c.starts_with(&format!("-c resumeBalancing -g MyGrid -ms {ms}")))
            .expect("balancing resumed");
        assert!(resumed > failed, "{commands:?}");
    }
}

#[test]
fn kill_9_while_balancing_is_suspended_then_resume_updates_exactly_once() {
    let g = Grid::new(18920, "equinox");
    g.kill_mid_update();
    let o = g.run(&["resume", "1"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("not updated again"), "{out}");
    g.assert_grid(2);
    assert_eq!(
        g.map_set(0)["updates"],
        1,
        "the update happened exactly once"
    );
    assert_eq!(g.map_set(1)["updates"], 1);
    let applied = g
        .commands()
        .iter()
        .filter(|c| c.starts_with("-c osgiUpdate") && c.contains("-ms MyMapSet -> ok"))
        .count();
    assert_eq!(applied, 1);
    for i in 1..=3 {
        assert_eq!(g.bundles(i), old_and_new("1.1.0"));
    }
}

#[test]
fn kill_9_mid_update_then_rollback_restores_ranking_1_and_resumes_balancing() {
    let g = Grid::new(18940, "felix");
    g.kill_mid_update();
    let o = g.run(&["rollback", "1"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("rolled-back"), "{out}");
    // The undo of suspend-balancing found ranking 2 active and went back before resuming.
    g.assert_grid(1);
    assert_eq!(g.map_set(0)["updates"], 2);
    assert_eq!(g.map_set(1)["updates"], 0);
    for i in 1..=3 {
        assert_eq!(g.bundles(i), old_and_new("1.0.0"));
    }
    let commands = g.commands();
    let back = commands
        .iter()
        .rposition(|c| {
            c.contains("osgiUpdate -sr myLoaderServiceFactory;1,mySerializerServiceFactory;1")
        })
        .expect("updated back to ranking 1");
    let resumed = commands
        .iter()
        .rposition(|c| c.starts_with("-c resumeBalancing"))
        .expect("balancing resumed");
    assert!(back < resumed, "{commands:?}");
}

#[test]
fn a_bundle_service_the_grid_does_not_reference_is_left_out_of_the_update() {
    let g = Grid::new(18950, "equinox");
    g.use_bundle(
        "with-extra.jar",
        "1.1.0",
        &[
            (SERVICES[0], "2"),
            (SERVICES[1], "2"),
            ("myAuditService", "7"),
        ],
    );
    let o = g.run(&["run", &g.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(
        out.contains("service myAuditService (OSGI-INF/myAuditService.xml) is not a plugin service of the grid; it is left out of the update"),
        "{out}"
    );
    g.assert_grid(2);
    let sr = "myLoaderServiceFactory;2,mySerializerServiceFactory;2";
    assert!(g.commands().contains(&format!(
        "-c osgiUpdate -sr {sr} -g MyGrid -ms MyMapSet -> ok"
    )));
}

#[test]
fn preflight_refuses_a_bundle_whose_version_or_ranking_was_not_raised() {
    let g = Grid::new(18930, "equinox");
    /// (file, Bundle-Version, rankings, the refusal)
    type Case<'a> = (&'a str, &'a str, [(&'a str, &'a str); 2], &'a str);
    let cases: [Case; 4] = [
        (
            "same-version.jar",
            "1.0.0",
            [(SERVICES[0], "2"), (SERVICES[1], "2")],
            "Bundle-Version 1.0.0 is not higher than the installed 1.0.0",
        ),
        (
            "same-ranking.jar",
            "1.1.0",
            [(SERVICES[0], "2"), (SERVICES[1], "1")],
            "service mySerializerServiceFactory has ranking 1, not higher than the active 1 in MyGrid/SessionMapSet",
        ),
        (
            "decimal-ranking.jar",
            "1.1.0",
            [(SERVICES[0], "2.5"), (SERVICES[1], "2")],
            "service myLoaderServiceFactory (OSGI-INF/myLoaderServiceFactory.xml) has service.ranking `2.5`: OSGi service rankings must be integers",
        ),
        (
            "bad-version.jar",
            "1.one",
            [(SERVICES[0], "2"), (SERVICES[1], "2")],
            "Bundle-Version: `1.one` is not an OSGi version",
        ),
    ];
    for (file, version, rankings, why) in cases {
        g.use_bundle(file, version, &rankings);
        let o = g.run(&["run", &g.spec()]);
        let out = text(&o);
        assert_eq!(o.status.code(), Some(2), "{file}: {out}");
        assert!(out.contains(why), "{file}: {out}");
    }
    // Nothing ran: no balancing change, no update, the old bundle alone everywhere.
    assert!(g.commands().iter().all(|c| c.starts_with("-c osgiCurrent")));
    for i in 1..=3 {
        assert_eq!(g.bundles(i), old_and_new("1.0.0"));
    }
}

#[test]
fn preflight_names_what_the_grid_and_its_grants_lack() {
    let g = Grid::new(18980, "equinox");
    let refused = |why: &str| {
        let o = g.run(&["run", &g.spec()]);
        let out = text(&o);
        // 2: preflight refused; 1: the spec lacks a grant.
        assert!(matches!(o.status.code(), Some(1 | 2)), "{out}");
        assert!(out.contains(why), "{out}");
    };
    // A map-sets parameter that leaves out an affected map set, or names one not affected.
    let params = "password-secret = \"grid-password\"\n";
    g.set_spec(params, &format!("{params}map-sets = \"MyGrid/MyMapSet\"\n"));
    refused("it leaves out MyGrid/SessionMapSet, which uses mySerializerServiceFactory (osgiCurrent): every affected map set must be suspended");
    g.set_spec(
        "map-sets = \"MyGrid/MyMapSet\"",
        "map-sets = \"MyGrid/MyMapSet,MyGrid/SessionMapSet,Other/Set\"",
    );
    refused("it names Other/Set, which uses none of the bundle's services in osgiCurrent");
    g.set_spec(
        "map-sets = \"MyGrid/MyMapSet,MyGrid/SessionMapSet,Other/Set\"",
        "map-sets = \"MyGrid/SessionMapSet,MyGrid/MyMapSet\"",
    );
    // Without JAVA_HOME passed to xscmd, preflight says how to pass it.
    g.set_spec("pass-env = [\"JAVA_HOME\"]", "pass-env = []");
    refused("[grants] pass-env = [\"JAVA_HOME\"]");
    g.set_spec("pass-env = []", "pass-env = [\"JAVA_HOME\"]");
    // Without the catalog endpoint, xscmd's own refusal is shown.
    g.set_spec("catalog-endpoints = \"127.0.0.1:2809\"\n", "");
    refused("cannot connect to a catalog server");
    g.set_spec(
        "xscmd-user",
        "catalog-endpoints = \"127.0.0.1:2809\"\nxscmd-user",
    );
    // The consoles are reached only through the grant, which names them.
    g.set_spec("tcp = [\"127.0.0.1:*\"]", "tcp = [\"127.0.0.1:1\"]");
    refused("add \"127.0.0.1:18981\" to [grants] tcp");
    g.set_spec("tcp = [\"127.0.0.1:1\"]", "tcp = [\"127.0.0.1:*\"]");
    // And xscmd only through its grant.
    let xscmd = g.path().join("bin/xscmd").display().to_string();
    g.set_spec(&format!("exec = [\"{xscmd}\"]"), "exec = []");
    refused("[grants] exec");
    g.set_spec("exec = []", &format!("exec = [\"{xscmd}\"]"));
    // With all of that back, the listed map sets (in any order) go through.
    let o = g.run(&["run", &g.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    g.assert_grid(2);
}

#[test]
fn osgi_grid_passes_the_conformance_run() {
    let g = Grid::new(18960, "equinox");
    let report = g.conformance("osgi_grid.wasm", &[]);
    assert!(report.contains("put the targets back"), "{report}");
}
