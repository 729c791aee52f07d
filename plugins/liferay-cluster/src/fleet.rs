//! The fleet's steps: all-down mode stops every node and backs the database up before any
//! node is updated (undone by a restore and a start of every node); blue-green mode switches
//! nginx to green (undone by a switch back, refused after a schema upgrade unless allowed).

use crate::node::control;
use crate::settings::{self, database, flag, Mode};
use crate::{lb, matrix, preflight};
use cutover_sdk::params::get;
use cutover_sdk::{cmd, fail, output, wait, web, Call, Output, Result, Target};

fn mode(c: &Call) -> Result<Mode> {
    settings::mode(c.params())
}

/// All-down mode: stop every node (each with its own `bin/stop`, graceful). The guide has
/// schema changes applied "while all nodes are shut down".
pub fn stop_all(c: &Call) -> Result<Vec<Output>> {
    if mode(c)? != Mode::AllDown {
        return Ok(vec![]);
    }
    let mut stopped = Vec::new();
    for t in c.fleet() {
        control(t, "stop").map_err(|e| e.context(format!("stopping {}", t.id)))?;
        stopped.push(t.id.clone());
    }
    Ok(vec![output("stopped", stopped.join(" "))])
}

/// Undo of `stop-all`: start the nodes it stopped (after the database is restored, as undos
/// run newest first) and wait until each answers its health page.
pub fn start_all(c: &Call) -> Result<()> {
    if mode(c)? != Mode::AllDown {
        return Ok(());
    }
    let stopped: Vec<&str> = c
        .output("stopped")
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let timeout = cutover_sdk::params::int(c.params(), "health-timeout", 120)? * 1000;
    let path = get(c.params(), "health-path").unwrap_or("/c/portal/robots");
    for t in c
        .fleet()
        .iter()
        .filter(|t| stopped.contains(&t.id.as_str()))
    {
        control(t, "start").map_err(|e| e.context(format!("starting {}", t.id)))?;
        let url = cutover_sdk::params::label(t, "url")?
            .trim_end_matches('/')
            .to_string();
        wait::poll(timeout, 250, |_| {
            match web::get(&format!("{url}{path}"), Some(5000)) {
                Ok((s, _)) if (200..400).contains(&s) => Ok(()),
                Ok((s, _)) => Err(format!("{path} answered {s}")),
                Err(e) => Err(e.message),
            }
        })
        .map_err(|e| e.context(format!("{} did not come back", t.id)))?;
    }
    Ok(())
}

/// The databases of the fleet, each once.
fn databases(c: &Call) -> Vec<String> {
    let mut dbs: Vec<String> = c
        .fleet()
        .iter()
        .filter_map(|t| database(t, c.params()).map(str::to_string))
        .collect();
    dbs.sort();
    dbs.dedup();
    dbs
}

/// All-down mode, with every node stopped: `<db-backup> <database> <file>` for the cluster's
/// database, the file in `backup-dir` named after it and the rollout.
pub fn backup(c: &Call) -> Result<Vec<Output>> {
    if mode(c)? != Mode::AllDown {
        return Ok(vec![]);
    }
    let program = c.param("db-backup")?;
    let dir = c.param("backup-dir")?.trim_end_matches('/');
    let mut made = serde_json::Map::new();
    for db in databases(c) {
        let file = format!("{dir}/{db}-rollout-{}.backup", c.ctx.rollout_id);
        cmd::run_ok(program, &[&db, &file], None)
            .map_err(|e| e.context(format!("backing up database {db}")))?;
        made.insert(db, file.into());
    }
    if made.is_empty() {
        return Err(fail("no target names its `database`: nothing to back up"));
    }
    Ok(vec![output(
        "backups",
        serde_json::Value::Object(made).to_string(),
    )])
}

/// Undo of `backup`: `<db-restore> <database> <file>` for each backup (the guide: a schema
/// change "cannot be reverted: the database must be restored from a backup").
pub fn restore(c: &Call) -> Result<()> {
    if mode(c)? != Mode::AllDown {
        return Ok(());
    }
    let program = c.param("db-restore")?;
    let made: serde_json::Value = serde_json::from_str(c.output("backups").unwrap_or("{}"))
        .map_err(|e| fail(format!("the backups output: {e}")))?;
    for (db, file) in made.as_object().into_iter().flatten() {
        let file = file.as_str().unwrap_or_default();
        cmd::run_ok(program, &[db, file], None)
            .map_err(|e| e.context(format!("restoring database {db} from {file}")))?;
    }
    Ok(())
}

/// The servers of the targets of one color.
fn colored(fleet: &[Target], color: &str) -> Vec<String> {
    fleet
        .iter()
        .filter(|t| get(&t.labels, "color") == Some(color))
        .filter_map(|t| get(&t.labels, "url").map(lb::address))
        .collect()
}

/// Blue-green mode: point nginx at the green nodes, remembering the blue ones and whether
/// green runs the module on a new schema (blue's installed module requires another).
pub fn switch(c: &Call) -> Result<Vec<Output>> {
    if mode(c)? != Mode::BlueGreen {
        return Ok(vec![]);
    }
    let params = c.params();
    let green = colored(c.fleet(), "green");
    let balancer = lb::Lb::new(params)?;
    let before = balancer.servers()?;
    let mut out = vec![output("blue", before.join(" "))];
    if let Some(m) = settings::module(params)? {
        let blues = c
            .fleet()
            .iter()
            .filter(|t| get(&t.labels, "color") == Some("blue"));
        let old = blues
            .clone()
            .find_map(|t| preflight::installed_schema(get(&t.labels, "root")?, &m.bundle));
        let kind = matrix::schema(m.schema.as_deref(), old.as_deref());
        if matches!(kind, matrix::Schema::Raised | matrix::Schema::Incompatible) {
            let db_of = |color: &str| {
                c.fleet()
                    .iter()
                    .find(|t| get(&t.labels, "color") == Some(color))
                    .and_then(|t| database(t, params))
                    .unwrap_or("?")
                    .to_string()
            };
            out.push(output(
                "schema-change",
                format!(
                    "{} {} → {}",
                    m.bundle,
                    old.unwrap_or_default(),
                    m.schema.clone().unwrap_or_default()
                ),
            ));
            out.push(output(
                "databases",
                format!("{} {}", db_of("blue"), db_of("green")),
            ));
        }
    }
    balancer.switch(&green, "switch to green")?;
    Ok(out)
}

/// Blue-green mode: point nginx back at the blue nodes in one reload. After a schema upgrade
/// this is refused unless `switch-back-after-upgrade = true`: on a shared database blue's
/// module no longer matches `Release_`; on a copy, what users wrote on green is not in blue's.
pub fn switch_back(c: &Call) -> Result<()> {
    if mode(c)? != Mode::BlueGreen {
        return Ok(());
    }
    if let Some(change) = c.output("schema-change") {
        if !flag(c.params(), "switch-back-after-upgrade")? {
            let dbs: Vec<&str> = c.output("databases").unwrap_or("").split(' ').collect();
            let why = match dbs[..] {
                [blue, green] if blue == green => format!("green upgraded Release_ in the database `{blue}`, which blue shares: blue's module no longer matches it and its services would be unavailable; Liferay's cluster-update guide says such a change cannot be reverted, the database must be restored from a backup"),
                [blue, green] => format!("blue's database `{blue}` is still on the old schema, but what users wrote since the switch is only in green's `{green}`"),
                _ => "the databases are unknown".into(),
            };
            return Err(fail(format!(
                "the switch back to blue is refused after the schema upgrade {change}: {why}. Set switch-back-after-upgrade = true to switch back anyway"
            )));
        }
    }
    let blue = colored(c.fleet(), "blue");
    lb::Lb::new(c.params())?
        .switch(&blue, "switch back to blue")
        .map(drop)
}
