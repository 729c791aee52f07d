//! `release-dir`: the Capistrano-style deploy. Copy a versioned artifact into
//! `<root>/releases/<version>/`, stop the service, flip the `<root>/current` symlink
//! atomically, start the service, wait until it is healthy. Undo flips back and restarts.
//!
//! Parameters: `version`, `artifact` (a directory), `health-timeout` (seconds, default 30);
//! per target: label `root` and optionally `health-url` (polled until it answers 200 with a
//! body naming the version).

use cutover_sdk::adapter_types::*;
use cutover_sdk::describe::{dir, exec, parameter, target_step as step, with_caps};
use cutover_sdk::params::{get, label, output, param};
use cutover_sdk::step::{fail, out};
use cutover_sdk::{cmd, files, preflight, progress, release, wait, web};
use std::path::{Path, PathBuf};

struct ReleaseDir;

fn root(t: &Target) -> Result<PathBuf, StepError> {
    Ok(PathBuf::from(label(t, "root")?))
}

fn script(root: &Path, name: &str) -> String {
    root.join("bin").join(name).display().to_string()
}

fn release_dir(root: &Path, version: &str) -> PathBuf {
    root.join("releases").join(version)
}

impl cutover_sdk::Adapter for ReleaseDir {
    fn describe() -> Description {
        Description {
            leases: vec!["{root}/.cutover-lease".into()],
            name: "release-dir".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "versioned release folders with an atomic `current` symlink flip".into(),
            parameters: vec![
                parameter(
                    "version",
                    "name of the new release (its folder under releases/)",
                    true,
                    false,
                    None,
                ),
                parameter(
                    "artifact",
                    "directory holding the new release's files",
                    true,
                    false,
                    None,
                ),
                parameter(
                    "health-timeout",
                    "seconds to wait for the health URL",
                    false,
                    false,
                    Some("30"),
                ),
                parameter(
                    "root",
                    "the node's deploy root (bin/start, bin/stop, releases/, current)",
                    true,
                    true,
                    None,
                ),
                parameter(
                    "health-url",
                    "URL answering 200 with the running version",
                    false,
                    true,
                    None,
                ),
            ],
            // Writing the root and running its programs are separate steps: no call can
            // both rewrite `bin/` and run it.
            capabilities: vec![
                dir("{artifact}", Access::Read),
                dir("{root}", Access::Read),
                Capability::Http("{health-url?}".into()),
            ],
            steps: vec![
                with_caps(
                    step(
                        "fetch",
                        "copy the artifact into releases/<version>",
                        false,
                        true,
                        300,
                    ),
                    vec![dir("{root}", Access::ReadWrite)],
                ),
                with_caps(
                    step(
                        "stop",
                        "stop the running release (bin/stop)",
                        true,
                        false,
                        60,
                    ),
                    vec![exec("{root}/bin/stop"), exec("{root}/bin/start")],
                ),
                with_caps(
                    step(
                        "switch",
                        "point `current` at the new release",
                        true,
                        true,
                        10,
                    ),
                    vec![dir("{root}", Access::ReadWrite)],
                ),
                with_caps(
                    step(
                        "start",
                        "start the new release (bin/start)",
                        true,
                        false,
                        60,
                    ),
                    vec![exec("{root}/bin/start"), exec("{root}/bin/stop")],
                ),
                step(
                    "health",
                    "wait until the node reports the new version",
                    false,
                    true,
                    60,
                ),
            ],
        }
    }

    fn preflight(
        targets: Vec<Target>,
        params: Vec<Pair>,
        _strategy: String,
    ) -> Result<Vec<Finding>, PluginError> {
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

    fn run_step(
        step: String,
        target: Option<Target>,
        ctx: StepContext,
    ) -> Result<Vec<Output>, StepError> {
        let t = target.ok_or_else(|| fail("release-dir has no fleet steps"))?;
        let root = root(&t)?;
        let version = param(&ctx.params, "version")?;
        match step.as_str() {
            "fetch" => {
                let dest = release_dir(&root, version);
                let artifact = PathBuf::from(param(&ctx.params, "artifact")?);
                let copied = release::install(&artifact, &dest)?;
                Ok(vec![
                    out("release", dest.display().to_string()),
                    out("files", copied.to_string()),
                ])
            }
            "stop" => {
                let previous = files::read_symlink(&root.join("current"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                cmd::run_ok(&script(&root, "stop"), &[], None)?;
                Ok(vec![out("previous", previous)])
            }
            "switch" => {
                release::switch(&root, &Path::new("releases").join(version))?;
                Ok(vec![])
            }
            "start" => {
                cmd::run_ok(&script(&root, "start"), &[], None)?;
                Ok(vec![])
            }
            "health" => {
                let timeout_s =
                    cutover_sdk::params::int(&ctx.params, "health-timeout", 30).map_err(fail)?;
                match get(&t.labels, "health-url") {
                    Some(url) => {
                        let answer = wait::poll(timeout_s * 1000, 200, |n| {
                            progress(&format!("probing {url} (try {n})"), None);
                            match web::get(url, Some(2000)) {
                                Ok((200, body)) if body.contains(version) => Ok(body),
                                Ok((status, body)) => {
                                    Err(format!("{url} answered {status}: {}", body.trim()))
                                }
                                Err(e) => Err(e),
                            }
                        })
                        .map_err(|e| fail(format!("not healthy: {e}")))?;
                        Ok(vec![out("health", answer.trim().to_string())])
                    }
                    None => {
                        let current =
                            files::read_symlink(&root.join("current")).unwrap_or_default();
                        if current.ends_with(version) {
                            Ok(vec![])
                        } else {
                            Err(fail(format!(
                                "current points at {}, not {version}",
                                current.display()
                            )))
                        }
                    }
                }
            }
            other => Err(fail(format!("release-dir has no step `{other}`"))),
        }
    }

    fn undo_step(step: String, target: Option<Target>, ctx: StepContext) -> Result<(), StepError> {
        let t = target.ok_or_else(|| fail("release-dir has no fleet steps"))?;
        let root = root(&t)?;
        match step.as_str() {
            "stop" => cmd::run_ok(&script(&root, "start"), &[], None).map(|_| ()),
            "switch" => release::switch_back(&root, output(&ctx.outputs, "previous")),
            "start" => cmd::run_ok(&script(&root, "stop"), &[], None).map(|_| ()),
            _ => Ok(()),
        }
    }
}

cutover_sdk::export_adapter!(ReleaseDir);
