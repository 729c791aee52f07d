//! An engine without plugins: a fake transport that records every call and can fail or
//! "crash" at a chosen step, a fake strategy with the standard failure policy, and paused
//! tokio time as the clock.

use crate::engine::plan::{StepInfo, XPlan, XStage};
use crate::engine::run::{Decide, Run};
use crate::engine::transport::{BoxFuture, StepCall, StepFailure, Transport};
use crate::engine::{Env, InFlightChoices, Outcome, Setup};
use crate::journal::{Journal, Sync, TargetState};
use crate::plugin::model::{Decision, DecisionKind, Description, Output, Step, Target, WaveReport};
use crate::redact::Redactor;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

/// What the fake transport does at one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Fail,
    /// Never answer, as if the process died in the middle of it.
    Crash,
    /// Wait until the test releases it.
    Hold,
    /// Its host's connection was lost and came back: the outcome is unknown.
    Lost,
    /// Its host, named here, did not come back.
    Down(&'static str),
}

/// Records calls as `run step target` / `undo step target` (target `fleet` for fleet steps).
#[derive(Default)]
pub struct FakeTransport {
    pub calls: Mutex<Vec<String>>,
    pub acts: Mutex<HashMap<String, Act>>,
    pub crashed: tokio::sync::Notify,
    pub held: tokio::sync::Notify,
    pub release: tokio::sync::Notify,
}

impl FakeTransport {
    fn key(action: &str, call: &StepCall) -> String {
        let who = call
            .target
            .as_ref()
            .map(|t| t.id.as_str())
            .unwrap_or("fleet");
        format!("{action} {} {who}", call.step)
    }

    /// Make the call named `key` (e.g. `run start t3`) fail or crash.
    pub fn at(&self, key: &str, act: Act) {
        self.acts.lock().unwrap().insert(key.to_string(), act);
    }

    /// Forget the injected acts (the "process" after a crash is a new one).
    pub fn heal(&self) {
        self.acts.lock().unwrap().clear();
    }

    /// How many times the call `key` was made.
    pub fn count(&self, key: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| *c == key)
            .count()
    }

    async fn call(&self, action: &str, call: &StepCall) -> Result<Vec<Output>, StepFailure> {
        let key = Self::key(action, call);
        self.calls.lock().unwrap().push(key.clone());
        let act = self.acts.lock().unwrap().get(&key).copied();
        match act {
            Some(Act::Fail) => Err(StepFailure {
                message: format!("{key} failed on purpose"),
                transient: false,
                outputs: Vec::new(),
                lost: crate::engine::transport::Lost::No,
            }),
            Some(Act::Crash) => {
                self.crashed.notify_one();
                std::future::pending().await
            }
            Some(Act::Lost) => Err(StepFailure {
                message: format!("{key}: the connection was lost"),
                transient: false,
                outputs: Vec::new(),
                lost: crate::engine::transport::Lost::Unknown,
            }),
            Some(Act::Down(host)) => Err(StepFailure {
                message: format!("host `{host}` did not come back during {key}"),
                transient: false,
                outputs: Vec::new(),
                lost: crate::engine::transport::Lost::HostDown(host.into()),
            }),
            Some(Act::Hold) => {
                self.held.notify_one();
                self.release.notified().await;
                Ok(Vec::new())
            }
            None => Ok(Vec::new()),
        }
    }
}

impl Transport for FakeTransport {
    fn run<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<Vec<Output>, StepFailure>> {
        Box::pin(self.call("run", call))
    }

    fn undo<'a>(&'a self, call: &'a StepCall) -> BoxFuture<'a, Result<(), StepFailure>> {
        Box::pin(async move { self.call("undo", call).await.map(|_| ()) })
    }
}

/// The built-in strategies' policy: a failure in the first wave rolls back, later ones
/// apply `on_failure`.
pub struct FakeStrategy {
    pub on_failure: DecisionKind,
    /// `on-failure = "complete"`: targets failing after the first wave are left as they are.
    pub keep_failed: std::sync::atomic::AtomicBool,
}

impl Decide for FakeStrategy {
    fn decide<'a>(&'a self, r: &'a WaveReport) -> BoxFuture<'a, Result<Decision, String>> {
        Box::pin(async move {
            let kind = match (r.failed.is_empty(), r.wave_index) {
                (true, _) => DecisionKind::Proceed,
                (false, 0) => DecisionKind::Rollback,
                (false, _) => self.on_failure,
            };
            Ok(Decision {
                kind,
                reason: Some(format!("{} failed", r.failed.join(", "))),
            })
        })
    }

    fn label(&self) -> &str {
        "fake-strategy@1"
    }

    fn keeps_failed(&self, wave_index: u32) -> BoxFuture<'_, Result<bool, String>> {
        let keep = wave_index > 0 && self.keep_failed.load(std::sync::atomic::Ordering::SeqCst);
        Box::pin(async move { Ok(keep) })
    }
}

/// A step: (name, undoable, idempotent, undo idempotent).
pub type StepDecl = (&'static str, bool, bool, bool);

/// The steps of release-dir, as it declares them.
pub const RELEASE_DIR: &[StepDecl] = &[
    ("fetch", false, true, true),
    ("stop", true, false, false),
    ("switch", true, true, true),
    ("start", true, false, false),
    ("health", false, true, true),
];

/// A rollout of `n` targets `t1..tn` in waves of `group`, journaled in a temporary folder.
pub struct Harness {
    _dir: tempfile::TempDir,
    pub env: Env,
    pub setup: Arc<Setup>,
    pub plan: XPlan,
    pub transport: Arc<FakeTransport>,
    pub strategy: Arc<FakeStrategy>,
    pub id: i64,
}

impl Harness {
    pub fn new(n: usize, group: usize, steps: &[StepDecl], on_failure: DecisionKind) -> Harness {
        Harness::with_spec(n, group, steps, on_failure, "")
    }

    /// The same, with `extra` added to the spec (e.g. `[[analysis]]` tables, placed in the
    /// plan as a rollout would place them).
    pub fn with_spec(
        n: usize,
        group: usize,
        steps: &[StepDecl],
        on_failure: DecisionKind,
        extra: &str,
    ) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let spec_path = dir.path().join("fleet.toml");
        let mut text = String::from(
            "[strategy]\nplugin = \"s.wasm\"\n[adapter]\nplugin = \"a.wasm\"\n[rollout]\nconcurrency = 4\n",
        );
        for i in 1..=n {
            text.push_str(&format!("[[targets]]\nid = \"t{i}\"\n"));
        }
        text.push_str(extra);
        let spec = crate::spec::parse(&spec_path, &text).unwrap();
        let desc = Description {
            leases: vec![],
            name: "fake".into(),
            version: "1".into(),
            summary: String::new(),
            parameters: vec![],
            capabilities: vec![],
            steps: steps
                .iter()
                .map(|(name, undoable, idempotent, undo_idempotent)| Step {
                    name: name.to_string(),
                    description: String::new(),
                    kind: crate::plugin::model::StepKind::TargetRollout,
                    undoable: *undoable,
                    idempotent: *idempotent,
                    undo_idempotent: *undo_idempotent,
                    default_timeout_s: 30,
                    capabilities: vec![],
                })
                .collect(),
        };
        let targets: Vec<Target> = (1..=n)
            .map(|i| Target {
                id: format!("t{i}"),
                host: "local".into(),
                labels: vec![],
            })
            .collect();
        let ids: Vec<String> = targets.iter().map(|t| t.id.clone()).collect();
        let stages: Vec<XStage> = ids
            .chunks(group)
            .enumerate()
            .map(|(i, c)| XStage::Wave {
                name: format!("group {}", i + 1),
                targets: c.to_vec(),
                finalize: false,
                index: Some(i as u32),
            })
            .collect();
        let mut plan = XPlan {
            waves: stages.len() as u32,
            stages,
            standby: vec![],
            steps: StepInfo::of(&desc),
        };
        crate::engine::analysis::place(&mut plan, &spec).unwrap();
        let redact = Arc::new(Redactor::default());
        let journal = Journal::open(&dir.path().join("j.db"), Sync::Normal).unwrap();
        journal.set_redactor(redact.clone());
        let env = Env {
            runtime: crate::plugin::Runtime::new(dir.path().join("cache")).unwrap(),
            journal: Arc::new(journal),
            ui: Arc::new(crate::ui::Quiet),
            redact,
            away: Vec::new(),
            store: Arc::new(crate::store::Store::open(&dir.path().join("plugins")).unwrap()),
        };
        let id = env
            .journal
            .create_rollout("fake", "fleet.toml", &text)
            .unwrap();
        let keys: Vec<String> = ids.iter().map(|t| format!("local/{t}")).collect();
        env.journal.acquire(id, &keys).unwrap();
        env.journal
            .set_plan(id, &serde_json::to_string(&plan).unwrap())
            .unwrap();
        let setup = Arc::new(Setup {
            spec,
            strategy_label: "fake-strategy@1".into(),
            strategy_params: vec![],
            plugins: vec![],
            resolved: crate::engine::prepare::AdapterSetup {
                adapter_label: "fake@1".into(),
                desc,
                targets,
                adapter_params: vec![],
                secrets: BTreeMap::new(),
                fleet_caps: Default::default(),
                target_caps: HashMap::new(),
                step_caps: HashMap::new(),
                lease_paths: vec![],
                remote_leases: Default::default(),
            },
        });
        Harness {
            _dir: dir,
            env,
            setup,
            plan,
            transport: Arc::new(FakeTransport::default()),
            strategy: Arc::new(FakeStrategy {
                on_failure,
                keep_failed: Default::default(),
            }),
            id,
        }
    }

    /// A run of the rollout in "this process", continuing from the journal.
    pub fn run(&self) -> Run {
        let first_seq = self.env.journal.next_seq(self.id).unwrap();
        Run::new(
            self.env.clone(),
            self.id,
            self.setup.clone(),
            self.transport.clone(),
            self.strategy.clone(),
            self.plan.clone(),
            vec![],
            first_seq,
        )
        .unwrap()
    }

    /// Run `work` until it ends or the transport "crashes"; then the process is gone: its
    /// futures are dropped and the journal holds what was durable.
    pub async fn until_crash<F: std::future::Future<Output = anyhow::Result<Outcome>>>(
        &self,
        work: F,
    ) -> Option<Outcome> {
        tokio::select! {
            o = work => Some(o.unwrap()),
            _ = self.transport.crashed.notified() => None,
        }
    }

    /// `cutover resume` after a crash (the journal still says running).
    pub async fn resume(&self, choices: &InFlightChoices) -> Outcome {
        self.transport.heal();
        let row = self.env.journal.rollout(self.id).unwrap();
        crate::engine::continue_run(&self.env, &row, self.run(), choices)
            .await
            .unwrap()
    }

    /// `cutover rollback` (with the injected acts kept: a rollback may be made to crash).
    pub async fn rollback(&self) -> anyhow::Result<Outcome> {
        crate::engine::rollback_run(&self.env, self.id, self.run()).await
    }

    /// Each target's state as `status` shows it.
    pub fn states(&self) -> BTreeMap<String, TargetState> {
        let plan: XPlan =
            serde_json::from_str(&self.env.journal.rollout(self.id).unwrap().plan).unwrap();
        crate::engine::state::targets(&self.env.journal, self.id, Some(&plan))
            .unwrap()
            .into_iter()
            .map(|t| (t.target, t.state))
            .collect()
    }

    /// Targets whose steps `stop`..`start` ran and were not undone: on the new version.
    pub fn on_new(&self) -> HashSet<String> {
        self.states()
            .into_iter()
            .filter(|(_, s)| *s == TargetState::Updated)
            .map(|(t, _)| t)
            .collect()
    }
}
