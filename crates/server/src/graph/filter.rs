//! The OData `$filter` forms az sends to Graph (`field eq 'v'`, `startswith`, `any`), pure.

use serde_json::Value;

use super::error::{GraphError, GraphResult};

/// One `$filter` clause of the forms az sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Filter {
    /// `field eq 'value'` (case-insensitive, as Graph compares these properties).
    Eq(String, String),
    /// `startswith(field,'value')`.
    StartsWith(String, String),
    /// `servicePrincipalNames/any(c:c eq 'value')`.
    AnyServicePrincipalName(String),
}

impl Filter {
    /// Parses clauses joined by ` and `.
    pub fn parse(f: &str) -> GraphResult<Vec<Filter>> {
        let f = f.trim();
        if f.is_empty() {
            return Ok(vec![]);
        }
        f.split(" and ").map(|c| Filter::parse_one(c.trim(), f)).collect()
    }

    fn parse_one(c: &str, whole: &str) -> GraphResult<Filter> {
        let bad = || {
            GraphError::bad_request(format!(
                "Unsupported or invalid query filter clause specified: '{whole}'. Use 'field eq 'value'', startswith(field,'value') or servicePrincipalNames/any(c:c eq 'value')."
            ))
        };
        let quoted = |s: &str| -> Option<String> {
            let s = s.trim();
            (s.len() >= 2 && s.starts_with('\'') && s.ends_with('\'')).then(|| s[1..s.len() - 1].replace("''", "'"))
        };
        let lower = c.to_ascii_lowercase();
        if let Some(rest) = lower.strip_prefix("serviceprincipalnames/any(") {
            // `c:c eq 'value')` — take the value from the original spelling.
            let open = c.len() - rest.len();
            let inner = c[open..].strip_suffix(')').ok_or_else(bad)?;
            let (var, cond) = inner.split_once(':').ok_or_else(bad)?;
            let (lhs, value) = cond.split_once(" eq ").ok_or_else(bad)?;
            if lhs.trim() != var.trim() {
                return Err(bad());
            }
            return quoted(value).map(Filter::AnyServicePrincipalName).ok_or_else(bad);
        }
        if lower.starts_with("startswith(") {
            let inner = c["startswith(".len()..].strip_suffix(')').ok_or_else(bad)?;
            let (field, value) = inner.split_once(',').ok_or_else(bad)?;
            return Ok(Filter::StartsWith(field.trim().to_string(), quoted(value).ok_or_else(bad)?));
        }
        let (field, value) = c.split_once(" eq ").ok_or_else(bad)?;
        let field = field.trim();
        if field.is_empty() || !field.chars().all(|ch| ch.is_ascii_alphanumeric()) {
            return Err(bad());
        }
        // Booleans are compared unquoted (`securityEnabled eq true`).
        let literal = quoted(value).or_else(|| {
            ["true", "false"].into_iter().find(|b| value.trim().eq_ignore_ascii_case(b)).map(str::to_string)
        });
        Ok(Filter::Eq(field.to_string(), literal.ok_or_else(bad)?))
    }

    fn field<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
        v.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v)
    }

    pub fn matches(&self, v: &Value) -> bool {
        let text = |x: &Value| match x {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        match self {
            Filter::Eq(f, want) => Self::field(v, f).and_then(text).is_some_and(|s| s.eq_ignore_ascii_case(want)),
            Filter::StartsWith(f, want) => Self::field(v, f)
                .and_then(text)
                .is_some_and(|s| s.to_ascii_lowercase().starts_with(&want.to_ascii_lowercase())),
            Filter::AnyServicePrincipalName(want) => v["servicePrincipalNames"]
                .as_array()
                .is_some_and(|a| a.iter().any(|n| n.as_str().is_some_and(|n| n.eq_ignore_ascii_case(want)))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_az_sends() {
        let sp = json!({"appId": "AB", "displayName": "My App", "servicePrincipalNames": ["ab", "/x"]});
        for (f, want) in [
            ("appId eq 'ab'", true),
            ("appId eq 'zz'", false),
            ("servicePrincipalNames/any(c:c eq 'AB')", true),
            ("servicePrincipalNames/any(x:x eq '/x')", true),
            ("servicePrincipalNames/any(c:c eq 'nope')", false),
            ("startswith(displayName,'my')", true),
            ("displayName eq 'My App' and appId eq 'ab'", true),
            ("displayName eq 'It''s'", false),
        ] {
            let parsed = Filter::parse(f).unwrap();
            assert_eq!(parsed.iter().all(|c| c.matches(&sp)), want, "{f}");
        }
        let group = json!({"securityEnabled": true, "mailEnabled": false});
        assert!(
            Filter::parse("securityEnabled eq true and mailEnabled eq false")
                .unwrap()
                .iter()
                .all(|c| c.matches(&group))
        );
        assert!(!Filter::parse("securityEnabled eq false").unwrap().iter().all(|c| c.matches(&group)));
        for bad in ["appId ne 'x'", "appId eq x", "startswith(displayName)", "a/b eq 'x'"] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }
}
