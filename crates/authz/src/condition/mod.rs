//! Azure's role-assignment condition language, version 2.0.
//!
//! Owns: lexing and parsing condition text into an AST (with spans in every
//! error), printing it back, evaluating it against a [`RequestContext`] with
//! a trace, and linting it against the role it is attached to.
//!
//! Pipeline: `lexer` → `parser` → `ast` ⇄ `printer`; `eval` walks the AST;
//! `lint` reasons about it statically. Every decision taken where Azure's
//! documentation is silent is written in the header of the module that takes
//! it (lexer: strings and escapes; parser: keyword case, mixing AND/OR,
//! nesting, literal types; eval: missing attributes and type errors).
//!
//! Must never: perform I/O or consult a clock: `@Environment[UtcNow]` is an
//! attribute the caller supplies.

pub mod ast;
pub mod context;
pub mod error;
pub mod eval;
pub mod lexer;
pub mod lint;
pub mod parser;
pub mod printer;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use ast::{AttributeRef, AttributeSource, Expr, Function, Operator, Quantifier};
pub use context::{AttributeValue, EnvironmentAttributes, RequestContext};
pub use error::{Location, ParseError, ParseErrorKind};
pub use eval::{TraceNode, Truth};
pub use lint::{Warning, extra_prefix_matches, lint};

/// The only condition version Azure supports publicly, and the default.
pub const CONDITION_VERSION: &str = "2.0";

/// A parsed condition: the text as written (stored and returned verbatim,
/// as ARM does) and its AST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    text: String,
    expr: Expr,
}

impl Condition {
    /// Parses condition text (≤ 8192 bytes).
    pub fn parse(text: &str) -> Result<Condition, ParseError> {
        let expr = parser::parse(text)?;
        Ok(Condition { text: text.to_string(), expr })
    }

    /// The text as written.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn expr(&self) -> &Expr {
        &self.expr
    }

    /// Canonical one-line text.
    pub fn canonical(&self) -> String {
        printer::print(&self.expr)
    }

    /// Portal-style multi-line text.
    pub fn pretty(&self) -> String {
        printer::print_pretty(&self.expr)
    }

    /// True only when the condition evaluates to TRUE (unknown counts as false).
    pub fn allows(&self, ctx: &RequestContext) -> bool {
        eval::evaluate(&self.expr, ctx).is_true()
    }

    /// The three-valued outcome.
    pub fn truth(&self, ctx: &RequestContext) -> Truth {
        eval::evaluate(&self.expr, ctx)
    }

    /// Evaluates with a full trace.
    pub fn trace(&self, ctx: &RequestContext) -> TraceNode {
        eval::evaluate_traced(&self.expr, ctx)
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Condition::parse(&text).map_err(serde::de::Error::custom)
    }
}
