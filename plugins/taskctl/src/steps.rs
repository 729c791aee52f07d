//! The step functions. A step whose command ran but whose check failed runs the opposite
//! command before failing, so the node is as the step found it and the undos of the steps
//! before it apply.

use crate::admin::{self, Admin};
use crate::node::Node;
use cutover_sdk::{fail, files, inplace, output, Call, Error, Output, Result};
use std::path::{Path, PathBuf};

/// Seed L145: the listings that show task types, projects and global parameters.
pub const LISTINGS: &[&str] = &["listjt", "listapp", "listpara"];

/// The node's row of `listcirn`, or an error saying it is missing.
fn cirn_row(admin: &Admin, node: &Node) -> Result<String> {
    let listing = admin.run("listcirn")?;
    admin::row(&listing, &node.name)
        .map(str::to_string)
        .ok_or_else(|| {
            fail(format!(
                "ctladmin `listcirn` lists no node named {} (set label `name` to the node's \
                 name on the platform):\n{listing}",
                node.name
            ))
        })
}

/// The version `version-file` shows in the node's home, when one is named.
fn version_shown(c: &Call, home: &Path) -> Result<Option<String>> {
    match c.value_or("version-file", "") {
        "" => Ok(None),
        f => Ok(Some(files::read_string(&home.join(f))?.trim().to_string())),
    }
}

/// The node must be started (seed L143); record its listings and version.
pub fn snapshot(c: &Call) -> Result<Vec<Output>> {
    let node = Node::of(c)?;
    let admin = Admin::of(c)?;
    let row = cirn_row(&admin, &node)?;
    if !admin::started(&row) {
        return Err(fail(format!(
            "node {} is not started before the upgrade: listcirn shows `{row}`, not `{}`; \
             start it or leave it out of the rollout",
            node.name,
            admin::STARTED
        )));
    }
    let mut out = vec![output("listcirn", row)];
    for l in LISTINGS {
        out.push(output(l, admin.run(l)?));
    }
    if let Some(v) = version_shown(c, &node.home)? {
        out.push(output("version-before", v));
    }
    Ok(out)
}

/// Run `command`, then `check`; when the check fails, run `revert` and fail.
fn act(
    node: &Node,
    command: &str,
    check: impl Fn(&Node) -> Result<String>,
    revert: &str,
) -> Result<String> {
    node.ctl(command)?;
    check(node).map_err(|e| match node.ctl(revert) {
        Ok(_) => Error::new(format!(
            "{}; ran {revert} to put the node back as {command} found it",
            e.message
        )),
        Err(r) => Error::new(format!(
            "{}; running {revert} to put the node back failed too: {}",
            e.message, r.message
        )),
    })
}

fn stopped(n: &Node) -> Result<String> {
    n.await_processes(false, "ctlstop")
}
fn started(n: &Node) -> Result<String> {
    n.await_processes(true, "ctlstart")
}
fn released(n: &Node) -> Result<String> {
    n.await_ipc(false, "ctlshut")
}
fn held(n: &Node) -> Result<String> {
    n.await_ipc(true, "ctlinit")
}

/// Whether the node's processes show it started (`up`) or stopped already (then said): the
/// seed does not say what a second `ctlstart` or `ctlstop` does, so re-runs skip them.
fn already(node: &Node, up: bool) -> Result<bool> {
    let done = node.processes_are(up)?;
    if done {
        let state = if up { "started" } else { "stopped" };
        cutover_sdk::info!("node {}: already {state}", node.name);
    }
    Ok(done)
}

/// `ctlstart` (`up`) or `ctlstop`, unless done already.
fn start_or_stop(node: &Node, up: bool) -> Result<()> {
    if !already(node, up)? {
        node.ctl(if up { "ctlstart" } else { "ctlstop" })?;
    }
    Ok(())
}

/// `ctlstop`, then none of the node's processes may run.
pub fn stop_node(c: &Call) -> Result<Vec<Output>> {
    let node = Node::of(c)?;
    if already(&node, false)? {
        return Ok(vec![]);
    }
    act(&node, "ctlstop", stopped, "ctlstart").map(|_| vec![])
}

/// `ctlstart`, then every process of the node's type must run.
pub fn undo_stop_node(c: &Call) -> Result<()> {
    let node = Node::of(c)?;
    start_or_stop(&node, true)?;
    started(&node).map(drop)
}

/// `ctlshut`, then no shared memory or message queue of `ipc-owner` may remain.
pub fn stop_listener(c: &Call) -> Result<Vec<Output>> {
    let ipc = act(&Node::of(c)?, "ctlshut", released, "ctlinit")?;
    Ok(vec![output("ipc-after-ctlshut", ipc)])
}

/// `ctlinit`, then the listener's shared memory and message queues must be there.
pub fn undo_stop_listener(c: &Call) -> Result<()> {
    let node = Node::of(c)?;
    node.ctl("ctlinit")?;
    held(&node).map(drop)
}

fn backup(c: &Call, home: &Path) -> PathBuf {
    inplace::backup_dir(home, &c.ctx.rollout_id)
}

/// Replace the node's program folders with the package's, keeping the old ones.
pub fn install(c: &Call) -> Result<Vec<Output>> {
    let node = Node::of(c)?;
    let package = PathBuf::from(c.param("package")?);
    let backup = backup(c, &node.home);
    let done = inplace::replace(&package, &node.home, &backup)?;
    Ok(vec![
        output("replaced", done.folders.join(" ")),
        output("files", done.files.to_string()),
        output("backup", backup.display().to_string()),
    ])
}

/// Put the old program folders back.
pub fn uninstall(c: &Call) -> Result<()> {
    let node = Node::of(c)?;
    inplace::restore(&node.home, &backup(c, &node.home)).map(drop)
}

/// `ctlinit`, then the listener's shared memory and message queues must be there.
pub fn start_listener(c: &Call) -> Result<Vec<Output>> {
    let ipc = act(&Node::of(c)?, "ctlinit", held, "ctlshut")?;
    Ok(vec![output("ipc-after-ctlinit", ipc)])
}

/// `ctlshut`, then nothing of the listener may remain.
pub fn undo_start_listener(c: &Call) -> Result<()> {
    let node = Node::of(c)?;
    node.ctl("ctlshut")?;
    released(&node).map(drop)
}

/// `ctlstart`; `verify` checks the result.
pub fn start_node(c: &Call) -> Result<Vec<Output>> {
    start_or_stop(&Node::of(c)?, true)?;
    Ok(vec![])
}

/// `ctlstop`, then none of the node's processes may run.
pub fn undo_start_node(c: &Call) -> Result<()> {
    let node = Node::of(c)?;
    start_or_stop(&node, false)?;
    stopped(&node).map(drop)
}

/// Seed L141-155: `listcirn` shows the node started, its processes run, and `listjt`,
/// `listapp`, `listpara` show what they showed before; and the version, when named.
pub fn verify(c: &Call) -> Result<Vec<Output>> {
    let node = Node::of(c)?;
    let admin = Admin::of(c)?;
    let mut row = String::new();
    node.settle(|| {
        row = cirn_row(&admin, &node)?;
        Ok((!admin::started(&row))
            .then(|| format!("listcirn shows `{row}`, not `{}`", admin::STARTED)))
    })?;
    let processes = node.await_processes(true, "ctlstart")?;
    if let (Some(shown), Ok(want)) = (version_shown(c, &node.home)?, c.param("version")) {
        if shown != want {
            return Err(fail(format!(
                "node {}: {} shows version `{shown}`, not `{want}` (`version-file`, `version`)",
                node.name,
                c.value_or("version-file", "")
            )));
        }
    }
    for l in LISTINGS {
        let now = admin.run(l)?;
        let before = c.output(l).unwrap_or_default();
        if now.trim() != before.trim() {
            return Err(fail(format!(
                "node {}: `{l}` changed with the upgrade:\nbefore:\n{before}\nnow:\n{now}",
                node.name
            )));
        }
    }
    Ok(vec![
        output("listcirn", row),
        output("processes", processes),
    ])
}
