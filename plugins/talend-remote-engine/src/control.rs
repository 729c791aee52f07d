//! Starting and stopping an engine installation: its system service when the target names
//! one (`systemctl start|stop <unit>`, "Managing the Remote Engine service"), otherwise its
//! `bin/start` and `bin/stop` (the upgrade procedure's `<RemoteEngine_installation>/bin/stop`).

use crate::Engine;
use cutover_sdk::params::get;
use cutover_sdk::{cmd, fail, Call, Result};
use std::path::Path;

/// Which installation of the engine.
#[derive(Clone, Copy)]
pub enum Install {
    Old,
    New,
}

impl Install {
    fn root(self, e: &Engine) -> &Path {
        match self {
            Install::Old => &e.old,
            Install::New => &e.new,
        }
    }

    fn service(self, e: &Engine) -> Option<&str> {
        match self {
            Install::Old => e.old_service.as_deref(),
            Install::New => e.new_service.as_deref(),
        }
    }
}

/// `start` or `stop` the installation; what it printed.
fn control(c: &Call, e: &Engine, which: Install, verb: &str) -> Result<String> {
    let exit = match which.service(e) {
        Some(unit) => {
            let systemctl = get(c.params(), "systemctl").ok_or_else(|| {
                fail(format!(
                    "target `{}` names the service `{unit}`: set `systemctl` (the path of systemctl) under [adapter.params]",
                    e.target
                ))
            })?;
            cmd::run_ok(systemctl, &[verb, unit], None)?
        }
        None => {
            let script = which.root(e).join("bin").join(verb);
            cmd::run_ok(&script.display().to_string(), &[], None)?
        }
    };
    Ok(exit.stdout.trim().to_string())
}

/// Stop the installation (stopping a stopped one is not an error).
pub fn stop(c: &Call, e: &Engine, which: Install) -> Result<String> {
    control(c, e, which, "stop")
}

/// Start the installation.
pub fn start(c: &Call, e: &Engine, which: Install) -> Result<String> {
    control(c, e, which, "start")
}
