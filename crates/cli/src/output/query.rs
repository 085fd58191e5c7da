//! `--query`: JMESPath as az evaluates it. Owns the one place where a query is compiled; must
//! never change what a valid query means.
//!
//! az evaluates queries with Python's `jmespath`, which keeps a multiselect hash's keys in the
//! order the query writes them and, during the JEP-12 deprecation period, reads a backtick
//! literal that is not JSON (`` [?name==`myregistry`] ``) as a string. The engine here
//! (`jpx-core`, over `serde_json::Value` with `preserve_order`) keeps the order; the literals
//! are rewritten into the JSON strings Python would have read before the query is compiled.

use serde_json::Value;

use crate::error::CliError;

/// Evaluates `query` over `value`, as az's `--query` does.
pub fn apply(query: &str, value: &Value) -> Result<Value, CliError> {
    let expr = jpx_core::compile(&json_literals(query)).map_err(|e| {
        CliError::Usage(format!("argument --query: invalid jmespath query supplied for '--query': {e}"))
    })?;
    expr.search(value).map_err(|e| CliError::Usage(format!("argument --query: {e}")))
}

/// Rewrites every backtick literal that is not JSON into the JSON string Python's `jmespath`
/// reads it as (its text with leading whitespace removed, JSON string escapes applied). Valid
/// JSON literals, quoted identifiers (`"…"`) and raw strings (`'…'`) are left as they are, and
/// so is a literal that is not a JSON string either: the engine reports it.
pub fn json_literals(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut rest = query;
    while let Some(start) = rest.find(['`', '"', '\'']) {
        let delimiter = rest[start..].chars().next().expect("found a delimiter");
        out.push_str(&rest[..start]);
        let Some(len) = delimited_len(&rest[start + 1..], delimiter) else {
            // Unclosed: the engine reports it.
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &rest[start + 1..start + 1 + len];
        match delimiter {
            '`' => {
                out.push('`');
                out.push_str(&literal(inner));
                out.push('`');
            }
            _ => out.push_str(&rest[start..start + len + 2]),
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

/// The length of the text before the closing `delimiter`; a backslash escapes the next
/// character, as in JMESPath's lexer.
fn delimited_len(s: &str, delimiter: char) -> Option<usize> {
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            chars.next();
        } else if c == delimiter {
            return Some(i);
        }
    }
    None
}

/// The text between two backticks, as the engine should see it.
fn literal(inner: &str) -> String {
    let unescaped = inner.replace("\\`", "`");
    if serde_json::from_str::<Value>(&unescaped).is_ok() {
        return inner.to_string();
    }
    match serde_json::from_str::<String>(&format!("\"{}\"", unescaped.trim_start())) {
        Ok(s) => serde_json::to_string(&s).expect("a string serializes").replace('`', "\\`"),
        Err(_) => inner.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn invalid_json_literals_are_strings_as_in_az() {
        let data = json!([{"name": "myregistry", "n": 1}, {"name": "other", "n": 2}]);
        assert_eq!(apply("[?name==`myregistry`].n", &data).unwrap(), json!([1]));
        assert_eq!(apply("[?name==` myregistry`].n", &data).unwrap(), json!([1]));
        assert_eq!(apply("`foo bar`", &data).unwrap(), json!("foo bar"));
        assert_eq!(apply(r"`a\nb`", &data).unwrap(), json!("a\nb"));
        assert_eq!(apply(r"`tick\`s`", &data).unwrap(), json!("tick`s"));
        // Not a JSON string either (an unescaped quote): refused, as Python refuses it.
        assert!(apply(r#"`a"b`"#, &data).is_err());
    }

    #[test]
    fn json_literals_keep_their_meaning() {
        let data = json!([{"name": "myregistry", "n": 1}, {"name": "other", "n": 2}]);
        assert_eq!(apply("[?n==`1`].name", &data).unwrap(), json!(["myregistry"]));
        assert_eq!(apply("`true`", &data).unwrap(), json!(true));
        assert_eq!(apply("`\"x\"`", &data).unwrap(), json!("x"));
        assert_eq!(apply("`[1,2]`", &data).unwrap(), json!([1, 2]));
        assert_eq!(apply("`{\"a\": null}`", &data).unwrap(), json!({"a": null}));
        assert_eq!(apply("`null`", &data).unwrap(), Value::Null);
    }

    #[test]
    fn quoted_text_is_not_rewritten() {
        assert_eq!(json_literals("[?name=='my`registry'].\"a`b\""), "[?name=='my`registry'].\"a`b\"");
        assert_eq!(json_literals(r"[?name=='it\'s `x`']"), r"[?name=='it\'s `x`']");
        assert_eq!(json_literals("[?a==`x`] | [?b==`2`]"), "[?a==`\"x\"`] | [?b==`2`]");
        assert_eq!(json_literals("`unclosed"), "`unclosed");
    }

    #[test]
    fn multiselect_hashes_keep_the_query_order() {
        let data = json!([{"name": "r1", "loginServer": "r1.example"}]);
        let v = apply("[].{n:name,l:loginServer}", &data).unwrap();
        let keys: Vec<&String> = v[0].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["n", "l"]);
        let v = apply("[0].{z:name,a:loginServer,m:name}", &data).unwrap();
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["z", "a", "m"]);
    }

    #[test]
    fn invalid_queries_are_usage_errors() {
        assert!(matches!(apply("[?", &json!([])), Err(CliError::Usage(_))));
        assert!(matches!(apply("nosuchfunction(@)", &json!([])), Err(CliError::Usage(_))));
    }
}
