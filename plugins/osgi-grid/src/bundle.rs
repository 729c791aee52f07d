//! The new bundle: its manifest and the rankings of the grid plugin services it publishes.

use cutover_sdk::jar::{header, Jar};

/// A plugin bundle as preflight reads it.
pub struct Bundle {
    pub symbolic_name: String,
    pub version: String,
    /// (service, ranking as written, component file)
    pub services: Vec<(String, String, String)>,
}

/// The value of `name="..."` inside one XML start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let key = format!("{name}=\"");
    let at = tag.find(&key)? + key.len();
    let len = tag[at..].find('"')?;
    Some(tag[at..at + len].to_string())
}

/// The start tags named `element` in `xml`.
fn tags<'a>(xml: &'a str, element: &str) -> Vec<&'a str> {
    xml.match_indices(&format!("<{element}"))
        .filter_map(|(at, _)| xml[at..].find('>').map(|end| &xml[at..at + end]))
        .collect()
}

/// Read a bundle jar; the error names what is missing.
pub fn read(bytes: &[u8]) -> Result<Bundle, String> {
    let mut jar = Jar::open(bytes)?;
    let manifest = jar.manifest()?;
    let symbolic_name = header(&manifest, "Bundle-SymbolicName")
        .map(|v| v.split(';').next().unwrap_or_default().trim().to_string())
        .ok_or("its manifest has no Bundle-SymbolicName header")?;
    let version =
        header(&manifest, "Bundle-Version").ok_or("its manifest has no Bundle-Version header")?;
    let mut services = Vec::new();
    let components = header(&manifest, "Service-Component").unwrap_or_default();
    for file in components
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
    {
        let xml = jar
            .text(file)
            .map_err(|e| format!("Service-Component names {file}, but {e}"))?;
        for component in tags(&xml, "scr:component")
            .into_iter()
            .chain(tags(&xml, "component "))
        {
            let Some(name) = attribute(component, "name") else {
                continue;
            };
            let ranking = tags(&xml, "property")
                .into_iter()
                .find(|p| attribute(p, "name").as_deref() == Some("service.ranking"))
                .and_then(|p| attribute(p, "value"))
                .unwrap_or_default();
            services.push((name, ranking, file.to_string()));
        }
    }
    Ok(Bundle {
        symbolic_name,
        version,
        services,
    })
}
