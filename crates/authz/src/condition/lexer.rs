//! Lexer: condition text → tokens with byte spans.
//!
//! Owns the lexical rules (documented decisions where Azure is silent):
//! * whitespace is spaces, tabs, CR and LF, anywhere between tokens;
//! * a string is `'…'` with NO escape sequence: the next `'` ends it, and a
//!   backslash is an ordinary character (so `'\*'` is the two characters the
//!   Like matcher reads as an escaped star). A string cannot contain `'`;
//! * a number is an optional `-` and decimal digits; a `.` right after the
//!   digits is an error (Azure's numeric operators take integers only);
//! * an attribute is `@Source[…]` lexed as one token; the text between the
//!   brackets may use letters, digits and `._-/:` and may end in
//!   `<$key_case_sensitive$>`;
//! * words are `[A-Za-z_][A-Za-z0-9_.]*`; keyword case is checked by the parser.
//!
//! Must never: decide grammar. It does not know what may follow what.

use super::ast::{AttributeRef, AttributeSource};
use super::error::{ParseError, ParseErrorKind};

const CASE_MARKER: &str = "<$key_case_sensitive$>";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenKind {
    LParen,
    RParen,
    LBrace,
    RBrace,
    Comma,
    Colon,
    Bang,
    AndAnd,
    OrOr,
    Word(String),
    String(String),
    Integer(i64),
    Attribute(AttributeRef),
    Eof,
}

impl TokenKind {
    /// How the token is named in "expected X, found Y" messages.
    pub fn describe(&self) -> String {
        match self {
            TokenKind::LParen => "'('".into(),
            TokenKind::RParen => "')'".into(),
            TokenKind::LBrace => "'{'".into(),
            TokenKind::RBrace => "'}'".into(),
            TokenKind::Comma => "','".into(),
            TokenKind::Colon => "':'".into(),
            TokenKind::Bang => "'!'".into(),
            TokenKind::AndAnd => "'&&'".into(),
            TokenKind::OrOr => "'||'".into(),
            TokenKind::Word(w) => format!("'{w}'"),
            TokenKind::String(s) => format!("the string '{s}'"),
            TokenKind::Integer(n) => format!("the number {n}"),
            TokenKind::Attribute(a) => format!("the attribute {a}"),
            TokenKind::Eof => "end of input".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub kind: TokenKind,
    /// Byte offset of the first character.
    pub start: usize,
    /// Byte offset one past the last character.
    pub end: usize,
}

/// Splits `source` into tokens, ending with one `Eof` token.
pub fn tokenize(source: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = source.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let error = |kind, start: usize, len: usize| ParseError::new(kind, source, start, len);
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = |kind| Token { kind, start, end: start + 1 };
        match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => tokens.push(single(TokenKind::LParen)),
            b')' => tokens.push(single(TokenKind::RParen)),
            b'{' => tokens.push(single(TokenKind::LBrace)),
            b'}' => tokens.push(single(TokenKind::RBrace)),
            b',' => tokens.push(single(TokenKind::Comma)),
            b':' => tokens.push(single(TokenKind::Colon)),
            b'!' => tokens.push(single(TokenKind::Bang)),
            b'&' | b'|' => {
                if bytes.get(i + 1) != Some(&c) {
                    return Err(error(ParseErrorKind::UnexpectedCharacter { found: c as char }, start, 1));
                }
                let kind = if c == b'&' { TokenKind::AndAnd } else { TokenKind::OrOr };
                tokens.push(Token { kind, start, end: start + 2 });
                i += 2;
                continue;
            }
            b'\'' => {
                let close = source[i + 1..]
                    .find('\'')
                    .ok_or_else(|| error(ParseErrorKind::UnterminatedString, start, source.len() - start))?;
                let text = &source[i + 1..i + 1 + close];
                let end = i + close + 2;
                tokens.push(Token { kind: TokenKind::String(text.to_string()), start, end });
                i = end;
                continue;
            }
            b'@' => {
                let (attribute, end) = lex_attribute(source, start)?;
                tokens.push(Token { kind: TokenKind::Attribute(attribute), start, end });
                i = end;
                continue;
            }
            b'-' | b'0'..=b'9' => {
                let mut end = i + 1;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                let is_fraction = end < bytes.len() && bytes[end] == b'.';
                if is_fraction {
                    while end < bytes.len() && (bytes[end].is_ascii_digit() || bytes[end] == b'.') {
                        end += 1;
                    }
                }
                let text = &source[start..end];
                let value = (!is_fraction).then(|| text.parse::<i64>().ok()).flatten();
                let value = value.ok_or_else(|| {
                    error(ParseErrorKind::InvalidNumber { found: text.to_string() }, start, end - start)
                })?;
                tokens.push(Token { kind: TokenKind::Integer(value), start, end });
                i = end;
                continue;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut end = i + 1;
                while end < bytes.len()
                    && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_' || bytes[end] == b'.')
                {
                    end += 1;
                }
                tokens.push(Token { kind: TokenKind::Word(source[start..end].to_string()), start, end });
                i = end;
                continue;
            }
            _ => {
                let found = source[i..].chars().next().unwrap_or('\u{fffd}');
                return Err(error(ParseErrorKind::UnexpectedCharacter { found }, start, found.len_utf8()));
            }
        }
        i += 1;
    }
    tokens.push(Token { kind: TokenKind::Eof, start: source.len(), end: source.len() });
    Ok(tokens)
}

/// Lexes `@Source[path]` starting at the `@`; returns the reference and the
/// offset just past `]`.
fn lex_attribute(source: &str, start: usize) -> Result<(AttributeRef, usize), ParseError> {
    let bytes = source.as_bytes();
    let malformed = |reason: &str, at: usize, len: usize| {
        ParseError::new(ParseErrorKind::MalformedAttribute { reason: reason.to_string() }, source, at, len)
    };
    let name_start = start + 1;
    let mut name_end = name_start;
    while name_end < bytes.len() && bytes[name_end].is_ascii_alphabetic() {
        name_end += 1;
    }
    let name = &source[name_start..name_end];
    let attribute_source = AttributeSource::ALL.into_iter().find(|s| s.keyword() == name).ok_or_else(|| {
        ParseError::new(
            ParseErrorKind::UnknownAttributeSource { found: name.to_string() },
            source,
            start,
            name_end - start,
        )
    })?;
    if bytes.get(name_end) != Some(&b'[') {
        return Err(malformed("expected '[' after the attribute source", name_end, 1));
    }
    let body_start = name_end + 1;
    let close = source[body_start..].find(']').ok_or_else(|| malformed("missing ']'", start, source.len() - start))?;
    let body = &source[body_start..body_start + close];
    let (path, key_case_sensitive) = match body.strip_suffix(CASE_MARKER) {
        Some(path) => (path, true),
        None => (body, false),
    };
    if path.is_empty() {
        return Err(malformed("the attribute name is empty", body_start, close.max(1)));
    }
    if let Some((offset, bad)) =
        path.char_indices().find(|(_, c)| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':')))
    {
        return Err(malformed(
            &format!("the character {bad:?} is not allowed in an attribute name"),
            body_start + offset,
            bad.len_utf8(),
        ));
    }
    if path.starts_with(['/', ':']) || path.ends_with(['/', ':']) || path.contains("//") || path.contains("::") {
        return Err(malformed("the attribute name has an empty segment", body_start, close.max(1)));
    }
    let attribute = AttributeRef { source: attribute_source, path: path.to_string(), key_case_sensitive };
    Ok((attribute, body_start + close + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<TokenKind> {
        tokenize(text).unwrap().into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn tokens_and_spans() {
        let tokens = tokenize("!(ActionMatches{'a/b'}) && x").unwrap();
        assert_eq!(tokens[0].kind, TokenKind::Bang);
        assert_eq!(tokens[3].kind, TokenKind::LBrace);
        assert_eq!(tokens[4], Token { kind: TokenKind::String("a/b".into()), start: 16, end: 21 });
        assert_eq!(tokens[7].kind, TokenKind::AndAnd);
        assert_eq!(tokens.last().unwrap().kind, TokenKind::Eof);
    }

    #[test]
    fn strings_have_no_escapes() {
        assert_eq!(kinds(r"'a\*b'")[0], TokenKind::String(r"a\*b".into()));
        // The first quote after the opening one ends the string.
        assert_eq!(kinds("'it''s'")[..2], [TokenKind::String("it".into()), TokenKind::String("s".into())]);
        let err = tokenize("x 'open").unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::UnterminatedString);
        assert_eq!((err.line(), err.column()), (1, 3));
    }

    #[test]
    fn attributes() {
        let k = kinds(
            "@Resource[Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:Project<$key_case_sensitive$>]",
        );
        let TokenKind::Attribute(a) = &k[0] else { panic!("{k:?}") };
        assert!(a.key_case_sensitive);
        assert_eq!(a.path, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:Project");
        let k = kinds("@Environment[Microsoft.Network/privateEndpoints]");
        assert!(matches!(&k[0], TokenKind::Attribute(a) if a.source == AttributeSource::Environment));
        assert!(matches!(tokenize("@Requests[x]").unwrap_err().kind, ParseErrorKind::UnknownAttributeSource { .. }));
        assert!(matches!(tokenize("@Request[a b]").unwrap_err().kind, ParseErrorKind::MalformedAttribute { .. }));
        assert!(matches!(tokenize("@Request[x").unwrap_err().kind, ParseErrorKind::MalformedAttribute { .. }));
        assert!(matches!(tokenize("@Request x").unwrap_err().kind, ParseErrorKind::MalformedAttribute { .. }));
        assert!(matches!(tokenize("@Request[]").unwrap_err().kind, ParseErrorKind::MalformedAttribute { .. }));
    }

    #[test]
    fn numbers() {
        assert_eq!(kinds("{10, -20}")[1..4], [TokenKind::Integer(10), TokenKind::Comma, TokenKind::Integer(-20)]);
        assert!(matches!(tokenize("1.5").unwrap_err().kind, ParseErrorKind::InvalidNumber { .. }));
        assert!(matches!(tokenize("99999999999999999999").unwrap_err().kind, ParseErrorKind::InvalidNumber { .. }));
        assert!(matches!(tokenize("-").unwrap_err().kind, ParseErrorKind::InvalidNumber { .. }));
    }

    #[test]
    fn stray_characters() {
        let err = tokenize("a\n  & b").unwrap_err();
        assert_eq!((err.line(), err.column()), (2, 3));
        let err = tokenize("a é").unwrap_err();
        assert_eq!(err.kind, ParseErrorKind::UnexpectedCharacter { found: 'é' });
    }
}
