//! TCP conversations (contract 1.1): an address may be reached only when it is granted.

use super::grants::matches;
use super::{Denied, Effective, GrantKey};
use crate::plugin::model::HostError;

/// `(host, port)` of a `host:port` address (`[v6]:port` for IPv6), the host lowercased.
pub fn parse(address: &str) -> Result<(String, u16), String> {
    let bad = |why: &str| format!("bad TCP address `{address}`: {why}");
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad("expected host:port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(['/', '@', ' ']) {
        return Err(bad("no host name"));
    }
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
    Ok((host.to_ascii_lowercase(), port))
}

/// Whether a spec's `[grants] tcp` entry is well formed: `host:port`, or `host:*`.
pub fn grant_ok(grant: &str) -> Result<(), String> {
    match grant.rsplit_once(':') {
        Some((h, "*")) if !h.is_empty() => Ok(()),
        _ => parse(grant).map(drop),
    }
}

/// Check an address a conversation is to reach; the host and port to connect to.
pub fn check(eff: &Effective, plugin: &str, address: &str) -> Result<(String, u16), HostError> {
    let (host, port) = parse(address).map_err(HostError::Invalid)?;
    let wanted = format!("{host}:{port}");
    if eff.tcp.iter().any(|g| matches(g, &wanted)) {
        return Ok((host, port));
    }
    let granted = if eff.tcp.is_empty() {
        "none".to_string()
    } else {
        eff.tcp.join(", ")
    };
    Err(Denied::ungranted(
        GrantKey::Tcp,
        plugin,
        format!("TCP to `{wanted}`"),
        format!("not among its granted addresses ({granted})"),
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_granted_addresses_pass() {
        let eff = Effective {
            tcp: vec!["127.0.0.1:6666".into(), "grid-*:7001".into()],
            ..Effective::default()
        };
        assert_eq!(
            check(&eff, "p@1", "127.0.0.1:6666").unwrap(),
            ("127.0.0.1".into(), 6666)
        );
        assert!(check(&eff, "p@1", "GRID-2:7001").is_ok());
        let HostError::Denied { grant, message } = check(&eff, "p@1", "127.0.0.1:22").unwrap_err()
        else {
            panic!("not a denial")
        };
        assert_eq!(grant, "[grants] tcp");
        assert!(message.contains("127.0.0.1:22") && message.contains("127.0.0.1:6666"));
        assert!(matches!(
            check(&eff, "p@1", "127.0.0.1"),
            Err(HostError::Invalid(_))
        ));
        assert!(matches!(
            check(&eff, "p@1", "127.0.0.1:0"),
            Err(HostError::Invalid(_))
        ));
        assert!(grant_ok("db:*").is_ok() && grant_ok("[::1]:5432").is_ok());
        assert!(grant_ok("db").is_err() && grant_ok(":80").is_err());
    }
}
