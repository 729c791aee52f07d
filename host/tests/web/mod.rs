//! What the dashboard tests drive: headless Chromium over WebDriver (Debian's `chromium` and
//! `chromium-driver`), and plain HTTP/1.1 on loopback.

use crate::common::{root, wait_for};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long the page may take to show a change.
pub const SHOWN: Duration = Duration::from_secs(60);

/// A process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback HTTP server answering every request with the JSON `body`, for the test's
/// life; its port.
pub fn json_server(body: &'static str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                line.clear();
            }
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

/// One HTTP/1.1 request to `addr`: status and body.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: 0\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("host: {addr}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text}"));
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (code, body)
}

/// Headless Chromium driven through chromedriver.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    client: Option<Client>,
    _driver: Proc,
}

impl Browser {
    pub fn start() -> Browser {
        assert!(
            Path::new(CHROMEDRIVER).exists() && Path::new(CHROMIUM).exists(),
            "the dashboard tests need Debian's chromium and chromium-driver (examples/test-suite installs them)"
        );
        let port = free_port();
        let driver = Proc(
            Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("chromedriver starts"),
        );
        wait_for("chromedriver to listen", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1360,1000", "--hide-scrollbars", "--force-device-scale-factor=1"],
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = rt
            .block_on(
                ClientBuilder::new(connector)
                    .capabilities(caps)
                    .connect(&format!("http://127.0.0.1:{port}")),
            )
            .expect("a WebDriver session in headless Chromium");
        Browser {
            rt,
            client: Some(client),
            _driver: driver,
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }

    pub fn goto(&self, url: &str) {
        self.rt.block_on(self.c().goto(url)).unwrap();
    }

    /// Run `script` in the page; its value.
    pub fn js(&self, script: &str) -> serde_json::Value {
        self.rt
            .block_on(self.c().execute(script, Vec::new()))
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Attribute `attr` of the first element matching `css`, read in one go (the page
    /// re-renders as the journal changes).
    pub fn attr(&self, css: &str, attr: &str) -> Option<String> {
        let v = self.js(&format!(
            "const e = document.querySelector({}); return e ? e.getAttribute({}) : null;",
            json!(css),
            json!(attr)
        ));
        v.as_str().map(str::to_string)
    }

    /// Wait until attribute `attr` of `css` is `want`; the values seen on the way.
    pub fn wait_attr(&self, css: &str, attr: &str, want: &str, limit: Duration) -> Vec<String> {
        let until = Instant::now() + limit;
        let mut seen: Vec<String> = Vec::new();
        loop {
            let v = self.attr(css, attr).unwrap_or_else(|| "(absent)".into());
            if seen.last() != Some(&v) {
                seen.push(v.clone());
            }
            if v == want {
                return seen;
            }
            assert!(
                Instant::now() < until,
                "the page never showed {css} with {attr}={want}; it showed {seen:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `css` matches `n` elements.
    pub fn wait_count(&self, css: &str, n: usize, limit: Duration) {
        let until = Instant::now() + limit;
        loop {
            let v = self.js(&format!(
                "return document.querySelectorAll({}).length;",
                json!(css)
            ));
            if v == n {
                return;
            }
            assert!(
                Instant::now() < until,
                "the page showed {v} of {css}, not {n}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `css` matches an element.
    pub fn wait_present(&self, css: &str, limit: Duration) {
        let until = Instant::now() + limit;
        while self.js(&format!("return !!document.querySelector({});", json!(css))) != true {
            assert!(Instant::now() < until, "the page never showed {css}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Click the element `css` as a user would (found again if the page re-rendered it).
    pub fn click(&self, css: &str) {
        let until = Instant::now() + SHOWN;
        loop {
            let r = self.rt.block_on(async {
                let e = self.c().find(Locator::Css(css)).await?;
                e.click().await
            });
            match r {
                Ok(()) => return,
                Err(e) => assert!(Instant::now() < until, "cannot click {css}: {e}"),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn type_into(&self, css: &str, text: &str) {
        self.rt
            .block_on(async {
                let e = self.c().find(Locator::Css(css)).await?;
                e.send_keys(text).await
            })
            .unwrap();
    }

    pub fn source(&self) -> String {
        self.rt.block_on(self.c().source()).unwrap()
    }

    /// Write a screenshot of the window to `name` in the screenshot folder.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.rt.block_on(self.c().screenshot()).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let dir = screenshots();
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, png).unwrap();
        eprintln!("screenshot: {}", path.display());
        path
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let _ = self.rt.block_on(c.close());
        }
    }
}

pub fn screenshots() -> PathBuf {
    match std::env::var_os("DASHBOARD_SCREENSHOTS") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                root().join(d)
            }
        }
        None => std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root().join("target"))
            .join("dashboard-screenshots"),
    }
}
