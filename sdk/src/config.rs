//! Java-style `key=value` configuration files (`.properties`, Karaf `.cfg`): read a value and
//! set one while keeping every other line, comment and the line order as they are.

/// The value of `key`, if a line sets it (`key=value`, `key = value` or `key: value`).
pub fn get(text: &str, key: &str) -> Option<String> {
    text.lines()
        .filter_map(split)
        .filter(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
        .next_back()
}

/// `text` with `key` set to `value`: the first line setting it is replaced (later duplicates
/// are dropped), or a line is appended. Setting the value it already has changes nothing.
pub fn set(text: &str, key: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + key.len() + value.len() + 2);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        match split(line) {
            Some((k, v)) if k == key => {
                if !done {
                    if v == value {
                        out.push_str(line);
                    } else {
                        out.push_str(&format!("{key}={value}"));
                        out.push_str(if line.ends_with("\r\n") {
                            "\r\n"
                        } else if line.ends_with('\n') {
                            "\n"
                        } else {
                            ""
                        });
                    }
                    done = true;
                }
            }
            _ => out.push_str(line),
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{key}={value}\n"));
    }
    out
}

/// `(key, value)` of a setting line; `None` for blanks and `#`/`!` comments.
fn split(line: &str) -> Option<(&str, &str)> {
    let t = line.trim();
    if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
        return None;
    }
    let at = t.find(['=', ':'])?;
    Some((t[..at].trim(), t[at + 1..].trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_replaces_keeps_the_rest_and_is_idempotent() {
        let text = "# pairing\npairing.service.url=https://old\nother = 1\r\n";
        let once = set(text, "pairing.service.url", "http://127.0.0.1:9/p");
        assert_eq!(
            once,
            "# pairing\npairing.service.url=http://127.0.0.1:9/p\nother = 1\r\n"
        );
        assert_eq!(
            set(&once, "pairing.service.url", "http://127.0.0.1:9/p"),
            once
        );
        assert_eq!(get(&once, "other").as_deref(), Some("1"));
        assert_eq!(set("a=1", "b", "2"), "a=1\nb=2\n");
        assert_eq!(get("#b=1\n", "b"), None);
    }
}
