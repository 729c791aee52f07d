//! The grid-wide steps, run once for the fleet through `xscmd`: `check-grid`,
//! `suspend-balancing` (and its undo, which restores the rankings before), `update` and
//! `resume-balancing`.

use crate::{read_bundle, xscmd};
use cutover_sdk::{fail, info, output, warn, Call, Output, Pair, Result};
use std::collections::{BTreeMap, BTreeSet};

/// The rankings the update moves to: every grid service the bundle publishes (a service
/// `osgiCurrent` shows for a map set), as integers. Other services of the bundle are left out,
/// as preflight warns.
fn wanted(params: &[Pair]) -> Result<Vec<(String, i64)>> {
    let (path, b) = read_bundle(params)?;
    let mut grid = BTreeSet::new();
    for (g, ms) in xscmd::map_sets(params)? {
        grid.extend(xscmd::current(params, &g, &ms)?.into_keys());
    }
    b.services
        .iter()
        .filter(|(svc, _, _)| grid.contains(svc))
        .map(|(svc, r, file)| {
            r.parse().map(|r| (svc.clone(), r)).map_err(|_| {
                fail(format!(
                    "bundle {}: service {svc} ({file}) has ranking `{r}`, not an integer",
                    path.display()
                ))
            })
        })
        .collect()
}

/// `suspendBalancing` or `resumeBalancing` for every grid/map set.
fn balancing(params: &[Pair], command: &str) -> Result<()> {
    for (g, ms) in xscmd::map_sets(params)? {
        xscmd::run_ok(params, &[command, "-g", &g, "-ms", &ms])?;
        info!("{command} -g {g} -ms {ms}: done");
    }
    Ok(())
}

/// The active rankings of the services the update moves, as `-sr` takes them.
fn active_of(wanted: &[(String, i64)], active: &BTreeMap<String, i64>) -> String {
    let rankings: Vec<(String, i64)> = wanted
        .iter()
        .filter_map(|(svc, _)| active.get(svc).map(|r| (svc.clone(), *r)))
        .collect();
    xscmd::sr(&rankings)
}

/// `check-grid`: every server of the fleet sees the new rankings (`osgiAll`), and they are
/// valid targets (`osgiCheck`).
pub fn check_grid(c: &Call) -> Result<Vec<Output>> {
    let params = c.params();
    let wanted = wanted(params)?;
    let text = xscmd::run(params, &["osgiAll"])?;
    let tables = xscmd::tables(&text);
    let mut missing = Vec::new();
    for t in c.fleet() {
        let Some(rows) = tables.get(&t.id) else {
            missing.push(format!("server {} is not in osgiAll", t.id));
            continue;
        };
        for (svc, r) in &wanted {
            let has = rows
                .iter()
                .any(|(s, list)| s == svc && list.split(',').any(|x| x.trim() == r.to_string()));
            if !has {
                missing.push(format!("server {} does not offer {svc} ranking {r}", t.id));
            }
        }
    }
    if !missing.is_empty() {
        return Err(fail(format!(
            "osgiAll: {}; every node must have the new bundle started",
            missing.join("; ")
        )));
    }
    if !text.contains("All servers have the same service rankings") {
        return Err(fail(format!(
            "osgiAll: the servers do not have the same service rankings: {}",
            text.lines().last().unwrap_or_default()
        )));
    }
    let sr = xscmd::sr(&wanted);
    xscmd::run_ok(params, &["osgiCheck", "-sr", &sr])?;
    Ok(vec![output("rankings", sr)])
}

/// `suspend-balancing`: records each map set's active rankings first, so that its undo can
/// restore them whatever happened after.
pub fn suspend(c: &Call) -> Result<Vec<Output>> {
    let params = c.params();
    let wanted = wanted(params)?;
    let mut outputs = Vec::new();
    for (g, ms) in xscmd::map_sets(params)? {
        let key = format!("before:{g}/{ms}");
        let before = match c.output(&key) {
            Some(b) => b.to_string(),
            None => active_of(&wanted, &xscmd::current(params, &g, &ms)?),
        };
        outputs.push(output(&key, before));
    }
    balancing(params, "suspendBalancing")?;
    Ok(outputs)
}

/// Undo of `suspend-balancing`: if an update went through (it completed, or it completed in
/// the grid while cutover was down), the recorded rankings are restored with balancing
/// suspended; then balancing resumes.
pub fn unsuspend(c: &Call) -> Result<()> {
    let params = c.params();
    for (g, ms) in xscmd::map_sets(params)? {
        let Some(before) = c.output(&format!("before:{g}/{ms}")) else {
            continue;
        };
        let active = xscmd::current(params, &g, &ms)?;
        let changed = before
            .split(',')
            .filter_map(|x| x.split_once(';'))
            .any(|(svc, r)| active.get(svc).map(|a| a.to_string()) != Some(r.to_string()));
        if changed {
            warn!("{g}/{ms} is not on rankings {before} any more: updating back");
            xscmd::run_ok(params, &["suspendBalancing", "-g", &g, "-ms", &ms])?;
            xscmd::run(params, &["osgiUpdate", "-sr", before, "-g", &g, "-ms", &ms])?;
        }
    }
    balancing(params, "resumeBalancing")
}

/// `update`: `osgiCheck` again, then `osgiUpdate` per map set, unless a map set already has
/// the new rankings (a re-run after a crash): the update happens once. Going back is the undo
/// of `suspend-balancing`, which recorded the rankings before.
pub fn update(c: &Call) -> Result<Vec<Output>> {
    let params = c.params();
    let wanted = wanted(params)?;
    let sr = xscmd::sr(&wanted);
    for (g, ms) in xscmd::map_sets(params)? {
        let active = xscmd::current(params, &g, &ms)?;
        if wanted.iter().all(|(svc, r)| active.get(svc) == Some(r)) {
            warn!("{g}/{ms} already has rankings {sr} active (a re-run): not updated again");
            continue;
        }
        xscmd::run_ok(params, &["osgiCheck", "-sr", &sr])?;
        cutover_sdk::progress(
            &format!("osgiUpdate -sr {sr} -g {g} -ms {ms}: quiescing and draining the grid"),
            None,
        );
        let text = xscmd::run(params, &["osgiUpdate", "-sr", &sr, "-g", &g, "-ms", &ms])?;
        if !text.contains("Update succeeded for the following service rankings") {
            return Err(fail(format!("osgiUpdate -g {g} -ms {ms}: {}", text.trim())));
        }
        let reported: Vec<(String, String)> =
            xscmd::tables(&text).into_values().flatten().collect();
        for (svc, r) in &wanted {
            if !reported
                .iter()
                .any(|(s, v)| s == svc && *v == r.to_string())
            {
                return Err(fail(format!(
                    "osgiUpdate -g {g} -ms {ms} did not report {svc} at ranking {r}: {}",
                    text.trim()
                )));
            }
        }
        info!("{g}/{ms}: rankings {sr} active");
    }
    Ok(Vec::new())
}

/// `resume-balancing`: `resumeBalancing` for every grid/map set.
pub fn resume(c: &Call) -> Result<Vec<Output>> {
    balancing(c.params(), "resumeBalancing")?;
    Ok(vec![])
}
