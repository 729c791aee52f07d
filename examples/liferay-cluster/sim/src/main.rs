//! liferay-sim: a **simulator** of the nodes of a Liferay DXP cluster, behind a real nginx
//! load balancer. Liferay itself cannot run here; each simulated node is an HTTP server on
//! loopback. It imitates only surfaces Liferay, Tomcat, the JDK and the database client
//! document (see `../SURFACES.md`; each one cites its source where it is imitated):
//!
//! - the node: pages, `/c/portal/robots`, Tomcat's `/manager/text/list` and
//!   `/manager/status?XML=true`, the `STARTED <bsn>_<version>` lines in
//!   `logs/liferay.<date>.log`, `bin/start` and `bin/stop` (graceful, finishing the requests in
//!   flight), modules deployed through `deploy/`, the data upgrade of a module whose required
//!   schema is above `Release_` (server.rs, node.rs);
//! - the database: each database's `Release_` table, read with a `mysql -N -B -e` client (db.rs);
//! - the Patching Tool's `info` and `install` (patching.rs);
//! - `java -version` (fleet.rs).
//!
//! ```text
//! fleet/
//!   db/lportal.json       the Release_ table of database lportal (and lportal_green)
//!   bin/                  mysql, db-backup, db-restore
//!   jvm/17.0.9/bin/java   the nodes' Java runtime
//!   nodes/node-1/         bin/start, bin/stop, deploy/, osgi/modules/, patching/ (installed
//!                         patches), logs/, conf/tomcat-users.xml, portal-ext.properties,
//!                         VERSION, port, database (its database's name), sim.log
//!   patching/node-1/      the node's Patching Tool: patching-tool.sh, default.properties, patches/
//!   artifacts/            module jars, patch zips and a properties file to deploy
//!   lb/                   nginx.conf, upstream.conf (the live servers), nginx's pid and logs
//!   rollout.toml
//! ```
//!
//! Commands: `fleet DIR --nodes 4 --port P --lb-port L --mode rolling|blue-green|all-down
//! [--db shared|separate] --plugins DIR`, `start NODE`, `stop NODE`, `serve NODE`,
//! `mysql DBDIR ARGS...`, `db-backup DBDIR DB FILE`, `db-restore DBDIR DB FILE`,
//! `patching-tool TOOLDIR [PROFILE] info|install`, `teardown DIR`. Failure injection: a
//! `fail-start` file in a node makes its next start fail.

mod archive;
mod db;
mod fleet;
mod node;
mod patching;
mod server;

use anyhow::{bail, Result};

fn main() {
    simkit::main("liferay-sim", run);
}

fn run(args: &[String]) -> Result<()> {
    let path = || simkit::folder(args, 1);
    let rest = args.get(2..).unwrap_or_default();
    match args.first().map(String::as_str).unwrap_or("") {
        "fleet" => fleet::build(&path()?, args),
        "start" => node::start(&path()?),
        "stop" => node::stop(&path()?),
        "serve" => server::serve(&path()?),
        "mysql" => db::mysql(&path()?, rest),
        "db-backup" => db::backup(&path()?, rest, false),
        "db-restore" => db::backup(&path()?, rest, true),
        "patching-tool" => patching::run(&path()?, rest),
        "teardown" => fleet::teardown(&path()?),
        _ => bail!("usage: liferay-sim fleet|start|stop|serve|mysql|db-backup|db-restore|patching-tool|teardown ..."),
    }
}
