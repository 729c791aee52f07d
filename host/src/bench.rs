//! `cutover bench`: the figures the engine is held to — a warm plugin load, and a rollout of
//! many targets with a no-op adapter, durable journal included.

use crate::engine::{self, Env};
use crate::journal::{Journal, Status, Sync};
use crate::plugin::{CallEnv, NullSink, Runtime};
use crate::redact::Redactor;
use crate::ui::Quiet;
use anyhow::{bail, Result};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// Run the benchmarks with the plugins in `plugins` and print the figures.
pub async fn run(
    plugins: &Path,
    adapter: &Path,
    targets: usize,
    concurrency: usize,
) -> Result<i32> {
    let plugins = std::path::absolute(plugins)?;
    let adapter = std::path::absolute(adapter)?;
    let strategy = plugins.join("grouped.wasm");
    for p in [&adapter, &strategy] {
        if !p.exists() {
            bail!(
                "{} is missing: build the plugins first (see README)",
                p.display()
            );
        }
    }
    let dir = tempfile_dir()?;
    let rt = Runtime::new(dir.join("cache"))?;

    // Plugin load: cold compile, then warm loads from the precompiled cache.
    let t = Instant::now();
    rt.adapter(&adapter, None, 64 << 20)?;
    let cold = t.elapsed();
    let n = 200;
    let t = Instant::now();
    for _ in 0..n {
        rt.adapter(&adapter, None, 64 << 20)?;
    }
    let warm_load = t.elapsed() / n;
    let plugin = rt.adapter(&adapter, None, 64 << 20)?;
    let sink = Arc::new(NullSink);
    let t = Instant::now();
    for _ in 0..n {
        plugin
            .describe(CallEnv::bare("noop", Duration::from_secs(5), sink.clone()))
            .await?;
    }
    let call = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        plugin.store_only(CallEnv::bare("noop", Duration::from_secs(5), sink.clone()))?;
    }
    let store = t.elapsed() / n;
    let t = Instant::now();
    for _ in 0..n {
        plugin
            .instantiate_only(CallEnv::bare("noop", Duration::from_secs(5), sink.clone()))
            .await?;
    }
    let instantiate = t.elapsed() / n;
    println!(
        "plugin ({} KiB):",
        std::fs::metadata(&adapter)?.len() / 1024
    );
    println!("  fresh Store (WASI context, limits)      {}", ms(store));
    println!(
        "  fresh Store + instantiate               {}",
        ms(instantiate)
    );
    println!("  cold load (compile + cache write)       {}", ms(cold));
    println!(
        "  warm load (read + sha256 + deserialize + InstancePre)  {}",
        ms(warm_load)
    );
    println!(
        "  call (fresh Store + instantiate + describe)            {}",
        ms(call)
    );
    println!(
        "  warm load + instantiated call           {}",
        ms(warm_load + call)
    );

    // Rollout throughput.
    let mut spec = format!(
        "[rollout]\nname = \"bench\"\nconcurrency = {concurrency}\n[strategy]\nplugin = \"{}\"\n[strategy.params]\ngroup-size = \"25%\"\n[adapter]\nplugin = \"{}\"\n",
        strategy.display(),
        adapter.display()
    );
    for i in 0..targets {
        spec.push_str(&format!("[[targets]]\nid = \"t{i:05}\"\n"));
    }
    let spec_path = dir.join("bench.toml");
    std::fs::write(&spec_path, &spec)?;
    let runs = [
        ("first rollout of this process", Sync::Full),
        ("again, warm", Sync::Full),
        ("again, journal synchronous=NORMAL", Sync::Normal),
    ];
    for (n, (label, sync)) in runs.into_iter().enumerate() {
        let journal_path = dir.join(format!("journal-{n}.db"));
        let redact = Arc::new(Redactor::default());
        let env = Env {
            runtime: rt.clone(),
            journal: Arc::new(Journal::open(&journal_path, sync)?),
            ui: Arc::new(Quiet),
            redact,
            away: Vec::new(),
            store: Arc::new(crate::store::Store::open(&dir.join("plugins"))?),
        };
        let spec = crate::spec::parse(&spec_path, &spec)?;
        let steps = 6 * targets;
        let t = Instant::now();
        let out = engine::start(&env, spec).await?;
        let wall = t.elapsed();
        if out.status != Status::Completed {
            bail!(
                "bench rollout ended {}: {}",
                out.status.as_str(),
                out.reason
            );
        }
        let recorded = env.journal.steps(out.id)?.len();
        env.journal.close();
        println!(
            "rollout of {targets} targets x 6 steps, concurrency {concurrency}, {label}: {:.3} s wall ({:.0} steps/s, {recorded} step records)",
            wall.as_secs_f64(),
            steps as f64 / wall.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(0)
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("cutover-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
