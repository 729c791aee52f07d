//! eXtreme Scale's `xscmd` (parameter `xscmd`): the grid-wide commands of the procedure and
//! the tables they print.

use cutover_sdk::params::get;
use cutover_sdk::{cmd, fail, Pair, Result};
use std::collections::BTreeMap;

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

/// The grid/map-set pairs of parameter `map-sets` (`Grid/MapSet,...`).
pub fn map_sets(params: &[Pair]) -> Result<Vec<(String, String)>, String> {
    let list = get(params, "map-sets").unwrap_or_default();
    let sets: Vec<(String, String)> = list
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.split_once('/')
                .map(|(g, m)| (g.trim().to_string(), m.trim().to_string()))
                .ok_or(format!("map-sets: `{s}` is not <grid>/<map set>"))
        })
        .collect::<Result<_, _>>()?;
    if sets.is_empty() {
        return Err("parameter `map-sets` names no <grid>/<map set>".into());
    }
    Ok(sets)
}

/// Run `xscmd -c <args>`; its output. A failure fails the step with xscmd's own message.
pub fn run(params: &[Pair], args: &[&str]) -> Result<String> {
    let program = get(params, "xscmd").ok_or_else(|| fail("parameter `xscmd` is required"))?;
    let mut all = vec!["-c"];
    all.extend_from_slice(args);
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

/// Rows `name value...` under a `---- ----` rule, per `Server:` section (one section named
/// "" when there is none).
pub fn tables(text: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut server = String::new();
    let mut in_table = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("Server:") {
            server = name.trim().to_string();
            in_table = false;
        } else if line.starts_with("---") {
            in_table = true;
            out.entry(server.clone()).or_default();
        } else if line.is_empty() || line.starts_with("Summary") || line.starts_with("CWXSI") {
            in_table = false;
        } else if in_table {
            if let Some((name, value)) = line.split_once(' ') {
                out.entry(server.clone())
                    .or_default()
                    .push((name.to_string(), value.trim().to_string()));
            }
        }
    }
    out
}

/// The active rankings of one map set (`osgiCurrent`), per service.
pub fn current(params: &[Pair], grid: &str, map_set: &str) -> Result<BTreeMap<String, i64>> {
    let text = run(params, &["osgiCurrent", "-g", grid, "-ms", map_set])?;
    let mut out = BTreeMap::new();
    for rows in tables(&text).values() {
        for (svc, r) in rows {
            let r: i64 = r.parse().map_err(|_| {
                fail(format!(
                    "osgiCurrent shows ranking `{r}` for {svc}: not an integer"
                ))
            })?;
            out.insert(svc.clone(), r);
        }
    }
    Ok(out)
}
