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

impl RemoteFleet {
    fn new(n: usize, hosts: usize, base_port: u16) -> RemoteFleet {
        let hosts = SshHosts::start(hosts);
        let fleet = SimFleet::build(
            "node-sim",
            &["--nodes", &n.to_string(), "--base-port", &base_port.to_string()],
        );
        let names = hosts.names();
        let spec = fleet.path().join("rollout.toml");
        let mut text = std::fs::read_to_string(&spec).unwrap();
        for i in 1..=n {
            let id = format!("id = \"node-{i:02}\"");
            let host = &names[(i - 1) % names.len()];
            text = text.replacen(&id, &format!("{id}\nhost = \"{host}\""), 1);
        }
        text.push_str(&format!(
            "\n[ssh]\noptions = [\"-F\", \"{}\"]\nagent = \"env XDG_CACHE_HOME={} {}\"\n",
            hosts.config().display(),
            fleet.path().join("agent-cache").display(),
            cutover().display()
        ));
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
    }
    let cached: Vec<_> = std::fs::read_dir(f.fleet.path().join("agent-cache/cutover-agent/plugins"))
        .unwrap()
        .collect();
    assert_eq!(cached.len(), 1, "one plugin, sent once per host and stored by digest");
}

#[test]
fn unreachable_hosts_and_changed_host_keys_are_refused_before_anything_runs() {
    let mut f = RemoteFleet::new(6, 3, 23300);
    f.hosts.stop("host-2");
    f.hosts.change_host_key("host-3");
    let o = f.fleet.run(&["run", &f.fleet.spec()]);
    let out = text(&o);
    assert!(!o.status.success(), "{out}");
    assert!(out.contains("2 of 3 hosts cannot be used; nothing was touched"), "{out}");
    assert!(out.contains("host `host-2`"), "{out}");
    assert!(out.contains("host `host-3`: no agent answered: its host key is unknown or changed"), "{out}");
    for i in 1..=6 {
        assert_eq!(f.current(i), "1.0.0", "node {i} was touched");
        assert!(!f.node(i).join(".cutover-lease").exists(), "node {i} was leased");
    }
}
