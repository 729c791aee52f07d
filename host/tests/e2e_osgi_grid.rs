//! The `osgi-grid` adapter against real Apache Felix frameworks (one per node, driven through
//! their Gogo shell) and the `xscmd` simulator in `examples/osgi-grid/`.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const NAME: &str = "com.example.grid.plugins";

struct Grid(SimFleet);

impl std::ops::Deref for Grid {
    type Target = SimFleet;
    fn deref(&self) -> &SimFleet {
        &self.0
    }
}

impl Grid {
    fn new(port: u16) -> Grid {
        Grid(SimFleet::build(
            "osgi-grid-sim",
            &["--nodes", "3", "--port", &port.to_string()],
        ))
    }

    /// The xscmd simulator's grid state.
    fn state(&self) -> Value {
        let s = std::fs::read_to_string(self.path().join("grid/state.json")).unwrap();
        serde_json::from_str(&s).unwrap()
    }

    fn map_set(&self) -> Value {
        self.state()["mapSets"][0].clone()
    }

    /// Run the grid's xscmd.
    fn xscmd(&self, args: &[&str]) -> String {
        let o = std::process::Command::new(self.path().join("bin/xscmd"))
            .args(args)
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

    /// The plugin bundles in server `i`'s framework, from its own `lb -s`: (version, state).
    fn bundles(&self, i: usize) -> Vec<(String, String)> {
        let console = self.path().join(format!("nodes/server{i}/bin/console"));
        let o = std::process::Command::new(console)
            .args(["lb", "-s"])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('|').map(str::trim).collect();
                let (name, version) = cols.get(3)?.rsplit_once(" (")?;
                (name == NAME).then(|| {
                    (
                        version.trim_end_matches(')').to_string(),
                        cols[1].to_string(),
                    )
                })
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

    /// Start a rollout, SIGKILL cutover while `osgiUpdate` quiesces the grid (balancing
    /// suspended), and wait for that update to complete in the grid without cutover.
    fn kill_mid_update(&self) {
        std::fs::write(self.path().join("grid/update-delay-ms"), "3000").unwrap();
        let mut child = self.spawn_run();
        wait_for(
            "osgiUpdate to quiesce the grid",
            Duration::from_secs(120),
            || self.map_set()["quiesced"] == true,
        );
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        wait_for(
            "the started update to complete",
            Duration::from_secs(60),
            || self.map_set()["updates"] == 1,
        );
        assert_eq!(self.map_set()["balancing"], "suspended");
        std::fs::remove_file(self.path().join("grid/update-delay-ms")).unwrap();
    }

    /// Servers report these rankings active (osgiCurrent), and balancing is active.
    fn assert_grid(&self, ranking: i64) {
        let current = self.xscmd(&["-c", "osgiCurrent"]);
        for i in 1..=3 {
            assert!(current.contains(&format!("Server: server{i}")), "{current}");
        }
        let rows: Vec<&str> = current.lines().filter(|l| l.starts_with("my")).collect();
        assert_eq!(rows.len(), 6, "{current}");
        assert!(
            rows.iter().all(|l| l.ends_with(&format!(" {ranking}"))),
            "{current}"
        );
        assert_eq!(self.map_set()["balancing"], "active");
    }
}

const SERVICES: [&str; 2] = ["myLoaderServiceFactory", "mySerializerServiceFactory"];

#[test]
fn three_nodes_move_to_bundle_1_1_0_and_ranking_2_live() {
    let g = Grid::new(18900);
    g.assert_grid(1);
    let o = g.run(&["run", &g.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("completed — 3 updated"), "{out}");
    // Every server reports ranking 2 active; balancing is active again; one update.
    g.assert_grid(2);
    assert_eq!(g.map_set()["updates"], 1);
    // Each framework's own listing: the new bundle active, the old one uninstalled.
    for i in 1..=3 {
        assert_eq!(
            g.bundles(i),
            vec![("1.1.0".to_string(), "Active".to_string())],
            "server{i}"
        );
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
            format!("-c osgiCheck -sr {sr} -> ok"),
            format!("-c osgiUpdate -sr {sr} -g MyGrid -ms MyMapSet -> ok"),
            "-c resumeBalancing -g MyGrid -ms MyMapSet -> ok".into(),
        ]
    );
}

#[test]
fn a_failed_osgi_update_keeps_ranking_1_uninstalls_the_new_bundles_and_resumes_balancing() {
    let g = Grid::new(18910);
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
    assert_eq!(g.map_set()["updates"], 0);
    for i in 1..=3 {
        assert_eq!(
            g.bundles(i),
            vec![("1.0.0".to_string(), "Active".to_string())],
            "server{i}: the new bundle is stopped and uninstalled, the old one runs"
        );
        assert!(!g
            .path()
            .join(format!("nodes/server{i}/bundles/grid-plugins-1.1.0.jar"))
            .exists());
    }
    let commands = g.commands();
    let resumed = commands
        .iter()
        .rposition(|c| c.starts_with("-c resumeBalancing"))
        .expect("balancing resumed");
    let failed = commands
        .iter()
        .position(|c| c.starts_with("-c osgiUpdate") && c.contains("-> failed"))
        .expect("the update failed");
    assert!(resumed > failed, "{commands:?}");
}

#[test]
fn kill_9_while_balancing_is_suspended_then_resume_updates_exactly_once() {
    let g = Grid::new(18920);
    g.kill_mid_update();
    let o = g.run(&["resume", "1"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("not updated again"), "{out}");
    g.assert_grid(2);
    assert_eq!(
        g.map_set()["updates"],
        1,
        "the update happened exactly once"
    );
    let applied = g
        .commands()
        .iter()
        .filter(|c| c.starts_with("-c osgiUpdate") && c.ends_with("-> ok"))
        .count();
    assert_eq!(applied, 1);
    for i in 1..=3 {
        assert_eq!(
            g.bundles(i),
            vec![("1.1.0".to_string(), "Active".to_string())]
        );
    }
}

#[test]
fn kill_9_mid_update_then_rollback_restores_ranking_1_and_resumes_balancing() {
    let g = Grid::new(18940);
    g.kill_mid_update();
    let o = g.run(&["rollback", "1"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("rolled-back"), "{out}");
    // The undo of suspend-balancing found ranking 2 active and went back before resuming.
    g.assert_grid(1);
    assert_eq!(g.map_set()["updates"], 2);
    for i in 1..=3 {
        assert_eq!(
            g.bundles(i),
            vec![("1.0.0".to_string(), "Active".to_string())]
        );
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
    let g = Grid::new(18950);
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
    let g = Grid::new(18930);
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
            "service mySerializerServiceFactory has ranking 1, not higher than the active 1 in MyGrid/MyMapSet",
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
        assert_eq!(
            g.bundles(i),
            vec![("1.0.0".to_string(), "Active".to_string())]
        );
    }
    // The adapter reaches xscmd only through the grant: without it, preflight names it.
    g.use_bundle(
        "good.jar",
        "1.1.0",
        &[(SERVICES[0], "2"), (SERVICES[1], "2")],
    );
    let xscmd = g.path().join("bin/xscmd").display().to_string();
    g.set_spec(&format!(", \"{xscmd}\"]"), "]");
    let out = text(&g.run(&["run", &g.spec()]));
    assert!(out.contains("[grants] exec"), "{out}");
    assert!(out.contains(&xscmd), "{out}");
}

#[test]
fn osgi_grid_passes_the_conformance_run() {
    let g = Grid::new(18960);
    let report = g.conformance("osgi_grid.wasm", &[]);
    assert!(report.contains("put the targets back"), "{report}");
}
