//! The deployment manager of a simulated cell: its configuration, its members, and the
//! wsadmin objects it answers (`AdminApp`, `AdminControl`, `AdminTask`, `AdminConfig`), each
//! method as IBM documents it (cited at each one). Every change is written to `state.json`
//! and every action to `events.log`, for the tests.

use crate::jython::{self, Expr, Stmt};
use crate::member::Member;
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The cell as `init` writes it (`cell.json`).
#[derive(Serialize, Deserialize, Clone)]
pub struct Config {
    pub cell: String,
    pub cluster: String,
    pub app: String,
    /// The deployment manager's SOAP connector port (wsadmin `-port`).
    pub soap_port: u16,
    pub members: Vec<MemberConfig>,
    /// Installed edition deployments, `App-edition1.0`.
    pub installed: Vec<String>,
    /// Editions with an application routing policy (work class).
    pub routing: Vec<String>,
    /// The PMI statistic set of the members ("basic", "extended", "all").
    pub statistic_set: String,
    /// How long a server takes to start, in milliseconds.
    pub restart_ms: u64,
    /// How long a request takes, in milliseconds.
    pub work_ms: u64,
    /// wsadmin's `-user`/`-password`, when security is on.
    pub user: Option<String>,
    pub password: Option<String>,
}

#[derive(Serialize, Deserialize, Clone)]
pub struct MemberConfig {
    pub name: String,
    pub node: String,
    pub port: u16,
}

/// What changes at run time (`state.json`).
#[derive(Serialize, Deserialize, Clone, Default)]
pub struct State {
    /// Edition → `active` or `inactive`.
    pub editions: BTreeMap<String, String>,
    /// Member → applications running there.
    pub running: BTreeMap<String, BTreeSet<String>>,
    /// Members whose server is stopped.
    pub stopped: BTreeSet<String>,
}

pub struct Cell {
    pub dir: PathBuf,
    pub config: Config,
    pub members: Vec<Arc<Member>>,
    state: Mutex<State>,
    /// One script at a time, as one deployment manager serialises configuration sessions.
    lock: Mutex<()>,
}

#[derive(Clone, Debug)]
enum V {
    Str(String),
    Num(i64),
    List(Vec<V>),
    /// A scripting object (`AdminControl`) or a Java package (`java.lang`).
    Obj(String),
    /// A JMX ObjectName (from `makeObjectName`).
    Name(String),
    /// A `WSStats` of a member, or one module's.
    Stats(usize, Option<String>),
    Bool(bool),
}

impl V {
    fn text(&self) -> String {
        match self {
            V::Str(s) | V::Name(s) => s.clone(),
            V::Num(n) => n.to_string(),
            V::Bool(b) => if *b { "1" } else { "0" }.into(),
            V::List(l) => format!(
                "[{}]",
                l.iter()
                    .map(|v| format!("'{}'", v.text()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            V::Obj(o) => o.clone(),
            V::Stats(..) => "WSStats".into(),
        }
    }
}

/// A wsadmin failure, printed as WASX7015E with the Java exception.
fn exception(java: &str) -> anyhow::Error {
    anyhow!("{java}")
}

impl Cell {
    pub fn open(dir: &Path) -> Result<Cell> {
        let config: Config = serde_json::from_str(&simkit::read(&dir.join("cell.json")))
            .with_context(|| format!("{}/cell.json", dir.display()))?;
        let mut state: State =
            serde_json::from_str(&simkit::read(&dir.join("state.json"))).unwrap_or_default();
        let first = config.installed.first().cloned().unwrap_or_default();
        let members = config
            .members
            .iter()
            .map(|m| {
                let apps = state
                    .running
                    .entry(m.name.clone())
                    .or_insert_with(|| [first.clone()].into())
                    .clone();
                Member::new(
                    &m.name,
                    &m.node,
                    m.port,
                    apps,
                    dir.join("sessions"),
                    Duration::from_millis(config.work_ms),
                )
            })
            .collect();
        std::fs::create_dir_all(dir.join("sessions"))?;
        std::fs::create_dir_all(dir.join("faults"))?;
        Ok(Cell {
            dir: dir.into(),
            config,
            members,
            state: Mutex::new(state),
            lock: Mutex::new(()),
        })
    }

    /// Start every member whose server is not stopped.
    pub fn start(&self) -> Result<()> {
        let stopped = self.state.lock().unwrap().stopped.clone();
        for m in &self.members {
            if !stopped.contains(&m.name) {
                m.start()?;
            }
        }
        self.save()
    }

    fn save(&self) -> Result<()> {
        let mut st = self.state.lock().unwrap();
        for m in &self.members {
            st.running
                .insert(m.name.clone(), m.apps.lock().unwrap().clone());
        }
        simkit::write_atomic(
            &self.dir.join("state.json"),
            serde_json::to_string_pretty(&*st)?.as_bytes(),
        )
    }

    fn event(&self, line: &str) {
        let _ = simkit::append(&self.dir.join("events.log"), line);
    }

    /// A fault the test planted for a member: `faults/<member>` holding `start-app` (its
    /// applications fail to start), `start-app NAME` (that one fails) or `start-server` (its
    /// server fails to start).
    fn fault(&self, member: &str, what: &str) -> bool {
        simkit::read(&self.dir.join("faults").join(member))
            .lines()
            .any(|l| l.trim() == what)
    }

    /// Run a wsadmin script; what it printed, or the exception that stopped it (after what
    /// it printed before).
    pub fn run(&self, script: &str) -> (String, Option<String>) {
        let _one = self.lock.lock().unwrap();
        let mut out = String::new();
        let stmts = match jython::parse(script) {
            Ok(s) => s,
            Err(e) => return (out, Some(format!("{e}"))),
        };
        let mut vars: BTreeMap<String, V> = BTreeMap::new();
        for s in &stmts {
            let r = match s {
                Stmt::Assign(n, e) => self.eval(e, &vars).map(|v| {
                    vars.insert(n.clone(), v);
                }),
                Stmt::Print(e) => self.eval(e, &vars).map(|v| {
                    out.push_str(&v.text());
                    out.push('\n');
                }),
                Stmt::Eval(e) => self.eval(e, &vars).map(|_| ()),
            };
            if let Err(e) = r {
                let _ = self.save();
                return (out, Some(format!("{e:#}")));
            }
        }
        let _ = self.save();
        (out, None)
    }

    fn eval(&self, e: &Expr, vars: &BTreeMap<String, V>) -> Result<V> {
        Ok(match e {
            Expr::Str(s) => V::Str(s.clone()),
            Expr::Num(n) => V::Num(*n),
            Expr::List(l) => V::List(
                l.iter()
                    .map(|x| self.eval(x, vars))
                    .collect::<Result<_>>()?,
            ),
            Expr::Name(n) => match vars.get(n) {
                Some(v) => v.clone(),
                None if matches!(
                    n.as_str(),
                    "AdminApp" | "AdminControl" | "AdminTask" | "AdminConfig" | "java.lang"
                ) =>
                {
                    V::Obj(n.clone())
                }
                None => bail!("NameError: {n}"),
            },
            Expr::Call {
                receiver,
                method,
                args,
            } => {
                let recv = match receiver {
                    Some(r) => self.eval(r, vars)?,
                    None => bail!("NameError: {method}"),
                };
                let args: Vec<V> = args
                    .iter()
                    .map(|a| self.eval(a, vars))
                    .collect::<Result<_>>()?;
                self.call(&recv, method, &args)?
            }
        })
    }

    fn call(&self, recv: &V, method: &str, args: &[V]) -> Result<V> {
        let arg = |i: usize| args.get(i).map(V::text).unwrap_or_default();
        match (recv, method) {
            // "Commands for the AdminApp object": list "Lists the applications installed",
            // one per line (https://www.ibm.com/docs/en/was-nd/9.0.5?topic=scripting-commands-adminapp-object-using-wsadmin).
            (V::Obj(o), "list") if o == "AdminApp" => Ok(V::Str(self.config.installed.join("\n"))),
            // Same page, listModules with `-server`: each module with the deployment target
            // it is mapped to, `app#module+descriptor#WebSphere:cell=...,cluster=...`.
            (V::Obj(o), "listModules") if o == "AdminApp" => {
                let app = arg(0);
                if !self.config.installed.contains(&app) {
                    bail!("com.ibm.ws.scripting.ScriptingException: WASX7280E: An application with name \"{app}\" does not exist.");
                }
                let target = if arg(1).contains("-server") {
                    format!(
                        "#WebSphere:cell={},cluster={}",
                        self.config.cell, self.config.cluster
                    )
                } else {
                    String::new()
                };
                Ok(V::Str(format!("{app}#app.war+WEB-INF/web.xml{target}")))
            }
            // "Commands for the AdminConfig object": save commits the configuration session.
            (V::Obj(o), "save") if o == "AdminConfig" => Ok(V::Str(String::new())),
            (V::Obj(o), "Boolean") if o == "java.lang" => Ok(V::Bool(arg(0) == "true")),
            (V::Obj(o), m) if o == "AdminTask" => self.admin_task(m, &arg(0)),
            (V::Obj(o), m) if o == "AdminControl" => self.admin_control(m, args),
            // The WSStats API (com.ibm.websphere.pmi.stat.WSStats): getStats(name) gives a
            // module's statistics, getStatistic(dataId) one counter; a RangeStatistic's
            // getCurrent() and a CountStatistic's getCount() its value. IDs from "Servlet
            // session counters" (rprf_datacounter6: activeSessions 6) and "Web application
            // counters" (rprf_datacounter10: totalRequests 11, concurrentRequests 12).
            (V::Stats(m, None), "getStats") => Ok(V::Stats(*m, Some(arg(0)))),
            (V::Stats(m, Some(module)), "getStatistic") => {
                let member = &self.members[*m];
                let id = match args.first() {
                    Some(V::Num(n)) => *n,
                    _ => bail!("TypeError: getStatistic(int)"),
                };
                let set = self.config.statistic_set.as_str();
                let value = match (module.as_str(), id) {
                    ("servletSessionsModule", 6) if set == "all" => {
                        member.active_sessions.load(Ordering::SeqCst)
                    }
                    ("webAppModule", 11) => member.total.load(Ordering::SeqCst),
                    ("webAppModule", 12) if set == "all" || set == "extended" => {
                        member.concurrent.load(Ordering::SeqCst)
                    }
                    // A counter outside the enabled statistic set is not collected.
                    _ => bail!("AttributeError: 'NoneType' object has no attribute 'getCurrent'"),
                };
                Ok(V::Num(value as i64))
            }
            (V::Num(n), "getCurrent" | "getCount") => Ok(V::Num(*n)),
            _ => bail!("AttributeError: {} has no method {method}", recv.text()),
        }
    }

    /// "Intelligent Management: application edition management administrative tasks"
    /// (rwve_adtaskapped): `activateEdition` / `deactivateEdition` with `-appName` and
    /// `-edition`, returning true or false.
    fn admin_task(&self, method: &str, args: &str) -> Result<V> {
        let words: Vec<&str> = args
            .trim_matches(|c| c == '[' || c == ']')
            .split_whitespace()
            .collect();
        let opt = |k: &str| {
            words
                .iter()
                .position(|w| *w == k)
                .and_then(|i| words.get(i + 1))
                .map(|s| s.to_string())
        };
        let (Some(app), Some(edition)) = (opt("-appName"), opt("-edition")) else {
            bail!("com.ibm.websphere.management.cmdframework.InvalidParameterValueException: -appName and -edition are required");
        };
        let installed = self
            .config
            .installed
            .contains(&format!("{app}-edition{edition}"));
        let state = match method {
            "activateEdition" => "active",
            "deactivateEdition" => "inactive",
            _ => bail!("AttributeError: AdminTask has no command {method} in this cell"),
        };
        if !installed || app != self.config.app {
            return Ok(V::Str("false".into()));
        }
        self.state
            .lock()
            .unwrap()
            .editions
            .insert(edition.clone(), state.into());
        self.event(&format!("{method} {edition}"));
        Ok(V::Str("true".into()))
    }

    fn member(&self, name: &str, node: Option<&str>) -> Result<(usize, &Arc<Member>)> {
        self.members
            .iter()
            .enumerate()
            .find(|(_, m)| m.name == name && node.is_none_or(|n| n == m.node))
            .ok_or_else(|| {
                exception(&format!(
                    "javax.management.InstanceNotFoundException: server {name}"
                ))
            })
    }

    /// The MBeans of the running servers, as object names ("Querying server state",
    /// txml_queryserver: `WebSphere:cell=mycell,name=server1,mbeanIdentifier=server.xml#Server_1,type=Server,node=mynode,process=server1,processType=ManagedProcess`).
    fn mbeans(&self) -> Vec<String> {
        let c = &self.config.cell;
        let mut out = Vec::new();
        for m in self.members.iter().filter(|m| m.running()) {
            let (n, p) = (&m.node, &m.name);
            out.push(format!("WebSphere:cell={c},name={p},mbeanIdentifier=server.xml#Server_1,type=Server,node={n},process={p},processType=ManagedProcess"));
            out.push(format!("WebSphere:cell={c},name=ApplicationManager,mbeanIdentifier=ApplicationManager,type=ApplicationManager,node={n},process={p}"));
            out.push(format!("WebSphere:cell={c},name=PerfMBean,mbeanIdentifier=PerfMBean,type=Perf,node={n},process={p}"));
            for a in m.apps.lock().unwrap().iter() {
                out.push(format!("WebSphere:cell={c},name={a},mbeanIdentifier=cells/{c}/applications/{a}.ear/deployments/{a}/deployment.xml#ApplicationDeployment_1,type=Application,node={n},process={p}"));
            }
        }
        out
    }

    /// Object names matching a query `key=value,...[,*]`.
    fn query(&self, q: &str) -> Vec<String> {
        let want: Vec<(&str, &str)> = q
            .trim_start_matches("WebSphere:")
            .split(',')
            .map(str::trim)
            .filter(|p| *p != "*" && !p.is_empty())
            .filter_map(|p| p.split_once('='))
            .collect();
        self.mbeans()
            .into_iter()
            .filter(|name| {
                let have: Vec<(&str, &str)> = name["WebSphere:".len()..]
                    .split(',')
                    .filter_map(|p| p.split_once('='))
                    .collect();
                want.iter().all(|w| have.contains(w))
            })
            .collect()
    }

    fn keys(name: &str) -> BTreeMap<String, String> {
        name.trim_start_matches("WebSphere:")
            .split(',')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// "Commands for the AdminControl object" (rxml_admincontrol).
    fn admin_control(&self, method: &str, args: &[V]) -> Result<V> {
        let arg = |i: usize| args.get(i).map(V::text).unwrap_or_default();
        match method {
            // completeObjectName: the first match, or an empty string ("If the server is
            // stopped, the completeObjectName command returns an empty string").
            "completeObjectName" => Ok(V::Str(
                self.query(&arg(0)).into_iter().next().unwrap_or_default(),
            )),
            "queryNames" => Ok(V::Str(self.query(&arg(0)).join("\n"))),
            "makeObjectName" => {
                let s = arg(0);
                if s.is_empty() {
                    bail!("javax.management.MalformedObjectNameException: Key properties cannot be empty");
                }
                Ok(V::Name(s))
            }
            // getAttribute(server, 'state') -> STARTED ("Querying server state").
            "getAttribute" => {
                let k = Self::keys(&arg(0));
                if k.get("type").map(String::as_str) != Some("Server") || arg(1) != "state" {
                    bail!("javax.management.AttributeNotFoundException: {}", arg(1));
                }
                let (_, m) =
                    self.member(k.get("process").map(String::as_str).unwrap_or(""), None)?;
                if !m.running() {
                    bail!("javax.management.InstanceNotFoundException: {}", arg(0));
                }
                Ok(V::Str("STARTED".into()))
            }
            // stopServer(server, node): "WASX7337I: Invoked stop for server ... Waiting for
            // stop completion." then "WASX7264I: Stop completed for server ... on node ..."
            // ("Stopping servers using scripting").
            "stopServer" => {
                let (server, node) = (arg(0), arg(1));
                let (_, m) = self.member(&server, Some(&node))?;
                m.stop(Duration::from_secs(60));
                self.state.lock().unwrap().stopped.insert(server.clone());
                self.event(&format!("stopServer {server}"));
                Ok(V::Str(format!("WASX7337I: Invoked stop for server \"{server}\" Waiting for stop completion.\nWASX7264I: Stop completed for server \"{server}\" on node \"{node}\"")))
            }
            // startServer(server, node) (AdminControl command list); the message it prints
            // is not quoted in the documentation read, so none is printed: callers check the
            // server's state.
            "startServer" => {
                let (server, node) = (arg(0), arg(1));
                let (_, m) = self.member(&server, Some(&node))?;
                std::thread::sleep(Duration::from_millis(self.config.restart_ms));
                self.event(&format!("startServer {server}"));
                if self.fault(&server, "start-server") {
                    bail!("com.ibm.ws.exception.RuntimeError: server {server} failed to start");
                }
                m.start()?;
                self.state.lock().unwrap().stopped.remove(&server);
                Ok(V::Str(String::new()))
            }
            // invoke(applicationManager, 'startApplication'|'stopApplication', app) ("Starting
            // an application using wsadmin scripting", txml_startapplication), and
            // invoke(perf, 'getStatisticSet') (Perf MBean).
            "invoke" => {
                let k = Self::keys(&arg(0));
                let (_, m) = self.member(
                    k.get("process").map(String::as_str).unwrap_or(""),
                    k.get("node").map(String::as_str),
                )?;
                if !m.running() {
                    bail!("javax.management.InstanceNotFoundException: {}", arg(0));
                }
                match (k.get("type").map(String::as_str), arg(1).as_str()) {
                    (Some("Perf"), "getStatisticSet") => {
                        Ok(V::Str(self.config.statistic_set.clone()))
                    }
                    (Some("ApplicationManager"), op @ ("startApplication" | "stopApplication")) => {
                        let app = arg(2);
                        if !self.config.installed.contains(&app) {
                            bail!("javax.management.MBeanException: application {app} is not installed");
                        }
                        self.event(&format!("{op} {} {app}", m.name));
                        if op == "startApplication" {
                            std::thread::sleep(Duration::from_millis(self.config.restart_ms / 4));
                            if self.fault(&m.name, "start-app")
                                || self.fault(&m.name, &format!("start-app {app}"))
                            {
                                bail!("javax.management.MBeanException: com.ibm.ws.exception.RuntimeWarning: application {app} failed to start on {}", m.name);
                            }
                            m.apps.lock().unwrap().insert(app);
                        } else {
                            m.apps.lock().unwrap().remove(&app);
                        }
                        Ok(V::Str(String::new()))
                    }
                    (t, op) => bail!("javax.management.ReflectionException: {op} on {t:?}"),
                }
            }
            // invoke_jmx(perf, 'getStatsObject', [server, java.lang.Boolean('true')],
            // ['javax.management.ObjectName', 'java.lang.Boolean']) -> WSStats (Perf MBean
            // API; "Enabling PMI using the wsadmin tool", tprf_command).
            "invoke_jmx" => {
                let k = Self::keys(&arg(0));
                if k.get("type").map(String::as_str) != Some("Perf") || arg(1) != "getStatsObject" {
                    bail!("javax.management.ReflectionException: {}", arg(1));
                }
                let Some(V::List(params)) = args.get(2) else {
                    bail!("TypeError: invoke_jmx parameters must be a list");
                };
                let target = Self::keys(&params.first().map(V::text).unwrap_or_default());
                let (i, m) = self.member(
                    target.get("process").map(String::as_str).unwrap_or(""),
                    None,
                )?;
                if !m.running() {
                    bail!("javax.management.InstanceNotFoundException: {}", arg(0));
                }
                Ok(V::Stats(i, None))
            }
            _ => bail!("AttributeError: AdminControl has no method {method} in this cell"),
        }
    }

    /// `workclassoperations.py listWorkClasses -type ARP -appname A`: "The format of
    /// listing is workclassname type appname/odrname deploymentname"
    /// ("workclassoperations.py script", was2393).
    pub fn list_work_classes(&self, args: &[String]) -> Result<String> {
        let opt = |k: &str| {
            args.iter()
                .position(|a| a == k)
                .and_then(|i| args.get(i + 1))
                .cloned()
                .unwrap_or_default()
        };
        if args.first().map(String::as_str) != Some("listWorkClasses") {
            bail!("workclassoperations.py: this cell answers listWorkClasses only");
        }
        let (kind, app) = (opt("-type"), opt("-appname"));
        if kind != "ARP" || app != self.config.app {
            return Ok(String::new());
        }
        Ok(self
            .config
            .routing
            .iter()
            .map(|e| format!("Default_HTTP_WC ARP {app} {app}-edition{e}\n"))
            .collect())
    }

    pub fn check_login(&self, user: Option<&str>, password: Option<&str>) -> Result<()> {
        match (&self.config.user, &self.config.password) {
            (Some(u), Some(p)) if Some(u.as_str()) != user || Some(p.as_str()) != password => {
                bail!("WASX7246E: Cannot establish \"SOAP\" connection to host \"localhost\" because of an authentication failure. Ensure that user and password are correct on the command line or in a properties file.")
            }
            _ => Ok(()),
        }
    }
}
