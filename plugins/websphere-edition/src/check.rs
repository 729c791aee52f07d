//! Preflight: what IBM lists before an edition rollout ("before you begin" in the edition
//! rollout guide, the seed, L5-26), checked on the cell through wsadmin, plus what this
//! adapter needs (the router, PMI for the early end of the drainage interval).

use crate::member::{atomic, Editions, Member};
use crate::router;
use crate::wsadmin::{mbean, q, Wsadmin};
use cutover_sdk::params::get;
use cutover_sdk::preflight::{blocker, info, warning};
use cutover_sdk::{files, Finding, PreflightContext, Result, Target};
use std::path::PathBuf;

/// The seed's three times, in seconds: the drainage interval, the internal quiesce timeout
/// (about 5 min) and the application or server restart (about 10 min).
pub fn seed_times(params: &[cutover_sdk::Pair]) -> (u32, u32, u32) {
    let n = |k: &str, d: u32| get(params, k).and_then(|v| v.parse().ok()).unwrap_or(d);
    (
        n("drainage-interval", 30),
        n("quiesce-estimate", 300),
        n("restart-estimate", 600),
    )
}

/// The seed's estimate of the SOAP request timeout (L13-16): groups × (drainage interval +
/// internal quiesce timeout (about 5 min) + application or server restart (about 10 min)).
pub fn timeout_needed(params: &[cutover_sdk::Pair], groups: u64) -> (u64, String) {
    let (drain, quiesce, restart) = seed_times(params);
    let (drain, quiesce, restart) = (u64::from(drain), u64::from(quiesce), u64::from(restart));
    let total = groups * (drain + quiesce + restart);
    (
        total,
        format!("{groups} group(s) × (drainage interval {drain} s + quiesce ≈ {quiesce} s + restart ≈ {restart} s) = {total} s"),
    )
}

fn soap_timeout(params: &[cutover_sdk::Pair]) -> std::result::Result<(PathBuf, u64), String> {
    let profile =
        get(params, "profile").ok_or("no `profile` parameter (the deployment manager profile)")?;
    let path = PathBuf::from(profile).join("properties/soap.client.props");
    let text = files::read_string(&path).map_err(|e| e.message)?;
    let value = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix("com.ibm.SOAP.requestTimeout"))
        .map(|v| v.trim_start_matches([' ', '=', ':']).trim().to_string());
    match value {
        // The stock file's default ("timeout (specified in seconds [default 180]").
        None => Ok((path, 180)),
        Some(v) => v.parse().map(|n| (path.clone(), n)).map_err(|_| {
            format!(
                "{}: com.ibm.SOAP.requestTimeout = `{v}` is not a number of seconds",
                path.display()
            )
        }),
    }
}

pub fn findings(targets: &[Target], ctx: &PreflightContext) -> Result<Vec<Finding>> {
    let params = &ctx.params;
    let mut out = Vec::new();
    // Role (the seed, L6-8; "Activating concurrent application editions": monitor and operator
    // can only view the edition manager). No command lists a user's roles with documented
    // output, so the operator states it.
    match get(params, "admin-role") {
        Some("configurator" | "administrator") => {}
        other => out.push(blocker(None, format!(
            "admin-role is {}: an edition rollout needs the configurator or administrator role (monitor and operator can only view editions); set [adapter.params] admin-role to the role of the wsadmin user",
            other.map(|r| format!("`{r}`")).unwrap_or("not set".into())
        ))),
    }
    let e = Editions::of(params)?;
    let w = Wsadmin::new(params)?;
    // Both editions installed (AdminApp.list) and mapped to the same cluster
    // (AdminApp.listModules with -server).
    let apps = w.jython(
        &["print AdminApp.list()".into()],
        "list the installed applications",
        300,
    )?;
    let cluster = cutover_sdk::params::param(params, "cluster")?;
    for (edition, dep) in [(&e.from, &e.old), (&e.to, &e.new)] {
        if !apps.iter().any(|a| a.trim() == dep) {
            out.push(blocker(None, format!("edition {edition} of {} is not installed: no application `{dep}` in AdminApp.list() (install it with the same deployment target, then save and synchronize the nodes)", e.app)));
            continue;
        }
        let modules = w.jython(
            &[format!(
                "print AdminApp.listModules({}, '-server')",
                q(dep)?
            )],
            &format!("list the modules of {dep}"),
            300,
        )?;
        if !modules
            .iter()
            .any(|l| l.contains(&format!("cluster={cluster}")))
        {
            out.push(blocker(None, format!("`{dep}` is not mapped to cluster {cluster}: both editions need the same deployment target ({})", modules.join(" "))));
        }
    }
    // A routing policy for the new edition (L22-26), through workclassoperations.py.
    let script = cutover_sdk::params::param(params, "workclass-script")?;
    let classes = w.script(
        script,
        &["listWorkClasses", "-type", "ARP", "-appname", &e.app],
        "list the routing work classes",
    )?;
    let routed = classes.iter().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 4 && f[1] == "ARP" && f[3] == e.new
    });
    if !routed {
        out.push(blocker(None, format!("no routing policy for edition {} (`{}`): define one before the rollout (workclassoperations.py listWorkClasses -type ARP -appname {} lists none)", e.to, e.new, e.app)));
    }
    // Every member running, with the current edition.
    for t in targets {
        let m = Member::of(t)?;
        if !crate::steps::server_running(&w, &m)? {
            out.push(blocker(
                Some(&t.id),
                format!("server {} on node {} is not running", m.server, m.node),
            ));
            continue;
        }
        let set = w.jython(
            &[format!(
                "print AdminControl.invoke(AdminControl.completeObjectName({}), 'getStatisticSet')",
                q(&mbean("Perf", &m.node, &m.server))?
            )],
            &format!("read the PMI statistic set of {}", m.server),
            120,
        )?;
        if !set.iter().any(|l| l.trim() == "all") {
            out.push(warning(Some(&t.id), format!("PMI statistic set of {} is {:?}, not `all`: ActiveCount (servlet sessions) is collected at `all` only, so the drainage interval is waited in full", m.server, set.join(" "))));
        }
    }
    // The router knows every member.
    let (addr, backend) = (
        cutover_sdk::params::param(params, "router")?,
        cutover_sdk::params::param(params, "router-backend")?,
    );
    match router::states(addr, backend) {
        Ok(states) => {
            for t in targets {
                let m = Member::of(t)?;
                if !states.iter().any(|s| s.name == m.router_name) {
                    out.push(blocker(Some(&t.id), format!("the router's backend {backend} has no server `{}` (set the target's router-server label)", m.router_name)));
                }
            }
        }
        Err(err) => out.push(blocker(None, err.message)),
    }
    // Atomic holds updated members until the switch: it needs the atomic strategy.
    let strategy = ctx.strategy.as_str();
    if atomic(params) && !strategy.starts_with("atomic") {
        out.push(blocker(None, format!("rollout-strategy = atomic holds updated members out of the router until the `switch` step, which the `{strategy}` strategy does not place between halves: use strategy atomic with switch-step = \"switch\"")));
    }
    if !atomic(params) && strategy.starts_with("atomic") {
        out.push(warning(None, "the atomic strategy with rollout-strategy = grouped: updated members rejoin one by one, so both editions serve requests; set rollout-strategy = \"atomic\" and switch-step = \"switch\" for one consistent edition"));
    }
    if targets.len() == 1 {
        out.push(info(None, "one member: as IBM documents for single-server targets, the actions on the other half are skipped"));
    }
    // The SOAP request timeout against IBM's estimate (L10-16).
    let groups = if ctx.waves.is_empty() {
        targets.len()
    } else {
        ctx.waves.len()
    } as u64;
    let (needed, formula) = timeout_needed(params, groups);
    match soap_timeout(params) {
        Ok((_, 0)) => out.push(info(None, "com.ibm.SOAP.requestTimeout = 0: no SOAP timeout")),
        Ok((path, t)) if t < needed => out.push(blocker(None, format!(
            "com.ibm.SOAP.requestTimeout = {t} s in {} is below IBM's estimate of the rollout, {formula}: set it to at least {needed} (or 0 for no timeout)",
            path.display()
        ))),
        Ok((path, t)) => out.push(info(None, format!("com.ibm.SOAP.requestTimeout = {t} s in {} covers {formula}", path.display()))),
        Err(e) => out.push(blocker(None, format!("cannot check the SOAP request timeout: {e}"))),
    }
    Ok(out)
}
