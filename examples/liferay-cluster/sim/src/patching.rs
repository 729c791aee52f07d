//! Liferay's Patching Tool, simulated: `patching-tool.sh [profile] info|install`, run from its
//! own folder, the patch zips in its `patches/` folder.
//!
//! - Profiles: `[profile].properties` in the tool's folder (`default.properties` without one),
//!   keys `liferay.home` and `patches.folder` ("Configuring the Patching Tool",
//!   https://learn.liferay.com/dxp/latest/en/installation-and-upgrades/maintaining-a-liferay-installation/patching-dxp-7-3-and-earlier/reference/configuring-the-patching-tool.html;
//!   SURFACES.md #4). The tool may live outside Liferay Home: its profile points at it.
//! - `info`: the "Product information:" block, `Currently installed patches: <ids>`,
//!   `Available patches: <ids>` and `Detailed patch list:` ("Getting Patch Information",
//!   https://learn.liferay.com/dxp/7.x/en/installation-and-upgrades/maintaining-a-liferay-dxp-installation/patching-liferay/getting-patch-information.html;
//!   SURFACES.md #1, b1). No patch prints `-`.
//! - `install`: with the server stopped, installs the zips in `patches/` and removes installed
//!   patches whose zip is gone; ends with `The installation was successful. ...` ("Installing
//!   Patches" and "Uninstalling Patches"; SURFACES.md #2, #3).
//!
//! What is installed is kept in Liferay Home's `patching/` folder, one file per patch id (where
//! the real tool keeps it is not documented). Revertibility appears nowhere: the documented
//! output does not show it (SURFACES.md #6).

use anyhow::{bail, Context, Result};
use simkit::{append, read};
use std::path::{Path, PathBuf};

/// A profile's `liferay.home` and `patches.folder`.
fn profile(tool: &Path, name: &str) -> Result<(PathBuf, PathBuf)> {
    let file = tool.join(format!("{name}.properties"));
    let text = std::fs::read_to_string(&file).with_context(|| {
        format!(
            "no profile {}: run `patching-tool.sh {name} auto-discovery`",
            file.display()
        )
    })?;
    let key = |k: &str| {
        text.lines()
            .filter_map(|l| l.split_once('='))
            .find(|(a, _)| a.trim() == k)
            .map(|(_, v)| PathBuf::from(v.trim()))
    };
    let home = key("liferay.home").context("the profile has no liferay.home")?;
    let patches = key("patches.folder").unwrap_or_else(|| tool.join("patches"));
    Ok((home, patches))
}

/// A patch id from its zip's name: `liferay-fix-pack-de-12-7010.zip` is `de-12-7010`.
pub fn id(zip: &str) -> String {
    let stem = zip.strip_suffix(".zip").unwrap_or(zip);
    let stem = stem.strip_prefix("liferay-").unwrap_or(stem);
    ["fix-pack-", "hotfix-"]
        .iter()
        .find_map(|p| stem.strip_prefix(p))
        .unwrap_or(stem)
        .to_string()
}

fn listed(dir: &Path, zips: bool) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().to_string())
                .filter(|n| !zips || n.ends_with(".zip"))
                .map(|n| if zips { id(&n) } else { n })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn ids(v: &[String]) -> String {
    if v.is_empty() {
        "-".into()
    } else {
        v.join(", ")
    }
}

/// `patching-tool <tool folder> [profile] info|install`.
pub fn run(tool: &Path, args: &[String]) -> Result<()> {
    let (name, command) = match args {
        [c] => ("default", c.as_str()),
        [p, c] => (p.as_str(), c.as_str()),
        _ => bail!("usage: patching-tool.sh [profile] info|install"),
    };
    let (home, patches) = profile(tool, name)?;
    let state = home.join("patching");
    std::fs::create_dir_all(&state)?;
    let installed = listed(&state, false);
    let available = listed(&patches, true);
    let build = read(&home.join("VERSION"))
        .split('.')
        .take(2)
        .collect::<Vec<_>>()
        .join("")
        + "13";
    match command {
        "info" => {
            println!("Loading product and patch information...");
            println!("Product information:");
            println!("  * build number: {build}");
            println!("  * patching-tool version: 3.0.5");
            println!("  * plugins: no plugins detected\n");
            println!("Currently installed patches: {}\n", ids(&installed));
            println!("Available patches: {}\n", ids(&available));
            println!("Detailed patch list:");
            for p in &available {
                let on = installed.contains(p);
                println!(
                    "  [{}I] {p} :: {}; Will be installed. :: Built for LIFERAY",
                    if on { '*' } else { ' ' },
                    if on {
                        "Installed"
                    } else {
                        "Currently not installed"
                    }
                );
            }
            Ok(())
        }
        "install" => {
            // The documented procedure installs with the server stopped.
            let pid: Option<u32> = read(&home.join("run/pid")).parse().ok();
            if pid.is_some_and(simkit::alive) {
                bail!(
                    "the portal at {} is running: stop it before installing patches",
                    home.display()
                );
            }
            println!("Loading product and patch information...");
            for old in installed.iter().filter(|p| !available.contains(p)) {
                std::fs::remove_file(state.join(old))?;
                append(&home.join("sim.log"), &format!("removed patch {old}"))?;
            }
            for new in available.iter().filter(|p| !installed.contains(p)) {
                std::fs::write(state.join(new), "")?;
                append(&home.join("sim.log"), &format!("installed patch {new}"))?;
            }
            let n = available.len();
            println!(
                "The installation was successful. {} installed on the system.",
                match n {
                    0 => "No patch is".to_string(),
                    1 => "One patch is".to_string(),
                    n => format!("{n} patches are"),
                }
            );
            Ok(())
        }
        other => bail!("unknown command {other} (this simulator knows info and install)"),
    }
}
