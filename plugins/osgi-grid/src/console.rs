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

use cutover_sdk::params::{get, label};
use cutover_sdk::{fail, tcp, Pair, Result, Target};

/// Which framework's console the nodes have.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Framework {
    Equinox,
    Felix,
}

impl Framework {
    /// Parameter `framework`.
    pub fn of(params: &[Pair]) -> Result<Framework> {
        match get(params, "framework").unwrap_or("equinox") {
            "equinox" => Ok(Framework::Equinox),
            "felix" => Ok(Framework::Felix),
            other => Err(fail(format!(
                "parameter `framework`: `{other}` is not `equinox` or `felix`"
            ))),
        }
    }

    fn prompt(self) -> &'static str {
        match self {
            Framework::Equinox => "osgi> ",
            Framework::Felix => "g! ",
        }
    }

    fn list_command(self) -> &'static str {
        match self {
            Framework::Equinox => "ss",
            Framework::Felix => "lb -s",
        }
    }

    /// One row of the bundle listing.
    fn row(self, line: &str) -> Option<Installed> {
        match self {
            Framework::Equinox => {
                let (id, rest) = line.split_once('\t')?;
                let mut words = rest.split_whitespace();
                let state = words.next()?.to_string();
                let (name, version) = words.next()?.rsplit_once('_')?;
                Some(Installed {
                    id: id.trim().parse().ok()?,
                    state,
                    symbolic_name: name.to_string(),
                    version: version.to_string(),
                })
            }
            Framework::Felix => {
                let cols: Vec<&str> = line.split('|').map(str::trim).collect();
                let (name, version) = cols.get(3)?.rsplit_once(" (")?;
                Some(Installed {
                    id: cols.first()?.parse().ok()?,
                    state: cols.get(1)?.to_string(),
                    symbolic_name: name.to_string(),
                    version: version.trim_end_matches(')').to_string(),
                })
            }
        }
    }
}

/// One installed bundle.
pub struct Installed {
    pub id: u64,
    /// As the console shows it (`ACTIVE` on Equinox, `Active` on Felix).
    pub state: String,
    pub symbolic_name: String,
    pub version: String,
}

impl Installed {
    /// Whether the bundle is in `state` (`active`, `resolved`, ...; case does not matter).
    pub fn is(&self, state: &str) -> bool {
        self.state.eq_ignore_ascii_case(state)
    }
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
            framework: Framework::of(params)?,
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
        let rows: Vec<Installed> = listing
            .lines()
            .filter_map(|l| self.framework.row(l))
            .collect();
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
        text.lines()
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix("Bundle id is ")
                    .or_else(|| l.strip_prefix("Bundle ID: "))
                    .and_then(|id| id.trim().parse().ok())
            })
            .ok_or_else(|| {
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
