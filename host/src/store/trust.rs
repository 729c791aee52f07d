//! Plugin signatures and the trust policy. A signature is a minisign signature (Ed25519) of the
//! plugin's bytes, kept beside it (`FILE.minisig`, in the store next to the blob, or as a
//! second layer of its OCI artifact) and verified offline against the public keys the operator
//! trusts: a spec's `[trust] keys` and the host-wide policy file `$CUTOVER_TRUST`. With any key
//! listed, a plugin without a valid signature by one of them is refused before anything runs.

use anyhow::{anyhow, bail, Context, Result};
use minisign::{KeyPair, PublicKey, PublicKeyBox, SecretKeyBox, SignatureBox};
use std::io::Cursor;
use std::path::{Path, PathBuf};

/// Where a plugin file's signature lies: `FILE.minisig`, beside it.
pub fn sidecar(file: &Path) -> PathBuf {
    let mut p = file.as_os_str().to_owned();
    p.push(".minisig");
    p.into()
}

/// A trusted public key and where it was listed.
#[derive(Clone)]
pub struct Key {
    /// minisign's key id (16 hex digits), as `minisign -V` shows it.
    pub id: String,
    pk: PublicKey,
    /// The file or text it came from, for messages.
    pub from: String,
}

/// minisign's key id of a key number.
fn key_id(keynum: &[u8]) -> String {
    keynum.iter().rev().map(|b| format!("{b:02X}")).collect()
}

/// A key given as a public key file (minisign's `.pub`) or its base64 line; relative paths
/// are taken from `base`.
pub fn key(given: &str, base: &Path) -> Result<Key> {
    let given = given.trim();
    let pk = match PublicKey::from_base64(given) {
        Ok(pk) => pk,
        Err(_) => {
            let path = base.join(given);
            let text = std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "`{given}` is neither a minisign public key nor a readable key file ({})",
                    path.display()
                )
            })?;
            PublicKeyBox::from_string(&text)
                .and_then(|b| b.into_public_key())
                .map_err(|e| anyhow!("{} is not a minisign public key: {e}", path.display()))?
        }
    };
    let id = key_id(pk.keynum());
    Ok(Key {
        id,
        pk,
        from: given.to_string(),
    })
}

/// The keys of the host-wide policy file `$CUTOVER_TRUST` (TOML: `keys = ["…", …]`), if set.
pub fn host_keys() -> Result<Vec<Key>> {
    let Some(path) = std::env::var_os("CUTOVER_TRUST").filter(|p| !p.is_empty()) else {
        return Ok(Vec::new());
    };
    let path = PathBuf::from(path);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading the trust policy $CUTOVER_TRUST = {}",
            path.display()
        )
    })?;
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Policy {
        keys: Vec<String>,
    }
    let p: Policy = toml::from_str(&text)
        .with_context(|| format!("{}: expected `keys = [\"…\"]`", path.display()))?;
    let base = path.parent().unwrap_or(Path::new("."));
    p.keys.iter().map(|k| key(k, base)).collect()
}

/// Who signed `bytes`: the id of the trusted key whose signature `sig` (minisign text) is.
/// The error says what is wrong: unreadable, by a key not trusted, or not of these bytes.
pub fn verify(bytes: &[u8], sig: &str, keys: &[Key]) -> Result<String, String> {
    let sig =
        SignatureBox::from_string(sig).map_err(|e| format!("its signature is unreadable: {e}"))?;
    let signer = key_id(sig.keynum());
    let Some(k) = keys.iter().find(|k| k.id == signer) else {
        return Err(format!(
            "it is signed by key {signer}, which the trust policy does not list"
        ));
    };
    minisign::verify(&k.pk, &sig, Cursor::new(bytes), true, false, false)
        .map_err(|_| format!("its signature by key {signer} does not match its bytes: the plugin was changed after it was signed"))?;
    Ok(signer)
}

/// The key id a signature names, without checking it.
pub fn signer_of(sig: &str) -> Result<String> {
    let sig = SignatureBox::from_string(sig).map_err(|e| anyhow!("unreadable signature: {e}"))?;
    Ok(key_id(sig.keynum()))
}

/// Write a new key pair: `OUT.key` (secret, unencrypted: keep it safe) and `OUT.pub`; the
/// key id.
pub fn keygen(out: &Path) -> Result<String> {
    let kp = KeyPair::generate_unencrypted_keypair().map_err(|e| anyhow!("{e}"))?;
    let secret = out.with_extension("key");
    let public = out.with_extension("pub");
    if secret.exists() || public.exists() {
        bail!(
            "{} or {} exists already: choose another name",
            secret.display(),
            public.display()
        );
    }
    let sk = kp
        .sk
        .to_box(None)
        .map_err(|e| anyhow!("{e}"))?
        .into_string();
    let id = key_id(kp.pk.keynum());
    let pk_box = kp.pk.to_box().map_err(|e| anyhow!("{e}"))?;
    std::fs::write(&public, pk_box.into_string())?;
    std::fs::write(&secret, sk)?;
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    Ok(id)
}

/// Sign `bytes` with the secret key file `key`; the signature text (its trusted comment names
/// the plugin's digest).
pub fn sign(bytes: &[u8], key: &Path) -> Result<String> {
    let text =
        std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let sk = SecretKeyBox::from_string(&text)
        .and_then(|b| b.into_unencrypted_secret_key())
        .map_err(|e| {
            anyhow!(
                "{} is not an unencrypted minisign secret key: {e}",
                key.display()
            )
        })?;
    let digest = crate::plugin::cache::sha256_hex(bytes);
    let sig = minisign::sign(
        None,
        &sk,
        Cursor::new(bytes),
        Some(&format!("cutover plugin sha256:{digest}")),
        Some("signature of a Cutover plugin"),
    )
    .map_err(|e| anyhow!("signing: {e}"))?;
    Ok(sig.into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_only_with_its_key_and_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let id = keygen(&dir.path().join("vendor")).unwrap();
        let other = keygen(&dir.path().join("other")).unwrap();
        let sig = sign(b"plugin bytes", &dir.path().join("vendor.key")).unwrap();
        let k = key("vendor.pub", dir.path()).unwrap();
        assert_eq!(k.id, id);
        assert_eq!(signer_of(&sig).unwrap(), id);
        assert_eq!(
            verify(b"plugin bytes", &sig, std::slice::from_ref(&k)).unwrap(),
            id
        );
        let e = verify(b"plugin bytez", &sig, std::slice::from_ref(&k)).unwrap_err();
        assert!(e.contains("does not match"), "{e}");
        let o = key("other.pub", dir.path()).unwrap();
        assert_eq!(o.id, other);
        let e = verify(b"plugin bytes", &sig, &[o]).unwrap_err();
        assert!(e.contains(&id) && e.contains("does not list"), "{e}");
        // The base64 line of a .pub file is a key too.
        let line = std::fs::read_to_string(dir.path().join("vendor.pub")).unwrap();
        let b64 = line.lines().nth(1).unwrap();
        assert_eq!(key(b64, dir.path()).unwrap().id, id);
        assert!(keygen(&dir.path().join("vendor")).is_err());
    }
}
