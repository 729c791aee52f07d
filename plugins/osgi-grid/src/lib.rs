//! `osgi-grid`: update the plugin bundle of an OSGi data grid (WebSphere eXtreme Scale
//! style) live, by service ranking, as IBM documents it.
//!
//! Per node (in the strategy's waves): `copy-bundle` to the node, `install` it in the node's
//! OSGi framework (the bundle id is kept), `start` it. Grid-wide, once: `check-grid`
//! (`osgiAll` shows the new rankings on every server, then `osgiCheck`), `suspend-balancing`
//! for every grid/map set, `update` (`osgiCheck` again, `osgiUpdate`, the reported rankings
//! checked), `resume-balancing`. Then per node: `remove-old` stops and uninstalls the old
//! bundle.
//!
//! Balancing is resumed on every way out of the suspended state: `resume-balancing`, or the
//! undo of `suspend-balancing` when anything fails (the host undoes it on rollback, also
//! after a crash). A failure before or during the update leaves the old rankings active (a
//! failed `osgiUpdate` rolls itself back) and the undo of `start`/`install`/`copy-bundle`
//! stops and uninstalls the new bundles again.
//!
//! Parameters: `bundles` (folder holding the new bundle), `bundle` (its file in that
//! folder), `framework` (`equinox` or `felix`), `xscmd` and its connection options
//! (`catalog-endpoints`, `xscmd-user`, `password-secret`), `map-sets` (optional: checked
//! against what `osgiCurrent` shows); per target: `home` (the node's folder, whose `bundles/`
//! receives the copy) and `console` (`host:port` of the framework's remote console).

mod bundle;
mod console;
mod grid;
mod xscmd;

use console::Console;
use cutover_sdk::jar::compare_versions;
use cutover_sdk::params::{declare, get, label};
use cutover_sdk::{fail, files, info, output, preflight, warn};
use cutover_sdk::{
    About, Access, Call, Cap, Capability, Finding, Output, Pair, PreflightContext, Result,
    Severity, StepDef, StepKind, Target,
};
use std::cmp::Ordering;
use std::path::PathBuf;

struct OsgiGrid;

/// The new bundle on the controller.
fn bundle_path(params: &[Pair]) -> Result<PathBuf, String> {
    let name = get(params, "bundle").ok_or("parameter `bundle` is required")?;
    let p = PathBuf::from(name);
    Ok(if p.is_absolute() {
        p
    } else {
        PathBuf::from(get(params, "bundles").unwrap_or_default()).join(p)
    })
}

/// The new bundle's path and what its jar says.
fn read_bundle(params: &[Pair]) -> Result<(PathBuf, bundle::Bundle), String> {
    let path = bundle_path(params)?;
    let bytes = std::fs::read(&path).map_err(|e| files::io_error("reading", &path, e).message)?;
    let b = bundle::read(&bytes).map_err(|e| format!("bundle {}: {e}", path.display()))?;
    Ok((path, b))
}

/// Where a node keeps its copy of the bundle.
fn copy_of(t: &Target, params: &[Pair]) -> Result<PathBuf> {
    let file = bundle_path(params)?
        .file_name()
        .map(|f| f.to_os_string())
        .ok_or_else(|| fail("parameter `bundle` names no file"))?;
    Ok(PathBuf::from(label(t, "home")?).join("bundles").join(file))
}

fn id_output(c: &Call, key: &str) -> Option<u64> {
    c.output(key).and_then(|v| v.parse().ok())
}

/// The target of a per-node call and its console; without a target the error says the
/// step `what` (e.g. "is a target step").
fn node<'a>(c: &'a Call, what: &str) -> Result<(&'a Target, Console)> {
    let t = c
        .target
        .as_ref()
        .ok_or_else(|| fail(format!("`{}` {what}", c.step)))?;
    Ok((t, Console::of(t, c.params())?))
}

/// `copy-bundle`: write the new bundle into the node's `bundles/`.
fn copy_bundle(c: &Call) -> Result<Vec<Output>> {
    let (t, _) = node(c, "is a target step")?;
    let from = bundle_path(c.params())?;
    let bytes = std::fs::read(&from).map_err(|e| files::io_error("reading", &from, e))?;
    let to = copy_of(t, c.params())?;
    files::write_atomic(&to, &bytes)?;
    Ok(vec![output("copy", to.display().to_string())])
}

/// Undo of `copy-bundle`: remove the copy (already gone is fine).
fn remove_copy(c: &Call) -> Result<()> {
    let (t, _) = node(c, "has no undo for the fleet")?;
    let copy = copy_of(t, c.params())?;
    match std::fs::remove_file(&copy) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(files::io_error("removing", &copy, e))
        }
        _ => Ok(()),
    }
}

/// `install`: install the copy in the node's framework (once: a re-run finds it), noting the
/// new bundle id and the old ones.
fn install(c: &Call) -> Result<Vec<Output>> {
    let (t, console) = node(c, "is a target step")?;
    let (_, b) = read_bundle(c.params())?;
    let present = console.find(&b.symbolic_name)?;
    let old: Vec<String> = present
        .iter()
        .filter(|i| i.version != b.version)
        .map(|i| i.id.to_string())
        .collect();
    let id = match present.iter().find(|i| i.version == b.version) {
        Some(i) => {
            warn!(
                "{} {} is already installed as bundle {} (a re-run)",
                b.symbolic_name, b.version, i.id
            );
            i.id
        }
        None => {
            let url = format!("file:{}", copy_of(t, c.params())?.display());
            console.install(&url)?
        }
    };
    info!("{}: bundle {id} is {} {}", t.id, b.symbolic_name, b.version);
    Ok(vec![
        output("bundle-id", id.to_string()),
        output("old-ids", old.join(",")),
    ])
}

/// Undo of `install`: uninstall the new bundle if it is still there.
fn uninstall(c: &Call) -> Result<()> {
    let (_, console) = node(c, "has no undo for the fleet")?;
    let Some(id) = id_output(c, "bundle-id") else {
        return Ok(());
    };
    match console.get(id)? {
        Some(_) => console.change("uninstall", id, None),
        None => Ok(()),
    }
}

/// `start`: start the new bundle; the grid's service tracker sees its rankings.
fn start(c: &Call) -> Result<Vec<Output>> {
    let (_, console) = node(c, "is a target step")?;
    let id = id_output(c, "bundle-id").ok_or_else(|| fail("no bundle-id from `install`"))?;
    console.change("start", id, Some("active"))?;
    Ok(vec![])
}

/// Undo of `start`: stop the new bundle if it is active.
fn stop(c: &Call) -> Result<()> {
    let (_, console) = node(c, "has no undo for the fleet")?;
    let Some(id) = id_output(c, "bundle-id") else {
        return Ok(());
    };
    match console.get(id)? {
        Some(b) if b.is("active") => console.change("stop", id, Some("resolved")),
        _ => Ok(()),
    }
}

/// `remove-old`: stop and uninstall the old bundles `install` noted (those still there).
fn remove_old(c: &Call) -> Result<Vec<Output>> {
    let (t, console) = node(c, "is a target step")?;
    for id in c
        .output("old-ids")
        .unwrap_or_default()
        .split(',')
        .filter_map(|i| i.parse::<u64>().ok())
    {
        if console.get(id)?.is_some() {
            console.change("stop", id, Some("resolved"))?;
            console.change("uninstall", id, None)?;
            info!("{}: old bundle {id} stopped and uninstalled", t.id);
        }
    }
    Ok(vec![])
}

/// The grid-wide steps: idempotent, 600 s.
const GRID: StepDef = StepDef {
    idempotent: true,
    timeout_s: 600,
    ..StepDef::FLEET
};

/// The per-node steps: idempotent (their undos too), 120 s.
const NODE: StepDef = StepDef {
    idempotent: true,
    undo_idempotent: true,
    timeout_s: 120,
    ..StepDef::TARGET
};

impl cutover_sdk::Adapter for OsgiGrid {
    fn about() -> About {
        let p = declare;
        About {
            name: "osgi-grid",
            version: env!("CARGO_PKG_VERSION"),
            summary: "live update of an OSGi data grid's plugin bundle by service ranking",
            parameters: vec![
                p(
                    "bundles",
                    "folder holding the new bundle",
                    true,
                    false,
                    None,
                ),
                p(
                    "bundle",
                    "the new bundle jar (a file in `bundles`)",
                    true,
                    false,
                    None,
                ),
                p(
                    "framework",
                    "the nodes' OSGi framework, whose console is spoken: equinox or felix",
                    false,
                    false,
                    Some("equinox"),
                ),
                p("xscmd", "the xscmd program", true, false, None),
                p(
                    "catalog-endpoints",
                    "xscmd -cep: the catalog service endpoints (host:port,...)",
                    false,
                    false,
                    None,
                ),
                p("xscmd-user", "xscmd -user", false, false, None),
                p(
                    "password-secret",
                    "the secret holding xscmd's -pwd",
                    false,
                    false,
                    None,
                ),
                p(
                    "map-sets",
                    "the grid/map sets the update affects (Grid/MapSet,...); default: those osgiCurrent shows using the bundle's services",
                    false,
                    false,
                    None,
                ),
                p(
                    "home",
                    "the node's folder: bundles/ receives the new bundle",
                    true,
                    true,
                    None,
                ),
                p(
                    "console",
                    "host:port of the node's OSGi console (Equinox -console, Felix Gogo telnetd)",
                    true,
                    true,
                    None,
                ),
            ],
            capabilities: vec![
                Cap::Dir("{bundles}", Access::Read).capability(),
                Cap::Dir("{home}/bundles", Access::ReadWrite).capability(),
                Cap::Tcp("{console}").capability(),
                Capability::Exec("{xscmd}".into()),
                Capability::Secret("{password-secret?}".into()),
            ],
            leases: vec!["{home}/.cutover-lease".into()],
        }
    }

    const STEPS: &'static [StepDef] = &[
        StepDef {
            name: "copy-bundle",
            about: "copy the new bundle to the node",
            run: copy_bundle,
            undo: Some(remove_copy),
            ..NODE
        },
        StepDef {
            name: "install",
            about: "install it in the node's OSGi framework",
            run: install,
            undo: Some(uninstall),
            ..NODE
        },
        StepDef {
            name: "start",
            about: "start it: the grid's service tracker sees its rankings",
            run: start,
            undo: Some(stop),
            ..NODE
        },
        StepDef {
            name: "check-grid",
            about: "osgiAll shows the new rankings on every server; osgiCheck",
            run: grid::check_grid,
            ..GRID
        },
        StepDef {
            name: "suspend-balancing",
            about: "suspendBalancing for every grid/map set",
            run: grid::suspend,
            undo: Some(grid::unsuspend),
            undo_idempotent: true,
            ..GRID
        },
        // Going back is the undo of `suspend-balancing`: it knows the rankings before.
        StepDef {
            name: "update",
            about: "osgiCheck again, osgiUpdate, check the reported rankings",
            run: grid::update,
            ..GRID
        },
        StepDef {
            name: "resume-balancing",
            about: "resumeBalancing for every grid/map set",
            run: grid::resume,
            ..GRID
        },
        StepDef {
            name: "remove-old",
            about: "stop and uninstall the old bundle",
            kind: StepKind::TargetFinalize,
            run: remove_old,
            ..NODE
        },
    ];

    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        let params = ctx.params;
        let mut findings = Vec::new();
        let mut block =
            |target: Option<&str>, m: String| findings.push(preflight::blocker(target, m));
        let (path, b) = read_bundle(&params).map_err(preflight::refuse)?;
        let shown = path.display().to_string();
        if let Err(e) = compare_versions(&b.version, "0") {
            block(None, format!("bundle {shown}: Bundle-Version: {e}"));
        }
        if b.services.is_empty() {
            block(None, format!("bundle {shown} publishes no service (no Service-Component with a service.ranking): nothing to update"));
        }
        let rows = match xscmd::current(&params, &[]) {
            Ok(rows) => rows,
            Err(e) => {
                let hint = if e.message.contains("JAVA_HOME") {
                    " (xscmd needs JAVA_HOME: pass it with [grants] pass-env = [\"JAVA_HOME\"])"
                } else {
                    ""
                };
                block(
                    None,
                    format!("the grid's active rankings: {}{hint}", e.message),
                );
                Vec::new()
            }
        };
        let mut grid_services = std::collections::BTreeSet::new();
        for (svc, r, file) in &b.services {
            let mut seen = std::collections::BTreeSet::new();
            for row in rows.iter().filter(|row| row.service == *svc) {
                grid_services.insert(svc.clone());
                if !seen.insert((row.grid.clone(), row.map_set.clone())) {
                    continue;
                }
                let (now, g, ms) = (row.ranking, &row.grid, &row.map_set);
                match r.parse::<i64>() {
                    Err(_) => block(None, format!("bundle {shown}: service {svc} ({file}) has service.ranking `{r}`: OSGi service rankings must be integers")),
                    Ok(new) if new <= now => block(None, format!("bundle {shown}: service {svc} has ranking {new}, not higher than the active {now} in {g}/{ms}: raise it")),
                    Ok(_) => {}
                }
            }
        }
        if !rows.is_empty() {
            for (svc, _, file) in &b.services {
                if !grid_services.contains(svc) {
                    findings.push(preflight::finding(
                        Severity::Warning,
                        None,
                        format!("bundle {shown}: service {svc} ({file}) is not a plugin service of the grid; it is left out of the update"),
                    ));
                }
            }
            match xscmd::affected(&params, &grid_services) {
                Ok(sets) => {
                    let shown: Vec<String> = sets
                        .iter()
                        .map(|s| format!("{} ({})", s.label(), s.services.join(", ")))
                        .collect();
                    findings.push(preflight::info(
                        None,
                        format!("map sets to suspend and update: {}", shown.join("; ")),
                    ));
                }
                Err(e) => findings.push(preflight::blocker(None, e.message)),
            }
        }
        for t in &targets {
            let installed = match Console::of(t, &params).and_then(|c| c.find(&b.symbolic_name)) {
                Ok(i) => i,
                Err(e) => {
                    findings.push(preflight::blocker(Some(&t.id), e.message));
                    continue;
                }
            };
            let highest = installed
                .iter()
                .max_by(|x, y| compare_versions(&x.version, &y.version).unwrap_or(Ordering::Equal));
            let Some(current) = highest else {
                findings.push(preflight::blocker(
                    Some(&t.id),
                    format!("{} is not installed: nothing to update", b.symbolic_name),
                ));
                continue;
            };
            if let Ok(Ordering::Less | Ordering::Equal) =
                compare_versions(&b.version, &current.version)
            {
                findings.push(preflight::blocker(
                    Some(&t.id),
                    format!(
                        "bundle {shown}: Bundle-Version {} is not higher than the installed {} (bundle {}): raise Bundle-Version",
                        b.version, current.version, current.id
                    ),
                ));
            }
        }
        Ok(findings)
    }
}

cutover_sdk::export_adapter!(OsgiGrid);
