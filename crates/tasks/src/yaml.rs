//! Owns the YAML reading of task and values files: text becomes a tree of [`Node`]s, each
//! knowing the character offset it starts at, so that every later error can say where.
//! It must never interpret a scalar (that is the task file's job): scalars stay text, with
//! a note of whether they were quoted.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// One YAML node and the character offset (into the parsed text) where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub at: usize,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// A scalar's text; `quoted` for single- or double-quoted and block (`|`, `>`) scalars,
    /// which are always strings.
    Scalar {
        text: String,
        quoted: bool,
    },
    Seq(Vec<Node>),
    /// Entries in the order written.
    Map(Vec<(Node, Node)>),
}

impl Node {
    /// Plain `~`, `null`, `Null`, `NULL` or nothing at all.
    pub fn is_null(&self) -> bool {
        matches!(&self.kind, NodeKind::Scalar { text, quoted: false } if matches!(text.as_str(), "" | "~" | "null" | "Null" | "NULL"))
    }

    /// What the node is, for "expected …, found …" messages.
    pub fn describe(&self) -> String {
        match &self.kind {
            NodeKind::Scalar { .. } if self.is_null() => "null".to_string(),
            NodeKind::Scalar { text, quoted: true } => format!("the string \"{text}\""),
            NodeKind::Scalar { text, quoted: false } => format!("'{text}'"),
            NodeKind::Seq(_) => "a list".to_string(),
            NodeKind::Map(_) => "a mapping".to_string(),
        }
    }
}

/// A syntax error, at a character offset of the parsed text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub at: usize,
    pub message: String,
}

/// Parses the first document of `text`; `None` for an empty stream.
pub(crate) fn parse(text: &str) -> Result<Option<Node>, SyntaxError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser
        .load(&mut builder, false)
        .map_err(|e| SyntaxError { at: e.marker().index(), message: e.info().to_string() })?;
    if let Some(message) = builder.error {
        return Err(SyntaxError { at: builder.error_at, message });
    }
    Ok(builder.root)
}

enum Open {
    Seq { at: usize, anchor: usize, items: Vec<Node> },
    Map { at: usize, anchor: usize, entries: Vec<(Node, Node)>, key: Option<Node> },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Open>,
    root: Option<Node>,
    anchors: HashMap<usize, Node>,
    done: bool,
    error: Option<String>,
    error_at: usize,
}

impl Builder {
    fn finish(&mut self, node: Node, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                self.root = Some(node);
                self.done = true;
            }
            Some(Open::Seq { items, .. }) => items.push(node),
            Some(Open::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(k) => entries.push((k, node)),
            },
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.done || self.error.is_some() {
            return;
        }
        let at = mark.index();
        match ev {
            Event::Scalar(text, style, anchor, _tag) => {
                let quoted = !matches!(style, TScalarStyle::Plain);
                self.finish(Node { at, kind: NodeKind::Scalar { text, quoted } }, anchor);
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Open::Seq { at, anchor, items: Vec::new() }),
            Event::MappingStart(anchor, _) => self.stack.push(Open::Map { at, anchor, entries: Vec::new(), key: None }),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Open::Seq { at, anchor, items }) => self.finish(Node { at, kind: NodeKind::Seq(items) }, anchor),
                Some(Open::Map { at, anchor, entries, .. }) => {
                    // A block mapping's start event comes at its first ':'; its first key is
                    // where a reader sees it start.
                    let at = entries.first().map_or(at, |(k, _)| k.at.min(at));
                    self.finish(Node { at, kind: NodeKind::Map(entries) }, anchor)
                }
                None => {}
            },
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let node = Node { at, kind: node.kind.clone() };
                    self.finish(node, 0);
                }
                None => {
                    self.error = Some("the alias names no anchor".to_string());
                    self.error_at = at;
                }
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(node: &Node) -> &str {
        match &node.kind {
            NodeKind::Scalar { text, .. } => text,
            other => panic!("not a scalar: {other:?}"),
        }
    }

    #[test]
    fn nodes_know_their_character_offsets() {
        let text = "a: 1\nb:\n  - x\n  - 'y'\n";
        let root = parse(text).unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else { panic!() };
        assert_eq!(entries.len(), 2);
        assert_eq!(scalar(&entries[0].0), "a");
        assert_eq!(entries[0].0.at, 0);
        assert_eq!(entries[0].1.at, 3);
        assert_eq!(entries[1].0.at, 5);
        let NodeKind::Seq(items) = &entries[1].1.kind else { panic!() };
        assert_eq!(items[0].at, text.find('x').unwrap());
        assert_eq!(items[1].kind, NodeKind::Scalar { text: "y".into(), quoted: true });
        assert_eq!(items[1].at, text.find('\'').unwrap());
    }

    #[test]
    fn offsets_count_characters_not_bytes() {
        let text = "é: ü\nk: v\n";
        let root = parse(text).unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else { panic!() };
        assert_eq!(entries[1].0.at, 5);
    }

    #[test]
    fn anchors_and_aliases_copy_the_node() {
        let root = parse("a: &x [1, 2]\nb: *x\n").unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else { panic!() };
        assert_eq!(entries[0].1.kind, entries[1].1.kind);
    }

    #[test]
    fn empty_text_has_no_root_and_bad_text_says_where() {
        assert_eq!(parse("").unwrap(), None);
        let err = parse("a: [1, 2\n").unwrap_err();
        assert!(!err.message.is_empty());
        let err = parse("a: b: c\n").unwrap_err();
        assert_eq!(err.at, 4);
    }

    #[test]
    fn nulls() {
        let root = parse("a:\nb: ~\nc: 'null'\n").unwrap().unwrap();
        let NodeKind::Map(entries) = &root.kind else { panic!() };
        assert!(entries[0].1.is_null());
        assert!(entries[1].1.is_null());
        assert!(!entries[2].1.is_null());
    }
}
