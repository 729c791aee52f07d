//! Liferay's cluster-update matrix: which kind of change allows a rolling restart, and the
//! classification of a change from the spec's declaration and from what is deployed.

use cutover_sdk::jar::{header, Jar};

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

/// A schema version's numbers (`1.0.0-step-2` is 1, 0, 0, 2).
fn numbers(version: &str) -> Vec<u64> {
    version
        .trim()
        .split(['.', '-'])
        .filter_map(|p| p.trim_start_matches("step").parse().ok())
        .collect()
}

/// How a module's required schema relates to what `Release_` holds for it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Schema {
    /// No row yet (an installation) or no `Liferay-Require-SchemaVersion`.
    New,
    /// The same version.
    Same,
    /// A higher minor or micro version of the same major: the data upgrade is compatible only
    /// where the operator declares it ("Meaningful Schema Versioning").
    Raised,
    /// A new major version, or a lower version: not backward-compatible.
    Incompatible,
}

/// Compare the version a module requires with the one `Release_` holds.
pub fn schema(required: Option<&str>, held: Option<&str>) -> Schema {
    let (Some(r), Some(h)) = (required, held) else {
        return Schema::New;
    };
    let (r, h) = (numbers(r), numbers(h));
    if r == h {
        Schema::Same
    } else if r.first() == h.first() && r > h {
        Schema::Raised
    } else {
        Schema::Incompatible
    }
}

/// Classify a module against the row `Release_` holds for it (`held`). Every schema change is
/// non-backward-compatible for a rolling restart (installing it on one node changes `Release_`
/// for every node, the guide's note 1), unless `compatible` declares a raised minor or micro
/// version compatible; a new major version never is.
pub fn classify_module(m: &Module, held: Option<&str>, compatible: bool) -> Vec<Change> {
    let mut out = Vec::new();
    let required = m.schema.as_deref();
    let (key, why) = match (schema(required, held), held, required) {
        (_, None, _) => ("module-install", format!("{} {} is not in Release_ yet", m.bundle, m.version)),
        (Schema::New, Some(h), None) => ("module-compatible", format!("{} {} declares no Liferay-Require-SchemaVersion (Release_ holds {h})", m.bundle, m.version)),
        (Schema::Same, Some(h), _) => ("module-compatible", format!("{} {} requires schema {h}, which Release_ holds", m.bundle, m.version)),
        (Schema::Raised, Some(h), Some(r)) if compatible => ("module-compatible", format!("{} {} raises schema {h} to {r} in Release_, declared backward-compatible (schema-compatible = true)", m.bundle, m.version)),
        (Schema::Raised, Some(h), Some(r)) => ("schema-incompatible", format!("{} {} has Liferay-Require-SchemaVersion {r}, but Release_ holds {h} for it: installing it on one node upgrades Release_ and the other nodes' module no longer matches (set schema-compatible = true if {r} keeps the old code working)", m.bundle, m.version)),
        (_, Some(h), r) => ("schema-incompatible", format!("{} {} has Liferay-Require-SchemaVersion {}, but Release_ holds {h} for it: a new major or a lower schema version is not backward-compatible, and only a database restore undoes it", m.bundle, m.version, r.unwrap_or("?"))),
    };
    out.push(change(key, why));
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

/// Classify a patch by what the operator says of it: neither the Patching Tool's output nor
/// the zip documents revertibility, so it is not revertible unless declared.
pub fn classify_fixpack(name: &str, revertible: bool) -> Change {
    if revertible {
        change(
            "fixpack-revertible",
            format!("fix pack {name} is revertible (fixpack-revertible = true)"),
        )
    } else {
        change(
            "fixpack-nonrevertible",
            format!("fix pack {name} is not revertible (fixpack-revertible is not true; the Customer Portal says which patches are)"),
        )
    }
}

/// Classify a Java version change.
pub fn classify_java(current: &str, wanted: &str) -> Option<Change> {
    use crate::java::major;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_versions() {
        assert_eq!(schema(Some("1.0.0"), Some("1.0.0")), Schema::Same);
        assert_eq!(schema(Some("1.1.0"), Some("1.0.0")), Schema::Raised);
        assert_eq!(schema(Some("1.0.1"), Some("1.0.0")), Schema::Raised);
        assert_eq!(schema(Some("2.0.0"), Some("1.0.0")), Schema::Incompatible);
        assert_eq!(schema(Some("1.0.0"), Some("1.1.0")), Schema::Incompatible);
        assert_eq!(schema(None, Some("1.0.0")), Schema::New);
        assert_eq!(schema(Some("1.0.0"), None), Schema::New);
    }

    #[test]
    fn a_raised_schema_needs_the_declaration() {
        let m = Module {
            bundle: "b".into(),
            version: "1.1.0".into(),
            schema: Some("1.1.0".into()),
            packages: vec!["com.liferay.portal.kernel.cluster.x".into()],
        };
        let keys = |c: Vec<Change>| c.iter().map(|c| c.row.key).collect::<Vec<_>>();
        assert_eq!(
            keys(classify_module(&m, Some("1.0.0"), false)),
            ["schema-incompatible", "cluster-code"]
        );
        assert_eq!(
            keys(classify_module(&m, Some("1.0.0"), true)),
            ["module-compatible", "cluster-code"]
        );
        assert_eq!(keys(classify_module(&m, None, false))[0], "module-install");
        let major = Module {
            schema: Some("2.0.0".into()),
            ..m
        };
        assert_eq!(
            keys(classify_module(&major, Some("1.0.0"), true))[0],
            "schema-incompatible"
        );
    }
}
