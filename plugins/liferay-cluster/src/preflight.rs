//! Preflight: the change classified from the real sources (the module jar, `Release_` through
//! the database client, `java -version`, the Patching Tool's `info`, the operator's
//! declarations), then the rules of the mode: the matrix for a rolling restart, the database
//! for blue-green, the backup for all-down.

use crate::matrix::{self, Change, Schema};
use crate::settings::{self, artifact, database, flag, Mode};
use crate::{java, patching, release};
use cutover_sdk::jar::{header, Jar};
use cutover_sdk::params::get;
use cutover_sdk::preflight::{blocker, info, warning};
use cutover_sdk::{files, Finding, Pair, Target};
use std::collections::BTreeMap;
use std::path::Path;

/// The schema a node's installed module requires (`{root}/osgi/modules/<bsn>-*.jar`).
pub fn installed_schema(root: &str, bundle: &str) -> Option<String> {
    let prefix = format!("{bundle}-");
    let jars = files::find(&Path::new(root).join("osgi/modules"), &|n| {
        n.starts_with(&prefix) && n.ends_with(".jar")
    })
    .ok()?;
    let bytes = std::fs::read(jars.last()?).ok()?;
    header(
        &Jar::open(&bytes).ok()?.manifest().ok()?,
        "Liferay-Require-SchemaVersion",
    )
}

fn color(t: &Target) -> Option<&str> {
    get(&t.labels, "color")
}

/// The findings of preflight.
pub fn findings(targets: &[Target], params: &[Pair], strategy: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mode = match settings::mode(params) {
        Ok(m) => m,
        Err(e) => return vec![blocker(None, e.message)],
    };
    if (mode == Mode::BlueGreen) != strategy.starts_with("blue-green") {
        out.push(blocker(None, format!("mode = \"{}\" does not fit the strategy {strategy}: use mode = \"blue-green\" with the blue-green strategy, and \"rolling\" or \"all-down\" otherwise", mode.name())));
    }
    // The database of each node; a cluster's nodes share one ("Example: Creating a Simple DXP
    // Cluster"), and blue-green's green set may have its own copy.
    let db_of = |t: &Target| database(t, params).map(str::to_string);
    let (green, blue): (Vec<&Target>, Vec<&Target>) =
        targets.iter().partition(|t| color(t) == Some("green"));
    let updated: Vec<&Target> = if mode == Mode::BlueGreen {
        green.clone()
    } else {
        targets.iter().collect()
    };
    let mut dbs: Vec<String> = updated.iter().filter_map(|t| db_of(t)).collect();
    dbs.sort();
    dbs.dedup();
    if dbs.len() > 1 {
        out.push(blocker(None, format!("the nodes updated together name different databases ({}): the nodes of a Liferay cluster share one database", dbs.join(", "))));
    }
    let db = dbs.first().cloned();
    let blue_dbs: Vec<String> = blue.iter().filter_map(|t| db_of(t)).collect();

    let mut changes = match matrix::declared(get(params, "declare").unwrap_or("")) {
        Ok(c) => c,
        Err(e) => {
            out.push(blocker(None, e));
            Vec::new()
        }
    };
    let mut schema_change = None;
    match settings::module(params) {
        Err(e) => out.push(blocker(None, format!("cannot classify the change: {}", e.message))),
        Ok(None) => {}
        Ok(Some(m)) => match &db {
            None => out.push(blocker(None, format!("cannot classify {}: no `database` names the nodes' database, whose Release_ table holds the module's schema", m.bundle))),
            Some(db) => match release::query(params, db, &[&m.bundle]) {
                Err(e) => out.push(blocker(None, format!("cannot classify the change: {e}"))),
                Ok(rows) => {
                    let row = rows.get(&m.bundle);
                    if let Some(r) = row.filter(|r| r.state != 0) {
                        out.push(blocker(None, format!("Release_ in `{db}` marks {} with state_ = {} (1: upgrade failure, 2: verify failure): repair it before updating", m.bundle, r.state)));
                    }
                    let held = row.map(|r| r.schema.clone());
                    let kind = matrix::schema(m.schema.as_deref(), held.as_deref());
                    if matches!(kind, Schema::Raised | Schema::Incompatible) {
                        schema_change = Some((kind, format!("{} (Release_ {} → {})", m.bundle, held.clone().unwrap_or_default(), m.schema.clone().unwrap_or_default())));
                    }
                    let compatible = flag(params, "schema-compatible").unwrap_or(false);
                    changes.extend(matrix::classify_module(&m, held.as_deref(), compatible));
                    out.extend(node_schemas(targets, params, &m.bundle));
                }
            },
        },
    }
    if let Some(zip) = artifact(params, "fixpack") {
        let name = zip.file_name().unwrap_or_default().to_string_lossy();
        changes.push(matrix::classify_fixpack(
            &name,
            flag(params, "fixpack-revertible").unwrap_or(false),
        ));
        for t in &updated {
            match patching::dir(t, params) {
                None => out.push(blocker(
                    Some(&t.id),
                    format!("no `patching-dir`: the node's Patching Tool installs {name}"),
                )),
                Some(dir) => match patching::info(&dir, params) {
                    Ok(p) => out.push(info(
                        Some(&t.id),
                        format!(
                            "installed patches: {}",
                            if p.is_empty() {
                                "none".into()
                            } else {
                                p.join(", ")
                            }
                        ),
                    )),
                    Err(e) => out.push(blocker(
                        Some(&t.id),
                        format!("the Patching Tool: {}", e.message),
                    )),
                },
            }
        }
    }
    if let Some(wanted) = get(params, "java-version") {
        let mut seen = BTreeMap::new();
        for t in &updated {
            let Some(prog) = settings::value(t, params, "java") else {
                out.push(blocker(Some(&t.id), "no `java`: name the node's java program, whose version java-version is compared with"));
                continue;
            };
            if !seen.contains_key(prog) {
                let v = java::version(prog);
                seen.insert(prog.to_string(), v);
            }
            match &seen[prog] {
                Err(e) => out.push(blocker(
                    Some(&t.id),
                    format!("cannot read its Java version: {e}"),
                )),
                Ok(current) => changes.extend(matrix::classify_java(current, wanted)),
            }
        }
        changes.sort_by(|a, b| (a.row.key, &a.why).cmp(&(b.row.key, &b.why)));
        changes.dedup_by(|a, b| a.row.key == b.row.key && a.why == b.why);
    }
    if artifact(params, "properties").is_some() {
        changes.push(Change {
            row: matrix::row("portal-properties").unwrap(),
            why: "portal-ext.properties is replaced".into(),
        });
    }
    let irreversible = changes.iter().any(|c| c.row.key == "schema-incompatible");
    for c in &changes {
        if mode == Mode::Rolling && !c.row.rolling {
            out.push(blocker(None, format!("a rolling restart is not supported for \"{}\" (Liferay cluster-update matrix, row `{}`): {}; use blue-green, or mode = \"all-down\"", c.row.title, c.row.key, c.why)));
        } else {
            out.push(info(None, format!("change \"{}\": {}", c.row.title, c.why)));
        }
    }
    match mode {
        Mode::BlueGreen => out.extend(blue_green(
            db.as_deref(),
            &blue_dbs,
            schema_change,
            irreversible,
        )),
        Mode::AllDown => {
            for key in ["db-backup", "db-restore", "backup-dir"] {
                if get(params, key).is_none_or(str::is_empty) {
                    out.push(blocker(None, format!("mode = \"all-down\" backs the database up before any node starts again and restores it if the update fails: set `{key}`")));
                }
            }
            if db.is_none() {
                out.push(blocker(
                    None,
                    "mode = \"all-down\" needs the nodes' `database` to back it up",
                ));
            }
            out.push(info(None, "all-down: every node stops; the cluster serves nothing until the first updated node is back"));
        }
        Mode::Rolling => {}
    }
    out
}

/// Every node's installed module must match `Release_` (the guide, note 1): a node that does
/// not is reported.
fn node_schemas(targets: &[Target], params: &[Pair], bundle: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut rows: BTreeMap<String, Option<String>> = BTreeMap::new();
    for t in targets {
        let (Some(root), Some(db)) = (get(&t.labels, "root"), database(t, params)) else {
            continue;
        };
        let Some(required) = installed_schema(root, bundle) else {
            continue;
        };
        let held = rows
            .entry(db.to_string())
            .or_insert_with(|| {
                release::query(params, db, &[bundle])
                    .ok()
                    .and_then(|r| r.get(bundle).map(|r| r.schema.clone()))
            })
            .clone();
        if let Some(held) =
            held.filter(|h| matrix::schema(Some(&required), Some(h)) != Schema::Same)
        {
            out.push(warning(Some(&t.id), format!("its {bundle} requires schema {required}, but Release_ in `{db}` holds {held}: every node's module must match Release_ (Liferay's cluster-update guide)")));
        }
    }
    out
}

/// Blue-green and the database: green's upgrade must not change what blue serves from.
fn blue_green(
    green: Option<&str>,
    blue: &[String],
    schema: Option<(Schema, String)>,
    irreversible: bool,
) -> Vec<Finding> {
    let Some((_, what)) = schema else {
        return Vec::new();
    };
    let Some(green) = green else {
        return vec![blocker(None, "blue-green with a schema change needs each node's `database`, to tell whether green has its own copy")];
    };
    if blue.iter().any(|b| b == green) {
        if irreversible {
            return vec![blocker(None, format!("blue-green with a shared database is refused for {what}: green's data upgrade changes Release_ in `{green}`, which blue serves from, so blue's module no longer matches it, and only a restore from backup undoes it (Liferay's cluster-update guide). Give green its own copy of the database (its `database` label) or use mode = \"all-down\""))];
        }
        return vec![warning(None, format!("{what}: green's data upgrade changes the shared database `{green}` (declared compatible, so blue keeps working); the switch back after it is refused unless switch-back-after-upgrade = true"))];
    }
    vec![info(None, format!("{what}: green upgrades its own database `{green}`, blue's ({}) is not touched; a switch back after the switch needs switch-back-after-upgrade = true, as what users write on green stays in `{green}`", blue.join(", ")))]
}
