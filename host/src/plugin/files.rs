//! Host-side file operations for plugins (`files.copy-tree`, `files.write-atomic`), confined
//! to the call's granted directories. Every path is opened relative to a handle of its
//! granted directory, one component at a time, without following symbolic links
//! ([`authority::paths`](super::authority::paths)); special files are never opened in a way
//! that blocks; a copy is iterative and refuses a destination inside its source.

use super::authority::grants::normalize;
use super::authority::paths::{link_denied, locate, walk, walk_message, Located, WalkError};
use super::authority::Effective;
use super::model::HostError;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

/// What a copy did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    pub files: u64,
    pub dirs: u64,
    pub bytes: u64,
}

/// Deepest tree a copy follows.
const MAX_DEPTH: usize = 256;

const DIR_NOFOLLOW: OFlags = OFlags::RDONLY
    .union(OFlags::DIRECTORY)
    .union(OFlags::NOFOLLOW)
    .union(OFlags::CLOEXEC);

fn lossy(c: &CStr) -> String {
    c.to_string_lossy().into_owned()
}

/// One directory being copied.
struct Frame {
    src: OwnedFd,
    dst: OwnedFd,
    rel: PathBuf,
    names: Vec<CString>,
    next: usize,
    mode: u32,
}

impl Frame {
    fn new(src: OwnedFd, dst: OwnedFd, rel: PathBuf) -> Result<Frame, (PathBuf, std::io::Error)> {
        let st = rustix::fs::fstat(&src).map_err(|e| (rel.clone(), e.into()))?;
        let mut names = Vec::new();
        let dir = rustix::fs::Dir::read_from(&src).map_err(|e| (rel.clone(), e.into()))?;
        for entry in dir {
            let entry = entry.map_err(|e| (rel.clone(), e.into()))?;
            let n = entry.file_name();
            if n != c"." && n != c".." {
                names.push(n.to_owned());
            }
        }
        names.sort();
        Ok(Frame {
            src,
            dst,
            rel,
            names,
            next: 0,
            mode: st.st_mode & 0o7777,
        })
    }
}

/// Copy the tree `from` into `to` inside the granted directories, keeping permissions and
/// symbolic links (copied as links, never followed). `progress` sees the running totals and
/// stops the copy by returning false (the call was interrupted).
pub fn copy_tree(
    caps: &Effective,
    plugin: &str,
    from: &str,
    to: &str,
    progress: &mut dyn FnMut(&CopyStats) -> bool,
) -> Result<CopyStats, HostError> {
    let src = locate(caps, plugin, "copy-tree from", from, false)?;
    let dst = locate(caps, plugin, "copy-tree into", to, true)?;
    let inside = format!(
        "copy-tree {from} → {to}: the destination lies inside the source; copy into a folder outside it"
    );
    if normalize(Path::new(to)).starts_with(normalize(Path::new(from))) {
        return Err(HostError::Invalid(inside));
    }
    let src_fd = walk(&src.dir, &src.rel, false)
        .map_err(|e| walk_message(plugin, "copy-tree from", &src, e))?;
    let dst_fd = walk(&dst.dir, &dst.rel, true)
        .map_err(|e| walk_message(plugin, "copy-tree into", &dst, e))?;
    let id = |fd: &OwnedFd| rustix::fs::fstat(fd).map(|s| (s.st_dev, s.st_ino)).ok();
    let dst_id = id(&dst_fd);
    if id(&src_fd) == dst_id {
        return Err(HostError::Invalid(inside));
    }
    let fail = |at: &Located, rel: &Path, e: std::io::Error| {
        HostError::Io(format!(
            "copy-tree {from} → {to}: {}: {e}",
            at.cap.path.join(&at.rel).join(rel).display()
        ))
    };
    let mut stats = CopyStats {
        dirs: 1,
        ..Default::default()
    };
    let mut stack =
        vec![Frame::new(src_fd, dst_fd, PathBuf::new()).map_err(|(p, e)| fail(&src, &p, e))?];
    while let Some(top) = stack.last_mut() {
        let Some(name) = top.names.get(top.next).cloned() else {
            rustix::fs::fchmod(&top.dst, Mode::from_raw_mode(top.mode))
                .map_err(|e| fail(&dst, &top.rel, e.into()))?;
            stack.pop();
            continue;
        };
        top.next += 1;
        let rel = top.rel.join(lossy(&name));
        let st = match rustix::fs::statat(&top.src, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => continue, // removed while copying
            Err(e) => return Err(fail(&src, &rel, e.into())),
        };
        match FileType::from_raw_mode(st.st_mode) {
            FileType::Directory => {
                let s = rustix::fs::openat(&top.src, &name, DIR_NOFOLLOW, Mode::empty())
                    .map_err(|e| changed(plugin, &src, &rel, e))?;
                if id(&s) == dst_id {
                    return Err(HostError::Invalid(inside));
                }
                match rustix::fs::mkdirat(&top.dst, &name, Mode::from_raw_mode(0o700)) {
                    Ok(()) | Err(Errno::EXIST) => {}
                    Err(e) => return Err(fail(&dst, &rel, e.into())),
                }
                let d = rustix::fs::openat(&top.dst, &name, DIR_NOFOLLOW, Mode::empty())
                    .map_err(|e| changed(plugin, &dst, &rel, e))?;
                if stack.len() >= MAX_DEPTH {
                    return Err(fail(
                        &src,
                        &rel,
                        std::io::Error::other(format!("deeper than {MAX_DEPTH} levels")),
                    ));
                }
                stats.dirs += 1;
                stack.push(Frame::new(s, d, rel).map_err(|(p, e)| fail(&src, &p, e))?);
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&top.src, &name, Vec::new())
                    .map_err(|e| fail(&src, &rel, e.into()))?;
                clear(&top.dst, &name).map_err(|e| fail(&dst, &rel, e))?;
                rustix::fs::symlinkat(target.as_c_str(), &top.dst, &name)
                    .map_err(|e| fail(&dst, &rel, e.into()))?;
            }
            FileType::RegularFile => {
                let bytes = copy_file(&top.src, &top.dst, &name, st.st_mode & 0o7777)
                    .map_err(|e| fail(&src, &rel, e))?;
                stats.files += 1;
                stats.bytes += bytes;
                if !progress(&stats) {
                    return Err(HostError::TimedOut(format!(
                    "copy-tree {from} → {to}: interrupted"
                )));
                }
            }
            _ => {
                return Err(fail(
                    &src,
                    &rel,
                    std::io::Error::other(
                        "not a regular file, directory or link (FIFOs, sockets and devices are not copied)",
                    ),
                ))
            }
        }
    }
    Ok(stats)
}

/// The error for an entry that turned into a link (or vanished) while it was being copied.
fn changed(plugin: &str, at: &Located, rel: &Path, e: Errno) -> HostError {
    let err = if matches!(e, Errno::LOOP | Errno::NOTDIR) {
        WalkError::Link(at.rel.join(rel))
    } else {
        WalkError::Io(at.rel.join(rel), e.into())
    };
    walk_message(plugin, "copy-tree", at, err)
}

/// Remove what stands at `name` in `dir` unless it is a directory.
fn clear(dir: &OwnedFd, name: &CStr) -> std::io::Result<()> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => Err(
            std::io::Error::other("a directory stands where a file or link is copied"),
        ),
        Ok(_) => rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into),
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Copy one regular file, opened without following links and without blocking.
fn copy_file(src: &OwnedFd, dst: &OwnedFd, name: &CStr, mode: u32) -> std::io::Result<u64> {
    let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let s = rustix::fs::openat(src, name, OFlags::RDONLY | flags, Mode::empty())?;
    if FileType::from_raw_mode(rustix::fs::fstat(&s)?.st_mode) != FileType::RegularFile {
        return Err(std::io::Error::other("not a regular file"));
    }
    if let Ok(st) = rustix::fs::statat(dst, name, AtFlags::SYMLINK_NOFOLLOW) {
        if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
            clear(dst, name)?;
        }
    }
    let d = rustix::fs::openat(
        dst,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | flags,
        Mode::from_raw_mode(0o600),
    )?;
    let (mut s, mut d) = (std::fs::File::from(s), std::fs::File::from(d));
    let n = std::io::copy(&mut s, &mut d)?;
    rustix::fs::fchmod(&d, Mode::from_raw_mode(mode))?;
    Ok(n)
}

/// Replace the file `path` (inside a read-write grant) with `contents` atomically: a
/// temporary sibling, the permissions of the file it replaces, then a rename. A link or a
/// special file at `path` is refused.
pub fn write_atomic(
    caps: &Effective,
    plugin: &str,
    path: &str,
    contents: &[u8],
) -> Result<(), HostError> {
    let at = locate(caps, plugin, "write", path, true)?;
    let name = at
        .rel
        .file_name()
        .and_then(|n| CString::new(n.as_encoded_bytes()).ok())
        .ok_or_else(|| HostError::Invalid(format!("write `{path}`: not a file path")))?;
    let parent = walk(&at.dir, at.rel.parent().unwrap_or(Path::new("")), false)
        .map_err(|e| walk_message(plugin, "write", &at, e))?;
    let fail = |e: std::io::Error| HostError::Io(format!("write {path}: {e}"));
    let kept = match rustix::fs::statat(&parent, &name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile => Some(st.st_mode & 0o7777),
            FileType::Symlink => {
                return Err(link_denied(
                    plugin,
                    format!("write `{path}`"),
                    &at.cap.path,
                    Path::new(path),
                )
                .into())
            }
            _ => {
                return Err(HostError::Invalid(format!(
                    "write {path}: not a regular file"
                )))
            }
        },
        Err(Errno::NOENT) => None,
        Err(e) => return Err(fail(e.into())),
    };
    // A name of its own per write, so concurrent writers of one file never share it.
    static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = CString::new(format!(
        ".{}.{}-{n}.cutover-tmp",
        lossy(&name),
        std::process::id()
    ))
    .map_err(|e| fail(std::io::Error::other(e)))?;
    let fd = rustix::fs::openat(
        &parent,
        &tmp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::from_raw_mode(0o666),
    )
    .map_err(|e| fail(e.into()))?;
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::from(fd);
        f.write_all(contents)?;
        if let Some(mode) = kept {
            rustix::fs::fchmod(&f, Mode::from_raw_mode(mode))?;
        }
        rustix::fs::renameat(&parent, &tmp, &parent, &name)?;
        Ok::<_, std::io::Error>(())
    })();
    if let Err(e) = written {
        let _ = rustix::fs::unlinkat(&parent, &tmp, AtFlags::empty());
        return Err(fail(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
