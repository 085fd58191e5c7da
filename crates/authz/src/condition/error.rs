//! Parse errors of the condition language: what went wrong, where (line,
//! column, byte span) and what was expected, renderable like a compiler
//! diagnostic (plain text via [`ParseError::render`], or through `miette`).
//!
//! Must never: hold a partially parsed AST. An error is the whole answer.

use std::fmt;

use miette::{Diagnostic, LabeledSpan, SourceSpan};
use thiserror::Error;

/// 1-based line and column (columns count characters, not bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: usize,
    pub column: usize,
    /// Byte offset of the first character.
    pub offset: usize,
    /// Length in bytes of the offending text (at least 0).
    pub length: usize,
}

impl Location {
    /// Computes the line and column of `offset` in `source`.
    pub fn at(source: &str, offset: usize, length: usize) -> Location {
        let offset = offset.min(source.len());
        let before = &source[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = source[line_start..offset].chars().count() + 1;
        Location { line, column, offset, length }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseErrorKind {
    #[error("the condition is {length} bytes long; the limit is {limit} bytes (8 KB)")]
    TooLong { length: usize, limit: usize },
    #[error("the condition is empty")]
    Empty,
    #[error("unexpected character {found:?}")]
    UnexpectedCharacter { found: char },
    #[error("unterminated string literal (strings are single-quoted and have no escapes)")]
    UnterminatedString,
    #[error("malformed attribute reference: {reason}")]
    MalformedAttribute { reason: String },
    #[error("unknown attribute source '@{found}'; expected @Request, @Resource, @Principal or @Environment")]
    UnknownAttributeSource { found: String },
    #[error("invalid number '{found}': only integers are supported")]
    InvalidNumber { found: String },
    #[error("expected {expected}, found {found}")]
    Expected { expected: String, found: String },
    #[error("'{found}' is not a keyword; keywords are case-sensitive, did you mean '{suggestion}'?")]
    KeywordCase { found: String, suggestion: String },
    #[error("unknown operator '{found}'")]
    UnknownOperator { found: String },
    #[error(
        "'{first}' and '{second}' are mixed at the same level; add parentheses to say which goes first, e.g. (a {first} b) {second} c"
    )]
    MixedAndOr { first: &'static str, second: &'static str },
    #[error("'{operator}' expects {expected}, found {found}")]
    LiteralTypeMismatch { operator: String, expected: &'static str, found: String },
    #[error("'{operator}' cannot be used with a {quantifier} cross product")]
    NotCrossProductOperator { operator: String, quantifier: String },
    #[error(
        "a multi-value literal needs a cross-product operator (ForAnyOfAnyValues:…, ForAllOfAnyValues:…, ForAnyOfAllValues:…, ForAllOfAllValues:…)"
    )]
    MultiValueNeedsCrossProduct,
    #[error("'{found}' is not a valid {kind}")]
    InvalidLiteral { kind: &'static str, found: String },
    #[error("a comparison needs at least one attribute operand")]
    NoAttributeOperand,
    #[error("expressions are nested more than {limit} levels deep")]
    NestingTooDeep { limit: usize },
}

/// A condition that failed to parse. Implements [`miette::Diagnostic`] with
/// the condition as source code and a label on the offending span.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{kind} (line {}, column {})", location.line, location.column)]
pub struct ParseError {
    pub kind: ParseErrorKind,
    pub location: Location,
    source_text: String,
}

impl Diagnostic for ParseError {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        Some(Box::new("wharf_authz::condition"))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source_text)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = SourceSpan::new(self.location.offset.into(), self.location.length);
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(Some(label_for(&self.kind)), span))))
    }
}

impl ParseError {
    pub(crate) fn new(kind: ParseErrorKind, source: &str, offset: usize, length: usize) -> ParseError {
        let location = Location::at(source, offset, length);
        ParseError { kind, location, source_text: source.to_string() }
    }

    pub fn line(&self) -> usize {
        self.location.line
    }

    pub fn column(&self) -> usize {
        self.location.column
    }

    /// Renders the error like a compiler would:
    ///
    /// ```text
    /// error: expected ')', found end of input
    ///  --> condition:3:2
    ///   |
    /// 3 |  OR
    ///   |  ^ expected ')'
    /// ```
    pub fn render(&self) -> String {
        let Location { line, column, length, .. } = self.location;
        let line_text = self.source_text.lines().nth(line - 1).unwrap_or("");
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let caret_width = self.source_text[self.location.offset..]
            .get(..length)
            .map_or(1, |s| s.chars().count().max(1))
            .min(line_text.chars().count().saturating_sub(column - 1).max(1));
        let indent: String = line_text.chars().take(column - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        format!(
            "error: {kind}\n{pad}--> condition:{line}:{column}\n{pad} |\n{line} | {line_text}\n{pad} | {indent}{carets} {label}\n",
            kind = self.kind,
            carets = "^".repeat(caret_width),
            label = label_for(&self.kind),
        )
    }
}

/// Short text shown under the caret.
fn label_for(kind: &ParseErrorKind) -> String {
    match kind {
        ParseErrorKind::Expected { expected, .. } => format!("expected {expected}"),
        ParseErrorKind::MixedAndOr { .. } => "ambiguous without parentheses".into(),
        ParseErrorKind::KeywordCase { suggestion, .. } => format!("did you mean '{suggestion}'?"),
        _ => "here".into(),
    }
}
