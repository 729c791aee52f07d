//! The nginx load balancer: `upstream.conf` in `lb-dir` lists the live servers; a change is
//! written atomically and applied with a graceful `nginx -s reload` (old workers finish the
//! requests they carry). Every reload is recorded in `reloads.log`.

use cutover_sdk::adapter_types::{Pair, StepError};
use cutover_sdk::params::{get, param};
use cutover_sdk::{cmd, files, wait};
use std::path::PathBuf;

/// The load balancer of a rollout.
pub struct Lb {
    dir: PathBuf,
    nginx: String,
}

/// `host:port` of a node URL.
pub fn address(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

impl Lb {
    pub fn new(params: &[Pair]) -> Result<Lb, StepError> {
        Ok(Lb {
            dir: PathBuf::from(param(params, "lb-dir")?),
            nginx: get(params, "nginx")
                .unwrap_or("/usr/sbin/nginx")
                .to_string(),
        })
    }

    /// The servers `upstream.conf` lists now.
    pub fn servers(&self) -> Result<Vec<String>, StepError> {
        let text = files::read_string(&self.dir.join("upstream.conf"))?;
        Ok(text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("server "))
            .map(|s| s.trim_end_matches(';').trim().to_string())
            .collect())
    }

    /// Make `servers` the live set and reload; nothing when it already is. `why` goes to
    /// `reloads.log`.
    pub fn set(&self, servers: &[String], why: &str) -> Result<bool, StepError> {
        if self.servers()? == servers {
            return Ok(false);
        }
        if servers.is_empty() {
            return Err(cutover_sdk::step::fail(format!(
                "refusing to leave the load balancer without servers ({why})"
            )));
        }
        let text: String = servers.iter().map(|s| format!("server {s};\n")).collect();
        files::write_atomic(&self.dir.join("upstream.conf"), text.as_bytes())?;
        let dir = self.dir.display().to_string();
        let log = self.dir.join("logs/error.log").display().to_string();
        cmd::run_ok(
            &self.nginx,
            &["-p", &dir, "-c", "nginx.conf", "-e", &log, "-s", "reload"],
            Some(15_000),
        )?;
        // The master re-reads its configuration on the signal; give it a moment.
        wait::sleep_ms(500);
        let path = self.dir.join("reloads.log");
        let mut record = files::read_string(&path).unwrap_or_default();
        record.push_str(&format!(
            "{} {why}: {}\n",
            wait::now_ms(),
            servers.join(" ")
        ));
        files::write_atomic(&path, record.as_bytes())?;
        Ok(true)
    }
}
