//! Liferay's cluster-update matrix: which kind of change allows a rolling restart, and the
//! classification of a change from the spec's declaration and from what is deployed.

use cutover_sdk::jar::{header, Jar};
use serde_json::Value;

/// One row of the matrix.
pub struct Row {
    pub key: &'static str,
    pub title: &'static str,
    pub rolling: bool,
}

/// The matrix, as Liferay documents it (blue-green is allowed for every row).
pub const ROWS: &[Row] = &[
    Row {
        key: "module-install",
        title: "plugin/module installation",
        rolling: true,
    },
    Row {
        key: "module-compatible",
        title: "plugin/module update, backward-compatible data/schema",
        rolling: true,
    },
    Row {
        key: "schema-incompatible",
        title: "plugin/module update, non-backward-compatible data/schema",
        rolling: false,
    },
    Row {
        key: "fixpack-revertible",
        title: "fix pack install and removal (revertible)",
        rolling: true,
    },
    Row {
        key: "fixpack-nonrevertible",
        title: "fix pack install (non-revertible)",
        rolling: false,
    },
    Row {
        key: "cluster-code",
        title: "cluster code changes",
        rolling: false,
    },
    Row {
        key: "portal-properties",
        title: "portal property changes",
        rolling: true,
    },
    Row {
        key: "system-settings",
        title: "system settings via configuration admin files",
        rolling: true,
    },
    Row {
        key: "app-server",
        title: "application server updates",
        rolling: true,
    },
    Row {
        key: "jvm-settings",
        title: "JVM setting changes",
        rolling: true,
    },
    Row {
        key: "java-minor",
        title: "new Java version, minor",
        rolling: true,
    },
    Row {
        key: "java-major",
        title: "new Java version, major",
        rolling: false,
    },
];

/// Packages that carry cluster communication; a rolling restart must not change them.
const CLUSTER_PACKAGES: &[&str] = &[
    "com.liferay.portal.kernel.cluster",
    "com.liferay.portal.kernel.cluster.*",
    "com.liferay.portal.kernel.exception.NoSuchClusterGroupException",
    "com.liferay.portal.kernel.scheduler.multiple",
    "com.liferay.portal.kernel.scheduler.multiple.*",
    "com.liferay.portal.cache.multiple",
    "com.liferay.portal.cache.multiple.*",
    "com.liferay.portal.scheduler.multiple",
    "com.liferay.portal.scheduler.multiple.*",
];

/// The row named `key`.
pub fn row(key: &str) -> Option<&'static Row> {
    ROWS.iter().find(|r| r.key == key)
}

/// A classified change: the row and why.
pub struct Change {
    pub row: &'static Row,
    pub why: String,
}

fn change(key: &str, why: String) -> Change {
    Change {
        row: row(key).expect("a row of the matrix"),
        why,
    }
}

/// What a module jar says about itself.
pub struct Module {
    pub bundle: String,
    pub version: String,
    pub schema: Option<String>,
    pub packages: Vec<String>,
}

fn text(bytes: &[u8], name: &str) -> Result<String, String> {
    Jar::open(bytes)?.text(name)
}

/// Read a module jar: manifest headers and the Java packages of its classes.
pub fn module(bytes: &[u8]) -> Result<Module, String> {
    let mut jar = Jar::open(bytes)?;
    let manifest = jar.manifest()?;
    let mut packages: Vec<String> = jar
        .names()
        .into_iter()
        .filter(|n| n.ends_with(".class"))
        .filter_map(|n| n.rsplit_once('/').map(|(dir, _)| dir.replace('/', ".")))
        .collect();
    packages.sort();
    packages.dedup();
    Ok(Module {
        bundle: header(&manifest, "Bundle-SymbolicName")
            .ok_or("its manifest has no Bundle-SymbolicName")?,
        version: header(&manifest, "Bundle-Version").unwrap_or_default(),
        schema: header(&manifest, "Liferay-Require-SchemaVersion"),
        packages,
    })
}

fn major(version: &str) -> u64 {
    version
        .trim()
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0)
}

/// Classify a module against the cluster's `Release_` table.
pub fn classify_module(m: &Module, release: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    match (release[&m.bundle].as_str(), &m.schema) {
        (None, _) => out.push(change("module-install", format!("{} {} is not installed yet", m.bundle, m.version))),
        (Some(current), Some(required)) if major(required) > major(current) => out.push(change(
            "schema-incompatible",
            format!(
                "{} {} has Liferay-Require-SchemaVersion {required}, but Release_ holds {current} for it: the data upgrade is not backward-compatible",
                m.bundle, m.version
            ),
        )),
        (Some(current), schema) => out.push(change(
            "module-compatible",
            format!(
                "{} {} requires schema {} (Release_ holds {current})",
                m.bundle,
                m.version,
                schema.as_deref().unwrap_or("none")
            ),
        )),
    }
    for p in &m.packages {
        let hit = CLUSTER_PACKAGES
            .iter()
            .find(|c| match c.strip_suffix(".*") {
                Some(prefix) => p.starts_with(&format!("{prefix}.")),
                None => p == *c,
            });
        if let Some(rule) = hit {
            out.push(change(
                "cluster-code",
                format!("{} contains package {p} (rule {rule})", m.bundle),
            ));
        }
    }
    out
}

/// Classify a fix pack by its `fixpack_documentation.xml`.
pub fn classify_fixpack(bytes: &[u8]) -> Result<Change, String> {
    let doc = text(bytes, "fixpack_documentation.xml")?;
    let field = |tag: &str| {
        let open = format!("<{tag}>");
        doc.find(&open).and_then(|s| {
            let rest = &doc[s + open.len()..];
            rest.find(&format!("</{tag}>"))
                .map(|e| rest[..e].trim().to_string())
        })
    };
    let id = field("id").unwrap_or_else(|| "?".into());
    Ok(if field("revertible").as_deref() == Some("false") {
        change(
            "fixpack-nonrevertible",
            format!("fix pack {id} is not revertible"),
        )
    } else {
        change("fixpack-revertible", format!("fix pack {id} is revertible"))
    })
}

/// Classify a Java version change.
pub fn classify_java(current: &str, wanted: &str) -> Option<Change> {
    if current.trim() == wanted.trim() {
        return None;
    }
    Some(if major(current) != major(wanted) {
        change(
            "java-major",
            format!("Java {} → {wanted} is a major upgrade", current.trim()),
        )
    } else {
        change(
            "java-minor",
            format!("Java {} → {wanted} is a minor upgrade", current.trim()),
        )
    })
}

/// Rows the spec declares (`declare = "jvm-settings, system-settings"`).
pub fn declared(list: &str) -> Result<Vec<Change>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| {
            row(k)
                .map(|_| change(k, "declared in the spec".into()))
                .ok_or_else(|| {
                    format!(
                        "`declare` names `{k}`, which is not a row of the matrix (rows: {})",
                        ROWS.iter().map(|r| r.key).collect::<Vec<_>>().join(", ")
                    )
                })
        })
        .collect()
}
