//! `talend-remote-engine`: upgrade a Talend Remote Engine in place without redeploying its
//! Data Service jobs and Route tasks, following Talend's documented procedure step by step:
//!
//! 1. `unpair`: `DELETE {api}/processing/runtimes/remote-engines/{engine-id}/pairing` with both
//!    keep flags; the new pre-authorized key is a secret output (journaled, redacted).
//! 2. `settle`: wait at least `unpair-wait` seconds and until the engine log confirms it.
//! 3. `stop-old`: `<old>/bin/stop`.
//! 4. `check-new`: the new installation exists and is not running.
//! 5. `copy-data`: `<old>/data/dsrunner` and `<old>/data/cls` into `<new>/data/`.
//! 6. `rewrite-paths`: the install-root prefix of `"artifactFile"` in every `.metadata` and of
//!    `"currentFilePath"` in every `*-state.dat` (Unix and escaped Windows forms; idempotent).
//! 7. `configure-pairing`: `pairing.service.url` and the journaled key in `<new>/etc`.
//! 8. `start-new`: `<new>/bin/start`.
//! 9. `verify`: the API shows the engine paired, on the new version, every task running.
//!
//! Undo: stop the new engine, start the old one and re-pair it with the journaled key (its
//! data was copied, never moved).

mod api;
mod data;
mod pairing;

use cutover_sdk::params::{declare, get, label};
use cutover_sdk::{cmd, fail, output, preflight, wait, warn};
use cutover_sdk::{
    About, Access, Call, Cap, Capability, Finding, Output, Pair, PreflightContext, Result, StepDef,
    Target,
};
use std::path::{Path, PathBuf};

struct TalendRemoteEngine;

/// The per-target facts every step needs.
struct Engine {
    id: String,
    old: PathBuf,
    new: PathBuf,
}

impl Engine {
    /// From the target's `engine-id`, `old` and `new` labels.
    fn of(t: &Target) -> Result<Engine> {
        Ok(Engine {
            id: label(t, "engine-id")?.to_string(),
            old: PathBuf::from(label(t, "old")?),
            new: PathBuf::from(label(t, "new")?),
        })
    }

    /// The engine of a step call (every step runs per target).
    fn called(c: &Call) -> Result<Engine> {
        let t = c
            .target
            .as_ref()
            .ok_or_else(|| fail("talend-remote-engine has no fleet steps"))?;
        Engine::of(t)
    }

    /// The old engine's log (parameter `engine-log`, relative to its root).
    fn log_file(&self, params: &[Pair]) -> PathBuf {
        self.old
            .join(get(params, "engine-log").unwrap_or("data/log/tesb.log"))
    }
}

fn script(root: &Path, name: &str) -> String {
    root.join("bin").join(name).display().to_string()
}

/// Step 3: `<old>/bin/stop`, keeping what it printed.
fn stop_old(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let exit = cmd::run_ok(&script(&e.old, "stop"), &[], None)?;
    Ok(vec![output("stop", exit.stdout.trim())])
}

/// Undo of step 3.
fn start_old(c: &Call) -> Result<()> {
    let e = Engine::called(c)?;
    cmd::run_ok(&script(&e.old, "start"), &[], None).map(drop)
}

/// Step 4. Installed as a service, the new engine may be running: the procedure stops it.
fn check_new(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    for f in ["bin/start", "bin/stop", "etc"] {
        if !e.new.join(f).exists() {
            return Err(fail(format!(
                "the new installation has no {}",
                e.new.join(f).display()
            )));
        }
    }
    let exit = cmd::run_ok(&script(&e.new, "stop"), &[], None)?;
    if !exit.stdout.to_lowercase().contains("not running") {
        warn!(
            "the new engine in {} was running; stopped it before copying",
            e.new.display()
        );
    }
    Ok(vec![])
}

/// Step 8: `<new>/bin/start`.
fn start_new(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    cmd::run_ok(&script(&e.new, "start"), &[], None)?;
    Ok(vec![])
}

/// Undo of step 8.
fn stop_new(c: &Call) -> Result<()> {
    let e = Engine::called(c)?;
    cmd::run_ok(&script(&e.new, "stop"), &[], None).map(drop)
}

/// Step 9: paired again, on the new version, with every task of the old engine running.
fn verify(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let api = api::Api::new(c.params())?;
    let timeout = cutover_sdk::params::int(c.params(), "verify-timeout", 120)? * 1000;
    let want_version = c.param_opt("to-version");
    let expected: Vec<&str> = c
        .output("tasks")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    let summary = wait::poll(timeout, 500, |n| {
        let entry = api.engine(&e.id).map_err(|err| err.message)?;
        if entry.status != "PAIRED" {
            return Err(format!("engine {} is {}", e.id, entry.status));
        }
        if let (Some(want), Some(got)) = (want_version, &entry.version) {
            if want != got {
                return Err(format!(
                    "engine {} reports version {got}, expected {want}",
                    e.id
                ));
            }
        }
        let running = entry.running();
        let missing: Vec<String> = expected
            .iter()
            .filter(|id| !running.contains(&id.to_string()))
            .map(|id| entry.describe_task(id))
            .collect();
        cutover_sdk::progress(
            &format!(
                "tasks running again: {}/{} (check {n})",
                expected.len() - missing.len(),
                expected.len()
            ),
            Some((expected.len() - missing.len()) as f32 / expected.len().max(1) as f32),
        );
        if missing.is_empty() {
            Ok(format!(
                "{} tasks running on {}",
                running.len(),
                entry.version.clone().unwrap_or_default()
            ))
        } else {
            Err(format!(
                "{} of {} tasks not running, e.g. {}",
                missing.len(),
                expected.len(),
                missing
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ))
        }
    })
    .map_err(|err| err.context("the new engine is not serving its tasks"))?;
    Ok(vec![output("verified", summary)])
}

/// Steps that write an install never run its programs, and the other way round.
const WRITE_NEW: &[Cap] = &[Cap::Dir("{new}", Access::ReadWrite)];

impl cutover_sdk::Adapter for TalendRemoteEngine {
    fn about() -> About {
        let p = declare;
        About {
            name: "talend-remote-engine",
            version: env!("CARGO_PKG_VERSION"),
            summary: "in-place Talend Remote Engine upgrade keeping its tasks deployed",
            parameters: vec![
                p(
                    "api",
                    "management API base URL, e.g. https://api.eu.cloud.talend.com",
                    true,
                    false,
                    None,
                ),
                p(
                    "token-secret",
                    "name of the [secrets] entry holding the API bearer token",
                    false,
                    false,
                    Some("tmc-token"),
                ),
                p(
                    "pairing-url",
                    "pairing.service.url for the new engines (kept as installed when absent)",
                    false,
                    false,
                    None,
                ),
                p(
                    "unpair-wait",
                    "seconds to wait at least after unpairing (Talend documents 2 minutes)",
                    false,
                    false,
                    Some("120"),
                ),
                p(
                    "unpair-confirm",
                    "what confirms the unpairing: `log` (the engine log line), `api`, or `none`",
                    false,
                    false,
                    Some("log"),
                ),
                p(
                    "unpair-log-line",
                    "text of the engine log line that confirms the unpairing",
                    false,
                    false,
                    Some("unpaired from Talend Management Console"),
                ),
                p(
                    "confirm-timeout",
                    "seconds to wait for the confirmation past `unpair-wait` before failing",
                    false,
                    false,
                    Some("600"),
                ),
                p(
                    "engine-log",
                    "the engine log, relative to the install root",
                    false,
                    false,
                    Some("data/log/tesb.log"),
                ),
                p(
                    "from-version",
                    "version the management API must report before the upgrade",
                    false,
                    false,
                    None,
                ),
                p(
                    "to-version",
                    "version the management API must report after it",
                    false,
                    false,
                    None,
                ),
                p(
                    "verify-timeout",
                    "seconds to wait for every task to run on the new engine",
                    false,
                    false,
                    Some("120"),
                ),
                p(
                    "engine-id",
                    "the engine's id in the management console",
                    true,
                    true,
                    None,
                ),
                p(
                    "old",
                    "install root of the running engine",
                    true,
                    true,
                    None,
                ),
                p(
                    "new",
                    "install root of the new engine version",
                    true,
                    true,
                    None,
                ),
            ],
            capabilities: vec![
                Cap::Dir("{old}", Access::Read).capability(),
                Cap::Dir("{new}", Access::Read).capability(),
                Capability::Http("{api}".into()),
                Capability::Secret("{token-secret}".into()),
            ],
            leases: vec!["{old}/.cutover-lease".into()],
        }
    }

    const STEPS: &'static [StepDef] = &[
        StepDef {
            name: "unpair",
            about: "unpair the old engine through the API, keeping its deployments; journal the new key",
            run: pairing::unpair,
            undo: Some(pairing::repair_old),
            idempotent: true,
            undo_idempotent: true,
            // The undo writes the re-pairing key of the old engine.
            caps: &[Cap::Dir("{old}/etc", Access::ReadWrite)],
            ..StepDef::TARGET
        },
        StepDef {
            name: "settle",
            about: "wait until the unpairing has settled (time and engine log)",
            run: pairing::settle,
            idempotent: true,
            timeout_s: 900,
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop-old",
            about: "stop the old engine (bin/stop)",
            run: stop_old,
            undo: Some(start_old),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 120,
            caps: &[Cap::Exec("{old}/bin/stop"), Cap::Exec("{old}/bin/start")],
            ..StepDef::TARGET
        },
        StepDef {
            name: "check-new",
            about: "check the new installation exists and is not running",
            run: check_new,
            idempotent: true,
            caps: &[Cap::Exec("{new}/bin/stop")],
            ..StepDef::TARGET
        },
        StepDef {
            name: "copy-data",
            about: "copy data/dsrunner and data/cls into the new installation",
            run: data::copy_data,
            idempotent: true,
            timeout_s: 1800,
            caps: WRITE_NEW,
            ..StepDef::TARGET
        },
        StepDef {
            name: "rewrite-paths",
            about: "point .metadata and state.dat paths at the new installation",
            run: data::rewrite_paths,
            idempotent: true,
            timeout_s: 600,
            caps: WRITE_NEW,
            ..StepDef::TARGET
        },
        StepDef {
            name: "configure-pairing",
            about: "set the pairing URL and the journaled key in the new etc/",
            run: pairing::configure_pairing,
            undo: Some(pairing::unconfigure_pairing),
            undo_idempotent: true,
            idempotent: true,
            timeout_s: 30,
            caps: WRITE_NEW,
            ..StepDef::TARGET
        },
        StepDef {
            name: "start-new",
            about: "start the new engine (bin/start)",
            run: start_new,
            undo: Some(stop_new),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 120,
            caps: &[Cap::Exec("{new}/bin/start"), Cap::Exec("{new}/bin/stop")],
            ..StepDef::TARGET
        },
        StepDef {
            name: "verify",
            about: "check the engine is paired and its tasks run again",
            run: verify,
            idempotent: true,
            timeout_s: 300,
            ..StepDef::TARGET
        },
    ];

    /// Per engine: both installs look right, and the console shows it paired, on
    /// `from-version`, running from `old`.
    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        let params = ctx.params;
        let mut findings = Vec::new();
        let mut block =
            |t: &Target, message: String| findings.push(preflight::blocker(Some(&t.id), message));
        let api = api::Api::new(&params)?;
        for t in &targets {
            let e = match Engine::of(t) {
                Ok(e) => e,
                Err(err) => {
                    block(t, err.message);
                    continue;
                }
            };
            for (what, path) in [
                ("the old engine's bin/stop", e.old.join("bin/stop")),
                (
                    "the old engine's data/dsrunner",
                    e.old.join("data/dsrunner"),
                ),
            ] {
                if !path.exists() {
                    block(
                        t,
                        format!(
                            "{what} ({}) is missing: is `old` the running engine's install root?",
                            path.display()
                        ),
                    );
                }
            }
            if !e.new.is_dir() {
                block(t, format!("the new installation {} is missing: install the new Remote Engine version there first (procedure step 4)", e.new.display()));
            } else {
                for f in ["bin/start", "bin/stop", "etc"] {
                    if !e.new.join(f).exists() {
                        block(t, format!("the new installation {} has no {f}: it is not a complete Remote Engine install", e.new.display()));
                    }
                }
            }
            if e.new.starts_with(&e.old) || e.old.starts_with(&e.new) {
                block(
                    t,
                    format!(
                        "`old` and `new` must be separate installations ({} / {})",
                        e.old.display(),
                        e.new.display()
                    ),
                );
            }
            match api.engine(&e.id) {
                Err(err) => block(t, err.message),
                Ok(entry) => {
                    if entry.status != "PAIRED" {
                        block(t, format!("the management API reports engine {} as {}: the upgrade starts from a paired, running engine", e.id, entry.status));
                    }
                    if let (Some(want), Some(got)) = (get(&params, "from-version"), &entry.version)
                    {
                        if want != got {
                            block(t, format!("the management API reports engine {} on version {got}, but the spec says from-version = \"{want}\": check `engine-id` and `old`", e.id));
                        }
                    }
                    if let Some(dir) = &entry.install_directory {
                        if Path::new(dir) != e.old {
                            block(
                                t,
                                format!(
                                    "engine {} runs from {dir}, not from the spec's old = \"{}\"",
                                    e.id,
                                    e.old.display()
                                ),
                            );
                        }
                    }
                }
            }
        }
        Ok(findings)
    }
}

cutover_sdk::export_adapter!(TalendRemoteEngine);
