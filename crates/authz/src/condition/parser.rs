//! Recursive-descent parser: tokens → [`Expr`], with type checking of
//! literals against operators.
//!
//! Grammar (decisions where Azure is silent are marked *):
//! ```text
//! condition  := expr EOF                       (≤ 8192 bytes)
//! expr       := unary ( op unary )*            all `op`s at one level must be the same:
//!                                              `a AND b OR c` is rejected, as Azure does
//! op         := AND | && | OR | ||
//! unary      := ( NOT | ! ) unary | primary    NOT binds tighter than AND/OR
//! primary    := '(' expr ')'
//!             | ActionMatches '{' STRING '}'
//!             | SubOperationMatches '{' STRING '}'
//!             | Exists ATTRIBUTE
//!             | operand OPERATOR operand       at least one operand is an attribute
//! OPERATOR   := [ Quantifier ':' ] Function
//! operand    := ATTRIBUTE | STRING | INTEGER | true | false | '{' scalar (',' scalar)* '}'
//! ```
//! * Keywords, function names and `true`/`false` are case-sensitive, spelled
//!   as Azure documents them; a wrong case is an error that suggests the
//!   right spelling (`and` → `AND`).
//! * Nesting deeper than [`MAX_DEPTH`] levels is rejected (no stack overflow).
//!   A parenthesised group, a negation and a negated group `!(…)` each count
//!   one level, so the canonical text of a condition never nests deeper than
//!   the text it was parsed from.
//! * Literals are checked against the operator: `NumericEquals 'x'`, a bad
//!   GUID or date, a set without a cross product, or a cross product of a
//!   function Azure does not list (e.g. `StringStartsWith`) are errors.
//!
//! Must never: evaluate anything, or accept input it cannot print back.

use chrono::{NaiveDateTime, TimeZone, Utc};

use super::ast::*;
use super::error::{ParseError, ParseErrorKind};
use super::lexer::{Token, TokenKind, tokenize};

/// Azure's limit: "A condition can be up to 8 KB long."
pub const MAX_CONDITION_BYTES: usize = 8192;
/// Deepest nesting of parentheses and negations accepted.
pub const MAX_DEPTH: usize = 64;

const KEYWORDS: &[&str] = &["AND", "OR", "NOT", "Exists", "ActionMatches", "SubOperationMatches", "true", "false"];

/// Parses a condition's text into its AST.
pub fn parse(source: &str) -> Result<Expr, ParseError> {
    if source.len() > MAX_CONDITION_BYTES {
        return Err(ParseError::new(
            ParseErrorKind::TooLong { length: source.len(), limit: MAX_CONDITION_BYTES },
            source,
            MAX_CONDITION_BYTES,
            0,
        ));
    }
    let tokens = tokenize(source)?;
    if tokens.len() == 1 {
        return Err(ParseError::new(ParseErrorKind::Empty, source, 0, 0));
    }
    let mut parser = Parser { source, tokens, pos: 0, depth: 0 };
    let expr = parser.expr()?;
    parser.expect_eof()?;
    Ok(expr)
}

struct Parser<'a> {
    source: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Junction {
    And,
    Or,
}

impl Junction {
    fn word(self) -> &'static str {
        match self {
            Junction::And => "AND",
            Junction::Or => "OR",
        }
    }
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token {
        &self.tokens[self.pos]
    }

    fn advance(&mut self) -> Token {
        let token = self.tokens[self.pos].clone();
        if self.pos + 1 < self.tokens.len() {
            self.pos += 1;
        }
        token
    }

    fn error_at(&self, token: &Token, kind: ParseErrorKind) -> ParseError {
        ParseError::new(kind, self.source, token.start, token.end - token.start)
    }

    fn expected(&self, expected: &str) -> ParseError {
        let token = self.peek();
        if let TokenKind::Word(word) = &token.kind
            && let Some(err) = self.keyword_case_error(token, word)
        {
            return err;
        }
        self.error_at(token, ParseErrorKind::Expected { expected: expected.to_string(), found: token.kind.describe() })
    }

    /// `and`, `Not`, `stringequals` …: a known word in the wrong case.
    fn keyword_case_error(&self, token: &Token, word: &str) -> Option<ParseError> {
        let suggestion = KEYWORDS
            .iter()
            .find(|k| k.eq_ignore_ascii_case(word) && **k != word)
            .map(|k| k.to_string())
            .or_else(|| {
                Function::from_keyword_ignore_case(word)
                    .filter(|f| f.keyword() != word)
                    .map(|f| f.keyword().to_string())
            })
            .or_else(|| {
                Quantifier::ALL
                    .iter()
                    .find(|q| q.keyword().eq_ignore_ascii_case(word) && q.keyword() != word)
                    .map(|q| q.keyword().to_string())
            })?;
        Some(self.error_at(token, ParseErrorKind::KeywordCase { found: word.to_string(), suggestion }))
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(&self.peek().kind, TokenKind::Word(w) if w == word)
    }

    fn expect(&mut self, kind: TokenKind) -> Result<Token, ParseError> {
        if self.peek().kind == kind { Ok(self.advance()) } else { Err(self.expected(&kind.describe())) }
    }

    fn expect_eof(&mut self) -> Result<(), ParseError> {
        if self.peek().kind == TokenKind::Eof {
            return Ok(());
        }
        Err(self.expected("AND, OR or end of input"))
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let token = self.peek().clone();
            return Err(self.error_at(&token, ParseErrorKind::NestingTooDeep { limit: MAX_DEPTH }));
        }
        Ok(())
    }

    fn junction(&self) -> Option<Junction> {
        match &self.peek().kind {
            TokenKind::AndAnd => Some(Junction::And),
            TokenKind::OrOr => Some(Junction::Or),
            TokenKind::Word(w) if w == "AND" => Some(Junction::And),
            TokenKind::Word(w) if w == "OR" => Some(Junction::Or),
            _ => None,
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let first = self.unary()?;
        let mut items = vec![first];
        let mut kind: Option<Junction> = None;
        while let Some(junction) = self.junction() {
            match kind {
                Some(k) if k != junction => {
                    let token = self.peek().clone();
                    return Err(
                        self.error_at(&token, ParseErrorKind::MixedAndOr { first: k.word(), second: junction.word() })
                    );
                }
                _ => kind = Some(junction),
            }
            self.advance();
            items.push(self.unary()?);
        }
        self.depth -= 1;
        Ok(match kind {
            None => items.pop().expect("one item"),
            Some(Junction::And) => Expr::And(items),
            Some(Junction::Or) => Expr::Or(items),
        })
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek().kind == TokenKind::Bang || self.is_word("NOT") {
            self.advance();
            // `!(…)` costs one level, like `!x` and `(x)`: the group the
            // printer puts after a negation must not cost more than the
            // text it came from, or a condition at the limit would print
            // back to one that no longer parses.
            if self.peek().kind == TokenKind::LParen {
                return Ok(Expr::Not(Box::new(self.primary()?)));
            }
            self.enter()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::LParen => {
                self.advance();
                let inner = self.expr()?;
                self.expect(TokenKind::RParen)?;
                Ok(inner)
            }
            TokenKind::Word(w) if w == "ActionMatches" || w == "SubOperationMatches" => {
                self.advance();
                self.expect(TokenKind::LBrace)?;
                let pattern = match self.peek().kind.clone() {
                    TokenKind::String(s) => {
                        self.advance();
                        s
                    }
                    _ => return Err(self.expected("a single-quoted pattern")),
                };
                self.expect(TokenKind::RBrace)?;
                Ok(if w == "ActionMatches" { Expr::ActionMatches(pattern) } else { Expr::SubOperationMatches(pattern) })
            }
            TokenKind::Word(w) if w == "Exists" => {
                self.advance();
                match self.peek().kind.clone() {
                    TokenKind::Attribute(a) => {
                        self.advance();
                        Ok(Expr::Exists(a))
                    }
                    _ => Err(self.expected("an attribute such as @Request[…]")),
                }
            }
            TokenKind::Attribute(_) | TokenKind::String(_) | TokenKind::Integer(_) | TokenKind::LBrace => {
                self.comparison()
            }
            TokenKind::Word(w) if w == "true" || w == "false" => self.comparison(),
            _ => {
                Err(self
                    .expected("an expression (an attribute, ActionMatches, SubOperationMatches, Exists, NOT or '(')"))
            }
        }
    }

    fn comparison(&mut self) -> Result<Expr, ParseError> {
        let left_token = self.peek().clone();
        let left = self.raw_operand()?;
        let operator = self.operator()?;
        let right_token = self.peek().clone();
        let right = self.raw_operand()?;
        if !matches!(left, RawOperand::Attribute(_)) && !matches!(right, RawOperand::Attribute(_)) {
            return Err(self.error_at(&left_token, ParseErrorKind::NoAttributeOperand));
        }
        let left = self.typed(left, &left_token, operator)?;
        let right = self.typed(right, &right_token, operator)?;
        Ok(Expr::Compare(Comparison { left, operator, right }))
    }

    fn operator(&mut self) -> Result<Operator, ParseError> {
        let token = self.peek().clone();
        let TokenKind::Word(word) = &token.kind else {
            return Err(self.expected("an operator such as StringEquals"));
        };
        if let Some(quantifier) = Quantifier::from_keyword(word) {
            self.advance();
            self.expect(TokenKind::Colon)?;
            let function_token = self.peek().clone();
            let function = self.function()?;
            if !function.allows_cross_product() {
                return Err(self.error_at(
                    &function_token,
                    ParseErrorKind::NotCrossProductOperator {
                        operator: function.keyword().to_string(),
                        quantifier: quantifier.keyword().to_string(),
                    },
                ));
            }
            return Ok(Operator { quantifier: Some(quantifier), function });
        }
        Ok(Operator::plain(self.function()?))
    }

    fn function(&mut self) -> Result<Function, ParseError> {
        let token = self.peek().clone();
        match &token.kind {
            TokenKind::Word(word) => match Function::from_keyword(word) {
                Some(f) => {
                    self.advance();
                    Ok(f)
                }
                None => Err(self
                    .keyword_case_error(&token, word)
                    .unwrap_or_else(|| self.error_at(&token, ParseErrorKind::UnknownOperator { found: word.clone() }))),
            },
            _ => Err(self.expected("an operator such as StringEquals")),
        }
    }

    fn raw_operand(&mut self) -> Result<RawOperand, ParseError> {
        let token = self.peek().clone();
        let operand = match &token.kind {
            TokenKind::Attribute(a) => RawOperand::Attribute(a.clone()),
            TokenKind::String(s) => RawOperand::Single(RawScalar::String(s.clone()), token.clone()),
            TokenKind::Integer(n) => RawOperand::Single(RawScalar::Integer(*n), token.clone()),
            TokenKind::Word(w) if w == "true" || w == "false" => {
                RawOperand::Single(RawScalar::Bool(w == "true"), token.clone())
            }
            TokenKind::LBrace => {
                self.advance();
                let mut values = Vec::new();
                loop {
                    let value_token = self.peek().clone();
                    let scalar = match &value_token.kind {
                        TokenKind::String(s) => RawScalar::String(s.clone()),
                        TokenKind::Integer(n) => RawScalar::Integer(*n),
                        TokenKind::Word(w) if w == "true" || w == "false" => RawScalar::Bool(w == "true"),
                        _ => return Err(self.expected("a literal value")),
                    };
                    self.advance();
                    values.push((scalar, value_token));
                    if self.peek().kind == TokenKind::Comma {
                        self.advance();
                        continue;
                    }
                    self.expect(TokenKind::RBrace)?;
                    return Ok(RawOperand::Set(values));
                }
            }
            _ => return Err(self.expected("an attribute or a literal value")),
        };
        self.advance();
        Ok(operand)
    }

    fn typed(&self, raw: RawOperand, token: &Token, operator: Operator) -> Result<Operand, ParseError> {
        match raw {
            RawOperand::Attribute(a) => Ok(Operand::Attribute(a)),
            RawOperand::Single(scalar, token) => {
                Ok(Operand::Literal(Literal::Single(self.scalar(scalar, &token, operator)?)))
            }
            RawOperand::Set(values) => {
                if operator.quantifier.is_none() {
                    return Err(self.error_at(token, ParseErrorKind::MultiValueNeedsCrossProduct));
                }
                let typed = values
                    .into_iter()
                    .map(|(scalar, token)| self.scalar(scalar, &token, operator))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Operand::Literal(Literal::Set(typed)))
            }
        }
    }

    /// Checks one literal against the operator's operand type.
    fn scalar(&self, raw: RawScalar, token: &Token, operator: Operator) -> Result<Scalar, ParseError> {
        let expected = operator.function.operand_type();
        let mismatch = |found: String| {
            self.error_at(
                token,
                ParseErrorKind::LiteralTypeMismatch {
                    operator: operator.to_string(),
                    expected: expected.describe(),
                    found,
                },
            )
        };
        let invalid = |kind: &'static str, text: &str| {
            self.error_at(token, ParseErrorKind::InvalidLiteral { kind, found: text.to_string() })
        };
        match (expected, raw) {
            (OperandType::String, RawScalar::String(s)) => Ok(Scalar::String(s)),
            (OperandType::Integer, RawScalar::Integer(n)) => Ok(Scalar::Integer(n)),
            (OperandType::Bool, RawScalar::Bool(b)) => Ok(Scalar::Bool(b)),
            (OperandType::DateTime, RawScalar::String(s)) => match parse_datetime(&s) {
                Some(value) => Ok(Scalar::DateTime { text: s, value }),
                None => Err(invalid("date-time (yyyy-mm-ddThh:mm:ss[.fffffff]Z)", &s)),
            },
            (OperandType::Guid, RawScalar::String(s)) => match parse_guid(&s) {
                Some(value) => Ok(Scalar::Guid { text: s, value }),
                None => Err(invalid("GUID (00000000-0000-0000-0000-000000000000)", &s)),
            },
            (OperandType::Ip, RawScalar::String(s)) => {
                let pattern = if matches!(operator.function, Function::IpInRange | Function::IpNotInRange) {
                    parse_ip_range(&s)
                } else {
                    parse_ip_match(&s)
                };
                match pattern {
                    Some(value) => Ok(Scalar::Ip { text: s, value }),
                    None => Err(invalid("IP address, CIDR block or range", &s)),
                }
            }
            (_, raw) => Err(mismatch(raw.describe())),
        }
    }
}

enum RawScalar {
    String(String),
    Integer(i64),
    Bool(bool),
}

impl RawScalar {
    fn describe(&self) -> String {
        match self {
            RawScalar::String(s) => format!("the string '{s}'"),
            RawScalar::Integer(n) => format!("the number {n}"),
            RawScalar::Bool(b) => format!("{b}"),
        }
    }
}

enum RawOperand {
    Attribute(AttributeRef),
    Single(RawScalar, Token),
    Set(Vec<(RawScalar, Token)>),
}

/// `yyyy-mm-ddThh:mm:ss[.f…]Z` with at most 7 fractional digits, always UTC.
pub fn parse_datetime(text: &str) -> Option<chrono::DateTime<Utc>> {
    let body = text.strip_suffix('Z')?;
    let (main, fraction) = match body.split_once('.') {
        Some((m, f)) => (m, Some(f)),
        None => (body, None),
    };
    if main.len() != 19 {
        return None;
    }
    if let Some(f) = fraction
        && (f.is_empty() || f.len() > 7 || !f.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let naive = NaiveDateTime::parse_from_str(
        body,
        if fraction.is_some() { "%Y-%m-%dT%H:%M:%S%.f" } else { "%Y-%m-%dT%H:%M:%S" },
    )
    .ok()?;
    Some(Utc.from_utc_datetime(&naive))
}

/// The hyphenated 8-4-4-4-12 form only (case-insensitive).
pub fn parse_guid(text: &str) -> Option<uuid::Uuid> {
    let shape_ok = text.len() == 36
        && text.char_indices().all(
            |(i, c)| {
                if matches!(i, 8 | 13 | 18 | 23) { c == '-' } else { c.is_ascii_hexdigit() }
            },
        );
    shape_ok.then(|| uuid::Uuid::parse_str(text).ok()).flatten()
}

/// `IpMatch` / `IpNotMatch`: an address or a CIDR block.
pub fn parse_ip_match(text: &str) -> Option<IpPattern> {
    if text.contains('/') {
        return text.parse().ok().map(IpPattern::Network);
    }
    text.parse().ok().map(IpPattern::Address)
}

/// `IpInRange` / `IpNotInRange`: `first-last` (same family, first ≤ last) or a CIDR block.
pub fn parse_ip_range(text: &str) -> Option<IpPattern> {
    if let Some((a, b)) = text.split_once('-') {
        let first: std::net::IpAddr = a.trim().parse().ok()?;
        let last: std::net::IpAddr = b.trim().parse().ok()?;
        let ordered = match (first, last) {
            (std::net::IpAddr::V4(x), std::net::IpAddr::V4(y)) => x <= y,
            (std::net::IpAddr::V6(x), std::net::IpAddr::V6(y)) => x <= y,
            _ => false,
        };
        return ordered.then_some(IpPattern::Range(first, last));
    }
    if text.contains('/') {
        return text.parse().ok().map(IpPattern::Network);
    }
    None
}
