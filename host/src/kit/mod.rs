//! The plugin author's kit: `cutover plugin new` writes a ready crate, `cutover plugin test`
//! checks any plugin against the contract.

pub mod conformance;
pub mod template;

use crate::engine::Env;
use crate::journal::{Journal, Sync};
use crate::plugin::{Runtime, World};
use crate::redact::Redactor;
use crate::ui::{Quiet, Term, Ui};
use anyhow::{Context, Result};
use std::path::Path;
use std::sync::Arc;

/// `cutover plugin test PLUGIN [--spec SPEC]`: the exit code is 0 when every check passed.
pub async fn test(
    cache: &Path,
    plugin: &Path,
    spec: Option<&Path>,
    ignore: &[String],
    verbose: bool,
) -> Result<i32> {
    let runtime = Runtime::new(cache.to_path_buf())?;
    let (component, _, _) = runtime.component(plugin, None)?;
    let (world, v) = runtime
        .contract_of(&component)
        .map_err(|e| anyhow::anyhow!("{}: {e}", plugin.display()))?;
    println!(
        "conformance of {} (cutover:plugin {}.{}.{} {})",
        plugin.display(),
        v.0,
        v.1,
        v.2,
        match world {
            World::Adapter => "adapter",
            World::Strategy => "strategy",
        }
    );
    let spec = spec
        .map(|p| crate::spec::load(p).with_context(|| format!("reading {}", p.display())))
        .transpose()?;
    let mut report = conformance::Report::new(true);
    match world {
        World::Adapter => {
            // A journal of its own: plugin logs go there, nothing touches the operator's.
            let dir =
                std::env::temp_dir().join(format!("cutover-plugin-test-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let redact = Arc::new(Redactor::default());
            let journal = Journal::open(&dir.join("journal.db"), Sync::Normal)?;
            journal.set_redactor(redact.clone());
            let ui: Arc<dyn Ui> = if verbose {
                Arc::new(Term::new(redact.clone(), true))
            } else {
                Arc::new(Quiet)
            };
            let env = Env {
                runtime,
                journal: Arc::new(journal),
                ui,
                redact,
                away: Vec::new(),
                store: Arc::new(crate::store::Store::open(&dir.join("plugins"))?),
            };
            let r = conformance::adapter(&env, plugin, spec, ignore, &mut report).await;
            drop(env);
            let _ = std::fs::remove_dir_all(&dir);
            r?;
        }
        World::Strategy => {
            let s = runtime.strategy(plugin, None, 256 << 20)?;
            let params: Vec<crate::plugin::model::Pair> = spec
                .map(|s| {
                    s.strategy
                        .params
                        .into_iter()
                        .map(|(key, value)| crate::plugin::model::Pair { key, value })
                        .collect()
                })
                .unwrap_or_default();
            conformance::strategy(&s, &params, &mut report).await;
        }
    }
    let failed = report.failures();
    println!(
        "{}: {} checks passed, {failed} failed",
        if failed == 0 { "PASSED" } else { "FAILED" },
        report.passes()
    );
    Ok(if failed == 0 { 0 } else { 1 })
}
