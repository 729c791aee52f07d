//! The adapter's parameters: what it declares, and typed lookups of them.

use cutover_sdk::params::{declare, get};
use cutover_sdk::{fail, files, Pair, Parameter, Result, Target};
use std::path::{Path, PathBuf};

/// How the cluster is updated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// One node at a time, the others serving (the guide's rolling restart).
    Rolling,
    /// Green updated while blue serves, then a switch (the guide's blue-green).
    BlueGreen,
    /// Every node down, the database backed up, the nodes updated and started (the guide's
    /// "applied while all nodes are shut down").
    AllDown,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Rolling => "rolling",
            Mode::BlueGreen => "blue-green",
            Mode::AllDown => "all-down",
        }
    }
}

/// The `mode` parameter.
pub fn mode(params: &[Pair]) -> Result<Mode> {
    match get(params, "mode").unwrap_or("rolling") {
        "rolling" => Ok(Mode::Rolling),
        "blue-green" => Ok(Mode::BlueGreen),
        "all-down" => Ok(Mode::AllDown),
        other => Err(fail(format!(
            "mode `{other}` is not rolling, blue-green or all-down"
        ))),
    }
}

/// A `true`/`false` parameter, false when absent.
pub fn flag(params: &[Pair], key: &str) -> Result<bool> {
    cutover_sdk::params::parse(key, get(params, key), false)
}

/// A target's label, else the spec parameter.
pub fn value<'a>(target: &'a Target, params: &'a [Pair], key: &str) -> Option<&'a str> {
    get(&target.labels, key)
        .or_else(|| get(params, key))
        .filter(|v| !v.is_empty())
}

/// The database a node uses (`database` label or parameter).
pub fn database<'a>(target: &'a Target, params: &'a [Pair]) -> Option<&'a str> {
    value(target, params, "database")
}

/// An artifact parameter as a path (relative ones are under `artifacts`).
pub fn artifact(params: &[Pair], key: &str) -> Option<PathBuf> {
    let v = get(params, key).filter(|v| !v.is_empty())?;
    let p = PathBuf::from(v);
    Some(if p.is_absolute() {
        p
    } else {
        PathBuf::from(get(params, "artifacts").unwrap_or_default()).join(p)
    })
}

pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| files::io_error("reading", path, e))
}

/// The module the rollout deploys, read from its jar.
pub fn module(params: &[Pair]) -> Result<Option<crate::matrix::Module>> {
    match artifact(params, "module") {
        Some(path) => Ok(Some(
            crate::matrix::module(&read_bytes(&path)?)
                .map_err(|e| fail(format!("{}: {e}", path.display())))?,
        )),
        None => Ok(None),
    }
}

/// Everything the adapter accepts, as `describe` tells it.
pub fn parameters() -> Vec<Parameter> {
    let p = |name, about, default| declare(name, about, false, false, default);
    let label = |name, about| declare(name, about, false, true, None);
    vec![
        p("mode", "rolling, blue-green or all-down (blue-green only with the blue-green strategy)", Some("rolling")),
        declare("artifacts", "folder holding what is deployed", true, false, None),
        p("module", "a module jar to deploy", None),
        p("fixpack", "a patch zip to install with the Patching Tool", None),
        p("fixpack-revertible", "whether the patch is revertible (the Customer Portal says; the Patching Tool does not)", Some("false")),
        p("properties", "a portal-ext.properties to install", None),
        p("java-version", "the Java version the nodes move to", None),
        p("declare", "matrix rows this change also makes, comma-separated (e.g. jvm-settings)", Some("")),
        p("schema-compatible", "the module's new schema version (same major) keeps the old code working", Some("false")),
        p("switch-back-after-upgrade", "blue-green: allow the switch back after a schema upgrade", Some("false")),
        declare("lb-dir", "nginx's prefix folder (nginx.conf, upstream.conf)", true, false, None),
        p("nginx", "the nginx program", Some("/usr/sbin/nginx")),
        p("drain-interval", "seconds a drained node keeps its requests; ends early when Tomcat reports none busy", Some("30")),
        p("manager", "path of Tomcat's manager application on the node's URL (e.g. /manager); none: no early end of a drain", None),
        p("manager-user", "the manager user (roles manager-status, manager-script)", None),
        p("manager-password-secret", "the [secrets] entry holding the manager user's password", None),
        p("connector", "the Tomcat connector the drain watches (default http-nio-<port of url>)", None),
        p("drain-sessions", "also wait until the portal's active sessions (manager text list) are 0", Some("false")),
        p("health-path", "the page that tells a node is up", Some("/c/portal/robots")),
        p("health-content", "text the health page must contain", None),
        p("health-timeout", "seconds to wait for a node to be healthy", Some("120")),
        p("db-client", "a mysql (or psql) client program to read Release_", None),
        p("db-flavor", "mysql or psql: how db-client is called", Some("mysql")),
        p("db-args", "arguments before the query (e.g. --defaults-extra-file=/etc/liferay/client.cnf)", None),
        p("db-backup", "all-down: program called as <db-backup> <database> <file>", None),
        p("db-restore", "all-down: program called as <db-restore> <database> <file>", None),
        p("backup-dir", "all-down: where db-backup writes", None),
        p("patching-profile", "the Patching Tool profile (default: none)", None),
        declare("root", "the node's Liferay Home: bin/start, bin/stop, deploy/, osgi/modules/, logs/", true, true, None),
        declare("url", "the node's own URL (not through the load balancer)", true, true, None),
        label("color", "blue or green (blue-green mode)"),
        label("database", "the database the node uses (as db-client names it)"),
        label("java", "the node's java program"),
        label("patching-dir", "the node's Patching Tool folder (patching-tool.sh, patches/)"),
    ]
}
