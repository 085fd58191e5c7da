//! Output formats and `--query`, as az renders them. Owns how a command's result is printed;
//! must never change the result itself.
//!
//! What az does, and so Wharf: a command's result is plain data, so its objects have no key
//! order of their own (they are printed sorted); `--query` runs over that data, and the objects
//! a multiselect hash builds keep the query's key order. `json`, `jsonc` and `yaml` print every
//! object's keys sorted (knack dumps with `sort_keys`); `tsv` and `table` print the keys in
//! the order the result holds them, which is the query's order for a multiselect hash. Without
//! `--query`, `table` shows the command's own columns (its [`Table`]); with one, the query's
//! result. A null result prints nothing.

mod query;
mod table;
mod tsv;

use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::error::CliError;

pub use query::apply as apply_query;
pub use table::{Table, columns};

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

/// Prints a warning on stderr as az (knack) prints `logger.warning`: `WARNING: <message>` when
/// stdout or stderr is not a terminal (scripts, pipes, the side-by-side tests), and the message
/// alone in yellow when both are (knack hides level names when it colours them). Used for the
/// messages az prints that way, such as `Queued a run with ID: …`.
pub fn warning(message: &str) {
    use std::io::IsTerminal;
    if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
        eprintln!("\x1b[33m{message}\x1b[0m");
    } else {
        eprintln!("WARNING: {message}");
    }
}

/// Renders a command's result in the chosen format; `table` is the command's table layout.
pub fn render(value: &Value, args: &OutputArgs, table: Table) -> Result<String, CliError> {
    let mut data = value.clone();
    data.sort_all_objects();
    let result = match &args.query {
        Some(q) => apply_query(q, &data)?,
        None => data,
    };
    if result.is_null() {
        return Ok(String::new());
    }
    let sorted = || {
        let mut v = result.clone();
        v.sort_all_objects();
        v
    };
    Ok(match args.output {
        Format::None => String::new(),
        Format::Json => format!("{}\n", serde_json::to_string_pretty(&sorted()).expect("json serializes")),
        Format::Jsonc => colorize(&sorted()),
        Format::Yaml => {
            serde_yaml::to_string(&sorted()).map_err(|e| CliError::Other(format!("cannot render YAML: {e}")))?
        }
        Format::Tsv => tsv::render(&result),
        Format::Table => match (&args.query, table) {
            (None, Table::Columns(transform)) => table::render(&result, Some(transform)),
            _ => table::render(&result, None),
        },
    })
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

    fn args(output: Format, query: Option<&str>) -> OutputArgs {
        OutputArgs { output, query: query.map(str::to_string) }
    }

    fn registries() -> Value {
        // Keys deliberately out of order: a command's result has no order of its own.
        json!([
            {"name": "r1", "loginServer": "r1.example", "location": "westus", "sku": {"name": "Premium"}},
            {"name": "r2", "loginServer": "r2.example", "location": "eastus", "sku": {"name": "Basic"}},
        ])
    }

    #[test]
    fn tsv_and_table_keep_the_multiselect_order() {
        let q = Some("[].{n:name,l:loginServer}");
        assert_eq!(
            render(&registries(), &args(Format::Tsv, q), Table::Generic).unwrap(),
            "r1\tr1.example\nr2\tr2.example\n"
        );
        assert_eq!(
            render(&registries(), &args(Format::Table, q), Table::Generic).unwrap(),
            "N    L\n---  ----------\nr1   r1.example\nr2   r2.example\n"
        );
    }

    #[test]
    fn json_and_yaml_sort_keys_as_az_does() {
        let q = Some("[0].{n:name,l:loginServer}");
        assert_eq!(
            render(&registries(), &args(Format::Json, q), Table::Generic).unwrap(),
            "{\n  \"l\": \"r1.example\",\n  \"n\": \"r1\"\n}\n"
        );
        assert_eq!(render(&registries(), &args(Format::Yaml, q), Table::Generic).unwrap(), "l: r1.example\nn: r1\n");
        let plain = render(&registries(), &args(Format::Json, Some("[0]")), Table::Generic).unwrap();
        assert!(plain.find("\"location\"").unwrap() < plain.find("\"loginServer\"").unwrap(), "{plain}");
        assert!(plain.find("\"loginServer\"").unwrap() < plain.find("\"name\"").unwrap(), "{plain}");
    }

    #[test]
    fn without_a_query_objects_print_sorted() {
        assert_eq!(
            render(&registries(), &args(Format::Tsv, None), Table::Generic).unwrap(),
            "westus\tr1.example\tr1\t\neastus\tr2.example\tr2\t\n"
        );
        assert_eq!(
            render(&registries(), &args(Format::Table, None), Table::Generic).unwrap(),
            "Location    LoginServer    Name\n----------  -------------  ------\nwestus      r1.example     r1\neastus      r2.example     r2\n"
        );
    }

    #[test]
    fn command_columns_apply_without_a_query_only() {
        fn names(v: &Value) -> Vec<Value> {
            v.as_array().into_iter().flatten().map(|r| columns([("NAME", r["name"].clone())])).collect()
        }
        let t = Table::Columns(names);
        assert_eq!(render(&registries(), &args(Format::Table, None), t).unwrap(), "NAME\n------\nr1\nr2\n");
        assert_eq!(
            render(&registries(), &args(Format::Table, Some("[].{L:location}")), t).unwrap(),
            "L\n------\nwestus\neastus\n"
        );
    }

    #[test]
    fn a_null_result_prints_nothing() {
        for f in [Format::Json, Format::Tsv, Format::Table, Format::Yaml] {
            assert_eq!(render(&registries(), &args(f, Some("[0].missing")), Table::Generic).unwrap(), "");
        }
    }
}
