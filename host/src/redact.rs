//! Secrets never leave the journal in clear: every string shown passes through here.

use std::sync::RwLock;

/// The set of secret values to hide.
#[derive(Default)]
pub struct Redactor {
    values: RwLock<Vec<String>>,
}

impl Redactor {
    /// Hide `value` from now on (values shorter than 4 characters are ignored: too common).
    pub fn add(&self, value: &str) {
        if value.len() >= 4 {
            let mut v = self.values.write().unwrap();
            if !v.iter().any(|x| x == value) {
                v.push(value.to_string());
                // Longest first, so a secret containing another is hidden whole.
                v.sort_by_key(|s| std::cmp::Reverse(s.len()));
            }
        }
    }

    /// `text` with every secret replaced by `«redacted»`.
    pub fn redact(&self, text: &str) -> String {
        let v = self.values.read().unwrap();
        let mut out = text.to_string();
        for s in v.iter() {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), "«redacted»");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hides_every_occurrence() {
        let r = super::Redactor::default();
        r.add("s3cr3t-key");
        assert_eq!(
            r.redact("a s3cr3t-key b s3cr3t-key"),
            "a «redacted» b «redacted»"
        );
    }
}
