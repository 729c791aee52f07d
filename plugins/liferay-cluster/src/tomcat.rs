//! Tomcat's manager application, where the operator has it installed and grants its login: the
//! end of a drain. Liferay documents no count of requests in flight; Tomcat's manager does
//! ("Manager App How-To", https://tomcat.apache.org/tomcat-9.0-doc/manager-howto.html):
//!
//! - `GET <manager>/status?XML=true` (role `manager-status`): per connector,
//!   `<threadInfo ... currentThreadsBusy="N" />`. The status request is itself a busy thread
//!   when it comes through the same connector ("There is always at least one thread in this
//!   stage (the server-status page)").
//! - `GET <manager>/text/list` (role `manager-script`): `/path:running:<activeSessions>:<docBase>`
//!   per application.

use cutover_sdk::params::get;
use cutover_sdk::{secrets, web, Pair, Result};

fn base64(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The connector's `currentThreadsBusy` in the status XML; the connector's name is quoted in
/// the document (`<connector name='"http-nio-8080"'>`).
pub fn busy(xml: &str, connector: &str) -> Option<u64> {
    let at = xml.find(&format!("\"{connector}\""))?;
    let rest = &xml[at..];
    let rest = &rest[..rest.find("</connector>").unwrap_or(rest.len())];
    let value = rest.split("currentThreadsBusy=\"").nth(1)?;
    value.split('"').next()?.parse().ok()
}

/// The active sessions of the application at `path` in the text list.
pub fn sessions(list: &str, path: &str) -> Option<u64> {
    list.lines().skip(1).find_map(|l| {
        let mut f = l.splitn(4, ':');
        (f.next()? == path).then_some(())?;
        f.next()?;
        f.next()?.parse().ok()
    })
}

/// The manager of a node, when the spec names one.
pub struct Manager {
    base: String,
    auth: String,
    connector: String,
    sessions: bool,
}

impl Manager {
    /// For the node at `url`: `manager` (its path), `manager-user` and the password in the
    /// secret `manager-password-secret`; none when `manager` is not set.
    pub fn new(params: &[Pair], url: &str) -> Result<Option<Manager>> {
        let Some(path) = get(params, "manager").filter(|p| !p.is_empty()) else {
            return Ok(None);
        };
        let user = cutover_sdk::params::param(params, "manager-user")?;
        let secret = cutover_sdk::params::param(params, "manager-password-secret")?;
        let password = secrets::get(secret)?;
        let port = crate::lb::address(url)
            .rsplit_once(':')
            .map(|(_, p)| p.to_string())
            .unwrap_or_else(|| "80".into());
        Ok(Some(Manager {
            base: format!("{url}{}", path.trim_end_matches('/')),
            auth: format!("Basic {}", base64(format!("{user}:{password}").as_bytes())),
            connector: get(params, "connector")
                .map(str::to_string)
                .unwrap_or(format!("http-nio-{port}")),
            sessions: crate::settings::flag(params, "drain-sessions")?,
        }))
    }

    fn get(&self, path: &str) -> std::result::Result<String, String> {
        let r = web::request(&web::Request {
            method: "GET".into(),
            url: format!("{}{path}", self.base),
            headers: vec![Pair {
                key: "authorization".into(),
                value: self.auth.clone(),
            }],
            body: None,
            timeout_ms: Some(5000),
        })
        .map_err(|e| e.message)?;
        let body = String::from_utf8_lossy(&r.body).into_owned();
        match r.status {
            200 => Ok(body),
            401 | 403 => Err(format!(
                "{}{path} answered {}: check manager-user, its password and its roles (manager-status, manager-script)",
                self.base, r.status
            )),
            s => Err(format!("{}{path} answered {s}", self.base)),
        }
    }

    /// Whether the node holds no request (the status request itself aside) and, with
    /// `drain-sessions`, no session of the portal; else what it still holds.
    pub fn idle(&self) -> std::result::Result<Option<String>, String> {
        let xml = self.get("/status?XML=true")?;
        let busy = busy(&xml, &self.connector).ok_or_else(|| {
            format!(
                "the status has no connector \"{}\" (set `connector`)",
                self.connector
            )
        })?;
        // Asked through the connector it counts: the status request is one of them.
        let others = busy.saturating_sub(1);
        if others > 0 {
            return Ok(Some(format!("{others} requests in flight")));
        }
        if self.sessions {
            let list = self.get("/text/list")?;
            match sessions(&list, "/") {
                Some(0) => {}
                Some(n) => return Ok(Some(format!("{n} active sessions"))),
                None => return Err("the manager's list has no application at /".into()),
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_manager_outputs() {
        let xml = "<status><connector name='\"ajp-nio-8009\"'><threadInfo  maxThreads=\"200\" currentThreadsBusy=\"7\" /></connector>\
                   <connector name='\"http-nio-8080\"'><threadInfo  maxThreads=\"200\" currentThreadCount=\"10\" currentThreadsBusy=\"3\" /></connector></status>";
        assert_eq!(busy(xml, "http-nio-8080"), Some(3));
        assert_eq!(busy(xml, "ajp-nio-8009"), Some(7));
        assert_eq!(busy(xml, "http-nio-9"), None);
        let list = "OK - Listed applications for virtual host localhost\n/:running:4:ROOT\n/manager:running:0:manager\n";
        assert_eq!(sessions(list, "/"), Some(4));
        assert_eq!(sessions(list, "/x"), None);
        assert_eq!(base64(b"cutover:pw"), "Y3V0b3Zlcjpwdw==");
        assert_eq!(base64(b"ab"), "YWI=");
    }
}
