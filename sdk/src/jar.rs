//! Jars and other zip archives an adapter inspects in preflight: entries and manifest
//! headers (feature `jar`).

use std::io::{Cursor, Read};

/// An archive read from memory.
pub struct Jar<'a>(zip::ZipArchive<Cursor<&'a [u8]>>);

impl<'a> Jar<'a> {
    /// Open `bytes` as a zip archive.
    pub fn open(bytes: &'a [u8]) -> Result<Self, String> {
        zip::ZipArchive::new(Cursor::new(bytes))
            .map(Jar)
            .map_err(|e| format!("not a zip archive: {e}"))
    }

    /// The names of every entry.
    pub fn names(&self) -> Vec<String> {
        self.0
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.to_string()))
            .collect()
    }

    /// A text entry; the error says which one is missing.
    pub fn text(&mut self, name: &str) -> Result<String, String> {
        let mut out = String::new();
        self.0
            .by_name(name)
            .map_err(|_| format!("it has no {name}"))?
            .read_to_string(&mut out)
            .map_err(|e| format!("reading {name}: {e}"))?;
        Ok(out)
    }

    /// `META-INF/MANIFEST.MF`.
    pub fn manifest(&mut self) -> Result<String, String> {
        self.text("META-INF/MANIFEST.MF")
    }
}

/// A manifest header's value, its continuation lines (starting with a space) joined.
pub fn header(manifest: &str, key: &str) -> Option<String> {
    let mut lines = manifest.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix(&format!("{key}:")) {
            let mut value = v.trim_start().trim_end_matches('\r').to_string();
            while let Some(more) = lines.peek().and_then(|l| l.strip_prefix(' ')) {
                value.push_str(more.trim_end_matches('\r'));
                lines.next();
            }
            return Some(value.trim_end().to_string());
        }
    }
    None
}

/// Compare OSGi versions `major.minor.micro.qualifier` (missing parts are 0 / empty); an
/// error names the part that is not a number.
pub fn compare_versions(a: &str, b: &str) -> Result<std::cmp::Ordering, String> {
    fn parts(v: &str) -> Result<(u64, u64, u64, String), String> {
        let mut it = v.trim().splitn(4, '.');
        let mut num = |what: &str| -> Result<u64, String> {
            match it.next() {
                None | Some("") => Ok(0),
                Some(n) => n
                    .parse()
                    .map_err(|_| format!("`{v}` is not an OSGi version ({what} `{n}`)")),
            }
        };
        let (major, minor, micro) = (num("major")?, num("minor")?, num("micro")?);
        Ok((
            major,
            minor,
            micro,
            it.next().unwrap_or_default().to_string(),
        ))
    }
    Ok(parts(a)?.cmp(&parts(b)?))
}

#[cfg(test)]
mod tests {
    use std::cmp::Ordering;

    #[test]
    fn versions_compare_by_number_then_qualifier() {
        use super::compare_versions as c;
        assert_eq!(c("1.10.0", "1.9.0"), Ok(Ordering::Greater));
        assert_eq!(c("1.1", "1.1.0"), Ok(Ordering::Equal));
        assert_eq!(c("1.1.0.b", "1.1.0.a"), Ok(Ordering::Greater));
        assert_eq!(c("1.0.0", "1.1.0"), Ok(Ordering::Less));
        assert!(c("1.x", "1.0").unwrap_err().contains("minor `x`"));
    }

    #[test]
    fn continued_headers_are_joined() {
        let m = "Manifest-Version: 1.0\r\nService-Component: OSGI-INF/a.xml,OSGI-INF/\r\n b.xml\r\nBundle-Version: 1.1.0\r\n";
        assert_eq!(
            super::header(m, "Service-Component").as_deref(),
            Some("OSGI-INF/a.xml,OSGI-INF/b.xml")
        );
        assert_eq!(super::header(m, "Bundle-Version").as_deref(), Some("1.1.0"));
        assert_eq!(super::header(m, "Bundle-Name"), None);
    }
}
