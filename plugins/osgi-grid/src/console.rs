//! A node's OSGi framework, through its console command (`{home}/bin/console COMMAND...`,
//! which answers as the framework's shell does).

use cutover_sdk::params::label;
use cutover_sdk::{cmd, fail, Result, Target};

/// One installed bundle, from `lb -s`.
pub struct Installed {
    pub id: u64,
    pub state: String,
    pub symbolic_name: String,
    pub version: String,
}

/// The console of one node.
pub struct Console {
    program: String,
    node: String,
}

impl Console {
    /// The console of target `t` (its `home` label).
    pub fn of(t: &Target) -> Result<Console> {
        Ok(Console {
            program: format!("{}/bin/console", label(t, "home")?.trim_end_matches('/')),
            node: t.id.clone(),
        })
    }

    /// Run one shell command; what it printed. A reported error fails with the node named.
    pub fn run(&self, command: &str) -> Result<String> {
        let words: Vec<&str> = command.split_whitespace().collect();
        let exit = cmd::run(&self.program, &words, Some(60_000))?;
        if exit.code != Some(0) {
            return Err(fail(format!(
                "{}: `{command}`: {}",
                self.node,
                cmd::describe_failure(&self.program, &exit)
            )));
        }
        Ok(exit.stdout)
    }

    /// Every installed bundle (`lb -s`: id, state, symbolic name and version).
    pub fn bundles(&self) -> Result<Vec<Installed>> {
        let text = self.run("lb -s")?;
        Ok(text
            .lines()
            .filter_map(|l| {
                let cols: Vec<&str> = l.split('|').map(str::trim).collect();
                let (name, version) = cols.get(3)?.rsplit_once(" (")?;
                Some(Installed {
                    id: cols.first()?.parse().ok()?,
                    state: cols.get(1)?.to_string(),
                    symbolic_name: name.to_string(),
                    version: version.trim_end_matches(')').to_string(),
                })
            })
            .collect())
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
        let text = self.run(&format!("install {url}"))?;
        text.lines()
            .find_map(|l| l.trim().strip_prefix("Bundle ID:"))
            .and_then(|id| id.trim().parse().ok())
            .ok_or_else(|| {
                fail(format!(
                    "{}: `install {url}` assigned no bundle id: {}",
                    self.node,
                    text.trim()
                ))
            })
    }

    /// Run `<verb> <id>` and check the bundle reaches `state` (None: gone).
    pub fn change(&self, verb: &str, id: u64, state: Option<&str>) -> Result<()> {
        self.run(&format!("{verb} {id}"))?;
        let now = self.get(id)?;
        match (state, &now) {
            (None, None) => Ok(()),
            (Some(want), Some(b)) if b.state == want => Ok(()),
            _ => Err(fail(format!(
                "{}: after `{verb} {id}` the bundle is {}",
                self.node,
                now.map_or("not installed".to_string(), |b| b.state)
            ))),
        }
    }
}
