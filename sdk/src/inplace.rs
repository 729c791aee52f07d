//! Replacing folders of an installation in place, for products installed into one directory
//! with no folder per version: each folder of a release replaces the installation's folder of
//! the same name, and the replaced folders are moved aside into a backup folder that
//! [`restore`] moves back.
//!
//! Both operations can be re-run after a crash at any point: a manifest written before
//! anything moves records which folders the installation had, and the backup is never
//! overwritten once taken.

use crate::files::{self, io_error};
use crate::{Error, Result};
use std::fs;
use std::path::{Path, PathBuf};

/// In the backup folder: one line per replaced folder, `present <name>` or `absent <name>`.
const MANIFEST: &str = ".cutover-manifest";
/// In the backup folder: every folder of the release is in place.
const COMPLETE: &str = ".cutover-complete";

/// What [`replace`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replaced {
    /// The folders of the release, by name.
    pub folders: Vec<String>,
    /// Files copied; 0 when an earlier run had completed.
    pub files: u64,
}

/// The names of the top-level folders of `release`, sorted; an error names a top-level entry
/// that is not a folder (it would have no backup).
pub fn folders(release: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for e in fs::read_dir(release).map_err(|e| io_error("listing", release, e))? {
        let e = e.map_err(|e| io_error("listing", release, e))?;
        let name = e.file_name().to_string_lossy().to_string();
        let kind = e
            .file_type()
            .map_err(|err| io_error("inspecting", &e.path(), err))?;
        if !kind.is_dir() {
            return Err(Error::new(format!(
                "{} is not a folder: a release holds only folders, each replacing the \
                 installation's folder of the same name",
                e.path().display()
            )));
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Replace each top-level folder of `release` in `home` with a copy of it (on the host,
/// keeping permissions and symbolic links), moving the folder it replaces into `backup`
/// (which must be inside `home`'s granted directory, so the move is a rename). Folders of
/// `home` the release does not have are left alone.
pub fn replace(release: &Path, home: &Path, backup: &Path) -> Result<Replaced> {
    let names = folders(release)?;
    if backup.join(COMPLETE).exists() {
        return Ok(Replaced {
            folders: names,
            files: 0,
        });
    }
    let manifest = backup.join(MANIFEST);
    if !manifest.exists() {
        fs::create_dir_all(backup).map_err(|e| io_error("creating", backup, e))?;
        let lines: Vec<String> = names
            .iter()
            .map(|n| {
                let had = if home.join(n).exists() {
                    "present"
                } else {
                    "absent"
                };
                format!("{had} {n}\n")
            })
            .collect();
        files::write_atomic(&manifest, lines.concat().as_bytes())?;
    }
    let mut copied = 0;
    for (had, name) in read_manifest(&manifest)? {
        let (live, kept) = (home.join(&name), backup.join(&name));
        if had && !kept.exists() {
            rename(&live, &kept)?;
        } else {
            // A copy an interrupted run left half done.
            remove(&live)?;
        }
        copied += files::copy_tree(&release.join(&name), &live)?.files;
    }
    files::write_atomic(&backup.join(COMPLETE), b"")?;
    Ok(Replaced {
        folders: names,
        files: copied,
    })
}

/// Undo [`replace`]: move the kept folders back into `home` (removing the copies), remove
/// the folders the installation did not have, then the backup folder (and its parent when
/// that is left empty). Nothing to do when there is no backup. The folders restored.
pub fn restore(home: &Path, backup: &Path) -> Result<Vec<String>> {
    let manifest = backup.join(MANIFEST);
    if !manifest.exists() {
        remove(backup)?;
        return Ok(Vec::new());
    }
    let mut restored = Vec::new();
    for (had, name) in read_manifest(&manifest)? {
        let (live, kept) = (home.join(&name), backup.join(&name));
        if had && kept.exists() {
            remove(&live)?;
            rename(&kept, &live)?;
        } else if !had {
            remove(&live)?;
        }
        restored.push(name);
    }
    remove(backup)?;
    if let Some(parent) = backup
        .parent()
        .filter(|p| p.starts_with(home) && *p != home)
    {
        // Only when empty: other backups stay.
        let _ = fs::remove_dir(parent);
    }
    Ok(restored)
}

fn read_manifest(path: &Path) -> Result<Vec<(bool, String)>> {
    files::read_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| match l.split_once(' ') {
            Some(("present", n)) => Ok((true, n.to_string())),
            Some(("absent", n)) => Ok((false, n.to_string())),
            _ => Err(Error::new(format!(
                "{}: unreadable line `{l}` (remove the backup folder by hand after checking it)",
                path.display()
            ))),
        })
        .collect()
}

fn rename(from: &Path, to: &Path) -> Result<()> {
    fs::rename(from, to).map_err(|e| io_error(&format!("moving to {}", to.display()), from, e))
}

/// Remove a folder (or file) and everything in it; nothing when it is not there.
fn remove(path: &Path) -> Result<()> {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return Ok(());
    };
    let done = if meta.is_dir() {
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    };
    done.map_err(|e| io_error("removing", path, e))
}

/// The backup folder for `key` (a rollout id, say) inside `home`: `<home>/.cutover-backup/<key>`.
pub fn backup_dir(home: &Path, key: &str) -> PathBuf {
    home.join(".cutover-backup").join(key)
}
