//! The rollout spec: one TOML file naming the strategy, the adapter, the targets and the
//! grants. Every error names the file, the line and the key to fix.

pub mod analysis;
mod values;
pub use values::parse_size;
use values::{absolutize, flatten, value_string};
pub mod notify;
mod ssh;
use serde::Deserialize;
use serde_spanned::Spanned;
pub use ssh::Ssh;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A parsed, validated spec.
#[derive(Debug, Clone)]
pub struct Spec {
    /// Where it was read from (relative paths inside are relative to its folder).
    pub path: PathBuf,
    /// The file's text, kept in the journal so `resume` needs nothing else.
    pub text: String,
    pub name: String,
    /// Targets in flight at once inside a wave.
    pub concurrency: usize,
    pub strategy: PluginRef,
    pub adapter: PluginRef,
    /// Per-step time budgets that override the adapter's defaults.
    pub timeouts: BTreeMap<String, Duration>,
    /// `[trust] keys`: public keys (files, relative to the spec, or base64 lines) whose
    /// signature every plugin must carry.
    pub trust: Vec<String>,
    pub limits: Limits,
    pub grants: Grants,
    /// Secret name → where its value comes from.
    pub secrets: BTreeMap<String, SecretSource>,
    pub targets: Vec<TargetSpec>,
    /// How remote targets (`host` other than `local`) are reached.
    pub ssh: Ssh,
    /// Where the adapter's fleet steps run: `local` (the controller, the default) or a host
    /// reached over SSH, such as a load balancer node.
    pub fleet_host: String,
    /// Analysis gates and background analyses.
    pub analyses: Vec<analysis::Analysis>,
    /// Webhooks told of the rollout's events.
    pub notify: Vec<notify::Hook>,
}

/// A plugin named by the spec: a file, or a reference (`oci://…`, `sha256:…`) resolved in the
/// plugin store.
#[derive(Debug, Clone, Default)]
pub struct PluginRef {
    /// The file (empty for a reference).
    pub path: PathBuf,
    pub reference: Option<String>,
    pub sha256: Option<String>,
    pub params: Vec<(String, String)>,
}

/// Resource limits for plugin calls.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct Limits {
    /// Linear memory cap per plugin instance, in bytes.
    pub memory: usize,
    /// Budget of calls that are not steps (describe, preflight, plan, decide).
    pub call_timeout: Duration,
    /// The longest budget a plugin may declare for a step (`default-timeout-s`); the
    /// operator's own `[adapter.timeouts]` are not capped.
    pub max_step_timeout: Duration,
    /// Bytes of each output stream of a program kept by `exec.run`.
    pub exec_output: usize,
    /// Log lines journaled per plugin call; the rest are counted in one line.
    pub log_lines: usize,
    /// Bytes of one log line, error or output value kept; longer text is cut.
    pub log_line_size: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 256 << 20,
            call_timeout: Duration::from_secs(30),
            max_step_timeout: Duration::from_secs(3600),
            exec_output: 16 << 20,
            log_lines: 10_000,
            log_line_size: 16 << 10,
        }
    }
}

/// What the operator grants to plugins.
#[derive(Debug, Clone, Default)]
pub struct Grants {
    pub dirs: Vec<DirGrant>,
    /// Glob patterns of programs `exec` may start.
    pub exec: Vec<String>,
    /// Glob patterns of `host[:port]` that HTTP may reach.
    pub http: Vec<String>,
    /// Glob patterns of `host:port` that TCP conversations may reach.
    pub tcp: Vec<String>,
    /// Environment variables a plugin may set for the programs it runs.
    pub env: Vec<String>,
    /// Variables of the host's environment passed to every program a plugin runs.
    pub pass_env: Vec<String>,
}

/// A granted directory.
#[derive(Debug, Clone)]
pub struct DirGrant {
    pub path: PathBuf,
    pub write: bool,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone)]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
}

/// One target of the fleet.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    pub id: String,
    pub host: String,
    pub labels: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    rollout: Option<RawRollout>,
    /// Optional only for `cutover plugin test` of an adapter; a rollout refuses a spec
    /// without one.
    strategy: Option<Spanned<RawPlugin>>,
    adapter: Spanned<RawAdapter>,
    limits: Option<RawLimits>,
    grants: Option<RawGrants>,
    ssh: Option<Spanned<ssh::RawSsh>>,
    #[serde(default)]
    secrets: BTreeMap<String, Spanned<RawSecret>>,
    trust: Option<RawTrust>,
    #[serde(default)]
    targets: Vec<Spanned<BTreeMap<String, Spanned<toml::Value>>>>,
    #[serde(default)]
    analysis: Vec<Spanned<analysis::RawAnalysis>>,
    #[serde(default)]
    notify: Vec<Spanned<notify::RawHook>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrust {
    #[serde(default)]
    keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRollout {
    name: Option<String>,
    concurrency: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlugin {
    plugin: String,
    sha256: Option<Spanned<String>>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdapter {
    plugin: String,
    sha256: Option<Spanned<String>>,
    #[serde(default)]
    params: BTreeMap<String, toml::Value>,
    #[serde(default)]
    timeouts: BTreeMap<String, Spanned<String>>,
    #[serde(rename = "fleet-host")]
    fleet_host: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawLimits {
    memory: Option<Spanned<String>>,
    call_timeout: Option<Spanned<String>>,
    max_step_timeout: Option<Spanned<String>>,
    exec_output: Option<Spanned<String>>,
    log_lines: Option<Spanned<i64>>,
    log_line_size: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawGrants {
    #[serde(default)]
    dirs: Vec<Spanned<RawDir>>,
    #[serde(default)]
    exec: Vec<String>,
    #[serde(default)]
    http: Vec<String>,
    #[serde(default)]
    tcp: Vec<Spanned<String>>,
    #[serde(default)]
    env: Vec<Spanned<String>>,
    #[serde(default)]
    pass_env: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDir {
    path: String,
    #[serde(default)]
    access: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecret {
    env: Option<String>,
    file: Option<String>,
}

/// A spec error: `file:line:col: message`.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{col}: {message}")]
pub struct SpecError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

struct Ctx<'a> {
    file: String,
    text: &'a str,
}

impl Ctx<'_> {
    fn err(&self, span: std::ops::Range<usize>, message: impl Into<String>) -> SpecError {
        let upto = &self.text[..span.start.min(self.text.len())];
        let line = upto.matches('\n').count() + 1;
        let col = upto.len() - upto.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
        SpecError {
            file: self.file.clone(),
            line,
            col,
            message: message.into(),
        }
    }
}

/// Read and validate a spec file.
pub fn load(path: &Path) -> anyhow::Result<Spec> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read spec {}: {e}", path.display()))?;
    Ok(parse(path, &text)?)
}

/// Parse and validate spec text read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Spec, SpecError> {
    let cx = Ctx {
        file: path.display().to_string(),
        text,
    };
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        cx.err(span, e.message().trim().to_string())
    })?;
    let base = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base = if base.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        base
    };
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };

    let rollout = raw.rollout.unwrap_or(RawRollout {
        name: None,
        concurrency: None,
    });
    let concurrency = match rollout.concurrency {
        None => 8,
        Some(c) if *c.get_ref() >= 1 && *c.get_ref() <= 100_000 => *c.get_ref() as usize,
        Some(c) => {
            return Err(cx.err(
                c.span(),
                "key `rollout.concurrency` must be between 1 and 100000",
            ))
        }
    };

    let pin = |s: &Option<Spanned<String>>, key: &str| -> Result<Option<String>, SpecError> {
        match s {
            None => Ok(None),
            Some(v) => {
                let h = v.get_ref().trim().to_ascii_lowercase();
                if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) {
                    Ok(Some(h))
                } else {
                    Err(cx.err(
                        v.span(),
                        format!(
                            "key `{key}.sha256` must be 64 hex digits (sha256 of the .wasm file)"
                        ),
                    ))
                }
            }
        }
    };
    let plugin_ref = |plugin: &str, sha256: Option<String>, params| {
        if crate::store::is_reference(plugin.trim()) {
            PluginRef {
                reference: Some(plugin.trim().to_string()),
                sha256,
                params,
                ..PluginRef::default()
            }
        } else {
            PluginRef {
                path: resolve(plugin),
                sha256,
                params,
                reference: None,
            }
        }
    };
    let strategy = match raw.strategy {
        Some(s) => {
            let sspan = s.span();
            let s = s.into_inner();
            if s.plugin.trim().is_empty() {
                return Err(cx.err(sspan, "key `strategy.plugin` is empty"));
            }
            plugin_ref(&s.plugin, pin(&s.sha256, "strategy")?, flatten(&s.params))
        }
        None => PluginRef::default(),
    };
    let aspan = raw.adapter.span();
    let a = raw.adapter.into_inner();
    if a.plugin.trim().is_empty() {
        return Err(cx.err(aspan.clone(), "key `adapter.plugin` is empty"));
    }
    let mut timeouts = BTreeMap::new();
    for (step, v) in &a.timeouts {
        let d = humantime::parse_duration(v.get_ref()).map_err(|_| {
            cx.err(
                v.span(),
                format!(
                    "key `adapter.timeouts.{step}`: `{}` is not a duration (write e.g. \"90s\" or \"2m\")",
                    v.get_ref()
                ),
            )
        })?;
        timeouts.insert(step.clone(), d);
    }
    let fleet_host = match a.fleet_host {
        Some(h) if h.trim().is_empty() => {
            return Err(cx.err(
                aspan,
                "key `adapter.fleet-host` is empty (write \"local\" or a host)",
            ))
        }
        Some(h) => h,
        None => "local".to_string(),
    };
    let adapter = plugin_ref(&a.plugin, pin(&a.sha256, "adapter")?, flatten(&a.params));

    let mut limits = Limits::default();
    if let Some(l) = raw.limits {
        if let Some(m) = l.memory {
            limits.memory = parse_size(m.get_ref()).ok_or_else(|| {
                cx.err(
                    m.span(),
                    "key `limits.memory` must be a size such as \"256MiB\" or \"1GiB\"",
                )
            })?;
        }
        let duration = |t: &Spanned<String>, key: &str| {
            humantime::parse_duration(t.get_ref()).map_err(|_| {
                cx.err(
                    t.span(),
                    format!(
                        "key `limits.{key}`: `{}` is not a duration (write e.g. \"30s\")",
                        t.get_ref()
                    ),
                )
            })
        };
        let size = |t: &Spanned<String>, key: &str| {
            parse_size(t.get_ref()).ok_or_else(|| {
                cx.err(
                    t.span(),
                    format!("key `limits.{key}` must be a size such as \"16MiB\""),
                )
            })
        };
        if let Some(t) = &l.call_timeout {
            limits.call_timeout = duration(t, "call-timeout")?;
        }
        if let Some(t) = &l.max_step_timeout {
            limits.max_step_timeout = duration(t, "max-step-timeout")?;
        }
        if let Some(t) = &l.exec_output {
            limits.exec_output = size(t, "exec-output")?;
        }
        if let Some(t) = &l.log_line_size {
            limits.log_line_size = size(t, "log-line-size")?.max(256);
        }
        if let Some(n) = &l.log_lines {
            limits.log_lines = usize::try_from(*n.get_ref()).map_err(|_| {
                cx.err(
                    n.span(),
                    "key `limits.log-lines` must be a count of 0 or more",
                )
            })?;
        }
    }

    let mut grants = Grants::default();
    if let Some(g) = raw.grants {
        for d in g.dirs {
            let span = d.span();
            let d = d.into_inner();
            let write = match d.access.as_deref() {
                None | Some("read") => false,
                Some("read-write") => true,
                Some(other) => {
                    return Err(cx.err(
                        span,
                        format!(
                            "key `grants.dirs.access`: `{other}` is not `read` or `read-write`"
                        ),
                    ))
                }
            };
            grants.dirs.push(DirGrant {
                path: resolve(&d.path),
                write,
            });
        }
        grants.exec = g.exec.iter().map(|e| absolutize(&resolve(e))).collect();
        grants.http = g.http;
        for t in &g.tcp {
            if let Err(why) = crate::plugin::authority::tcp::grant_ok(t.get_ref()) {
                return Err(cx.err(t.span(), format!("key `grants.tcp`: {why}")));
            }
        }
        grants.tcp = g.tcp.into_iter().map(Spanned::into_inner).collect();
        for (key, names) in [("env", &g.env), ("pass-env", &g.pass_env)] {
            for n in names {
                if let Err(why) = crate::plugin::authority::env_name_ok(n.get_ref(), key == "env") {
                    return Err(cx.err(n.span(), format!("key `grants.{key}`: {why}")));
                }
            }
        }
        grants.env = g.env.into_iter().map(Spanned::into_inner).collect();
        grants.pass_env = g.pass_env.into_iter().map(Spanned::into_inner).collect();
    }

    let mut secrets = BTreeMap::new();
    for (name, s) in raw.secrets {
        let span = s.span();
        let s = s.into_inner();
        let src = match (s.env, s.file) {
            (Some(e), None) => SecretSource::Env(e),
            (None, Some(f)) => SecretSource::File(resolve(&f)),
            _ => {
                return Err(cx.err(
                    span,
                    format!("key `secrets.{name}` needs exactly one of `env` or `file`"),
                ))
            }
        };
        secrets.insert(name, src);
    }

    let mut targets = Vec::new();
    let mut seen = BTreeSet::new();
    for (i, t) in raw.targets.into_iter().enumerate() {
        let span = t.span();
        let mut map = t.into_inner();
        let id = match map.remove("id") {
            Some(v) => match v.get_ref() {
                toml::Value::String(s) if !s.trim().is_empty() => s.clone(),
                _ => {
                    return Err(cx.err(
                        v.span(),
                        format!("key `targets[{i}].id` must be a non-empty string"),
                    ))
                }
            },
            None => return Err(cx.err(span, format!("key `targets[{i}].id` is missing"))),
        };
        let host = match map.remove("host") {
            Some(v) => match v.get_ref() {
                toml::Value::String(s) => s.clone(),
                _ => {
                    return Err(cx.err(
                        v.span(),
                        format!("key `targets[{i}].host` must be a string"),
                    ))
                }
            },
            None => "local".to_string(),
        };
        if !seen.insert(id.clone()) {
            return Err(cx.err(
                span,
                format!("key `targets[{i}].id`: duplicate target id `{id}`"),
            ));
        }
        let labels = map
            .into_iter()
            .map(|(k, v)| (k, value_string(v.get_ref())))
            .collect();
        targets.push(TargetSpec { id, host, labels });
    }
    if targets.is_empty() {
        return Err(cx.err(0..0, "no [[targets]]: add at least one target"));
    }

    let ssh = match raw.ssh {
        Some(t) => {
            let span = t.span();
            t.into_inner().parse().map_err(|e| cx.err(span, e))?
        }
        None => Ssh::default(),
    };
    let mut analyses: Vec<analysis::Analysis> = Vec::new();
    for a in raw.analysis {
        let span = a.span();
        let a = a
            .into_inner()
            .check(|p, sha, params| plugin_ref(p, sha, params))
            .map_err(|(s, m)| cx.err(if s.is_empty() { span.clone() } else { s }, m))?;
        if analyses.iter().any(|x| x.name == a.name) {
            return Err(cx.err(
                span,
                format!("two [[analysis]] tables are named `{}`", a.name),
            ));
        }
        analyses.push(a);
    }
    let mut notify = Vec::new();
    for h in raw.notify {
        let span = h.span();
        let hook = h
            .into_inner()
            .check()
            .map_err(|m| cx.err(span.clone(), m))?;
        if let Some(s) = &hook.secret {
            if !secrets.contains_key(s) {
                return Err(cx.err(span, format!("notify secret `{s}` is not under [secrets]")));
            }
        }
        notify.push(hook);
    }
    Ok(Spec {
        ssh,
        fleet_host,
        analyses,
        notify,
        path: path.to_path_buf(),
        text: text.to_string(),
        name: rollout.name.unwrap_or_else(|| {
            path.file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "rollout".into())
        }),
        concurrency,
        strategy,
        adapter,
        timeouts,
        trust: raw.trust.map(|t| t.keys).unwrap_or_default(),
        limits,
        grants,
        secrets,
        targets,
    })
}

#[cfg(test)]
mod tests;
