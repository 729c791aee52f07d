//! HTTP through the host (only granted hosts are reachable).

use crate::__private::adapter::cutover::plugin::http;
pub use crate::__private::adapter::cutover::plugin::http::{Request, Response};
use crate::{Error, Pair, Result};

/// Send a request with optional bearer token and body.
pub fn send(
    method: &str,
    url: &str,
    bearer: Option<&str>,
    body: Option<Vec<u8>>,
    timeout_ms: Option<u64>,
) -> Result<Response> {
    let mut headers = Vec::new();
    if let Some(token) = bearer {
        headers.push(Pair {
            key: "authorization".into(),
            value: format!("Bearer {token}"),
        });
    }
    if body.is_some() {
        headers.push(Pair {
            key: "content-type".into(),
            value: "application/json".into(),
        });
    }
    http::send(&Request {
        method: method.to_string(),
        url: url.to_string(),
        headers,
        body,
        timeout_ms,
    })
    .map_err(Error::from)
}

/// Send a fully described request.
pub fn request(req: &Request) -> Result<Response> {
    http::send(req).map_err(Error::from)
}

/// GET `url`; Ok(status, body as text).
pub fn get(url: &str, timeout_ms: Option<u64>) -> Result<(u16, String)> {
    let r = send("GET", url, None, None, timeout_ms)?;
    Ok((r.status, String::from_utf8_lossy(&r.body).into_owned()))
}
