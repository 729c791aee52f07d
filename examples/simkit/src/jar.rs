//! Jars and zips: write one with a manifest, read an entry and a manifest header back.

use anyhow::{Context, Result};
use std::io::{Read, Write};
use std::path::Path;

/// Manifest lines are at most 72 bytes; longer values continue on lines that start with a
/// space (the JAR file specification).
fn manifest(headers: &[(&str, String)]) -> String {
    let mut out = String::new();
    for (key, value) in headers {
        let line = format!("{key}: {value}");
        let mut rest = line.as_str();
        let mut first = true;
        while !rest.is_empty() {
            let room = if first { 72 } else { 71 };
            let mut cut = rest.len().min(room);
            while !rest.is_char_boundary(cut) {
                cut -= 1;
            }
            if !first {
                out.push(' ');
            }
            out.push_str(&rest[..cut]);
            out.push_str("\r\n");
            rest = &rest[cut..];
            first = false;
        }
    }
    out
}

/// Write a jar at `out`: `META-INF/MANIFEST.MF` with `headers` (after `Manifest-Version`),
/// then `entries` (name, bytes), deflated.
pub fn write(out: &Path, headers: &[(&str, String)], entries: &[(String, Vec<u8>)]) -> Result<()> {
    let mut z = zip::ZipWriter::new(
        std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?,
    );
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut all = vec![("Manifest-Version", "1.0".to_string())];
    all.extend(headers.iter().cloned());
    z.start_file("META-INF/MANIFEST.MF", opts)?;
    z.write_all(manifest(&all).as_bytes())?;
    for (name, bytes) in entries {
        z.start_file(name.as_str(), opts)?;
        z.write_all(bytes)?;
    }
    z.finish()?;
    Ok(())
}

/// A text entry of an archive.
pub fn entry(path: &Path, name: &str) -> Result<String> {
    let mut z = zip::ZipArchive::new(
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
    )?;
    let mut text = String::new();
    z.by_name(name)
        .with_context(|| format!("{} has no {name}", path.display()))?
        .read_to_string(&mut text)?;
    Ok(text)
}

/// A manifest header's value, continuation lines joined.
pub fn header(manifest: &str, key: &str) -> Option<String> {
    let mut lines = manifest.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(v) = line.strip_prefix(&format!("{key}:")) {
            let mut value = v.trim_start().to_string();
            while let Some(more) = lines.peek().and_then(|l| l.strip_prefix(' ')) {
                value.push_str(more);
                lines.next();
            }
            return Some(value.trim_end().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn long_headers_wrap_at_72_bytes_and_read_back_whole() {
        let long = (0..20)
            .map(|i| format!("OSGI-INF/service{i}.xml"))
            .collect::<Vec<_>>()
            .join(",");
        let text = super::manifest(&[("Service-Component", long.clone())]);
        assert!(text.lines().all(|l| l.len() <= 72), "{text}");
        assert!(text.lines().count() > 5);
        assert_eq!(super::header(&text, "Service-Component").unwrap(), long);
    }
}
