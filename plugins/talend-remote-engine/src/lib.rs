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

use cutover_sdk::adapter_types::*;
use cutover_sdk::describe::{dir, exec, parameter, target_step, with_caps};
use cutover_sdk::params::{get, int, label, output};
use cutover_sdk::step::{fail, out, secret};
use cutover_sdk::{cmd, config, files, log, preflight, progress, rewrite, wait};
use std::path::{Path, PathBuf};

struct TalendRemoteEngine;

/// Where the pre-authorized key goes, and under which key.
const KEY_FILE: &str = "etc/preauthorized.key.cfg";
const KEY: &str = "remote.engine.pre.authorized.key";
/// Where the pairing service URL goes.
const PAIRING_FILE: &str = "etc/org.talend.ipaas.rt.pairing.client.cfg";
const PAIRING_URL: &str = "pairing.service.url";

/// The per-target facts every step needs.
struct Engine {
    id: String,
    old: PathBuf,
    new: PathBuf,
}

impl Engine {
    fn of(t: &Target) -> Result<Engine, StepError> {
        Ok(Engine {
            id: label(t, "engine-id")?.to_string(),
            old: PathBuf::from(label(t, "old")?),
            new: PathBuf::from(label(t, "new")?),
        })
    }

    fn log_file(&self, params: &[Pair]) -> PathBuf {
        self.old
            .join(get(params, "engine-log").unwrap_or("data/log/tesb.log"))
    }
}

fn script(root: &Path, name: &str) -> String {
    root.join("bin").join(name).display().to_string()
}

/// The engine log line that confirms an unpairing.
fn confirm_line(params: &[Pair]) -> &str {
    get(params, "unpair-log-line").unwrap_or("unpaired from Talend Management Console")
}

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

impl cutover_sdk::Adapter for TalendRemoteEngine {
    fn describe() -> Description {
        let p = parameter;
        let s = target_step;
        Description {
            leases: vec!["{old}/.cutover-lease".into()],
            name: "talend-remote-engine".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "in-place Talend Remote Engine upgrade keeping its tasks deployed".into(),
            parameters: vec![
                p("api", "management API base URL, e.g. https://api.eu.cloud.talend.com", true, false, None),
                p("token-secret", "name of the [secrets] entry holding the API bearer token", false, false, Some("tmc-token")),
                p("pairing-url", "pairing.service.url for the new engines (kept as installed when absent)", false, false, None),
                p("unpair-wait", "seconds to wait at least after unpairing (Talend documents 2 minutes)", false, false, Some("120")),
                p("unpair-confirm", "what confirms the unpairing: `log` (the engine log line), `api`, or `none`", false, false, Some("log")),
                p("unpair-log-line", "text of the engine log line that confirms the unpairing", false, false, Some("unpaired from Talend Management Console")),
                p("confirm-timeout", "seconds to wait for the confirmation past `unpair-wait` before failing", false, false, Some("600")),
                p("engine-log", "the engine log, relative to the install root", false, false, Some("data/log/tesb.log")),
                p("from-version", "version the management API must report before the upgrade", false, false, None),
                p("to-version", "version the management API must report after it", false, false, None),
                p("verify-timeout", "seconds to wait for every task to run on the new engine", false, false, Some("120")),
                p("engine-id", "the engine's id in the management console", true, true, None),
                p("old", "install root of the running engine", true, true, None),
                p("new", "install root of the new engine version", true, true, None),
            ],
            // Steps that write an install never run its programs, and the other way round.
            capabilities: vec![
                dir("{old}", Access::Read),
                dir("{new}", Access::Read),
                Capability::Http("{api}".into()),
                Capability::Secret("{token-secret}".into()),
            ],
            steps: vec![
                // Its undo writes the re-pairing key of the old engine.
                with_caps(
                    s("unpair", "unpair the old engine through the API, keeping its deployments; journal the new key", true, true, 60),
                    vec![dir("{old}/etc", Access::ReadWrite)],
                ),
                s("settle", "wait until the unpairing has settled (time and engine log)", false, true, 900),
                with_caps(
                    s("stop-old", "stop the old engine (bin/stop)", true, true, 120),
                    vec![exec("{old}/bin/stop"), exec("{old}/bin/start")],
                ),
                with_caps(
                    s("check-new", "check the new installation exists and is not running", false, true, 60),
                    vec![exec("{new}/bin/stop")],
                ),
                with_caps(
                    s("copy-data", "copy data/dsrunner and data/cls into the new installation", false, true, 1800),
                    vec![dir("{new}", Access::ReadWrite)],
                ),
                with_caps(
                    s("rewrite-paths", "point .metadata and state.dat paths at the new installation", false, true, 600),
                    vec![dir("{new}", Access::ReadWrite)],
                ),
                with_caps(
                    s("configure-pairing", "set the pairing URL and the journaled key in the new etc/", false, true, 30),
                    vec![dir("{new}", Access::ReadWrite)],
                ),
                with_caps(
                    s("start-new", "start the new engine (bin/start)", true, true, 120),
                    vec![exec("{new}/bin/start"), exec("{new}/bin/stop")],
                ),
                s("verify", "check the engine is paired and its tasks run again", false, true, 300),
            ],
        }
    }

    fn preflight(
        targets: Vec<Target>,
        params: Vec<Pair>,
        _strategy: String,
    ) -> Result<Vec<Finding>, PluginError> {
        let mut findings = Vec::new();
        let mut block =
            |t: &Target, message: String| findings.push(preflight::blocker(Some(&t.id), message));
        let api = api::Api::new(&params).map_err(|e| preflight::refuse(e.message))?;
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

    fn run_step(
        step: String,
        target: Option<Target>,
        ctx: StepContext,
    ) -> Result<Vec<Output>, StepError> {
        let t = target.ok_or_else(|| fail("talend-remote-engine has no fleet steps"))?;
        let e = Engine::of(&t)?;
        let params = &ctx.params;
        match step.as_str() {
            "unpair" => unpair(&e, params),
            "settle" => settle(&e, &ctx),
            "stop-old" => {
                let exit = cmd::run_ok(&script(&e.old, "stop"), &[], None)?;
                Ok(vec![out("stop", exit.stdout.trim())])
            }
            "check-new" => {
                for f in ["bin/start", "bin/stop", "etc"] {
                    if !e.new.join(f).exists() {
                        return Err(fail(format!(
                            "the new installation has no {}",
                            e.new.join(f).display()
                        )));
                    }
                }
                // Installed as a service, the new engine may be running: the procedure stops it.
                let exit = cmd::run_ok(&script(&e.new, "stop"), &[], None)?;
                if !exit.stdout.to_lowercase().contains("not running") {
                    log(
                        Level::Warn,
                        &format!(
                            "the new engine in {} was running; stopped it before copying",
                            e.new.display()
                        ),
                    );
                }
                Ok(vec![])
            }
            "copy-data" => {
                let mut outputs = Vec::new();
                for sub in ["dsrunner", "cls"] {
                    let from = e.old.join("data").join(sub);
                    let stats = files::copy_tree(&from, &e.new.join("data").join(sub))?;
                    log(
                        Level::Info,
                        &format!(
                            "copied {}: {} files, {} folders, {} bytes",
                            from.display(),
                            stats.files,
                            stats.dirs,
                            stats.bytes
                        ),
                    );
                    outputs.push(out(&format!("{sub}-files"), stats.files.to_string()));
                    outputs.push(out(&format!("{sub}-bytes"), stats.bytes.to_string()));
                }
                Ok(outputs)
            }
            "rewrite-paths" => rewrite_paths(&e),
            "configure-pairing" => configure_pairing(&e, &ctx),
            "start-new" => {
                cmd::run_ok(&script(&e.new, "start"), &[], None)?;
                Ok(vec![])
            }
            "verify" => verify(&e, &ctx),
            other => Err(fail(format!("talend-remote-engine has no step `{other}`"))),
        }
    }

    fn undo_step(step: String, target: Option<Target>, ctx: StepContext) -> Result<(), StepError> {
        let t = target.ok_or_else(|| fail("talend-remote-engine has no fleet steps"))?;
        let e = Engine::of(&t)?;
        match step.as_str() {
            "start-new" => cmd::run_ok(&script(&e.new, "stop"), &[], None).map(|_| ()),
            "stop-old" => cmd::run_ok(&script(&e.old, "start"), &[], None).map(|_| ()),
            "unpair" => repair_old(&e, &ctx),
            _ => Ok(()),
        }
    }
}

/// Step 1. Idempotent: after a crash that lost the answer, the engine is already unpaired
/// and its key is read back from the console's engine entry, as Talend documents.
fn unpair(e: &Engine, params: &[Pair]) -> Result<Vec<Output>, StepError> {
    let api = api::Api::new(params)?;
    let before = api.engine(&e.id).map_err(|err| fail(err.message))?;
    let log_file = e.log_file(params);
    let mut offset = size_of(&log_file);
    let tasks = before.task_ids();
    let key = if before.status == "PAIRED" {
        progress(
            &format!(
                "unpairing engine {} (keeping OSGi and microservice deployments)",
                e.id
            ),
            None,
        );
        api.unpair(&e.id)?
    } else {
        log(Level::Warn, &format!("engine {} is already unpaired (a re-run): taking its pre-authorized key from the engine entry", e.id));
        // The engine may have logged its confirmation before this re-run: settle looks from it.
        let text = files::read_string(&log_file).unwrap_or_default();
        if let Some(at) = text.rfind(confirm_line(params)) {
            offset = text[..at].rfind('\n').map_or(0, |n| n + 1) as u64;
        }
        before
            .key
            .ok_or_else(|| fail(format!("engine {} is unpaired and the API shows no pre-authorized key: find it in the console's Remote Engine key field", e.id)))?
    };
    Ok(vec![
        secret("key", key),
        out("log-offset", offset.to_string()),
        out("unpaired-at", wait::now_ms().to_string()),
        out("tasks", tasks.join(",")),
    ])
}

/// Step 2: at least `unpair-wait` seconds after the unpairing, and its confirmation.
fn settle(e: &Engine, ctx: &StepContext) -> Result<Vec<Output>, StepError> {
    let params = &ctx.params;
    let wait_ms = int(params, "unpair-wait", 120).map_err(fail)? * 1000;
    let give_up_ms = wait_ms + int(params, "confirm-timeout", 600).map_err(fail)? * 1000;
    let since: u64 = output(&ctx.outputs, "unpaired-at")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(wait::now_ms);
    let confirm = get(params, "unpair-confirm").unwrap_or("log");
    let line = confirm_line(params);
    let log_file = e.log_file(params);
    let offset: u64 = output(&ctx.outputs, "log-offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let api = api::Api::new(params)?;
    let mut seen = confirm == "none";
    loop {
        let waited = wait::now_ms().saturating_sub(since);
        if !seen {
            seen = match confirm {
                "log" => files::read_string(&log_file)?
                    .get(offset as usize..)
                    .is_some_and(|tail| tail.lines().any(|l| l.contains(line))),
                "api" => api
                    .engine(&e.id)
                    .map(|x| x.status != "PAIRED")
                    .unwrap_or(false),
                other => {
                    return Err(fail(format!(
                        "parameter `unpair-confirm` must be log, api or none, got `{other}`"
                    )))
                }
            };
        }
        let note = match (seen, confirm) {
            (true, "none") => String::new(),
            (true, _) => format!("; confirmed by the {confirm}"),
            (false, "log") => format!("; waiting for \"{line}\" in {}", log_file.display()),
            (false, _) => "; waiting for the API to show the engine unpaired".into(),
        };
        let fraction = (waited as f32 / wait_ms.max(1) as f32).min(1.0);
        progress(
            &format!(
                "unpairing settles: {} of {} s{note}",
                waited / 1000,
                wait_ms / 1000
            ),
            Some(fraction),
        );
        if seen && waited >= wait_ms {
            return Ok(vec![out("settled-after-ms", waited.to_string())]);
        }
        if waited >= give_up_ms {
            return Err(fail(format!(
                "engine {}: no confirmation of the unpairing after {} s{note}; check the engine, \
                 or set `unpair-confirm` / `confirm-timeout`",
                e.id,
                waited / 1000
            )));
        }
        wait::sleep_ms(500.min(wait_ms.saturating_sub(waited).max(100)));
    }
}

/// Step 6: move the install-root prefix of the two path fields to the new root.
fn rewrite_paths(e: &Engine) -> Result<Vec<Output>, StepError> {
    let (old, new) = (e.old.display().to_string(), e.new.display().to_string());
    let jobs = [
        (
            e.new.join("data/dsrunner/exec/osgi"),
            "artifactFile",
            ".metadata",
        ),
        (e.new.join("data/cls"), "currentFilePath", "-state.dat"),
    ];
    let mut outputs = Vec::new();
    for (dir, field, suffix) in jobs {
        let found = files::find(&dir, &|name| name.ends_with(suffix))?;
        let (mut changed, mut already, mut foreign) = (0, 0, 0);
        for (n, path) in found.iter().enumerate() {
            if n % 50 == 0 {
                progress(
                    &format!(
                        "rewriting {field} in {} ({n}/{})",
                        dir.display(),
                        found.len()
                    ),
                    Some(n as f32 / found.len().max(1) as f32),
                );
            }
            let text = files::read_string(path)?;
            let r = rewrite::field_prefix(&text, field, &old, &new);
            if r.rewritten > 0 {
                files::write_atomic(path, r.text.as_bytes())?;
                changed += 1;
            }
            already += usize::from(r.rewritten == 0 && r.already > 0);
            for v in &r.foreign {
                foreign += 1;
                log(
                    Level::Warn,
                    &format!(
                        "{}: {field} {v} is under neither install root; left as it is",
                        path.display()
                    ),
                );
            }
        }
        log(Level::Info, &format!("{field}: {} files, {changed} rewritten, {already} already pointing at the new root, {foreign} left alone", found.len()));
        outputs.push(out(&format!("{field}-rewritten"), changed.to_string()));
        outputs.push(out(&format!("{field}-already"), already.to_string()));
    }
    Ok(outputs)
}

fn set_property(path: &Path, key: &str, value: &str) -> Result<(), StepError> {
    let text = if path.exists() {
        files::read_string(path)?
    } else {
        String::new()
    };
    let updated = config::set(&text, key, value);
    if updated != text {
        files::write_atomic(path, updated.as_bytes())?;
    }
    Ok(())
}

fn journaled_key(ctx: &StepContext) -> Result<&str, StepError> {
    output(&ctx.outputs, "key").filter(|k| !k.is_empty()).ok_or_else(|| {
        fail("no pre-authorized key in the journal for this engine (the `unpair` step did not record one): find it in the console's Remote Engine key field")
    })
}

/// Step 7: the pairing URL and the key from step 1.
fn configure_pairing(e: &Engine, ctx: &StepContext) -> Result<Vec<Output>, StepError> {
    let pairing = e.new.join(PAIRING_FILE);
    match get(&ctx.params, "pairing-url") {
        Some(url) => set_property(&pairing, PAIRING_URL, url)?,
        None => {
            let current =
                config::get(&files::read_string(&pairing)?, PAIRING_URL).unwrap_or_default();
            if current.is_empty() || current.contains('<') {
                return Err(fail(format!("{} has no usable {PAIRING_URL} (`{current}`): set `pairing-url` under [adapter.params]", pairing.display())));
            }
        }
    }
    set_property(&e.new.join(KEY_FILE), KEY, journaled_key(ctx)?)?;
    Ok(vec![])
}

/// Step 9: paired again, on the new version, with every task of the old engine running.
fn verify(e: &Engine, ctx: &StepContext) -> Result<Vec<Output>, StepError> {
    let api = api::Api::new(&ctx.params)?;
    let timeout = int(&ctx.params, "verify-timeout", 120).map_err(fail)? * 1000;
    let want_version = get(&ctx.params, "to-version");
    let expected: Vec<&str> = output(&ctx.outputs, "tasks")
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
        progress(
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
    .map_err(|err| fail(format!("the new engine is not serving its tasks: {err}")))?;
    Ok(vec![out("verified", summary)])
}

/// Undo of step 1: re-pair the old engine. When the new engine had paired the entry, the
/// entry is unpaired again (keeping deployments) for a fresh key; otherwise the journaled
/// key is still the entry's. The old engine gets the key in `etc/` (it picks up `etc/*.cfg`
/// changes live, and reads it on start) and the console must show it paired again.
fn repair_old(e: &Engine, ctx: &StepContext) -> Result<(), StepError> {
    let api = api::Api::new(&ctx.params)?;
    let entry = api.engine(&e.id)?;
    let old = e.old.display().to_string();
    let key = if entry.status != "PAIRED" {
        entry
            .key
            .filter(|k| !k.is_empty())
            .map(Ok)
            .unwrap_or_else(|| journaled_key(ctx).map(str::to_string))?
    } else if entry.install_directory.as_deref() == Some(old.as_str()) {
        return Ok(());
    } else {
        log(
            Level::Info,
            &format!(
                "engine {} is paired with the new installation: unpairing it again (keeping deployments) to re-pair the old one",
                e.id
            ),
        );
        api.unpair(&e.id)?
    };
    set_property(&e.old.join(KEY_FILE), KEY, &key)?;
    wait::poll(60_000, 300, |_| {
        let entry = api.engine(&e.id).map_err(|err| err.message)?;
        match (entry.status.as_str(), entry.install_directory) {
            ("PAIRED", Some(dir)) if dir != old => {
                Err(format!("engine {} is paired with {dir}", e.id))
            }
            ("PAIRED", _) => Ok(()),
            (status, _) => Err(format!("engine {} is still {status}", e.id)),
        }
    })
    .map_err(|err| fail(format!("re-pairing the old engine: {err}")))
}

cutover_sdk::export_adapter!(TalendRemoteEngine);
