//! `talend-remote-engine`: upgrade a Talend Remote Engine in place without redeploying its
//! Data Service jobs and Route tasks, following Talend's documented procedure step by step:
//!
//! 1. `unpair`: record the tasks the Processing API has on the engine, then `DELETE
//!    {api}/processing/runtimes/remote-engines/{engine-id}/pairing` with both keep flags; the
//!    new pre-authorized key (read back from the engine entry) is a secret output.
//! 2. `settle`: wait at least `unpair-wait` seconds and until the API shows the engine
//!    unpaired (or, when told its wording, the engine log shows a line).
//! 3. `stop-old`: the old engine's service, or `<old>/bin/stop`.
//! 4. `check-new`: the new installation exists and is stopped.
//! 5. `copy-data`: `<old>/data/dsrunner` and `<old>/data/cls` into `<new>/data/`.
//! 6. `rewrite-paths`: the install-root prefix of `"artifactFile"` in every `.metadata` (in
//!    `data/dsrunner/exec/osgi` and `data/dsrunner/osgi`) and of `"currentFilePath"` in every
//!    `*-state.dat` (Unix and escaped Windows forms; idempotent).
//! 7. `configure-pairing`: `pairing.service.url` and the journaled key in `<new>/etc`.
//! 8. `start-new`: the new engine's service, or `<new>/bin/start`.
//! 9. `verify`: the API shows the engine paired (on `to-version` when it reports one) and the
//!    newest execution of every recorded task running.
//!
//! Undo: stop the new engine; re-pair the old one as Talend documents it (stop it, put the
//! engine entry's key in `etc/preauthorized.key.cfg`, start it; the entry is unpaired again
//! first when the new engine had paired it) and wait until the API shows it paired. Its data
//! was copied, never moved.

mod api;
mod control;
mod data;
mod pairing;
mod verify;

use control::Install;
use cutover_sdk::params::{declare, get, label};
use cutover_sdk::{fail, output, preflight, warn};
use cutover_sdk::{
    About, Access, Call, Cap, Capability, Finding, Output, Pair, PreflightContext, Result, StepDef,
    Target,
};
use std::path::PathBuf;

struct TalendRemoteEngine;

/// The per-target facts every step needs.
struct Engine {
    target: String,
    id: String,
    old: PathBuf,
    new: PathBuf,
    /// The system services running each installation, when they run as services.
    old_service: Option<String>,
    new_service: Option<String>,
}

impl Engine {
    /// From the target's `engine-id`, `old` and `new` labels (and `old-service`,
    /// `new-service` when set).
    fn of(t: &Target) -> Result<Engine> {
        let opt = |k: &str| {
            get(&t.labels, k)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        Ok(Engine {
            target: t.id.clone(),
            id: label(t, "engine-id")?.to_string(),
            old: PathBuf::from(label(t, "old")?),
            new: PathBuf::from(label(t, "new")?),
            old_service: opt("old-service"),
            new_service: opt("new-service"),
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

/// Step 3: stop the old engine, keeping what it printed.
fn stop_old(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let said = control::stop(c, &e, Install::Old)?;
    Ok(vec![output("stop", said)])
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
    let said = control::stop(c, &e, Install::New)?;
    if !said.to_lowercase().contains("not running") && e.new_service.is_none() {
        warn!(
            "the new engine in {} was running; stopped it before copying",
            e.new.display()
        );
    }
    Ok(vec![])
}

/// Step 8: start the new engine.
fn start_new(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    control::start(c, &e, Install::New)?;
    Ok(vec![])
}

/// Undo of step 8.
fn stop_new(c: &Call) -> Result<()> {
    let e = Engine::called(c)?;
    control::stop(c, &e, Install::New).map(drop)
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
                    "what confirms the unpairing: `api` (the entry is no longer PAIRED), `log` (a line of the engine log, `unpair-log-line`), or `none`",
                    false,
                    false,
                    Some("api"),
                ),
                p(
                    "unpair-log-line",
                    "with unpair-confirm = \"log\": the engine log line that confirms the unpairing (Talend documents none)",
                    false,
                    false,
                    None,
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
                    "running-statuses",
                    "executionStatus values of a running task, comma-separated (not documented by Talend)",
                    false,
                    false,
                    Some("EXECUTING"),
                ),
                p(
                    "allow-no-tasks",
                    "`true` when the engine runs no task: verify then checks the pairing only",
                    false,
                    false,
                    Some("false"),
                ),
                p(
                    "systemctl",
                    "path of systemctl, for targets whose engines run as services (`old-service`, `new-service`)",
                    false,
                    false,
                    None,
                ),
                p(
                    "old-service",
                    "systemd unit of the old engine, when it runs as a service",
                    false,
                    true,
                    None,
                ),
                p(
                    "new-service",
                    "systemd unit of the new engine, when it runs as a service",
                    false,
                    true,
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
            // The undo stops the old engine, writes its re-pairing key and starts it.
            caps: &[
                Cap::Dir("{old}/etc", Access::ReadWrite),
                Cap::Exec("{old}/bin/stop"),
                Cap::Exec("{old}/bin/start"),
                Cap::Exec("{systemctl?}"),
            ],
            ..StepDef::TARGET
        },
        StepDef {
            name: "settle",
            about: "wait until the unpairing has settled (time, and the API or the engine log)",
            run: pairing::settle,
            idempotent: true,
            timeout_s: 900,
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop-old",
            about: "stop the old engine (its service, or bin/stop); undoing `unpair` starts it again",
            run: stop_old,
            idempotent: true,
            timeout_s: 120,
            caps: &[Cap::Exec("{old}/bin/stop"), Cap::Exec("{systemctl?}")],
            ..StepDef::TARGET
        },
        StepDef {
            name: "check-new",
            about: "check the new installation exists and is stopped",
            run: check_new,
            idempotent: true,
            caps: &[Cap::Exec("{new}/bin/stop"), Cap::Exec("{systemctl?}")],
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
            about: "start the new engine (its service, or bin/start)",
            run: start_new,
            undo: Some(stop_new),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 120,
            caps: &[
                Cap::Exec("{new}/bin/start"),
                Cap::Exec("{new}/bin/stop"),
                Cap::Exec("{systemctl?}"),
            ],
            ..StepDef::TARGET
        },
        StepDef {
            name: "verify",
            about: "check the engine is paired and the newest execution of each of its tasks runs",
            run: verify::verify,
            idempotent: true,
            timeout_s: 300,
            ..StepDef::TARGET
        },
    ];

    /// Per engine: both installs look right, the console shows it paired (on `from-version`
    /// when it reports a version), and lists tasks on it; what could not be checked is said.
    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        let params = ctx.params;
        let mut findings = Vec::new();
        let mut notes = Vec::new();
        let mut block =
            |t: &Target, message: String| findings.push(preflight::blocker(Some(&t.id), message));
        let mut notes2 = Vec::new();
        let mut note =
            |t: &Target, message: String| notes.push(preflight::info(Some(&t.id), message));
        let mut warn_of =
            |t: &Target, message: String| notes2.push(preflight::warning(Some(&t.id), message));
        let api = api::Api::new(&params)?;
        let allow_empty = get(&params, "allow-no-tasks") == Some("true");
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
                Err(err) => block(t, err.to_string()),
                Ok(entry) => {
                    if !entry.paired() {
                        block(t, format!("the management API reports engine {} as {}: the upgrade starts from a paired, running engine", e.id, entry.status));
                    }
                    match (get(&params, "from-version"), &entry.version) {
                        (Some(want), Some(got)) if want != got => block(t, format!("the management API reports engine {} on version {got}, but the spec says from-version = \"{want}\": check `engine-id` and `old`", e.id)),
                        (Some(want), None) => warn_of(t, format!("from-version = \"{want}\" not checked: the management API reports no version for engine {}", e.id)),
                        _ => {}
                    }
                }
            }
            match api.engine_tasks(&e.id) {
                Err(err) => block(t, err.to_string()),
                Ok(tasks) if tasks.is_empty() && !allow_empty => warn_of(t, format!("the management API lists no task on engine {}: `verify` will fail, having nothing to check (set allow-no-tasks = \"true\" if the engine runs none)", e.id)),
                Ok(tasks) => note(t, format!("engine {}: {} task(s) to find running again after the upgrade", e.id, tasks.len())),
            }
        }
        findings.extend(notes2);
        findings.extend(notes);
        Ok(findings)
    }
}

cutover_sdk::export_adapter!(TalendRemoteEngine);
