//! `-o table`, laid out as az lays it out (knack's table output over python-tabulate's
//! "simple" format). Owns the table layout; must never decide which columns a command shows
//! (the command's [`Table`] does).
//!
//! The rules reproduced: every row is an object whose keys are the headers (the first letter
//! capitalised); the keys `id`, `type` and `etag` and every null, list or object value are
//! left out; the headers are every key in the order first seen; a list row becomes
//! `Column1…`, a scalar row `Result`; each column is as wide as its widest cell or its header
//! plus two, whichever is wider, cells are trimmed and left-aligned, columns are two spaces
//! apart, lines carry no trailing spaces, and a line of dashes follows the headers. No row, or
//! no column, prints an empty line.

use serde_json::{Map, Value};

/// How a command's result becomes table rows when no `--query` is given.
#[derive(Clone, Copy)]
pub enum Table {
    /// az's generic table: the scalar fields of each object, keys sorted.
    Generic,
    /// The command's own columns (az's table transformer for it): one object per row, whose
    /// keys are the headers in column order.
    Columns(fn(&Value) -> Vec<Value>),
}

/// Keys az's table never shows.
const SKIP_KEYS: [&str; 3] = ["id", "type", "etag"];

/// Renders `value` as a table. `columns` turns the value into rows (`None`: the value itself is
/// the list of rows, or the one row); object keys are taken in the order the maps hold them.
pub fn render(value: &Value, columns: Option<fn(&Value) -> Vec<Value>>) -> String {
    let rows: Vec<Value> = match columns {
        Some(transform) => transform(value),
        None => match value {
            Value::Array(items) => items.clone(),
            other => vec![other.clone()],
        },
    };
    let rows: Vec<Vec<(String, Value)>> = rows.iter().map(row).collect();
    tabulate(&rows)
}

/// One row: knack's `_auto_table_item`.
fn row(item: &Value) -> Vec<(String, Value)> {
    match item {
        Value::Object(m) => m
            .iter()
            .filter(|(k, v)| !SKIP_KEYS.contains(&k.as_str()) && !v.is_null() && !v.is_array() && !v.is_object())
            .map(|(k, v)| (capitalize(k), v.clone()))
            .collect(),
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| (format!("Column{}", i + 1), v.clone())).collect(),
        other => vec![("Result".to_string(), other.clone())],
    }
}

fn capitalize(key: &str) -> String {
    let mut c = key.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// A cell's text, as tabulate formats it (`None` as nothing, booleans as Python spells them).
fn cell(v: Option<&Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::Bool(b)) => if *b { "True" } else { "False" }.to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    };
    text.trim().to_string()
}

/// python-tabulate's "simple" format with `headers="keys"`, left-aligned text.
fn tabulate(rows: &[Vec<(String, Value)>]) -> String {
    let mut headers: Vec<&str> = Vec::new();
    for r in rows {
        for (k, _) in r {
            if !headers.contains(&k.as_str()) {
                headers.push(k);
            }
        }
    }
    if headers.is_empty() {
        return "\n".to_string();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| headers.iter().map(|h| cell(r.iter().find(|(k, _)| k == h).map(|(_, v)| v))).collect())
        .collect();
    let width = |s: &str| s.lines().map(|l| l.chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| cells.iter().map(|r| width(&r[i])).max().unwrap_or(0).max(h.chars().count() + 2))
        .collect();
    let line = |texts: &[&str]| -> String {
        texts.iter().zip(&widths).map(|(t, w)| format!("{t:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    let dashes: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    let mut out = vec![line(&headers), line(&dashes.iter().map(String::as_str).collect::<Vec<_>>())];
    for r in &cells {
        // A cell with line breaks spans as many lines as it has.
        let split: Vec<Vec<&str>> = r.iter().map(|c| c.split(['\r', '\n']).collect()).collect();
        let height = split.iter().map(Vec::len).max().unwrap_or(1);
        for n in 0..height {
            let texts: Vec<&str> = split.iter().map(|lines| lines.get(n).copied().unwrap_or("")).collect();
            out.push(line(&texts));
        }
    }
    out.join("\n") + "\n"
}

/// A row for a command's own columns: `(header, value)` pairs in order.
pub fn columns<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect::<Map<String, Value>>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // The expected strings below were printed by knack 0.14 / tabulate 0.10 (az 2.91) for the
    // same rows.

    #[test]
    fn generic_rows_skip_ids_nulls_and_nested_values() {
        let v = json!([
            {"name": "x", "size": 1, "ok": true, "none": null, "id": "i"},
            {"name": "yyyyyyy", "size": 22, "ok": false, "extra": " pad ", "tags": {"a": "b"}, "list": [1]}
        ]);
        assert_eq!(
            render(&v, None),
            "Name     Size    Ok     Extra\n-------  ------  -----  -------\nx        1       True\nyyyyyyy  22      False  pad\n"
        );
    }

    #[test]
    fn scalars_lists_and_empty_results() {
        assert_eq!(render(&json!(["a", "bb"]), None), "Result\n--------\na\nbb\n");
        assert_eq!(render(&json!([[1, 2], [3]]), None), "Column1    Column2\n---------  ---------\n1          2\n3\n");
        assert_eq!(render(&json!([]), None), "\n");
        assert_eq!(render(&json!({"ipRules": [], "virtualNetworkRules": []}), None), "\n");
        assert_eq!(render(&json!(true), None), "Result\n--------\nTrue\n");
    }

    #[test]
    fn multiline_cells_span_lines() {
        assert_eq!(render(&json!([{"a": "line1\nline2", "b": "x"}]), None), "A      B\n-----  ---\nline1  x\nline2\n");
    }

    #[test]
    fn command_columns_keep_their_order() {
        fn two(v: &Value) -> Vec<Value> {
            vec![columns([("NAME", v["name"].clone()), ("ADMIN ENABLED", v["admin"].clone())])]
        }
        assert_eq!(
            render(&json!({"name": "r", "admin": false}), Some(two)),
            "NAME    ADMIN ENABLED\n------  ---------------\nr       False\n"
        );
    }
}
