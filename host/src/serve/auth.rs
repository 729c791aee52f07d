//! The dashboard's tokens: where they come from, and who a request acts as.

use anyhow::{bail, Context, Result};
use axum::http::{header, HeaderMap};
use std::path::Path;

/// The shortest token accepted: a guessable one would make the actions anyone's.
const MIN_LEN: usize = 16;

/// A token that allows actions, with the name recorded for them (if it has one).
pub struct Token {
    pub name: Option<String>,
    value: String,
}

/// The tokens to accept: from `--token-file`, else `$CUTOVER_TOKEN`, else a random one made
/// now (returned second, to be printed: a configured token is never shown).
pub(super) fn tokens(file: Option<&Path>) -> Result<(Vec<Token>, Option<String>)> {
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("reading the token file {}", file.display()))?;
        let mut tokens = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (name, value) = match line.split_once(char::is_whitespace) {
                Some((name, value)) => (Some(name.to_string()), value.trim()),
                None => (None, line),
            };
            check(value).with_context(|| format!("{}:{}", file.display(), n + 1))?;
            tokens.push(Token {
                name,
                value: value.to_string(),
            });
        }
        if tokens.is_empty() {
            bail!("the token file {} holds no token", file.display());
        }
        return Ok((tokens, None));
    }
    if let Ok(value) = std::env::var("CUTOVER_TOKEN") {
        check(&value).context("CUTOVER_TOKEN")?;
        return Ok((vec![Token { name: None, value }], None));
    }
    let value = random_token()?;
    Ok((
        vec![Token {
            name: None,
            value: value.clone(),
        }],
        Some(value),
    ))
}

fn check(value: &str) -> Result<()> {
    if value.len() < MIN_LEN || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("a token must be at least {MIN_LEN} characters, without spaces");
    }
    Ok(())
}

/// 32 random bytes from the kernel, in hex.
fn random_token() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for a token")?;
    Ok(hex::encode(bytes))
}

/// The token a request carries (`Authorization: Bearer TOKEN`), if it is one of `tokens`.
pub(super) fn check_request<'a>(tokens: &'a [Token], headers: &HeaderMap) -> Option<&'a Token> {
    let given = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")?
        .trim();
    // Every token is compared in full, whichever matches: the time taken tells nothing.
    let mut found = None;
    for t in tokens {
        if same(t.value.as_bytes(), given.as_bytes()) && found.is_none() {
            found = Some(t);
        }
    }
    found
}

/// Constant-time equality (for equal lengths).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The user running the server: `$USER`, else the password database's name of the uid.
pub(super) fn os_user() -> String {
    if let Some(u) = ["USER", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    {
        return u;
    }
    let uid = rustix::process::getuid().as_raw();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 2 && f[2] == uid.to_string()).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().unwrap());
        h
    }

    #[test]
    fn a_token_file_names_who_acts_and_only_its_tokens_pass() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tokens");
        std::fs::write(
            &f,
            "# operators\nalice 0123456789abcdef0123\n  fedcba9876543210fedc\n",
        )
        .unwrap();
        let (tokens, shown) = tokens(Some(&f)).unwrap();
        assert!(shown.is_none(), "a configured token is never shown");
        let t = check_request(&tokens, &bearer("Bearer 0123456789abcdef0123")).unwrap();
        assert_eq!(t.name.as_deref(), Some("alice"));
        let t = check_request(&tokens, &bearer("Bearer fedcba9876543210fedc")).unwrap();
        assert_eq!(t.name, None);
        for wrong in [
            "Bearer 0123456789abcdef012",
            "Bearer 0123456789abcdef01234",
            "Basic 0123456789abcdef0123",
            "0123456789abcdef0123",
        ] {
            assert!(check_request(&tokens, &bearer(wrong)).is_none(), "{wrong}");
        }
        assert!(check_request(&tokens, &HeaderMap::new()).is_none());
        std::fs::write(&f, "bob short\n").unwrap();
        let e = format!("{:#}", super::tokens(Some(&f)).err().unwrap());
        assert!(e.contains("at least 16"), "{e}");
    }

    #[test]
    fn a_made_token_is_long_and_new_each_time() {
        let a = random_token().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, random_token().unwrap());
    }
}
