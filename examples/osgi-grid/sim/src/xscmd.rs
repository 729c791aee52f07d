//! The `xscmd` simulator: the eXtreme Scale commands of the OSGi update procedure, with the
//! documented output.
//!
//! State lives in `GRID/state.json`: the grid's map sets (balancing state and active service
//! rankings each), the plugin services the ObjectGrid descriptors reference, and the
//! container servers (each a real OSGi framework reached through its console). Available
//! rankings are read from the frameworks (over their own consoles): the components of every
//! *active* bundle, as the eXtreme Scale service tracker sees them. Every command is recorded in
//! `GRID/xscmd.log`, without its connection options.
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

/// Available rankings per referenced service on one server: the services of every *active*
/// bundle in its framework (read over the framework's own console), as the eXtreme Scale
/// service tracker sees them. A bundle's jar is found among the node's `bundles/` copies by
/// its symbolic name and version.
pub fn available(home: &Path, services: &[String]) -> Result<BTreeMap<String, BTreeSet<i64>>> {
    let (port, kind) = framework::console_of(home)?;
    let active: Vec<(String, String)> = framework::bundles(port, kind)?
        .into_iter()
        .filter(|r| r.is("active"))
        .map(|r| (r.symbolic_name, r.version))
        .collect();
    let mut out: BTreeMap<String, BTreeSet<i64>> = services
        .iter()
        .map(|s| (s.clone(), BTreeSet::new()))
        .collect();
    for jar in std::fs::read_dir(home.join("bundles"))? {
        let jar = jar?.path();
        let Ok((name, version)) = bundle::identity(&jar) else {
            continue;
        };
        if !active.contains(&(name, version)) {
            continue;
        }
        for (svc, r) in bundle::rankings(&jar).unwrap_or_default() {
            if let Some(set) = out.get_mut(&svc) {
                set.insert(r);
            }
        }
    }
    Ok(out)
}

/// xscmd runs `$JAVA_HOME/bin/java`: IBM's documentation asks to "verify that the JAVA_HOME
/// environment variable is set" (xsadmin and xscmd utilities); the message is this
/// simulator's.
fn java_home() -> Result<()> {
    let home = std::env::var("JAVA_HOME").unwrap_or_default();
    if home.is_empty() || !Path::new(&home).join("bin/java").exists() {
        bail!("JAVA_HOME is not set to a Java runtime (JAVA_HOME={home:?}): set JAVA_HOME");
    }
    Ok(())
}

/// The connection options every xscmd command takes (IBM, "xscmd utility reference":
/// `-cep <endpoints>` catalog service endpoints, `-user <username>`, `-pwd <password>`). A
/// grid whose state names a catalog endpoint (and credentials) is reached only with them; the
/// messages are this simulator's.
fn connect(state: &Value, args: &[String]) -> Result<()> {
    let Some(cep) = state["catalog"]["endpoint"].as_str() else {
        return Ok(());
    };
    if flag(args, "-cep") != Some(cep) {
        bail!("cannot connect to a catalog server: none listens at {} (this grid's catalog service endpoint is {cep}; give it with -cep)",
            flag(args, "-cep").unwrap_or("localhost:1099 (the default)"));
    }
    if let Some(user) = state["catalog"]["user"].as_str() {
        let pwd = state["catalog"]["password"].as_str().unwrap_or_default();
        if flag(args, "-user") != Some(user) || flag(args, "-pwd") != Some(pwd) {
            bail!("the catalog server at {cep} refused the credentials (-user/-pwd)");
        }
    }
    Ok(())
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
        let home = Path::new(server["home"].as_str().unwrap_or_default());
        let avail = available(home, services)
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
    // Recorded without the connection options (a password among them).
    let mut shown = Vec::new();
    let mut rest = args.iter();
    while let Some(a) = rest.next() {
        if matches!(a.as_str(), "-cep" | "-user" | "-pwd") {
            rest.next();
        } else {
            shown.push(a.as_str());
        }
    }
    let line = shown.join(" ");
    match &result {
        Ok(()) => record(grid, &format!("{line} -> ok"))?,
        Err(e) => record(grid, &format!("{line} -> failed: {e:#}"))?,
    }
    result
}

fn dispatch(grid: &Path, command: &str, args: &[String]) -> Result<()> {
    java_home()?;
    let mut state = load(grid)?;
    connect(&state, args)?;
    let services = list(&state["services"]);
    match command {
        // IBM's procedure (seed §osgiAll): per server, `Server: NAME`, the header `OSGi Service
        // Name Available Rankings`, a rule, `service r1, r2` rows; then the summary line.
        "osgiAll" => {
            let mut seen = BTreeSet::new();
            for server in state["servers"].as_array().cloned().unwrap_or_default() {
                let name = server["name"].as_str().unwrap_or_default();
                let home = Path::new(server["home"].as_str().unwrap_or_default());
                let avail = available(home, &services)
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
        // IBM, "Lesson 4.1: Query service rankings": `osgiCurrent [-g G -ms M] [-sn S]` prints
        // `OSGi Service Name Current Ranking ObjectGrid Name MapSet Name Server Name`, a rule,
        // one row per service, map set and server, then CWXSI0040I.
        "osgiCurrent" => {
            let sets = state["mapSets"].as_array().cloned().unwrap_or_default();
            let chosen = match flag(args, "-g") {
                Some(_) => vec![sets[map_set(&state, args)?].clone()],
                None => sets,
            };
            let only = flag(args, "-sn");
            println!("OSGi Service Name Current Ranking ObjectGrid Name MapSet Name Server Name");
            println!("----------------- --------------- --------------- ----------- -----------");
            for m in &chosen {
                let uses = list(&m["services"]);
                for svc in services
                    .iter()
                    .filter(|s| uses.is_empty() || uses.contains(s))
                {
                    if only.is_some_and(|o| o != svc) {
                        continue;
                    }
                    for server in state["servers"].as_array().cloned().unwrap_or_default() {
                        println!(
                            "{svc} {} {} {} {}",
                            m["active"][svc],
                            m["grid"].as_str().unwrap_or_default(),
                            m["mapSet"].as_str().unwrap_or_default(),
                            server["name"].as_str().unwrap_or_default()
                        );
                    }
                }
            }
            ok(command);
            Ok(())
        }
        // Seed: `osgiCheck -sr svc;2,...` prints CWXSI0040I when every ranking is available.
        "osgiCheck" => {
            let wanted = service_rankings(args, &services)?;
            let problems = check(&state, &wanted, &services)?;
            if !problems.is_empty() {
                bail!("the command osgiCheck failed: {}", problems.join("; "));
            }
            ok(command);
            Ok(())
        }
        // Seed: `suspendBalancing|resumeBalancing -g G -ms M`.
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
        // Seed: `osgiUpdate -sr ... -g G -ms M` quiesces the grid, drains the transactions,
        // swaps the plugins and reactivates; it prints "Update succeeded for the following
        // service rankings:" and a `Service Ranking` table, or rolls back on a failure.
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
