//! Step 9: the engine is paired again and every task it ran is running again, as the
//! Processing API reports them (the newest execution of each task).

use crate::{api, Engine};
use cutover_sdk::params::get;
use cutover_sdk::{fail, output, wait, Call, Output, Result};

/// Paired (on `to-version` when the API reports a version), with the newest execution of
/// every task recorded by `unpair` running on this engine. No task to check is a failure
/// unless `allow-no-tasks` says the engine runs none.
pub fn verify(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let params = c.params();
    let api = api::Api::new(params)?;
    let timeout = cutover_sdk::params::int(params, "verify-timeout", 120)? * 1000;
    let want_version = get(params, "to-version");
    let running: Vec<&str> = get(params, "running-statuses")
        .unwrap_or("EXECUTING")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let expected: Vec<&str> = c
        .output("tasks")
        .unwrap_or_default()
        .split(',')
        .filter(|s| !s.is_empty())
        .collect();
    if expected.is_empty() && get(params, "allow-no-tasks") != Some("true") {
        return Err(fail(format!(
            "the management API listed no task on engine {} before the upgrade: nothing shows the new engine serves anything (set allow-no-tasks = \"true\" if it runs none)",
            e.id
        )));
    }
    let summary = wait::poll(timeout, 1000, |n| {
        let entry = api.engine(&e.id).map_err(|err| err.message)?;
        if !entry.paired() {
            return Err(format!("engine {} is {}", e.id, entry.status));
        }
        let version = match (want_version, &entry.version) {
            (Some(want), Some(got)) if want != got => {
                return Err(format!(
                    "engine {} reports version {got}, expected {want}",
                    e.id
                ))
            }
            (Some(want), None) => format!("version not reported (to-version {want} not checked)"),
            (_, got) => format!("version {}", got.as_deref().unwrap_or("not reported")),
        };
        let mut missing = Vec::new();
        for task in &expected {
            let why = match api.latest_execution(task).map_err(|err| err.message)? {
                None => Some("no execution".to_string()),
                Some(x) if x.engine.as_deref().is_some_and(|g| g != e.id) => Some(format!(
                    "{} on engine {}",
                    x.status,
                    x.engine.unwrap_or_default()
                )),
                Some(x) if !running.contains(&x.status.as_str()) => Some(match x.error {
                    Some(err) => format!("{}: {err}", x.status),
                    None => x.status,
                }),
                Some(_) => None,
            };
            if let Some(why) = why {
                missing.push(format!("{task} ({why})"));
            }
        }
        let ok = expected.len() - missing.len();
        cutover_sdk::progress(
            &format!("tasks running again: {ok}/{} (check {n})", expected.len()),
            Some(ok as f32 / expected.len().max(1) as f32),
        );
        if missing.is_empty() {
            Ok(format!("{ok} tasks running; {version}"))
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
