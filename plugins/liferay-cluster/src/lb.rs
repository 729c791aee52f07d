//! The nginx load balancer: `upstream.conf` in `lb-dir` lists the live servers; a change is
//! written atomically and applied with a graceful `nginx -s reload` (old workers finish the
//! requests they carry). Every reload is recorded as one file in `reloads/`, named by its
//! time, so that reloads from targets in one wave never overwrite each other's record.
//!
//! Draining is kept as state, so that nodes drained at the same time cannot undo each other's
//! change: `backends.conf` is the pool (the live set when first needed), `drained/<address>`
//! marks a drained node, and the live set is always rebuilt as the pool minus the marks.

use cutover_sdk::params::{get, param};
use cutover_sdk::{cmd, fail, files, wait, Pair, Result};
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
    pub fn new(params: &[Pair]) -> Result<Lb> {
        Ok(Lb {
            dir: PathBuf::from(param(params, "lb-dir")?),
            nginx: get(params, "nginx")
                .unwrap_or("/usr/sbin/nginx")
                .to_string(),
        })
    }

    /// The servers `upstream.conf` lists now.
    pub fn servers(&self) -> Result<Vec<String>> {
        self.list("upstream.conf")
    }

    fn list(&self, file: &str) -> Result<Vec<String>> {
        let text = files::read_string(&self.dir.join(file))?;
        Ok(text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("server "))
            .map(|s| s.trim_end_matches(';').trim().to_string())
            .collect())
    }

    fn conf(servers: &[String]) -> String {
        servers.iter().map(|s| format!("server {s};\n")).collect()
    }

    /// Take `address` out of (`drain`) or put it back into the live set.
    pub fn drain(&self, address: &str, drain: bool, why: &str) -> Result<bool> {
        let pool = self.dir.join("backends.conf");
        if !pool.exists() {
            files::write_atomic(&pool, Self::conf(&self.servers()?).as_bytes())?;
        }
        let marks = self.dir.join("drained");
        if !marks.exists() {
            std::fs::create_dir_all(&marks).map_err(|e| files::io_error("creating", &marks, e))?;
        }
        let mark = marks.join(address);
        if drain {
            files::write_atomic(&mark, b"")?;
        } else if mark.exists() {
            std::fs::remove_file(&mark).map_err(|e| files::io_error("removing", &mark, e))?;
        }
        // Rebuild the live set from the state until it holds after our own write: a node
        // drained in the same wave may have written a set computed before our change.
        let mut changed = false;
        for _ in 0..20 {
            let live = self.live(&marks)?;
            changed |= self.set(&live, why)?;
            wait::sleep_ms(100);
            if self.servers()? == self.live(&marks)? {
                return Ok(changed);
            }
        }
        Err(fail(format!(
            "the load balancer's server list keeps changing under {why}"
        )))
    }

    /// The pool minus the drained marks.
    fn live(&self, marks: &std::path::Path) -> Result<Vec<String>> {
        let drained: Vec<String> = std::fs::read_dir(marks)
            .map_err(|e| files::io_error("listing", marks, e))?
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        Ok(self
            .list("backends.conf")?
            .into_iter()
            .filter(|s| !drained.contains(s))
            .collect())
    }

    /// Make `servers` the whole pool and the live set (a traffic switch).
    pub fn switch(&self, servers: &[String], why: &str) -> Result<bool> {
        files::write_atomic(
            &self.dir.join("backends.conf"),
            Self::conf(servers).as_bytes(),
        )?;
        self.set(servers, why)
    }

    /// Make `servers` the live set and reload; nothing when it already is. `why` goes to the
    /// record in `reloads/`.
    fn set(&self, servers: &[String], why: &str) -> Result<bool> {
        if self.servers()? == servers {
            return Ok(false);
        }
        if servers.is_empty() {
            return Err(fail(format!(
                "refusing to leave the load balancer without servers ({why})"
            )));
        }
        files::write_atomic(
            &self.dir.join("upstream.conf"),
            Self::conf(servers).as_bytes(),
        )?;
        let dir = self.dir.display().to_string();
        let log = self.dir.join("logs/error.log").display().to_string();
        cmd::run_ok(
            &self.nginx,
            &["-p", &dir, "-c", "nginx.conf", "-e", &log, "-s", "reload"],
            Some(15_000),
        )?;
        // The master re-reads its configuration on the signal; give it a moment.
        wait::sleep_ms(500);
        let records = self.dir.join("reloads");
        if !records.exists() {
            std::fs::create_dir_all(&records)
                .map_err(|e| files::io_error("creating", &records, e))?;
        }
        let now = wait::now_ms();
        let name: String = format!("{now:013}-{why}")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let line = format!("{now} {why}: {}\n", servers.join(" "));
        files::write_atomic(&records.join(name), line.as_bytes())?;
        Ok(true)
    }
}
