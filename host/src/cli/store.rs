//! `cutover plugin install|list|remove|push`: the plugin store from the command line.

use super::Ctx;
use crate::plugin::Runtime;
use crate::store::{is_reference, oci, trust, Store};
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
        let pulled = oci::pull(reference).await?;
        let digest = store.add(&pulled.bytes)?;
        if let Some(want) = reference.split_once('@').map(|(_, d)| d) {
            if !pulled.manifest.is_empty() && pulled.manifest != want {
                bail!(
                    "{reference}: the registry served manifest {}",
                    pulled.manifest
                );
            }
        }
        if let Some(sig) = &pulled.signature {
            store.add_signature(&digest, sig)?;
        }
        (digest, reference.to_string())
    } else if reference.starts_with("https://") || reference.starts_with("http://") {
        let (bytes, sig) = crate::store::download(reference)?;
        let digest = store.add(&bytes)?;
        if let Some(sig) = &sig {
            store.add_signature(&digest, sig)?;
        }
        (digest, reference.to_string())
    } else if is_reference(reference) {
        bail!("{reference}: install takes an oci:// reference, an https:// URL with #sha256=…, or a file");
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
    let before = if is_reference(&name) {
        store.tag(&name, &digest)?
    } else {
        None
    };
    let signed = match store.signature(&digest) {
        Some(sig) => format!("signed by key {}", trust::signer_of(&sig)?),
        None => "unsigned".to_string(),
    };
    show!("installed {name}: {digest} ({kind}, {signed})");
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

/// `plugin prune`: remove the plugins nothing names and no rollout of this journal needs.
pub fn prune(ctx: &Ctx) -> Result<i32> {
    let removed = ctx.store()?.prune(&in_use(ctx)?)?;
    show!(
        "removed {} plugin(s) no reference names and no rollout of {} needs{}",
        removed.len(),
        ctx.journal.display(),
        if removed.is_empty() {
            String::new()
        } else {
            format!(": {}", removed.join(", "))
        }
    );
    Ok(0)
}

/// `plugin push FILE oci://…`: publish a plugin in the Wasm component layout.
pub async fn push(ctx: &Ctx, file: &Path, reference: &str) -> Result<i32> {
    let rt = Runtime::new(ctx.cache_dir())?;
    let kind = what(&rt, file)?;
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let sig = std::fs::read_to_string(trust::sidecar(file)).ok();
    let url = oci::push(&bytes, sig.as_deref(), reference).await?;
    show!(
        "pushed {} ({kind}, sha256:{}, {}) to {url}",
        file.display(),
        crate::plugin::cache::sha256_hex(&bytes),
        if sig.is_some() {
            "with its signature"
        } else {
            "unsigned"
        }
    );
    Ok(0)
}

/// `plugin keygen OUT`: a minisign key pair, `OUT.key` and `OUT.pub`.
pub fn keygen(out: &Path) -> Result<i32> {
    let id = trust::keygen(out)?;
    show!(
        "key {id}: secret key {} (keep it private), public key {} (give it to operators for their [trust] keys)",
        out.with_extension("key").display(),
        out.with_extension("pub").display()
    );
    Ok(0)
}

/// `plugin sign FILE --key KEY`: write `FILE.minisig`.
pub fn sign(file: &Path, key: &Path) -> Result<i32> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let sig = trust::sign(&bytes, key)?;
    let out = trust::sidecar(file);
    std::fs::write(&out, &sig)?;
    show!(
        "signed {} with key {}: {}",
        file.display(),
        trust::signer_of(&sig)?,
        out.display()
    );
    Ok(0)
}

/// `plugin verify FILE|REF [--key PUB]...`: check its signature against the keys given, else
/// the host-wide policy. Exit code 1 when it does not verify.
pub fn verify(ctx: &Ctx, named: &str, keys: &[String]) -> Result<i32> {
    let path = file_of(ctx, named)?;
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let keys = if keys.is_empty() {
        trust::host_keys()?
    } else {
        keys.iter()
            .map(|k| trust::key(k, Path::new(".")))
            .collect::<Result<Vec<_>>>()?
    };
    if keys.is_empty() {
        bail!("no key to verify against: give --key PUB, or set $CUTOVER_TRUST");
    }
    let digest = format!("sha256:{}", crate::plugin::cache::sha256_hex(&bytes));
    let sig = if is_reference(named) {
        ctx.store()?.signature(&digest)
    } else {
        std::fs::read_to_string(trust::sidecar(&path)).ok()
    };
    let Some(sig) = sig else {
        show_err!("{named} ({digest}) is unsigned");
        return Ok(1);
    };
    match trust::verify(&bytes, &sig, &keys) {
        Ok(signer) => {
            show!("{named} ({digest}): signed by key {signer}");
            Ok(0)
        }
        Err(why) => {
            show_err!("{named} ({digest}): {why}");
            Ok(1)
        }
    }
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
