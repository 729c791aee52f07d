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

    /// What differs from `before`.
    pub fn diff(&self, before: &Snapshot) -> Diff {
        let mut d = Diff::default();
        for (p, e) in &self.entries {
            match before.entries.get(p) {
                None => d.added.push(p.clone()),
                Some(old) if old != e => d.changed.push(p.clone()),
                _ => {}
            }
        }
        d.removed = before
            .entries
            .keys()
            .filter(|p| !self.entries.contains_key(*p))
            .cloned()
            .collect();
        d
    }
}

/// Entries added, changed and removed between two snapshots.
#[derive(Debug, Default)]
pub struct Diff {
    pub added: Vec<PathBuf>,
    pub changed: Vec<PathBuf>,
    pub removed: Vec<PathBuf>,
}

impl Diff {
    /// Nothing differs.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }

    /// Something that was there is different or gone.
    pub fn alters(&self) -> bool {
        !self.changed.is_empty() || !self.removed.is_empty()
    }

    /// "changed X, removed Y, added Z", at most five paths.
    pub fn describe(&self) -> String {
        list(
            self.changed
                .iter()
                .map(|p| format!("changed {}", p.display()))
                .chain(
                    self.removed
                        .iter()
                        .map(|p| format!("removed {}", p.display())),
                )
                .chain(self.added.iter().map(|p| format!("added {}", p.display()))),
        )
    }

    /// The added entries, at most five.
    pub fn describe_added(&self) -> String {
        list(self.added.iter().map(|p| p.display().to_string()))
    }
}

fn list(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    let more = all.len().saturating_sub(5);
    let mut shown = all.into_iter().take(5).collect::<Vec<_>>().join(", ");
    if more > 0 {
        shown.push_str(&format!(" and {more} more"));
    }
    shown
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
        let take = |f: &Filter| Snapshot::take(std::slice::from_ref(&root), f);
        let s0 = take(&f);
        assert_eq!(s0.len(), 1);
        std::fs::write(root.join("x.log"), "2").unwrap();
        assert!(take(&f).diff(&s0).is_empty());
        std::fs::write(root.join("a"), "2").unwrap();
        std::fs::write(root.join("b"), "").unwrap();
        let d1 = take(&f).diff(&s0);
        assert!(d1.alters() && d1.added.len() == 1, "{}", d1.describe());
        assert!(d1.describe().starts_with("changed "), "{}", d1.describe());
        let d2 = take(&Filter::new(&["**/b".into()])).diff(&s0);
        assert!(d2.added.is_empty() && d2.alters(), "{}", d2.describe());
    }
}
