//! osgi-grid-sim: real OSGi frameworks from Debian for the nodes of a grid (Eclipse Equinox
//! with its telnet console, or Apache Felix with the Gogo shell's `telnetd`), and a
//! **simulator** of WebSphere eXtreme Scale's `xscmd` (IBM's product cannot run here). The
//! `osgi-grid` adapter is tested against both frameworks and the simulator.
//!
//! A fleet folder looks like this:
//!
//! ```text
//! fleet/
//!   bundles/        grid-plugins-1.0.0.jar (ranking 1) and grid-plugins-1.1.0.jar (ranking 2)
//!   nodes/serverN/  node.json (console port, framework), bundles/ (copies installed in the
//!                   framework), equinox/ or felix/ (configuration, cache), framework.log
//!   grid/           state.json (map sets, balancing, active rankings, catalog), xscmd.log
//!   grid-password   the catalog's password (the spec's secret)
//!   bin/xscmd       the xscmd simulator for this grid
//!   rollout.toml    a Cutover spec updating the grid
//! ```
//!
//! Commands:
//! - `fleet DIR --nodes N --port P --plugins DIR [--group-size G] [--framework equinox|felix]`
//! - `bundle OUT --version V --service NAME=RANKING ... [--name SYMBOLIC-NAME]`
//! - `node start|stop HOME`
//! - `xscmd GRID -c COMMAND [-sr S;R,...] [-g GRID -ms MAPSET]`
//! - `status DIR`, `teardown DIR`

mod bundle;
mod fleet;
mod framework;
mod xscmd;

use anyhow::{bail, Context, Result};
use simkit::{arg, folder};

fn main() {
    // xscmd's errors read as xscmd's.
    let xscmd = std::env::args().nth(1).as_deref() == Some("xscmd");
    simkit::main(if xscmd { "xscmd" } else { "osgi-grid-sim" }, run);
}

fn run(args: &[String]) -> Result<()> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let path = || folder(args, 1);
    match cmd {
        "fleet" => fleet::build(
            &path()?,
            &fleet::Options {
                nodes: arg(args, "--nodes", "3").parse()?,
                port: arg(args, "--port", "18900").parse()?,
                plugins: simkit::plugins_dir(args),
                group_size: arg(args, "--group-size", "1"),
                framework: framework::kind(&arg(args, "--framework", "equinox"))?,
            },
        ),
        "bundle" => {
            let mut services = Vec::new();
            for (i, a) in args.iter().enumerate() {
                if a == "--service" {
                    let s = args.get(i + 1).context("--service NAME=RANKING")?;
                    let (n, r) = s.split_once('=').context("--service NAME=RANKING")?;
                    services.push((n.to_string(), r.to_string()));
                }
            }
            bundle::write(
                &path()?,
                &arg(args, "--name", bundle::NAME),
                &arg(args, "--version", "1.1.0"),
                &services,
            )
        }
        "node" => {
            let home = folder(args, 2)?;
            match args.get(1).map(String::as_str) {
                Some("start") => framework::start(&home),
                Some("stop") => framework::stop(&home),
                _ => bail!("usage: osgi-grid-sim node start|stop HOME"),
            }
        }
        "xscmd" => xscmd::run(&path()?, &args[2..]),
        "status" => fleet::status(&path()?),
        "teardown" => fleet::teardown(&path()?),
        _ => bail!("usage: osgi-grid-sim fleet|bundle|node|xscmd|status|teardown ..."),
    }
}
