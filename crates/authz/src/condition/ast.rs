//! The abstract syntax of a condition.
//!
//! Owns: the tree the parser produces, the printer prints and the evaluator
//! walks, and the operator catalogue (names, operand type, whether a
//! cross-product form exists).
//!
//! Must never: carry spans or source text. Two conditions that differ only in
//! whitespace, `AND` vs `&&` or `NOT` vs `!` have the same AST; that is what
//! makes `parse(print(ast)) == ast` a meaningful property.

use std::fmt;
use std::net::IpAddr;

use chrono::{DateTime, Utc};
use ipnet::IpNet;

/// A boolean expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// Two or more operands joined by `AND` / `&&` at one level.
    And(Vec<Expr>),
    /// Two or more operands joined by `OR` / `||` at one level.
    Or(Vec<Expr>),
    /// `NOT x` or `!x`.
    Not(Box<Expr>),
    /// `ActionMatches{'pattern'}`.
    ActionMatches(String),
    /// `SubOperationMatches{'pattern'}`.
    SubOperationMatches(String),
    /// `Exists @Source[attribute]`.
    Exists(AttributeRef),
    /// `left Operator right`.
    Compare(Comparison),
}

/// Where an attribute comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeSource {
    Request,
    Resource,
    Principal,
    Environment,
}

impl AttributeSource {
    pub const ALL: [AttributeSource; 4] =
        [AttributeSource::Request, AttributeSource::Resource, AttributeSource::Principal, AttributeSource::Environment];

    pub fn keyword(self) -> &'static str {
        match self {
            AttributeSource::Request => "Request",
            AttributeSource::Resource => "Resource",
            AttributeSource::Principal => "Principal",
            AttributeSource::Environment => "Environment",
        }
    }
}

/// `@Source[path]`, e.g. `@Request[Microsoft.ContainerRegistry/registries/repositories:name]`
/// or `@Resource[…/tags:Project<$key_case_sensitive$>]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttributeRef {
    pub source: AttributeSource,
    /// The text between the brackets, without the `<$key_case_sensitive$>` marker.
    pub path: String,
    /// True when the reference ended in `<$key_case_sensitive$>`: the part after
    /// the first `:` (a tag key) is then compared case-sensitively.
    pub key_case_sensitive: bool,
}

impl AttributeRef {
    pub fn new(source: AttributeSource, path: impl Into<String>) -> AttributeRef {
        AttributeRef { source, path: path.into(), key_case_sensitive: false }
    }

    /// Does a context attribute stored under (`source`, `path`) satisfy this reference?
    /// Case-insensitive, except the key part when `key_case_sensitive`.
    pub fn matches(&self, source: AttributeSource, path: &str) -> bool {
        if self.source != source {
            return false;
        }
        if !self.key_case_sensitive {
            return self.path.eq_ignore_ascii_case(path);
        }
        match (self.path.split_once(':'), path.split_once(':')) {
            (Some((ns_a, key_a)), Some((ns_b, key_b))) => ns_a.eq_ignore_ascii_case(ns_b) && key_a == key_b,
            _ => self.path == path,
        }
    }
}

/// `left operator right`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    pub left: Operand,
    pub operator: Operator,
    pub right: Operand,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Attribute(AttributeRef),
    Literal(Literal),
}

/// A literal: one value, or a `{a, b, …}` set (only with a cross product).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    Single(Scalar),
    Set(Vec<Scalar>),
}

impl Literal {
    pub fn values(&self) -> &[Scalar] {
        match self {
            Literal::Single(s) => std::slice::from_ref(s),
            Literal::Set(v) => v,
        }
    }
}

/// One literal value, typed by the operator it is compared with. Typed
/// variants keep the text they were written as, so printing is exact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    String(String),
    Integer(i64),
    Bool(bool),
    DateTime { text: String, value: DateTime<Utc> },
    Guid { text: String, value: uuid::Uuid },
    Ip { text: String, value: IpPattern },
}

/// An IP literal: an address, a CIDR block or an inclusive `first-last` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpPattern {
    Address(IpAddr),
    Network(IpNet),
    Range(IpAddr, IpAddr),
}

impl IpPattern {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match *self {
            IpPattern::Address(a) => a == ip,
            IpPattern::Network(net) => net.contains(&ip),
            IpPattern::Range(first, last) => match (first, last, ip) {
                (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => a <= x && x <= b,
                (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => a <= x && x <= b,
                _ => false,
            },
        }
    }
}

/// `ForAnyOfAnyValues:` and friends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantifier {
    ForAnyOfAnyValues,
    ForAllOfAnyValues,
    ForAnyOfAllValues,
    ForAllOfAllValues,
}

impl Quantifier {
    pub const ALL: [Quantifier; 4] = [
        Quantifier::ForAnyOfAnyValues,
        Quantifier::ForAllOfAnyValues,
        Quantifier::ForAnyOfAllValues,
        Quantifier::ForAllOfAllValues,
    ];

    pub fn keyword(self) -> &'static str {
        match self {
            Quantifier::ForAnyOfAnyValues => "ForAnyOfAnyValues",
            Quantifier::ForAllOfAnyValues => "ForAllOfAnyValues",
            Quantifier::ForAnyOfAllValues => "ForAnyOfAllValues",
            Quantifier::ForAllOfAllValues => "ForAllOfAllValues",
        }
    }

    pub fn from_keyword(word: &str) -> Option<Quantifier> {
        Quantifier::ALL.into_iter().find(|q| q.keyword() == word)
    }
}

/// The type an operator compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OperandType {
    String,
    Integer,
    DateTime,
    Guid,
    Bool,
    Ip,
}

impl OperandType {
    pub fn describe(self) -> &'static str {
        match self {
            OperandType::String => "a single-quoted string",
            OperandType::Integer => "an integer",
            OperandType::DateTime => "a quoted date-time like '2022-06-01T00:00:00.0Z'",
            OperandType::Guid => "a quoted GUID like '00000000-0000-0000-0000-000000000000'",
            OperandType::Bool => "true or false",
            OperandType::Ip => "a quoted IP address, CIDR block or 'first-last' range",
        }
    }
}

macro_rules! functions {
    ($($variant:ident => $ty:ident, cross: $cross:expr;)*) => {
        /// Every comparison function, named exactly as Azure documents it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Function { $($variant,)* }

        impl Function {
            pub const ALL: &'static [Function] = &[$(Function::$variant,)*];

            pub fn keyword(self) -> &'static str {
                match self { $(Function::$variant => stringify!($variant),)* }
            }

            pub fn operand_type(self) -> OperandType {
                match self { $(Function::$variant => OperandType::$ty,)* }
            }

            /// Whether `ForXOfYValues:` may prefix this function.
            pub fn allows_cross_product(self) -> bool {
                match self { $(Function::$variant => $cross,)* }
            }
        }
    };
}

functions! {
    StringEquals => String, cross: true;
    StringEqualsIgnoreCase => String, cross: true;
    StringNotEquals => String, cross: true;
    StringNotEqualsIgnoreCase => String, cross: true;
    StringStartsWith => String, cross: false;
    StringStartsWithIgnoreCase => String, cross: false;
    StringNotStartsWith => String, cross: false;
    StringNotStartsWithIgnoreCase => String, cross: false;
    StringLike => String, cross: true;
    StringLikeIgnoreCase => String, cross: true;
    StringNotLike => String, cross: true;
    StringNotLikeIgnoreCase => String, cross: true;
    NumericEquals => Integer, cross: true;
    NumericNotEquals => Integer, cross: true;
    NumericGreaterThan => Integer, cross: true;
    NumericGreaterThanEquals => Integer, cross: true;
    NumericLessThan => Integer, cross: true;
    NumericLessThanEquals => Integer, cross: true;
    DateTimeEquals => DateTime, cross: false;
    DateTimeNotEquals => DateTime, cross: false;
    DateTimeGreaterThan => DateTime, cross: false;
    DateTimeGreaterThanEquals => DateTime, cross: false;
    DateTimeLessThan => DateTime, cross: false;
    DateTimeLessThanEquals => DateTime, cross: false;
    GuidEquals => Guid, cross: true;
    GuidNotEquals => Guid, cross: true;
    BoolEquals => Bool, cross: false;
    BoolNotEquals => Bool, cross: false;
    IpMatch => Ip, cross: false;
    IpNotMatch => Ip, cross: false;
    IpInRange => Ip, cross: false;
    IpNotInRange => Ip, cross: false;
}

impl Function {
    pub fn from_keyword(word: &str) -> Option<Function> {
        Function::ALL.iter().copied().find(|f| f.keyword() == word)
    }

    /// Case-insensitive lookup, used only to suggest the right spelling.
    pub fn from_keyword_ignore_case(word: &str) -> Option<Function> {
        Function::ALL.iter().copied().find(|f| f.keyword().eq_ignore_ascii_case(word))
    }
}

/// An optional cross-product quantifier plus a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operator {
    pub quantifier: Option<Quantifier>,
    pub function: Function,
}

impl Operator {
    pub fn plain(function: Function) -> Operator {
        Operator { quantifier: None, function }
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(q) = self.quantifier {
            write!(f, "{}:", q.keyword())?;
        }
        f.write_str(self.function.keyword())
    }
}

impl fmt::Display for AttributeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "@{}[{}", self.source.keyword(), self.path)?;
        if self.key_case_sensitive {
            f.write_str("<$key_case_sensitive$>")?;
        }
        f.write_str("]")
    }
}

impl Expr {
    /// Visits every node, parents before children.
    pub fn walk<'a>(&'a self, visit: &mut impl FnMut(&'a Expr)) {
        visit(self);
        match self {
            Expr::And(items) | Expr::Or(items) => items.iter().for_each(|e| e.walk(visit)),
            Expr::Not(inner) => inner.walk(visit),
            _ => {}
        }
    }

    /// Nesting depth (a leaf has depth 1).
    pub fn depth(&self) -> usize {
        match self {
            Expr::And(items) | Expr::Or(items) => 1 + items.iter().map(Expr::depth).max().unwrap_or(0),
            Expr::Not(inner) => 1 + inner.depth(),
            _ => 1,
        }
    }
}
