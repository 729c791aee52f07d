//! A node: a real OSGi framework from Debian with its own remote console on 127.0.0.1:`port`
//! (from `HOME/node.json`); no console of ours stands in between.
//!
//! - **Eclipse Equinox 3.9** (`libequinox-osgi-java`), started with `-console 127.0.0.1:PORT`
//!   and `osgi.console.enable.builtin=true`: its built-in telnet console, prompt `osgi> `, as
//!   the Equinox documentation describes it ("-console [port]: start the OSGi console, on a
//!   telnet port if one is given") and as IBM's procedure shows it (`osgi> install <URL>`).
//! - **Apache Felix** (`felix-main`) with the Gogo shell bundles, whose `telnetd` command
//!   ("telnetd [-i ip] [-p port] start: start simple telnet server", Gogo shell 0.12) serves
//!   the shell, prompt `g! `; it runs from `gosh.args`.
//!
//! Environment: `JAVA` (default `java`), `EQUINOX_JAR` (default
//! `/usr/share/java/org.eclipse.osgi.nb.jar`), `FELIX_MAIN` (default
//! `/usr/share/java/org.apache.felix.main.jar`), `FELIX_BUNDLES` (default
//! `/usr/share/felix-framework/bundle`, the Gogo bundles).

use anyhow::{bail, Context, Result};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Which framework a node runs (its console's prompt, listing and answers are read with the
/// plugin SDK's `osgi` module, the one the adapter uses).
pub use cutover_sdk::osgi::Framework as Kind;

/// `--framework equinox|felix`.
pub fn kind(name: &str) -> Result<Kind> {
    Kind::parse(name).map_err(|e| anyhow::anyhow!("--framework: {e}"))
}

/// Debian's Equinox 3.9.1 jar lacks the console's message catalogue (every line reads "NLS
/// missing message: ..."). These are the upstream English messages of
/// `org/eclipse/osgi/framework/internal/core/ConsoleMessages.properties` (Equinox 3.x) for
/// what the console prints for `ss`, `install`, `start`, `stop`, `uninstall` and `close`; they
/// are put before the jar on the class path.
const EQUINOX_MESSAGES: &str = "CONSOLE_PROMPT=osgi> \n\
CONSOLE_ID=id\n\
CONSOLE_STATE_BUNDLE_TITLE=State       Bundle\n\
CONSOLE_FRAMEWORK_IS_LAUNCHED_MESSAGE=Framework is launched.\n\
CONSOLE_BUNDLE_ID_MESSAGE=Bundle id is \n\
CONSOLE_NO_BUNDLE_SPECIFIED_ERROR=No bundle(s) specified!\n\
CONSOLE_NOTHING_TO_INSTALL_ERROR=Nothing to install!\n\
CONSOLE_NO_INSTALLED_BUNDLES_ERROR=No installed bundles.\n\
CONSOLE_CANNOT_FIND_BUNDLE_ERROR=Cannot find bundle {0}\n\
CONSOLE_INVALID_BUNDLE_SPECIFICATION_ERROR=Invalid bundle specification.\n\
CONSOLE_NESTED_EXCEPTION=Nested Exception:\n\
CONSOLE_LISTENING_ON_PORT=Listening on port {0} ... \n\
CONSOLE_TELNET_CONNECTION_REFUSED=Connection refused.\n\
CONSOLE_TELNET_CURRENTLY_USED=Telnet is currently being used.\n\
CONSOLE_TELNET_ONE_CLIENT_ONLY=Only one client can access at a time.\n";

fn env_or(key: &str, default: &str) -> PathBuf {
    PathBuf::from(std::env::var(key).unwrap_or_else(|_| default.to_string()))
}

/// A node's console port and framework, from `HOME/node.json`.
pub fn console_of(home: &Path) -> Result<(u16, Kind)> {
    let v: serde_json::Value = serde_json::from_str(&simkit::read(&home.join("node.json")))
        .with_context(|| format!("{}/node.json", home.display()))?;
    let port = v["port"].as_u64().context("node.json has no port")? as u16;
    Ok((port, kind(v["framework"].as_str().unwrap_or("felix"))?))
}

fn pid_file(home: &Path) -> PathBuf {
    home.join("run/framework.pid")
}

/// The framework's pid, if it runs.
pub fn running(home: &Path) -> Option<u32> {
    let pid: u32 = simkit::read(&pid_file(home)).parse().ok()?;
    simkit::alive(pid).then_some(pid)
}

/// Lay out a node: `node.json` and `bundles/`.
pub fn create(home: &Path, name: &str, port: u16, kind: Kind) -> Result<()> {
    std::fs::create_dir_all(home.join("bundles"))?;
    std::fs::write(
        home.join("node.json"),
        serde_json::json!({ "name": name, "port": port, "framework": kind.name() }).to_string(),
    )?;
    Ok(())
}

/// The JVM command line of a node's framework.
fn command(home: &Path, port: u16, kind: Kind) -> Result<Command> {
    let java = env_or("JAVA", "java");
    let mut cmd = Command::new(&java);
    match kind {
        Kind::Equinox => {
            let jar = env_or("EQUINOX_JAR", "/usr/share/java/org.eclipse.osgi.nb.jar");
            if !jar.is_file() {
                bail!(
                    "Eclipse Equinox is not installed ({} is missing): apt-get install libequinox-osgi-java default-jre-headless",
                    jar.display()
                );
            }
            let dir = home.join("equinox");
            let nls = dir.join("nls/org/eclipse/osgi/framework/internal/core");
            std::fs::create_dir_all(&nls)?;
            std::fs::write(nls.join("ConsoleMessages.properties"), EQUINOX_MESSAGES)?;
            cmd.arg(format!(
                "-Dosgi.configuration.area={}",
                dir.join("configuration").display()
            ))
            .args([
                "-Dosgi.console.enable.builtin=true",
                "-Dosgi.noShutdown=true",
                "-Declipse.ignoreApp=true",
            ])
            .arg("-cp")
            .arg(format!("{}:{}", dir.join("nls").display(), jar.display()))
            .arg("org.eclipse.core.runtime.adaptor.EclipseStarter")
            .arg("-console")
            .arg(format!("127.0.0.1:{port}"))
            .current_dir(&dir);
        }
        Kind::Felix => {
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
            cmd.args([
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
            .arg(format!(
                "-Dgosh.args=--nointeractive --noshutdown -c telnetd -i 127.0.0.1 -p {port} start"
            ))
            .arg("-jar")
            .arg(&main_jar)
            .current_dir(&felix);
        }
    }
    Ok(cmd)
}

/// `node start HOME`: launch the framework and wait until its console lists the bundles (the
/// Gogo shell answers before its command bundle has started).
pub fn start(home: &Path) -> Result<()> {
    let home = std::fs::canonicalize(home)?;
    if let Some(pid) = running(&home) {
        println!("node {} already runs (pid {pid})", home.display());
        return Ok(());
    }
    let (port, kind) = console_of(&home)?;
    std::fs::create_dir_all(home.join("run"))?;
    let log = std::fs::File::create(home.join("framework.log"))?;
    let mut cmd = command(&home, port, kind)?;
    cmd.stdout(log.try_clone()?).stderr(log);
    let pid = simkit::spawn_detached(&mut cmd)?;
    std::fs::write(pid_file(&home), pid.to_string())?;
    let up = simkit::wait_until(Duration::from_secs(60), || {
        !simkit::alive(pid) || bundles(port, kind).is_ok()
    });
    if !up || !simkit::alive(pid) {
        bail!(
            "the {} framework of {} did not open its console on port {port}: see {}",
            kind.name(),
            home.display(),
            home.join("framework.log").display()
        );
    }
    Ok(())
}

/// `node stop HOME`: shut the framework down from its console (`close` for Equinox, `stop 0`
/// for Felix), or kill it.
pub fn stop(home: &Path) -> Result<()> {
    let Some(pid) = running(home) else {
        return Ok(());
    };
    let (port, kind) = console_of(home)?;
    let _ = send(
        port,
        kind,
        if kind == Kind::Equinox {
            "close"
        } else {
            "stop 0"
        },
    );
    if !simkit::wait_until(Duration::from_secs(20), || !simkit::alive(pid)) {
        Command::new("kill")
            .args(["-9", &pid.to_string()])
            .status()?;
    }
    let _ = std::fs::remove_file(pid_file(home));
    Ok(())
}

/// Read from `conn` until `marker` arrives; what came before it.
fn read_until(conn: &mut TcpStream, marker: &str, until: Instant) -> Result<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if let Some(at) = String::from_utf8_lossy(&got).find(marker) {
            return Ok(String::from_utf8_lossy(&got).to_string()[..at].to_string());
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("the console did not show `{marker}` in time");
        }
        conn.set_read_timeout(Some(left))?;
        let n = conn.read(&mut buf)?;
        if n == 0 {
            bail!("the console closed the connection");
        }
        got.extend_from_slice(&buf[..n]);
    }
}

/// Run one command on the console at 127.0.0.1:`port`: what it printed, without `\r` and the
/// prompt (an empty command only checks that the console answers).
pub fn send(port: u16, kind: Kind, command: &str) -> Result<String> {
    let until = Instant::now() + Duration::from_secs(60);
    let mut conn = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("no OSGi console on 127.0.0.1:{port}"))?;
    read_until(&mut conn, kind.prompt(), until)?;
    if command.is_empty() {
        return Ok(String::new());
    }
    conn.write_all(format!("{command}\r\n").as_bytes())?;
    // `close` ends the framework: there is no prompt after it.
    if command == "close" {
        return Ok(String::new());
    }
    Ok(read_until(&mut conn, kind.prompt(), until)?.replace('\r', ""))
}

/// One installed bundle.
pub use cutover_sdk::osgi::Bundle as Row;

/// The installed bundles, from the console's own listing.
pub fn bundles(port: u16, kind: Kind) -> Result<Vec<Row>> {
    let command = kind.list_command();
    let answer = send(port, kind, command)?;
    let rows = kind.bundles(&answer);
    if rows.is_empty() {
        bail!("the framework answered `{command}` with: {answer}");
    }
    Ok(rows)
}

/// Install and start `jar`; its bundle id (`Bundle id is N` from Equinox, `Bundle ID: N`
/// from Felix).
pub fn install(port: u16, kind: Kind, jar: &Path) -> Result<u64> {
    let answer = send(port, kind, &format!("install file:{}", jar.display()))?;
    let Some(id) = cutover_sdk::osgi::installed_id(&answer) else {
        bail!("install {} answered: {answer}", jar.display());
    };
    send(port, kind, &format!("start {id}"))?;
    let started = bundles(port, kind)?
        .into_iter()
        .any(|r| r.id == id && r.is("active"));
    if !started {
        bail!("bundle {id} ({}) did not start", jar.display());
    }
    Ok(id)
}
