//! Plugins in OCI registries, in the layout other WebAssembly tools use for components (the
//! CNCF Wasm OCI artifact layout, as `wkg` writes it): one layer of media type
//! `application/wasm` holding the component, and a config of media type
//! `application/vnd.wasm.config.v0+json`; a signed plugin carries its minisign signature as a
//! second layer.
//!
//! References are `oci://REGISTRY/REPOSITORY:TAG` or `oci://REGISTRY/REPOSITORY@sha256:…`.
//! Loopback registries (and those in `$CUTOVER_INSECURE_REGISTRIES`, comma-separated) are
//! reached over plain HTTP, every other one over HTTPS. Credentials, when the registry needs
//! them, come from `$CUTOVER_REGISTRY_USER` and `$CUTOVER_REGISTRY_PASSWORD`.

use anyhow::{anyhow, bail, Context, Result};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// The media type of a component layer.
pub const WASM_LAYER: &str = "application/wasm";
/// The media type of a Wasm artifact's config.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";
/// The media type of the optional second layer: the plugin's minisign signature.
pub const SIGNATURE_LAYER: &str = "application/vnd.cutover.plugin.signature.v1+minisign";

/// The registry reference of `oci://…`.
pub fn reference(r: &str) -> Result<Reference> {
    let rest = r
        .strip_prefix("oci://")
        .ok_or_else(|| anyhow!("`{r}` is not an OCI reference (oci://REGISTRY/REPOSITORY:TAG)"))?;
    rest.parse::<Reference>()
        .map_err(|e| anyhow!("`{r}` is not an OCI reference: {e}"))
}

fn client(reg: &Reference) -> Client {
    // reqwest's TLS uses the ring provider; installing it twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let host = reg.resolve_registry().to_string();
    let name = host.rsplit_once(':').map_or(host.as_str(), |(h, _)| h);
    let insecure: Vec<String> = std::env::var("CUTOVER_INSECURE_REGISTRIES")
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let plain = matches!(name, "127.0.0.1" | "localhost" | "[::1]") || insecure.contains(&host);
    Client::new(ClientConfig {
        protocol: if plain {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        ..Default::default()
    })
}

fn auth() -> RegistryAuth {
    match (
        std::env::var("CUTOVER_REGISTRY_USER"),
        std::env::var("CUTOVER_REGISTRY_PASSWORD"),
    ) {
        (Ok(u), Ok(p)) if !u.is_empty() => RegistryAuth::Basic(u, p),
        _ => RegistryAuth::Anonymous,
    }
}

/// A pulled plugin.
pub struct Pulled {
    pub bytes: Vec<u8>,
    /// The manifest's digest.
    pub manifest: String,
    /// Its signature, when the artifact carries one.
    pub signature: Option<String>,
}

/// Pull the component `r` names.
pub async fn pull(r: &str) -> Result<Pulled> {
    let reg = reference(r)?;
    let image = client(&reg)
        .pull(&reg, &auth(), vec![WASM_LAYER, SIGNATURE_LAYER])
        .await
        .with_context(|| format!("pulling {r}"))?;
    let signature = image
        .layers
        .iter()
        .find(|l| l.media_type == SIGNATURE_LAYER)
        .map(|l| String::from_utf8_lossy(&l.data).into_owned());
    let layers: Vec<_> = image
        .layers
        .into_iter()
        .filter(|l| l.media_type == WASM_LAYER)
        .collect();
    if layers.len() != 1 {
        bail!(
            "{r} holds {} layers of type {WASM_LAYER}; a plugin artifact has one",
            layers.len()
        );
    }
    Ok(Pulled {
        bytes: layers[0].data.to_vec(),
        manifest: image.digest.unwrap_or_default(),
        signature,
    })
}

/// Push the component `bytes` (with its signature, if any) as `r`; the manifest's URL.
pub async fn push(bytes: &[u8], signature: Option<&str>, r: &str) -> Result<String> {
    let reg = reference(r)?;
    let layer_digest = format!("sha256:{}", crate::plugin::cache::sha256_hex(bytes));
    let config = serde_json::json!({
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
    });
    let mut layers = vec![ImageLayer::new(
        bytes.to_vec(),
        WASM_LAYER.to_string(),
        None,
    )];
    if let Some(sig) = signature {
        layers.push(ImageLayer::new(
            sig.as_bytes().to_vec(),
            SIGNATURE_LAYER.to_string(),
            None,
        ));
    }
    let pushed = client(&reg)
        .push(
            &reg,
            &layers,
            Config::new(serde_json::to_vec(&config)?, WASM_CONFIG.to_string(), None),
            &auth(),
            None,
        )
        .await
        .with_context(|| format!("pushing {r}"))?;
    Ok(pushed.manifest_url)
}
