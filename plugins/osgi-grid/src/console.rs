//! A node's OSGi framework through the framework's own remote console, reached over TCP at
//! the target's `console` label (`host:port`, granted under `[grants] tcp`):
//!
//! - **Equinox** (`framework = "equinox"`, the default: eXtreme Scale runs in Equinox): the
//!   console the framework opens with `-console PORT`, prompt `osgi> `. `ss` lists the bundles
//!   (`id<TAB>STATE<spaces>symbolicname_version`), `install URL` answers `Bundle id is N`.
//! - **Felix** (`framework = "felix"`): the Gogo shell's `telnetd`, prompt `g! `. `lb -s`
//!   lists the bundles (`ID|State|Level|symbolicname (version)`), `install URL` answers
//!   `Bundle ID: N`.
//!
//! `start ID`, `stop ID` and `uninstall ID` are the same on both, as in IBM's procedure
//! (`osgi> start <id>`, `osgi> stop <id>`, `osgi> uninstall <id>`).

use cutover_sdk::osgi::{installed_id, Framework};
use cutover_sdk::params::{get, label};
use cutover_sdk::{fail, tcp, Pair, Result, Target};

pub use cutover_sdk::osgi::Bundle as Installed;

/// Parameter `framework` (default `equinox`).
pub fn framework(params: &[Pair]) -> Result<Framework> {
    Framework::parse(get(params, "framework").unwrap_or("equinox"))
        .map_err(|e| fail(format!("parameter `framework`: {e}")))
}

/// The console of one node.
pub struct Console {
    address: String,
    node: String,
    framework: Framework,
}

/// A console conversation's budget.
const TIMEOUT_MS: u64 = 60_000;

impl Console {
    /// The console of target `t` (its `console` label).
    pub fn of(t: &Target, params: &[Pair]) -> Result<Console> {
        Ok(Console {
            address: label(t, "console")?.to_string(),
            node: t.id.clone(),
            framework: framework(params)?,
        })
    }

    /// Run `commands` in one console session; each one's answer.
    pub fn run(&self, commands: &[&str]) -> Result<Vec<String>> {
        tcp::console(
            &self.address,
            self.framework.prompt(),
            commands,
            Some(TIMEOUT_MS),
        )
        .map_err(|e| {
            fail(format!(
                "{}: the OSGi console at {}: {}",
                self.node, self.address, e.message
            ))
        })
    }

    fn parse(&self, listing: &str) -> Result<Vec<Installed>> {
        let rows = self.framework.bundles(listing);
        if rows.is_empty() {
            // Every framework lists at least its system bundle.
            return Err(fail(format!(
                "{}: `{}` listed no bundle: {}",
                self.node,
                self.framework.list_command(),
                listing.trim()
            )));
        }
        Ok(rows)
    }

    /// Every installed bundle.
    pub fn bundles(&self) -> Result<Vec<Installed>> {
        let answers = self.run(&[self.framework.list_command()])?;
        self.parse(&answers[0])
    }

    /// The bundles of `symbolic_name`.
    pub fn find(&self, symbolic_name: &str) -> Result<Vec<Installed>> {
        Ok(self
            .bundles()?
            .into_iter()
            .filter(|b| b.symbolic_name == symbolic_name)
            .collect())
    }

    /// The bundle with id `id`, if installed.
    pub fn get(&self, id: u64) -> Result<Option<Installed>> {
        Ok(self.bundles()?.into_iter().find(|b| b.id == id))
    }

    /// `install <url>`: the bundle id the framework assigned.
    pub fn install(&self, url: &str) -> Result<u64> {
        let command = format!("install {url}");
        let text = self.run(&[&command])?.remove(0);
        installed_id(&text).ok_or_else(|| {
            fail(format!(
                "{}: `{command}` assigned no bundle id: {}",
                self.node,
                first_lines(&text)
            ))
        })
    }

    /// Run `<verb> <id>` and check, in the same session, that the bundle reaches `state`
    /// (None: gone).
    pub fn change(&self, verb: &str, id: u64, state: Option<&str>) -> Result<()> {
        let command = format!("{verb} {id}");
        let answers = self.run(&[&command, self.framework.list_command()])?;
        let now = self.parse(&answers[1])?.into_iter().find(|b| b.id == id);
        match (state, &now) {
            (None, None) => Ok(()),
            (Some(want), Some(b)) if b.is(want) => Ok(()),
            _ => Err(fail(format!(
                "{}: after `{command}` the bundle is {}{}",
                self.node,
                now.map_or("not installed".to_string(), |b| b.state),
                match answers[0].trim() {
                    "" => String::new(),
                    said => format!("; the console said: {}", first_lines(said)),
                }
            ))),
        }
    }
}

/// The first lines of a console answer (a Java stack trace is long).
fn first_lines(text: &str) -> String {
    let lines: Vec<&str> = text.trim().lines().take(3).collect();
    lines.join(" / ")
}
