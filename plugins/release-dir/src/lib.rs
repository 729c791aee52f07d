//! `release-dir`: the Capistrano-style deploy. Copy a versioned artifact into
//! `<root>/releases/<version>/`, stop the service, flip the `<root>/current` symlink
//! atomically, start the service, wait until it is healthy. Undo flips back and restarts.
//!
//! Parameters: `version`, `artifact` (a directory), `health-timeout` (seconds, default 30);
//! per target: label `root` and optionally `health-url` (polled until it answers 200 with a
//! body naming the version).

use cutover_sdk::params::{declare, get};
use cutover_sdk::{bail, info, output};
use cutover_sdk::{cmd, files, preflight, release, wait, web};
use cutover_sdk::{
    About, Access, Call, Cap, Capability, Finding, Output, PreflightContext, Result, StepDef,
    Target,
};
use std::path::{Path, PathBuf};

struct ReleaseDir;

fn root(c: &Call) -> Result<PathBuf> {
    Ok(PathBuf::from(c.label("root")?))
}

fn script(root: &Path, name: &str) -> String {
    root.join("bin").join(name).display().to_string()
}

fn release_dir(root: &Path, version: &str) -> PathBuf {
    root.join("releases").join(version)
}

/// Copy the artifact into `releases/<version>` (once: a marker skips a completed copy).
fn fetch(c: &Call) -> Result<Vec<Output>> {
    let dest = release_dir(&root(c)?, c.param("version")?);
    let copied = release::install(Path::new(c.param("artifact")?), &dest)?;
    info!(
        "{} holds the release ({copied} files copied)",
        dest.display()
    );
    Ok(vec![
        output("release", dest.display().to_string()),
        output("files", copied.to_string()),
    ])
}

/// Stop the running release, remembering where `current` pointed.
fn stop(c: &Call) -> Result<Vec<Output>> {
    let root = root(c)?;
    let previous = files::read_symlink(&root.join("current"))
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    cmd::run_ok(&script(&root, "stop"), &[], None)?;
    Ok(vec![output("previous", previous)])
}

fn start_again(c: &Call) -> Result<()> {
    cmd::run_ok(&script(&root(c)?, "start"), &[], None).map(drop)
}

fn switch(c: &Call) -> Result<Vec<Output>> {
    release::switch(&root(c)?, &Path::new("releases").join(c.param("version")?))?;
    Ok(vec![])
}

fn switch_back(c: &Call) -> Result<()> {
    release::switch_back(&root(c)?, c.output("previous"))
}

fn start(c: &Call) -> Result<Vec<Output>> {
    cmd::run_ok(&script(&root(c)?, "start"), &[], None)?;
    Ok(vec![])
}

fn stop_again(c: &Call) -> Result<()> {
    cmd::run_ok(&script(&root(c)?, "stop"), &[], None).map(drop)
}

/// Wait until the health URL names the new version (or, without one, check `current`).
fn health(c: &Call) -> Result<Vec<Output>> {
    let version = c.param("version")?;
    let timeout_s: u64 = c.get("health-timeout", 30)?;
    match get(&c.target()?.labels, "health-url") {
        Some(url) => {
            let answer = wait::poll(timeout_s * 1000, 200, |n| {
                cutover_sdk::progress(&format!("probing {url} (try {n})"), None);
                match web::get(url, Some(2000)) {
                    Ok((200, body)) if body.contains(version) => Ok(body),
                    Ok((status, body)) => Err(format!("{url} answered {status}: {}", body.trim())),
                    Err(e) => Err(e.to_string()),
                }
            })
            .map_err(|e| e.context("not healthy"))?;
            Ok(vec![output("health", answer.trim().to_string())])
        }
        None => {
            let current = files::read_symlink(&root(c)?.join("current")).unwrap_or_default();
            if !current.ends_with(version) {
                bail!("current points at {}, not {version}", current.display());
            }
            Ok(vec![])
        }
    }
}

/// Writing the root and running its programs are separate steps: no call can both rewrite
/// `bin/` and run it.
const WRITE_ROOT: &[Cap] = &[Cap::Dir("{root}", Access::ReadWrite)];
const RUN_SCRIPTS: &[Cap] = &[Cap::Exec("{root}/bin/stop"), Cap::Exec("{root}/bin/start")];

impl cutover_sdk::Adapter for ReleaseDir {
    fn about() -> About {
        About {
            name: "release-dir",
            version: env!("CARGO_PKG_VERSION"),
            summary: "versioned release folders with an atomic `current` symlink flip",
            parameters: vec![
                declare(
                    "version",
                    "name of the new release (its folder under releases/)",
                    true,
                    false,
                    None,
                ),
                declare(
                    "artifact",
                    "directory holding the new release's files",
                    true,
                    false,
                    None,
                ),
                declare(
                    "health-timeout",
                    "seconds to wait for the health URL",
                    false,
                    false,
                    Some("30"),
                ),
                declare(
                    "root",
                    "the node's deploy root (bin/start, bin/stop, releases/, current)",
                    true,
                    true,
                    None,
                ),
                declare(
                    "health-url",
                    "URL answering 200 with the running version",
                    false,
                    true,
                    None,
                ),
            ],
            capabilities: vec![
                Cap::Dir("{artifact}", Access::Read).capability(),
                Cap::Dir("{root}", Access::Read).capability(),
                Capability::Http("{health-url?}".into()),
            ],
            leases: vec!["{root}/.cutover-lease".into()],
        }
    }

    const STEPS: &'static [StepDef] = &[
        StepDef {
            name: "fetch",
            about: "copy the artifact into releases/<version>",
            run: fetch,
            idempotent: true,
            timeout_s: 300,
            caps: WRITE_ROOT,
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop",
            about: "stop the running release (bin/stop)",
            run: stop,
            undo: Some(start_again),
            caps: RUN_SCRIPTS,
            ..StepDef::TARGET
        },
        StepDef {
            name: "switch",
            about: "point `current` at the new release",
            run: switch,
            undo: Some(switch_back),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 10,
            caps: WRITE_ROOT,
            ..StepDef::TARGET
        },
        StepDef {
            name: "start",
            about: "start the new release (bin/start)",
            run: start,
            undo: Some(stop_again),
            caps: RUN_SCRIPTS,
            ..StepDef::TARGET
        },
        StepDef {
            name: "health",
            about: "wait until the node reports the new version",
            run: health,
            idempotent: true,
            ..StepDef::TARGET
        },
    ];

    /// Usual step times of a local release folder; `health` at worst waits out
    /// `health-timeout`.
    fn estimate(
        _targets: Vec<Target>,
        params: Vec<cutover_sdk::Pair>,
        waves: u32,
    ) -> Result<cutover_sdk::Estimate> {
        let health: u32 = params
            .iter()
            .find(|p| p.key == "health-timeout")
            .and_then(|p| p.value.trim().parse().ok())
            .unwrap_or(30);
        let step = |name: &str, expected_s, worst_s| cutover_sdk::StepEstimate {
            step: name.to_string(),
            expected_s,
            worst_s,
        };
        Ok(cutover_sdk::Estimate {
            steps: vec![
                step("fetch", 2, None),
                step("stop", 1, None),
                step("switch", 1, None),
                step("start", 1, None),
                step("health", 1, Some(health + 1)),
            ],
            notes: vec![format!(
                "{waves} wave(s); health waits at most health-timeout = {health} s per node"
            )],
        })
    }

    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        let params = ctx.params;
        let mut findings = Vec::new();
        let artifact = get(&params, "artifact").unwrap_or_default();
        if !Path::new(artifact).is_dir() {
            findings.push(preflight::blocker(
                None,
                format!("artifact `{artifact}` is not a directory"),
            ));
        }
        for t in &targets {
            let Some(root) = get(&t.labels, "root") else {
                continue;
            };
            let root = Path::new(root);
            for s in ["start", "stop"] {
                if !root.join("bin").join(s).exists() {
                    findings.push(preflight::blocker(
                        Some(&t.id),
                        format!("{} is missing", root.join("bin").join(s).display()),
                    ));
                }
            }
        }
        Ok(findings)
    }
}

cutover_sdk::export_adapter!(ReleaseDir);
