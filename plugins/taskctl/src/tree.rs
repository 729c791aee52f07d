//! The TASKCTL fleet tree: one scheduling server, master agents under it, slave agents under
//! the masters. Validated from the targets' `type` and `parent` labels, and turned into the
//! constraints every plan must keep.

use cutover_sdk::params::get;
use cutover_sdk::{Constraint, ConstraintKind, MaxTogether, Order, Target};

pub const SERVER: &str = "cntServer";
pub const MASTER: &str = "cntMAgent";
pub const SLAVE: &str = "cntSAgent";

/// The validated tree.
pub struct Tree {
    pub servers: Vec<String>,
    /// Each master with its slaves.
    pub masters: Vec<(String, Vec<String>)>,
}

impl Tree {
    /// Every slave agent.
    pub fn slaves(&self) -> Vec<String> {
        self.masters.iter().flat_map(|(_, s)| s.clone()).collect()
    }
}

/// Build the tree, or every problem found, each naming the target and label to fix.
pub fn build(targets: &[Target]) -> Result<Tree, Vec<(String, String)>> {
    let mut problems = Vec::new();
    let kind = |id: &str| {
        targets
            .iter()
            .find(|t| t.id == id)
            .and_then(|t| get(&t.labels, "type"))
    };
    let mut names = std::collections::BTreeSet::new();
    let mut tree = Tree {
        servers: Vec::new(),
        masters: Vec::new(),
    };
    for t in targets {
        if !names.insert(t.name()) {
            problems.push((
                t.id.clone(),
                format!(
                    "node name `{}` is used twice; names are unique on the platform",
                    t.name()
                ),
            ));
        }
        let parent = get(&t.labels, "parent");
        match get(&t.labels, "type") {
            Some(SERVER) => {
                if let Some(p) = parent {
                    problems.push((t.id.clone(), format!("a cntServer has no parent, but `parent = \"{p}\"` is set")));
                }
                tree.servers.push(t.id.clone());
            }
            Some(MASTER) => match parent.map(|p| (p, kind(p))) {
                Some((_, Some(SERVER))) => tree.masters.push((t.id.clone(), Vec::new())),
                Some((p, k)) => problems.push((t.id.clone(), format!("a cntMAgent's parent must be a cntServer, but `{p}` is {}", k.unwrap_or("not a target")))),
                None => problems.push((t.id.clone(), "a cntMAgent needs `parent = \"<server>\"`".into())),
            },
            Some(SLAVE) => match parent.map(|p| (p, kind(p))) {
                Some((_, Some(MASTER))) => {}
                Some((p, k)) => problems.push((t.id.clone(), format!("a cntSAgent's parent must be a cntMAgent, but `{p}` is {}", k.unwrap_or("not a target")))),
                None => problems.push((t.id.clone(), "a cntSAgent needs `parent = \"<master agent>\"`".into())),
            },
            Some(other) => problems.push((t.id.clone(), format!("`type = \"{other}\"` is not a node type: use cntServer, cntMAgent or cntSAgent"))),
            None => problems.push((t.id.clone(), "needs `type = \"cntServer|cntMAgent|cntSAgent\"`".into())),
        }
    }
    for t in targets
        .iter()
        .filter(|t| get(&t.labels, "type") == Some(SLAVE))
    {
        let parent = get(&t.labels, "parent").unwrap_or_default();
        if let Some((_, slaves)) = tree.masters.iter_mut().find(|(m, _)| m == parent) {
            slaves.push(t.id.clone());
        }
    }
    if problems.is_empty() {
        Ok(tree)
    } else {
        Err(problems)
    }
}

trait Named {
    fn name(&self) -> String;
}

impl Named for Target {
    /// The node name on the platform: label `name`, else the target id.
    fn name(&self) -> String {
        get(&self.labels, "name").unwrap_or(&self.id).to_string()
    }
}

fn order(name: &str, first: Vec<String>, then: Vec<String>) -> Option<Constraint> {
    (!first.is_empty() && !then.is_empty()).then(|| Constraint {
        name: name.into(),
        kind: ConstraintKind::Order(Order { first, then }),
    })
}

/// A master and its slaves are never all down at once; the levels go in `direction`
/// (`slaves-first`, `server-first` or `none`).
pub fn constraints(tree: &Tree, direction: &str) -> Result<Vec<Constraint>, String> {
    let mut out = Vec::new();
    for (master, slaves) in &tree.masters {
        if slaves.is_empty() {
            continue;
        }
        let mut members = vec![master.clone()];
        members.extend(slaves.iter().cloned());
        out.push(Constraint {
            name: format!("master group {master} keeps balancing load"),
            kind: ConstraintKind::MaxTogether(MaxTogether {
                max: slaves.len() as u32,
                members,
            }),
        });
    }
    let masters: Vec<String> = tree.masters.iter().map(|(m, _)| m.clone()).collect();
    let levels = [tree.slaves(), masters, tree.servers.clone()];
    let pairs = match direction {
        "slaves-first" => vec![
            order(
                "slave agents before master agents",
                levels[0].clone(),
                levels[1].clone(),
            ),
            order(
                "master agents before the server",
                levels[1].clone(),
                levels[2].clone(),
            ),
        ],
        "server-first" => vec![
            order(
                "the server before master agents",
                levels[2].clone(),
                levels[1].clone(),
            ),
            order(
                "master agents before slave agents",
                levels[1].clone(),
                levels[0].clone(),
            ),
        ],
        "none" => vec![],
        other => {
            return Err(format!(
                "parameter `order` must be slaves-first, server-first or none, got `{other}`"
            ))
        }
    };
    out.extend(pairs.into_iter().flatten());
    Ok(out)
}
