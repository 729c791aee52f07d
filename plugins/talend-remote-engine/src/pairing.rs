//! Pairing: unpair the old engine and wait until that has settled, hand its key to the new
//! engine, and re-pair the old one on undo.

use crate::control::{self, Install};
use crate::{api, Engine};
use cutover_sdk::params::get;
use cutover_sdk::{config, fail, files, info, output, secret_output, wait, warn};
use cutover_sdk::{Call, Output, Pair, Result};
use std::path::Path;

/// Where the pre-authorized key goes, and under which key.
const KEY_FILE: &str = "etc/preauthorized.key.cfg";
const KEY: &str = "remote.engine.pre.authorized.key";
/// Where the pairing service URL goes.
const PAIRING_FILE: &str = "etc/org.talend.ipaas.rt.pairing.client.cfg";
const PAIRING_URL: &str = "pairing.service.url";

/// The engine log line that confirms an unpairing, when the spec gives one (Talend
/// documents none).
fn confirm_line(params: &[Pair]) -> Option<&str> {
    get(params, "unpair-log-line").filter(|l| !l.is_empty())
}

fn size_of(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Step 1. Idempotent: after a crash that lost the answer, the engine is already unpaired
/// and its key is read back from the console's engine entry, as Talend documents.
pub fn unpair(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let params = c.params();
    let api = api::Api::new(params)?;
    // Any error reading the entry fails the step permanently (not as transient).
    let before = api.engine(&e.id).map_err(|err| fail(err.message))?;
    let log_file = e.log_file(params);
    let mut offset = size_of(&log_file);
    let tasks: Vec<String> = api
        .engine_tasks(&e.id)
        .map_err(|err| fail(err.message))?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    info!(
        "engine {}: {} task(s) on it before the upgrade",
        e.id,
        tasks.len()
    );
    let key = if before.paired() {
        cutover_sdk::progress(
            &format!(
                "unpairing engine {} (keeping OSGi and microservice deployments)",
                e.id
            ),
            None,
        );
        api.unpair(&e.id)?
    } else {
        warn!("engine {} is already unpaired (a re-run): taking its pre-authorized key from the engine entry", e.id);
        // The engine may have logged its confirmation before this re-run: settle looks from it.
        if let Some(line) = confirm_line(params) {
            let text = files::read_string(&log_file).unwrap_or_default();
            if let Some(at) = text.rfind(line) {
                offset = text[..at].rfind('\n').map_or(0, |n| n + 1) as u64;
            }
        }
        before
            .key
            .ok_or_else(|| fail(format!("engine {} is unpaired and the API shows no pre-authorized key: find it in the console's Remote Engine key field", e.id)))?
    };
    Ok(vec![
        secret_output("key", key),
        output("log-offset", offset.to_string()),
        output("unpaired-at", wait::now_ms().to_string()),
        output("tasks", tasks.join(",")),
    ])
}

/// Step 2: at least `unpair-wait` seconds after the unpairing, and its confirmation.
pub fn settle(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let params = c.params();
    let wait_ms = cutover_sdk::params::int(params, "unpair-wait", 120)? * 1000;
    let give_up_ms = wait_ms + cutover_sdk::params::int(params, "confirm-timeout", 600)? * 1000;
    let since: u64 = c
        .output("unpaired-at")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(wait::now_ms);
    let confirm = get(params, "unpair-confirm").unwrap_or("api");
    let line = match (confirm, confirm_line(params)) {
        ("log", None) => return Err(fail(
            "unpair-confirm = \"log\" needs `unpair-log-line`: the line the engine logs once unpaired (Talend documents none; or use unpair-confirm = \"api\")",
        )),
        (_, l) => l.unwrap_or_default(),
    };
    let log_file = e.log_file(params);
    let offset: u64 = c
        .output("log-offset")
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
                "api" => api.engine(&e.id).map(|x| !x.paired()).unwrap_or(false),
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
        cutover_sdk::progress(
            &format!(
                "unpairing settles: {} of {} s{note}",
                waited / 1000,
                wait_ms / 1000
            ),
            Some(fraction),
        );
        if seen && waited >= wait_ms {
            return Ok(vec![output("settled-after-ms", waited.to_string())]);
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

/// Set `key` in the properties file `path` (created when missing); unchanged files are not
/// rewritten.
fn set_property(path: &Path, key: &str, value: &str) -> Result<()> {
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

/// The key `unpair` journaled.
fn journaled_key(c: &Call) -> Result<&str> {
    c.output("key").filter(|k| !k.is_empty()).ok_or_else(|| {
        fail("no pre-authorized key in the journal for this engine (the `unpair` step did not record one): find it in the console's Remote Engine key field")
    })
}

/// Step 7: the pairing URL and the key from step 1.
pub fn configure_pairing(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let pairing = e.new.join(PAIRING_FILE);
    match c.param_opt("pairing-url") {
        Some(url) => {
            // The file as the new installation shipped it, kept once for the undo.
            let kept = kept_pairing(&e);
            if !kept.exists() {
                files::write_atomic(&kept, files::read_string(&pairing)?.as_bytes())?;
            }
            set_property(&pairing, PAIRING_URL, url)?
        }
        None => {
            let current =
                config::get(&files::read_string(&pairing)?, PAIRING_URL).unwrap_or_default();
            if current.is_empty() || current.contains('<') {
                return Err(fail(format!("{} has no usable {PAIRING_URL} (`{current}`): set `pairing-url` under [adapter.params]", pairing.display())));
            }
        }
    }
    set_property(&e.new.join(KEY_FILE), KEY, journaled_key(c)?)?;
    Ok(vec![])
}

/// Where `configure-pairing` keeps the new installation's pairing file as shipped.
fn kept_pairing(e: &Engine) -> std::path::PathBuf {
    e.new.join("etc/.cutover-pairing.cfg.orig")
}

/// Undo of `configure-pairing`: the new installation's pairing file as it shipped (its key
/// file is left: the key is the console's current one, the old key cannot come back).
pub fn unconfigure_pairing(c: &Call) -> Result<()> {
    let e = Engine::called(c)?;
    let kept = kept_pairing(&e);
    if kept.exists() {
        files::write_atomic(
            &e.new.join(PAIRING_FILE),
            files::read_string(&kept)?.as_bytes(),
        )?;
        std::fs::remove_file(&kept).map_err(|err| files::io_error("removing", &kept, err))?;
    }
    Ok(())
}

/// Undo of step 1: re-pair the old engine the documented way ("Pairing Remote Engines with
/// the configuration file": stop the engine, put the key in `etc/preauthorized.key.cfg`,
/// start it; it pairs when started). The key is the engine entry's current one; when the new
/// engine had paired the entry, it is unpaired again (keeping deployments) for a fresh key.
/// Then the console must show the engine paired.
pub fn repair_old(c: &Call) -> Result<()> {
    let e = Engine::called(c)?;
    let api = api::Api::new(c.params())?;
    let entry = api.engine(&e.id)?;
    let key = if entry.paired() {
        info!(
            "engine {} is paired (with the new installation): unpairing it again, keeping deployments, to re-pair the old one",
            e.id
        );
        api.unpair(&e.id)?
    } else {
        entry
            .key
            .filter(|k| !k.is_empty())
            .map(Ok)
            .unwrap_or_else(|| journaled_key(c).map(str::to_string))?
    };
    control::stop(c, &e, Install::Old)?;
    set_property(&e.old.join(KEY_FILE), KEY, &key)?;
    control::start(c, &e, Install::Old)?;
    wait::poll(60_000, 300, |_| {
        let entry = api.engine(&e.id).map_err(|err| err.message)?;
        if entry.paired() {
            Ok(())
        } else {
            Err(format!("engine {} is still {}", e.id, entry.status))
        }
    })
    .map_err(|err| err.context("re-pairing the old engine"))
}
