//! Liferay's Patching Tool on a node: `patching-tool.sh [profile] info` for what is installed
//! (the line `Currently installed patches: <ids>`, "Getting Patch Information"), and the
//! documented install and removal: with the server stopped, the zip goes into the tool's
//! `patches/` folder and `patching-tool.sh [profile] install` runs; a patch is removed by
//! deleting its zip and running `install` again ("Installing Patches", "Uninstalling
//! Patches"). The tool's exit codes are not documented: success is the line `The
//! installation was successful` and a re-read of `info`. Whether a patch is revertible is in
//! neither: the operator says so with `fixpack-revertible`.

use crate::settings::{artifact, read_bytes, value};
use cutover_sdk::params::get;
use cutover_sdk::{cmd, fail, files, output, Call, Output, Pair, Result, Target};
use std::path::PathBuf;

/// The node's Patching Tool folder (`patching-dir`).
pub fn dir(target: &Target, params: &[Pair]) -> Option<PathBuf> {
    value(target, params, "patching-dir").map(PathBuf::from)
}

/// Run the tool with `command` from its folder (as documented: `cd patching-tool;
/// ./patching-tool.sh info`); its output.
fn tool(dir: &std::path::Path, params: &[Pair], command: &str) -> Result<String> {
    let program = dir.join("patching-tool.sh").display().to_string();
    let mut args: Vec<String> = get(params, "patching-profile")
        .filter(|p| !p.is_empty())
        .map(|p| vec![p.to_string()])
        .unwrap_or_default();
    args.push(command.into());
    let exit = cmd::run_command(&cmd::Command {
        program: program.clone(),
        args,
        cwd: Some(dir.display().to_string()),
        env: Vec::new(),
        stdin: None,
        timeout_ms: Some(600_000),
    })?;
    if exit.code != Some(0) {
        return Err(fail(cmd::describe_failure(&program, &exit)));
    }
    Ok(exit.stdout)
}

/// The ids on the `Currently installed patches:` line (`-` is none).
pub fn installed(info: &str) -> Option<Vec<String>> {
    let line = info
        .lines()
        .find_map(|l| l.trim().strip_prefix("Currently installed patches:"))?;
    Some(
        line.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty() && *p != "-")
            .map(str::to_string)
            .collect(),
    )
}

/// What `info` says is installed on the node.
pub fn info(dir: &std::path::Path, params: &[Pair]) -> Result<Vec<String>> {
    let text = tool(dir, params, "info")?;
    installed(&text).ok_or_else(|| {
        fail(format!(
            "`patching-tool.sh info` in {} printed no `Currently installed patches:` line",
            dir.display()
        ))
    })
}

fn install(dir: &std::path::Path, params: &[Pair]) -> Result<Vec<String>> {
    let out = tool(dir, params, "install")?;
    if !out.contains("The installation was successful") {
        return Err(fail(format!(
            "`patching-tool.sh install` in {} did not report a successful installation: {}",
            dir.display(),
            out.lines().last().unwrap_or("")
        )));
    }
    info(dir, params)
}

fn patch_dir(c: &Call) -> Result<PathBuf> {
    let t = c.target()?;
    dir(t, c.params()).ok_or_else(|| {
        fail(format!(
            "target `{}` has no `patching-dir`: name its Patching Tool folder to install {}",
            t.id,
            get(c.params(), "fixpack").unwrap_or("the patch")
        ))
    })
}

/// Step `patch`: put the patch zip into `patches/` and install it (the node is stopped).
pub fn patch(c: &Call) -> Result<Vec<Output>> {
    let Some(zip) = artifact(c.params(), "fixpack") else {
        return Ok(vec![]);
    };
    let dir = patch_dir(c)?;
    let name = zip.file_name().unwrap_or_default();
    files::write_atomic(&dir.join("patches").join(name), &read_bytes(&zip)?)?;
    let now = install(&dir, c.params())?;
    Ok(vec![output("patches", now.join(", "))])
}

/// Undo of `patch`: the zip out of `patches/`, `install` again (the documented removal).
pub fn unpatch(c: &Call) -> Result<()> {
    let Some(zip) = artifact(c.params(), "fixpack") else {
        return Ok(());
    };
    let dir = patch_dir(c)?;
    let placed = dir
        .join("patches")
        .join(zip.file_name().unwrap_or_default());
    match std::fs::remove_file(&placed) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(files::io_error("removing", &placed, e))
        }
        _ => {}
    }
    install(&dir, c.params()).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_installed_line() {
        let info = "Product information:\n  * build number: 7310\n\nCurrently installed patches: dxp-1-7310, dxp-2-7310\n\nAvailable patches: dxp-3-7310\n";
        assert_eq!(installed(info).unwrap(), vec!["dxp-1-7310", "dxp-2-7310"]);
        assert!(installed("Currently installed patches: -\n")
            .unwrap()
            .is_empty());
        assert!(installed("nothing").is_none());
    }
}
