//! Running programs: which program, which environment, which working directory.
//!
//! A program runs only if the call requested it and the spec granted it, and only if the call
//! cannot write it: neither its path nor its real path (links resolved) lies in a read-write
//! directory of the call. It is started by its real path (with its granted path as `argv[0]`),
//! so what runs is the file that was checked. The environment is cleared: PATH (without
//! entries a plugin could write), the host variables the operator passes through, and the
//! variables the plugin requested and the operator granted, never one that loads code.

use super::grants::normalize;
use super::{Denied, DirCap, Effective, GrantKey};
use std::path::{Path, PathBuf};

/// Variables that make a program load other code or change how a shell reads its input: a
/// plugin may never set them, whatever the grants.
const HAZARDS: &[&str] = &[
    "PATH",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "IFS",
    "CDPATH",
    "GLOBIGNORE",
    "PROMPT_COMMAND",
    "GCONV_PATH",
    "GETCONF_DIR",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "RES_OPTIONS",
    "LOCALDOMAIN",
    "GLIBC_TUNABLES",
    "PYTHONPATH",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PERL5LIB",
    "PERL5OPT",
    "PERLLIB",
    "RUBYLIB",
    "RUBYOPT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
];
const HAZARD_PREFIXES: &[&str] = &["LD_", "DYLD_", "BASH_FUNC_", "MALLOC_"];

/// Whether `name` is a variable name a grant may list. `settable`: the plugin would set its
/// value (then variables that load code are refused); else the operator passes the host's
/// value through.
pub fn env_name_ok(name: &str, settable: bool) -> Result<(), String> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !valid {
        return Err(format!("`{name}` is not an environment variable name"));
    }
    if settable && (HAZARDS.contains(&name) || HAZARD_PREFIXES.iter().any(|p| name.starts_with(p)))
    {
        return Err(format!(
            "`{name}` makes programs load other code, so a plugin may never set it (pass the host's value with [grants] pass-env instead)"
        ));
    }
    Ok(())
}

/// The read-write directory of `eff` that holds `path` (by its path or its real path).
pub fn writable_holder<'a>(eff: &'a Effective, path: &Path) -> Option<(&'a Path, &'a DirCap)> {
    let path = normalize(path);
    let real = std::fs::canonicalize(&path).ok();
    eff.dirs.iter().filter(|d| d.write).find_map(|d| {
        let dir_real = std::fs::canonicalize(&d.path).ok();
        let inside = |p: &Path| {
            p.starts_with(&d.path) || dir_real.as_ref().is_some_and(|r| p.starts_with(r))
        };
        (inside(&path) || real.as_deref().is_some_and(inside)).then_some((d.path.as_path(), d))
    })
}

/// A program checked for running: started by `real`, shown to itself as `arg0`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    pub arg0: String,
    pub real: PathBuf,
}

/// Check that the call may run `program`.
pub fn program(eff: &Effective, plugin: &str, program: &str) -> Result<Program, Denied> {
    let granted = normalize(Path::new(program)).display().to_string();
    if !eff.exec.contains(&granted) {
        return Err(Denied::ungranted(
            GrantKey::Exec,
            plugin,
            format!("exec of `{program}`"),
            format!(
                "not among its granted commands ({})",
                if eff.exec.is_empty() {
                    "none".to_string()
                } else {
                    eff.exec.join(", ")
                }
            ),
        ));
    }
    if let Some((dir, _)) = writable_holder(eff, Path::new(&granted)) {
        return Err(Denied {
            key: GrantKey::Exec,
            plugin: plugin.into(),
            wanted: format!("exec of `{granted}`"),
            why: format!(
                "the same call can write it (through its read-write directory `{}`)",
                dir.display()
            ),
            fix: "a program must not lie in a directory the call can write: separate [grants] exec and [grants] dirs (request write access and the program in different steps)".into(),
        });
    }
    let real = std::fs::canonicalize(&granted).map_err(|e| Denied {
        key: GrantKey::Exec,
        plugin: plugin.into(),
        wanted: format!("exec of `{granted}`"),
        why: format!("it cannot be resolved: {e}"),
        fix: "check the path granted under [grants] exec".into(),
    })?;
    match std::fs::metadata(&real) {
        Ok(m) if m.is_file() => Ok(Program {
            arg0: granted,
            real,
        }),
        _ => Err(Denied {
            key: GrantKey::Exec,
            plugin: plugin.into(),
            wanted: format!("exec of `{granted}`"),
            why: format!("`{}` is not a regular file", real.display()),
            fix: "grant a program file under [grants] exec".into(),
        }),
    }
}

/// Check the variables a plugin sets for a program.
pub fn env(eff: &Effective, plugin: &str, vars: &[(String, String)]) -> Result<(), Denied> {
    for (name, _) in vars {
        let wanted = format!("environment variable `{name}`");
        if let Err(why) = env_name_ok(name, true) {
            return Err(Denied {
                key: GrantKey::Env,
                plugin: plugin.into(),
                wanted,
                why,
                fix:
                    "no [grants] env entry can allow it; the operator may pass the host's own value with [grants] pass-env"
                        .into(),
            });
        }
        if !eff.env.contains(name) {
            return Err(Denied::ungranted(
                GrantKey::Env,
                plugin,
                wanted,
                "not among the variables it may set".into(),
            ));
        }
    }
    Ok(())
}

/// Check a working directory: it must lie in a granted directory (links resolved).
pub fn cwd(eff: &Effective, plugin: &str, cwd: &str) -> Result<PathBuf, Denied> {
    let p = normalize(Path::new(cwd));
    let real = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
    let inside = eff.dirs.iter().any(|d| {
        let dr = std::fs::canonicalize(&d.path).unwrap_or_else(|_| d.path.clone());
        p.starts_with(&d.path) && real.starts_with(&dr)
    });
    if p.is_absolute() && inside {
        Ok(real)
    } else {
        Err(Denied::ungranted(
            GrantKey::Dirs,
            plugin,
            format!("working directory `{cwd}`"),
            format!("not inside its granted directories ({})", eff.dirs_list()),
        ))
    }
}

/// The environment of a program: PATH without entries the call could write, the passed-through
/// host variables, then the plugin's own (already checked).
pub fn environment(eff: &Effective, vars: &[(String, String)]) -> Vec<(String, String)> {
    let host_path = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let path: Vec<&str> = host_path
        .split(':')
        .filter(|e| e.starts_with('/') && writable_holder(eff, Path::new(e)).is_none())
        .collect();
    let mut out = vec![("PATH".to_string(), path.join(":"))];
    for name in &eff.pass_env {
        if let Ok(v) = std::env::var(name) {
            out.push((name.clone(), v));
        }
    }
    out.extend(vars.iter().cloned());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn caps(dir: &Path, write: bool, exec: &[&Path]) -> Effective {
        Effective {
            dirs: vec![DirCap {
                path: dir.to_path_buf(),
                write,
                anchor: dir.to_path_buf(),
            }],
            exec: exec.iter().map(|p| p.display().to_string()).collect(),
            env: vec!["SAFE_VAR".into()],
            pass_env: vec!["HOME".into()],
            ..Default::default()
        }
    }

    fn script(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_program_the_call_can_write_is_refused_by_path_and_by_link() {
        let t = tempfile::tempdir().unwrap();
        let (rw, tools) = (t.path().join("rw"), t.path().join("tools"));
        script(&tools.join("tool"));
        script(&rw.join("bin/start"));
        let inside = rw.join("bin/start");
        let e = program(&caps(&rw, true, &[&inside]), "p", inside.to_str().unwrap()).unwrap_err();
        assert_eq!(e.key, GrantKey::Exec);
        assert!(e.why.contains("can write it"), "{e}");
        // Read-only, the same program runs, started by its real path.
        let ok = program(&caps(&rw, false, &[&inside]), "p", inside.to_str().unwrap()).unwrap();
        assert_eq!(ok.real, std::fs::canonicalize(&inside).unwrap());
        // A granted path that is a link into the writable directory is refused too.
        let link = t.path().join("link-tool");
        std::os::unix::fs::symlink(&inside, &link).unwrap();
        let e = program(&caps(&rw, true, &[&link]), "p", link.to_str().unwrap()).unwrap_err();
        assert!(e.why.contains("can write it"), "{e}");
        // Outside the writable directory: allowed; `..` tricks are normalised first.
        let tool = tools.join("tool");
        let c = caps(&rw, true, &[&tool]);
        assert!(program(&c, "p", tool.to_str().unwrap()).is_ok());
        let trick = format!("{}/../../../bin/sh", tool.display());
        let e = program(&c, "p", &trick).unwrap_err();
        assert!(e.to_string().contains("[grants] exec"), "{e}");
    }

    #[test]
    fn env_rules() {
        let c = caps(Path::new("/srv"), true, &[]);
        let set = |n: &str| vec![(n.to_string(), "x".to_string())];
        assert!(env(&c, "p", &set("SAFE_VAR")).is_ok());
        for bad in [
            "LD_PRELOAD",
            "LD_LIBRARY_PATH",
            "BASH_ENV",
            "ENV",
            "PATH",
            "BASH_FUNC_x%%",
        ] {
            let e = env(&c, "p", &set(bad)).unwrap_err();
            assert_eq!(e.key, GrantKey::Env, "{bad}");
            assert!(e.to_string().contains(&format!("`{bad}` denied")), "{e}");
        }
        let e = env(&c, "p", &set("OTHER")).unwrap_err();
        assert!(e.fix.contains("[grants] env"), "{e}");
        assert!(env_name_ok("LD_PRELOAD", true).is_err());
        assert!(env_name_ok("JAVA_HOME", true).is_ok());
        assert!(env_name_ok("JAVA_TOOL_OPTIONS", false).is_ok());
        assert!(env_name_ok("A=B", false).is_err());
    }

    #[test]
    fn path_drops_writable_entries_and_pass_env_passes() {
        let t = tempfile::tempdir().unwrap();
        let c = caps(t.path(), true, &[]);
        let vars = environment(&c, &[("SAFE_VAR".into(), "1".into())]);
        let path = &vars.iter().find(|(k, _)| k == "PATH").unwrap().1;
        assert!(!path.contains(t.path().to_str().unwrap()));
        assert!(vars.iter().any(|(k, v)| k == "SAFE_VAR" && v == "1"));
        assert_eq!(
            vars.iter().filter(|(k, _)| k == "HOME").count(),
            usize::from(std::env::var("HOME").is_ok())
        );
    }

    #[test]
    fn cwd_must_lie_in_a_grant() {
        let t = tempfile::tempdir().unwrap();
        let c = caps(t.path(), false, &[]);
        assert!(cwd(&c, "p", t.path().to_str().unwrap()).is_ok());
        let e = cwd(&c, "p", "/etc").unwrap_err();
        assert!(
            e.to_string().contains("working directory `/etc` denied"),
            "{e}"
        );
        assert!(e.to_string().contains("[grants] dirs"));
        let out = format!("{}/..", t.path().display());
        assert!(cwd(&c, "p", &out).is_err());
        std::os::unix::fs::symlink("/etc", t.path().join("etc")).unwrap();
        assert!(cwd(&c, "p", t.path().join("etc").to_str().unwrap()).is_err());
    }

    #[test]
    fn exec_patterns_stay_in_one_component() {
        use super::super::grants::matches;
        assert!(matches("/srv/*/bin/start", "/srv/n1/bin/start"));
        assert!(!matches("/srv/*", "/srv/n1/bin/start"));
        assert!(matches("/srv/**", "/srv/n1/bin/start"));
        assert!(matches("/srv/**/start", "/srv/n1/bin/start"));
        assert!(!matches("/srv/n?", "/srv/n1/x"));
    }
}
