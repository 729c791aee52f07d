//! Grants: what a plugin requested in `describe` (and per step), expanded per target,
//! intersected with what the spec grants. Anything requested but not granted is refused before
//! the rollout starts, with the grant key to add; so is a call that could write a program it
//! may run.

use super::{exec, tcp, DirCap, Effective, GrantKey};
use crate::plugin::model::{Access, Capability, Target};
use crate::spec::{Grants, SecretSource};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

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

/// Whether a grant pattern matches: `*` stays within one path component, `**` crosses them.
pub fn matches(pattern: &str, value: &str) -> bool {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    pattern == value
        || glob::Pattern::new(pattern)
            .map(|p| p.matches_with(value, opts))
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
                    let holding: Vec<_> = grants
                        .dirs
                        .iter()
                        .filter(|g| path.starts_with(normalize(&g.path)))
                        .collect();
                    let grant = holding.iter().max_by_key(|g| g.write);
                    // The outermost grant is the anchor: opened by its path, everything
                    // below it without following links.
                    let anchor = holding
                        .iter()
                        .map(|g| normalize(&g.path))
                        .min_by_key(|p| p.components().count());
                    match (grant, anchor) {
                        (Some(g), Some(anchor)) if g.write || !write => {
                            match eff.dirs.iter_mut().find(|d| d.path == path) {
                                Some(d) => d.write |= write,
                                None => eff.dirs.push(DirCap {
                                    path,
                                    write,
                                    anchor,
                                }),
                            }
                        }
                        (Some(g), _) => denied.push(format!(
                            "{plugin} requests read-write access to `{}`{who} but [grants] dirs grants `{}` read-only: set access = \"read-write\"",
                            path.display(),
                            g.path.display()
                        )),
                        _ => denied.push(format!(
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
                Capability::Tcp(a) => match exp(a) {
                    Ok(None) => {}
                    Ok(Some(addr)) => match tcp::parse(&addr) {
                        Ok((host, port)) => {
                            let addr = format!("{host}:{port}");
                            if grants.tcp.iter().any(|g| matches(g, &addr)) {
                                if !eff.tcp.contains(&addr) {
                                    eff.tcp.push(addr);
                                }
                            } else {
                                denied.push(format!(
                                    "{plugin} requests TCP to `{addr}`{who}: add \"{addr}\" to [grants] tcp"
                                ));
                            }
                        }
                        Err(err) => denied.push(format!("{plugin} requests TCP {a}: {err}")),
                    },
                    Err(err) => denied.push(format!("{plugin} requests TCP {a}: {err}")),
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
                Capability::Env(name) => {
                    if let Err(why) = exec::env_name_ok(name, true) {
                        denied.push(format!(
                            "{plugin} requests environment variable `{name}`: {why}"
                        ));
                    } else if grants.env.iter().any(|g| g == name) {
                        if !eff.env.contains(name) {
                            eff.env.push(name.clone());
                        }
                    } else {
                        denied.push(format!(
                            "{plugin} requests to set environment variable `{name}` for its programs: add \"{name}\" to [grants] env"
                        ));
                    }
                }
            }
        }
    }
    eff.pass_env = grants.pass_env.clone();
    denied.dedup();
    if denied.is_empty() {
        Ok(eff)
    } else {
        Err(denied)
    }
}

/// Programs a call may run that the same call could write (or replace through a symbolic
/// link it could plant): one refusal each, naming both grants. A program must lie outside
/// every read-write directory of the call, by its path and by its real path.
pub fn conflicts(plugin: &str, who: &str, eff: &Effective) -> Vec<String> {
    let mut out = Vec::new();
    for prog in &eff.exec {
        if let Some((dir, _)) = exec::writable_holder(eff, Path::new(prog)) {
            out.push(format!(
                "{plugin}{who} can write the program `{prog}` it may run ({} grants `{}` read-write): request write access and the programs in different steps, or narrow the directory, so that [grants] exec and [grants] dirs do not overlap in one call",
                GrantKey::Dirs,
                dir.display()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::model::{DirRequest, Pair};
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
            ..Default::default()
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
        assert_eq!(
            eff.dirs,
            vec![DirCap {
                path: PathBuf::from("/srv/n1"),
                write: true,
                anchor: PathBuf::from("/srv")
            }]
        );
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
