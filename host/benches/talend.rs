//! The Talend engine data move, printed, never asserted: `copy-data` plus `rewrite-paths` of
//! the `talend-remote-engine` adapter on one simulated engine of 6,000 tasks (timed from the
//! journal of a real `cutover run`), against the native script an operator would write (`cp
//! -a` of both folders, then `sed -i` on every `.metadata` and `*-state.dat`) on a tree
//! generated the same way, in the same run. Each tree is synced to disk before the clock
//! starts, so neither side pays for writing out the other's. Rounds alternate the two (`BENCH_ROUNDS`, default
//! 3, each on fresh trees) and the medians are compared: the machine is shared, and one round
//! can be slowed by anything else running.
//!
//! Needs the plugins built (see README); builds `talend-sim` into `target/simulators`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const TASKS: usize = 6000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `talend-sim`, built for the bench.
fn sim() -> PathBuf {
    let dir = root().join("target/simulators");
    let ok = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "talend-sim", "--target-dir"])
        .arg(&dir)
        .current_dir(root())
        .status()
        .unwrap()
        .success();
    assert!(ok, "building talend-sim failed");
    dir.join("release/talend-sim")
}

fn sh(script: &str) {
    let ok = Command::new("sh")
        .args(["-c", script])
        .status()
        .unwrap()
        .success();
    assert!(ok, "{script}");
}

/// Files under `dir`.
fn count(dir: &Path) -> usize {
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            n += count(&e.path());
        } else {
            n += 1;
        }
    }
    n
}

/// The native peer on `old` → `new`: copy both folders, rewrite both fields (both forms).
fn native(old: &Path, new: &Path) -> Duration {
    let (o, n) = (old.display().to_string(), new.display().to_string());
    let (ow, nw) = (o.replace('/', "\\\\\\\\"), n.replace('/', "\\\\\\\\"));
    let script = format!(
        "set -e; mkdir -p '{n}/data'; cp -a '{o}/data/dsrunner' '{o}/data/cls' '{n}/data/'; \
         find '{n}/data/dsrunner' -name .metadata -exec sed -i \
           -e 's#\"artifactFile\":\"{o}/#\"artifactFile\":\"{n}/#' \
           -e 's#\"artifactFile\":\"{ow}\\\\\\\\#\"artifactFile\":\"{nw}\\\\\\\\#' {{}} +; \
         find '{n}/data/cls' -name '*-state.dat' -exec sed -i \
           -e 's#\"currentFilePath\":\"{o}/#\"currentFilePath\":\"{n}/#' \
           -e 's#\"currentFilePath\":\"{ow}\\\\\\\\#\"currentFilePath\":\"{nw}\\\\\\\\#' {{}} +"
    );
    let t = Instant::now();
    sh(&script);
    t.elapsed()
}

/// One `cutover run` of a fresh one-engine fleet in `dir`: the files in data/ and how long
/// `copy-data` and `rewrite-paths` took, from the journal.
fn cutover_round(sim: &Path, plugins: &Path, dir: &Path) -> (usize, Duration, Duration) {
    let fleet = dir.join("fleet");
    let ok = Command::new(sim)
        .arg("fleet")
        .arg(&fleet)
        .args(["--engines", "1", "--tasks", &TASKS.to_string()])
        .args(["--port", "18990", "--unpair-wait", "0", "--plugins"])
        .arg(plugins)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "building the fleet failed");
    let engine = fleet.join("engines/re-01/Talend-RE-2.13.2");
    let files = count(&engine.join("data"));
    // The generated tree is written out before the clock starts, as for the native peer.
    sh("sync");
    let journal = dir.join("journal.db");
    let cutover = env!("CARGO_BIN_EXE_cutover");
    let run = Command::new(cutover)
        .arg("--journal")
        .arg(&journal)
        .arg("run")
        .arg(fleet.join("rollout.toml"))
        .output()
        .unwrap();
    let _ = Command::new(sim)
        .arg("teardown")
        .arg(&fleet)
        .stdout(std::process::Stdio::null())
        .status();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let status = Command::new(cutover)
        .arg("--journal")
        .arg(&journal)
        .args(["status", "1", "--json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let took = |step: &str| {
        let s = status["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == step && s["state"] == "ok")
            .unwrap_or_else(|| panic!("no {step} in the journal"));
        Duration::from_millis(
            (s["ended_ms"].as_i64().unwrap() - s["started_ms"].as_i64().unwrap()) as u64,
        )
    };
    (files, took("copy-data"), took("rewrite-paths"))
}

/// The native peer on a tree generated the same way, in `dir`.
fn native_round(sim: &Path, dir: &Path) -> Duration {
    let old = dir.join("Talend-RE-2.13.2");
    std::fs::create_dir_all(&old).unwrap();
    let ok = Command::new(sim)
        .arg("generate")
        .arg(&old)
        .args(["--tasks", &TASKS.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok);
    sh("sync");
    native(&old, &dir.join("Talend-RE-2.13.9"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let plugins = root().join("plugins/target/wasm32-wasip2/release");
    assert!(
        plugins.join("talend_remote_engine.wasm").exists(),
        "build the plugins first (see README)"
    );
    let rounds: usize = std::env::var("BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3)
        .max(1);
    let sim = sim();
    let s = |d: Duration| format!("{:.2} s", d.as_secs_f64());
    let (mut copies, mut rewrites, mut boths, mut natives) = (vec![], vec![], vec![], vec![]);
    let mut files = 0;
    for round in 1..=rounds {
        let dir = tempfile::tempdir().unwrap();
        let (n, copy, rewrite) = cutover_round(&sim, &plugins, &dir.path().join("cutover"));
        let native = native_round(&sim, &dir.path().join("peer"));
        files = n;
        println!(
            "round {round}/{rounds}: cutover {} (copy {}, rewrite {}), native {}",
            s(copy + rewrite),
            s(copy),
            s(rewrite),
            s(native)
        );
        copies.push(copy);
        rewrites.push(rewrite);
        boths.push(copy + rewrite);
        natives.push(native);
    }
    let (both, native) = (median(boths), median(natives));
    println!("one engine of {TASKS} tasks, {files} files in data/ (medians of {rounds} rounds):");
    println!("  cutover copy-data:        {}", s(median(copies)));
    println!("  cutover rewrite-paths:    {}", s(median(rewrites)));
    println!("  cutover both:             {}", s(both));
    println!("  native cp -a + sed -i:    {}", s(native));
    println!(
        "  ratio cutover / native:   {:.2}x (target <= 1.2x)",
        both.as_secs_f64() / native.as_secs_f64()
    );
}
