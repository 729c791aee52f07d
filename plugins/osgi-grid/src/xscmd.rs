//! eXtreme Scale's `xscmd` (parameter `xscmd`): the grid-wide commands of the procedure, the
//! connection options IBM documents for every command (`-cep` catalog service endpoints,
//! `-user`, `-pwd`), and the tables the commands print.
//!
//! xscmd needs `JAVA_HOME`: the operator passes it with `[grants] pass-env = ["JAVA_HOME"]`.

use cutover_sdk::params::get;
use cutover_sdk::{cmd, fail, secrets, Pair, Result};
use std::collections::{BTreeMap, BTreeSet};

/// What every successful xscmd command prints.
pub const SUCCESS: &str = "CWXSI0040I";

/// (service, ranking) pairs as `-sr` takes them: `svcA;2,svcB;2`.
pub fn sr(rankings: &[(String, i64)]) -> String {
    rankings
        .iter()
        .map(|(s, r)| format!("{s};{r}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The connection options: `-cep` (parameter `catalog-endpoints`), `-user` (`xscmd-user`) and
/// `-pwd` (the secret named by `password-secret`), each when given.
fn connection(params: &[Pair]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    if let Some(cep) = get(params, "catalog-endpoints") {
        out.extend(["-cep".to_string(), cep.to_string()]);
    }
    if let Some(user) = get(params, "xscmd-user") {
        out.extend(["-user".to_string(), user.to_string()]);
    }
    if let Some(name) = get(params, "password-secret") {
        out.extend(["-pwd".to_string(), secrets::get(name)?]);
    }
    Ok(out)
}

/// Run `xscmd -c <args>` with the connection options; its output. A failure fails the step
/// with xscmd's own message.
pub fn run(params: &[Pair], args: &[&str]) -> Result<String> {
    let program = get(params, "xscmd").ok_or_else(|| fail("parameter `xscmd` is required"))?;
    let conn = connection(params)?;
    let mut all = vec!["-c"];
    all.extend_from_slice(args);
    all.extend(conn.iter().map(String::as_str));
    let exit = cmd::run(program, &all, Some(600_000))?;
    if exit.code != Some(0) {
        return Err(fail(format!(
            "xscmd -c {}: {}",
            args.join(" "),
            cmd::describe_failure(program, &exit)
        )));
    }
    Ok(exit.stdout)
}

/// Run `xscmd -c <args>` and require its success message (`CWXSI0040I`); its output.
pub fn run_ok(params: &[Pair], args: &[&str]) -> Result<String> {
    let text = run(params, args)?;
    if !text.contains(SUCCESS) {
        return Err(fail(format!(
            "xscmd -c {}: {}",
            args.join(" "),
            text.trim()
        )));
    }
    Ok(text)
}

/// The rows of every table in `text` (lines under a `---- ----` rule, up to a blank line, a
/// `Summary`, `Server:` or `CWXSI` line), split on whitespace, with the `Server:` section
/// each is in ("" when there is none).
pub fn tables(text: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut server = String::new();
    let mut in_table = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("Server:") {
            server = name.trim().to_string();
            in_table = false;
        } else if line.starts_with("---") {
            in_table = true;
        } else if line.is_empty() || line.starts_with("Summary") || line.starts_with("CWXSI") {
            in_table = false;
        } else if in_table {
            out.push((
                server.clone(),
                line.split_whitespace().map(String::from).collect(),
            ));
        }
    }
    out
}

/// An `osgiAll` row's available rankings (`1, 2`) per (server, service).
pub fn available(text: &str) -> BTreeMap<(String, String), BTreeSet<i64>> {
    let mut out: BTreeMap<(String, String), BTreeSet<i64>> = BTreeMap::new();
    for (server, cols) in tables(text) {
        let Some((svc, rankings)) = cols.split_first() else {
            continue;
        };
        let set = out.entry((server, svc.clone())).or_default();
        for r in rankings.join(" ").split(',') {
            if let Ok(r) = r.trim().parse() {
                set.insert(r);
            }
        }
    }
    out
}

/// One row of `osgiCurrent`, as IBM documents it: `OSGi Service Name`, `Current Ranking`,
/// `ObjectGrid Name`, `MapSet Name`, `Server Name`.
pub struct Current {
    pub service: String,
    pub ranking: i64,
    pub grid: String,
    pub map_set: String,
    pub server: String,
}

/// `osgiCurrent` (with `filter`, e.g. `-g G -ms M`): every row.
pub fn current(params: &[Pair], filter: &[&str]) -> Result<Vec<Current>> {
    let mut args = vec!["osgiCurrent"];
    args.extend_from_slice(filter);
    let text = run_ok(params, &args)?;
    tables(&text)
        .into_iter()
        .map(|(_, cols)| match cols.as_slice() {
            [service, ranking, grid, map_set, server] => Ok(Current {
                ranking: ranking.parse().map_err(|_| {
                    fail(format!(
                        "osgiCurrent shows ranking `{ranking}` for {service}: not an integer"
                    ))
                })?,
                service: service.clone(),
                grid: grid.clone(),
                map_set: map_set.clone(),
                server: server.clone(),
            }),
            _ => Err(fail(format!(
                "osgiCurrent: a row is not `service ranking grid mapSet server`: {}",
                cols.join(" ")
            ))),
        })
        .collect()
}

/// The active ranking of each service of one map set; servers that disagree are an error.
pub fn active(params: &[Pair], grid: &str, map_set: &str) -> Result<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for row in current(params, &["-g", grid, "-ms", map_set])? {
        if row.grid != grid || row.map_set != map_set {
            continue;
        }
        if let Some(other) = out.insert(row.service.clone(), row.ranking) {
            if other != row.ranking {
                return Err(fail(format!(
                    "osgiCurrent: the servers of {grid}/{map_set} use different rankings of {} ({other} and {} on {})",
                    row.service, row.ranking, row.server
                )));
            }
        }
    }
    Ok(out)
}

/// A map set the update affects, and the bundle's services it uses.
pub struct MapSet {
    pub grid: String,
    pub name: String,
    pub services: Vec<String>,
}

impl MapSet {
    pub fn label(&self) -> String {
        format!("{}/{}", self.grid, self.name)
    }
}

/// The map sets that use any of `services`, as `osgiCurrent` shows them; checked against
/// parameter `map-sets` (`Grid/MapSet,...`) when given, which must name exactly those.
pub fn affected(params: &[Pair], services: &BTreeSet<String>) -> Result<Vec<MapSet>> {
    let mut found: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for row in current(params, &[])? {
        if services.contains(&row.service) {
            found
                .entry((row.grid, row.map_set))
                .or_default()
                .insert(row.service);
        }
    }
    if found.is_empty() {
        return Err(fail(format!(
            "osgiCurrent shows no map set using a service of the bundle ({})",
            services.iter().cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    if let Some(list) = get(params, "map-sets") {
        let mut named = BTreeSet::new();
        for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (g, m) = s
                .split_once('/')
                .ok_or_else(|| fail(format!("map-sets: `{s}` is not <grid>/<map set>")))?;
            named.insert((g.trim().to_string(), m.trim().to_string()));
        }
        let mut problems = Vec::new();
        for (g, m) in &named {
            if !found.contains_key(&(g.clone(), m.clone())) {
                problems.push(format!(
                    "it names {g}/{m}, which uses none of the bundle's services in osgiCurrent"
                ));
            }
        }
        for ((g, m), svcs) in &found {
            if !named.contains(&(g.clone(), m.clone())) {
                problems.push(format!(
                    "it leaves out {g}/{m}, which uses {} (osgiCurrent): every affected map set must be suspended",
                    svcs.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
        if !problems.is_empty() {
            return Err(fail(format!(
                "parameter `map-sets`: {}; leave the parameter out to take the map sets osgiCurrent shows",
                problems.join("; ")
            )));
        }
    }
    Ok(found
        .into_iter()
        .map(|((grid, name), svcs)| MapSet {
            grid,
            name,
            services: svcs.into_iter().collect(),
        })
        .collect())
}
