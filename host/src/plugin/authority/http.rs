//! Outgoing HTTP: a request, and every redirect it meets, may reach only granted hosts.

use super::grants::matches;
use super::{Denied, Effective, GrantKey};
use crate::plugin::model::HostError;

/// Most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// `(scheme, host, port)` of an absolute http(s) URL.
pub fn parse(url: &str) -> Result<(String, String, u16), String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("bad URL `{url}`: {e}"))?;
    let scheme = uri.scheme_str().unwrap_or_default().to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "bad URL `{url}`: only http and https are supported"
        ));
    }
    let host = uri
        .host()
        .ok_or_else(|| format!("bad URL `{url}`: no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Ok((scheme, host, port))
}

/// Whether the call may reach `host:port`.
pub fn allowed(eff: &Effective, host: &str, port: u16) -> bool {
    let with_port = format!("{host}:{port}");
    eff.http
        .iter()
        .any(|p| matches(p, &with_port) || matches(p, host))
}

fn granted_list(eff: &Effective) -> String {
    if eff.http.is_empty() {
        "none".into()
    } else {
        eff.http.join(", ")
    }
}

/// Check a request's URL.
pub fn check(eff: &Effective, plugin: &str, url: &str) -> Result<(), HostError> {
    let (_, host, port) = parse(url).map_err(HostError::Invalid)?;
    if allowed(eff, &host, port) {
        return Ok(());
    }
    Err(Denied::ungranted(
        GrantKey::Http,
        plugin,
        format!("HTTP to `{host}:{port}`"),
        format!("not among its granted hosts ({})", granted_list(eff)),
    )
    .into())
}

/// The URL a redirect from `from` to `location` leads to, if the call may follow it.
pub fn redirect(
    eff: &Effective,
    plugin: &str,
    from: &str,
    location: &str,
) -> Result<String, HostError> {
    let (scheme, host, port) = parse(from).map_err(HostError::Invalid)?;
    let next = if location.starts_with("http://") || location.starts_with("https://") {
        location.to_string()
    } else if let Some(rest) = location.strip_prefix("//") {
        format!("{scheme}://{rest}")
    } else if location.starts_with('/') {
        format!("{scheme}://{host}:{port}{location}")
    } else {
        let base = from.split(['?', '#']).next().unwrap_or(from);
        let dir = &base[..base.rfind('/').map(|i| i + 1).unwrap_or(base.len())];
        format!("{dir}{location}")
    };
    let (_, to_host, to_port) = parse(&next).map_err(HostError::Invalid)?;
    if allowed(eff, &to_host, to_port) {
        return Ok(next);
    }
    Err(Denied::ungranted(
        GrantKey::Http,
        plugin,
        format!("redirect from `{host}:{port}` to `{to_host}:{to_port}`"),
        format!(
            "redirects are followed only to granted hosts ({})",
            granted_list(eff)
        ),
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eff(hosts: &[&str]) -> Effective {
        Effective {
            http: hosts.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn redirects_only_to_granted_hosts() {
        let e = eff(&["127.0.0.1:8080", "api.example.com:443"]);
        assert!(check(&e, "p", "http://127.0.0.1:8080/x").is_ok());
        let d = check(&e, "p", "http://127.0.0.1:9/")
            .unwrap_err()
            .to_string();
        assert!(
            d.contains("HTTP to `127.0.0.1:9` denied") && d.contains("[grants] http"),
            "{d}"
        );
        assert_eq!(
            redirect(&e, "p", "http://127.0.0.1:8080/a/b?q", "/c").unwrap(),
            "http://127.0.0.1:8080/c"
        );
        assert_eq!(
            redirect(&e, "p", "http://127.0.0.1:8080/a/b", "c").unwrap(),
            "http://127.0.0.1:8080/a/c"
        );
        assert!(redirect(
            &e,
            "p",
            "http://127.0.0.1:8080/",
            "https://api.example.com/x"
        )
        .is_ok());
        let d = redirect(
            &e,
            "p",
            "http://127.0.0.1:8080/",
            "http://169.254.169.254/latest",
        )
        .unwrap_err()
        .to_string();
        assert!(
            d.contains("redirect from `127.0.0.1:8080` to `169.254.169.254:80` denied"),
            "{d}"
        );
        assert!(d.contains("[grants] http"), "{d}");
        let d = redirect(&e, "p", "http://127.0.0.1:8080/", "//evil.example:8080/")
            .unwrap_err()
            .to_string();
        assert!(d.contains("evil.example:8080"), "{d}");
        assert!(check(&e, "p", "file:///etc/passwd").is_err());
        // A wildcard stays a wildcard of hosts, not of paths.
        let w = eff(&["*.example.com:443"]);
        assert!(check(&w, "p", "https://api.example.com/").is_ok());
        assert!(check(&w, "p", "https://example.org/").is_err());
    }
}
