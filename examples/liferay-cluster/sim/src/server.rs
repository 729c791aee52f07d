//! The node's HTTP server: the portal's pages and `/c/portal/robots`, and the Tomcat manager's
//! text list and XML status. Nothing else: the simulator serves no endpoint a real node does
//! not document.

use crate::node::{self, Module};
use anyhow::Result;
use simkit::{append, read, wait_until};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// `YYYY-MM-DD` and `HH:MM:SS.mmm` of now, UTC (for the log).
fn now() -> (String, String) {
    let ms = simkit::now_ms() as i64;
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let s = rest / 1000;
    (
        format!("{y:04}-{m:02}-{d:02}"),
        format!(
            "{:02}:{:02}:{:02}.{:03}",
            s / 3600,
            s / 60 % 60,
            s % 60,
            rest % 1000
        ),
    )
}

/// Log the modules that start, as the portal does in `[Liferay Home]/logs/liferay.<date>.log`:
/// `INFO  [...][BundleStartStopLogger:NN] STARTED <bsn>_<version> [<bundleId>]` ("Using Upgrade
/// Processes", https://learn.liferay.com/w/dxp/development/building-applications/data-frameworks/upgrading-data-schemas/using-upgrade-processes;
/// SURFACES.md #13). A module whose required schema `Release_` does not satisfy does not start.
fn log_started(node: &Path, modules: &[Module]) -> Result<()> {
    let (day, time) = now();
    let log = node.join(format!("logs/liferay.{day}.log"));
    let (dbdir, name) = node::database(node);
    let rows = crate::db::load(&dbdir, &name)?;
    for (i, m) in modules.iter().enumerate() {
        let ok = match (&m.schema, crate::db::schema(&rows, &m.bundle)) {
            (Some(r), Some(h)) => node::satisfied(r, &h),
            _ => true,
        };
        if ok {
            append(
                &log,
                &format!(
                    "{day} {time} INFO  [main][BundleStartStopLogger:77] STARTED {}_{} [{}]",
                    m.bundle,
                    m.version,
                    1030 + i
                ),
            )?;
        }
    }
    Ok(())
}

fn base64_decode(text: &str) -> Vec<u8> {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|c| *c != b'=') {
        let Some(v) = A.iter().position(|a| *a == c) else {
            break;
        };
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

/// Whether the request carries HTTP Basic credentials of a user that has `role` in
/// `conf/tomcat-users.xml` (`<user username=".." password=".." roles=".."/>`): "access to the
/// Manager application is completely disabled by default"; roles `manager-script` for the text
/// interface, `manager-status` for the status page (Tomcat "Manager App How-To" § Configuring
/// Manager Application Access; SURFACES.md #23).
fn authorized(node: &Path, request: &tiny_http::Request, role: &str) -> bool {
    let Some(given) = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .and_then(|h| h.value.as_str().strip_prefix("Basic ").map(base64_decode))
    else {
        return false;
    };
    let given = String::from_utf8_lossy(&given).to_string();
    let users = read(&node.join("conf/tomcat-users.xml"));
    users.split("<user ").skip(1).any(|u| {
        let attr = |k: &str| {
            u.split(&format!("{k}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
                .unwrap_or("")
                .to_string()
        };
        given == format!("{}:{}", attr("username"), attr("password"))
            && attr("roles").split(',').any(|r| r.trim() == role)
    })
}

/// `GET /manager/status?XML=true`: per connector, `threadInfo` with `currentThreadsBusy`. The
/// status request is itself a busy thread: "There is always at least one thread in this stage
/// (the server-status page)" (Tomcat "Manager App How-To" § Server Status,
/// https://tomcat.apache.org/tomcat-9.0-doc/manager-howto.html; element names from
/// `StatusTransformer.java`; SURFACES.md #20, b6).
fn status_xml(port: &str, busy: usize) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><?xml-stylesheet type=\"text/xsl\" href=\"/manager/xform.xsl\" ?>\n\
         <status><jvm><memory free='214069480' total='601882624' max='1823473664'/></jvm>\
         <connector name='\"http-nio-{port}\"'><threadInfo  maxThreads=\"200\" currentThreadCount=\"8\" currentThreadsBusy=\"{busy}\" />\
         <requestInfo  maxTime=\"30\" processingTime=\"0\" requestCount=\"0\" errorCount=\"0\" bytesReceived=\"0\" bytesSent=\"0\" />\
         <workers></workers></connector></status>\n"
    )
}

/// `GET /manager/text/list`: `OK - Listed applications for virtual host localhost`, then
/// `/path:running|stopped:<activeSessions>:<docBase>` per application (same page § List
/// Currently Deployed Applications; SURFACES.md #21, b7). The simulated portal keeps no
/// sessions.
fn text_list() -> String {
    "OK - Listed applications for virtual host localhost\n/:running:0:ROOT\n/manager:running:0:manager\n".into()
}

/// `GET /c/portal/robots`: the page Liferay's Docker image polls to tell that a node is up
/// (`LIFERAY_CONTAINER_STATUS_REQUEST_URL`, "Maintenance and Troubleshooting in Docker",
/// https://learn.liferay.com/w/dxp/self-hosted-installation-and-upgrades/using-liferay-docker-images/maintenance-and-troubleshooting-in-docker;
/// SURFACES.md #17). Its body is the site's robots.txt (not documented; this one is plain).
const ROBOTS: &str = "User-Agent: *\nDisallow:\n";

/// The node's HTTP server, until `bin/stop` signals it (the simulator's stand-in for Tomcat's
/// shutdown port); it then finishes the requests in flight.
pub fn serve(node: &Path) -> Result<()> {
    let node = std::fs::canonicalize(node)?;
    let port = node::port(&node);
    let server = Arc::new(
        tiny_http::Server::http(("127.0.0.1", port.parse::<u16>()?))
            .map_err(|e| anyhow::anyhow!("listening: {e}"))?,
    );
    let modules = Arc::new(node::modules(&node)?);
    log_started(&node, &modules)?;
    let inflight = Arc::new(AtomicUsize::new(0));
    let closing = Arc::new(AtomicBool::new(false));
    let name = node
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .to_string();
    let version = read(&node.join("VERSION"));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (server, inflight, closing) = (server.clone(), inflight.clone(), closing.clone());
            let (node, name, version, port) =
                (node.clone(), name.clone(), version.clone(), port.clone());
            let modules = modules.clone();
            std::thread::spawn(move || {
                for request in server.incoming_requests() {
                    let path = request.url().to_string();
                    let (status, body) = match path.as_str() {
                        _ if closing.load(Ordering::SeqCst) && path != "/shutdown" => {
                            (503, "shutting down".into())
                        }
                        "/c/portal/robots" => (200, ROBOTS.to_string()),
                        "/manager/status?XML=true" | "/manager/status/?XML=true" => {
                            if authorized(&node, &request, "manager-status") {
                                let busy = inflight.load(Ordering::SeqCst) + 1;
                                (200, status_xml(&port, busy))
                            } else {
                                (401, "401 Unauthorized".into())
                            }
                        }
                        "/manager/text/list" => {
                            if authorized(&node, &request, "manager-script") {
                                (200, text_list())
                            } else {
                                (401, "401 Unauthorized".into())
                            }
                        }
                        "/shutdown" => {
                            closing.store(true, Ordering::SeqCst);
                            (200, "shutting down".into())
                        }
                        _ => {
                            inflight.fetch_add(1, Ordering::SeqCst);
                            // Rendering a page takes a while, so that requests overlap.
                            std::thread::sleep(Duration::from_millis(25));
                            let answer = match node::unavailable(&node, &modules) {
                                Some(why) => (500, format!("{name}: {why}")),
                                // `web.server.display.node=true` prints `Node: [id]:[port]` at
                                // the bottom of each page ("Example: Creating a Simple DXP
                                // Cluster"; SURFACES.md #19).
                                None => {
                                    (200, format!("{name} {version}\nNode: [{name}]:[{port}]\n"))
                                }
                            };
                            inflight.fetch_sub(1, Ordering::SeqCst);
                            answer
                        }
                    };
                    let mut response =
                        tiny_http::Response::from_string(body).with_status_code(status);
                    if status == 401 {
                        response = response.with_header(
                            tiny_http::Header::from_bytes(
                                "WWW-Authenticate",
                                "Basic realm=\"Tomcat Manager Application\"",
                            )
                            .expect("a valid header"),
                        );
                    }
                    let _ = request.respond(response);
                }
            })
        })
        .collect();
    // A graceful shutdown: stop taking connections once the requests in flight are done.
    while !closing.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    wait_until(Duration::from_secs(15), || {
        inflight.load(Ordering::SeqCst) == 0
    });
    for _ in &workers {
        server.unblock();
    }
    for w in workers {
        let _ = w.join();
    }
    Ok(())
}
