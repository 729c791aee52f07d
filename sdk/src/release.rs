//! Versioned install folders with an atomic `current` symbolic link, the pattern of
//! Capistrano-style deploys and of products installed one folder per version: copy a version
//! in once, flip `current` to it, flip back on undo.

use crate::files;
use crate::Result;
use std::path::{Path, PathBuf};

/// Marks a completely copied version folder.
const MARKER: &str = ".cutover-complete";
/// File in the root naming the folder `current` pointed at before the switch.
const PREVIOUS: &str = ".cutover-previous";

/// Copy `artifact` into `dest` once (a marker skips a completed copy on re-runs); the number
/// of files copied, 0 when it was already there.
pub fn install(artifact: &Path, dest: &Path) -> Result<u64> {
    if dest.join(MARKER).exists() {
        return Ok(0);
    }
    let stats = files::copy_tree(artifact, dest)?;
    files::write_atomic(&dest.join(MARKER), b"")?;
    Ok(stats.files)
}

/// Where `<root>/current` points now (relative, as the link holds it).
pub fn current(root: &Path) -> Option<PathBuf> {
    files::read_symlink(&root.join("current"))
}

/// Point `<root>/current` at `target` (relative to `root`) atomically, remembering on the
/// node itself where it pointed before, so the undo works even without step outputs.
pub fn switch(root: &Path, target: &Path) -> Result<()> {
    let now = current(root).unwrap_or_default();
    if now != target {
        files::write_atomic(&root.join(PREVIOUS), now.display().to_string().as_bytes())?;
    }
    files::flip_symlink(&root.join("current"), target)
}

/// Undo [`switch`]: point `current` back at `previous` (from the step's outputs) or at what
/// the node remembered; remove it when there was none.
pub fn switch_back(root: &Path, previous: Option<&str>) -> Result<()> {
    let link = root.join("current");
    let kept = std::fs::read_to_string(root.join(PREVIOUS)).unwrap_or_default();
    let previous = previous
        .filter(|p| !p.is_empty())
        .or(Some(kept.trim()).filter(|p| !p.is_empty()));
    match previous {
        Some(prev) => files::flip_symlink(&link, Path::new(prev))?,
        None => match std::fs::remove_file(&link) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(files::io_error("removing", &link, e))
            }
            _ => {}
        },
    }
    // The node as it was before the switch: no record of it left behind.
    match std::fs::remove_file(root.join(PREVIOUS)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(files::io_error("removing", &root.join(PREVIOUS), e))
        }
        _ => Ok(()),
    }
}
