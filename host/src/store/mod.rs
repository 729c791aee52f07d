//! The plugin store: plugins kept by content (sha256), shared by every rollout on the machine,
//! with the references they were installed from.
//!
//! ```text
//! STORE/blobs/sha256/<hex>     a plugin's bytes (read-only once written)
//! STORE/blobs/sha256/<hex>.minisig   its signature, when it came with one
//! STORE/refs.json              reference → digest ("oci://reg/ns/name:1.0" → "sha256:…")
//! STORE/.lock                  held while refs.json changes
//! ```
//!
//! Every plugin a rollout loads goes through the store, whether the spec names a file or a
//! reference, and the rollout journals the digest it loaded: `resume` and `rollback` load those
//! bytes again whatever the file or the reference holds by then, and two rollouts can run two
//! versions of one plugin side by side.

pub mod oci;
pub mod trust;

use crate::plugin::cache::sha256_hex;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A plugin store on disk.
pub struct Store {
    root: PathBuf,
}

/// What a spec (or the command line) names: a file, or a reference to resolve in the store
/// (`oci://…`, an `https://…#sha256=…` URL, or `sha256:…`).
pub fn is_reference(s: &str) -> bool {
    s.starts_with("oci://")
        || s.starts_with("sha256:")
        || s.starts_with("https://")
        || s.starts_with("http://")
}

/// Download the plugin at `reference` (`https://…#sha256=HEX`; plain `http://` only from a
/// loopback host) and check it against the digest pinned in it; its bytes and its signature
/// (`URL.minisig`), when the server has one.
pub fn download(reference: &str) -> Result<(Vec<u8>, Option<String>)> {
    let (url, pin) = reference.split_once("#sha256=").ok_or_else(|| {
        anyhow::anyhow!("{reference}: a plugin from a URL needs its digest pinned: append #sha256=<64 hex digits>")
    })?;
    let pin = parse_digest(&format!("sha256:{pin}"))
        .ok_or_else(|| anyhow::anyhow!("{reference}: the pinned digest is not 64 hex digits"))?;
    if let Some(rest) = url.strip_prefix("http://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        if !matches!(host, "127.0.0.1" | "localhost") {
            bail!("{url}: plain http is only for a loopback host; use https");
        }
    }
    let get = |u: &str| -> Result<Option<Vec<u8>>> {
        let resp = ureq::get(u)
            .config()
            .http_status_as_error(false)
            .build()
            .call()?;
        if resp.status() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            bail!("{u}: HTTP {}", resp.status());
        }
        Ok(Some(
            resp.into_body()
                .with_config()
                .limit(256 << 20)
                .read_to_vec()?,
        ))
    };
    let bytes = get(url)?.ok_or_else(|| anyhow::anyhow!("{url}: not found (HTTP 404)"))?;
    let digest = format!("sha256:{}", sha256_hex(&bytes));
    if digest != pin {
        bail!("{url} served {digest}, not the pinned {pin}: refused");
    }
    let sig = get(&format!("{url}.minisig"))?.map(|b| String::from_utf8_lossy(&b).into_owned());
    Ok((bytes, sig))
}

/// `sha256:<64 hex>` checked and lowercased.
pub fn parse_digest(s: &str) -> Option<String> {
    let hex = s.strip_prefix("sha256:")?.to_ascii_lowercase();
    (hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit())).then(|| format!("sha256:{hex}"))
}

impl Store {
    /// The store at `$CUTOVER_STORE`, else `$XDG_DATA_HOME/cutover/plugins`, else
    /// `~/.local/share/cutover/plugins`.
    pub fn default_root() -> PathBuf {
        if let Some(p) = std::env::var_os("CUTOVER_STORE").filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("."));
        data.join("cutover/plugins")
    }

    /// Open (and create) the store at `root`.
    pub fn open(root: &Path) -> Result<Store> {
        std::fs::create_dir_all(root.join("blobs/sha256"))
            .with_context(|| format!("creating the plugin store {}", root.display()))?;
        Ok(Store {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the plugin with `digest` (`sha256:…`) is kept.
    pub fn blob(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        self.root.join("blobs/sha256").join(hex)
    }

    /// Keep `bytes`; their digest. Writing the same bytes again changes nothing.
    pub fn add(&self, bytes: &[u8]) -> Result<String> {
        let digest = format!("sha256:{}", sha256_hex(bytes));
        let path = self.blob(&digest);
        if path.exists() {
            return Ok(digest);
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
        Ok(digest)
    }

    /// Where the signature of the plugin `digest` is kept.
    pub fn signature_path(&self, digest: &str) -> PathBuf {
        trust::sidecar(&self.blob(digest))
    }

    /// The signature kept for `digest`, if any.
    pub fn signature(&self, digest: &str) -> Option<String> {
        std::fs::read_to_string(self.signature_path(digest)).ok()
    }

    /// Keep `sig` (minisign text) as the signature of `digest`.
    pub fn add_signature(&self, digest: &str, sig: &str) -> Result<()> {
        trust::signer_of(sig)?;
        let path = self.signature_path(digest);
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, sig)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    /// Keep the plugin file `path` (checked against `pin`, 64 hex digits, when given), with
    /// its signature `PATH.minisig` when there is one.
    pub fn add_file(&self, path: &Path, pin: Option<&str>) -> Result<String> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read plugin {}", path.display()))?;
        if let Some(pin) = pin {
            let digest = sha256_hex(&bytes);
            if digest != pin {
                bail!(
                    "plugin {} does not match its pin: sha256 is {digest}, the spec pins {pin}",
                    path.display()
                );
            }
        }
        let digest = self.add(&bytes)?;
        let sig = trust::sidecar(path);
        if let Ok(text) = std::fs::read_to_string(&sig) {
            self.add_signature(&digest, &text)
                .with_context(|| format!("{}", sig.display()))?;
        }
        Ok(digest)
    }

    /// The digest a reference names: `sha256:…` itself (if kept), or what an installed
    /// reference points at.
    pub fn resolve(&self, reference: &str) -> Result<String> {
        if let Some(d) = parse_digest(reference) {
            if self.blob(&d).exists() {
                return Ok(d);
            }
            bail!(
                "{d} is not in the plugin store {}: install it first (`cutover plugin install REF`)",
                self.root.display()
            );
        }
        let refs = self.refs()?;
        match refs.get(reference) {
            Some(d) if self.blob(d).exists() => Ok(d.clone()),
            Some(d) => bail!("{reference} points at {d}, which is gone from the plugin store {}: install it again (`cutover plugin install {reference}`)", self.root.display()),
            None => bail!(
                "{reference} is not installed in the plugin store {}: run `cutover plugin install {reference}`",
                self.root.display()
            ),
        }
    }

    /// Every installed reference and the digest it points at.
    pub fn refs(&self) -> Result<BTreeMap<String, String>> {
        let path = self.root.join("refs.json");
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a valid reference list", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// Change the reference list under the store's lock.
    fn edit_refs<T>(&self, f: impl FnOnce(&mut BTreeMap<String, String>) -> T) -> Result<T> {
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".lock"))?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)?;
        let mut refs = self.refs()?;
        let out = f(&mut refs);
        let path = self.root.join("refs.json");
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&tmp, serde_json::to_string_pretty(&refs)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(out)
    }

    /// Point `reference` at `digest` (moving it if it pointed elsewhere); the digest it
    /// pointed at before.
    pub fn tag(&self, reference: &str, digest: &str) -> Result<Option<String>> {
        self.edit_refs(|r| r.insert(reference.to_string(), digest.to_string()))
    }

    /// Remove a reference, or a digest with every reference to it; the plugin's bytes go once
    /// no reference is left. `in_use` names the digests rollouts may still need: those bytes
    /// are kept, and removing them is refused. The digests removed.
    pub fn remove(&self, what: &str, in_use: &[String]) -> Result<Vec<String>> {
        let by_digest = parse_digest(what);
        let digest = match &by_digest {
            Some(d) => d.clone(),
            None => self.resolve(what)?,
        };
        let others = self
            .refs()?
            .iter()
            .any(|(k, v)| *v == digest && by_digest.is_none() && k != what);
        if !others && in_use.contains(&digest) {
            bail!("{digest} is used by a rollout in the journal that may still resume or roll back: finish it first");
        }
        self.edit_refs(|r| match &by_digest {
            Some(d) => r.retain(|_, v| v != d),
            None => {
                r.remove(what);
            }
        })?;
        if others {
            return Ok(Vec::new());
        }
        let _ = std::fs::remove_file(self.blob(&digest));
        let _ = std::fs::remove_file(self.signature_path(&digest));
        Ok(vec![digest])
    }

    /// Remove every plugin no reference points at and no rollout in `in_use` needs (the file
    /// plugins of finished rollouts); the digests removed.
    pub fn prune(&self, in_use: &[String]) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (digest, _, refs) in self.list()? {
            if refs.is_empty() && !in_use.contains(&digest) {
                std::fs::remove_file(self.blob(&digest))?;
                let _ = std::fs::remove_file(self.signature_path(&digest));
                removed.push(digest);
            }
        }
        Ok(removed)
    }

    /// Every kept plugin: digest, size and the references to it.
    pub fn list(&self) -> Result<Vec<(String, u64, Vec<String>)>> {
        let refs = self.refs()?;
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.root.join("blobs/sha256"))? {
            let e = e?;
            let name = e.file_name().to_string_lossy().to_string();
            let Some(digest) = parse_digest(&format!("sha256:{name}")) else {
                // Signatures and files being written.
                continue;
            };
            let names = refs
                .iter()
                .filter(|(_, d)| **d == digest)
                .map(|(r, _)| r.clone())
                .collect();
            out.push((digest, e.metadata()?.len(), names));
        }
        out.sort();
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugins_are_kept_by_content_and_found_by_reference() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let a = s.add(b"one").unwrap();
        assert_eq!(a, s.add(b"one").unwrap());
        let b = s.add(b"two").unwrap();
        assert_eq!(s.tag("oci://r/x:1", &a).unwrap(), None);
        assert_eq!(s.resolve("oci://r/x:1").unwrap(), a);
        // A tag moved to new bytes: both versions stay.
        assert_eq!(s.tag("oci://r/x:1", &b).unwrap(), Some(a.clone()));
        assert_eq!(s.resolve(&a).unwrap(), a);
        assert_eq!(s.resolve("oci://r/x:1").unwrap(), b);
        let e = s.resolve("oci://r/y:1").unwrap_err().to_string();
        assert!(e.contains("cutover plugin install oci://r/y:1"), "{e}");
        // In use: kept; else removed with its references.
        assert!(s.remove("oci://r/x:1", std::slice::from_ref(&b)).is_err());
        assert_eq!(s.remove("oci://r/x:1", &[]).unwrap(), vec![b.clone()]);
        assert!(s.resolve(&b).is_err());
        assert_eq!(s.list().unwrap().len(), 1);
        let e = s.add_file(&s.blob(&a), Some(&"0".repeat(64))).unwrap_err();
        assert!(e.to_string().contains("does not match its pin"), "{e}");
    }
}
