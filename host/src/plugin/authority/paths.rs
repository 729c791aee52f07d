//! Granted directories and the paths host-side file calls touch.
//!
//! A granted directory is opened from its anchor (the operator's outermost grant holding it,
//! opened by its path) one component at a time with `O_NOFOLLOW`: a symbolic link anywhere
//! below the anchor, even one the plugin planted a moment ago, is refused, never followed.
//! WASI preopens receive that open handle (through `/proc/self/fd`), and host-side file calls
//! work relative to it, so no path string is re-opened after it was checked.

use super::grants::normalize;
use super::{Denied, DirCap, Effective, GrantKey};
use crate::plugin::model::HostError;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::os::fd::OwnedFd;
use std::path::{Component, Path, PathBuf};

/// Flags of every directory open below an anchor.
const DIR_NOFOLLOW: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

/// Why a path below a granted directory could not be opened.
#[derive(Debug)]
pub enum WalkError {
    /// A component is a symbolic link (refused, never followed).
    Link(PathBuf),
    /// A component is missing.
    Absent(PathBuf),
    /// A component is not a directory, or another I/O error.
    Io(PathBuf, std::io::Error),
}

/// Open the directory `rel` below `start` without following any symbolic link; with `create`,
/// missing directories are made (mode 0755 less the umask).
pub fn walk(start: &OwnedFd, rel: &Path, create: bool) -> Result<OwnedFd, WalkError> {
    // One system call where the kernel can do the same checks (openat2 with RESOLVE_BENEATH
    // and RESOLVE_NO_SYMLINKS: no link, no `..`, no magic link on the way). Anything it
    // refuses, or a kernel without it, takes the walk below, which names what is wrong.
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if plain && !rel.as_os_str().is_empty() {
        let resolve = rustix::fs::ResolveFlags::BENEATH
            | rustix::fs::ResolveFlags::NO_SYMLINKS
            | rustix::fs::ResolveFlags::NO_MAGICLINKS;
        if let Ok(fd) = rustix::fs::openat2(start, rel, DIR_NOFOLLOW, Mode::empty(), resolve) {
            return Ok(fd);
        }
    }
    let mut fd = rustix::io::dup(start).map_err(|e| WalkError::Io(PathBuf::new(), e.into()))?;
    let mut so_far = PathBuf::new();
    for c in rel.components() {
        let name = match c {
            Component::Normal(n) => n,
            Component::CurDir => continue,
            _ => {
                return Err(WalkError::Io(
                    rel.to_path_buf(),
                    std::io::Error::other("`..` and absolute components are not followed"),
                ))
            }
        };
        so_far.push(name);
        let mut opened = rustix::fs::openat(&fd, name, DIR_NOFOLLOW, Mode::empty());
        if create && matches!(opened, Err(Errno::NOENT)) {
            match rustix::fs::mkdirat(&fd, name, Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(WalkError::Io(so_far, e.into())),
            }
            opened = rustix::fs::openat(&fd, name, DIR_NOFOLLOW, Mode::empty());
        }
        fd = match opened {
            Ok(f) => f,
            Err(Errno::NOENT) => return Err(WalkError::Absent(so_far)),
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                let link = rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Symlink);
                return Err(if link {
                    WalkError::Link(so_far)
                } else {
                    WalkError::Io(so_far, e.into())
                });
            }
            Err(e) => return Err(WalkError::Io(so_far, e.into())),
        };
    }
    Ok(fd)
}

fn open_anchor(anchor: &Path) -> std::io::Result<OwnedFd> {
    rustix::fs::open(
        anchor,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(Into::into)
}

/// The denial for a symbolic link met below a grant.
pub fn link_denied(plugin: &str, wanted: String, grant: &Path, link: &Path) -> Denied {
    Denied {
        key: GrantKey::Dirs,
        plugin: plugin.into(),
        wanted,
        why: format!(
            "`{}` is a symbolic link, and paths below the grant `{}` are opened without following links",
            link.display(),
            grant.display()
        ),
        fix: "replace the link by the directory it points to, or grant that directory itself under [grants] dirs".into(),
    }
}

/// Open a granted directory for a call: `Ok(None)` when it does not exist (a plugin sees it
/// as missing, which it is).
pub fn open_granted(cap: &DirCap, plugin: &str) -> Result<Option<OwnedFd>, String> {
    let anchor = match open_anchor(&cap.anchor) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "cannot open granted directory {}: {e}",
                cap.anchor.display()
            ))
        }
    };
    let rel = cap.path.strip_prefix(&cap.anchor).unwrap_or(Path::new(""));
    match walk(&anchor, rel, false) {
        Ok(fd) => Ok(Some(fd)),
        Err(WalkError::Absent(_)) => Ok(None),
        Err(WalkError::Link(l)) => Err(link_denied(
            plugin,
            format!("granted directory `{}`", cap.path.display()),
            &cap.anchor,
            &cap.anchor.join(l),
        )
        .to_string()),
        Err(WalkError::Io(p, e)) => Err(format!(
            "cannot open granted directory {}: {}: {e}",
            cap.path.display(),
            cap.anchor.join(p).display()
        )),
    }
}

/// A path of a host-side file call, located in the call's grants: the granted directory's
/// handle and the path relative to it.
pub struct Located<'a> {
    pub dir: OwnedFd,
    pub rel: PathBuf,
    pub cap: &'a DirCap,
}

/// Locate `path` for `op` (e.g. "copy-tree from"): it must lie in a granted directory (a
/// read-write one when `write`), reached without symbolic links.
pub fn locate<'a>(
    eff: &'a Effective,
    plugin: &str,
    op: &str,
    path: &str,
    write: bool,
) -> Result<Located<'a>, HostError> {
    let p = normalize(Path::new(path));
    let cap = eff
        .dirs
        .iter()
        .filter(|d| p.starts_with(&d.path) && (d.write || !write))
        .max_by_key(|d| d.path.components().count())
        .ok_or_else(|| {
            let mut d = Denied::ungranted(
                GrantKey::Dirs,
                plugin,
                format!("{op} `{path}`"),
                format!(
                    "not inside its {}granted directories ({})",
                    if write { "read-write " } else { "" },
                    eff.dirs_list()
                ),
            );
            if write {
                d.fix.push_str(" with access = \"read-write\"");
            }
            HostError::from(d)
        })?;
    let dir = open_granted(cap, plugin)
        .map_err(HostError::Io)?
        .ok_or_else(|| {
            HostError::NotFound(format!(
                "{op} `{path}`: the granted directory {} does not exist",
                cap.path.display()
            ))
        })?;
    let rel = p
        .strip_prefix(&cap.path)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    Ok(Located { dir, rel, cap })
}

/// A host-side message for a walk below a located path.
pub fn walk_message(plugin: &str, op: &str, at: &Located, e: WalkError) -> HostError {
    match e {
        WalkError::Link(l) => link_denied(
            plugin,
            format!("{op} `{}`", at.cap.path.join(&at.rel).display()),
            &at.cap.path,
            &at.cap.path.join(l),
        )
        .into(),
        WalkError::Absent(p) => HostError::NotFound(format!(
            "{op}: {} does not exist",
            at.cap.path.join(p).display()
        )),
        WalkError::Io(p, e) => {
            HostError::Io(format!("{op}: {}: {e}", at.cap.path.join(p).display()))
        }
    }
}

/// What a guest's own file error means, when the host can tell: WASI says only "not found"
/// (errno 44), "not permitted" (63) or "not capable" (76) for a path outside its preopens.
/// Names the grant when a path in `message` lies under no granted directory.
pub fn explain(eff: &Effective, message: &str) -> Option<String> {
    if message.contains("[grants] dirs")
        || !["os error 44", "os error 63", "os error 76"]
            .iter()
            .any(|e| message.contains(e))
    {
        return None;
    }
    let paths: Vec<PathBuf> = message
        .split(|c: char| c.is_whitespace() || "`'\"(),;".contains(c))
        .map(|w| w.trim_end_matches(':'))
        .filter(|w| w.starts_with('/'))
        .map(|w| normalize(Path::new(w)))
        .collect();
    if let Some(p) = paths
        .iter()
        .find(|p| !eff.dirs.iter().any(|d| p.starts_with(&d.path)))
    {
        return Some(format!(
            "`{}` lies outside every directory granted to this call ({}): the plugin must request it in describe() and the spec must grant it under {}",
            p.display(),
            eff.dirs_list(),
            GrantKey::Dirs
        ));
    }
    // Inside a grant yet "not permitted": a link (or `..`) on the way climbs out of it.
    let climbs = message.contains("os error 63") || message.contains("os error 76");
    paths.first().filter(|_| climbs).map(|p| {
        format!(
            "`{}` leads out of its granted directory through a symbolic link, which is never followed out of a grant: grant where it points under {}",
            p.display(),
            GrantKey::Dirs
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(path: &Path, anchor: &Path, write: bool) -> DirCap {
        DirCap {
            path: path.into(),
            write,
            anchor: anchor.into(),
        }
    }

    #[test]
    fn links_in_out_and_mid_path_are_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let grant = t.path().join("grant");
        std::fs::create_dir_all(grant.join("root/real/deep")).unwrap();
        std::fs::create_dir_all(t.path().join("outside")).unwrap();
        // A link leading out, one staying in, and one in the middle of a path.
        std::os::unix::fs::symlink("../../..", grant.join("root/out")).unwrap();
        std::os::unix::fs::symlink("real", grant.join("root/in")).unwrap();
        for (p, link) in [
            ("root/out", "root/out"),
            ("root/in", "root/in"),
            ("root/in/deep", "root/in"),
        ] {
            let c = cap(&grant.join(p), &grant, true);
            let e = open_granted(&c, "p").unwrap_err();
            assert!(
                e.contains("symbolic link") && e.contains("[grants] dirs"),
                "{e}"
            );
            assert!(e.contains(&grant.join(link).display().to_string()), "{e}");
        }
        assert!(
            open_granted(&cap(&grant.join("root/real/deep"), &grant, true), "p")
                .unwrap()
                .is_some()
        );
        assert!(
            open_granted(&cap(&grant.join("root/absent"), &grant, true), "p")
                .unwrap()
                .is_none()
        );
        // The anchor itself is the operator's and is opened by its path.
        let alias = t.path().join("alias");
        std::os::unix::fs::symlink(&grant, &alias).unwrap();
        assert!(
            open_granted(&cap(&alias.join("root/real"), &alias, false), "p")
                .unwrap()
                .is_some()
        );
    }

    #[test]
    fn nested_grants_pick_the_most_specific_and_need_write() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("root/cache")).unwrap();
        let eff = Effective {
            dirs: vec![
                cap(&t.path().join("root"), t.path(), false),
                cap(&t.path().join("root/cache"), t.path(), true),
            ],
            ..Default::default()
        };
        let f = t.path().join("root/cache/x");
        let l = locate(&eff, "p", "write", f.to_str().unwrap(), true).unwrap();
        assert_eq!(l.cap.path, t.path().join("root/cache"));
        assert_eq!(l.rel, PathBuf::from("x"));
        let up = format!("{}/root/cache/../y", t.path().display());
        let e = locate(&eff, "p", "write", &up, true)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("[grants] dirs") && e.contains("read-write"),
            "{e}"
        );
        let e = locate(&eff, "p", "copy-tree from", "/etc", false)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("copy-tree from `/etc` denied"), "{e}");
        // The nested grant replaced by a link: refused, though its parent is granted.
        std::fs::remove_dir(t.path().join("root/cache")).unwrap();
        std::os::unix::fs::symlink("../..", t.path().join("root/cache")).unwrap();
        let e = locate(&eff, "p", "write", f.to_str().unwrap(), true)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
    }

    #[test]
    fn wasi_errnos_name_the_grant_when_the_path_is_outside() {
        let eff = Effective {
            dirs: vec![cap(Path::new("/srv/n1"), Path::new("/srv"), false)],
            ..Default::default()
        };
        let m = explain(&eff, "/etc/passwd: No such file or directory (os error 44)").unwrap();
        assert!(
            m.contains("`/etc/passwd`") && m.contains("[grants] dirs"),
            "{m}"
        );
        let m = explain(&eff, "reading `/srv/n1/../secret`: denied (os error 63)").unwrap();
        assert!(m.contains("`/srv/secret`"), "{m}");
        assert!(explain(&eff, "/srv/n1/x: (os error 44)").is_none());
        let m = explain(&eff, "/srv/n1/link: denied (os error 63)").unwrap();
        assert!(
            m.contains("symbolic link") && m.contains("[grants] dirs"),
            "{m}"
        );
        assert!(explain(&eff, "/etc/x: some other failure").is_none());
    }
}
