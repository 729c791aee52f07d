//! Which contract a component was built for, read from its exports, and which versions this
//! host loads.

use super::runtime::World;
use super::since_v1_0_0 as v1_0;
use super::since_v1_1_0 as v1_1;
use super::since_v1_2_0 as v1_2;
use super::since_v1_3_0 as v1_3;

/// A contract version, `major.minor.patch`.
pub type Version = (u64, u64, u64);

impl World {
    pub(super) fn article(self) -> &'static str {
        match self {
            World::Strategy => "a strategy plugin",
            World::Adapter => "an adapter plugin",
        }
    }
}

/// The contract versions this host loads, for messages: "1.0, 1.1, 1.2 and 1.3".
pub fn supported() -> String {
    let v = |(a, b): (u64, u64)| format!("{a}.{b}");
    format!(
        "{}, {}, {} and {}",
        v(v1_0::VERSION),
        v(v1_1::VERSION),
        v(v1_2::VERSION),
        v(v1_3::VERSION)
    )
}

/// World and version from a component's export names.
pub(super) fn contract(exports: &[String]) -> Result<(World, Version), String> {
    for name in exports {
        let Some(rest) = name.strip_prefix("cutover:plugin/") else {
            continue;
        };
        let (iface, version) = rest.split_once('@').unwrap_or((rest, ""));
        let world = match iface {
            "adapter" => World::Adapter,
            "strategy" => World::Strategy,
            _ => continue,
        };
        let mut parts = version.split(['.', '-', '+']).map(|p| p.parse::<u64>());
        let v = match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(a)), Some(Ok(b)), Some(Ok(c))) => (a, b, c),
            _ => {
                return Err(format!(
                    "exports {name}, whose version this host cannot read"
                ))
            }
        };
        let built = format!("{}.{}.{}", v.0, v.1, v.2);
        return match v {
            (1, minor, _) if minor <= v1_3::VERSION.1 => Ok((world, v)),
            (1, _, _) => Err(format!(
                "was built for cutover:plugin {built}, newer than this host knows (it loads {}); update cutover",
                supported()
            )),
            _ => Err(format!(
                "was built for cutover:plugin {built}, a major version this host does not load (it loads {}); rebuild the plugin with a cutover-sdk for {}.{}",
                supported(),
                v1_3::VERSION.0,
                v1_3::VERSION.1
            )),
        };
    }
    if exports.iter().any(|n| n == "describe" || n == "plan") {
        return Err(format!(
            "was built for the draft contract cutover:plugin 0.1, which this host no longer loads (it loads {}); rebuild it with a cutover-sdk for {}",
            supported(),
            supported()
        ));
    }
    Err(format!(
        "is not a Cutover plugin: it exports no cutover:plugin/adapter or cutover:plugin/strategy interface (exports: {})",
        if exports.is_empty() { "none".to_string() } else { exports.join(", ") }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn contract_version_comes_from_the_export() {
        let ok = contract(&names(&["cutover:plugin/adapter@1.0.0"])).unwrap();
        assert_eq!(ok, (World::Adapter, (1, 0, 0)));
        let ok = contract(&names(&["cutover:plugin/strategy@1.0.3"])).unwrap();
        assert_eq!(ok, (World::Strategy, (1, 0, 3)));
        let e = contract(&names(&["cutover:plugin/adapter@2.0.0"])).unwrap_err();
        assert!(e.contains("2.0.0") && e.contains("major version"), "{e}");
        let e = contract(&names(&["cutover:plugin/adapter@1.7.0"])).unwrap_err();
        assert!(e.contains("newer than this host"), "{e}");
        let e = contract(&names(&["describe", "run-step"])).unwrap_err();
        assert!(e.contains("draft contract"), "{e}");
        let e = contract(&names(&["wasi:cli/run@0.2.0"])).unwrap_err();
        assert!(e.contains("not a Cutover plugin"), "{e}");
    }
}
