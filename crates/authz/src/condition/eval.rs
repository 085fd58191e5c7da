//! Evaluator: ([`Expr`], [`RequestContext`]) → [`Truth`], with an optional trace.
//!
//! Semantics (where Azure's documentation is silent the choice is ours, and says so):
//! * `ActionMatches{'p'}` is Azure's action wildcard match (case-insensitive,
//!   `*` any run of characters) against the request's action.
//! * `SubOperationMatches{'p'}` matches the same way against the request's
//!   sub-operation; a request without one does not match (false).
//! * `Exists @X[a]` is true iff the attribute was supplied.
//! * Three-valued logic (Kleene), a decision of ours: a comparison whose
//!   attribute is missing, multi-valued where one value is needed, empty, or
//!   of the wrong type evaluates to UNKNOWN, never to true or false. `NOT unknown` is unknown;
//!   `false AND unknown` is false; `true OR unknown` is true. A condition
//!   grants access only when the whole expression is TRUE, so a comparison on
//!   a missing attribute is false for every operator, negated ones included
//!   (`StringNotEquals`, `NOT (… StringEquals …)`): fail closed. Only
//!   `NOT Exists` turns a missing attribute into true.
//! * String comparisons are ordinal; `IgnoreCase` folds Unicode case.
//!   `StringLike`: `*` any run, `?` one character, `\*` and `\?` are literal,
//!   whole-string match; any other backslash is an ordinary character.
//! * DateTime and GUID operators accept typed values or strings in the
//!   literal's format; IP operators accept an address value or string.
//! * Cross products (`ForAnyOfAnyValues:` …) compare every left value with
//!   every right value; a single value counts as a one-element set.
//!
//! Must never: short-circuit in a way that changes the answer, allocate on
//! the fast path ([`evaluate`]), or panic on any AST the parser produces.

use std::fmt::Write;
use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::ast::*;
use super::context::{AttributeValue, RequestContext};
use super::parser::{parse_datetime, parse_guid, parse_ip_match, parse_ip_range};
use super::printer::print;
use crate::actions::action_matches;

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    pub fn is_true(self) -> bool {
        self == Truth::True
    }

    pub fn negate(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Truth::True => "true",
            Truth::False => "false",
            Truth::Unknown => "unknown",
        }
    }
}

impl From<bool> for Truth {
    fn from(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }
}

/// Why a comparison could not be decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Undecided<'a> {
    Missing(&'a AttributeRef),
    Empty(&'a AttributeRef),
    MultiValued(&'a AttributeRef),
    WrongType { operator: Operator, found: &'static str },
}

impl Undecided<'_> {
    fn describe(&self) -> String {
        match self {
            Undecided::Missing(a) => format!("{a} is not present in the request"),
            Undecided::Empty(a) => format!("{a} has no values"),
            Undecided::MultiValued(a) => {
                format!("{a} has several values; use a ForAnyOf…/ForAllOf… operator")
            }
            Undecided::WrongType { operator, found } => {
                format!("type error: {operator} cannot compare {found}")
            }
        }
    }
}

/// Fast path: evaluates without building a trace.
pub fn evaluate(expr: &Expr, ctx: &RequestContext) -> Truth {
    match expr {
        Expr::And(items) => {
            let mut unknown = false;
            for item in items {
                match evaluate(item, ctx) {
                    Truth::False => return Truth::False,
                    Truth::Unknown => unknown = true,
                    Truth::True => {}
                }
            }
            if unknown { Truth::Unknown } else { Truth::True }
        }
        Expr::Or(items) => {
            let mut unknown = false;
            for item in items {
                match evaluate(item, ctx) {
                    Truth::True => return Truth::True,
                    Truth::Unknown => unknown = true,
                    Truth::False => {}
                }
            }
            if unknown { Truth::Unknown } else { Truth::False }
        }
        Expr::Not(inner) => evaluate(inner, ctx).negate(),
        Expr::ActionMatches(p) => action_matches(p, ctx.action()).into(),
        Expr::SubOperationMatches(p) => ctx.sub_operation().is_some_and(|s| action_matches(p, s)).into(),
        Expr::Exists(a) => ctx.lookup(a).is_some().into(),
        Expr::Compare(c) => match compare(c, ctx) {
            Ok(b) => b.into(),
            Err(_) => Truth::Unknown,
        },
    }
}

/// One node of an evaluation trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceNode {
    /// `AND`, `OR`, `NOT`, or the printed leaf expression.
    pub expression: String,
    pub outcome: Truth,
    /// What the leaf saw: the action, the attribute value, or why it is unknown.
    pub note: Option<String>,
    pub children: Vec<TraceNode>,
}

impl TraceNode {
    /// Indented text, one node per line:
    /// `OR → true` / `  @Request[…] StringStartsWithIgnoreCase 'backend/' → true ('backend/api')`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out, 0);
        out
    }

    fn render_into(&self, out: &mut String, level: usize) {
        let _ = write!(out, "{}{} → {}", "  ".repeat(level), self.expression, self.outcome.as_str());
        if let Some(note) = &self.note {
            let _ = write!(out, " ({note})");
        }
        out.push('\n');
        for child in &self.children {
            child.render_into(out, level + 1);
        }
    }

    /// Every node whose outcome is unknown because of a type error, depth first.
    pub fn type_errors(&self) -> Vec<&TraceNode> {
        let mut found = Vec::new();
        self.collect(&mut |n| n.note.as_deref().is_some_and(|t| t.starts_with("type error")), &mut found);
        found
    }

    fn collect<'a>(&'a self, pred: &mut impl FnMut(&TraceNode) -> bool, found: &mut Vec<&'a TraceNode>) {
        if pred(self) {
            found.push(self);
        }
        for c in &self.children {
            c.collect(pred, found);
        }
    }
}

/// Evaluates every node (no short-circuit) and records what each saw.
/// The root's outcome always equals [`evaluate`]'s answer.
pub fn evaluate_traced(expr: &Expr, ctx: &RequestContext) -> TraceNode {
    match expr {
        Expr::And(items) | Expr::Or(items) => {
            let children: Vec<TraceNode> = items.iter().map(|e| evaluate_traced(e, ctx)).collect();
            let is_and = matches!(expr, Expr::And(_));
            let (decisive, neutral) = if is_and { (Truth::False, Truth::True) } else { (Truth::True, Truth::False) };
            let outcome = if children.iter().any(|c| c.outcome == decisive) {
                decisive
            } else if children.iter().all(|c| c.outcome == neutral) {
                neutral
            } else {
                Truth::Unknown
            };
            TraceNode { expression: if is_and { "AND" } else { "OR" }.into(), outcome, note: None, children }
        }
        Expr::Not(inner) => {
            let child = evaluate_traced(inner, ctx);
            TraceNode { expression: "NOT".into(), outcome: child.outcome.negate(), note: None, children: vec![child] }
        }
        Expr::ActionMatches(_) => leaf(expr, evaluate(expr, ctx), Some(format!("action is '{}'", ctx.action()))),
        Expr::SubOperationMatches(_) => {
            let note = match ctx.sub_operation() {
                Some(s) => format!("sub-operation is '{s}'"),
                None => "the request has no sub-operation".into(),
            };
            leaf(expr, evaluate(expr, ctx), Some(note))
        }
        Expr::Exists(a) => {
            let note = if ctx.lookup(a).is_some() { "present" } else { "absent" };
            leaf(expr, evaluate(expr, ctx), Some(note.into()))
        }
        Expr::Compare(c) => match compare(c, ctx) {
            Ok(b) => leaf(expr, b.into(), describe_operands(c, ctx)),
            Err(why) => leaf(expr, Truth::Unknown, Some(why.describe())),
        },
    }
}

fn leaf(expr: &Expr, outcome: Truth, note: Option<String>) -> TraceNode {
    TraceNode { expression: print(expr), outcome, note, children: Vec::new() }
}

fn describe_operands(c: &Comparison, ctx: &RequestContext) -> Option<String> {
    let mut parts = Vec::new();
    for operand in [&c.left, &c.right] {
        if let Operand::Attribute(a) = operand
            && let Some(v) = ctx.lookup(a)
        {
            parts.push(format!("{a} is {}", display_value(v)));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn display_value(v: &AttributeValue) -> String {
    match v {
        AttributeValue::String(s) => format!("'{s}'"),
        AttributeValue::Integer(n) => n.to_string(),
        AttributeValue::Bool(b) => b.to_string(),
        AttributeValue::DateTime(t) => format!("'{}'", t.format("%Y-%m-%dT%H:%M:%S%.fZ")),
        AttributeValue::Guid(g) => format!("'{g}'"),
        AttributeValue::Ip(ip) => format!("'{ip}'"),
        AttributeValue::List(items) => {
            format!("{{{}}}", items.iter().map(display_value).collect::<Vec<_>>().join(", "))
        }
    }
}

/// A borrowed view of one value on either side of a comparison.
#[derive(Clone, Copy)]
enum Val<'a> {
    Str(&'a str),
    Int(i64),
    Bool(bool),
    Time(DateTime<Utc>),
    Guid(uuid::Uuid),
    Ip(IpAddr),
    Pattern(&'a IpPattern),
    Nested,
}

impl Val<'_> {
    fn type_name(self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Int(_) => "an integer",
            Val::Bool(_) => "a boolean",
            Val::Time(_) => "a date-time",
            Val::Guid(_) => "a GUID",
            Val::Ip(_) => "an IP address",
            Val::Pattern(_) => "an IP pattern",
            Val::Nested => "a nested list",
        }
    }
}

/// One side of a comparison: literal scalars or attribute values.
#[derive(Clone, Copy)]
enum Side<'a> {
    Scalars(&'a [Scalar]),
    Values(&'a [AttributeValue]),
}

impl<'a> Side<'a> {
    fn len(self) -> usize {
        match self {
            Side::Scalars(s) => s.len(),
            Side::Values(v) => v.len(),
        }
    }

    fn get(self, i: usize) -> Val<'a> {
        match self {
            Side::Scalars(s) => match &s[i] {
                Scalar::String(x) => Val::Str(x),
                Scalar::Integer(n) => Val::Int(*n),
                Scalar::Bool(b) => Val::Bool(*b),
                Scalar::DateTime { value, .. } => Val::Time(*value),
                Scalar::Guid { value, .. } => Val::Guid(*value),
                Scalar::Ip { value, .. } => Val::Pattern(value),
            },
            Side::Values(v) => match &v[i] {
                AttributeValue::String(x) => Val::Str(x),
                AttributeValue::Integer(n) => Val::Int(*n),
                AttributeValue::Bool(b) => Val::Bool(*b),
                AttributeValue::DateTime(t) => Val::Time(*t),
                AttributeValue::Guid(g) => Val::Guid(*g),
                AttributeValue::Ip(ip) => Val::Ip(*ip),
                AttributeValue::List(_) => Val::Nested,
            },
        }
    }
}

fn resolve<'a>(
    operand: &'a Operand,
    ctx: &'a RequestContext,
) -> Result<(Side<'a>, Option<&'a AttributeRef>), Undecided<'a>> {
    match operand {
        Operand::Literal(l) => Ok((Side::Scalars(l.values()), None)),
        Operand::Attribute(a) => match ctx.lookup(a) {
            None => Err(Undecided::Missing(a)),
            Some(AttributeValue::List(items)) if items.is_empty() => Err(Undecided::Empty(a)),
            Some(AttributeValue::List(items)) => Ok((Side::Values(items), Some(a))),
            Some(single) => Ok((Side::Values(std::slice::from_ref(single)), Some(a))),
        },
    }
}

/// Decides one comparison, or says why it cannot be decided.
pub fn compare<'a>(c: &'a Comparison, ctx: &'a RequestContext) -> Result<bool, Undecided<'a>> {
    let (left, left_attr) = resolve(&c.left, ctx)?;
    let (right, right_attr) = resolve(&c.right, ctx)?;
    let op = c.operator;
    let apply = |i: usize, j: usize| -> Result<bool, Undecided<'a>> { apply(op, left.get(i), right.get(j)) };
    let Some(quantifier) = op.quantifier else {
        for (side, attr) in [(left, left_attr), (right, right_attr)] {
            if side.len() != 1 {
                return Err(match attr {
                    Some(a) => Undecided::MultiValued(a),
                    None => Undecided::WrongType { operator: op, found: "a multi-value literal" },
                });
            }
        }
        return apply(0, 0);
    };
    // Evaluate every pair so a type error anywhere makes the result unknown.
    let mut table = Vec::with_capacity(left.len());
    for i in 0..left.len() {
        let mut row = Vec::with_capacity(right.len());
        for j in 0..right.len() {
            row.push(apply(i, j)?);
        }
        table.push(row);
    }
    let any_right = |row: &Vec<bool>| row.iter().any(|&b| b);
    let all_right = |row: &Vec<bool>| row.iter().all(|&b| b);
    Ok(match quantifier {
        Quantifier::ForAnyOfAnyValues => table.iter().any(any_right),
        Quantifier::ForAllOfAnyValues => table.iter().all(any_right),
        Quantifier::ForAnyOfAllValues => table.iter().any(all_right),
        Quantifier::ForAllOfAllValues => table.iter().all(all_right),
    })
}

fn apply<'a>(op: Operator, l: Val<'_>, r: Val<'_>) -> Result<bool, Undecided<'a>> {
    use Function::*;
    let wrong = |v: Val<'_>| Undecided::WrongType { operator: op, found: v.type_name() };
    let strings = || match (l, r) {
        (Val::Str(a), Val::Str(b)) => Ok((a, b)),
        (Val::Str(_), other) | (other, _) => Err(wrong(other)),
    };
    let ints = || match (l, r) {
        (Val::Int(a), Val::Int(b)) => Ok((a, b)),
        (Val::Int(_), other) | (other, _) => Err(wrong(other)),
    };
    let time = |v: Val<'_>| match v {
        Val::Time(t) => Ok(t),
        Val::Str(s) => parse_datetime(s).ok_or(wrong(v)),
        other => Err(wrong(other)),
    };
    let guid = |v: Val<'_>| match v {
        Val::Guid(g) => Ok(g),
        Val::Str(s) => parse_guid(s).ok_or(wrong(v)),
        other => Err(wrong(other)),
    };
    let ip = |v: Val<'_>| match v {
        Val::Ip(a) => Ok(a),
        Val::Str(s) => s.parse::<IpAddr>().map_err(|_| wrong(v)),
        other => Err(wrong(other)),
    };
    let ip_pattern = |v: Val<'_>, range: bool| match v {
        Val::Pattern(p) => Ok(*p),
        Val::Ip(a) => Ok(IpPattern::Address(a)),
        Val::Str(s) => if range { parse_ip_range(s) } else { parse_ip_match(s) }.ok_or(wrong(v)),
        other => Err(wrong(other)),
    };
    Ok(match op.function {
        StringEquals => strings().map(|(a, b)| a == b)?,
        StringEqualsIgnoreCase => strings().map(|(a, b)| eq_ignore_case(a, b))?,
        StringNotEquals => strings().map(|(a, b)| a != b)?,
        StringNotEqualsIgnoreCase => strings().map(|(a, b)| !eq_ignore_case(a, b))?,
        StringStartsWith => strings().map(|(a, b)| a.starts_with(b))?,
        StringStartsWithIgnoreCase => strings().map(|(a, b)| starts_with_ignore_case(a, b))?,
        StringNotStartsWith => strings().map(|(a, b)| !a.starts_with(b))?,
        StringNotStartsWithIgnoreCase => strings().map(|(a, b)| !starts_with_ignore_case(a, b))?,
        StringLike => strings().map(|(a, b)| like(a, b, false))?,
        StringLikeIgnoreCase => strings().map(|(a, b)| like(a, b, true))?,
        StringNotLike => strings().map(|(a, b)| !like(a, b, false))?,
        StringNotLikeIgnoreCase => strings().map(|(a, b)| !like(a, b, true))?,
        NumericEquals => ints().map(|(a, b)| a == b)?,
        NumericNotEquals => ints().map(|(a, b)| a != b)?,
        NumericGreaterThan => ints().map(|(a, b)| a > b)?,
        NumericGreaterThanEquals => ints().map(|(a, b)| a >= b)?,
        NumericLessThan => ints().map(|(a, b)| a < b)?,
        NumericLessThanEquals => ints().map(|(a, b)| a <= b)?,
        DateTimeEquals => time(l)? == time(r)?,
        DateTimeNotEquals => time(l)? != time(r)?,
        DateTimeGreaterThan => time(l)? > time(r)?,
        DateTimeGreaterThanEquals => time(l)? >= time(r)?,
        DateTimeLessThan => time(l)? < time(r)?,
        DateTimeLessThanEquals => time(l)? <= time(r)?,
        GuidEquals => guid(l)? == guid(r)?,
        GuidNotEquals => guid(l)? != guid(r)?,
        BoolEquals | BoolNotEquals => {
            let (Val::Bool(a), Val::Bool(b)) = (l, r) else {
                return Err(wrong(if matches!(l, Val::Bool(_)) { r } else { l }));
            };
            (a == b) == (op.function == BoolEquals)
        }
        IpMatch => ip_pattern(r, false)?.contains(ip(l)?),
        IpNotMatch => !ip_pattern(r, false)?.contains(ip(l)?),
        IpInRange => ip_pattern(r, true)?.contains(ip(l)?),
        IpNotInRange => !ip_pattern(r, true)?.contains(ip(l)?),
    })
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() { a.eq_ignore_ascii_case(b) } else { a.to_lowercase() == b.to_lowercase() }
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    if text.is_ascii() && prefix.is_ascii() {
        text.len() >= prefix.len() && text.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
    } else {
        text.to_lowercase().starts_with(&prefix.to_lowercase())
    }
}

/// One element of a Like pattern.
#[derive(Clone, Copy, PartialEq)]
enum LikeToken {
    Char(char),
    One,
    Many,
}

fn like_tokens(pattern: &str) -> Vec<LikeToken> {
    let mut tokens = Vec::with_capacity(pattern.len());
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some('*' | '?')) => tokens.push(LikeToken::Char(chars.next().unwrap_or(c))),
            '*' => tokens.push(LikeToken::Many),
            '?' => tokens.push(LikeToken::One),
            c => tokens.push(LikeToken::Char(c)),
        }
    }
    tokens
}

/// Whole-string wildcard match (`*`, `?`, escapes `\*` `\?`).
pub fn like(text: &str, pattern: &str, ignore_case: bool) -> bool {
    let (text, pattern) = if ignore_case {
        (text.to_lowercase(), pattern.to_lowercase())
    } else {
        (text.to_string(), pattern.to_string())
    };
    let text: Vec<char> = text.chars().collect();
    let tokens = like_tokens(&pattern);
    let (mut t, mut p) = (0usize, 0usize);
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match tokens.get(p) {
            Some(LikeToken::Many) => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some(LikeToken::One) => {
                p += 1;
                t += 1;
            }
            Some(LikeToken::Char(c)) if *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star_p, star_t)) => {
                    p = star_p + 1;
                    t = star_t + 1;
                    backtrack = Some((star_p, star_t + 1));
                }
                None => return false,
            },
        }
    }
    tokens[p..].iter().all(|t| *t == LikeToken::Many)
}
