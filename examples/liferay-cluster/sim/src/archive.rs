//! Module jars and patch zips: written by the fleet builder; jars are read when a node deploys
//! them.

use anyhow::Result;
use std::io::Write;
use std::path::Path;

/// Write an OSGi module jar: a manifest with `Bundle-SymbolicName`, `Bundle-Version` and
/// optionally `Liferay-Require-SchemaVersion`, and one class in each of `packages`.
pub fn write_jar(
    out: &Path,
    name: &str,
    version: &str,
    schema: Option<&str>,
    packages: &[&str],
) -> Result<()> {
    let mut headers = vec![
        ("Bundle-ManifestVersion", "2".to_string()),
        ("Bundle-SymbolicName", name.to_string()),
        ("Bundle-Version", version.to_string()),
    ];
    if let Some(s) = schema {
        headers.push(("Liferay-Require-SchemaVersion", s.to_string()));
    }
    let classes: Vec<(String, Vec<u8>)> = packages
        .iter()
        .map(|p| {
            (
                format!("{}/Impl.class", p.replace('.', "/")),
                vec![0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 61],
            )
        })
        .collect();
    simkit::jar::write(out, &headers, &classes)
}

/// Write a patch zip as Liferay ships them: `fixpack_documentation.xml` naming it (its `<name>`,
/// read by Liferay's own scripts; SURFACES.md (d) 1) and the binaries. Nothing in it says
/// whether the patch is revertible: only the Customer Portal knows (SURFACES.md #6).
pub fn write_fixpack(out: &Path, id: &str) -> Result<()> {
    let mut z = zip::ZipWriter::new(std::fs::File::create(out)?);
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("fixpack_documentation.xml", opts)?;
    write!(z, "<patch>\n  <name>{id}</name>\n</patch>\n")?;
    z.start_file("binaries/portal-impl.jar", opts)?;
    z.write_all(&[0x50, 0x4B, 3, 4])?;
    z.finish()?;
    Ok(())
}

pub use simkit::jar::{entry, header};
