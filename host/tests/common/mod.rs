//! Helpers for end-to-end tests: build the real plugins and simulators once, run the real
//! `cutover` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod hostile;
#[allow(unused_imports)]
pub use simkit::sshd;

/// What the fleet-step fixture records in a clean run of two targets, one at a time.
pub const FLEET_FIXTURE_RUN: [&str; 7] = [
    "prepare (fleet of 2)",
    "update t1",
    "update t2",
    "switch (fleet of 2)",
    "announce (fleet of 2)",
    "cleanup t1",
    "cleanup t2",
];

/// A spec running the fleet-step fixture one target at a time with `strategy` (and its
/// `[strategy.params]` lines), the fixture writing into `dir` (granted read-write);
/// `adapter` lines go under `[adapter]`, `params` lines under `[adapter.params]`. Targets
/// are the caller's to add.
pub fn fleet_fixture_spec(
    strategy: &str,
    strategy_params: &str,
    adapter: &str,
    params: &str,
    dir: &Path,
) -> String {
    format!(
        "[rollout]\nconcurrency = 1\n[strategy]\nplugin = \"{s}\"\n[strategy.params]\n{strategy_params}\n\
         [adapter]\nplugin = \"{a}\"\n{adapter}\n[adapter.params]\ndir = \"{d}\"\n{params}\n\
         [grants]\ndirs = [{{ path = \"{d}\", access = \"read-write\" }}]\n",
        s = plugins().join(format!("{strategy}.wasm")).display(),
        a = fixtures().join("fleet_fixture.wasm").display(),
        d = dir.display(),
    )
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// Build the plugins (release, wasm32-wasip2) once per test binary; their folder.
pub fn plugins() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_wasm("plugins", "the plugins"))
        .clone()
}

/// Build the test fixtures of `host/tests/fixtures` (noop-adapter, hostile-adapter,
/// fleet-fixture, bad-strategy: release, wasm32-wasip2) once per test binary; their folder.
pub fn fixtures() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_wasm("host/tests/fixtures", "the test fixtures"))
        .clone()
}

/// Where the tests build `name` (`plugins`, `fixtures`, `simulators`): under
/// `$CARGO_TARGET_DIR/<name>` when the tests run with one, else `default` in the repository.
fn build_dir(name: &str, default: &str) -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => PathBuf::from(d).join(name),
        None => root().join(default),
    }
}

/// Build the wasm32-wasip2 workspace at `folder` (relative to the repository root) in
/// release; the folder of its `.wasm` files.
fn build_wasm(folder: &str, what: &str) -> PathBuf {
    let name = Path::new(folder).file_name().unwrap().to_str().unwrap();
    let target = build_dir(name, &format!("{folder}/target"));
    // From inside the workspace, so its .cargo/config.toml (link flags) applies.
    let status = Command::new(cargo())
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(root().join(folder))
        .status()
        .expect("cargo runs");
    assert!(
        status.success(),
        "building {what} failed (is the target installed? `rustup target add wasm32-wasip2`)"
    );
    target.join("wasm32-wasip2/release")
}

/// Build a simulator binary of `package` once; its path.
pub fn simulator(package: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let dir = build_dir("simulators", "target/simulators");
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap();
    if !built.iter().any(|p| p == package) {
        let status = Command::new(cargo())
            .args(["build", "-p", package, "--target-dir"])
            .arg(&dir)
            .current_dir(root())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {package} failed");
        built.push(package.to_string());
    }
    dir.join("debug").join(package)
}

/// The `cutover` binary under test.
pub fn cutover() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cutover"))
}

/// Run `cutover --journal <journal> args...`.
pub fn run(journal: &Path, args: &[&str]) -> Output {
    Command::new(cutover())
        .arg("--journal")
        .arg(journal)
        .args(args)
        .output()
        .expect("cutover runs")
}

/// Text of stdout + stderr.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `cutover status ID --json` parsed.
pub fn status_json(journal: &Path, id: i64) -> serde_json::Value {
    let o = run(journal, &["status", &id.to_string(), "--json"]);
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("status json: {e}: {}", text(&o)))
}

/// A fleet built by a product simulator in a temp dir (`<sim> fleet DIR args... --plugins
/// DIR`), with its `rollout.toml` and a journal beside it; `<sim> teardown DIR` when dropped.
pub struct SimFleet {
    pub dir: tempfile::TempDir,
    sim: PathBuf,
    /// Added to the environment of every `cutover` this fleet runs.
    envs: Vec<(String, String)>,
}

impl SimFleet {
    /// Build the simulator `package` and a fleet with it.
    pub fn build(package: &str, args: &[&str]) -> SimFleet {
        let plugins = plugins();
        let sim = simulator(package);
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new(&sim)
            .arg("fleet")
            .arg(dir.path())
            .args(args)
            .arg("--plugins")
            .arg(&plugins)
            .output()
            .expect("the simulator runs");
        assert!(o.status.success(), "{}", text(&o));
        SimFleet {
            dir,
            sim,
            envs: Vec::new(),
        }
    }

    /// Run every `cutover` of this fleet with `key=value` in its environment.
    pub fn with_env(mut self, key: &str, value: &str) -> SimFleet {
        self.envs.push((key.to_string(), value.to_string()));
        self
    }

    /// The fleet's folder, as the simulator wrote it into the spec.
    pub fn path(&self) -> PathBuf {
        std::fs::canonicalize(self.dir.path()).unwrap()
    }

    /// The spec the simulator wrote.
    pub fn spec(&self) -> String {
        self.path().join("rollout.toml").display().to_string()
    }

    pub fn journal(&self) -> PathBuf {
        self.path().join("journal.db")
    }

    /// Replace the first `from` in the spec (which must have it) with `to`.
    pub fn set_spec(&self, from: &str, to: &str) {
        let p = self.path().join("rollout.toml");
        let s = std::fs::read_to_string(&p).unwrap();
        assert!(s.contains(from), "spec has no {from}");
        std::fs::write(&p, s.replacen(from, to, 1)).unwrap();
    }

    /// `cutover --journal <journal> args...`.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(cutover())
            .arg("--journal")
            .arg(self.journal())
            .args(args)
            .envs(self.envs.iter().cloned())
            .output()
            .expect("cutover runs")
    }

    /// `cutover plugin test` of the built plugin `wasm` on this fleet's spec; asserts every
    /// check passed and returns the report.
    pub fn conformance(&self, wasm: &str, extra: &[&str]) -> String {
        let plugin = plugins().join(wasm);
        let mut args = vec!["plugin", "test", plugin.to_str().unwrap(), "--spec"];
        let spec = self.spec();
        args.push(&spec);
        args.extend_from_slice(extra);
        let o = self.run(&args);
        let out = text(&o);
        assert!(o.status.success(), "{wasm} failed conformance:\n{out}");
        assert!(out.contains("PASSED"), "{out}");
        out
    }

    /// `cutover run SPEC` in the background (to kill or abort it).
    pub fn spawn_run(&self) -> std::process::Child {
        Command::new(cutover())
            .arg("--journal")
            .arg(self.journal())
            .args(["run", &self.spec()])
            .envs(self.envs.iter().cloned())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    }
}

impl Drop for SimFleet {
    fn drop(&mut self) {
        let _ = Command::new(&self.sim)
            .arg("teardown")
            .arg(self.dir.path())
            .output();
    }
}

/// What a node-sim node's server answers on `/health` (`version X ok`), or `down`.
pub fn node_health(node: &Path) -> String {
    let port: u16 = std::fs::read_to_string(node.join("port"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return "down".into();
    };
    let _ = write!(s, "GET /health HTTP/1.1\r\n\r\n");
    let mut t = String::new();
    let _ = s.read_to_string(&mut t);
    t.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// The lines of a file (none when it is missing).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Wait until `cond` holds; panics naming `what` after `limit`.
pub fn wait_for(what: &str, limit: std::time::Duration, mut cond: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + limit;
    while !cond() {
        assert!(
            std::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// Steps the journal shows in flight in rollout 1: (target, step).
pub fn in_flight(journal: &Path) -> Vec<(String, String)> {
    let o = run(journal, &["status", "1", "--json"]);
    let Ok(s) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else {
        return Vec::new();
    };
    s["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .filter(|x| x["state"] == "started")
                .map(|x| {
                    (
                        x["target"].as_str().unwrap().to_string(),
                        x["step"].as_str().unwrap().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// How long a `cutover` command may run before a test kills it and fails.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(60);

/// `cutover --journal <journal> args...` with `envs` added to its environment, killed (and
/// the test failed) if it is still running after `limit`.
pub fn run_with_timeout(
    journal: &Path,
    args: &[&str],
    envs: &[(String, String)],
    limit: std::time::Duration,
) -> Output {
    let mut child = spawn(
        journal,
        args,
        envs,
        std::process::Stdio::piped(),
        std::process::Stdio::piped(),
    );
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let status = wait_exit(&mut child, limit);
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        let (out, err) = (out.join().unwrap(), err.join().unwrap());
        panic!(
            "`cutover {}` was still running after {limit:?} (killed):\n{}{}",
            args.join(" "),
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(&err)
        );
    };
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// `cutover --journal <journal> args...` with `envs`, within [`DEADLINE`].
pub fn run_env(journal: &Path, args: &[&str], envs: &[(String, String)]) -> Output {
    run_with_timeout(journal, args, envs, DEADLINE)
}

/// Start `cutover --journal <journal> args...` with `envs` added to its environment.
pub fn spawn(
    journal: &Path,
    args: &[&str],
    envs: &[(String, String)],
    stdout: std::process::Stdio,
    stderr: std::process::Stdio,
) -> std::process::Child {
    Command::new(cutover())
        .arg("--journal")
        .arg(journal)
        .args(args)
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("cutover runs")
}

/// Wait for `child` to exit within `limit`; none if it is still running.
pub fn wait_exit(
    child: &mut std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::ExitStatus> {
    let until = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("waiting for cutover") {
            return Some(status);
        }
        if std::time::Instant::now() >= until {
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Ids of live processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == std::process::id() {
            continue;
        }
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        // A zombie has an empty command line: it no longer runs.
        if String::from_utf8_lossy(&cmdline).contains(marker) {
            found.push(pid);
        }
    }
    found
}

/// Every row of every table of the journal, each column as text: what a reader of the
/// file could see.
pub fn journal_dump(journal: &Path) -> String {
    use rusqlite::types::ValueRef;
    let c = rusqlite::Connection::open(journal).expect("journal opens");
    let tables: Vec<String> = c
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut out = String::new();
    for t in tables {
        let mut st = c.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            out.push_str(&t);
            for i in 0..n {
                out.push('|');
                match row.get_ref(i).unwrap() {
                    ValueRef::Null => {}
                    ValueRef::Integer(v) => out.push_str(&v.to_string()),
                    ValueRef::Real(v) => out.push_str(&v.to_string()),
                    ValueRef::Text(v) | ValueRef::Blob(v) => {
                        out.push_str(&String::from_utf8_lossy(v))
                    }
                }
            }
            out.push('\n');
        }
    }
    out
}

/// Rows of a query on the journal, each column as text (NULL as "").
pub fn journal_query(journal: &Path, sql: &str) -> Vec<Vec<String>> {
    use rusqlite::types::ValueRef;
    let c = rusqlite::Connection::open(journal).expect("journal opens");
    let mut st = c.prepare(sql).unwrap();
    let n = st.column_count();
    let mut rows = st.query([]).unwrap();
    let mut out = Vec::new();
    while let Some(row) = rows.next().unwrap() {
        out.push(
            (0..n)
                .map(|i| match row.get_ref(i).unwrap() {
                    ValueRef::Null => String::new(),
                    ValueRef::Integer(v) => v.to_string(),
                    ValueRef::Real(v) => v.to_string(),
                    ValueRef::Text(v) | ValueRef::Blob(v) => {
                        String::from_utf8_lossy(v).into_owned()
                    }
                })
                .collect(),
        );
    }
    out
}

/// A value unlikely to appear anywhere by chance, starting with `prefix`.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}
