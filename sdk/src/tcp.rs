//! TCP conversations through the host (contract 1.1): only `host:port` addresses the adapter
//! requested ([`crate::Cap::Tcp`]) and the operator granted (`[grants] tcp`) are reachable.
//! The host connects, writes and reads; a conversation never outlives the step's budget.

use crate::__private::adapter::cutover::plugin::tcp;
use crate::{Error, Result};

/// One exchange: write `send` (if any), then read until `until` (none: until the peer closes).
pub struct Exchange<'a> {
    pub send: Option<&'a [u8]>,
    pub until: Option<&'a [u8]>,
}

/// Connect to `address`, run the exchanges in order and close; what each read, in order.
pub fn converse(
    address: &str,
    exchanges: &[Exchange<'_>],
    timeout_ms: Option<u64>,
) -> Result<Vec<Vec<u8>>> {
    tcp::converse(&tcp::Conversation {
        address: address.to_string(),
        exchanges: exchanges
            .iter()
            .map(|x| tcp::Exchange {
                send: x.send.map(<[u8]>::to_vec),
                until: x.until.map(<[u8]>::to_vec),
            })
            .collect(),
        timeout_ms,
    })
    .map_err(Error::from)
}

/// Run `commands` on a line console that shows `prompt` when it is ready (an OSGi
/// framework's remote shell: `osgi> ` for Equinox, `g! ` for Felix Gogo). Each command is sent
/// after the prompt, followed by `\r\n`; its answer is what came before the next prompt, as
/// text, without telnet negotiation, carriage returns or an echo of the command. The
/// connection is closed after the last answer, without a command of its own (`exit` stops
/// some frameworks).
pub fn console(
    address: &str,
    prompt: &str,
    commands: &[&str],
    timeout_ms: Option<u64>,
) -> Result<Vec<String>> {
    let lines: Vec<Vec<u8>> = commands
        .iter()
        .map(|c| format!("{c}\r\n").into_bytes())
        .collect();
    let mut xs = vec![Exchange {
        send: None,
        until: Some(prompt.as_bytes()),
    }];
    xs.extend(lines.iter().map(|l| Exchange {
        send: Some(l),
        until: Some(prompt.as_bytes()),
    }));
    let got = converse(address, &xs, timeout_ms)?;
    Ok(got
        .iter()
        .skip(1)
        .zip(commands)
        .map(|(raw, cmd)| answer(raw, prompt, cmd))
        .collect())
}

/// A console's answer as text: telnet negotiation, `\r`, the trailing prompt and an echoed
/// command line left out.
pub fn answer(raw: &[u8], prompt: &str, command: &str) -> String {
    let text = String::from_utf8_lossy(&strip_telnet(raw)).replace('\r', "");
    let text = text.strip_suffix(prompt).unwrap_or(&text);
    let text = match text.split_once('\n') {
        Some((first, rest)) if first.trim() == command.trim() => rest,
        _ => text,
    };
    text.to_string()
}

/// `raw` without telnet commands (RFC 854: `IAC` followed by a verb and an option, or a
/// subnegotiation up to `IAC SE`; `IAC IAC` is a literal 255).
pub fn strip_telnet(raw: &[u8]) -> Vec<u8> {
    const IAC: u8 = 255;
    const SB: u8 = 250;
    const SE: u8 = 240;
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != IAC {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        match raw.get(i + 1) {
            Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            Some(&SB) => {
                let end = raw[i + 2..]
                    .windows(2)
                    .position(|w| w == [IAC, SE])
                    .map(|p| i + 2 + p + 2);
                i = end.unwrap_or(raw.len());
            }
            Some(&(251..=254)) => i += 3,
            Some(_) => i += 2,
            None => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_lose_negotiation_echo_and_prompt() {
        let raw = b"\xff\xfb\x01\xff\xfa\x18\x01\xff\xf0lb\r\n   ID|State\r\n    0|Active\r\ng! ";
        assert_eq!(answer(raw, "g! ", "lb"), "   ID|State\n    0|Active\n");
        assert_eq!(
            answer(b"Bundle id is 7\nosgi> ", "osgi> ", "install x"),
            "Bundle id is 7\n"
        );
        assert_eq!(strip_telnet(b"a\xff\xffb"), b"a\xffb");
    }
}
