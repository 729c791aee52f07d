//! Host-side file operations for plugins, confined to the call's granted directories with
//! cap-std (paths and symbolic links cannot climb out of a grant).

use super::caps::{normalize, Effective};
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use std::path::{Path, PathBuf};

/// What a copy did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// The granted directory holding `path` (writable when `write`), and `path` relative to it.
fn grant_for(
    caps: &Effective,
    plugin: &str,
    op: &str,
    path: &str,
    write: bool,
) -> Result<(PathBuf, PathBuf), String> {
    let p = normalize(Path::new(path));
    let grant = caps
        .dirs
        .iter()
        .filter(|(g, w)| p.starts_with(g) && (*w || !write))
        .max_by_key(|(g, _)| g.components().count());
    match grant {
        Some((g, _)) => {
            let rel = p.strip_prefix(g).unwrap_or(Path::new("")).to_path_buf();
            Ok((
                g.clone(),
                if rel.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    rel
                },
            ))
        }
        None => {
            let granted: Vec<String> = caps
                .dirs
                .iter()
                .map(|(g, w)| format!("{} {}", g.display(), if *w { "read-write" } else { "read" }))
                .collect();
            Err(format!(
                "{op} {} `{path}` denied for {plugin}: not inside its {}granted directories ({}); the plugin must request it in describe() and the spec must grant it under [grants] dirs{}",
                if write { "into" } else { "from" },
                if write { "read-write " } else { "" },
                if granted.is_empty() { "none".into() } else { granted.join(", ") },
                if write { " with access = \"read-write\"" } else { "" }
            ))
        }
    }
}

/// Copy the tree `from` into `to` inside the granted directories, keeping permissions and
/// symbolic links. `progress` sees the running totals.
pub fn copy_tree(
    caps: &Effective,
    plugin: &str,
    from: &str,
    to: &str,
    progress: &mut dyn FnMut(&CopyStats),
) -> Result<CopyStats, String> {
    let (src_root, src_rel) = grant_for(caps, plugin, "copy-tree", from, false)?;
    let (dst_root, dst_rel) = grant_for(caps, plugin, "copy-tree", to, true)?;
    let (src, dst) = (open(&src_root)?, open(&dst_root)?);
    let mut stats = CopyStats::default();
    copy_dir(&src, &src_rel, &dst, &dst_rel, &mut stats, progress)
        .map_err(|(path, e)| format!("copy-tree {from} → {to}: {}: {e}", path.display()))?;
    Ok(stats)
}

fn open(p: &Path) -> Result<Dir, String> {
    Dir::open_ambient_dir(p, ambient_authority())
        .map_err(|e| format!("cannot open granted directory {}: {e}", p.display()))
}

/// Replace the file `path` (inside a read-write grant) with `contents` atomically: a
/// temporary sibling, the permissions of the file it replaces, then a rename.
pub fn write_atomic(
    caps: &Effective,
    plugin: &str,
    path: &str,
    contents: &[u8],
) -> Result<(), String> {
    let (root, rel) = grant_for(caps, plugin, "write", path, true)?;
    let dir = open(&root)?;
    let name = rel
        .file_name()
        .ok_or_else(|| format!("write `{path}`: not a file path"))?;
    // A name of its own per write, so concurrent writers of one file never share it.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".{}-{n}.cutover-tmp", std::process::id()));
    let tmp = rel.with_file_name(tmp_name);
    let fail = |p: &Path, e: std::io::Error| format!("write {path}: {}: {e}", p.display());
    let kept = match dir.metadata(&rel) {
        Ok(m) if m.is_file() => Some(m.permissions()),
        Ok(_) => return Err(format!("write {path}: not a regular file")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(fail(&rel, e)),
    };
    dir.write(&tmp, contents).map_err(|e| fail(&tmp, e))?;
    if let Some(perms) = kept {
        dir.set_permissions(&tmp, perms)
            .map_err(|e| fail(&tmp, e))?;
    }
    dir.rename(&tmp, &dir, &rel).map_err(|e| fail(&rel, e))
}

type Failure = (PathBuf, std::io::Error);

/// Attach the path to an I/O error.
fn at(p: &Path) -> impl FnOnce(std::io::Error) -> Failure + '_ {
    move |e| (p.to_path_buf(), e)
}

fn copy_dir(
    src: &Dir,
    s: &Path,
    dst: &Dir,
    d: &Path,
    stats: &mut CopyStats,
    progress: &mut dyn FnMut(&CopyStats),
) -> Result<(), Failure> {
    dst.create_dir_all(d).map_err(at(d))?;
    stats.dirs += 1;
    let mut names: Vec<_> = src
        .read_dir(s)
        .map_err(at(s))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(at(s))?;
    names.sort();
    for name in names {
        let (sp, dp) = (s.join(&name), d.join(&name));
        let meta = src.symlink_metadata(&sp).map_err(at(&sp))?;
        if meta.is_dir() {
            copy_dir(src, &sp, dst, &dp, stats, progress)?;
        } else if meta.file_type().is_symlink() {
            let target = src.read_link_contents(&sp).map_err(at(&sp))?;
            let _ = dst.remove_file(&dp);
            dst.symlink_contents(&target, &dp).map_err(at(&dp))?;
        } else {
            stats.bytes += src.copy(&sp, dst, &dp).map_err(at(&sp))?;
            stats.files += 1;
            progress(stats);
        }
    }
    let perms = src.metadata(s).map_err(at(s))?.permissions();
    dst.set_permissions(d, perms).map_err(at(d))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn copies_permissions_and_links_inside_grants_only() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(a.join("bin")).unwrap();
        std::fs::write(a.join("bin/run"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(a.join("bin/run"), std::fs::Permissions::from_mode(0o750))
            .unwrap();
        std::os::unix::fs::symlink("bin/run", a.join("link")).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let caps = Effective {
            dirs: vec![(a.clone(), false), (b.clone(), true)],
            ..Default::default()
        };
        let to = b.join("copy");
        let stats = copy_tree(
            &caps,
            "p",
            a.to_str().unwrap(),
            to.to_str().unwrap(),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(stats.files, 1);
        let mode = std::fs::metadata(to.join("bin/run"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o750);
        assert_eq!(
            std::fs::read_link(to.join("link")).unwrap(),
            PathBuf::from("bin/run")
        );
        // Into a read-only grant, or from outside every grant: denied, naming the grant.
        let e = copy_tree(
            &caps,
            "p",
            b.to_str().unwrap(),
            a.join("x").to_str().unwrap(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(
            e.contains("[grants] dirs") && e.contains("read-write"),
            "{e}"
        );
        let e = copy_tree(&caps, "p", "/etc", to.to_str().unwrap(), &mut |_| {}).unwrap_err();
        assert!(e.contains("copy-tree from `/etc` denied"), "{e}");
        let e = copy_tree(
            &caps,
            "p",
            &format!("{}/../../etc", a.display()),
            to.to_str().unwrap(),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.contains("denied"), "{e}");
    }

    #[test]
    fn write_atomic_keeps_permissions_and_stays_in_grants() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("state.dat");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let caps = Effective {
            dirs: vec![(t.path().to_path_buf(), true)],
            ..Default::default()
        };
        write_atomic(&caps, "p", f.to_str().unwrap(), b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let e = write_atomic(&caps, "p", "/etc/passwd", b"x").unwrap_err();
        assert!(e.contains("[grants] dirs"), "{e}");
        std::os::unix::fs::symlink("/etc/hostname", t.path().join("out")).unwrap();
        let out = t.path().join("out");
        assert!(write_atomic(&caps, "p", out.to_str().unwrap(), b"x").is_err());
        // Concurrent writers of one file each complete; the last rename wins.
        let writers: Vec<_> = (0..8)
            .map(|i| {
                let (caps, f) = (caps.clone(), f.clone());
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        write_atomic(&caps, "p", f.to_str().unwrap(), format!("{i}").as_bytes())
                            .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&f).unwrap().len(), 1);
    }
}
