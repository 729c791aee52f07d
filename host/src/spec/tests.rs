//! The spec reader's own tests.
use super::*;

const GOOD: &str = r#"
[rollout]
concurrency = 2
[strategy]
plugin = "s.wasm"
[strategy.params]
group-size = 4
[adapter]
plugin = "/abs/a.wasm"
[adapter.params]
version = "2.0"
[adapter.timeouts]
start = "90s"
[grants]
dirs = [{ path = "/srv", access = "read-write" }]
exec = ["/srv/*/bin/*"]
[[targets]]
id = "n1"
root = "/srv/n1"
"#;

#[test]
fn parses_a_good_spec_relative_to_its_folder() {
    let s = parse(Path::new("/etc/specs/x.toml"), GOOD).unwrap();
    assert_eq!(s.concurrency, 2);
    assert_eq!(s.strategy.path, PathBuf::from("/etc/specs/s.wasm"));
    assert_eq!(s.adapter.path, PathBuf::from("/abs/a.wasm"));
    assert_eq!(s.strategy.params, vec![("group-size".into(), "4".into())]);
    assert_eq!(s.timeouts["start"], Duration::from_secs(90));
    assert!(s.grants.dirs[0].write);
    assert_eq!(s.targets[0].labels, vec![("root".into(), "/srv/n1".into())]);
    assert_eq!(s.name, "x");
}

#[test]
fn unknown_key_names_file_line_and_key() {
    let text = GOOD.replace("concurrency = 2", "concurency = 2");
    let e = parse(Path::new("x.toml"), &text).unwrap_err().to_string();
    assert!(e.starts_with("x.toml:3:"), "{e}");
    assert!(e.contains("concurency"), "{e}");
}

#[test]
fn bad_values_name_their_line() {
    let text = GOOD.replace("start = \"90s\"", "start = \"soon\"");
    let e = parse(Path::new("x.toml"), &text).unwrap_err();
    assert_eq!(e.line, 13, "{e}");
    assert!(e.message.contains("adapter.timeouts.start"), "{e}");
    assert!(e.message.contains("`soon` is not a duration"), "{e}");

    let text = format!("{GOOD}\n[[targets]]\nid = \"n1\"\n");
    let e = parse(Path::new("x.toml"), &text).unwrap_err();
    assert!(e.message.contains("duplicate target id `n1`"), "{e}");
    assert_eq!(e.line, 21, "{e}");
}

#[test]
fn sizes() {
    assert_eq!(parse_size("256MiB"), Some(256 << 20));
    assert_eq!(parse_size("1GiB"), Some(1 << 30));
    assert_eq!(parse_size("lots"), None);
}
