//! What an OSGi framework's remote console says, as text: the prompt, the bundle listing and
//! the answer to `install`, for Eclipse Equinox's console (`-console PORT`) and the Felix Gogo
//! shell (`telnetd`). No host call: simulators read consoles with it too.

/// Which framework's console.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Framework {
    Equinox,
    Felix,
}

impl Framework {
    /// `equinox` or `felix`.
    pub fn parse(name: &str) -> Result<Framework, String> {
        match name {
            "equinox" => Ok(Framework::Equinox),
            "felix" => Ok(Framework::Felix),
            other => Err(format!("`{other}` is not `equinox` or `felix`")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Framework::Equinox => "equinox",
            Framework::Felix => "felix",
        }
    }

    /// The prompt the console shows when it is ready for a command.
    pub fn prompt(self) -> &'static str {
        match self {
            Framework::Equinox => "osgi> ",
            Framework::Felix => "g! ",
        }
    }

    /// The command listing the installed bundles with their symbolic names and versions.
    pub fn list_command(self) -> &'static str {
        match self {
            Framework::Equinox => "ss",
            Framework::Felix => "lb -s",
        }
    }

    /// The bundles in a listing: Equinox's `ss` rows (`id<TAB>STATE<spaces>name_version`),
    /// Gogo's `lb -s` rows (`ID|State|Level|name (version)`); other lines are skipped.
    pub fn bundles(self, listing: &str) -> Vec<Bundle> {
        listing.lines().filter_map(|l| self.row(l)).collect()
    }

    fn row(self, line: &str) -> Option<Bundle> {
        match self {
            Framework::Equinox => {
                let (id, rest) = line.split_once('\t')?;
                let mut words = rest.split_whitespace();
                let state = words.next()?.to_string();
                let (name, version) = words.next()?.rsplit_once('_')?;
                Some(Bundle {
                    id: id.trim().parse().ok()?,
                    state,
                    symbolic_name: name.to_string(),
                    version: version.to_string(),
                })
            }
            Framework::Felix => {
                let cols: Vec<&str> = line.split('|').map(str::trim).collect();
                let (name, version) = cols.get(3)?.rsplit_once(" (")?;
                Some(Bundle {
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
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bundle {
    pub id: u64,
    /// As the console shows it (`ACTIVE` on Equinox, `Active` on Felix).
    pub state: String,
    pub symbolic_name: String,
    pub version: String,
}

impl Bundle {
    /// Whether the bundle is in `state` (`active`, `resolved`, ...; case does not matter).
    pub fn is(&self, state: &str) -> bool {
        self.state.eq_ignore_ascii_case(state)
    }
}

/// The bundle id in the answer to `install` (`Bundle id is N` from Equinox, `Bundle ID: N`
/// from Gogo).
pub fn installed_id(answer: &str) -> Option<u64> {
    answer.lines().find_map(|l| {
        let l = l.trim();
        l.strip_prefix("Bundle id is ")
            .or_else(|| l.strip_prefix("Bundle ID: "))
            .and_then(|id| id.trim().parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_listings_and_install_answers_read() {
        let ss = "\nFramework is launched.\n\nid\tState       Bundle\n0\tACTIVE      org.eclipse.osgi_3.9.1.dist\n1\tRESOLVED    com.example.grid.plugins_1.1.0\n";
        let b = Framework::Equinox.bundles(ss);
        assert_eq!(b.len(), 2);
        assert_eq!((b[1].id, b[1].version.as_str()), (1, "1.1.0"));
        assert!(b[1].is("resolved") && b[1].symbolic_name == "com.example.grid.plugins");
        let lb = "START LEVEL 1\n   ID|State      |Level|Symbolic name\n    5|Active     |    1|com.example.grid.plugins (1.0.0)\n";
        let b = Framework::Felix.bundles(lb);
        assert_eq!(b.len(), 1);
        assert!(b[0].is("active") && b[0].version == "1.0.0" && b[0].id == 5);
        assert_eq!(installed_id("Bundle id is 7\n"), Some(7));
        assert_eq!(installed_id("Bundle ID: 12\n"), Some(12));
        assert_eq!(installed_id("gogo: CommandNotFoundException"), None);
    }
}
