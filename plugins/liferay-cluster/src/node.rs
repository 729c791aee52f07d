//! The steps of one node: out of the load balancer, stop, deploy, start, healthy, back in.

use crate::settings::{self, artifact, database, read_bytes, Mode};
use crate::{lb, matrix, release, tomcat};
use cutover_sdk::{cmd, fail, files, output, wait, web, Call, Output, Pair, Result, Target};
use std::path::{Path, PathBuf};

/// The target of a target step and its own URL (every target step needs the `url` label).
pub fn node(c: &Call) -> Result<(&Target, String)> {
    let t = c.target()?;
    let url = cutover_sdk::params::label(t, "url")?;
    Ok((t, url.trim_end_matches('/').to_string()))
}

pub fn mode(c: &Call) -> Result<Mode> {
    settings::mode(c.params())
}

fn script(t: &Target, name: &str) -> Result<String> {
    Ok(Path::new(cutover_sdk::params::label(t, "root")?)
        .join("bin")
        .join(name)
        .display()
        .to_string())
}

/// Run the node's `bin/stop` or `bin/start`.
pub fn control(t: &Target, action: &str) -> Result<()> {
    cmd::run_ok(&script(t, action)?, &[], None).map(drop)
}

/// Rolling mode: take the node out of nginx (`down` of the server line and a graceful reload:
/// old workers finish what they carry), then wait `drain-interval`, ending early once Tomcat's
/// manager, where the spec names it, reports no request in flight.
pub fn drain(c: &Call) -> Result<Vec<Output>> {
    let (t, url) = node(c)?;
    if mode(c)? != Mode::Rolling {
        return Ok(vec![]);
    }
    let params = c.params();
    lb::Lb::new(params)?.drain(&lb::address(&url), true, &format!("drain {}", t.id))?;
    let interval = cutover_sdk::params::int(params, "drain-interval", 30)? * 1000;
    let manager = tomcat::Manager::new(params, &url)?;
    let start = wait::now_ms();
    let mut last = String::from("no manager named: waiting the whole interval");
    while wait::now_ms() - start < interval {
        if let Some(m) = &manager {
            match m
                .idle()
                .map_err(|e| fail(format!("draining {}: {e}", t.id)))?
            {
                None => {
                    return Ok(vec![output(
                        "drained-after-ms",
                        (wait::now_ms() - start).to_string(),
                    )])
                }
                Some(holds) => {
                    cutover_sdk::progress(&format!("{} holds {holds}", t.id), None);
                    last = holds;
                }
            }
        }
        wait::sleep_ms(200);
    }
    cutover_sdk::info!("{}: the drain interval is over ({last})", t.id);
    Ok(vec![output("drained-after-ms", interval.to_string())])
}

/// Rolling mode: put the node back into nginx.
pub fn undrain(c: &Call) -> Result<Vec<Output>> {
    let (t, url) = node(c)?;
    if mode(c)? != Mode::Rolling {
        return Ok(vec![]);
    }
    lb::Lb::new(c.params())?.drain(&lb::address(&url), false, &format!("undrain {}", t.id))?;
    Ok(vec![])
}

pub fn stop(c: &Call) -> Result<Vec<Output>> {
    control(c.target()?, "stop")?;
    Ok(vec![])
}

/// Start the node, first noting how far its logs go, so that `health` reads only this boot.
pub fn start(c: &Call) -> Result<Vec<Output>> {
    let t = c.target()?;
    let mark = log_sizes(t)?
        .iter()
        .map(|(f, n)| format!("{f}:{n}"))
        .collect::<Vec<_>>()
        .join(",");
    control(t, "start")?;
    Ok(vec![output("log-mark", mark)])
}

/// Undo of `stop`. In all-down mode the nodes come back with the undo of `stop-all`, after the
/// database is restored.
pub fn undo_stop(c: &Call) -> Result<()> {
    if mode(c)? == Mode::AllDown {
        return Ok(());
    }
    control(c.target()?, "start")
}

/// Undo of `start`. In blue-green mode a green node that serves traffic (the switch back was
/// refused) is left running.
pub fn undo_start(c: &Call) -> Result<()> {
    let (t, url) = node(c)?;
    if mode(c)? == Mode::BlueGreen
        && lb::Lb::new(c.params())?
            .servers()?
            .contains(&lb::address(&url))
    {
        return Err(fail(format!(
            "{} serves traffic (the switch back to blue did not happen): it is left running",
            t.id
        )));
    }
    control(t, "stop")
}

/// Where `deploy` keeps what it replaces, for its undo.
const KEPT: &str = ".cutover-undo/deploy";

fn root(t: &Target) -> Result<PathBuf> {
    Ok(PathBuf::from(cutover_sdk::params::label(t, "root")?))
}

/// Put the module into the node's deploy folder and the properties in place; with a patch,
/// clear `osgi/state` and `work/` as the patching procedure asks. First keeps what they
/// replace (the installed jars of the module's bundle and `portal-ext.properties`) under
/// `.cutover-undo/deploy`, once, so a re-run keeps the originals.
pub fn deploy(c: &Call) -> Result<Vec<Output>> {
    let t = c.target()?;
    let params = c.params();
    let root = root(t)?;
    let kept = root.join(KEPT);
    if !kept.join(".complete").exists() {
        keep_replaced(&root, &kept, params)?;
    }
    let mut done = Vec::new();
    if let Some(path) = artifact(params, "module") {
        let name = path.file_name().unwrap_or_default();
        files::write_atomic(&root.join("deploy").join(name), &read_bytes(&path)?)?;
        done.push(name.to_string_lossy().to_string());
    }
    if let Some(path) = artifact(params, "properties") {
        files::write_atomic(&root.join("portal-ext.properties"), &read_bytes(&path)?)?;
        done.push("portal-ext.properties".into());
    }
    if artifact(params, "fixpack").is_some() {
        for dir in ["osgi/state", "work"] {
            let d = root.join(dir);
            if d.exists() {
                std::fs::remove_dir_all(&d).map_err(|e| files::io_error("clearing", &d, e))?;
            }
        }
    }
    Ok(vec![output("deployed", done.join(" "))])
}

/// The name prefix of the installed jars of the module in the `module` parameter, and the
/// name the new one gets.
fn bundle_prefix(params: &[Pair]) -> Result<Option<(String, String)>> {
    Ok(settings::module(params)?.map(|m| {
        (
            format!("{}-", m.bundle),
            format!("{}-{}.jar", m.bundle, m.version),
        )
    }))
}

fn keep_replaced(root: &Path, kept: &Path, params: &[Pair]) -> Result<()> {
    let modules = kept.join("modules");
    std::fs::create_dir_all(&modules).map_err(|e| files::io_error("creating", &modules, e))?;
    let props = root.join("portal-ext.properties");
    if props.exists() {
        files::write_atomic(&kept.join("portal-ext.properties"), &read_bytes(&props)?)?;
    }
    if let Some((prefix, _)) = bundle_prefix(params)? {
        for jar in files::find(&root.join("osgi/modules"), &|n| {
            n.starts_with(&prefix) && n.ends_with(".jar")
        })? {
            let name = jar.file_name().unwrap_or_default();
            files::write_atomic(&modules.join(name), &read_bytes(&jar)?)?;
        }
    }
    files::write_atomic(&kept.join(".complete"), b"")
}

/// Undo `deploy` on the stopped node: the new module out of `deploy/` and `osgi/modules`,
/// the kept jars and properties back.
pub fn undeploy(c: &Call) -> Result<()> {
    let t = c.target()?;
    let params = c.params();
    let root = root(t)?;
    let kept = root.join(KEPT);
    if !kept.join(".complete").exists() {
        return Ok(()); // nothing was replaced (or the undo already ran)
    }
    let remove = |p: &Path| match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(files::io_error("removing", p, e))
        }
        _ => Ok(()),
    };
    if let Some((_, new_jar)) = bundle_prefix(params)? {
        if let Some(path) = artifact(params, "module") {
            remove(
                &root
                    .join("deploy")
                    .join(path.file_name().unwrap_or_default()),
            )?;
        }
        remove(&root.join("osgi/modules").join(new_jar))?;
    }
    for jar in files::find(&kept.join("modules"), &|n| n.ends_with(".jar"))? {
        let name = jar.file_name().unwrap_or_default();
        files::write_atomic(&root.join("osgi/modules").join(name), &read_bytes(&jar)?)?;
    }
    let props = kept.join("portal-ext.properties");
    if props.exists() {
        files::write_atomic(&root.join("portal-ext.properties"), &read_bytes(&props)?)?;
    } else if artifact(params, "properties").is_some() {
        remove(&root.join("portal-ext.properties"))?;
    }
    std::fs::remove_dir_all(root.join(".cutover-undo"))
        .map_err(|e| files::io_error("removing", &root.join(".cutover-undo"), e))
}

/// The node's logs (`[Liferay Home]/logs/liferay.<date>.log`) and their sizes.
fn log_sizes(t: &Target) -> Result<Vec<(String, u64)>> {
    let dir = root(t)?.join("logs");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for f in files::find(&dir, &|n| n.starts_with("liferay") && n.ends_with(".log"))? {
        let n = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        out.push((
            f.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .to_string(),
            n,
        ));
    }
    Ok(out)
}

/// What the node logged since `mark` (`file:size,...` from `start`).
fn logged_since(t: &Target, mark: &str) -> Result<String> {
    let dir = root(t)?.join("logs");
    let mut text = String::new();
    for (name, _) in log_sizes(t)? {
        let from = mark
            .split(',')
            .find_map(|m| m.rsplit_once(':').filter(|(f, _)| *f == name))
            .and_then(|(_, n)| n.parse::<usize>().ok())
            .unwrap_or(0);
        let bytes = read_bytes(&dir.join(&name))?;
        text.push_str(&String::from_utf8_lossy(
            bytes.get(from..).unwrap_or_default(),
        ));
    }
    Ok(text)
}

/// Wait until the node answers its health page (`health-path`, 2xx or 3xx, with
/// `health-content` if set) and, with a module, until its log shows `STARTED <bsn>_<version>`
/// since this start and `Release_` holds the schema it requires (its data upgrade ran).
pub fn health(c: &Call) -> Result<Vec<Output>> {
    let (t, url) = node(c)?;
    let params = c.params();
    let timeout = cutover_sdk::params::int(params, "health-timeout", 120)? * 1000;
    let page = format!("{url}{}", c.value_or("health-path", "/c/portal/robots"));
    let content = c.param_opt("health-content").filter(|s| !s.is_empty());
    let module = settings::module(params)?;
    let mark = c.output("log-mark").unwrap_or("").to_string();
    let db = database(t, params).map(str::to_string);
    let seen = wait::poll(timeout, 250, |_| {
        let (status, body) = web::get(&page, Some(5000)).map_err(|e| e.message)?;
        if !(200..400).contains(&status) {
            return Err(format!("{page} answered {status}"));
        }
        if let Some(want) = content.filter(|w| !body.contains(*w)) {
            return Err(format!("{page} does not contain {want:?}"));
        }
        let Some(m) = &module else {
            return Ok(format!("{page} answered {status}"));
        };
        let line = format!("STARTED {}_{} [", m.bundle, m.version);
        if !logged_since(t, &mark).map_err(|e| e.message)?.contains(&line) {
            return Err(format!("the log does not show `{line}...` yet"));
        }
        if let (Some(required), Some(db)) = (&m.schema, &db) {
            if c.param_opt("db-client").is_some() {
                let rows = release::query(params, db, &[&m.bundle])?;
                match rows.get(&m.bundle) {
                    Some(r) if r.state != 0 => return Err(format!("Release_ marks {} with state_ = {} (failed upgrade)", m.bundle, r.state)),
                    Some(r) if matrix::schema(Some(required), Some(&r.schema)) == matrix::Schema::Same => {}
                    r => return Err(format!("Release_ in `{db}` holds {} for {}, which requires {required}: its data upgrade has not run (where upgrade.database.auto.run is false, run Gogo's upgrade:execute {})", r.map(|r| r.schema.as_str()).unwrap_or("nothing"), m.bundle, m.bundle)),
                }
            }
        }
        Ok(format!("{} {} started", m.bundle, m.version))
    })
    .map_err(|e| e.context(format!("{} is not healthy", t.id)))?;
    Ok(vec![output("health", seen)])
}
