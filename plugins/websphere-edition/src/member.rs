//! One cluster member (one target) and the names the rollout works with.

use cutover_sdk::params::get;
use cutover_sdk::{fail, Pair, Result, Target};

/// A member: its server and node, its name in the router and its own HTTP address.
pub struct Member {
    pub server: String,
    pub node: String,
    pub router_name: String,
    pub address: Option<String>,
}

impl Member {
    pub fn of(t: &Target) -> Result<Member> {
        let server = get(&t.labels, "server").unwrap_or(&t.id).to_string();
        let node = get(&t.labels, "node")
            .ok_or_else(|| {
                fail(format!(
                    "target `{}` has no `node` label (the member's node)",
                    t.id
                ))
            })?
            .to_string();
        Ok(Member {
            router_name: get(&t.labels, "router-server")
                .unwrap_or(&server)
                .to_string(),
            address: get(&t.labels, "address").map(str::to_string),
            server,
            node,
        })
    }
}

/// The edition names of a rollout.
pub struct Editions {
    pub app: String,
    pub from: String,
    pub to: String,
    /// The deployed application of the edition being replaced, e.g. `Shop-edition1.0`.
    pub old: String,
    /// The deployed application of the new edition.
    pub new: String,
}

impl Editions {
    /// From `app`, `from-edition`, `edition` and `edition-deployment` (a template with
    /// `{app}` and `{edition}`; default `{app}-edition{edition}`).
    pub fn of(params: &[Pair]) -> Result<Editions> {
        let p = |k: &str| cutover_sdk::params::param(params, k).map(str::to_string);
        let (app, from, to) = (p("app")?, p("from-edition")?, p("edition")?);
        if from == to {
            return Err(fail(format!(
                "edition `{to}` is also from-edition: nothing to roll out"
            )));
        }
        let template = get(params, "edition-deployment").unwrap_or("{app}-edition{edition}");
        let name = |e: &str| template.replace("{app}", &app).replace("{edition}", e);
        Ok(Editions {
            old: name(&from),
            new: name(&to),
            app,
            from,
            to,
        })
    }
}

/// Whether the rollout holds updated members out of the router until the switch (IBM's
/// atomic rollout) instead of letting each rejoin (grouped).
pub fn atomic(params: &[Pair]) -> bool {
    get(params, "rollout-strategy") == Some("atomic")
}
