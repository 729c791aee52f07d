//! The cluster's `Release_` table, read through the database client the operator grants
//! (`db-client`): `mysql -N -B -e "<sql>" <database>` (batch mode: tab-separated, no column
//! names; mysql(1)) or `psql -X -A -t -F <tab> -c "<sql>" <database>` (unaligned, tuples only;
//! psql's reference). Each module has one row whose `schemaVersion` its
//! `Liferay-Require-SchemaVersion` must match ("Upgrading Modules Using Gogo Shell"; the
//! cluster-update guide, note 1); `state_` is 0 when good, 1 after a failed upgrade, 2 after a
//! failed verify. That a module's row is keyed by its bundle symbolic name in
//! `servletContextName` is inferred from the `dm wtf` filter the Gogo page shows; the query
//! itself is Cutover's (the columns are the table's DDL).

use cutover_sdk::params::get;
use cutover_sdk::{cmd, Pair};
use std::collections::BTreeMap;

/// One row of `Release_`.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub schema: String,
    pub state: i64,
}

/// Rows by `servletContextName`.
pub type Rows = BTreeMap<String, Row>;

/// The query for the rows of `names`.
pub fn sql(names: &[&str]) -> String {
    let list: Vec<String> = names
        .iter()
        .map(|n| format!("'{}'", n.replace('\'', "''")))
        .collect();
    format!(
        "SELECT servletContextName, schemaVersion, state_ FROM Release_ WHERE servletContextName IN ({})",
        list.join(", ")
    )
}

/// The client's arguments for `sql` on `database`.
fn args(params: &[Pair], database: &str, sql: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = get(params, "db-args")
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let tail: &[&str] = match get(params, "db-flavor").unwrap_or("mysql") {
        "mysql" => &["-N", "-B", "-e", sql, database],
        "psql" => &["-X", "-A", "-t", "-F", "\t", "-c", sql, database],
        other => return Err(format!("db-flavor `{other}` is not mysql or psql")),
    };
    out.extend(tail.iter().map(|s| s.to_string()));
    Ok(out)
}

/// Tab-separated rows: `servletContextName`, `schemaVersion`, `state_`.
pub fn parse(text: &str) -> Result<Rows, String> {
    let mut rows = Rows::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').map(str::trim).collect();
        let [name, schema, state] = cols[..] else {
            return Err(format!(
                "unexpected line from the database client: {line:?}"
            ));
        };
        let state = state
            .parse()
            .map_err(|_| format!("state_ `{state}` of {name} is not a number"))?;
        rows.insert(
            name.to_string(),
            Row {
                schema: schema.to_string(),
                state,
            },
        );
    }
    Ok(rows)
}

/// The `Release_` rows of `names` in `database`.
pub fn query(params: &[Pair], database: &str, names: &[&str]) -> Result<Rows, String> {
    let client = get(params, "db-client")
        .filter(|c| !c.is_empty())
        .ok_or("no `db-client`: name a mysql or psql client that can read the Release_ table")?;
    let args = args(params, database, &sql(names))?;
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let exit = cmd::run(client, &argv, Some(30_000)).map_err(|e| e.message)?;
    if exit.code != Some(0) {
        return Err(format!(
            "reading Release_ in `{database}`: {}",
            cmd::describe_failure(client, &exit)
        ));
    }
    parse(&exit.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_batch_output() {
        let rows = parse("portal\t16.0.0\t0\ncom.acme.blog.service\t1.0.0\t1\n").unwrap();
        assert_eq!(rows["com.acme.blog.service"].schema, "1.0.0");
        assert_eq!(rows["com.acme.blog.service"].state, 1);
        assert!(parse("portal 16.0.0").is_err());
        assert_eq!(
            sql(&["portal", "o'x"]),
            "SELECT servletContextName, schemaVersion, state_ FROM Release_ WHERE servletContextName IN ('portal', 'o''x')"
        );
    }
}
