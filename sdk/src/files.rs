//! File helpers for adapters: copying trees (on the host, keeping permissions), atomic
//! symlink flips, and errors that tell the
//! operator when a path is outside the directories granted to the plugin.
//!
//! Files are reachable only through the directories the host preopened for this call; the
//! call's context lists them (`dirs`), so a denial can name the grant to add.

use crate::{Access, DirGrant, Error, Result};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

thread_local! {
    static GRANTED: std::cell::RefCell<Vec<DirGrant>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Remember the current call's granted directories (done by the export glue).
#[doc(hidden)]
pub fn set_granted(dirs: &[DirGrant]) {
    GRANTED.with(|g| *g.borrow_mut() = dirs.to_vec());
}

/// The directories this call may touch, with their access (`read` or `read-write`).
pub fn granted_dirs() -> Vec<(PathBuf, String)> {
    GRANTED.with(|g| {
        g.borrow()
            .iter()
            .map(|d| {
                let access = match d.access {
                    Access::Read => "read",
                    Access::ReadWrite => "read-write",
                };
                (PathBuf::from(&d.path), access.to_string())
            })
            .collect()
    })
}

/// Turn an I/O error on `path` into a step error; when the path is outside every granted
/// directory, say so and name the grant to add.
pub fn io_error(action: &str, path: &Path, err: io::Error) -> Error {
    let granted = granted_dirs();
    // `a/../b` is judged where it leads, not where it starts.
    let lexical = normalize(path);
    let inside = granted
        .iter()
        .filter(|(g, _)| lexical.starts_with(g))
        .max_by_key(|(g, _)| g.as_os_str().len());
    let denied = err.kind() == io::ErrorKind::PermissionDenied;
    let message = match inside {
        None => format!(
            "{action} {}: denied: the path is outside the directories granted to this plugin \
             ({}); request it in describe() and grant it under [grants] dirs",
            path.display(),
            list(&granted)
        ),
        Some((g, access)) if denied && access == "read" => format!(
            "{action} {}: denied: {} is granted read-only, or the path leads outside it through a \
             symbolic link; grant what the plugin needs under [grants] dirs (access = \"read-write\" \
             to write)",
            path.display(),
            g.display()
        ),
        Some((g, _)) if denied => format!(
            "{action} {}: denied: the path leads outside {} through a symbolic link; grant its \
             target under [grants] dirs",
            path.display(),
            g.display()
        ),
        Some(_) => format!("{action} {}: {err}", path.display()),
    };
    Error::new(message)
}

/// Lexically resolve `.` and `..` (symbolic links are the sandbox's to refuse).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

fn list(granted: &[(PathBuf, String)]) -> String {
    if granted.is_empty() {
        return "none".into();
    }
    granted
        .iter()
        .map(|(p, a)| format!("{} {a}", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Read a file to a string, with a grant-aware error.
pub fn read_string(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| io_error("reading", path, e))
}

/// Replace a file's content atomically on the host (a temporary sibling, then a rename):
/// readers never see half a file, and an existing file keeps its permissions.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    crate::__private::adapter::cutover::plugin::files::write_atomic(
        &path.display().to_string(),
        contents,
    )
    .map_err(Error::from)
}

pub use crate::__private::adapter::cutover::plugin::files::CopyStats;

/// Copy the tree `from` into `to` (created as needed) on the host, keeping permissions and
/// symbolic links; existing files are overwritten, so a re-run completes a copy. Both paths
/// must lie in granted directories (`to` in a read-write one); the host reports progress.
pub fn copy_tree(from: &Path, to: &Path) -> Result<CopyStats> {
    crate::__private::adapter::cutover::plugin::files::copy_tree(
        &from.display().to_string(),
        &to.display().to_string(),
    )
    .map_err(Error::from)
}

pub use crate::__private::adapter::cutover::plugin::tree::{SubstitutedCopy, Substitution};

/// [`copy_tree`], writing each file whose name ends with a substitution's `name_suffix` (up
/// to 16 MiB) with the substitutions that match it applied in order; the source is never
/// changed. A step that rewrites files after a copy can do its rewriting here instead of
/// writing every file a second time, and then only check.
pub fn copy_substituting(
    from: &Path,
    to: &Path,
    substitutions: &[Substitution],
) -> Result<SubstitutedCopy> {
    crate::__private::adapter::cutover::plugin::tree::copy_substituting(
        &from.display().to_string(),
        &to.display().to_string(),
        substitutions,
    )
    .map_err(Error::from)
}

/// Create a symbolic link `link` pointing at `target`.
pub fn symlink(target: &Path, link: &Path) -> Result<()> {
    #[allow(deprecated)] // the portable std call; WASI has no `std::os::unix`
    fs::soft_link(target, link).map_err(|e| io_error("linking", link, e))
}

/// Point the symlink `link` at `target` atomically (new link beside it, then rename over).
pub fn flip_symlink(link: &Path, target: &Path) -> Result<()> {
    let tmp = sibling(link, ".cutover-new");
    let _ = fs::remove_file(&tmp);
    symlink(target, &tmp)?;
    fs::rename(&tmp, link).map_err(|e| io_error("replacing", link, e))
}

/// Where the symlink `link` points, if it is one.
pub fn read_symlink(link: &Path) -> Option<PathBuf> {
    fs::read_link(link).ok()
}

fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

/// Every file under `dir` (recursively, in name order) whose name satisfies `keep`; a
/// missing `dir` is an error naming it. Symbolic links are listed, not followed.
pub fn find(dir: &Path, keep: &dyn Fn(&str) -> bool) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).map_err(|e| io_error("listing", &d, e))?;
        for e in entries.filter_map(|e| e.ok()) {
            let path = e.path();
            let kind = e
                .file_type()
                .map_err(|err| io_error("inspecting", &path, err))?;
            if kind.is_dir() {
                stack.push(path);
            } else if keep(&e.file_name().to_string_lossy()) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}
