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
//! folder), `xscmd`, `map-sets` (`Grid/MapSet,...`); per target: `home` (the node's folder:
//! `bin/console` is its framework's console, `bundles/` receives the copy).

mod bundle;
mod console;
mod xscmd;

use console::Console;
use cutover_sdk::adapter_types::*;
use cutover_sdk::describe::{dir, fleet_step, parameter, target_step};
use cutover_sdk::jar::compare_versions;
use cutover_sdk::params::{get, label, output};
use cutover_sdk::step::{fail, out};
use cutover_sdk::{files, log, preflight, progress};
use std::cmp::Ordering;
use std::collections::BTreeMap;
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

fn read_bundle(params: &[Pair]) -> Result<(PathBuf, bundle::Bundle), String> {
    let path = bundle_path(params)?;
    let bytes = std::fs::read(&path).map_err(|e| files::io_error("reading", &path, e).message)?;
    let b = bundle::read(&bytes).map_err(|e| format!("bundle {}: {e}", path.display()))?;
    Ok((path, b))
}

/// The rankings the update moves to: every grid service the bundle publishes (a service
/// `osgiCurrent` shows for a map set), as integers. Other services of the bundle are left out,
/// as preflight warns.
fn wanted(params: &[Pair]) -> Result<Vec<(String, i64)>, StepError> {
    let (path, b) = read_bundle(params).map_err(fail)?;
    let mut grid = std::collections::BTreeSet::new();
    for (g, ms) in xscmd::map_sets(params).map_err(fail)? {
        grid.extend(xscmd::current(params, &g, &ms)?.into_keys());
    }
    b.services
        .iter()
        .filter(|(svc, _, _)| grid.contains(svc))
        .map(|(svc, r, file)| {
            r.parse().map(|r| (svc.clone(), r)).map_err(|_| {
                fail(format!(
                    "bundle {}: service {svc} ({file}) has ranking `{r}`, not an integer",
                    path.display()
                ))
            })
        })
        .collect()
}

/// Where a node keeps its copy of the bundle.
fn copy_of(t: &Target, params: &[Pair]) -> Result<PathBuf, StepError> {
    let file = bundle_path(params)
        .map_err(fail)?
        .file_name()
        .map(|f| f.to_os_string())
        .ok_or_else(|| fail("parameter `bundle` names no file"))?;
    Ok(PathBuf::from(label(t, "home")?).join("bundles").join(file))
}

fn id_output(ctx: &StepContext, key: &str) -> Option<u64> {
    output(&ctx.outputs, key).and_then(|v| v.parse().ok())
}

/// `suspendBalancing` or `resumeBalancing` for every grid/map set.
fn balancing(params: &[Pair], command: &str) -> Result<(), StepError> {
    for (g, ms) in xscmd::map_sets(params).map_err(fail)? {
        xscmd::run_ok(params, &[command, "-g", &g, "-ms", &ms])?;
        log(Level::Info, &format!("{command} -g {g} -ms {ms}: done"));
    }
    Ok(())
}

/// The active rankings of the services the update moves, as `-sr` takes them.
fn active_of(wanted: &[(String, i64)], active: &BTreeMap<String, i64>) -> String {
    let rankings: Vec<(String, i64)> = wanted
        .iter()
        .filter_map(|(svc, _)| active.get(svc).map(|r| (svc.clone(), *r)))
        .collect();
    xscmd::sr(&rankings)
}

/// `check-grid`: every server of the fleet sees the new rankings (`osgiAll`), and they are
/// valid targets (`osgiCheck`).
fn check_grid(ctx: &StepContext) -> Result<Vec<Output>, StepError> {
    let params = &ctx.params;
    let wanted = wanted(params)?;
    let text = xscmd::run(params, &["osgiAll"])?;
    let tables = xscmd::tables(&text);
    let mut missing = Vec::new();
    for t in &ctx.fleet {
        let Some(rows) = tables.get(&t.id) else {
            missing.push(format!("server {} is not in osgiAll", t.id));
            continue;
        };
        for (svc, r) in &wanted {
            let has = rows
                .iter()
                .any(|(s, list)| s == svc && list.split(',').any(|x| x.trim() == r.to_string()));
            if !has {
                missing.push(format!("server {} does not offer {svc} ranking {r}", t.id));
            }
        }
    }
    if !missing.is_empty() {
        return Err(fail(format!(
            "osgiAll: {}; every node must have the new bundle started",
            missing.join("; ")
        )));
    }
    if !text.contains("All servers have the same service rankings") {
        return Err(fail(format!(
            "osgiAll: the servers do not have the same service rankings: {}",
            text.lines().last().unwrap_or_default()
        )));
    }
    let sr = xscmd::sr(&wanted);
    xscmd::run_ok(params, &["osgiCheck", "-sr", &sr])?;
    Ok(vec![out("rankings", sr)])
}

/// `update`: `osgiCheck` again, then `osgiUpdate` per map set, unless a map set already has
/// the new rankings (a re-run after a crash): the update happens once. Going back is the undo
/// of `suspend-balancing`, which recorded the rankings before.
fn update(ctx: &StepContext) -> Result<Vec<Output>, StepError> {
    let params = &ctx.params;
    let wanted = wanted(params)?;
    let sr = xscmd::sr(&wanted);
    for (g, ms) in xscmd::map_sets(params).map_err(fail)? {
        let active = xscmd::current(params, &g, &ms)?;
        if wanted.iter().all(|(svc, r)| active.get(svc) == Some(r)) {
            log(
                Level::Warn,
                &format!("{g}/{ms} already has rankings {sr} active (a re-run): not updated again"),
            );
            continue;
        }
        xscmd::run_ok(params, &["osgiCheck", "-sr", &sr])?;
        progress(
            &format!("osgiUpdate -sr {sr} -g {g} -ms {ms}: quiescing and draining the grid"),
            None,
        );
        let text = xscmd::run(params, &["osgiUpdate", "-sr", &sr, "-g", &g, "-ms", &ms])?;
        if !text.contains("Update succeeded for the following service rankings") {
            return Err(fail(format!("osgiUpdate -g {g} -ms {ms}: {}", text.trim())));
        }
        let reported: Vec<(String, String)> =
            xscmd::tables(&text).into_values().flatten().collect();
        for (svc, r) in &wanted {
            if !reported
                .iter()
                .any(|(s, v)| s == svc && *v == r.to_string())
            {
                return Err(fail(format!(
                    "osgiUpdate -g {g} -ms {ms} did not report {svc} at ranking {r}: {}",
                    text.trim()
                )));
            }
        }
        log(Level::Info, &format!("{g}/{ms}: rankings {sr} active"));
    }
    Ok(Vec::new())
}

/// `suspend-balancing`: records each map set's active rankings first, so that its undo can
/// restore them whatever happened after.
fn suspend(ctx: &StepContext) -> Result<Vec<Output>, StepError> {
    let params = &ctx.params;
    let wanted = wanted(params)?;
    let mut outputs = Vec::new();
    for (g, ms) in xscmd::map_sets(params).map_err(fail)? {
        let key = format!("before:{g}/{ms}");
        let before = match output(&ctx.outputs, &key) {
            Some(b) => b.to_string(),
            None => active_of(&wanted, &xscmd::current(params, &g, &ms)?),
        };
        outputs.push(out(&key, before));
    }
    balancing(params, "suspendBalancing")?;
    Ok(outputs)
}

/// Undo of `suspend-balancing`: if an update went through (it completed, or it completed in
/// the grid while cutover was down), the recorded rankings are restored with balancing
/// suspended; then balancing resumes.
fn unsuspend(ctx: &StepContext) -> Result<(), StepError> {
    let params = &ctx.params;
    for (g, ms) in xscmd::map_sets(params).map_err(fail)? {
        let Some(before) = output(&ctx.outputs, &format!("before:{g}/{ms}")) else {
            continue;
        };
        let active = xscmd::current(params, &g, &ms)?;
        let changed = before
            .split(',')
            .filter_map(|x| x.split_once(';'))
            .any(|(svc, r)| active.get(svc).map(|a| a.to_string()) != Some(r.to_string()));
        if changed {
            log(
                Level::Warn,
                &format!("{g}/{ms} is not on rankings {before} any more: updating back"),
            );
            xscmd::run_ok(params, &["suspendBalancing", "-g", &g, "-ms", &ms])?;
            xscmd::run(params, &["osgiUpdate", "-sr", before, "-g", &g, "-ms", &ms])?;
        }
    }
    balancing(params, "resumeBalancing")
}

impl cutover_sdk::Adapter for OsgiGrid {
    fn describe() -> Description {
        let p = parameter;
        let s = target_step;
        let fleet = |name: &str, description: &str, undoable: bool| {
            fleet_step(name, description, Phase::Switch, undoable, true, 600)
        };
        Description {
            leases: vec!["{home}/.cutover-lease".into()],
            name: "osgi-grid".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "live update of an OSGi data grid's plugin bundle by service ranking".into(),
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
                p("xscmd", "the xscmd program", true, false, None),
                p(
                    "map-sets",
                    "every grid/map set the update affects: Grid/MapSet,...",
                    true,
                    false,
                    None,
                ),
                p(
                    "home",
                    "the node's folder: bin/console, bundles/",
                    true,
                    true,
                    None,
                ),
            ],
            capabilities: vec![
                dir("{bundles}", Access::Read),
                dir("{home}/bundles", Access::ReadWrite),
                Capability::Exec("{home}/bin/console".into()),
                Capability::Exec("{xscmd}".into()),
            ],
            steps: vec![
                s(
                    "copy-bundle",
                    "copy the new bundle to the node",
                    true,
                    true,
                    120,
                ),
                s(
                    "install",
                    "install it in the node's OSGi framework",
                    true,
                    true,
                    120,
                ),
                s(
                    "start",
                    "start it: the grid's service tracker sees its rankings",
                    true,
                    true,
                    120,
                ),
                fleet(
                    "check-grid",
                    "osgiAll shows the new rankings on every server; osgiCheck",
                    false,
                ),
                fleet(
                    "suspend-balancing",
                    "suspendBalancing for every grid/map set",
                    true,
                ),
                // Going back is the undo of `suspend-balancing`: it knows the rankings before.
                fleet(
                    "update",
                    "osgiCheck again, osgiUpdate, check the reported rankings",
                    false,
                ),
                fleet(
                    "resume-balancing",
                    "resumeBalancing for every grid/map set",
                    false,
                ),
                Step {
                    phase: Phase::Finalize,
                    ..s(
                        "remove-old",
                        "stop and uninstall the old bundle",
                        false,
                        true,
                        120,
                    )
                },
            ],
        }
    }

    fn preflight(
        targets: Vec<Target>,
        params: Vec<Pair>,
        _strategy: String,
    ) -> Result<Vec<Finding>, PluginError> {
        let mut findings = Vec::new();
        let mut block =
            |target: Option<&str>, m: String| findings.push(preflight::blocker(target, m));
        let sets = match xscmd::map_sets(&params) {
            Ok(s) => s,
            Err(e) => return Err(preflight::refuse(e)),
        };
        let (path, b) = read_bundle(&params).map_err(preflight::refuse)?;
        let shown = path.display().to_string();
        if let Err(e) = compare_versions(&b.version, "0") {
            block(None, format!("bundle {shown}: Bundle-Version: {e}"));
        }
        if b.services.is_empty() {
            block(None, format!("bundle {shown} publishes no service (no Service-Component with a service.ranking): nothing to update"));
        }
        let mut grid_services = std::collections::BTreeSet::new();
        for (g, ms) in &sets {
            let active = match xscmd::current(&params, g, ms) {
                Ok(a) => a,
                Err(e) => {
                    block(None, format!("the grid's active rankings: {}", e.message));
                    continue;
                }
            };
            for (svc, r, file) in &b.services {
                let Some(now) = active.get(svc) else { continue };
                grid_services.insert(svc.clone());
                match r.parse::<i64>() {
                    Err(_) => block(None, format!("bundle {shown}: service {svc} ({file}) has service.ranking `{r}`: OSGi service rankings must be integers")),
                    Ok(new) if new <= *now => block(None, format!("bundle {shown}: service {svc} has ranking {new}, not higher than the active {now} in {g}/{ms}: raise it")),
                    Ok(_) => {}
                }
            }
        }
        for (svc, _, file) in &b.services {
            if !grid_services.contains(svc) {
                findings.push(preflight::finding(
                    Severity::Warning,
                    None,
                    format!("bundle {shown}: service {svc} ({file}) is not a plugin service of the grid; it is left out of the update"),
                ));
            }
        }
        for t in &targets {
            let installed = match Console::of(t).and_then(|c| c.find(&b.symbolic_name)) {
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

    fn run_step(
        step: String,
        target: Option<Target>,
        ctx: StepContext,
    ) -> Result<Vec<Output>, StepError> {
        let params = &ctx.params;
        match step.as_str() {
            "check-grid" => return check_grid(&ctx),
            "suspend-balancing" => return suspend(&ctx),
            "update" => return update(&ctx),
            "resume-balancing" => return balancing(params, "resumeBalancing").map(|_| vec![]),
            _ => {}
        }
        let t = target.ok_or_else(|| fail(format!("`{step}` is a target step")))?;
        let console = Console::of(&t)?;
        match step.as_str() {
            "copy-bundle" => {
                let from = bundle_path(params).map_err(fail)?;
                let bytes =
                    std::fs::read(&from).map_err(|e| files::io_error("reading", &from, e))?;
                let to = copy_of(&t, params)?;
                files::write_atomic(&to, &bytes)?;
                Ok(vec![out("copy", to.display().to_string())])
            }
            "install" => {
                let (_, b) = read_bundle(params).map_err(fail)?;
                let present = console.find(&b.symbolic_name)?;
                let old: Vec<String> = present
                    .iter()
                    .filter(|i| i.version != b.version)
                    .map(|i| i.id.to_string())
                    .collect();
                let id = match present.iter().find(|i| i.version == b.version) {
                    Some(i) => {
                        log(
                            Level::Warn,
                            &format!(
                                "{} {} is already installed as bundle {} (a re-run)",
                                b.symbolic_name, b.version, i.id
                            ),
                        );
                        i.id
                    }
                    None => {
                        let url = format!("file:{}", copy_of(&t, params)?.display());
                        console.install(&url)?
                    }
                };
                log(
                    Level::Info,
                    &format!("{}: bundle {id} is {} {}", t.id, b.symbolic_name, b.version),
                );
                Ok(vec![
                    out("bundle-id", id.to_string()),
                    out("old-ids", old.join(",")),
                ])
            }
            "start" => {
                let id = id_output(&ctx, "bundle-id")
                    .ok_or_else(|| fail("no bundle-id from `install`"))?;
                console.change("start", id, Some("Active"))?;
                Ok(vec![])
            }
            "remove-old" => {
                for id in output(&ctx.outputs, "old-ids")
                    .unwrap_or_default()
                    .split(',')
                    .filter_map(|i| i.parse::<u64>().ok())
                {
                    if console.get(id)?.is_some() {
                        console.change("stop", id, Some("Resolved"))?;
                        console.change("uninstall", id, None)?;
                        log(
                            Level::Info,
                            &format!("{}: old bundle {id} stopped and uninstalled", t.id),
                        );
                    }
                }
                Ok(vec![])
            }
            other => Err(fail(format!("osgi-grid has no step `{other}`"))),
        }
    }

    fn undo_step(step: String, target: Option<Target>, ctx: StepContext) -> Result<(), StepError> {
        let params = &ctx.params;
        if step == "suspend-balancing" {
            return unsuspend(&ctx);
        }
        let t = target.ok_or_else(|| fail(format!("`{step}` has no undo for the fleet")))?;
        let console = Console::of(&t)?;
        let id = id_output(&ctx, "bundle-id");
        match (step.as_str(), id) {
            ("start", Some(id)) => match console.get(id)? {
                Some(b) if b.state == "Active" => console.change("stop", id, Some("Resolved")),
                _ => Ok(()),
            },
            ("install", Some(id)) => match console.get(id)? {
                Some(_) => console.change("uninstall", id, None),
                None => Ok(()),
            },
            ("copy-bundle", _) => {
                let copy = copy_of(&t, params)?;
                match std::fs::remove_file(&copy) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        Err(files::io_error("removing", &copy, e))
                    }
                    _ => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }
}

cutover_sdk::export_adapter!(OsgiGrid);
