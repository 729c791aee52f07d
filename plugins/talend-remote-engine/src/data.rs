//! The engine's data: copy it into the new installation and point its recorded paths there.

use crate::Engine;
use cutover_sdk::{files, info, output, rewrite, warn};
use cutover_sdk::{Call, Output, Result};

/// Step 5: `data/dsrunner` and `data/cls` into the new installation (copied, never moved).
pub fn copy_data(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let mut outputs = Vec::new();
    for sub in ["dsrunner", "cls"] {
        let from = e.old.join("data").join(sub);
        let stats = files::copy_tree(&from, &e.new.join("data").join(sub))?;
        info!(
            "copied {}: {} files, {} folders, {} bytes",
            from.display(),
            stats.files,
            stats.dirs,
            stats.bytes
        );
        outputs.push(output(&format!("{sub}-files"), stats.files.to_string()));
        outputs.push(output(&format!("{sub}-bytes"), stats.bytes.to_string()));
    }
    Ok(outputs)
}

/// Step 6: move the install-root prefix of the two path fields to the new root.
pub fn rewrite_paths(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let (old, new) = (e.old.display().to_string(), e.new.display().to_string());
    let jobs = [
        (
            e.new.join("data/dsrunner/exec/osgi"),
            "artifactFile",
            ".metadata",
        ),
        (e.new.join("data/cls"), "currentFilePath", "-state.dat"),
    ];
    let mut outputs = Vec::new();
    for (dir, field, suffix) in jobs {
        let found = files::find(&dir, &|name| name.ends_with(suffix))?;
        let (mut changed, mut already, mut foreign) = (0, 0, 0);
        for (n, path) in found.iter().enumerate() {
            if n % 50 == 0 {
                cutover_sdk::progress(
                    &format!(
                        "rewriting {field} in {} ({n}/{})",
                        dir.display(),
                        found.len()
                    ),
                    Some(n as f32 / found.len().max(1) as f32),
                );
            }
            let text = files::read_string(path)?;
            let r = rewrite::field_prefix(&text, field, &old, &new);
            if r.rewritten > 0 {
                files::write_atomic(path, r.text.as_bytes())?;
                changed += 1;
            }
            already += usize::from(r.rewritten == 0 && r.already > 0);
            for v in &r.foreign {
                foreign += 1;
                warn!(
                    "{}: {field} {v} is under neither install root; left as it is",
                    path.display()
                );
            }
        }
        info!("{field}: {} files, {changed} rewritten, {already} already pointing at the new root, {foreign} left alone", found.len());
        outputs.push(output(&format!("{field}-rewritten"), changed.to_string()));
        outputs.push(output(&format!("{field}-already"), already.to_string()));
    }
    Ok(outputs)
}
