//! talend-remote-engine on a simulated fleet of 6 engines (management API on loopback, real
//! engine processes, generated data trees), through the real binary and plugins.

mod common;

use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const OLD: &str = "Talend-RE-2.13.2";
const NEW: &str = "Talend-RE-2.13.9";

/// A simulated Talend fleet of 6 engines.
struct Fleet(SimFleet);

impl std::ops::Deref for Fleet {
    type Target = SimFleet;
    fn deref(&self) -> &SimFleet {
        &self.0
    }
}

impl Fleet {
    fn new(port: u16, tasks: usize) -> Fleet {
        Fleet::with(port, tasks, &[])
    }

    /// A fleet built with more `talend-sim fleet` arguments.
    fn with(port: u16, tasks: usize, more: &[&str]) -> Fleet {
        let (tasks, port) = (tasks.to_string(), port.to_string());
        let mut args = vec![
            "--engines",
            "6",
            "--tasks",
            &tasks,
            "--port",
            &port,
            "--unpair-wait",
            "1",
        ];
        args.extend_from_slice(more);
        Fleet(SimFleet::build("talend-sim", &args))
    }

    fn engine(&self, i: usize) -> PathBuf {
        self.path().join("engines").join(format!("re-{i:02}"))
    }

    fn old(&self, i: usize) -> PathBuf {
        self.engine(i).join(OLD)
    }

    fn new_root(&self, i: usize) -> PathBuf {
        self.engine(i).join(NEW)
    }

    /// The management API's state.
    fn api(&self) -> Value {
        let s = std::fs::read_to_string(self.path().join("api/state.json")).unwrap();
        serde_json::from_str(&s).unwrap()
    }

    /// The API's entry for engine `re-0i`, and its id.
    fn entry(&self, i: usize) -> (String, Value) {
        let name = format!("re-{i:02}");
        let api = self.api();
        let (id, e) = api["engines"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(_, e)| e["name"] == name.as_str())
            .unwrap();
        (id.clone(), e.clone())
    }

    fn requests(&self) -> Vec<String> {
        lines(&self.path().join("api/requests.log"))
    }

    fn deletes(&self, i: usize) -> Vec<String> {
        let (id, _) = self.entry(i);
        self.requests()
            .into_iter()
            .filter(|l| l.starts_with(&format!("DELETE /processing/runtimes/remote-engines/{id}/")))
            .collect()
    }

    /// The simulator's record of starts and stops of engine `i`.
    fn sim_log(&self, i: usize) -> Vec<String> {
        lines(&self.engine(i).join("sim.log"))
    }

    fn count(&self, i: usize, line: &str) -> usize {
        self.sim_log(i).iter().filter(|l| *l == line).count()
    }

    fn key_file(&self, root: &Path) -> String {
        std::fs::read_to_string(root.join("etc/preauthorized.key.cfg")).unwrap()
    }

    /// Engine `i` runs on the new install, paired with the key the API issued for it.
    fn assert_upgraded(&self, i: usize, tasks: usize) {
        self.assert_upgraded_stopping(i, tasks, 1..=1)
    }

    /// [`assert_upgraded`], the old engine stopped a number of times in `stops` (an
    /// idempotent `stop-old` in flight at a crash runs again).
    fn assert_upgraded_stopping(
        &self,
        i: usize,
        tasks: usize,
        stops: std::ops::RangeInclusive<usize>,
    ) {
        let (_, e) = self.entry(i);
        let new = self.new_root(i);
        assert_eq!(e["status"], "PAIRED", "re-{i:02}: {e}");
        assert_eq!(
            e["installDirectory"],
            new.display().to_string(),
            "re-{i:02}"
        );
        assert_eq!(e["version"], "2.13.9");
        let keys = e["keys"].as_array().unwrap();
        assert_eq!(
            keys.len(),
            2,
            "re-{i:02}: one key issued by the upgrade: {keys:?}"
        );
        assert_eq!(
            e["pairedKey"], keys[1],
            "re-{i:02} paired with the issued key"
        );
        let issued = keys[1].as_str().unwrap();
        assert!(self
            .key_file(&new)
            .contains(&format!("remote.engine.pre.authorized.key={issued}")));
        let all = e["tasks"].as_array().unwrap();
        assert_eq!(all.len(), tasks, "re-{i:02}");
        assert!(
            all.iter()
                .all(|t| t["status"] == "RUNNING" && t["logsAvailable"] == true),
            "re-{i:02}: every task runs on the new engine with its logs"
        );
        let deletes = self.deletes(i);
        assert_eq!(deletes.len(), 1, "re-{i:02}: {deletes:?}");
        assert!(
            deletes[0].contains("keepOsgiDeployments=true")
                && deletes[0].contains("keepMicroserviceDeployments=true"),
            "{}",
            deletes[0]
        );
        assert!(
            stops.contains(&self.count(i, &format!("stop {OLD}"))),
            "{:?}",
            self.sim_log(i)
        );
        assert_eq!(
            self.count(i, &format!("start {NEW}")),
            1,
            "{:?}",
            self.sim_log(i)
        );
        self.assert_data_moved(i);
    }

    /// Every file of the old `data/dsrunner` and `data/cls` is in the new install: path
    /// fields point into the new root (both spellings) and differ from the old file by that
    /// prefix only; every other file has the same checksum and mode.
    fn assert_data_moved(&self, i: usize) {
        let (old, new) = (self.old(i), self.new_root(i));
        let (o, n) = (old.display().to_string(), new.display().to_string());
        let win = |s: &str| s.replace('/', "\\\\");
        let mut files = Vec::new();
        for sub in ["data/dsrunner", "data/cls"] {
            walk(&old.join(sub), &mut files);
        }
        let (mut moved, mut windows, mut same) = (0, 0, 0);
        for f in &files {
            let twin = new.join(f.strip_prefix(&old).unwrap());
            let name = f.file_name().unwrap().to_string_lossy().to_string();
            let field = match () {
                _ if name == ".metadata" => Some("artifactFile"),
                _ if name.ends_with("-state.dat") => Some("currentFilePath"),
                _ => None,
            };
            let (a, b) = (std::fs::read(f).unwrap(), std::fs::read(&twin).unwrap());
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode();
            assert_eq!(mode(f), mode(&twin), "{}", twin.display());
            match field {
                Some(field) => {
                    let v: Value = serde_json::from_slice(&b).unwrap();
                    let value = v[field].as_str().unwrap().replace('\\', "/");
                    assert!(
                        value.starts_with(&format!("{n}/")),
                        "{}: {value}",
                        twin.display()
                    );
                    let old_text = String::from_utf8(a).unwrap();
                    let is_windows = old_text.contains(&format!("\"{field}\":\"{}\\\\", win(&o)));
                    windows += usize::from(is_windows);
                    let want = old_text
                        .replace(
                            &format!("\"{field}\":\"{o}/"),
                            &format!("\"{field}\":\"{n}/"),
                        )
                        .replace(
                            &format!("\"{field}\":\"{}\\\\", win(&o)),
                            &format!("\"{field}\":\"{}\\\\", win(&n)),
                        );
                    assert_eq!(String::from_utf8(b).unwrap(), want, "{}", twin.display());
                    moved += 1;
                }
                None => {
                    assert_eq!(Sha256::digest(&a), Sha256::digest(&b), "{}", twin.display());
                    same += 1;
                }
            }
        }
        assert!(
            moved > 0 && windows > 0 && same > moved,
            "{moved} {windows} {same}"
        );
        // Both places of `.metadata` files: `data/dsrunner/exec/osgi` and the seed example's
        // `data/dsrunner/osgi`.
        let in_osgi = files
            .iter()
            .filter(|f| f.starts_with(old.join("data/dsrunner/osgi")))
            .count();
        assert!(in_osgi > 0, "no .metadata under data/dsrunner/osgi");
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

#[test]
fn six_engines_with_200_tasks_upgrade_keeping_every_task_and_byte() {
    let f = Fleet::new(18510, 200);
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    for i in 1..=6 {
        f.assert_upgraded(i, 200);
    }
    // The journal keeps the keys; nothing the operator sees shows them.
    let status = text(&f.run(&["status", "1", "--json"]));
    for i in 1..=6 {
        let (_, e) = f.entry(i);
        let key = e["keys"][1].as_str().unwrap();
        assert!(
            !out.contains(key) && !status.contains(key),
            "key of re-{i:02} shown"
        );
    }
    assert!(status.contains("«redacted»"));
}

#[test]
fn kill_9_between_unpair_and_pairing_then_resume_pairs_with_the_journaled_key() {
    let f = Fleet::new(18520, 60);
    // A longer settle gives the kill a wide window after the unpairing.
    f.set_spec("unpair-wait = \"1\"", "unpair-wait = \"4\"");
    let mut child = f.spawn_run();
    wait_for("the first wave to settle", Duration::from_secs(60), || {
        f.journal().exists() && in_flight(&f.journal()).iter().any(|(_, s)| s == "settle")
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // Unpaired engines whose new key exists only in the API's answer and cutover's journal.
    let unpaired: Vec<usize> = (1..=6)
        .filter(|i| f.entry(*i).1["status"] == "NOT_PAIRED")
        .collect();
    assert!(!unpaired.is_empty());
    let issued: Vec<String> = unpaired
        .iter()
        .map(|i| f.entry(*i).1["key"].as_str().unwrap().to_string())
        .collect();
    for (i, key) in unpaired.iter().zip(&issued) {
        assert!(!f.key_file(&f.new_root(*i)).contains(key.as_str()));
    }

    let o = f.run(&["resume", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=6 {
        f.assert_upgraded(i, 60);
    }
    for (i, key) in unpaired.iter().zip(&issued) {
        let (_, e) = f.entry(*i);
        assert_eq!(e["pairedKey"].as_str().unwrap(), key, "re-{i:02}");
    }
}

#[test]
fn kill_9_before_the_unpair_answer_lands_then_resume_reads_the_key_back() {
    let f = Fleet::new(18570, 20);
    // The unpairing is done but its answer comes late: cutover dies before it lands.
    std::fs::write(f.path().join("api/unpair-answer-delay-ms"), "4000").unwrap();
    let mut child = f.spawn_run();
    wait_for(
        "an unpairing done but unanswered",
        Duration::from_secs(60),
        || (1..=6).any(|i| f.entry(i).1["status"] == "NOT_PAIRED"),
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::fs::remove_file(f.path().join("api/unpair-answer-delay-ms")).unwrap();
    let unpaired: Vec<usize> = (1..=6)
        .filter(|i| f.entry(*i).1["status"] == "NOT_PAIRED")
        .collect();
    // The engines confirm the unpairing in their logs before cutover comes back.
    for i in &unpaired {
        let log = f.old(*i).join("data/log/tesb.log");
        wait_for("the engine's confirmation", Duration::from_secs(30), || {
            std::fs::read_to_string(&log).is_ok_and(|t| t.contains("unpaired from Talend"))
        });
    }
    let o = f.run(&["resume", "1"]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("already unpaired"), "{out}");
    for i in 1..=6 {
        // One DELETE each: the re-run read the key back from the engine entry.
        f.assert_upgraded(i, 20);
    }
}

#[test]
fn an_unconfirmed_unpairing_fails_after_confirm_timeout_and_the_old_engine_is_paired_again() {
    let f = Fleet::new(18580, 10);
    f.set_spec(
        "unpair-wait = \"1\"",
        "unpair-wait = \"1\"\nconfirm-timeout = \"2\"\nunpair-confirm = \"log\"\nunpair-log-line = \"never written\"",
    );
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("no confirmation of the unpairing after"),
        "{out}"
    );
    assert!(out.contains("s; waiting for \"never written\" in"), "{out}");
    // re-01 is back on its old engine, paired with the key its unpairing issued.
    let (_, e) = f.entry(1);
    assert_eq!(e["status"], "PAIRED", "{e}");
    assert_eq!(e["installDirectory"], f.old(1).display().to_string());
    assert_eq!(e["pairedKey"], e["keys"][1]);
}

#[test]
fn engine_3_fails_to_start_is_rolled_back_and_the_fleet_continues() {
    let f = Fleet::new(18530, 40);
    std::fs::write(f.new_root(3).join("fail-start"), "2.13.9").unwrap();
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("completed-with-failures"), "{out}");
    assert!(out.contains("re-03 failed"), "{out}");
    for i in [1, 2, 4, 5, 6] {
        f.assert_upgraded(i, 40);
    }
    // re-03: the old engine runs again, paired with the key the unpairing issued.
    let (_, e) = f.entry(3);
    assert_eq!(e["status"], "PAIRED", "{e}");
    assert_eq!(e["installDirectory"], f.old(3).display().to_string());
    assert_eq!(e["pairedKey"], e["keys"][1]);
    let issued = e["keys"][1].as_str().unwrap();
    assert!(f.key_file(&f.old(3)).contains(issued));
    assert!(e["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["status"] == "RUNNING"));
    assert_eq!(
        f.sim_log(3),
        vec![
            format!("start {OLD}"),
            format!("stop {OLD}"),
            format!("stop-not-running {NEW}"),
            "start-failed Talend-RE-2.13.9".to_string(),
            // The documented re-pairing: stop (it is stopped), key, start.
            format!("stop-not-running {OLD}"),
            format!("start {OLD}"),
        ]
    );
    let s = status_json(&f.journal(), 1);
    assert_eq!(s["status"], "completed-with-failures");
}

#[test]
fn preflight_stops_before_anything_runs() {
    let f = Fleet::new(18540, 10);
    // The new install of re-04 is missing.
    std::fs::rename(f.new_root(4), f.engine(4).join("elsewhere")).unwrap();
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("preflight refused the change before anything ran"),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "the new installation {} is missing",
            f.new_root(4).display()
        )),
        "{out}"
    );
    std::fs::rename(f.engine(4).join("elsewhere"), f.new_root(4)).unwrap();

    // The old engine does not match the spec: a version the API does not report...
    f.set_spec("from-version = \"2.13.2\"", "from-version = \"2.12.0\"");
    let out = text(&f.run(&["run", &f.spec()]));
    assert!(
        out.contains("on version 2.13.2, but the spec says from-version = \"2.12.0\""),
        "{out}"
    );
    f.set_spec("from-version = \"2.12.0\"", "from-version = \"2.13.2\"");
    // ... or an engine id the console does not know.
    let (id2, _) = f.entry(2);
    f.set_spec(&format!("engine-id = \"{id2}\""), "engine-id = \"0000\"");
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("remote-engines/0000: 404") && out.contains("check the target's `engine-id`"),
        "{out}"
    );
    // Nothing was touched: no unpairing, every old engine still paired and running.
    assert!(f.requests().iter().all(|l| !l.starts_with("DELETE")));
    for i in 1..=6 {
        assert_eq!(f.entry(i).1["status"], "PAIRED");
        assert_eq!(f.sim_log(i), vec![format!("start {OLD}")]);
    }
}

#[test]
fn the_adapter_reaches_nothing_outside_its_two_roots() {
    let f = Fleet::new(18550, 10);
    // Even with the whole fleet folder granted, the adapter gets only what it requests.
    let engines = f.path().join("engines").display().to_string();
    let root = f.path().display().to_string();
    f.set_spec(
        &format!("{{ path = \"{engines}\""),
        &format!("{{ path = \"{root}\""),
    );
    let o = f.run(&[
        "plugin",
        "inspect",
        "--json",
        &plugins()
            .join("talend_remote_engine.wasm")
            .display()
            .to_string(),
    ]);
    let inspect: Value = serde_json::from_slice(&o.stdout).unwrap();
    let caps = inspect["capabilities"].to_string();
    for want in [
        "{old}",
        "{old}/etc",
        "{new}",
        "{api}",
        "{old}/bin/stop",
        "{new}/bin/start",
    ] {
        assert!(caps.contains(want), "{caps}");
    }
    // A task folder of re-02 holds a .metadata that is a symbolic link out of the roots.
    let outside = f.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    let victim = outside.join("victim.metadata");
    let old2 = f.old(2).display().to_string();
    let original = format!("{{\"artifactFile\":\"{old2}/data/dsrunner/exec/osgi/x/A.kar\"}}");
    std::fs::write(&victim, &original).unwrap();
    let task = std::fs::read_dir(f.old(2).join("data/dsrunner/exec/osgi"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::remove_file(task.join(".metadata")).unwrap();
    std::os::unix::fs::symlink(&victim, task.join(".metadata")).unwrap();
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(out.contains("re-02 failed"), "{out}");
    assert!(
        out.contains("outside") && out.contains("[grants] dirs"),
        "{out}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), original);
    // The failure in the first wave rolled it back: both engines run old, paired again.
    for i in 1..=2 {
        let (_, e) = f.entry(i);
        assert_eq!(e["status"], "PAIRED");
        assert_eq!(e["installDirectory"], f.old(i).display().to_string());
    }
}

#[test]
fn kill_9_while_rewriting_paths_then_resume_leaves_every_file_right() {
    let f = Fleet::new(18560, 200);
    let mut child = f.spawn_run();
    let mut at_kill = Vec::new();
    wait_for("a rewrite", Duration::from_secs(60), || {
        at_kill = in_flight(&f.journal());
        at_kill.iter().any(|(_, s)| s == "rewrite-paths")
    });
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    // How far the rewrite had got: files already pointing at the new root.
    for (target, _) in at_kill.iter().filter(|(_, s)| s == "rewrite-paths") {
        let i: usize = target.trim_start_matches("re-").parse().unwrap();
        let mut files = Vec::new();
        walk(&f.new_root(i).join("data/dsrunner/exec/osgi"), &mut files);
        let new = f.new_root(i).display().to_string();
        let done = files
            .iter()
            .filter(|p| p.ends_with(".metadata"))
            .filter(|p| std::fs::read_to_string(p).unwrap().contains(&new))
            .count();
        eprintln!("killed while rewriting {target}: {done} of 200 .metadata rewritten");
    }
    let o = f.run(&["resume", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    for i in 1..=6 {
        // `stop-old` is idempotent: one in flight at the kill ran again on resume.
        let restopped = at_kill.contains(&(format!("re-{i:02}"), "stop-old".to_string()));
        f.assert_upgraded_stopping(i, 200, 1..=if restopped { 2 } else { 1 });
    }
}

#[test]
fn talend_remote_engine_passes_the_conformance_run() {
    let f = Fleet::new(18590, 10);
    // Left out of the comparisons: the engine's runtime folder, and the key file, because
    // the console issues a new pre-authorized key at every unpairing (the old one cannot
    // come back; the undo writes the new one so the old engine pairs again).
    let report = f.conformance(
        "talend_remote_engine.wasm",
        &[
            "--ignore",
            "**/run",
            "--ignore",
            "**/run/**",
            "--ignore",
            "**/preauthorized.key.cfg",
        ],
    );
    assert!(
        report.contains("step `unpair` on target `re-06`: its undo runs")
            && report.contains("put the targets back"),
        "{report}"
    );
}

#[test]
fn a_task_that_does_not_run_on_the_new_engine_fails_verify_and_the_engine_goes_back() {
    let f = Fleet::new(18600, 10);
    // One task of re-01 fails on the new installation: the API's newest execution says so.
    let (id, e) = f.entry(1);
    let task = e["tasks"][3]["id"].as_str().unwrap().to_string();
    std::fs::write(f.new_root(1).join("fail-task"), &task).unwrap();
    f.set_spec(
        "unpair-wait = \"1\"",
        "unpair-wait = \"1\"\nverify-timeout = \"3\"",
    );
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("the new engine is not serving its tasks")
            && out.contains(&format!("{task} (EXECUTION_FAILED: simulated failure)")),
        "{out}"
    );
    // The first wave failed: re-01 and re-02 run their old engines again, paired.
    for i in 1..=2 {
        let (_, e) = f.entry(i);
        assert_eq!(e["status"], "PAIRED", "re-{i:02}");
        assert_eq!(e["installDirectory"], f.old(i).display().to_string());
    }
    // Verify asked the Processing API, not the engine entry.
    assert!(f.requests().iter().any(|l| l.starts_with(&format!(
        "GET /processing/executables/tasks/{task}/executions"
    ))));
    let _ = id;
}

#[test]
fn an_engine_the_api_lists_no_task_on_fails_verify_unless_told_it_runs_none() {
    let f = Fleet::new(18610, 0);
    let plan = text(&f.run(&["plan", &f.spec()]));
    assert!(
        plan.contains("lists no task on engine") && plan.contains("`verify` will fail"),
        "{plan}"
    );
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("listed no task on engine") && out.contains("allow-no-tasks"),
        "{out}"
    );
    assert_eq!(status_json(&f.journal(), 1)["status"], "rolled-back");
    // Said to run none: the pairing alone is checked, and the upgrade completes.
    f.set_spec(
        "unpair-wait = \"1\"",
        "unpair-wait = \"1\"\nallow-no-tasks = \"true\"",
    );
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
}

#[test]
fn engines_running_as_services_are_stopped_and_started_through_systemctl() {
    let f = Fleet::with(18620, 10, &["--services"]);
    let o = f.run(&["run", &f.spec()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let calls = lines(&f.path().join("systemctl.log"));
    for i in 1..=6 {
        // Each engine stopped and started once in all (so never also by its bin/ scripts),
        // and each time through its unit.
        f.assert_upgraded(i, 10);
        for call in [
            format!("stop talend-remote-engine@re-{i:02}-2.13.2"),
            format!("stop talend-remote-engine@re-{i:02}-2.13.9"),
            format!("start talend-remote-engine@re-{i:02}-2.13.9"),
        ] {
            assert_eq!(
                calls.iter().filter(|c| **c == call).count(),
                1,
                "{call}: {calls:?}"
            );
        }
    }
}

#[test]
fn a_path_under_neither_root_fails_the_rewrite_instead_of_passing() {
    let f = Fleet::new(18630, 10);
    // A task of re-01 (written in the Unix form) whose .metadata points somewhere else.
    let old = f.old(1).display().to_string();
    let meta = std::fs::read_dir(f.old(1).join("data/dsrunner/exec/osgi"))
        .unwrap()
        .map(|e| e.unwrap().path().join(".metadata"))
        .find(|m| {
            std::fs::read_to_string(m)
                .is_ok_and(|t| t.contains(&format!("\"artifactFile\":\"{old}/")))
        })
        .unwrap();
    let text_meta = std::fs::read_to_string(&meta).unwrap();
    let v: Value = serde_json::from_str(&text_meta).unwrap();
    let artifact = v["artifactFile"].as_str().unwrap();
    std::fs::write(&meta, text_meta.replace(artifact, "/elsewhere/task.kar")).unwrap();
    let o = f.run(&["run", &f.spec()]);
    let out = text(&o);
    assert_eq!(o.status.code(), Some(2), "{out}");
    assert!(
        out.contains("the new engine would not find all its tasks")
            && out.contains("1 artifactFile value(s) point under neither"),
        "{out}"
    );
    let (_, e) = f.entry(1);
    assert_eq!(e["status"], "PAIRED");
    assert_eq!(e["installDirectory"], f.old(1).display().to_string());
}
