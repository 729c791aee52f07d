//! The `xscmd` simulator: the eXtreme Scale commands of the OSGi update procedure, with the
//! documented output.
//!
//! State lives in `GRID/state.json`: the grid's map sets (balancing state and active service
//! rankings each), the plugin services the ObjectGrid descriptors reference, and the
//! container servers (each a real OSGi framework reached through its console). Available
//! rankings are read from the frameworks: the components of every *active* bundle, as the
//! eXtreme Scale service tracker sees them. Every command is recorded in `GRID/xscmd.log`.
//!
//! Failure injection: while `GRID/fail-update` exists, `osgiUpdate` fails after quiescing
//! the grid and rolls back to the previous rankings, as the product does; `GRID/update-delay-ms`
//! makes the quiesce-and-drain phase of `osgiUpdate` last that long.

use crate::{bundle, framework};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Print, ignoring a reader that went away: the update runs in the grid, not in the client,
/// and completes even if the xscmd client's caller dies.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// Load the grid's state.
pub fn load(grid: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(grid.join("state.json"))
        .with_context(|| format!("no grid state in {}", grid.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn save(grid: &Path, state: &Value) -> Result<()> {
    simkit::write_atomic(
        &grid.join("state.json"),
        serde_json::to_string_pretty(state)?.as_bytes(),
    )
}

fn record(grid: &Path, line: &str) -> Result<()> {
    simkit::append(
        &grid.join("xscmd.log"),
        &format!("{} {line}", simkit::now_ms()),
    )
}

/// Available rankings per referenced service on one server (from its framework).
pub fn available(port: u16, services: &[String]) -> Result<BTreeMap<String, BTreeSet<i64>>> {
    let answer = framework::send(port, "lb -l")?;
    if framework::is_error(&answer) || !answer.contains("START LEVEL") {
        bail!("the framework answered `lb -l` with: {answer}");
    }
    let mut out: BTreeMap<String, BTreeSet<i64>> = services
        .iter()
        .map(|s| (s.clone(), BTreeSet::new()))
        .collect();
    for row in framework::rows(&answer) {
        let Some(path) = row.what.strip_prefix("file:") else {
            continue;
        };
        if row.state != "Active" || !path.ends_with(".jar") {
            continue;
        }
        for (svc, r) in bundle::rankings(Path::new(path)).unwrap_or_default() {
            if let Some(set) = out.get_mut(&svc) {
                set.insert(r);
            }
        }
    }
    Ok(out)
}

fn list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

/// Parse `-sr svcA;2,svcB;2`.
fn service_rankings(args: &[String], services: &[String]) -> Result<Vec<(String, i64)>> {
    let sr = flag(args, "-sr").context("-sr <service;ranking,...> is required")?;
    sr.split(',')
        .map(|item| {
            let (svc, r) = item
                .split_once(';')
                .with_context(|| format!("`{item}` is not <service>;<ranking>"))?;
            if !services.iter().any(|s| s == svc) {
                bail!("service {svc} is not referenced by any ObjectGrid descriptor of this grid");
            }
            let r: i64 = r
                .trim()
                .parse()
                .with_context(|| format!("the ranking of {svc} must be an integer, got `{r}`"))?;
            Ok((svc.to_string(), r))
        })
        .collect()
}

/// The map sets named by `-g` and `-ms`, as indexes into the state.
fn map_set(state: &Value, args: &[String]) -> Result<usize> {
    let g = flag(args, "-g").context("-g <grid> is required")?;
    let ms = flag(args, "-ms").context("-ms <map set> is required")?;
    state["mapSets"]
        .as_array()
        .and_then(|a| a.iter().position(|m| m["grid"] == g && m["mapSet"] == ms))
        .with_context(|| format!("no map set {ms} in grid {g}"))
}

fn ok(command: &str) {
    println!("CWXSI0040I: The command {command} has completed successfully.");
}

/// Every target ranking is available on every server; the problems otherwise.
fn check(state: &Value, wanted: &[(String, i64)], services: &[String]) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    for server in state["servers"].as_array().cloned().unwrap_or_default() {
        let name = server["name"].as_str().unwrap_or_default();
        let port = server["port"].as_u64().unwrap_or_default() as u16;
        let avail = available(port, services)
            .with_context(|| format!("server {name} cannot be reached"))?;
        for (svc, r) in wanted {
            if !avail.get(svc).is_some_and(|s| s.contains(r)) {
                problems.push(format!(
                    "service ranking {svc};{r} is not available on server {name}"
                ));
            }
        }
    }
    Ok(problems)
}

/// `xscmd GRID -c COMMAND [-sr ...] [-g G -ms M]`.
pub fn run(grid: &Path, args: &[String]) -> Result<()> {
    let command = flag(args, "-c").context("usage: xscmd -c <command> [options]")?;
    let result = dispatch(grid, command, args);
    let line = args.join(" ");
    match &result {
        Ok(()) => record(grid, &format!("{line} -> ok"))?,
        Err(e) => record(grid, &format!("{line} -> failed: {e:#}"))?,
    }
    result
}

fn dispatch(grid: &Path, command: &str, args: &[String]) -> Result<()> {
    let mut state = load(grid)?;
    let services = list(&state["services"]);
    match command {
        "osgiAll" => {
            let mut seen = BTreeSet::new();
            for server in state["servers"].as_array().cloned().unwrap_or_default() {
                let name = server["name"].as_str().unwrap_or_default();
                let port = server["port"].as_u64().unwrap_or_default() as u16;
                let avail = available(port, &services)
                    .with_context(|| format!("server {name} cannot be reached"))?;
                println!("Server: {name}");
                println!("OSGi Service Name Available Rankings");
                println!("----------------- ------------------");
                for (svc, set) in &avail {
                    let r: Vec<String> = set.iter().map(i64::to_string).collect();
                    println!("{svc} {}", r.join(", "));
                }
                seen.insert(format!("{avail:?}"));
            }
            if seen.len() <= 1 {
                println!("Summary - All servers have the same service rankings.");
            } else {
                println!("Summary - Not all servers have the same service rankings.");
            }
            Ok(())
        }
        "osgiCurrent" => {
            let sets = state["mapSets"].as_array().cloned().unwrap_or_default();
            let chosen = match flag(args, "-g") {
                Some(_) => vec![sets[map_set(&state, args)?].clone()],
                None => sets,
            };
            for server in state["servers"].as_array().cloned().unwrap_or_default() {
                println!("Server: {}", server["name"].as_str().unwrap_or_default());
                println!("OSGi Service Name Current Ranking");
                println!("----------------- ---------------");
                for m in &chosen {
                    for svc in &services {
                        println!("{svc} {}", m["active"][svc]);
                    }
                }
            }
            ok(command);
            Ok(())
        }
        "osgiCheck" => {
            let wanted = service_rankings(args, &services)?;
            let problems = check(&state, &wanted, &services)?;
            if !problems.is_empty() {
                bail!("the command osgiCheck failed: {}", problems.join("; "));
            }
            ok(command);
            Ok(())
        }
        "suspendBalancing" | "resumeBalancing" => {
            let i = map_set(&state, args)?;
            let to = if command == "suspendBalancing" {
                "suspended"
            } else {
                "active"
            };
            state["mapSets"][i]["balancing"] = json!(to);
            save(grid, &state)?;
            ok(command);
            Ok(())
        }
        "balanceStatus" => {
            let i = map_set(&state, args)?;
            let m = &state["mapSets"][i];
            println!(
                "Balancing of grid {} map set {}: {}",
                m["grid"].as_str().unwrap_or_default(),
                m["mapSet"].as_str().unwrap_or_default(),
                m["balancing"].as_str().unwrap_or_default()
            );
            ok(command);
            Ok(())
        }
        "osgiUpdate" => {
            let wanted = service_rankings(args, &services)?;
            let i = map_set(&state, args)?;
            if state["mapSets"][i]["balancing"] != "suspended" {
                bail!("balancing must be suspended for the grid and map set before osgiUpdate (suspendBalancing)");
            }
            let problems = check(&state, &wanted, &services)?;
            if !problems.is_empty() {
                bail!("the command osgiUpdate failed: {}", problems.join("; "));
            }
            say!("Quiescing the grid and draining all transactions ...");
            state["mapSets"][i]["quiesced"] = json!(true);
            save(grid, &state)?;
            let drain: u64 = simkit::read(&grid.join("update-delay-ms"))
                .parse()
                .unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(drain));
            state["mapSets"][i]["quiesced"] = json!(false);
            if grid.join("fail-update").exists() {
                // The swap fails and is rolled back: the active rankings are those of before.
                let why = simkit::read(&grid.join("fail-update"));
                save(grid, &state)?;
                bail!(
                    "the update failed on a container server ({why}); the update was rolled back and the previous service rankings were restored"
                );
            }
            for (svc, r) in &wanted {
                state["mapSets"][i]["active"][svc] = json!(r);
            }
            let n = state["mapSets"][i]["updates"].as_u64().unwrap_or(0);
            state["mapSets"][i]["updates"] = json!(n + 1);
            save(grid, &state)?;
            say!("Update succeeded for the following service rankings:");
            say!("Service Ranking");
            say!("------- -------");
            for (svc, r) in &wanted {
                say!("{svc} {r}");
            }
            Ok(())
        }
        other => bail!("xscmd (simulator): unknown command {other}"),
    }
}
