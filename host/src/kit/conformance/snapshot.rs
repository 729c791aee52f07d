//! What a target looks like on disk: every file, directory and link under the directories a
//! call may write (content hash, permissions, link target), so a check can tell whether a
//! re-run changed anything or an undo put everything back.

use crate::plugin::authority::grants::matches;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Most entries one snapshot reads (a check on a bigger tree says it stopped there).
const MAX_ENTRIES: usize = 200_000;

/// One entry: its kind, permissions and content.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File { mode: u32, sha256: [u8; 32] },
    Dir { mode: u32 },
    Link(PathBuf),
    Other,
}

/// The observed state of some directories.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Snapshot {
    entries: BTreeMap<PathBuf, Entry>,
}

/// Which paths a snapshot leaves out: logs, pid files, leases and temporary files (they
/// change on their own), and the operator's `--ignore` patterns.
pub struct Filter {
    patterns: Vec<String>,
}

impl Filter {
    /// The default patterns plus `extra` (`*` within one component, `**` across).
    pub fn new(extra: &[String]) -> Filter {
        let mut patterns: Vec<String> = [
            "**/*.log",
            "**/*.pid",
            "**/.cutover-lease",
            "**/*.cutover-tmp",
            "**/*.cutover-new",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        patterns.extend(extra.iter().cloned());
        Filter { patterns }
    }

    fn skips(&self, path: &Path) -> bool {
        let p = path.to_string_lossy();
        self.patterns.iter().any(|pat| {
            matches(pat, &p)
                || pat.strip_prefix("**/").is_some_and(|tail| {
                    path.file_name()
                        .is_some_and(|n| matches(tail, &n.to_string_lossy()))
                })
        })
    }
}

impl Snapshot {
    /// Read `dirs` (absent ones are empty) without following links.
    pub fn take(dirs: &[PathBuf], filter: &Filter) -> Snapshot {
        let mut entries = BTreeMap::new();
        let mut stack: Vec<PathBuf> = dirs.to_vec();
        while let Some(dir) = stack.pop() {
            let Ok(list) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in list.flatten() {
                if entries.len() >= MAX_ENTRIES {
                    return Snapshot { entries };
                }
                let path = e.path();
                if filter.skips(&path) {
                    continue;
                }
                let Ok(meta) = std::fs::symlink_metadata(&path) else {
                    continue;
                };
                use std::os::unix::fs::PermissionsExt;
                let mode = meta.permissions().mode() & 0o7777;
                let entry = if meta.file_type().is_symlink() {
                    Entry::Link(std::fs::read_link(&path).unwrap_or_default())
                } else if meta.is_dir() {
                    stack.push(path.clone());
                    Entry::Dir { mode }
                } else if meta.is_file() {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    Entry::File {
                        mode,
                        sha256: Sha256::digest(&bytes).into(),
                    }
                } else {
                    Entry::Other
                };
                entries.insert(path, entry);
            }
        }
        Snapshot { entries }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// What differs from `before`, as "changed X, added Y, removed Z" (at most five paths);
    /// none when the two are the same.
    pub fn diff(&self, before: &Snapshot) -> Option<String> {
        let mut changes = Vec::new();
        for (p, e) in &self.entries {
            match before.entries.get(p) {
                None => changes.push(format!("added {}", p.display())),
                Some(old) if old != e => changes.push(format!("changed {}", p.display())),
                _ => {}
            }
        }
        for p in before.entries.keys() {
            if !self.entries.contains_key(p) {
                changes.push(format!("removed {}", p.display()));
            }
        }
        if changes.is_empty() {
            return None;
        }
        let n = changes.len();
        changes.truncate(5);
        let more = if n > 5 {
            format!(" and {} more", n - 5)
        } else {
            String::new()
        };
        Some(format!("{}{more}", changes.join(", ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_name_what_changed_and_skip_logs() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().to_path_buf();
        std::fs::write(root.join("a"), "1").unwrap();
        std::fs::write(root.join("x.log"), "1").unwrap();
        let f = Filter::new(&[]);
        let s0 = Snapshot::take(std::slice::from_ref(&root), &f);
        assert_eq!(s0.len(), 1);
        std::fs::write(root.join("x.log"), "2").unwrap();
        assert!(Snapshot::take(std::slice::from_ref(&root), &f)
            .diff(&s0)
            .is_none());
        std::fs::write(root.join("a"), "2").unwrap();
        std::fs::write(root.join("b"), "").unwrap();
        let d1 = Snapshot::take(std::slice::from_ref(&root), &f)
            .diff(&s0)
            .unwrap();
        assert!(d1.contains("changed") && d1.contains("added"), "{d1}");
        let f2 = Filter::new(&["**/b".into()]);
        let d2 = Snapshot::take(&[root], &f2).diff(&s0).unwrap();
        assert!(!d2.contains("added"), "{d2}");
    }
}
