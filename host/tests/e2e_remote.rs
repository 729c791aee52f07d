//! Remote targets over real OpenSSH: sshd servers on loopback (one per "host", own port,
//! host key and alias in a generated ssh_config), release-dir nodes spread over them, the
//! steps run by `cutover agent --stdio` through `ssh`.

mod common;

use common::sshd::SshHosts;
use common::*;
use std::path::PathBuf;

/// A node-sim fleet of `n` nodes whose targets live on `hosts` (round robin), reached with
/// the generated ssh_config; the agent keeps its cache in the fleet's folder.
struct RemoteFleet {
    fleet: SimFleet,
    hosts: SshHosts,
}

/// An `[ssh]` table for `hosts` whose agents see `real` at `view` (a bind mount in their
/// own mount namespace) and keep their cache under `real`.
fn ssh_table(hosts: &SshHosts, real: &std::path::Path, view: &std::path::Path) -> String {
    format!(
        "\n[ssh]\noptions = [\"-F\", \"{}\"]\nagent = \"unshare -m sh -c 'mount --bind {} {} && exec \\\"$@\\\"' sh {}\"\ncache = \"{}\"\n",
        hosts.config().display(),
        real.display(),
        view.display(),
        cutover().display(),
        real.join("agent-cache/cutover-agent").display(),
    )
}

impl RemoteFleet {
    fn new(n: usize, hosts: usize, base_port: u16) -> RemoteFleet {
        let hosts = SshHosts::start(hosts);
        let fleet = SimFleet::build(
            "node-sim",
            &[
                "--nodes",
                &n.to_string(),
                "--base-port",
                &base_port.to_string(),
            ],
        );
        let names = hosts.names();
        let spec = fleet.path().join("rollout.toml");
        let mut text = std::fs::read_to_string(&spec).unwrap();
        for i in 1..=n {
            let id = format!("id = \"node-{i:02}\"");
            let host = &names[(i - 1) % names.len()];
            text = text.replacen(&id, &format!("{id}\nhost = \"{host}\""), 1);
        }
        // The spec names the nodes' files under `remote-view/`, which is empty here: only
        // the agents see the fleet there (a bind mount in their own mount namespace), so a
        // controller that read or wrote a target's files itself would fail.
        let root = fleet.path().display().to_string();
        let view = fleet.path().join("remote-view");
        std::fs::create_dir(&view).unwrap();
        text = text.replace(&format!("\"{root}/"), &format!("\"{}/", view.display()));
        text.push_str(&ssh_table(&hosts, &fleet.path(), &view));
        std::fs::write(&spec, text).unwrap();
        RemoteFleet { fleet, hosts }
    }

    fn node(&self, i: usize) -> PathBuf {
        self.fleet.path().join("nodes").join(format!("node-{i:02}"))
    }

    fn current(&self, i: usize) -> String {
        std::fs::read_to_string(self.node(i).join("current/VERSION"))
            .unwrap()
            .trim()
            .to_string()
    }
}

#[test]
fn twelve_nodes_on_three_hosts_are_updated_through_their_agents() {
    let f = RemoteFleet::new(12, 3, 23200);
    f.fleet.set_spec("\n[ssh]\n", "\n[ssh]\nconnections = 2\n");
    let o = f.fleet.run(&["plan", &f.fleet.spec()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("on host-1: node-01, node-04, node-07, node-10"),
        "{}",
        text(&o)
    );
    let o = f.fleet.run(&["-v", "run", &f.fleet.spec()]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for i in 1..=12 {
        assert_eq!(f.current(i), "2.0.0", "node {i}");
        assert_eq!(node_health(&f.node(i)), "version 2.0.0 ok", "node {i}");
    }
    // Each host's agent answered the handshake and keeps the plugin by its digest.
    for h in f.hosts.names() {
        assert!(out.contains(&format!("{h}: cutover ")), "{out}");
        // `plan` and `run` each opened `connections = 2` sessions to every host.
        let log = f.hosts.log(&h);
        assert_eq!(log.matches("Accepted publickey").count(), 4, "{h}: {log}");
    }
    let cached: Vec<_> =
        std::fs::read_dir(f.fleet.path().join("agent-cache/cutover-agent/plugins"))
            .unwrap()
            .collect();
    assert_eq!(
        cached.len(),
        1,
        "one plugin, sent once per host and stored by digest"
    );
}

#[test]
fn unreachable_hosts_and_changed_host_keys_are_refused_before_anything_runs() {
    let mut f = RemoteFleet::new(6, 3, 23300);
    f.hosts.stop("host-2");
    f.hosts.change_host_key("host-3");
    let o = f.fleet.run(&["run", &f.fleet.spec()]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(
        out.contains("2 of 3 hosts cannot be used; nothing was touched"),
        "{out}"
    );
    assert!(out.contains("host `host-2`"), "{out}");
    assert!(
        out.contains("host `host-3`: no agent answered: its host key is unknown or changed"),
        "{out}"
    );
    for i in 1..=6 {
        assert_eq!(f.current(i), "1.0.0", "node {i} was touched");
        assert!(
            !f.node(i).join(".cutover-lease").exists(),
            "node {i} was leased"
        );
    }
}

/// The pids of this fleet's agents (their cache is in the fleet's folder).
fn agents_of(f: &RemoteFleet) -> Vec<u32> {
    let cache = f.fleet.path().join("agent-cache").display().to_string();
    processes_with("--stdio")
        .into_iter()
        .filter(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmd = String::from_utf8_lossy(&cmd);
            // The agent itself, not the ssh client that started it.
            cmd.contains("agent") && cmd.contains(&cache) && !cmd.starts_with("ssh")
        })
        .collect()
}

/// Kill this fleet's agents once node-01's `health` step is in flight (it polls while
/// node-01 reports unhealthy), then let node-01 become healthy.
fn kill_agents_during_health(f: &RemoteFleet) -> std::process::Child {
    f.fleet
        .set_spec("health-timeout = 5", "health-timeout = 120");
    std::fs::write(f.node(1).join("fail-health"), "2.0.0").unwrap();
    let child = f.fleet.spawn_run();
    let journal = f.fleet.journal();
    wait_for(
        "node-01's health step in flight",
        std::time::Duration::from_secs(60),
        || in_flight(&journal).contains(&("node-01".to_string(), "health".to_string())),
    );
    let agents = agents_of(f);
    assert!(!agents.is_empty(), "no agent of this fleet runs");
    for pid in agents {
        let _ = std::process::Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status();
    }
    std::fs::remove_file(f.node(1).join("fail-health")).unwrap();
    child
}

/// Every node ends on 2.0.0, each stopped and started exactly once.
fn assert_each_once(f: &RemoteFleet, n: usize) {
    for i in 1..=n {
        assert_eq!(f.current(i), "2.0.0", "node {i}");
        let log = lines(&f.node(i).join("sim.log"));
        let count = |l: &str| log.iter().filter(|x| *x == l).count();
        assert_eq!(count("stop 1.0.0"), 1, "node {i}: {log:?}");
        assert_eq!(count("start 2.0.0"), 1, "node {i}: {log:?}");
    }
}

#[test]
fn an_idempotent_step_whose_agent_dies_runs_again_after_a_reconnect() {
    let f = RemoteFleet::new(1, 1, 23450);
    let mut child = kill_agents_during_health(&f);
    let status = wait_exit(&mut child, std::time::Duration::from_secs(90)).expect("the run ends");
    assert_eq!(status.code(), Some(0), "the run goes on after reconnecting");
    let s = status_json(&f.fleet.journal(), 1);
    assert_eq!(s["status"], "completed", "{s}");
    assert_each_once(&f, 1);
}

#[test]
fn an_agent_lost_mid_step_is_a_crash_and_resume_finishes_every_node_once() {
    let f = RemoteFleet::new(4, 2, 23400);
    let mut child = kill_agents_during_health(&f);
    let journal = f.fleet.journal();
    let status = wait_exit(&mut child, std::time::Duration::from_secs(90)).expect("the run ends");
    // Steps that may run again did so on a new session; a non-idempotent one in flight
    // (stop, start) has an unknown outcome: the run ends interrupted, like after a crash.
    if status.code() == Some(3) {
        let s = status_json(&journal, 1);
        assert_eq!(s["status"], "interrupted", "{s}");
        let reason = s["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("the connection was lost during step `")
                && reason.contains("is not idempotent: its outcome is unknown"),
            "{reason}"
        );
        // resume asks about each non-idempotent step in flight; the answer comes from the
        // node itself, as an operator would check it.
        let mut o = f.fleet.run(&["resume", "1"]);
        if o.status.code() == Some(3) {
            let mut answers = Vec::new();
            for (target, step) in in_flight(&journal) {
                let i: usize = target.trim_start_matches("node-").parse().unwrap();
                let log = lines(&f.node(i).join("sim.log"));
                let done = match step.as_str() {
                    "stop" => log.iter().any(|l| l == "stop 1.0.0"),
                    "start" => log.iter().any(|l| l == "start 2.0.0"),
                    _ => continue,
                };
                answers.push("--in-flight".to_string());
                answers.push(format!("{target}={}", if done { "done" } else { "retry" }));
            }
            assert!(
                !answers.is_empty(),
                "paused without a question: {}",
                text(&o)
            );
            let mut args = vec!["resume", "1"];
            args.extend(answers.iter().map(String::as_str));
            o = f.fleet.run(&args);
        }
        assert!(o.status.success(), "{}", text(&o));
    } else {
        assert_eq!(status.code(), Some(0), "{status:?}");
    }
    assert_each_once(&f, 4);
}

/// The hostile adapter's fleet with its three targets on two sshd hosts.
fn hostile_remote(attack: &str, hosts: &SshHosts) -> common::hostile::Hostile {
    let h = common::hostile::Hostile::new(attack);
    // The agent is uploaded: the hosts lack it.
    let cache = h.tmp.join("agent-cache");
    h.label("t1", "host", "host-1")
        .label("t2", "host", "host-2")
        .label("t3", "host", "host-1")
        .table(&format!(
            "[ssh]\noptions = [\"-F\", \"{}\"]\ncache = \"{}\"\n",
            hosts.config().display(),
            cache.display(),
        ))
}

#[test]
fn the_sandbox_holds_on_the_remote_host_and_denials_name_the_grant() {
    let hosts = SshHosts::start(2);
    let h = hostile_remote("read-outside", &hosts);
    let r = h.attack();
    r.assert_detail(&["/etc/passwd", "[grants] dirs"]);
    assert!(!r.all().contains("root:x:0:0"), "{}", r.all());
    // The hosts lacked the agent: this very binary was uploaded into their cache, once.
    let bin: Vec<String> = std::fs::read_dir(h.tmp.join("agent-cache/bin"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(bin.len(), 1, "{bin:?}");
    assert!(bin[0].starts_with("cutover-"), "{bin:?}");
    let h = hostile_remote("climb", &hosts);
    std::fs::write(h.tmp.join("granted/secret.txt"), "hidden").unwrap();
    let r = h.attack();
    r.assert_detail(&["secret.txt", "[grants] dirs"]);
    h.assert_nowhere(&r, "hidden");
}

#[test]
fn a_first_group_failure_rolls_back_on_the_remote_hosts_as_locally() {
    let f = RemoteFleet::new(6, 3, 23500);
    std::fs::write(f.node(2).join("fail-health"), "2.0.0").unwrap();
    let o = f.fleet.run(&["run", &f.fleet.spec()]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let s = status_json(&f.fleet.journal(), 1);
    assert_eq!(s["status"], "rolled-back", "{s}");
    for i in 1..=6 {
        assert_eq!(f.current(i), "1.0.0", "node {i}");
        assert_eq!(node_health(&f.node(i)), "version 1.0.0 ok", "node {i}");
    }
}

#[test]
fn a_host_that_never_comes_back_fails_its_targets_and_rollback_finishes_once_it_is_back() {
    let mut f = RemoteFleet::new(4, 2, 23550);
    // node-02 (host-2) polls its health until host-2 goes away; its budget is short.
    f.fleet
        .set_spec("health-timeout = 5", "health-timeout = 120");
    f.fleet.set_spec(
        "\n[grants]",
        "\n[adapter.timeouts]\nhealth = \"15s\"\n\n[grants]",
    );
    std::fs::write(f.node(2).join("fail-health"), "2.0.0").unwrap();
    let mut child = f.fleet.spawn_run();
    let journal = f.fleet.journal();
    // node-04, also on host-2, is updated by then (its health step is done).
    let node_04_done = |j: &std::path::Path| {
        journal_query(
            j,
            "SELECT count(*) FROM steps WHERE target = 'node-04' AND step = 'health' AND state = 'ok'",
        ) == [["1"]]
    };
    wait_for(
        "node-02's health step in flight, node-04 updated",
        std::time::Duration::from_secs(60),
        || {
            in_flight(&journal).contains(&("node-02".to_string(), "health".to_string()))
                && node_04_done(&journal)
        },
    );
    f.hosts.stop("host-2");
    let status = wait_exit(&mut child, std::time::Duration::from_secs(90)).expect("the run ends");
    assert_eq!(status.code(), Some(2), "{status:?}");
    let s = status_json(&journal, 1);
    // The first group failed on host-2: host-1's nodes are rolled back, host-2's wait for it.
    for i in [1, 3] {
        assert_eq!(f.current(i), "1.0.0", "node {i}: {s}");
    }
    let lost = s["lost_hosts"].as_array().unwrap();
    assert_eq!(lost.len(), 1, "{s}");
    assert_eq!(lost[0]["host"], "host-2");
    assert_eq!(
        lost[0]["targets"],
        serde_json::json!(["node-02", "node-04"])
    );
    let states: Vec<(String, String)> = s["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["id"].to_string(), t["state"].to_string()))
        .collect();
    for t in ["node-02", "node-04"] {
        assert!(
            states.contains(&(format!("\"{t}\""), "\"needs-attention\"".into())),
            "{states:?}"
        );
    }
    let o = f.fleet.run(&["status"]);
    let out = text(&o);
    assert!(
        out.contains("host `host-2` lost at")
            && out.contains("its targets: node-02, node-04")
            && out.contains("`cutover rollback 1`")
            && out.contains("`cutover rollback 1 --without-host host-2`"),
        "{out}"
    );
    // Without host-2: a rollback goes on with the other hosts at once (nothing is left to
    // undo there) and leaves host-2's targets for later; a host not in the rollout is refused.
    let o = f.fleet.run(&["rollback", "1", "--without-host", "host-9"]);
    assert!(
        text(&o).contains("--without-host host-9: no target of this rollout is on host `host-9`"),
        "{}",
        text(&o)
    );
    let o = f.fleet.run(&["rollback", "1", "--without-host", "host-2"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let s = status_json(&journal, 1);
    assert_eq!(s["lost_hosts"][0]["host"], "host-2", "{s}");
    assert!(
        text(&o).contains("left out by the operator (--without-host)"),
        "{}",
        text(&o)
    );
    // host-2 is back: what status advised finishes the rollback there, each undo once.
    f.hosts.restart("host-2");
    std::fs::remove_file(f.node(2).join("fail-health")).unwrap();
    let o = f.fleet.run(&["rollback", "1"]);
    assert!(o.status.code() == Some(2), "{}", text(&o));
    let s = status_json(&journal, 1);
    assert_eq!(s["status"], "rolled-back", "{s}");
    assert_eq!(s["lost_hosts"], serde_json::json!([]), "{s}");
    for i in 1..=4 {
        assert_eq!(f.current(i), "1.0.0", "node {i}");
        assert_eq!(node_health(&f.node(i)), "version 1.0.0 ok", "node {i}");
        let log = lines(&f.node(i).join("sim.log"));
        // Started on 1.0.0 by the simulator, then each step and undo once.
        assert_eq!(
            log,
            [
                "start 1.0.0",
                "stop 1.0.0",
                "start 2.0.0",
                "stop 2.0.0",
                "start 1.0.0"
            ],
            "node {i}"
        );
    }
}

#[test]
fn fleet_steps_run_on_the_host_the_spec_names() {
    let hosts = SshHosts::start(2);
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real");
    let view = dir.path().join("view");
    std::fs::create_dir_all(&real).unwrap();
    std::fs::create_dir_all(&view).unwrap();
    let spec = dir.path().join("fleet.toml");
    let mut text_spec = fleet_fixture_spec(
        "grouped",
        "group-size = 1",
        "fleet-host = \"host-2\"",
        "",
        &view,
    );
    for t in ["t1", "t2"] {
        text_spec.push_str(&format!("[[targets]]\nid = \"{t}\"\nhost = \"host-1\"\n"));
    }
    text_spec.push_str(&ssh_table(&hosts, &real, &view));
    std::fs::write(&spec, text_spec).unwrap();
    let journal = dir.path().join("j.db");
    let o = run(&journal, &["plan", spec.to_str().unwrap()]);
    assert!(text(&o).contains("fleet steps on host-2"), "{}", text(&o));
    let o = run(&journal, &["-v", "run", spec.to_str().unwrap()]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    // host-2 carries no target: it was reached for the fleet steps alone.
    assert!(out.contains("host-2: cutover "), "{out}");
    // Every step ran where the agents see `view`: the controller's own `view` is empty.
    assert_eq!(std::fs::read_dir(&view).unwrap().count(), 0);
    let log = lines(&real.join("steps.log"));
    assert_eq!(log, FLEET_FIXTURE_RUN, "{out}");
}

#[test]
fn the_remote_talend_demo_passes_the_simulators_own_verification() {
    let dir = tempfile::tempdir().unwrap();
    plugins();
    let ssh_hosts = simulator("simkit").with_file_name("ssh-hosts");
    let o = std::process::Command::new(root().join("examples/demo"))
        .arg("--remote")
        .env("CUTOVER", cutover())
        .env("TALEND_SIM", simulator("talend-sim"))
        .env("SSH_HOSTS", &ssh_hosts)
        .env("DEMO_DIR", dir.path().join("demo"))
        .env("DEMO_PORT", "23700")
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for h in 1..=3 {
        let on = format!("on host-{h}: re-0{h}, re-0{}", h + 3);
        assert!(out.contains(&on), "{on}: {out}");
    }
    let verified = out.lines().filter(|l| l.starts_with("ok   re-0")).count();
    assert_eq!(verified, 6, "{out}");
    assert!(!out.lines().any(|l| l.starts_with("FAIL")), "{out}");
    // The agents were uploaded to the hosts (this binary, by its sha256), and the servers
    // are gone with the demo.
    let bin = dir.path().join("demo/hosts/agent-cache/bin");
    assert_eq!(std::fs::read_dir(&bin).unwrap().count(), 1);
    assert!(processes_with(&dir.path().join("demo/hosts").display().to_string()).is_empty());
}
