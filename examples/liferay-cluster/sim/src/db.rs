//! The cluster's database, simulated: the `Release_` table of each database, one JSON file
//! `db/<name>.json` (servletContextName -> columns). Nodes read it when they start and when
//! they serve; the `mysql` command below reads it as a database client does; `db-backup` and
//! `db-restore` copy it.
//!
//! Columns, from the DDL of `Release_` (liferay-portal `sql/portal-tables.sql`; SURFACES.md #7):
//! `servletContextName`, `schemaVersion`, `buildNumber`, `state_`, `verified`. `state_` is
//! `0` (STATE_GOOD) or `1` (STATE_UPGRADE_FAILURE), as "Upgrading Modules Using Gogo Shell"
//! documents (SURFACES.md #8).

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use simkit::{read, write_atomic};
use std::path::{Path, PathBuf};

/// The file of database `name` in `dbdir`.
pub fn file(dbdir: &Path, name: &str) -> PathBuf {
    dbdir.join(format!("{name}.json"))
}

/// The `Release_` rows of database `name`.
pub fn load(dbdir: &Path, name: &str) -> Result<Map<String, Value>> {
    let f = file(dbdir, name);
    if !f.exists() {
        bail!("Unknown database '{name}'");
    }
    match serde_json::from_str(&read(&f))? {
        Value::Object(m) => Ok(m),
        _ => bail!("{} is not a table", f.display()),
    }
}

pub fn save(dbdir: &Path, name: &str, rows: &Map<String, Value>) -> Result<()> {
    write_atomic(
        &file(dbdir, name),
        serde_json::to_string_pretty(rows)?.as_bytes(),
    )
}

/// A new database with the portal's row and the given module rows (all `STATE_GOOD`).
pub fn create(dbdir: &Path, name: &str, build: u32, modules: &[(&str, &str)]) -> Result<()> {
    std::fs::create_dir_all(dbdir)?;
    let mut rows = Map::new();
    let row = |schema: &str| json!({"schemaVersion": schema, "buildNumber": build, "state_": 0, "verified": 1});
    rows.insert("portal".into(), row("16.0.0"));
    for (bundle, schema) in modules {
        rows.insert(bundle.to_string(), row(schema));
    }
    save(dbdir, name, &rows)
}

/// The schema version `Release_` holds for `bundle`.
pub fn schema(rows: &Map<String, Value>, bundle: &str) -> Option<String> {
    rows.get(bundle)?["schemaVersion"]
        .as_str()
        .map(str::to_string)
}

/// A module's data upgrade: `Release_` takes the schema version it requires.
pub fn upgrade(dbdir: &Path, name: &str, bundle: &str, schema: &str) -> Result<()> {
    let mut rows = load(dbdir, name)?;
    let build = rows
        .get("portal")
        .map(|p| p["buildNumber"].clone())
        .unwrap_or(json!(0));
    rows.insert(
        bundle.to_string(),
        json!({"schemaVersion": schema, "buildNumber": build, "state_": 0, "verified": 1}),
    );
    save(dbdir, name, &rows)
}

const COLUMNS: &[&str] = &[
    "servletContextName",
    "schemaVersion",
    "buildNumber",
    "state_",
    "verified",
];

/// What one `SELECT` asks for: columns, and the `IN` list of its `WHERE` (none: every row).
struct Select {
    columns: Vec<String>,
    names: Option<Vec<String>>,
}

fn syntax(sql: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "ERROR 1064 (42000): You have an error in your SQL syntax near '{}'",
        sql.chars().take(40).collect::<String>()
    )
}

/// `SELECT c1, c2 FROM Release_ [WHERE servletContextName IN ('a', 'b')]`: the one query form
/// this database answers.
fn parse(sql: &str) -> Result<Select> {
    let s = sql.trim().trim_end_matches(';').trim();
    let lower = s.to_ascii_lowercase();
    let rest = lower.strip_prefix("select ").ok_or_else(|| syntax(sql))?;
    let from = rest.find(" from ").ok_or_else(|| syntax(sql))?;
    let offset = s.len() - rest.len();
    let columns: Vec<String> = s[offset..offset + from]
        .split(',')
        .map(|c| c.trim().to_string())
        .collect();
    for c in &columns {
        if !COLUMNS.iter().any(|k| k.eq_ignore_ascii_case(c)) {
            bail!("ERROR 1054 (42S22): Unknown column '{c}' in 'field list'");
        }
    }
    let tail = &rest[from + " from ".len()..];
    let (table, filter) = match tail.split_once(" where ") {
        Some((t, f)) => (t.trim(), Some(f.trim())),
        None => (tail.trim(), None),
    };
    if table != "release_" {
        bail!("ERROR 1146 (42S02): Table '{table}' doesn't exist");
    }
    let names = match filter {
        None => None,
        Some(f) => {
            let list = f
                .strip_prefix("servletcontextname")
                .map(str::trim_start)
                .and_then(|f| f.strip_prefix("in"))
                .map(str::trim)
                .and_then(|f| f.strip_prefix('('))
                .and_then(|f| f.strip_suffix(')'))
                .ok_or_else(|| syntax(sql))?;
            // Names as written (the lowercase copy only found the keywords).
            let at = list.as_ptr() as usize - lower.as_ptr() as usize;
            Some(
                s[at..at + list.len()]
                    .split(',')
                    .map(|n| n.trim().trim_matches('\'').to_string())
                    .collect(),
            )
        }
    };
    Ok(Select { columns, names })
}

/// A value as `mysql --batch` prints it: text as is, numbers in decimal (BOOLEAN is TINYINT).
fn cell(row: &Value, name: &str, column: &str) -> String {
    if column.eq_ignore_ascii_case("servletContextName") {
        return name.to_string();
    }
    let key = COLUMNS
        .iter()
        .find(|k| k.eq_ignore_ascii_case(column))
        .copied()
        .unwrap_or(column);
    match &row[key] {
        Value::String(s) => s.clone(),
        Value::Null => "NULL".into(),
        v => v.to_string(),
    }
}

/// `mysql [options] [-N] [-B] -e "<sql>" <database>`: the client in batch mode. mysql(1):
/// "--batch, -B: Print results using tab as the column separator, with each row on a new
/// line"; "--skip-column-names, -N: Do not write column names in results"; "--execute=statement,
/// -e statement: Execute the statement and quit" (https://manpages.ubuntu.com/manpages/mantic/en/man1/mysql.1.html;
/// SURFACES.md #26). Connection options (`--host`, `--user`, `--defaults-extra-file`, ...) are
/// accepted and ignored: the simulated databases are local files. Errors print `ERROR nnnn
/// (state): ...` on stderr and exit with 1, as the client does.
pub fn mysql(dbdir: &Path, args: &[String]) -> Result<()> {
    let mut headers = true;
    let mut sql = None;
    let mut database = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "-N" | "--skip-column-names" => headers = false,
            "-B" | "--batch" | "-s" | "--silent" => {}
            "-e" => {
                i += 1;
                sql = args.get(i).cloned();
            }
            "-h" | "-u" | "-P" | "--host" | "--user" | "--port" => i += 1,
            _ if a.starts_with("--execute=") => sql = Some(a["--execute=".len()..].to_string()),
            _ if a.starts_with('-') => {}
            _ => database = Some(a.to_string()),
        }
        i += 1;
    }
    let sql = sql.context("ERROR: no statement (use -e)")?;
    let database = database.context("ERROR 1046 (3D000): No database selected")?;
    let rows = load(dbdir, &database)
        .map_err(|e| anyhow::anyhow!("ERROR 1049 (42000): {}", e.to_string().replace('\n', " ")))?;
    let q = parse(&sql)?;
    if headers {
        println!("{}", q.columns.join("\t"));
    }
    for (name, row) in &rows {
        if q.names.as_ref().is_some_and(|n| !n.contains(name)) {
            continue;
        }
        let line: Vec<String> = q.columns.iter().map(|c| cell(row, name, c)).collect();
        println!("{}", line.join("\t"));
    }
    Ok(())
}

/// `db-backup <database> <file>` and `db-restore <database> <file>`: stand-ins for the
/// operator's backup and restore programs (in production, wrappers around `mysqldump` and
/// `mysql`, or `pg_dump` and `pg_restore`). The two-argument form is Cutover's interface: the
/// vendors document the tools, not this call.
pub fn backup(dbdir: &Path, args: &[String], restore: bool) -> Result<()> {
    let (Some(name), Some(to)) = (args.first(), args.get(1)) else {
        bail!("usage: db-backup|db-restore DATABASE FILE");
    };
    let live = file(dbdir, name);
    if restore {
        let text = std::fs::read(to).with_context(|| format!("reading the backup {to}"))?;
        write_atomic(&live, &text)?;
        println!("restored database {name} from {to}");
    } else {
        load(dbdir, name)?;
        if let Some(dir) = Path::new(to).parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::copy(&live, to).with_context(|| format!("writing the backup {to}"))?;
        println!("backed up database {name} to {to}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_release_query() {
        let q = parse("SELECT servletContextName, schemaVersion, state_ FROM Release_ WHERE servletContextName IN ('portal', 'com.acme.Blog')").unwrap();
        assert_eq!(q.columns.len(), 3);
        assert_eq!(q.names.unwrap(), vec!["portal", "com.acme.Blog"]);
        assert!(parse("SELECT x FROM Release_").is_err());
        assert!(parse("DELETE FROM Release_").is_err());
        assert!(parse("select schemaVersion from release_;")
            .unwrap()
            .names
            .is_none());
    }
}
