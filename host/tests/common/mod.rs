//! Helpers for end-to-end tests: build the real plugins and simulators once, run the real
//! `cutover` binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

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
    DIR.get_or_init(|| {
        // From inside plugins/, so its .cargo/config.toml (link flags) applies.
        let status = Command::new(cargo())
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .current_dir(root().join("plugins"))
            .status()
            .expect("cargo runs");
        assert!(
            status.success(),
            "building the plugins failed (is the target installed? `rustup target add wasm32-wasip2`)"
        );
        root().join("plugins/target/wasm32-wasip2/release")
    })
    .clone()
}

/// Build a simulator binary of `package` once; its path.
pub fn simulator(package: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<String>>> = OnceLock::new();
    let dir = root().join("target/simulators");
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
