//! `cutover plugin install|list|remove|push`: the plugin store from the command line.

use super::Ctx;
use crate::plugin::Runtime;
use crate::store::{is_reference, oci, Store};
use anyhow::{bail, Context, Result};
use serde_json::json;
use std::path::Path;

/// What a component is, for messages: "adapter plugin, cutover:plugin@1.1.0".
fn what(rt: &Runtime, path: &Path) -> Result<String> {
    let (component, _, _) = rt.component(path, None)?;
    let (world, v) = rt
        .contract_of(&component)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(format!(
        "{} plugin, cutover:plugin@{}.{}.{}",
        match world {
            crate::plugin::World::Adapter => "adapter",
            crate::plugin::World::Strategy => "strategy",
        },
        v.0,
        v.1,
        v.2
    ))
}

/// `plugin install REF`: an OCI reference (pulled), or a file; kept by digest, the reference
/// pointed at it.
pub async fn install(ctx: &Ctx, reference: &str) -> Result<i32> {
    let store = ctx.store()?;
    let rt = Runtime::new(ctx.cache_dir())?;
    let (digest, name) = if reference.starts_with("oci://") {
        let (bytes, manifest) = oci::pull(reference).await?;
        let digest = store.add(&bytes)?;
        if let Some(want) = reference.split_once('@').map(|(_, d)| d) {
            if !manifest.is_empty() && manifest != want {
                bail!("{reference}: the registry served manifest {manifest}");
            }
        }
        (digest, reference.to_string())
    } else if is_reference(reference) {
        bail!("{reference}: install takes an oci:// reference or a file");
    } else {
        let path = Path::new(reference);
        let digest = store.add_file(path, None)?;
        let name = std::path::absolute(path)
            .unwrap_or(path.to_path_buf())
            .display()
            .to_string();
        (digest, name)
    };
    // Refuse what is not a plugin this host loads before it can be named in a spec.
    let kind = match what(&rt, &store.blob(&digest)) {
        Ok(k) => k,
        Err(e) => {
            let _ = store.remove(&digest, &[]);
            return Err(e.context(format!("{reference} is not a plugin this cutover loads")));
        }
    };
    let before = if name.starts_with("oci://") {
        store.tag(&name, &digest)?
    } else {
        None
    };
    show!("installed {name}: {digest} ({kind})");
    if let Some(b) = before.filter(|b| *b != digest) {
        show!("  {name} pointed at {b} before; that version stays in the store for the rollouts that use it");
    }
    Ok(0)
}

/// `plugin list`: every kept plugin with its references.
pub fn list(ctx: &Ctx, json_out: bool) -> Result<i32> {
    let store = ctx.store()?;
    let in_use = in_use(ctx)?;
    let entries = store.list()?;
    if json_out {
        let v: Vec<_> = entries
            .iter()
            .map(|(d, size, refs)| {
                json!({ "digest": d, "size": size, "references": refs, "in_use": in_use.contains(d) })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    if entries.is_empty() {
        show!("the plugin store {} is empty", store.root().display());
    }
    for (d, size, refs) in entries {
        show!(
            "{d}  {:>7} KiB{}  {}",
            size.div_ceil(1024),
            if in_use.contains(&d) { "  in use" } else { "" },
            if refs.is_empty() {
                "(no reference)".to_string()
            } else {
                refs.join(", ")
            }
        );
    }
    Ok(0)
}

/// The digests a rollout of this journal may still need.
fn in_use(ctx: &Ctx) -> Result<Vec<String>> {
    if !ctx.journal.exists() {
        return Ok(Vec::new());
    }
    ctx.journal()?.plugins_in_use()
}

/// `plugin remove REF|DIGEST`.
pub fn remove(ctx: &Ctx, what: &str) -> Result<i32> {
    let store = ctx.store()?;
    let removed = store.remove(what, &in_use(ctx)?)?;
    if removed.is_empty() {
        show!("removed {what}; its plugin stays, other references point at it");
    } else {
        show!("removed {what} and {}", removed.join(", "));
    }
    Ok(0)
}

/// `plugin push FILE oci://…`: publish a plugin in the Wasm component layout.
pub async fn push(ctx: &Ctx, file: &Path, reference: &str) -> Result<i32> {
    let rt = Runtime::new(ctx.cache_dir())?;
    let kind = what(&rt, file)?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let url = oci::push(&bytes, reference).await?;
    show!(
        "pushed {} ({kind}, sha256:{}) to {url}",
        file.display(),
        crate::plugin::cache::sha256_hex(&bytes)
    );
    Ok(0)
}

/// The file a command names: a path, or a reference resolved in the store.
pub fn file_of(ctx: &Ctx, named: &str) -> Result<std::path::PathBuf> {
    if is_reference(named) {
        let store: Store = ctx.store()?;
        Ok(store.blob(&store.resolve(named)?))
    } else {
        Ok(Path::new(named).to_path_buf())
    }
}
