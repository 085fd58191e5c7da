//! Output formats and `--query`, as az renders them.

use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::error::CliError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Json,
    Jsonc,
    Tsv,
    Table,
    Yaml,
    None,
}

#[derive(Debug, Clone, Default, Args)]
pub struct OutputArgs {
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Json, env = "WHARF_OUTPUT")]
    pub output: Format,
    /// JMESPath query applied to the output (as az's --query).
    #[arg(long, global = true, value_name = "JMESPATH")]
    pub query: Option<String>,
}

pub fn render(value: &Value, args: &OutputArgs) -> Result<String, CliError> {
    let value = match &args.query {
        Some(q) => apply_query(q, value)?,
        None => value.clone(),
    };
    Ok(match args.output {
        Format::None => String::new(),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&value).expect("json serializes")),
        Format::Jsonc => colorize(&value),
        Format::Yaml => {
            serde_yaml::to_string(&value).map_err(|e| CliError::Other(format!("cannot render YAML: {e}")))?
        }
        Format::Tsv => tsv(&value),
        Format::Table => table(&value),
    })
}

pub fn apply_query(q: &str, value: &Value) -> Result<Value, CliError> {
    let expr = jmespath::compile(q).map_err(|e| {
        CliError::Usage(format!("argument --query: invalid jmespath query supplied for '--query': {e}"))
    })?;
    let data = jmespath::Variable::from_json(&value.to_string()).map_err(|e| CliError::Other(e.to_string()))?;
    let result = expr.search(data).map_err(|e| CliError::Usage(format!("argument --query: {e}")))?;
    serde_json::to_value(&*result).map_err(|e| CliError::Other(e.to_string()))
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(if *b { "True".into() } else { "False".into() }),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// az's tsv: one line per object (its scalar values in order), one line per list element.
fn tsv(v: &Value) -> String {
    let mut out = String::new();
    let line = |v: &Value| -> String {
        match v {
            Value::Object(m) => m.values().filter_map(scalar).collect::<Vec<_>>().join("\t"),
            Value::Array(a) => a.iter().filter_map(scalar).collect::<Vec<_>>().join("\t"),
            other => scalar(other).unwrap_or_default(),
        }
    };
    match v {
        Value::Array(items) => {
            for i in items {
                out.push_str(&line(i));
                out.push('\n');
            }
        }
        Value::Null => {}
        other => {
            out.push_str(&line(other));
            out.push('\n');
        }
    }
    out
}

fn header(key: &str) -> String {
    let mut c = key.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// az's generic table: the scalar fields of each object as columns.
fn table(v: &Value) -> String {
    let rows: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        Value::Null => vec![],
        other => vec![other],
    };
    let mut columns: Vec<String> = Vec::new();
    for r in &rows {
        match r {
            Value::Object(m) => {
                for (k, val) in m {
                    if scalar(val).is_some() && !columns.contains(k) {
                        columns.push(k.clone());
                    }
                }
            }
            _ => {
                if !columns.iter().any(|c| c == "Result") {
                    columns.push("Result".into());
                }
            }
        }
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| match r {
            Value::Object(m) => columns.iter().map(|c| m.get(c).and_then(scalar).unwrap_or_default()).collect(),
            other => vec![scalar(other).unwrap_or_else(|| other.to_string())],
        })
        .collect();
    let headers: Vec<String> = columns.iter().map(|c| header(c)).collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            cells.iter().map(|row| row.get(i).map_or(0, |s| s.chars().count())).max().unwrap_or(0).max(headers[i].len())
        })
        .collect();
    let fmt_row = |row: &[String]| -> String {
        row.iter()
            .enumerate()
            .map(|(i, s)| format!("{:<w$}", s, w = widths[i]))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    if headers.is_empty() {
        return String::new();
    }
    let mut out = fmt_row(&headers) + "\n";
    out += &(widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  ") + "\n");
    for row in cells {
        out += &(fmt_row(&row) + "\n");
    }
    out
}

fn colorize(v: &Value) -> String {
    use std::io::IsTerminal;
    let pretty = serde_json::to_string_pretty(v).expect("json serializes");
    if !std::io::stdout().is_terminal() {
        return pretty + "\n";
    }
    // Keys blue, strings green, everything else as is.
    let mut out = String::new();
    for line in pretty.lines() {
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        if let Some((k, rest)) = trimmed.split_once("\": ") {
            out += &format!("{indent}\x1b[94m{k}\"\x1b[0m: {}\n", color_value(rest));
        } else {
            out += &format!("{indent}{}\n", color_value(trimmed));
        }
    }
    out
}

fn color_value(s: &str) -> String {
    if s.starts_with('"') { format!("\x1b[32m{s}\x1b[0m") } else { s.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn query_tsv_and_table() {
        // Keys chosen so that insertion order and sorted order agree (serde_json's map order
        // depends on whether `preserve_order` is unified into the build).
        let v = json!([{"name": "a", "sku": {"name": "Premium"}, "size": 1}, {"name": "b", "sku": {"name": "Basic"}, "size": 2}]);
        assert_eq!(apply_query("[].sku.name", &v).unwrap(), json!(["Premium", "Basic"]));
        assert_eq!(tsv(&v), "a\t1\nb\t2\n");
        let t = table(&v);
        assert!(t.starts_with("Name  Size\n"), "{t}");
        assert!(t.contains("b     2"), "{t}");
        assert!(apply_query("[?", &v).is_err());
        assert_eq!(tsv(&json!("x")), "x\n");
    }
}
