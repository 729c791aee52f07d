//! `ctladmin`, the character client (seed L115-123, L141-145): one logs in, then types
//! commands. The seed shows neither the login nor how the client reads its commands
//! without a terminal (its figures are screenshots); the simulator takes what the adapter's
//! defaults give it: the lines of the fleet's `ctladmin.login` first, then one command per
//! line on standard input (or the command as arguments). It prints no prompt or banner,
//! which the seed does not show either.

use crate::commands::{listener_up, name, node_up, platform, topology};
use crate::read;
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::Path;
use std::process::Command;

/// Seed L143: the `listcirn` status of a started node.
pub const STARTED: &str = "5-启动状态";
/// The status of any other node. The seed shows no other status, so this wording is the
/// simulator's own, and the adapter must not rely on it.
pub const NOT_STARTED: &str = "sim:not-started";

/// `ctladmin [command words]` of the node at `root`, reading the login and, without
/// arguments, the commands from standard input.
pub fn run(root: &Path, args: &[String]) -> Result<()> {
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input)?;
    let mut lines = input.lines();
    for want in read(&platform(root).join("ctladmin.login")).lines() {
        if lines.next().map(str::trim) != Some(want.trim()) {
            bail!("login failed");
        }
    }
    let commands: Vec<String> = if args.is_empty() {
        lines
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    } else {
        vec![args.join(" ")]
    };
    for c in commands {
        command(root, &c)?;
    }
    Ok(())
}

fn command(root: &Path, line: &str) -> Result<()> {
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["listcirn"] => listcirn(root),
        [l @ ("listjt" | "listapp" | "listpara")] => listing(root, l),
        [c @ ("ctlstart" | "ctlstop"), no] => by_number(root, c, no),
        _ => bail!("unknown command: {line}"),
    }
}

/// Seed L119: the CIR node list with each CTL node's number; L143: the status of each. The
/// columns are the node definition's fields (L75-85); their layout is the simulator's.
fn listcirn(root: &Path) -> Result<()> {
    let nodes_dir = root.parent().context("a node's home is in nodes/")?;
    println!("编号 节点名称   节点类型   IP地址     端口号 上级节点   状态");
    for n in topology(&platform(root)) {
        let status = if node_up(&nodes_dir.join(&n.name)) {
            STARTED
        } else {
            NOT_STARTED
        };
        println!(
            "{:<4} {:<10} {:<10} {:<10} {:<6} {:<10} {status}",
            n.no, n.name, n.kind, "127.0.0.1", n.port, n.parent
        );
    }
    Ok(())
}

/// Seed L145: listjt, listapp and listpara show task types, projects and global parameters,
/// the platform configuration held in shared memory (L56, L69).
fn listing(root: &Path, which: &str) -> Result<()> {
    if !listener_up(root) {
        bail!(
            "node {} is not initialised: no platform configuration in shared memory",
            name(root)
        );
    }
    let section = match which {
        "listjt" => "tasktypes",
        "listapp" => "projects",
        _ => "params",
    };
    let shm = read(&root.join("run/shm"));
    let body = shm
        .split(&format!("[{section}]\n"))
        .nth(1)
        .map(|s| s.split("\n[").next().unwrap_or(""))
        .unwrap_or("");
    println!("{body}");
    Ok(())
}

/// Seed L117-123: `ctlstart` / `ctlstop` with a CTL node number start or stop that node;
/// starting fails where no node is installed.
fn by_number(root: &Path, cmd: &str, no: &str) -> Result<()> {
    let node = topology(&platform(root))
        .into_iter()
        .find(|n| n.no == no)
        .with_context(|| format!("no CTL node number {no}"))?;
    let home = root.parent().context("nodes/")?.join(&node.name);
    let o = Command::new(home.join("bin").join(cmd)).output()?;
    print!("{}", String::from_utf8_lossy(&o.stdout));
    if !o.status.success() {
        bail!("{}", String::from_utf8_lossy(&o.stderr).trim());
    }
    Ok(())
}
