//! Owns the masking of a run's secret values wherever its output is shown: logs, and JSON
//! bodies that echo a request. Every occurrence of every non-empty secret becomes `***`,
//! the longest secrets first so that one containing another is hidden whole. It must never
//! let part of a secret through when secrets overlap.

use std::borrow::Cow;

use serde_json::Value;

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Masks a fixed set of secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Masker {
    /// Non-empty, each once, longest first.
    secrets: Vec<String>,
}

impl Masker {
    pub fn new(secrets: &[String]) -> Masker {
        let mut list: Vec<String> = Vec::new();
        for s in secrets {
            if !s.is_empty() && !list.contains(s) {
                list.push(s.clone());
            }
        }
        list.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        Masker { secrets: list }
    }

    /// Whether there is anything to mask.
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `line` with every secret replaced by [`MASK`]; borrowed when nothing matched.
    ///
    /// At each position the longest secret that starts there wins, and every character any
    /// secret covers is hidden (overlapping matches merge into one `***`).
    pub fn mask<'a>(&self, line: &'a str) -> Cow<'a, str> {
        if self.secrets.is_empty() || !self.secrets.iter().any(|s| line.contains(s.as_str())) {
            return Cow::Borrowed(line);
        }
        // Mark every byte a secret covers, then replace each covered run with one mask.
        let mut covered = vec![false; line.len()];
        for secret in &self.secrets {
            let mut from = 0;
            while let Some(found) = line[from..].find(secret.as_str()) {
                let start = from + found;
                covered[start..start + secret.len()].iter_mut().for_each(|c| *c = true);
                // Step one character, so that overlapping occurrences are found too.
                from = start + line[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        let mut out = String::with_capacity(line.len());
        let mut i = 0;
        while i < line.len() {
            if covered[i] {
                out.push_str(MASK);
                while i < line.len() && covered[i] {
                    i += 1;
                }
            } else {
                let c = line[i..].chars().next().unwrap_or_default();
                out.push(c);
                i += c.len_utf8();
            }
        }
        Cow::Owned(out)
    }

    /// `value` with every string in it (keys too) masked.
    pub fn mask_json(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.mask(s).into_owned()),
            Value::Array(items) => Value::Array(items.iter().map(|v| self.mask_json(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (self.mask(k).into_owned(), self.mask_json(v))).collect())
            }
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn masker(secrets: &[&str]) -> Masker {
        Masker::new(&secrets.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn every_occurrence_is_masked() {
        let m = masker(&["hunter2", "tok"]);
        assert_eq!(m.mask("pw=hunter2 again hunter2, tok"), "pw=*** again ***, ***");
        assert!(matches!(m.mask("nothing here"), Cow::Borrowed(_)));
    }

    #[test]
    fn overlapping_and_nested_secrets_are_hidden_whole() {
        // One secret inside another: the longer wins, no tail of it shows.
        let m = masker(&["abc", "abcdef"]);
        assert_eq!(m.mask("x abcdef y abc z"), "x *** y *** z");
        // Two secrets that overlap without nesting: the union is hidden.
        let m = masker(&["abcd", "cdef"]);
        assert_eq!(m.mask("xxabcdefyy"), "xx***yy");
        // A secret overlapping itself.
        let m = masker(&["aa"]);
        assert_eq!(m.mask("aaa b"), "*** b");
    }

    #[test]
    fn empty_secrets_are_ignored_and_multibyte_text_survives() {
        let m = masker(&["", "é1"]);
        assert_eq!(m.mask("çaé1ü"), "ça***ü");
        assert!(masker(&[""]).is_empty());
        assert_eq!(masker(&[""]).mask("abc"), "abc");
    }

    #[test]
    fn json_strings_and_keys_are_masked() {
        let m = masker(&["s3cret"]);
        let v = json!({"a": "x s3cret", "n": 1, "list": ["s3cret", true], "s3cret": null});
        assert_eq!(m.mask_json(&v), json!({"a": "x ***", "n": 1, "list": ["***", true], "***": null}));
    }
}
