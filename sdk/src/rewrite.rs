//! Moving an installation: rewrite the install-root prefix of path values in JSON files
//! (`"artifactFile":"<old>/data/..."` → `"<new>/data/..."`), in the Unix form and in the
//! Windows form with escaped backslashes (`"C:\\RE\\data\\..."`). Only the prefix changes;
//! every other byte of the file stays as it was, and a second pass changes nothing.

/// What [`field_prefix`] did to one text.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rewrite {
    /// The text after the rewrite (equal to the input when nothing changed).
    pub text: String,
    /// Values that pointed into the old root and now point into the new one.
    pub rewritten: usize,
    /// Values that already pointed into the new root (a re-run after a crash).
    pub already: usize,
    /// Values under neither root, left alone (raw JSON text).
    pub foreign: Vec<String>,
}

/// A root in both spellings, as they appear raw inside a JSON string.
struct Forms {
    unix: String,
    windows: String,
}

impl Forms {
    fn of(root: &str) -> Forms {
        let unix = root.replace('\\', "/").trim_end_matches('/').to_string();
        let windows = unix.replace('/', "\\\\");
        Forms { unix, windows }
    }

    /// The length of the prefix of `raw` this root covers, and which spelling matched.
    fn matches(&self, raw: &str) -> Option<(usize, bool)> {
        let fits = |p: &str, sep: &str| {
            !p.is_empty()
                && raw.starts_with(p)
                && (raw.len() == p.len() || raw[p.len()..].starts_with(sep))
        };
        if fits(&self.unix, "/") {
            Some((self.unix.len(), false))
        } else if fits(&self.windows, "\\\\") {
            Some((self.windows.len(), true))
        } else {
            None
        }
    }
}

/// Rewrite every string value of JSON field `field` in `text` that starts with `old_root` so
/// that it starts with `new_root` instead, in the Unix and the escaped Windows form. Values
/// already under `new_root` are counted, not touched, so the rewrite is idempotent even
/// when one root contains the other.
pub fn field_prefix(text: &str, field: &str, old_root: &str, new_root: &str) -> Rewrite {
    let (old, new) = (Forms::of(old_root), Forms::of(new_root));
    // The longer root is tried first, so `/re` vs `/re/new` is never confused.
    let new_first = new.unix.len() > old.unix.len();
    let needle = format!("\"{field}\"");
    let mut r = Rewrite::default();
    let mut out = String::with_capacity(text.len() + 64);
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        let Some(start) = value_start(after) else {
            out.push_str(&rest[..at + needle.len()]);
            rest = after;
            continue;
        };
        let head = at + needle.len() + start;
        out.push_str(&rest[..head]);
        let value_and_more = &rest[head..];
        let end = value_end(value_and_more);
        let raw = &value_and_more[..end];
        let in_old = old.matches(raw);
        let in_new = new.matches(raw);
        match (in_old, in_new) {
            (Some(_), Some(_)) if new_first => r.already += 1,
            (Some((len, win)), _) => {
                out.push_str(if win { &new.windows } else { &new.unix });
                out.push_str(&raw[len..]);
                r.rewritten += 1;
                rest = &value_and_more[end..];
                continue;
            }
            (None, Some(_)) => r.already += 1,
            (None, None) => r.foreign.push(raw.to_string()),
        }
        out.push_str(raw);
        rest = &value_and_more[end..];
    }
    out.push_str(rest);
    r.text = out;
    r
}

/// The literal replacements that do [`field_prefix`]'s work for values written compactly
/// (`"field":"<root>/...`), in both spellings, for a copy that substitutes as it writes
/// (`files::copy_substituting`); a [`field_prefix`] pass afterwards then finds them done
/// and catches every other form. None when one root lies inside the other, where a literal
/// replacement could not tell a value already moved from one to move.
pub fn prefix_substitutions(
    field: &str,
    old_root: &str,
    new_root: &str,
) -> Option<Vec<(String, String)>> {
    let (old, new) = (Forms::of(old_root), Forms::of(new_root));
    let inside = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
    if old.unix.is_empty()
        || new.unix.is_empty()
        || inside(&old.unix, &new.unix)
        || inside(&new.unix, &old.unix)
    {
        return None;
    }
    let head = format!("\"{field}\":\"");
    Some(vec![
        (
            format!("{head}{}/", old.unix),
            format!("{head}{}/", new.unix),
        ),
        (
            format!("{head}{}\\\\", old.windows),
            format!("{head}{}\\\\", new.windows),
        ),
    ])
}

/// Offset just inside the opening quote of the value after a field name (`: "`), if the
/// value is a string.
fn value_start(after_name: &str) -> Option<usize> {
    let trimmed = after_name.trim_start();
    let colon = trimmed.strip_prefix(':')?;
    let value = colon.trim_start();
    value.strip_prefix('"')?;
    Some(after_name.len() - value.len() + 1)
}

/// Length of a raw JSON string body up to its closing (unescaped) quote.
fn value_end(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutions_do_what_field_prefix_does_on_compact_values() {
        let text = r#"{"artifactFile":"/opt/re-old/data/a.kar","x":"/opt/re-old/y"}
{"artifactFile":"\\opt\\re-old\\data\\b.kar"}
{"artifactFile" : "/opt/re-old/data/c.kar"}"#;
        let subs = prefix_substitutions("artifactFile", "/opt/re-old", "/opt/re-new").unwrap();
        let mut copied = text.to_string();
        for (from, to) in &subs {
            copied = copied.replace(from.as_str(), to);
        }
        // The spaced value is left for the pass after the copy, which then agrees.
        let after = field_prefix(&copied, "artifactFile", "/opt/re-old", "/opt/re-new");
        assert_eq!((after.rewritten, after.already), (1, 2));
        let direct = field_prefix(text, "artifactFile", "/opt/re-old", "/opt/re-new");
        assert_eq!(after.text, direct.text);
        // One root inside the other: no literal shortcut.
        assert!(prefix_substitutions("f", "/re", "/re/new").is_none());
        assert!(prefix_substitutions("f", "/re/new/", "/re").is_none());
        assert!(prefix_substitutions("f", "/re", "/re2").is_some());
    }

    #[test]
    fn both_forms_only_the_prefix_and_idempotent() {
        let text = r#"{"id":"t1","artifactFile":"/opt/re-old/data/dsrunner/exec/osgi/u1/A.kar","other":"/opt/re-old/x"}
{"artifactFile" : "\\opt\\re-old\\data\\dsrunner\\exec\\osgi\\u2\\B.kar"}
{"artifactFile":"/elsewhere/C.kar","artifactFileX":"/opt/re-old/y"}"#;
        let r = field_prefix(text, "artifactFile", "/opt/re-old", "/opt/re-new");
        assert_eq!(r.rewritten, 2);
        assert_eq!(r.foreign, vec!["/elsewhere/C.kar".to_string()]);
        assert_eq!(
            r.text,
            text.replacen("\"/opt/re-old/data", "\"/opt/re-new/data", 1)
                .replace("\"\\\\opt\\\\re-old\\\\", "\"\\\\opt\\\\re-new\\\\")
        );
        let again = field_prefix(&r.text, "artifactFile", "/opt/re-old", "/opt/re-new");
        assert_eq!(again.text, r.text);
        assert_eq!((again.rewritten, again.already), (0, 2));
    }

    #[test]
    fn nested_roots_and_windows_drive_letters() {
        let text = r#"{"currentFilePath":"/re/data/cls/a.json.log"}"#;
        let once = field_prefix(text, "currentFilePath", "/re", "/re/new");
        assert_eq!(
            once.text,
            r#"{"currentFilePath":"/re/new/data/cls/a.json.log"}"#
        );
        let twice = field_prefix(&once.text, "currentFilePath", "/re", "/re/new");
        assert_eq!((twice.text, twice.rewritten), (once.text, 0));
        let win = r#"{"currentFilePath":"C:\\Talend\\RE-2.13\\data\\cls\\a.log"}"#;
        let r = field_prefix(
            win,
            "currentFilePath",
            "C:\\Talend\\RE-2.13",
            "C:\\Talend\\RE-2.14",
        );
        assert_eq!(
            r.text,
            r#"{"currentFilePath":"C:\\Talend\\RE-2.14\\data\\cls\\a.log"}"#
        );
        // A root that is only a name prefix of a folder is not a match.
        let r = field_prefix(r#"{"f":"/re-2/x"}"#, "f", "/re", "/new");
        assert_eq!(r.rewritten, 0);
    }
}
