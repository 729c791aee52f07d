//! The steps: per member `drain`, `stop-old`, `start-new`, `verify`, `rejoin`; for the fleet
//! `switch` (atomic rollouts) and `activate`; `rejoin-held` after an atomic rollout.

use crate::member::{atomic, Editions, Member};
use crate::router;
use crate::wsadmin::{mbean, q, Wsadmin};
use cutover_sdk::{fail, info, output, wait, warn, web, Call, Output, Result};

fn router(c: &Call) -> Result<(String, String)> {
    Ok((
        c.param("router")?.to_string(),
        c.param("router-backend")?.to_string(),
    ))
}

/// Whether `app` runs on the member: its Application MBean exists ("If the application is
/// not running, an empty string returns": completeObjectName).
fn app_running(w: &Wsadmin, m: &Member, app: &str) -> Result<bool> {
    let query = format!(
        "type=Application,name={app},node={},process={},*",
        m.node, m.server
    );
    w.exists(&query, &format!("look for {app} on {}", m.server))
}

/// Whether the member's server runs (its Server MBean exists).
pub fn server_running(w: &Wsadmin, m: &Member) -> Result<bool> {
    w.exists(
        &mbean("Server", &m.node, &m.server),
        &format!("look for server {}", m.server),
    )
}

/// `startApplication` / `stopApplication` of `app` on the member's ApplicationManager.
fn app_op(w: &Wsadmin, m: &Member, op: &str, app: &str) -> Result<()> {
    w.jython(
        &[
            format!(
                "am = AdminControl.queryNames({})",
                q(&mbean("ApplicationManager", &m.node, &m.server))?
            ),
            format!("AdminControl.invoke(am, {}, {})", q(op)?, q(app)?),
        ],
        &format!("{op} {app} on {}", m.server),
        600,
    )?;
    info!("{op} {app} on {}", m.server);
    Ok(())
}

fn server_op(w: &Wsadmin, m: &Member, op: &str) -> Result<()> {
    w.jython(
        &[format!(
            "print AdminControl.{op}({}, {})",
            q(&m.server)?,
            q(&m.node)?
        )],
        &format!("{op} {}", m.server),
        1200,
    )?;
    info!("{op} {} on {}", m.server, m.node);
    Ok(())
}

/// PMI counters of the member: ActiveCount (sessions, ID 6), ConcurrentRequests (ID 12) and
/// RequestCount (ID 11), through the Perf MBean's `getStatsObject`.
fn pmi(w: &Wsadmin, m: &Member) -> Result<(i64, i64, i64)> {
    let out = w.jython(
        &[
            format!("perf = AdminControl.makeObjectName(AdminControl.completeObjectName({}))", q(&mbean("Perf", &m.node, &m.server))?),
            format!("srv = AdminControl.makeObjectName(AdminControl.completeObjectName({}))", q(&mbean("Server", &m.node, &m.server))?),
            "st = AdminControl.invoke_jmx(perf, 'getStatsObject', [srv, java.lang.Boolean('true')], ['javax.management.ObjectName', 'java.lang.Boolean'])".into(),
            "print st.getStats('servletSessionsModule').getStatistic(6).getCurrent()".into(),
            "print st.getStats('webAppModule').getStatistic(12).getCurrent()".into(),
            "print st.getStats('webAppModule').getStatistic(11).getCount()".into(),
        ],
        &format!("read PMI counters of {}", m.server),
        120,
    )?;
    let n: Vec<i64> = out.iter().filter_map(|l| l.trim().parse().ok()).collect();
    match n[..] {
        [a, c, t] => Ok((a, c, t)),
        _ => Err(fail(format!(
            "PMI counters of {}: unexpected answer {out:?}",
            m.server
        ))),
    }
}

/// Take the member out of the router: no new sessions (`drain`), then wait the drainage
/// interval, ending early when PMI shows no active session, no request in flight and no new
/// request between two readings; then no request at all (`maint`), and wait for the requests
/// in flight (the on demand router's 60 s quiesce).
pub fn quiesce(c: &Call, m: &Member) -> Result<Vec<Output>> {
    let (addr, backend) = router(c)?;
    let w = Wsadmin::of(c)?;
    let interval: u64 = c.get("drainage-interval", 30)?;
    let every: u64 = c.get("poll-interval", 5)?.max(1);
    // Already out of the router (an atomic switch took it out): draining would send its
    // old sessions back to it.
    let out = router::states(&addr, &backend)?
        .iter()
        .any(|s| s.name == m.router_name && s.admin & 1 == 1);
    if !out {
        router::set_state(&addr, &backend, &[(&m.router_name, "drain")])?;
        info!(
            "{}: no new sessions (drain); drainage interval {interval} s",
            m.server
        );
    }
    let start = wait::now_ms();
    let mut last_total = None;
    let mut why = if out {
        "already out of the router".to_string()
    } else {
        "the drainage interval ended".to_string()
    };
    let mut pmi_ok = true;
    while !out && (interval == 0 || wait::now_ms() - start < interval * 1000) {
        wait::sleep_ms(every * 1000);
        match pmi(&w, m) {
            Ok((active, current, total)) => {
                if active == 0 && current == 0 && last_total == Some(total) {
                    why = format!(
                        "PMI shows it quiesced after {} s",
                        (wait::now_ms() - start) / 1000
                    );
                    break;
                }
                last_total = Some(total);
            }
            Err(e) if pmi_ok => {
                warn!(
                    "{}: no PMI counters ({}); waiting the whole drainage interval",
                    m.server, e.message
                );
                pmi_ok = false;
                if interval == 0 {
                    return Err(fail(format!("drainage interval 0 waits for PMI to show {} quiesced, and PMI cannot be read", m.server)));
                }
            }
            Err(_) => {}
        }
    }
    router::set_state(&addr, &backend, &[(&m.router_name, "maint")])?;
    info!("{}: {why}; out of the router (maint)", m.server);
    if pmi_ok {
        wait::poll(60_000, 500, |_| match pmi(&w, m) {
            Ok((_, 0, _)) => Ok(()),
            Ok((_, n, _)) => Err(format!("{n} request(s) still in flight on {}", m.server)),
            Err(e) => Err(e.message),
        })?;
    } else {
        wait::sleep_ms(c.get("quiesce-wait", 60)? * 1000);
    }
    Ok(vec![output("drained", why)])
}

pub fn drain(c: &Call) -> Result<Vec<Output>> {
    quiesce(c, &Member::of(c.target()?)?)
}

pub fn undrain(c: &Call) -> Result<()> {
    let m = Member::of(c.target()?)?;
    let (addr, backend) = router(c)?;
    router::set_state(&addr, &backend, &[(&m.router_name, "ready")])
}

fn hard(c: &Call) -> bool {
    c.value_or("reset-strategy", "soft") == "hard"
}

/// The target's member, the rollout's editions and wsadmin.
fn parts(c: &Call) -> Result<(Member, Editions, Wsadmin)> {
    Ok((
        Member::of(c.target()?)?,
        Editions::of(c.params())?,
        Wsadmin::of(c)?,
    ))
}

/// Stop edition `app` in the member's server; a hard reset also stops the server.
fn stop_edition(c: &Call, app: impl Fn(&Editions) -> &str) -> Result<()> {
    let (m, e, w) = parts(c)?;
    if server_running(&w, &m)? && app_running(&w, &m, app(&e))? {
        app_op(&w, &m, "stopApplication", app(&e))?;
    }
    if hard(c) && server_running(&w, &m)? {
        server_op(&w, &m, "stopServer")?;
    }
    Ok(())
}

/// Soft reset: stop the old edition in the server; hard reset: also stop the server.
pub fn stop_old(c: &Call) -> Result<Vec<Output>> {
    stop_edition(c, |e| &e.old).map(|_| vec![])
}

pub fn undo_stop_old(c: &Call) -> Result<()> {
    let (m, e, w) = parts(c)?;
    if !server_running(&w, &m)? {
        server_op(&w, &m, "startServer")?;
    }
    if !app_running(&w, &m, &e.old)? {
        app_op(&w, &m, "startApplication", &e.old)?;
    }
    Ok(())
}

/// Hard reset: start the server; then start the new edition in it.
pub fn start_new(c: &Call) -> Result<Vec<Output>> {
    let (m, e, w) = parts(c)?;
    if !server_running(&w, &m)? {
        server_op(&w, &m, "startServer")?;
        if !server_running(&w, &m)? {
            return Err(fail(format!("server {} did not start", m.server)));
        }
    }
    if !app_running(&w, &m, &e.new)? {
        app_op(&w, &m, "startApplication", &e.new)?;
    }
    if !app_running(&w, &m, &e.new)? {
        return Err(fail(format!(
            "edition {} is not running on {} after startApplication",
            e.to, m.server
        )));
    }
    Ok(vec![])
}

pub fn undo_start_new(c: &Call) -> Result<()> {
    stop_edition(c, |e| &e.new)
}

/// The server is STARTED, runs the new edition and not the old one, and (with an `address`)
/// answers `verify-path` with `verify-expect`.
pub fn verify(c: &Call) -> Result<Vec<Output>> {
    let (m, e, w) = parts(c)?;
    let state = w.jython(
        &[
            format!(
                "s = AdminControl.completeObjectName({})",
                q(&mbean("Server", &m.node, &m.server))?
            ),
            "print AdminControl.getAttribute(s, 'state')".into(),
        ],
        &format!("read the state of {}", m.server),
        120,
    )?;
    if !state.iter().any(|l| l.trim() == "STARTED") {
        return Err(fail(format!(
            "server {} is not STARTED: {state:?}",
            m.server
        )));
    }
    if !app_running(&w, &m, &e.new)? || app_running(&w, &m, &e.old)? {
        return Err(fail(format!(
            "{} does not run edition {} alone",
            m.server, e.to
        )));
    }
    if let Some(address) = &m.address {
        let url = format!("http://{address}{}", c.value_or("verify-path", "/"));
        let expect = c.value_or("verify-expect", "");
        wait::poll(30_000, 500, |_| match web::get(&url, Some(5000)) {
            Ok((200, body)) if body.contains(expect) => Ok(()),
            Ok((s, body)) => Err(format!("{url} answered {s}: {}", body.trim())),
            Err(e) => Err(e.message),
        })?;
    }
    Ok(vec![output("serves", e.to)])
}

/// Back in the router: `ready`, once its health check passes (grouped). In an atomic
/// rollout the member stays out of the router (`maint`) until the switch.
pub fn rejoin(c: &Call) -> Result<Vec<Output>> {
    let m = Member::of(c.target()?)?;
    if atomic(c.params()) {
        info!(
            "{}: held out of the router until the switch (atomic)",
            m.server
        );
        return Ok(vec![]);
    }
    back(c, &[m], "ready")?;
    Ok(vec![])
}

fn back(c: &Call, members: &[Member], state: &str) -> Result<()> {
    let (addr, backend) = router(c)?;
    let set: Vec<(&str, &str)> = members
        .iter()
        .map(|m| (m.router_name.as_str(), state))
        .collect();
    router::set_state(&addr, &backend, &set)?;
    wait::poll(120_000, 300, |_| {
        let states = router::states(&addr, &backend).map_err(|e| e.message)?;
        let down: Vec<&str> = members
            .iter()
            .filter(|m| !states.iter().any(|s| s.name == m.router_name && s.op == 2))
            .map(|m| m.router_name.as_str())
            .collect();
        if down.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the router's health check does not pass yet for {}",
                down.join(", ")
            ))
        }
    })?;
    info!(
        "{} back in the router ({state})",
        members
            .iter()
            .map(|m| m.server.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

pub fn undo_rejoin(c: &Call) -> Result<()> {
    drain(c).map(|_| ())
}

pub fn rejoin_held(c: &Call) -> Result<Vec<Output>> {
    if atomic(c.params()) {
        back(c, &[Member::of(c.target()?)?], "ready")?;
    }
    Ok(vec![])
}

/// The members running the new edition (Application MBeans of the new edition).
fn updated(c: &Call, w: &Wsadmin, e: &Editions) -> Result<(Vec<Member>, Vec<Member>)> {
    let out = w.jython(
        &[format!(
            "print AdminControl.queryNames({})",
            q(&format!("type=Application,name={},*", e.new))?
        )],
        &format!("list the members running {}", e.new),
        120,
    )?;
    let on: Vec<(String, String)> = out
        .iter()
        .filter_map(|l| {
            let key = |k: &str| {
                l.split(',')
                    .find_map(|p| p.strip_prefix(&format!("{k}=")))
                    .map(str::to_string)
            };
            Some((key("node")?, key("process")?))
        })
        .collect();
    let mut new = Vec::new();
    let mut old = Vec::new();
    for t in c.fleet() {
        let m = Member::of(t)?;
        if on.contains(&(m.node.clone(), m.server.clone())) {
            new.push(m);
        } else {
            old.push(m);
        }
    }
    Ok((new, old))
}

/// Atomic rollouts: all traffic to the updated half in one router command (`ready` for
/// the members running the new edition, `maint` for the others).
pub fn switch(c: &Call) -> Result<Vec<Output>> {
    if !atomic(c.params()) {
        info!("grouped rollout: each member rejoined once updated; nothing to switch");
        return Ok(vec![]);
    }
    let (e, w) = (Editions::of(c.params())?, Wsadmin::of(c)?);
    let (new, old) = updated(c, &w, &e)?;
    if new.is_empty() {
        return Err(fail(format!(
            "no member runs edition {}: nothing to switch to",
            e.to
        )));
    }
    flip(c, &new, &old)?;
    info!(
        "all traffic to edition {} ({}); {} out of the router",
        e.to,
        new.iter()
            .map(|m| m.server.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        if old.is_empty() {
            "no member".to_string()
        } else {
            old.iter()
                .map(|m| m.server.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    Ok(vec![output("switched-to", e.to)])
}

fn flip(c: &Call, to: &[Member], from: &[Member]) -> Result<()> {
    let (addr, backend) = router(c)?;
    let mut set: Vec<(&str, &str)> = to
        .iter()
        .map(|m| (m.router_name.as_str(), "ready"))
        .collect();
    set.extend(from.iter().map(|m| (m.router_name.as_str(), "maint")));
    router::set_state(&addr, &backend, &set)
}

pub fn switch_back(c: &Call) -> Result<()> {
    if !atomic(c.params()) {
        return Ok(());
    }
    let (e, w) = (Editions::of(c.params())?, Wsadmin::of(c)?);
    let (new, old) = updated(c, &w, &e)?;
    if old.is_empty() {
        return Err(fail(
            "every member runs the new edition: there is no half to switch back to",
        ));
    }
    flip(c, &old, &new)
}

fn editions_call(c: &Call, activate: &str, deactivate: &str) -> Result<()> {
    let (e, w) = (Editions::of(c.params())?, Wsadmin::of(c)?);
    let app = &e.app;
    let out = w.jython(
        &[
            format!(
                "print AdminTask.activateEdition({})",
                q(&format!("[-appName {app} -edition {activate}]"))?
            ),
            format!(
                "print AdminTask.deactivateEdition({})",
                q(&format!("[-appName {app} -edition {deactivate}]"))?
            ),
            "AdminConfig.save()".into(),
        ],
        &format!("activate edition {activate} of {app}"),
        600,
    )?;
    let answers: Vec<&str> = out
        .iter()
        .map(|l| l.trim())
        .filter(|l| *l == "true" || *l == "false")
        .collect();
    if answers != ["true", "true"] {
        return Err(fail(format!(
            "activateEdition {activate} / deactivateEdition {deactivate} of {app} answered {out:?}"
        )));
    }
    info!("edition {activate} of {app} active, {deactivate} inactive");
    Ok(())
}

/// The new edition active and the old one inactive (`activateEdition`, `deactivateEdition`).
pub fn activate(c: &Call) -> Result<Vec<Output>> {
    let e = Editions::of(c.params())?;
    editions_call(c, &e.to, &e.from)?;
    Ok(vec![output("active", e.to)])
}

pub fn deactivate(c: &Call) -> Result<()> {
    let e = Editions::of(c.params())?;
    editions_call(c, &e.from, &e.to)
}
