//! Module jars and fix-pack zips: written by the fleet builder, read when a node deploys them.

use anyhow::{Context, Result};
use std::io::{Read, Write};
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
    let mut z = zip::ZipWriter::new(std::fs::File::create(out)?);
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut manifest = format!(
        "Manifest-Version: 1.0\r\nBundle-ManifestVersion: 2\r\nBundle-SymbolicName: {name}\r\nBundle-Version: {version}\r\n"
    );
    if let Some(s) = schema {
        manifest.push_str(&format!("Liferay-Require-SchemaVersion: {s}\r\n"));
    }
    z.start_file("META-INF/MANIFEST.MF", opts)?;
    z.write_all(manifest.as_bytes())?;
    for p in packages {
        z.start_file(format!("{}/Impl.class", p.replace('.', "/")), opts)?;
        z.write_all(&[0xCA, 0xFE, 0xBA, 0xBE, 0, 0, 0, 61])?;
    }
    z.finish()?;
    Ok(())
}

/// Write a fix pack: `fixpack_documentation.xml` naming it and saying if it is revertible.
pub fn write_fixpack(out: &Path, id: &str, revertible: bool) -> Result<()> {
    let mut z = zip::ZipWriter::new(std::fs::File::create(out)?);
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("fixpack_documentation.xml", opts)?;
    write!(
        z,
        "<patch>\n  <id>{id}</id>\n  <revertible>{revertible}</revertible>\n</patch>\n"
    )?;
    z.start_file("binaries/portal-impl.jar", opts)?;
    z.write_all(&[0x50, 0x4B, 3, 4])?;
    z.finish()?;
    Ok(())
}

/// A text entry of an archive.
pub fn entry(path: &Path, name: &str) -> Result<String> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path)?)?;
    let mut text = String::new();
    z.by_name(name)
        .with_context(|| format!("{} has no {name}", path.display()))?
        .read_to_string(&mut text)?;
    Ok(text)
}

/// A manifest header's value.
pub fn header(manifest: &str, key: &str) -> Option<String> {
    manifest
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .map(|v| v.trim().to_string())
}

/// The text of an XML element.
pub fn element(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find(&format!("</{tag}>"))? + start;
    Some(xml[start..end].trim().to_string())
}
