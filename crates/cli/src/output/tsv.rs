//! `-o tsv`, as az writes it (knack's tsv output). Owns the tsv layout.
//!
//! One line per list element (or one for a result that is not a list). An object's line holds
//! every value in the order the object holds its keys, a list's line every element; within a
//! line a nested list is written as its length, a nested object as an empty field, a null as
//! `None` and a boolean as `True`/`False`. A line that is a single boolean is `true`/`false`.

use serde_json::Value;

pub fn render(v: &Value) -> String {
    let rows: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = String::new();
    for r in rows {
        let fields: Vec<String> = match r {
            Value::Object(m) => m.values().map(field).collect(),
            Value::Array(items) => items.iter().map(field).collect(),
            Value::Bool(b) => vec![b.to_string()],
            other => vec![field(other)],
        };
        out.push_str(&fields.join("\t"));
        out.push('\n');
    }
    out
}

fn field(v: &Value) -> String {
    match v {
        Value::Array(items) => items.len().to_string(),
        Value::Object(_) => String::new(),
        Value::Null => "None".to_string(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // The expected strings were printed by knack 0.14 (az 2.91) for the same values.

    #[test]
    fn fields_as_az_writes_them() {
        assert_eq!(
            render(&json!([{"b": 1, "a": null, "c": {"x": 1}, "d": [1, 2], "e": true, "f": 1.5}])),
            "1\tNone\t\t2\tTrue\t1.5\n"
        );
        assert_eq!(render(&json!([true, null, 1.0, "s", [1, [2, 3], {"a": 1}]])), "true\nNone\n1.0\ns\n1\t2\t\n");
        assert_eq!(render(&json!("x")), "x\n");
        assert_eq!(render(&json!([])), "");
    }
}
