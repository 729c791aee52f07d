//! Plugin text shown to a person or journaled: control characters made visible (no terminal
//! escape sequence, window title or clipboard write gets through) and sizes bounded.

use std::borrow::Cow;

/// Whether `c` must not reach a terminal as is.
fn hazardous(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

/// `s` with every control character other than newline and tab written as `\x1b` / `\u{202e}`.
pub fn clean(s: &str) -> Cow<'_, str> {
    if !s.chars().any(hazardous) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !hazardous(c) {
            out.push(c);
        } else if (c as u32) < 0x100 {
            out.push_str(&format!("\\x{:02x}", c as u32));
        } else {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        }
    }
    Cow::Owned(out)
}

/// `s` cleaned, with every line after the first marked as a continuation, so plugin text
/// can never pass for a line of Cutover's own.
pub fn quoted(s: &str) -> String {
    let cleaned = clean(s);
    let mut lines = cleaned.split('\n');
    let mut out = lines.next().unwrap_or_default().to_string();
    for l in lines {
        out.push_str("\n      │ ");
        out.push_str(l);
    }
    out
}

/// `s` cut to at most `max` bytes (at a character boundary), saying how much was left out and
/// which limit to raise.
pub fn cut(s: &str, max: usize, limit: &str) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}… [{} bytes left out; [limits] {limit}]",
        &s[..end],
        s.len() - end
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_and_continuations() {
        let evil = "\u{1b}]0;pwned\u{7}\u{1b}[2J\n  ✔ t9 updated\u{202e}";
        let q = quoted(evil);
        assert!(!q.contains('\u{1b}') && !q.contains('\u{7}') && !q.contains('\u{202e}'));
        assert!(q.contains("\\x1b]0;pwned\\x07"), "{q}");
        assert!(!q.lines().any(|l| l.starts_with("  ✔")), "{q}");
        assert_eq!(clean("plain\ttext\n"), "plain\ttext\n");
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn cuts_at_a_boundary_and_names_the_limit() {
        assert_eq!(cut("short", 10, "x"), "short");
        let c = cut("ééééé", 3, "log-line-size");
        assert!(c.starts_with("é… [8 bytes left out"), "{c}");
        assert!(c.contains("[limits] log-line-size"), "{c}");
    }
}
