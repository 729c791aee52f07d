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
    /// Files written with a substitution applied (`tree.copy-substituting`).
    pub substituted: u64,
}

/// Text a copy replaces in the files whose name ends with `suffix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitution {
    pub suffix: Vec<u8>,
    pub from: Vec<u8>,
    pub to: Vec<u8>,
}

/// Largest file a substituting copy rewrites; a larger one is copied as it is.
const MAX_SUBSTITUTED: u64 = 16 << 20;

/// `bytes` with every occurrence of each substitution's `from` replaced in order; none when
/// nothing matched.
fn substitute(bytes: &[u8], subs: &[&Substitution]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for sub in subs {
        let cur = out.as_deref().unwrap_or(bytes);
        let finder = memchr::memmem::Finder::new(&sub.from);
        let mut at = finder.find_iter(cur).peekable();
        if at.peek().is_none() {
            continue;
        }
        let mut next = Vec::with_capacity(cur.len() + sub.to.len());
        let mut last = 0;
        for i in at {
            next.extend_from_slice(&cur[last..i]);
            next.extend_from_slice(&sub.to);
            last = i + sub.from.len();
        }
        next.extend_from_slice(&cur[last..]);
        out = Some(next);
    }
    out
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
    /// Entries, with the type their directory entry says (a hint only: every file is opened
    /// without following links and checked again).
    names: Vec<(CString, FileType)>,
    next: usize,
    mode: u32,
    /// The destination directory was created by this copy, so it holds nothing yet.
    fresh: bool,
}

impl Frame {
    fn new(
        src: OwnedFd,
        dst: OwnedFd,
        rel: PathBuf,
        fresh: bool,
    ) -> Result<Frame, (PathBuf, std::io::Error)> {
        let st = rustix::fs::fstat(&src).map_err(|e| (rel.clone(), e.into()))?;
        let mut names = Vec::new();
        let dir = rustix::fs::Dir::read_from(&src).map_err(|e| (rel.clone(), e.into()))?;
        for entry in dir {
            let entry = entry.map_err(|e| (rel.clone(), e.into()))?;
            let n = entry.file_name();
            if n != c"." && n != c".." {
                names.push((n.to_owned(), entry.file_type()));
            }
        }
        names.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Frame {
            src,
            dst,
            rel,
            names,
            next: 0,
            mode: st.st_mode & 0o7777,
            fresh,
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
    copy_substituting(caps, plugin, from, to, &[], progress)
}

/// [`copy_tree`], writing the files that `subs` name (by suffix, up to 16 MiB) with their
/// substitutions applied.
pub fn copy_substituting(
    caps: &Effective,
    plugin: &str,
    from: &str,
    to: &str,
    subs: &[Substitution],
    progress: &mut dyn FnMut(&CopyStats) -> bool,
) -> Result<CopyStats, HostError> {
    if let Some(s) = subs.iter().find(|s| s.from.is_empty()) {
        return Err(HostError::Invalid(format!(
            "copy {from} → {to}: a substitution for `*{}` replaces nothing (empty `from`)",
            String::from_utf8_lossy(&s.suffix)
        )));
    }
    let matching = |name: &CStr| -> Vec<&Substitution> {
        subs.iter()
            .filter(|s| name.to_bytes().ends_with(&s.suffix))
            .collect()
    };
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
        vec![Frame::new(src_fd, dst_fd, PathBuf::new(), false)
            .map_err(|(p, e)| fail(&src, &p, e))?];
    while let Some(top) = stack.last_mut() {
        let Some((name, hint)) = top.names.get(top.next).cloned() else {
            rustix::fs::fchmod(&top.dst, Mode::from_raw_mode(top.mode))
                .map_err(|e| fail(&dst, &top.rel, e.into()))?;
            stack.pop();
            continue;
        };
        top.next += 1;
        let rel = top.rel.join(lossy(&name));
        // A regular file by its directory entry is copied straight away; it is opened without
        // following links and checked to be one, so a change since the listing is caught
        // there and the entry is looked at again.
        if hint == FileType::RegularFile {
            match copy_file(&top.src, &top.dst, &name, top.fresh, &matching(&name)) {
                Ok((bytes, changed)) => {
                    stats.files += 1;
                    stats.bytes += bytes;
                    stats.substituted += u64::from(changed);
                    if !progress(&stats) {
                        return Err(HostError::TimedOut(format!(
                            "copy-tree {from} → {to}: interrupted"
                        )));
                    }
                    continue;
                }
                Err(Copy::NotRegular) => {}
                Err(Copy::Failed(e)) => return Err(fail(&src, &rel, e)),
            }
        }
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
                let fresh = match rustix::fs::mkdirat(&top.dst, &name, Mode::from_raw_mode(0o700))
                {
                    Ok(()) => true,
                    Err(Errno::EXIST) => false,
                    Err(e) => return Err(fail(&dst, &rel, e.into())),
                };
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
                stack.push(Frame::new(s, d, rel, fresh).map_err(|(p, e)| fail(&src, &p, e))?);
            }
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&top.src, &name, Vec::new())
                    .map_err(|e| fail(&src, &rel, e.into()))?;
                clear(&top.dst, &name).map_err(|e| fail(&dst, &rel, e))?;
                rustix::fs::symlinkat(target.as_c_str(), &top.dst, &name)
                    .map_err(|e| fail(&dst, &rel, e.into()))?;
            }
            FileType::RegularFile => {
                let bytes = match copy_file(&top.src, &top.dst, &name, top.fresh, &matching(&name)) {
                    Ok((n, changed)) => {
                        stats.substituted += u64::from(changed);
                        n
                    }
                    Err(Copy::NotRegular) => {
                        return Err(fail(&src, &rel, std::io::Error::other("not a regular file")))
                    }
                    Err(Copy::Failed(e)) => return Err(fail(&src, &rel, e)),
                };
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

/// Why a file was not copied.
enum Copy {
    /// It is not (or no longer) a regular file: a link, a directory or a special file.
    NotRegular,
    Failed(std::io::Error),
}

impl From<Errno> for Copy {
    fn from(e: Errno) -> Copy {
        Copy::Failed(e.into())
    }
}

/// Copy one regular file, opened without following links and without blocking, with its
/// permissions; its size, and whether a substitution changed it. In a `fresh` destination
/// directory nothing stands in its way. The bytes move in the kernel (`copy_file_range`), in
/// one call for a file that does not grow, unless `subs` apply to it.
fn copy_file(
    src: &OwnedFd,
    dst: &OwnedFd,
    name: &CStr,
    fresh: bool,
    subs: &[&Substitution],
) -> Result<(u64, bool), Copy> {
    let flags = OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC;
    let s = match rustix::fs::openat(src, name, OFlags::RDONLY | flags, Mode::empty()) {
        Ok(s) => s,
        Err(Errno::LOOP | Errno::NOENT) => return Err(Copy::NotRegular),
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&s)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(Copy::NotRegular);
    }
    if !fresh {
        if let Ok(st) = rustix::fs::statat(dst, name, AtFlags::SYMLINK_NOFOLLOW) {
            if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
                clear(dst, name).map_err(Copy::Failed)?;
            }
        }
    }
    let d = rustix::fs::openat(
        dst,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::TRUNC | flags,
        Mode::from_raw_mode(0o600),
    )?;
    let size = st.st_size.max(0) as u64;
    if !subs.is_empty() && size <= MAX_SUBSTITUTED {
        use std::io::{Read, Write};
        let mut bytes = Vec::with_capacity(size as usize);
        std::fs::File::from(s)
            .read_to_end(&mut bytes)
            .map_err(Copy::Failed)?;
        let changed = substitute(&bytes, subs);
        let mut w = std::fs::File::from(d);
        w.write_all(changed.as_deref().unwrap_or(&bytes))
            .map_err(Copy::Failed)?;
        rustix::fs::fchmod(&w, Mode::from_raw_mode(st.st_mode & 0o7777))?;
        return Ok((bytes.len() as u64, changed.is_some()));
    }
    let mut copied = 0u64;
    loop {
        // What the file held when opened (what grows later is not copied).
        let want = if copied < size {
            size - copied
        } else {
            1 << 20
        };
        let n = match rustix::fs::copy_file_range(&s, None, &d, None, want as usize) {
            Ok(n) => n as u64,
            Err(Errno::XDEV | Errno::NOSYS | Errno::INVAL | Errno::OPNOTSUPP) => {
                let (mut r, mut w) = (std::fs::File::from(s), std::fs::File::from(d));
                use std::io::Seek;
                r.seek(std::io::SeekFrom::Start(copied))
                    .map_err(Copy::Failed)?;
                w.seek(std::io::SeekFrom::Start(copied))
                    .map_err(Copy::Failed)?;
                copied += std::io::copy(&mut r, &mut w).map_err(Copy::Failed)?;
                rustix::fs::fchmod(&w, Mode::from_raw_mode(st.st_mode & 0o7777))?;
                return Ok((copied, false));
            }
            Err(e) => return Err(e.into()),
        };
        copied += n;
        if n == 0 || copied >= size {
            break;
        }
    }
    rustix::fs::fchmod(&d, Mode::from_raw_mode(st.st_mode & 0o7777))?;
    Ok((copied, false))
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
