//! Preflight: what can be checked before anything runs, by reading files only, and a list of
//! what cannot. Preflight runs no program: the steps that run the nodes' programs may not
//! also write where those programs are.

use crate::tree;
use cutover_sdk::params::{get, label_or_param};
use cutover_sdk::preflight::{blocker, info, warning};
use cutover_sdk::{inplace, Finding, Pair, Target};
use std::collections::BTreeMap;
use std::path::Path;

/// The node programs every step relies on (seed L51, L63, L127-131).
const PROGRAMS: &[&str] = &["ctlinit", "ctlshut", "ctlstart", "ctlstop"];

pub fn findings(targets: &[Target], params: &[Pair]) -> Vec<Finding> {
    let mut out = Vec::new();
    if let Err(problems) = tree::build(targets) {
        for (t, m) in problems {
            out.push(blocker(Some(&t), m));
        }
    }
    let package = get(params, "package").unwrap_or_default();
    let folders = match inplace::folders(Path::new(package)) {
        Ok(f) if f.is_empty() => {
            out.push(blocker(
                None,
                format!("package `{package}` holds no folder to install"),
            ));
            Vec::new()
        }
        Ok(f) => {
            out.push(info(
                None,
                format!(
                    "install replaces {} in each node's home with the package's (the old ones are \
                     kept in <home>/.cutover-backup/<rollout> for undo)",
                    f.join(", ")
                ),
            ));
            f
        }
        Err(e) => {
            out.push(blocker(None, format!("package: {}", e.message)));
            Vec::new()
        }
    };
    let version = get(params, "version").filter(|v| !v.is_empty());
    let version_file = get(params, "version-file").filter(|v| !v.is_empty());
    match (version_file, version) {
        (None, _) => out.push(info(
            None,
            "not checked: the version a node runs. The seed documents no version command or \
             file; name one with `version-file` (and `version`) to check it",
        )),
        (Some(f), Some(v)) => match std::fs::read_to_string(Path::new(package).join(f)) {
            Ok(text) if text.trim() != v => out.push(blocker(
                None,
                format!(
                    "package `{package}`: {f} shows `{}`, not `version = \"{v}\"`",
                    text.trim()
                ),
            )),
            Ok(_) => {}
            Err(_) => out.push(warning(
                None,
                format!("the package has no {f}: `verify` will find the version only on the nodes"),
            )),
        },
        (Some(_), None) => out.push(warning(
            None,
            "`version-file` is set without `version`: versions are shown, not checked",
        )),
    }
    let bin = get(params, "bin").unwrap_or("bin");
    let mut by_host: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for t in targets {
        let id = Some(t.id.as_str());
        let Some(home) = get(&t.labels, "home") else {
            out.push(blocker(
                id,
                "needs `home = \"...\"` (the node's installation directory)",
            ));
            continue;
        };
        for p in PROGRAMS {
            // Programs may be links: look at the entry itself.
            let path = Path::new(home).join(bin).join(p);
            if std::fs::symlink_metadata(&path).is_err() {
                out.push(blocker(
                    id,
                    format!("{} is missing: is `home` the node's installation directory, and `bin` the folder of its programs?", path.display()),
                ));
            }
        }
        for f in folders.iter().filter(|f| !Path::new(home).join(f).exists()) {
            out.push(warning(id, format!("{home} has no {f}: install adds it")));
        }
        if let Some(f) = version_file {
            match std::fs::read_to_string(Path::new(home).join(f)) {
                Ok(v) if Some(v.trim()) == version => out.push(warning(
                    id,
                    format!("{f} already shows {}: the node is upgraded again", v.trim()),
                )),
                Ok(v) => out.push(info(id, format!("{f} shows {}", v.trim()))),
                Err(e) => out.push(blocker(id, format!("{home}/{f}: {e} (`version-file`)"))),
            }
        }
        if label_or_param(t, params, "ipc-owner", "").is_empty() {
            out.push(warning(
                id,
                "not checked: shared memory and message queues after ctlinit and ctlshut (seed \
                 L53-63). Set `ipc-owner` to the account the node runs as (the owner column of \
                 ipcs)",
            ));
        }
        if label_or_param(t, params, "process-match", "").is_empty() {
            by_host.entry(t.host.as_str()).or_default().push(&t.id);
        }
    }
    for (host, ids) in by_host.into_iter().filter(|(_, ids)| ids.len() > 1) {
        out.push(warning(
            None,
            format!(
                "targets {} share host {host}: their processes cannot be told apart by name; set \
                 `process-match` on each (text in its processes' command lines)",
                ids.join(", ")
            ),
        ));
    }
    out.push(info(
        None,
        "not checked before the rollout (preflight runs no program): that each node is \
         started in listcirn, its listjt, listapp and listpara, its processes, its shared \
         memory and message queues; the steps check them on each node in turn",
    ));
    out.push(info(
        None,
        "not checked at all: the listener's port (the seed says ctlinit starts listening on \
         it, L55, but shows no way to check it)",
    ));
    out
}
