//! TCP conversations for plugins (contract 1.1): connect, then for each exchange write and
//! read until its marker, all before one deadline. The address was checked by the
//! [`authority`](super::authority) before this runs.

use super::model::HostError;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout_at, Instant};

/// One exchange: bytes to write, then the marker to read up to (none: until the peer closes).
pub struct Exchange {
    pub send: Option<Vec<u8>>,
    pub until: Option<Vec<u8>>,
}

/// Run a conversation with `host:port`. `keep` bounds what one exchange may read.
pub async fn converse(
    host: &str,
    port: u16,
    exchanges: &[Exchange],
    limit: Duration,
    keep: usize,
) -> Result<Vec<Vec<u8>>, HostError> {
    let address = format!("{host}:{port}");
    let deadline = Instant::now() + limit;
    let mut stream = match timeout_at(deadline, TcpStream::connect((host, port))).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(HostError::Io(format!("cannot connect to {address}: {e}"))),
        Err(_) => {
            return Err(HostError::TimedOut(format!(
                "cannot connect to {address} within {limit:?}"
            )))
        }
    };
    let _ = stream.set_nodelay(true);
    let mut out = Vec::with_capacity(exchanges.len());
    let mut chunk = vec![0u8; 16 << 10];
    for (n, x) in exchanges.iter().enumerate() {
        let which = format!("{address}, exchange {}", n + 1);
        if let Some(data) = &x.send {
            let write = async {
                stream.write_all(data).await?;
                stream.flush().await
            };
            match timeout_at(deadline, write).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return Err(HostError::Io(format!("{which}: cannot write: {e}"))),
                Err(_) => {
                    return Err(HostError::TimedOut(format!(
                        "{which}: could not write within {limit:?}"
                    )))
                }
            }
        }
        let mut got: Vec<u8> = Vec::new();
        loop {
            if let Some(m) = &x.until {
                if !m.is_empty() && got.windows(m.len()).any(|w| w == m.as_slice()) {
                    break;
                }
            }
            let read = match timeout_at(deadline, stream.read(&mut chunk)).await {
                Ok(r) => r.map_err(|e| HostError::Io(format!("{which}: cannot read: {e}")))?,
                Err(_) => {
                    return Err(HostError::TimedOut(format!(
                        "{which}: {} within {limit:?}; received: {}",
                        waited_for(&x.until),
                        tail(&got)
                    )))
                }
            };
            if read == 0 {
                if x.until.is_none() {
                    break;
                }
                return Err(HostError::Io(format!(
                    "{which}: the peer closed the connection before {}; received: {}",
                    waited_for(&x.until),
                    tail(&got)
                )));
            }
            if got.len() + read > keep {
                return Err(HostError::Io(format!(
                    "{which}: more than {keep} bytes without {} ([limits] exec-output)",
                    waited_for(&x.until)
                )));
            }
            got.extend_from_slice(&chunk[..read]);
        }
        out.push(got);
    }
    Ok(out)
}

fn waited_for(until: &Option<Vec<u8>>) -> String {
    match until {
        Some(m) => format!(
            "`{}` did not arrive",
            String::from_utf8_lossy(m).escape_debug()
        ),
        None => "the peer did not close the connection".into(),
    }
}

/// The last bytes received, as text for a message.
fn tail(got: &[u8]) -> String {
    if got.is_empty() {
        return "nothing".into();
    }
    let from = got.len().saturating_sub(200);
    format!(
        "{}`{}`",
        if from > 0 { "… " } else { "" },
        String::from_utf8_lossy(&got[from..]).escape_debug()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A console that greets with a prompt and answers each line with `echo: line` and a
    /// prompt; `hang` stops answering.
    async fn console() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            s.write_all(b"welcome\ng! ").await.unwrap();
            let mut buf = vec![0u8; 1024];
            let mut line = Vec::new();
            loop {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    return;
                }
                line.extend_from_slice(&buf[..n]);
                while let Some(i) = line.iter().position(|b| *b == b'\n') {
                    let l: Vec<u8> = line.drain(..=i).collect();
                    match l.as_slice() {
                        b"hang\n" => std::future::pending::<()>().await,
                        b"exit\n" => return,
                        _ => {
                            s.write_all(b"echo: ").await.unwrap();
                            s.write_all(&l).await.unwrap();
                            s.write_all(b"g! ").await.unwrap();
                        }
                    }
                }
            }
        });
        port
    }

    fn x(send: Option<&str>, until: Option<&str>) -> Exchange {
        Exchange {
            send: send.map(|s| s.as_bytes().to_vec()),
            until: until.map(|s| s.as_bytes().to_vec()),
        }
    }

    #[tokio::test]
    async fn exchanges_read_up_to_their_marker() {
        let port = console().await;
        let got = converse(
            "127.0.0.1",
            port,
            &[
                x(None, Some("g! ")),
                x(Some("lb\n"), Some("g! ")),
                x(Some("exit\n"), None),
            ],
            Duration::from_secs(5),
            1 << 20,
        )
        .await
        .unwrap();
        assert_eq!(got[0], b"welcome\ng! ");
        assert_eq!(got[1], b"echo: lb\ng! ");
        assert!(got[2].is_empty());
    }

    #[tokio::test]
    async fn a_marker_that_never_comes_times_out_saying_what_came() {
        let port = console().await;
        let e = converse(
            "127.0.0.1",
            port,
            &[x(None, Some("g! ")), x(Some("hang\n"), Some("g! "))],
            Duration::from_millis(300),
            1 << 20,
        )
        .await
        .unwrap_err();
        let HostError::TimedOut(m) = e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains("exchange 2") && m.contains("`g! ` did not arrive"),
            "{m}"
        );
        let port = console().await;
        let e = converse(
            "127.0.0.1",
            port,
            &[x(Some("exit\n"), Some("never"))],
            Duration::from_secs(5),
            1 << 20,
        )
        .await
        .unwrap_err();
        assert!(
            matches!(&e, HostError::Io(m) if m.contains("closed the connection")),
            "{e:?}"
        );
    }
}
