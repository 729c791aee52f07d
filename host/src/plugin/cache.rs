//! Precompiled components on disk, keyed by the plugin's sha256 and the engine's
//! compatibility hash: compile once, later loads only deserialize.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// sha256 of bytes as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A folder of `<digest>-<engine>.cwasm` files.
pub struct Cache {
    dir: PathBuf,
    engine_key: String,
}

impl Cache {
    /// A cache in `dir` for components compiled by `engine`.
    pub fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Cache {
            dir,
            engine_key: format!("{:016x}", h.finish()),
        }
    }

    fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{}.cwasm", self.engine_key))
    }

    /// The component for `bytes` (whose sha256 is `digest`): from the cache when present,
    /// else compiled and stored. Returns whether it was a cache hit.
    pub fn load(&self, engine: &Engine, digest: &str, bytes: &[u8]) -> Result<(Component, bool)> {
        let entry = self.entry(digest);
        if entry.exists() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the same
            // compatibility hash (part of the file name) into a folder only cutover writes.
            match unsafe { Component::deserialize_file(engine, &entry) } {
                Ok(c) => return Ok((c, true)),
                Err(_) => {
                    let _ = std::fs::remove_file(&entry);
                }
            }
        }
        let component = Component::new(engine, bytes)?;
        if let Ok(serialized) = component.serialize() {
            // Best effort: a cache that cannot be written only costs a compile next time.
            let _ = write_atomic(&entry, &serialized);
        }
        Ok((component, false))
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().context("cache path has no folder")?;
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
