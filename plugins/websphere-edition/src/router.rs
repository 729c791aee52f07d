//! The router in front of the cluster, standing in for the on demand router: HAProxy, driven
//! through its runtime API ("HAProxy Management Guide", section 9.3 "Unix Socket commands":
//! `set server <backend>/<server> state [ready|drain|maint]`, `show servers state
//! [<backend>]`), on a `stats socket` bound to a TCP address. In the non-interactive mode the
//! API answers one line of commands (separated by `;`) and closes the connection.

use cutover_sdk::tcp::{converse, Exchange};
use cutover_sdk::{fail, Result};

/// Send one line of commands; what HAProxy answered.
pub fn command(address: &str, line: &str) -> Result<String> {
    let send = format!("{line}\n");
    let got = converse(
        address,
        &[Exchange {
            send: Some(send.as_bytes()),
            until: None,
        }],
        Some(10_000),
    )?;
    Ok(String::from_utf8_lossy(&got.concat()).trim().to_string())
}

/// Set servers of `backend` to `state`, all in one line (one exchange with HAProxy).
pub fn set_state(address: &str, backend: &str, servers: &[(&str, &str)]) -> Result<()> {
    let line: Vec<String> = servers
        .iter()
        .map(|(s, state)| format!("set server {backend}/{s} state {state}"))
        .collect();
    let answer = command(address, &line.join("; "))?;
    // Success prints nothing; an error names the server or backend.
    if !answer.is_empty() {
        return Err(fail(format!(
            "HAProxy at {address} refused `{}`: {answer}",
            line.join("; ")
        )));
    }
    Ok(())
}

/// A server's row of `show servers state`: its name, `srv_op_state` (2 = running) and
/// `srv_admin_state` (flags; 0x01: forced maintenance).
pub struct ServerState {
    pub name: String,
    pub op: u32,
    pub admin: u32,
}

/// The servers of `backend`.
pub fn states(address: &str, backend: &str) -> Result<Vec<ServerState>> {
    let answer = command(address, &format!("show servers state {backend}"))?;
    let mut out = Vec::new();
    for line in answer
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 7 || f[1] != backend {
            continue;
        }
        out.push(ServerState {
            name: f[3].to_string(),
            op: f[5].parse().unwrap_or(0),
            admin: f[6].parse().unwrap_or(0),
        });
    }
    if out.is_empty() {
        return Err(fail(format!(
            "HAProxy at {address} has no backend `{backend}` (show servers state)"
        )));
    }
    Ok(out)
}
