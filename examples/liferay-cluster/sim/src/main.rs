//! liferay-sim: a **simulator** of the nodes of a Liferay DXP cluster, behind a real nginx
//! load balancer. Liferay itself cannot run here; each simulated node is an HTTP server on
//! loopback that serves pages, reports readiness, lists its modules and the cluster's
//! `Release_` table, processes its deploy folder on start (modules, fix packs), and shuts down
//! gracefully, finishing the requests in flight.
//!
//! ```text
//! fleet/
//!   db/release.json     the cluster's Release_ table (bundle -> schema version), shared
//!   nodes/node-1/       bin/start, bin/stop, deploy/, osgi/modules/, patching/,
//!                       portal-ext.properties, VERSION, java-version, port, sim.log
//!   artifacts/          module jars, fix packs and a properties file to deploy
//!   lb/                 nginx.conf, upstream.conf (the live servers), nginx's pid and logs
//!   rolling.toml, blue-green.toml
//! ```
//!
//! Commands: `fleet DIR --nodes 4 --port P --lb-port L --plugins DIR`, `start NODE`,
//! `stop NODE`, `serve NODE`, `jar OUT NAME VERSION [--schema V] [--package P]...`,
//! `teardown DIR`.

mod archive;
mod fleet;
mod node;

use anyhow::{bail, Result};

fn main() {
    simkit::main("liferay-sim", run);
}

fn run(args: &[String]) -> Result<()> {
    let path = || simkit::folder(args, 1);
    match args.first().map(String::as_str).unwrap_or("") {
        "fleet" => fleet::build(&path()?, args),
        "start" => node::start(&path()?),
        "stop" => node::stop(&path()?),
        "serve" => node::serve(&path()?),
        "teardown" => fleet::teardown(&path()?),
        _ => bail!("usage: liferay-sim fleet|start|stop|serve|teardown ..."),
    }
}
