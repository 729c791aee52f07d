//! Grid plugin bundles: jars with a valid OSGi manifest and one Declarative Services
//! component per grid plugin service, whose `service.ranking` property is the ranking the
//! grid sees (as the eXtreme Scale service tracker does with `ranking="N"`).

use anyhow::{Context, Result};
use std::path::Path;

/// The bundle's symbolic name in the examples.
pub const NAME: &str = "com.example.grid.plugins";

/// Write a bundle: `services` are (service name, ranking as written, so tests can write a
/// ranking that is not an integer).
pub fn write(out: &Path, name: &str, version: &str, services: &[(String, String)]) -> Result<()> {
    let components: Vec<(String, Vec<u8>)> = services
        .iter()
        .map(|(svc, ranking)| {
            let xml = format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
                 <scr:component xmlns:scr=\"http://www.osgi.org/xmlns/scr/v1.1.0\" name=\"{svc}\">\n  \
                 <implementation class=\"com.example.grid.{svc}\"/>\n  \
                 <property name=\"service.ranking\" type=\"Integer\" value=\"{ranking}\"/>\n  \
                 <service>\n    <provide interface=\"com.ibm.websphere.objectgrid.plugins.osgi.{svc}\"/>\n  </service>\n\
                 </scr:component>\n"
            );
            (format!("OSGI-INF/{svc}.xml"), xml.into_bytes())
        })
        .collect();
    let list = components
        .iter()
        .map(|(n, _)| n.as_str())
        .collect::<Vec<_>>()
        .join(",");
    simkit::jar::write(
        out,
        &[
            ("Bundle-ManifestVersion", "2".into()),
            ("Bundle-SymbolicName", name.into()),
            ("Bundle-Name", "Grid plugins".into()),
            ("Bundle-Version", version.into()),
            ("Service-Component", list),
        ],
        &components,
    )
}

/// The value of attribute `attr` in the first `<tag ...>` of `xml` whose text contains `with`.
fn attr<'a>(xml: &'a str, tag: &str, with: &str, attr: &str) -> Option<&'a str> {
    xml.split(&format!("<{tag} "))
        .skip(1)
        .map(|t| &t[..t.find('>').unwrap_or(t.len())])
        .find(|t| t.contains(with))
        .and_then(|t| {
            let key = format!("{attr}=\"");
            let start = t.find(&key)? + key.len();
            Some(&t[start..start + t[start..].find('"')?])
        })
}

/// A jar's `Bundle-SymbolicName` and `Bundle-Version`.
pub fn identity(jar: &Path) -> Result<(String, String)> {
    let manifest = simkit::jar::entry(jar, "META-INF/MANIFEST.MF")?;
    let name = simkit::jar::header(&manifest, "Bundle-SymbolicName").context("no symbolic name")?;
    let version = simkit::jar::header(&manifest, "Bundle-Version").context("no version")?;
    Ok((name, version))
}

/// The (service, ranking) pairs a bundle's components publish; rankings that are not
/// integers are left out, as OSGi ignores them.
pub fn rankings(jar: &Path) -> Result<Vec<(String, i64)>> {
    let manifest = simkit::jar::entry(jar, "META-INF/MANIFEST.MF")?;
    let mut out = Vec::new();
    let list = simkit::jar::header(&manifest, "Service-Component").unwrap_or_default();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let xml = simkit::jar::entry(jar, entry)
            .with_context(|| format!("{}: Service-Component {entry}", jar.display()))?;
        let Some(name) = attr(&xml, "scr:component", "name=", "name") else {
            continue;
        };
        if let Some(r) =
            attr(&xml, "property", "service.ranking", "value").and_then(|v| v.trim().parse().ok())
        {
            out.push((name.to_string(), r));
        }
    }
    Ok(out)
}
