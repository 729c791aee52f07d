//! `ssh-hosts`: real OpenSSH servers on loopback as a fleet's "hosts" (the remote demo).
//!
//! - `ssh-hosts start DIR --hosts N [--spec SPEC]`: start `host-1`..`host-N` (see
//!   `simkit::sshd`) in DIR, left running; with `--spec`, spread the spec's targets over
//!   them in turn (`host = "host-<i>"`) and add an `[ssh]` table that reaches them through
//!   DIR/ssh_config, the agent keeping its cache in DIR/agent-cache.
//! - `ssh-hosts stop DIR`: stop them, with every session they started.

use anyhow::{bail, Context, Result};
use simkit::sshd::SshHosts;
use std::path::Path;

fn main() {
    simkit::main("ssh-hosts", |args| match args.first().map(String::as_str) {
        Some("start") => start(args),
        Some("stop") => {
            SshHosts::stop_in(&simkit::folder(args, 1)?);
            Ok(())
        }
        _ => bail!("usage: ssh-hosts start DIR --hosts N [--spec SPEC] | ssh-hosts stop DIR"),
    });
}

fn start(args: &[String]) -> Result<()> {
    let dir = std::path::absolute(simkit::folder(args, 1)?)?;
    let n: usize = simkit::arg(args, "--hosts", "3")
        .parse()
        .context("--hosts must be a number")?;
    let hosts = SshHosts::start_in(&dir, n);
    for h in hosts.names() {
        println!("{h}: sshd on 127.0.0.1:{}", hosts.port(&h));
    }
    if let Some(spec) = args
        .iter()
        .position(|a| a == "--spec")
        .map(|i| &args[i + 1])
    {
        place(Path::new(spec), &hosts, &dir)?;
        println!("{spec}: targets spread over {n} hosts");
    }
    hosts.detach();
    Ok(())
}

/// Put the spec's targets on the hosts in turn and add the `[ssh]` table reaching them.
fn place(spec: &Path, hosts: &SshHosts, dir: &Path) -> Result<()> {
    let text =
        std::fs::read_to_string(spec).with_context(|| format!("reading {}", spec.display()))?;
    let names = hosts.names();
    let mut out = String::new();
    let (mut in_target, mut next) = (false, 0);
    for line in text.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim_start().starts_with('[') {
            in_target = line.trim() == "[[targets]]";
        } else if in_target && line.trim_start().starts_with("id =") {
            out.push_str(&format!("host = \"{}\"\n", names[next % names.len()]));
            next += 1;
        }
    }
    out.push_str(&format!(
        "\n[ssh]\noptions = [\"-F\", \"{}\"]\ncache = \"{}\"\n",
        hosts.config().display(),
        dir.join("agent-cache").display()
    ));
    std::fs::write(spec, out).with_context(|| format!("writing {}", spec.display()))
}
