//! The per-step cost of remote targets, printed, never asserted: 1,002 no-op steps (167
//! targets × the no-op adapter's 6 steps, one at a time) run by `cutover` locally and on 4
//! real sshd servers on loopback, and 1,000 `command: /bin/true` tasks run by Ansible (with
//! pipelining) over the same servers, in the same run.
//!
//! Needs the plugins and fixtures built (see README) and, for the Ansible peer,
//! `target/bench-ansible/bin/ansible-playbook` (`python3 -m venv target/bench-ansible &&
//! target/bench-ansible/bin/pip install ansible-core`); without it that line says so.

use simkit::sshd;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TARGETS: usize = 167;
const STEPS_PER_TARGET: usize = 6;
const HOSTS: usize = 4;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A spec of `TARGETS` no-op targets, on `hosts` round robin (all local when empty).
fn spec(dir: &Path, hosts: &[String], config: &Path) -> PathBuf {
    let r = root();
    let mut s = format!(
        "[rollout]\nconcurrency = 1\n[strategy]\nplugin = \"{}\"\n[strategy.params]\ngroup-size = \"100%\"\n\
         [adapter]\nplugin = \"{}\"\n",
        r.join("plugins/target/wasm32-wasip2/release/grouped.wasm").display(),
        r.join("host/tests/fixtures/target/wasm32-wasip2/release/noop_adapter.wasm").display()
    );
    if !hosts.is_empty() {
        s.push_str(&format!(
            "[ssh]\noptions = [\"-F\", \"{}\"]\ncache = \"{}\"\n",
            config.display(),
            dir.join("agent-cache").display()
        ));
    }
    for i in 0..TARGETS {
        s.push_str(&format!("[[targets]]\nid = \"t{i:03}\"\n"));
        if !hosts.is_empty() {
            s.push_str(&format!("host = \"{}\"\n", hosts[i % hosts.len()]));
        }
    }
    let p = dir.join(if hosts.is_empty() {
        "local.toml"
    } else {
        "remote.toml"
    });
    std::fs::write(&p, s).unwrap();
    p
}

/// `cutover COMMAND SPEC` with a fresh journal; its wall time.
fn run(dir: &Path, spec: &Path, journal: &str) -> Duration {
    cutover(dir, "run", spec, journal)
}

fn cutover(dir: &Path, command: &str, spec: &Path, journal: &str) -> Duration {
    let start = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("--journal")
        .arg(dir.join(journal))
        .arg(command)
        .arg(spec)
        .output()
        .expect("cutover runs");
    let took = start.elapsed();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    took
}

/// Ansible's `command` module, `per_host` tasks on each host, pipelining on; its wall time.
fn ansible(dir: &Path, hosts: &sshd::SshHosts, per_host: usize) -> Option<Duration> {
    let playbook = root().join("target/bench-ansible/bin/ansible-playbook");
    if !playbook.exists() {
        println!(
            "  ansible: {} is missing, peer not measured",
            playbook.display()
        );
        return None;
    }
    let mut inv = String::from("[fleet]\n");
    for h in hosts.names() {
        inv.push_str(&format!("{h}\n"));
    }
    // The system interpreter, not whatever a login shell's PATH finds first.
    inv.push_str("[fleet:vars]\nansible_python_interpreter=/usr/bin/python3\n");
    std::fs::write(dir.join("inventory"), inv).unwrap();
    let mut play = String::from("- hosts: fleet\n  gather_facts: false\n  tasks:\n");
    for i in 0..per_host {
        play.push_str(&format!("    - name: t{i}\n      command: /bin/true\n"));
    }
    std::fs::write(dir.join("play.yml"), play).unwrap();
    let cfg = format!(
        "[defaults]\nhost_key_checking = True\nforks = {HOSTS}\n[ssh_connection]\npipelining = True\nssh_args = -F {} -o ControlMaster=auto -o ControlPersist=60s -o ControlPath={}/cp-%%C\n",
        hosts.config().display(),
        dir.display()
    );
    std::fs::write(dir.join("ansible.cfg"), cfg).unwrap();
    let start = Instant::now();
    let o = Command::new(&playbook)
        .args(["-i", "inventory", "play.yml"])
        .current_dir(dir)
        .env("ANSIBLE_CONFIG", dir.join("ansible.cfg"))
        .output()
        .expect("ansible-playbook runs");
    let took = start.elapsed();
    if !o.status.success() {
        let out = String::from_utf8_lossy(&o.stdout);
        let why = out
            .lines()
            .find(|l| l.contains("fatal") || l.contains("FAILED"))
            .unwrap_or("");
        println!(
            "  ansible failed: {}",
            why.chars().take(600).collect::<String>()
        );
        return None;
    }
    Some(took)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hosts = sshd::SshHosts::start(HOSTS);
    let names = hosts.names();
    let local = spec(d, &[], hosts.config().as_path());
    let remote = spec(d, &names, hosts.config().as_path());
    let steps = (TARGETS * STEPS_PER_TARGET) as f64;
    // Warm: the agent uploaded and the plugin compiled on every host, the local cache filled.
    run(d, &local, "warm-local.db");
    run(d, &remote, "warm-remote.db");
    let l = run(d, &local, "local.db");
    let r = run(d, &remote, "remote.db");
    // What a run costs before its first step (loading, and for remote targets reaching every
    // host: ssh, the agent check, the handshake, preflight): `plan` does the same.
    let lp = cutover(d, "plan", &local, "plan-local.db");
    let rp = cutover(d, "plan", &remote, "plan-remote.db");
    let (lw, rw) = (l.saturating_sub(lp), r.saturating_sub(rp));
    println!(
        "{} no-op steps one at a time, durable journal, warm:",
        steps as usize
    );
    println!(
        "  local:                {:8.0} ms  ({:.0} ms before the first step) {:.3} ms/step",
        ms(l),
        ms(lp),
        ms(lw) / steps
    );
    println!(
        "  over ssh ({HOSTS} hosts):   {:8.0} ms  ({:.0} ms connecting and before the first step) {:.3} ms/step, overhead {:.3} ms/step on a warm connection",
        ms(r),
        ms(rp),
        ms(rw) / steps,
        (ms(rw) - ms(lw)) / steps
    );
    let per_host = 250;
    if let Some(a) = ansible(d, &hosts, per_host) {
        let tasks = (per_host * HOSTS) as f64;
        println!(
            "  ansible command ({} tasks, pipelining, {HOSTS} forks): {:8.0} ms  {:.3} ms/task",
            tasks as usize,
            ms(a),
            ms(a) / tasks
        );
        println!(
            "  ratio ansible per task / cutover remote per step: {:.0}x",
            (ms(a) / tasks) / (ms(rw) / steps)
        );
    }
}
