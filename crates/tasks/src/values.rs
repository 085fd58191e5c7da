//! Owns a run's values (`{{.Values.name}}`): the `--set`/`--set-secret` pairs a request
//! carries as `values: [{name, value, isSecret}]`, and the `--values` YAML file. It
//! remembers which values are secret so the plan can mask them; it must never drop that mark.

use serde::{Deserialize, Serialize};

use crate::error::{Problem, TaskError};
use crate::source_map::position;
use crate::yaml::{self, Node, NodeKind};

/// One value as a run request carries it (`{"name":"a","value":"1","isSecret":false}`;
/// the request's `type: "SetValue"` is ignored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SetValue {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_secret: bool,
}

/// The values of one run, by name; a later [`Values::insert`] of a name replaces it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Values {
    entries: Vec<SetValue>,
}

impl Values {
    pub fn new() -> Values {
        Values::default()
    }

    /// A request's values: the `--values` file's content first (if any), then the `--set`
    /// and `--set-secret` pairs, which win over the file as in ACR.
    pub fn from_request(values_file: Option<&str>, set: &[SetValue]) -> Result<Values, TaskError> {
        let mut values = match values_file {
            Some(content) => Values::from_values_file(content)?,
            None => Values::new(),
        };
        for v in set {
            values.insert(&v.name, &v.value, v.is_secret);
        }
        Ok(values)
    }

    /// A `--values` file: a YAML mapping of names to scalars. Nested mappings give dotted
    /// names (`image: {name: x}` is `{{.Values.image.name}}`); a null is the empty string.
    /// None of its values is secret.
    pub fn from_values_file(content: &str) -> Result<Values, TaskError> {
        let fail = |at: usize, problem: Problem| TaskError::ValuesFile { at: position(content, at), problem };
        let mut values = Values::new();
        let root = yaml::parse(content).map_err(|e| fail(e.at, Problem::Syntax(e.message)))?;
        let Some(root) = root else { return Ok(values) };
        if root.is_null() {
            return Ok(values);
        }
        flatten(&root, "", &mut values).map_err(|(at, p)| fail(at, p))?;
        Ok(values)
    }

    /// Sets `name`, replacing any earlier value of that name.
    pub fn insert(&mut self, name: &str, value: &str, is_secret: bool) {
        let entry = SetValue { name: name.to_string(), value: value.to_string(), is_secret };
        match self.entries.iter_mut().find(|e| e.name == name) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
    }

    pub fn get(&self, name: &str) -> Option<&SetValue> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// In the order first set.
    pub fn iter(&self) -> impl Iterator<Item = &SetValue> {
        self.entries.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The non-empty secret values, to be masked.
    pub fn secrets(&self) -> Vec<String> {
        self.entries.iter().filter(|e| e.is_secret && !e.value.is_empty()).map(|e| e.value.clone()).collect()
    }
}

fn flatten(node: &Node, prefix: &str, values: &mut Values) -> Result<(), (usize, Problem)> {
    let NodeKind::Map(entries) = &node.kind else {
        return Err((
            node.at,
            Problem::BadValues(format!("expected a mapping of names to values, found {}", node.describe())),
        ));
    };
    for (key, value) in entries {
        let NodeKind::Scalar { text: name, .. } = &key.kind else {
            return Err((key.at, Problem::BadValues("a value's name must be a string".to_string())));
        };
        let full = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        if values.get(&full).is_some() {
            return Err((key.at, Problem::DuplicateKey(full)));
        }
        match &value.kind {
            _ if value.is_null() => values.insert(&full, "", false),
            NodeKind::Scalar { text, .. } => values.insert(&full, text, false),
            NodeKind::Map(_) => flatten(value, &full, values)?,
            NodeKind::Seq(_) => {
                return Err((value.at, Problem::BadValues(format!("the value '{full}' must be a string, not a list"))));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Position;

    #[test]
    fn set_values_override_the_file_and_keep_their_secrecy() {
        let set = vec![
            SetValue { name: "a".into(), value: "from-set".into(), is_secret: false },
            SetValue { name: "pw".into(), value: "hunter2".into(), is_secret: true },
        ];
        let values = Values::from_request(Some("a: from-file\nb: 2\n"), &set).unwrap();
        assert_eq!(values.get("a").unwrap().value, "from-set");
        assert_eq!(values.get("b").unwrap().value, "2");
        assert!(values.get("pw").unwrap().is_secret);
        assert_eq!(values.secrets(), vec!["hunter2".to_string()]);
    }

    #[test]
    fn the_request_shape_deserializes() {
        let v: SetValue =
            serde_json::from_str(r#"{"type":"SetValue","name":"s","value":"2","isSecret":true}"#).unwrap();
        assert_eq!(v, SetValue { name: "s".into(), value: "2".into(), is_secret: true });
    }

    #[test]
    fn values_files_flatten_and_stringify() {
        let values = Values::from_values_file("n: 1\nflag: true\nempty:\nimg:\n  name: x\n  tag: '1.0'\n").unwrap();
        let got: Vec<(&str, &str)> = values.iter().map(|v| (v.name.as_str(), v.value.as_str())).collect();
        assert_eq!(got, vec![("n", "1"), ("flag", "true"), ("empty", ""), ("img.name", "x"), ("img.tag", "1.0")]);
        assert!(Values::from_values_file("").unwrap().is_empty());
    }

    #[test]
    fn bad_values_files_say_where() {
        let err = Values::from_values_file("a: 1\nb: [1, 2]\n").unwrap_err();
        assert_eq!(err.position(), Some(Position { line: 2, column: 4 }));
        assert!(err.to_string().starts_with("values file line 2, column 4: "), "{err}");
        let err = Values::from_values_file("- a\n").unwrap_err();
        assert!(matches!(err.problem(), Problem::BadValues(_)));
        let err = Values::from_values_file("a: 1\na: 2\n").unwrap_err();
        assert_eq!(err.problem(), &Problem::DuplicateKey("a".into()));
        assert_eq!(err.position(), Some(Position { line: 2, column: 1 }));
    }
}
