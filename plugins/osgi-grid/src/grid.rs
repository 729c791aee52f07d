//! The grid-wide steps, run once for the fleet through `xscmd`: `check-grid`,
//! `suspend-balancing` (and its undo, which restores the rankings before), `update` and
//! `resume-balancing`. The map sets are those `osgiCurrent` shows using the bundle's services
//! (checked against parameter `map-sets` when it is given).

use crate::read_bundle;
use crate::xscmd::{self, MapSet};
use cutover_sdk::{fail, info, output, warn, Call, Output, Pair, Result};
use std::collections::{BTreeMap, BTreeSet};

/// (service, ranking) pairs.
type Rankings = Vec<(String, i64)>;

/// The rankings the update moves to: every service of the bundle the grid uses (one
/// `osgiCurrent` shows), as integers, and the map sets that use them. Other services of the
/// bundle are left out, as preflight warns.
pub fn plan(params: &[Pair]) -> Result<(Rankings, Vec<MapSet>)> {
    let (path, b) = read_bundle(params)?;
    let used: BTreeSet<String> = xscmd::current(params, &[])?
        .into_iter()
        .map(|r| r.service)
        .collect();
    let wanted = b
        .services
        .iter()
        .filter(|(svc, _, _)| used.contains(svc))
        .map(|(svc, r, file)| {
            r.parse().map(|r| (svc.clone(), r)).map_err(|_| {
                fail(format!(
                    "bundle {}: service {svc} ({file}) has ranking `{r}`, not an integer",
                    path.display()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let names: BTreeSet<String> = wanted.iter().map(|(s, _)| s.clone()).collect();
    Ok((wanted, xscmd::affected(params, &names)?))
}

/// The wanted rankings of the services `set` uses.
fn of_set(wanted: &[(String, i64)], set: &MapSet) -> Rankings {
    wanted
        .iter()
        .filter(|(svc, _)| set.services.contains(svc))
        .cloned()
        .collect()
}

/// `suspendBalancing` or `resumeBalancing` for each map set.
fn balancing(params: &[Pair], command: &str, sets: &[(String, String)]) -> Result<()> {
    for (g, ms) in sets {
        xscmd::run_ok(params, &[command, "-g", g, "-ms", ms])?;
        info!("{command} -g {g} -ms {ms}: done");
    }
    Ok(())
}

fn pairs(sets: &[MapSet]) -> Vec<(String, String)> {
    sets.iter()
        .map(|s| (s.grid.clone(), s.name.clone()))
        .collect()
}

/// `check-grid`: every server of the fleet sees the new rankings (`osgiAll`), and they are
/// valid targets (`osgiCheck`).
pub fn check_grid(c: &Call) -> Result<Vec<Output>> {
    let params = c.params();
    let (wanted, sets) = plan(params)?;
    let text = xscmd::run(params, &["osgiAll"])?;
    let available = xscmd::available(&text);
    let mut missing = Vec::new();
    for t in c.fleet() {
        if !available.keys().any(|(server, _)| *server == t.id) {
            missing.push(format!("server {} is not in osgiAll", t.id));
            continue;
        }
        for (svc, r) in &wanted {
            let has = available
                .get(&(t.id.clone(), svc.clone()))
                .is_some_and(|set| set.contains(r));
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
    let affected: Vec<String> = sets.iter().map(MapSet::label).collect();
    info!("map sets the update affects: {}", affected.join(", "));
    Ok(vec![output("rankings", sr)])
}

/// The map sets recorded by `suspend-balancing` (`before:<grid>/<map set>` outputs).
fn recorded(c: &Call) -> Vec<(String, String, String)> {
    c.outputs()
        .iter()
        .filter_map(|o| {
            let set = o.key.strip_prefix("before:")?;
            let (g, ms) = set.split_once('/')?;
            Some((g.to_string(), ms.to_string(), o.value.clone()))
        })
        .collect()
}

/// `suspend-balancing`: records each map set's active rankings first, so that its undo can
/// restore them whatever happened after; a re-run keeps what the first run recorded.
pub fn suspend(c: &Call) -> Result<Vec<Output>> {
    let params = c.params();
    let (wanted, sets) = plan(params)?;
    let mut outputs = Vec::new();
    for set in &sets {
        let key = format!("before:{}", set.label());
        let before = match c.output(&key) {
            Some(b) => b.to_string(),
            None => {
                let active = xscmd::active(params, &set.grid, &set.name)?;
                active_of(&of_set(&wanted, set), &active)
            }
        };
        outputs.push(output(&key, before));
    }
    balancing(params, "suspendBalancing", &pairs(&sets))?;
    Ok(outputs)
}

/// The active rankings of the services the update moves, as `-sr` takes them.
fn active_of(wanted: &[(String, i64)], active: &BTreeMap<String, i64>) -> String {
    let rankings: Vec<(String, i64)> = wanted
        .iter()
        .filter_map(|(svc, _)| active.get(svc).map(|r| (svc.clone(), *r)))
        .collect();
    xscmd::sr(&rankings)
}

/// Undo of `suspend-balancing`: for each map set it suspended, if an update went through (it
/// completed, or it completed in the grid while cutover was down), the recorded rankings are
/// restored with balancing suspended; then balancing resumes.
pub fn unsuspend(c: &Call) -> Result<()> {
    let params = c.params();
    let sets = recorded(c);
    for (g, ms, before) in &sets {
        let active = xscmd::active(params, g, ms)?;
        let changed = before
            .split(',')
            .filter_map(|x| x.split_once(';'))
            .any(|(svc, r)| active.get(svc).map(|a| a.to_string()) != Some(r.to_string()));
        if changed {
            warn!("{g}/{ms} is not on rankings {before} any more: updating back");
            xscmd::run_ok(params, &["suspendBalancing", "-g", g, "-ms", ms])?;
            xscmd::run(params, &["osgiUpdate", "-sr", before, "-g", g, "-ms", ms])?;
        }
    }
    let sets: Vec<(String, String)> = sets.into_iter().map(|(g, ms, _)| (g, ms)).collect();
    balancing(params, "resumeBalancing", &sets)
}

/// `update`: `osgiCheck` again, then `osgiUpdate` per map set with the rankings of the
/// services it uses, unless it already has them (a re-run after a crash): the update happens
/// once. Going back is the undo of `suspend-balancing`, which recorded the rankings before.
pub fn update(c: &Call) -> Result<Vec<Output>> {
    let params = c.params();
    let (wanted, sets) = plan(params)?;
    for set in &sets {
        let (g, ms) = (&set.grid, &set.name);
        let mine = of_set(&wanted, set);
        let sr = xscmd::sr(&mine);
        let active = xscmd::active(params, g, ms)?;
        if mine.iter().all(|(svc, r)| active.get(svc) == Some(r)) {
            warn!("{g}/{ms} already has rankings {sr} active (a re-run): not updated again");
            continue;
        }
        xscmd::run_ok(params, &["osgiCheck", "-sr", &sr])?;
        cutover_sdk::progress(
            &format!("osgiUpdate -sr {sr} -g {g} -ms {ms}: quiescing and draining the grid"),
            None,
        );
        let text = xscmd::run(params, &["osgiUpdate", "-sr", &sr, "-g", g, "-ms", ms])?;
        if !text.contains("Update succeeded for the following service rankings") {
            return Err(fail(format!("osgiUpdate -g {g} -ms {ms}: {}", text.trim())));
        }
        let reported: Vec<Vec<String>> = xscmd::tables(&text).into_iter().map(|(_, r)| r).collect();
        for (svc, r) in &mine {
            if !reported
                .iter()
                .any(|row| row.len() == 2 && row[0] == *svc && row[1] == r.to_string())
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

/// `resume-balancing`: `resumeBalancing` for every map set `suspend-balancing` suspended.
pub fn resume(c: &Call) -> Result<Vec<Output>> {
    let mut sets: Vec<(String, String)> =
        recorded(c).into_iter().map(|(g, ms, _)| (g, ms)).collect();
    if sets.is_empty() {
        sets = pairs(&plan(c.params())?.1);
    }
    balancing(c.params(), "resumeBalancing", &sets)?;
    Ok(vec![])
}
