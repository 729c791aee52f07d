//! `websphere-edition`: roll a new application edition onto a WebSphere ND cluster one
//! member at a time, as IBM's edition rollout guide describes (the "seed", cited by line),
//! through documented wsadmin (Jython) calls and a router in front of the members.
//!
//! Per member: `drain` (the router stops sending new sessions; the drainage interval, ending
//! early when PMI shows the member quiesced; then no request at all and the in-flight ones
//! finish), the reset strategy as `stop-old` and `start-new` (soft: stop the old edition and
//! start the new one in the running server through its ApplicationManager; hard: the server
//! is stopped and started between the two), `verify` (server STARTED, the new edition alone,
//! the member's own answer) and `rejoin`. For the fleet: `switch` (atomic rollouts: all
//! traffic to the updated half in one router command), `activate` (the new edition active,
//! the old one inactive) and `rejoin-held`.
//!
//! IBM's own `rolloutEdition` runs the whole rollout in one call and has no per-member form,
//! so the adapter drives the members with the documented primitives and activates the edition
//! once at the end; a failure in the first group therefore leaves the old edition active.

mod check;
mod member;
mod router;
mod steps;
mod wsadmin;

use cutover_sdk::params::{declare, get};
use cutover_sdk::{About, Access, Cap, StepDef};
use cutover_sdk::{
    Constraint, ConstraintKind, Estimate, Finding, MaxTogether, Pair, PreflightContext, Result,
    StepEstimate, StepKind, Target,
};
use steps::*;

struct WebsphereEdition;

const WSADMIN: Cap = Cap::Exec("{wsadmin}");
const ROUTER: Cap = Cap::Tcp("{router}");

impl cutover_sdk::Adapter for WebsphereEdition {
    fn about() -> About {
        let p = declare;
        let not_documented = |name: &str, what: &str, default: Option<&str>| {
            p(
                name,
                &format!("{what} (not documented by IBM)"),
                false,
                false,
                default,
            )
        };
        About {
            name: "websphere-edition",
            version: env!("CARGO_PKG_VERSION"),
            summary: "WebSphere ND application editions, rolled out member by member behind a router",
            parameters: vec![
                p("wsadmin", "the wsadmin program (wsadmin.sh of the deployment manager's profile)", true, false, None),
                p("dmgr-host", "the deployment manager's host (wsadmin -host)", false, false, Some("localhost")),
                p("dmgr-port", "its SOAP connector port (wsadmin -port)", false, false, Some("8879")),
                p("wsadmin-user", "wsadmin -user, when administrative security is on", false, false, None),
                p("wsadmin-password", "the secret holding wsadmin -password", false, false, None),
                p("profile", "the deployment manager's profile root (properties/soap.client.props)", true, false, None),
                p("workclass-script", "workclassoperations.py of the installation (app_server_root/bin)", true, false, None),
                p("app", "the application", true, false, None),
                p("from-edition", "the edition active now", true, false, None),
                p("edition", "the new edition, installed and inactive", true, false, None),
                not_documented("edition-deployment", "the deployed application name of an edition", Some("{app}-edition{edition}")),
                p("cluster", "the cluster both editions are deployed to", true, false, None),
                p("admin-role", "the wsadmin user's role: configurator or administrator (no command lists it)", true, false, None),
                p("rollout-strategy", "grouped (members rejoin once updated) or atomic (updated members wait for the switch)", false, false, Some("grouped")),
                p("reset-strategy", "soft (restart the application) or hard (restart the server)", false, false, Some("soft")),
                p("drainage-interval", "seconds the sessions get before the reset; 0: until PMI shows the member quiesced", false, false, Some("30")),
                not_documented("poll-interval", "seconds between PMI readings while draining", Some("5")),
                not_documented("quiesce-wait", "seconds to wait for requests in flight when PMI cannot be read", Some("60")),
                p("quiesce-estimate", "the internal quiesce timeout in IBM's estimate, seconds", false, false, Some("300")),
                p("restart-estimate", "the application or server restart in IBM's estimate, seconds", false, false, Some("600")),
                p("router", "host:port of the router's runtime API (HAProxy stats socket, level admin)", true, false, None),
                p("router-backend", "the router's backend of the cluster", true, false, None),
                p("node", "the member's node", true, true, None),
                p("server", "the member's server name (default: the target id)", false, true, None),
                p("router-server", "the member's name in the router (default: its server name)", false, true, None),
                p("address", "host:port of the member's own HTTP transport, for verify", false, true, None),
                p("verify-path", "the path verify asks the member for", false, false, Some("/")),
                p("verify-expect", "text the new edition's answer contains", false, false, None),
            ],
            capabilities: vec![
                WSADMIN.capability(),
                Cap::Secret("{wsadmin-password?}").capability(),
                ROUTER.capability(),
                Cap::Dir("{profile}/properties", Access::Read).capability(),
                Cap::Dir("{profile}/temp", Access::ReadWrite).capability(),
            ],
            // One rollout of an application at a time (the seed, L9).
            leases: vec!["{profile}/temp/cutover-{app}.lease".into()],
        }
    }

    const STEPS: &'static [StepDef] = &[
        StepDef {
            name: "drain",
            about: "no new sessions; the drainage interval (early end on PMI); no requests; in-flight ones finish",
            run: drain,
            undo: Some(undrain),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 1800,
            ..StepDef::TARGET
        },
        StepDef {
            name: "stop-old",
            about: "stop the old edition (hard reset: and the server)",
            run: stop_old,
            undo: Some(undo_stop_old),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 900,
            ..StepDef::TARGET
        },
        StepDef {
            name: "start-new",
            about: "start the server (hard reset) and the new edition",
            run: start_new,
            undo: Some(undo_start_new),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 1200,
            ..StepDef::TARGET
        },
        StepDef {
            name: "verify",
            about: "server STARTED, the new edition alone, the member's own answer",
            run: verify,
            idempotent: true,
            timeout_s: 300,
            caps: &[Cap::Http("{address?}")],
            ..StepDef::TARGET
        },
        StepDef {
            name: "rejoin",
            about: "back in the router once its health check passes (atomic: held until the switch)",
            run: rejoin,
            undo: Some(undo_rejoin),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 1800,
            ..StepDef::TARGET
        },
        StepDef {
            name: "switch",
            about: "atomic: all traffic to the updated half in one router command",
            run: switch,
            undo: Some(switch_back),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 300,
            ..StepDef::FLEET
        },
        StepDef {
            name: "activate",
            about: "activateEdition of the new edition, deactivateEdition of the old",
            kind: StepKind::FleetFinalize,
            run: activate,
            undo: Some(deactivate),
            idempotent: true,
            undo_idempotent: true,
            timeout_s: 600,
            ..StepDef::FLEET
        },
        StepDef {
            name: "rejoin-held",
            about: "atomic: the second half back in the router",
            kind: StepKind::TargetFinalize,
            run: rejoin_held,
            idempotent: true,
            timeout_s: 300,
            ..StepDef::TARGET
        },
    ];

    fn preflight(targets: Vec<Target>, ctx: PreflightContext) -> Result<Vec<Finding>> {
        check::findings(&targets, &ctx)
    }

    /// "If a value of n is specified such that n >= size of cluster, the group size is
    /// internally resized to (size of cluster) - 1" (edition rollout settings): at most
    /// size − 1 members out at once.
    fn constraints(targets: Vec<Target>, _params: Vec<Pair>) -> Result<Vec<Constraint>> {
        if targets.len() < 2 {
            return Ok(vec![]);
        }
        Ok(vec![Constraint {
            name: "one member keeps serving (group size at most cluster size - 1)".into(),
            kind: ConstraintKind::MaxTogether(MaxTogether {
                members: targets.iter().map(|t| t.id.clone()).collect(),
                max: targets.len() as u32 - 1,
            }),
        }])
    }

    /// Per group, at worst the seed's drainage interval + quiesce + restart, split over the
    /// steps; the note gives IBM's estimate for `com.ibm.SOAP.requestTimeout`.
    fn estimate(_targets: Vec<Target>, params: Vec<Pair>, waves: u32) -> Result<Estimate> {
        let (drain, quiesce, restart) = check::seed_times(&params);
        let hard = get(&params, "reset-strategy") == Some("hard");
        let step = |name: &str, expected: u32, worst: u32| StepEstimate {
            step: name.into(),
            expected_s: expected,
            worst_s: Some(worst),
        };
        let (stop, start) = if hard { (60, 120) } else { (5, 20) };
        let (_, formula) = check::timeout_needed(&params, waves.max(1) as u64);
        Ok(Estimate {
            steps: vec![
                step("drain", drain + 5, drain + quiesce - 60),
                step("stop-old", stop, 60),
                step("start-new", start, restart - 30),
                step("verify", 5, 15),
                step("rejoin", 5, 15),
                step("switch", 5, 30),
                step("activate", 10, 60),
                step("rejoin-held", 5, 30),
            ],
            notes: vec![format!(
                "IBM's estimate of the rollout for com.ibm.SOAP.requestTimeout in <profile>/properties/soap.client.props: {formula} (or 0 for no timeout)"
            )],
        })
    }
}

cutover_sdk::export_adapter!(WebsphereEdition);
