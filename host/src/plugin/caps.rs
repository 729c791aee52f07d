//! Capabilities: what a plugin requested in `describe`, expanded per target, intersected
//! with what the spec grants. Anything requested but not granted is refused before the
//! rollout starts, with the grant key to add.

use super::bindings::{Access, Capability, Target};
use crate::spec::{Grants, SecretSource};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The capabilities one plugin call gets.
#[derive(Debug, Clone, Default)]
pub struct Effective {
    /// Preopened at the same path inside the sandbox; `true` = read-write.
    pub dirs: Vec<(PathBuf, bool)>,
    /// Programs `exec.run` may start (absolute paths).
    pub exec: Vec<String>,
    /// `host[:port]` patterns HTTP may reach.
    pub http: Vec<String>,
    /// Secret names readable.
    pub secrets: Vec<String>,
}

/// Fill `{key}` placeholders from the target's labels, then the params.
/// `{key?}` marks an optional value: when it is missing the capability is not needed
/// (`Ok(None)`).
pub fn expand(
    template: &str,
    target: Option<&Target>,
    params: &[(String, String)],
) -> Result<Option<String>, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after
            .find('}')
            .ok_or_else(|| format!("unclosed `{{` in `{template}`"))?;
        let (key, optional) = match after[..close].strip_suffix('?') {
            Some(k) => (k, true),
            None => (&after[..close], false),
        };
        let value = target
            .and_then(|t| {
                t.labels
                    .iter()
                    .find(|p| p.key == key)
                    .map(|p| p.value.clone())
            })
            .or_else(|| {
                params
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            });
        match value {
            Some(v) => out.push_str(&v),
            None if optional => return Ok(None),
            None if target.is_none() => return Err(format!("needs target label `{key}`")),
            None => {
                return Err(format!(
                    "`{template}` needs `{key}`: add `{key} = \"...\"` to target `{}` or to [adapter.params]",
                    target.map(|t| t.id.as_str()).unwrap_or("")
                ))
            }
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(Some(out))
}

/// `host[:port]` of a URL, or the value itself when it is not a URL.
fn authority(value: &str) -> String {
    match value.split_once("://") {
        Some((scheme, rest)) => {
            let auth = rest.split(['/', '?', '#']).next().unwrap_or(rest);
            let auth = auth.rsplit('@').next().unwrap_or(auth);
            if auth.contains(':') && !auth.ends_with(']') {
                auth.to_string()
            } else {
                format!("{auth}:{}", if scheme == "https" { 443 } else { 80 })
            }
        }
        None => value.to_string(),
    }
}

/// Lexically normalise an absolute path (`a/./b/../c` → `a/c`).
pub fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn matches(pattern: &str, value: &str) -> bool {
    pattern == value
        || glob::Pattern::new(pattern)
            .map(|p| p.matches(value))
            .unwrap_or(false)
}

/// Resolve the requested capabilities for one call: `target` for a target step, none for a
/// fleet-wide call (then every target's expansion is included). Errors list every missing
/// grant, each naming the spec key to add.
pub fn resolve(
    plugin: &str,
    requested: &[Capability],
    target: Option<&Target>,
    fleet: &[Target],
    params: &[(String, String)],
    grants: &Grants,
    secrets: &BTreeMap<String, SecretSource>,
) -> Result<Effective, Vec<String>> {
    let scope: Vec<Option<&Target>> = match target {
        Some(t) => vec![Some(t)],
        None if fleet.is_empty() => vec![None],
        None => fleet.iter().map(Some).collect(),
    };
    let mut eff = Effective::default();
    let mut denied = Vec::new();
    for cap in requested {
        for t in &scope {
            let who = t
                .map(|t| format!(" for target `{}`", t.id))
                .unwrap_or_default();
            let exp = |s: &str| expand(s, *t, params);
            match cap {
                Capability::Dir(d) => {
                    let path = match exp(&d.path) {
                        Ok(None) => continue,
                        Ok(Some(p)) => normalize(Path::new(&p)),
                        Err(e) => {
                            denied.push(format!("{plugin} requests directory {}: {e}", d.path));
                            continue;
                        }
                    };
                    if !path.is_absolute() {
                        denied.push(format!(
                            "{plugin} requests directory `{}`{who}, which is not absolute",
                            path.display()
                        ));
                        continue;
                    }
                    let write = matches!(d.access, Access::ReadWrite);
                    let grant = grants
                        .dirs
                        .iter()
                        .filter(|g| path.starts_with(normalize(&g.path)))
                        .max_by_key(|g| g.write);
                    match grant {
                        Some(g) if g.write || !write => {
                            if !eff.dirs.iter().any(|(p, _)| p == &path) {
                                eff.dirs.push((path, write));
                            }
                        }
                        Some(g) => denied.push(format!(
                            "{plugin} requests read-write access to `{}`{who} but [grants] dirs grants `{}` read-only: set access = \"read-write\"",
                            path.display(),
                            g.path.display()
                        )),
                        None => denied.push(format!(
                            "{plugin} requests {} access to `{}`{who}: add {{ path = \"{}\", access = \"{}\" }} to [grants] dirs",
                            if write { "read-write" } else { "read" },
                            path.display(),
                            path.display(),
                            if write { "read-write" } else { "read" }
                        )),
                    }
                }
                Capability::Exec(e) => match exp(e) {
                    Ok(None) => {}
                    Ok(Some(prog)) => {
                        let prog = normalize(Path::new(&prog)).display().to_string();
                        if grants.exec.iter().any(|g| matches(g, &prog)) {
                            if !eff.exec.contains(&prog) {
                                eff.exec.push(prog);
                            }
                        } else {
                            denied.push(format!(
                                "{plugin} requests to run `{prog}`{who}: add \"{prog}\" (or a pattern matching it) to [grants] exec"
                            ));
                        }
                    }
                    Err(err) => denied.push(format!("{plugin} requests exec {e}: {err}")),
                },
                Capability::Http(h) => match exp(h) {
                    Ok(None) => {}
                    Ok(Some(host)) => {
                        let host = authority(&host);
                        if grants.http.iter().any(|g| matches(g, &host)) {
                            if !eff.http.contains(&host) {
                                eff.http.push(host);
                            }
                        } else {
                            denied.push(format!(
                                "{plugin} requests HTTP to `{host}`{who}: add \"{host}\" to [grants] http"
                            ));
                        }
                    }
                    Err(err) => denied.push(format!("{plugin} requests HTTP {h}: {err}")),
                },
                Capability::Secret(name) => match exp(name) {
                    Ok(None) => {}
                    Ok(Some(name)) => {
                        if secrets.contains_key(&name) {
                            if !eff.secrets.contains(&name) {
                                eff.secrets.push(name);
                            }
                        } else {
                            denied.push(format!(
                                "{plugin} requests secret `{name}`: add `{name} = {{ env = \"VAR\" }}` under [secrets]"
                            ));
                        }
                    }
                    Err(err) => denied.push(format!("{plugin} requests secret {name}: {err}")),
                },
            }
        }
    }
    denied.dedup();
    if denied.is_empty() {
        Ok(eff)
    } else {
        Err(denied)
    }
}

/// Whether `host_port` (from a URL) is allowed by the effective HTTP patterns.
pub fn http_allowed(eff: &Effective, host: &str, port: u16) -> bool {
    let with_port = format!("{host}:{port}");
    eff.http
        .iter()
        .any(|p| matches(p, &with_port) || matches(p, host))
}

#[cfg(test)]
mod tests {
    use super::super::bindings::{DirRequest, Pair};
    use super::*;
    use crate::spec::DirGrant;

    fn target(id: &str, root: &str) -> Target {
        Target {
            id: id.into(),
            host: "local".into(),
            labels: vec![Pair {
                key: "root".into(),
                value: root.into(),
            }],
        }
    }

    #[test]
    fn intersection_and_denials_name_the_grant() {
        let req = vec![
            Capability::Dir(DirRequest {
                path: "{root}".into(),
                access: Access::ReadWrite,
            }),
            Capability::Exec("{root}/bin/stop".into()),
            Capability::Http("127.0.0.1:*".into()),
        ];
        let grants = Grants {
            dirs: vec![DirGrant {
                path: "/srv".into(),
                write: true,
            }],
            exec: vec!["/srv/*/bin/*".into()],
            http: vec![],
        };
        let t = target("n1", "/srv/n1");
        let err = resolve("p", &req, Some(&t), &[], &[], &grants, &BTreeMap::new()).unwrap_err();
        assert_eq!(err.len(), 1);
        assert!(err[0].contains("[grants] http"), "{err:?}");

        let grants = Grants {
            http: vec!["127.0.0.1:*".into()],
            ..grants
        };
        let eff = resolve("p", &req, Some(&t), &[], &[], &grants, &BTreeMap::new()).unwrap();
        assert_eq!(eff.dirs, vec![(PathBuf::from("/srv/n1"), true)]);
        assert_eq!(eff.exec, vec!["/srv/n1/bin/stop".to_string()]);

        let escape = target("n2", "/srv/../etc");
        let err = resolve(
            "p",
            &req,
            Some(&escape),
            &[],
            &[],
            &grants,
            &BTreeMap::new(),
        )
        .unwrap_err();
        assert!(
            err.iter()
                .any(|e| e.contains("`/etc`") && e.contains("[grants] dirs")),
            "{err:?}"
        );
    }

    #[test]
    fn read_only_grant_refuses_write_request() {
        let req = vec![Capability::Dir(DirRequest {
            path: "/data".into(),
            access: Access::ReadWrite,
        })];
        let grants = Grants {
            dirs: vec![DirGrant {
                path: "/data".into(),
                write: false,
            }],
            ..Default::default()
        };
        let err = resolve("p", &req, None, &[], &[], &grants, &BTreeMap::new()).unwrap_err();
        assert!(err[0].contains("read-only"), "{err:?}");
    }
}
