//! The engine's data: copy it into the new installation and point its recorded paths there.

use crate::Engine;
use cutover_sdk::{fail, files, info, output, rewrite, warn};
use cutover_sdk::{Call, Output, Result};

/// The files of each data folder whose recorded paths step 6 moves: the folder, the file
/// name suffix and the JSON field.
const RECORDED: [(&str, &str, &str); 2] = [
    ("dsrunner", ".metadata", "artifactFile"),
    ("cls", "-state.dat", "currentFilePath"),
];

/// Step 5: `data/dsrunner` and `data/cls` into the new installation (copied, never moved).
/// The copy already points the compactly written path values at the new root as it writes
/// them, so step 6 mostly checks instead of writing every file a second time.
pub fn copy_data(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let (old, new) = (e.old.display().to_string(), e.new.display().to_string());
    let mut outputs = Vec::new();
    for (sub, suffix, field) in RECORDED {
        let from = e.old.join("data").join(sub);
        let substitutions: Vec<files::Substitution> =
            rewrite::prefix_substitutions(field, &old, &new)
                .unwrap_or_default()
                .into_iter()
                .map(|(from, to)| files::Substitution {
                    name_suffix: suffix.to_string(),
                    from,
                    to,
                })
                .collect();
        let done = files::copy_substituting(&from, &e.new.join("data").join(sub), &substitutions)?;
        let stats = done.copied;
        info!(
            "copied {}: {} files, {} folders, {} bytes; {} {suffix} file(s) pointed at the new root",
            from.display(),
            stats.files,
            stats.dirs,
            stats.bytes,
            done.substituted
        );
        outputs.push(output(&format!("{sub}-files"), stats.files.to_string()));
        outputs.push(output(&format!("{sub}-bytes"), stats.bytes.to_string()));
    }
    Ok(outputs)
}

/// Step 6: move the install-root prefix of the two path fields to the new root. The
/// `.metadata` files are looked for in `data/dsrunner/exec/osgi` (the procedure's text) and
/// `data/dsrunner/osgi` (its own example). Task folders with nothing rewritten, or paths under
/// neither root, fail the step: the new engine would not find those tasks.
pub fn rewrite_paths(c: &Call) -> Result<Vec<Output>> {
    let e = Engine::called(c)?;
    let (old, new) = (e.old.display().to_string(), e.new.display().to_string());
    let [(_, metadata, artifact), (_, state, current)] = RECORDED;
    let jobs = [
        (
            vec![
                e.new.join("data/dsrunner/exec/osgi"),
                e.new.join("data/dsrunner/osgi"),
            ],
            artifact,
            metadata,
        ),
        (vec![e.new.join("data/cls")], current, state),
    ];
    let mut outputs = Vec::new();
    let mut problems = Vec::new();
    for (dirs, field, suffix) in jobs {
        let mut found = Vec::new();
        for dir in dirs.iter().filter(|d| d.is_dir()) {
            found.extend(files::find(dir, &|name| name.ends_with(suffix))?);
        }
        let (mut changed, mut already, mut foreign) = (0, 0, Vec::new());
        let mut untouched = 0;
        for (n, path) in found.iter().enumerate() {
            if n % 200 == 0 {
                cutover_sdk::progress(
                    &format!("rewriting {field} ({n}/{})", found.len()),
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
            untouched += usize::from(r.rewritten == 0 && r.already == 0);
            foreign.extend(r.foreign.iter().map(|v| format!("{}: {v}", path.display())));
        }
        info!("{field}: {} files, {changed} rewritten, {already} already pointing at the new root, {} under neither root", found.len(), foreign.len());
        if !foreign.is_empty() {
            // One line for them all, however many: the first few name the files.
            warn!(
                "{field}: {} value(s) under neither install root, e.g. {}",
                foreign.len(),
                foreign
                    .iter()
                    .take(3)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            problems.push(format!(
                "{} {field} value(s) point under neither {old} nor {new}",
                foreign.len()
            ));
        } else if untouched > 0 {
            problems.push(format!(
                "{untouched} {suffix} file(s) have no `{field}` to point at the new root"
            ));
        }
        let task_dirs = dirs
            .iter()
            .flat_map(|d| std::fs::read_dir(d).into_iter().flatten())
            .filter_map(|x| x.ok())
            .filter(|x| x.path().is_dir())
            .count();
        if suffix == ".metadata" && task_dirs > 0 && changed + already == 0 {
            problems.push(format!(
                "{task_dirs} task folder(s) under data/dsrunner, but no .metadata was rewritten or already right"
            ));
        }
        outputs.push(output(&format!("{field}-rewritten"), changed.to_string()));
        outputs.push(output(&format!("{field}-already"), already.to_string()));
    }
    if problems.is_empty() {
        Ok(outputs)
    } else {
        Err(fail(format!(
            "the new engine would not find all its tasks: {}",
            problems.join("; ")
        ))
        .keep(outputs))
    }
}
