//! A node: a real Apache Felix framework (Debian's `felix-main`) with its Gogo shell, held by
//! a small console server so that one-line commands can reach it over loopback.
//!
//! `node start HOME` launches the console server (`node run HOME`), which starts Felix with
//! its shell on a pipe and listens on 127.0.0.1:`port` (from `HOME/node.json`). Each
//! connection sends one Gogo command line and reads back what the shell printed. `console
//! PORT COMMAND...` is the client: `HOME/bin/console` is the one command an operator grants.
//!
//! Environment: `JAVA` (default `java`), `FELIX_MAIN` (default
//! `/usr/share/java/org.apache.felix.main.jar`) and `FELIX_BUNDLES` (default
//! `/usr/share/felix-framework/bundle`, the Gogo shell bundles).

use anyhow::{bail, Context, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The request that stops the framework and the console server.
const SHUTDOWN: &str = "__shutdown__";

fn env_or(key: &str, default: &str) -> PathBuf {
    PathBuf::from(std::env::var(key).unwrap_or_else(|_| default.to_string()))
}

/// The node's console port, from `HOME/node.json`.
pub fn port(home: &Path) -> Result<u16> {
    let v: serde_json::Value = serde_json::from_str(&simkit::read(&home.join("node.json")))
        .with_context(|| format!("{}/node.json", home.display()))?;
    v["port"]
        .as_u64()
        .map(|p| p as u16)
        .context("node.json has no port")
}

fn pid_file(home: &Path) -> PathBuf {
    home.join("run/console.pid")
}

/// The console server's pid, if it runs.
pub fn running(home: &Path) -> Option<u32> {
    let pid: u32 = simkit::read(&pid_file(home)).parse().ok()?;
    simkit::alive(pid).then_some(pid)
}

/// Lay out a node: `node.json`, `bin/console`, `bundles/`.
pub fn create(home: &Path, name: &str, port: u16) -> Result<()> {
    std::fs::create_dir_all(home.join("bundles"))?;
    std::fs::write(
        home.join("node.json"),
        serde_json::json!({ "name": name, "port": port }).to_string(),
    )?;
    let me = std::env::current_exe()?;
    simkit::write_exec(
        &home.join("bin/console"),
        &format!(
            "#!/bin/sh\n# The Gogo shell of this node's OSGi framework: console COMMAND...\nexec '{}' console {port} \"$@\"\n",
            me.display()
        ),
    )
}

/// `node start HOME`: launch the console server and wait until the shell answers.
pub fn start(home: &Path) -> Result<()> {
    let home = std::fs::canonicalize(home)?;
    if let Some(pid) = running(&home) {
        println!("node {} already runs (pid {pid})", home.display());
        return Ok(());
    }
    std::fs::create_dir_all(home.join("run"))?;
    let pid = simkit::spawn_detached(
        Command::new(std::env::current_exe()?)
            .args(["node", "run"])
            .arg(&home),
    )?;
    std::fs::write(pid_file(&home), pid.to_string())?;
    let port = port(&home)?;
    let up = simkit::wait_until(Duration::from_secs(60), || {
        !simkit::alive(pid) || home.join("run/ready").exists()
    });
    if !up || !simkit::alive(pid) {
        bail!(
            "the OSGi framework of {} did not come up on port {port}: see {}",
            home.display(),
            home.join("felix.log").display()
        );
    }
    Ok(())
}

/// `node stop HOME`: stop the framework and its console server.
pub fn stop(home: &Path) -> Result<()> {
    let Some(pid) = running(home) else {
        return Ok(());
    };
    let _ = send(port(home)?, SHUTDOWN);
    if !simkit::wait_until(Duration::from_secs(20), || !simkit::alive(pid)) {
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
    }
    let _ = std::fs::remove_file(pid_file(home));
    Ok(())
}

/// What the shell printed so far, and whether it has exited.
#[derive(Default)]
struct Screen {
    text: String,
    closed: bool,
}

type Shared = Arc<(Mutex<Screen>, Condvar)>;

/// Wait until the screen holds `marker` (then take what came before it) or `limit` passes.
fn take_until(screen: &Shared, marker: &str, limit: Duration) -> Result<String> {
    let (lock, cv) = &**screen;
    let until = Instant::now() + limit;
    let mut s = lock.lock().unwrap();
    loop {
        if let Some(at) = s.text.find(marker) {
            let before = s.text[..at].to_string();
            let rest = s.text[at + marker.len()..].to_string();
            s.text = rest;
            return Ok(before);
        }
        if s.closed {
            bail!("the OSGi framework exited: {}", s.text.trim());
        }
        let now = Instant::now();
        if now > until {
            bail!("the Gogo shell did not answer within {} s", limit.as_secs());
        }
        s = cv.wait_timeout(s, until - now).unwrap().0;
    }
}

/// Drop the shell's prompts from its output.
fn clean(text: &str) -> String {
    text.lines()
        .map(|l| {
            let mut l = l.trim_end_matches('\r');
            while let Some(rest) = l.strip_prefix("g! ") {
                l = rest;
            }
            l.trim_end_matches("g!").to_string()
        })
        .filter(|l| !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// `node run HOME`: the console server (runs until shut down or the framework exits).
pub fn run(home: &Path) -> Result<()> {
    let home = std::fs::canonicalize(home)?;
    let port = port(&home)?;
    let java = env_or("JAVA", "java");
    let main_jar = env_or("FELIX_MAIN", "/usr/share/java/org.apache.felix.main.jar");
    let shell = env_or("FELIX_BUNDLES", "/usr/share/felix-framework/bundle");
    if !main_jar.is_file() || !shell.is_dir() {
        bail!(
            "Apache Felix is not installed ({} or {} is missing): apt-get install felix-main default-jre-headless",
            main_jar.display(),
            shell.display()
        );
    }
    let felix = home.join("felix");
    let system = felix.join("system");
    std::fs::create_dir_all(&system)?;
    for jar in std::fs::read_dir(&shell)? {
        let jar = jar?.path();
        let link = system.join(jar.file_name().unwrap_or_default());
        if !link.exists() {
            std::os::unix::fs::symlink(&jar, &link)?;
        }
    }
    // Debian's Felix predates Java 9: it is told the running VM offers the Java SE
    // execution environments its shell bundles require.
    std::fs::write(
        felix.join("config.properties"),
        format!(
            "org.osgi.framework.storage={}\nfelix.auto.deploy.dir={}\nfelix.auto.deploy.action=install,start\n\
             org.osgi.framework.system.capabilities.extra=osgi.ee; osgi.ee=\"JavaSE\"; version:List<Version>=\"1.0,1.1,1.2,1.3,1.4,1.5,1.6,1.7,1.8\"\n",
            felix.join("cache").display(),
            system.display()
        ),
    )?;
    let log = std::fs::File::create(home.join("felix.log"))?;
    let mut child = Command::new(&java)
        .args([
            "--add-opens",
            "java.base/java.net=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.security=ALL-UNNAMED",
            "--add-opens",
            "java.base/java.lang=ALL-UNNAMED",
        ])
        .arg(format!(
            "-Dfelix.config.properties=file:{}",
            felix.join("config.properties").display()
        ))
        .arg("-jar")
        .arg(&main_jar)
        .current_dir(&felix)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", java.display()))?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let mut stdout = child.stdout.take().context("no stdout")?;
    let screen: Shared = Arc::default();
    let reader = screen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            let n = stdout.read(&mut buf).unwrap_or(0);
            let (lock, cv) = &*reader;
            let mut s = lock.lock().unwrap();
            if n == 0 {
                s.closed = true;
                cv.notify_all();
                return;
            }
            s.text.push_str(&String::from_utf8_lossy(&buf[..n]));
            cv.notify_all();
        }
    });
    take_until(&screen, "g! ", Duration::from_secs(60))?;
    let listener = TcpListener::bind(("127.0.0.1", port))
        .with_context(|| format!("listening on 127.0.0.1:{port}"))?;
    std::fs::write(home.join("run/ready"), "")?;
    for (n, conn) in listener.incoming().enumerate() {
        let Ok(mut conn) = conn else { continue };
        let mut line = String::new();
        if BufReader::new(&conn).read_line(&mut line).is_err() {
            continue;
        }
        let command = line.trim();
        if command == SHUTDOWN {
            let _ = writeln!(stdin, "stop 0");
            let _ = stdin.flush();
            let ended = simkit::wait_until(Duration::from_secs(15), || {
                child.try_wait().ok().flatten().is_some()
            });
            if !ended {
                let _ = child.kill();
            }
            let _ = conn.write_all(b"stopped\n");
            let _ = std::fs::remove_file(home.join("run/ready"));
            return Ok(());
        }
        let marker = format!("__end_of_answer_{n}__");
        let answer = writeln!(stdin, "{command}\necho {marker}")
            .and_then(|_| stdin.flush())
            .map_err(anyhow::Error::from)
            .and_then(|_| take_until(&screen, &format!("{marker}\n"), Duration::from_secs(60)));
        let reply = match answer {
            Ok(text) => clean(&text),
            Err(e) => format!("console: {e:#}"),
        };
        let _ = conn.write_all(reply.as_bytes());
        let _ = conn.shutdown(Shutdown::Write);
        if child.try_wait().ok().flatten().is_some() {
            bail!("the OSGi framework exited");
        }
    }
    Ok(())
}

/// Send one command line to the console on `port`; what the shell printed.
pub fn send(port: u16, command: &str) -> Result<String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("no OSGi console on 127.0.0.1:{port}"))?;
    conn.write_all(format!("{}\n", command.replace('\n', " ")).as_bytes())?;
    conn.shutdown(Shutdown::Write)?;
    let mut text = String::new();
    conn.read_to_string(&mut text)?;
    Ok(text)
}

/// Whether the shell's answer reports an error (Gogo prints them as text, not exit codes).
pub fn is_error(answer: &str) -> bool {
    answer.lines().any(|l| {
        l.starts_with("gogo:")
            || l.starts_with("console:")
            || l.contains("Exception:")
            || l.starts_with("Cannot ")
    })
}

/// `console PORT COMMAND...`: print the answer; exit 1 when it reports an error.
pub fn console(port: u16, words: &[String]) -> Result<()> {
    let answer = send(port, &words.join(" "))?;
    println!("{answer}");
    if is_error(&answer) {
        bail!("the OSGi console reported an error");
    }
    Ok(())
}

/// One row of `lb`: id, state and the last column (name, location or symbolic name).
pub struct Row {
    pub id: u64,
    pub state: String,
    pub what: String,
}

/// Parse `lb` output.
pub fn rows(answer: &str) -> Vec<Row> {
    answer
        .lines()
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('|').map(str::trim).collect();
            Some(Row {
                id: cols.first()?.parse().ok()?,
                state: cols.get(1)?.to_string(),
                what: cols.get(3)?.to_string(),
            })
        })
        .collect()
}
