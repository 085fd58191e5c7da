//! Repository names, tags and manifest references, following the OCI distribution grammar.
//!
//! `RepositoryName` is the name *inside one registry* (`backend/nginx`); the registry prefix of
//! path-style requests is removed by the HTTP layer before a name is built here.

use std::fmt;

use crate::digest::{Digest, DigestError};

/// Longest repository name accepted. The spec leaves the bound to registries; clients commonly
/// cap `host/name` at 255 characters.
pub const MAX_NAME_LEN: usize = 255;
/// Longest tag, from the spec's grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub const MAX_TAG_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("repository name must not be empty")]
    Empty,
    #[error("repository name is longer than {MAX_NAME_LEN} characters")]
    TooLong,
    #[error(
        "invalid repository name '{0}': path components are lowercase letters and digits, \
         separated by '.', '_', '__' or dashes, joined by '/'"
    )]
    Grammar(String),
    #[error("invalid tag '{0}': tags match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}")]
    Tag(String),
    #[error("invalid reference '{0}': {1}")]
    Reference(String, DigestError),
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepositoryName(String);

impl RepositoryName {
    pub fn parse(s: &str) -> Result<RepositoryName, NameError> {
        if s.is_empty() {
            return Err(NameError::Empty);
        }
        if s.len() > MAX_NAME_LEN {
            return Err(NameError::TooLong);
        }
        if !s.split('/').all(valid_component) {
            return Err(NameError::Grammar(s.to_string()));
        }
        Ok(RepositoryName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: '.', '_', '__', or one or more '-'.
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RepositoryName({})", self.0)
    }
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn parse(s: &str) -> Result<Tag, NameError> {
        let b = s.as_bytes();
        let first_ok = b.first().is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_');
        let rest_ok = b.iter().all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
        if !first_ok || !rest_ok || b.len() > MAX_TAG_LEN {
            return Err(NameError::Tag(s.to_string()));
        }
        Ok(Tag(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({})", self.0)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    /// Anything with a ':' is a digest (tags cannot contain one); the rest must be a tag.
    pub fn parse(s: &str) -> Result<Reference, NameError> {
        if s.contains(':') {
            Digest::parse(s).map(Reference::Digest).map_err(|e| NameError::Reference(s.to_string(), e))
        } else {
            Tag::parse(s).map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names() {
        for ok in ["a", "backend/nginx", "a.b_c__d---e/f0", "library/hello-world", "0/1/2"] {
            assert!(RepositoryName::parse(ok).is_ok(), "{ok} rejected");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "a/../b", "..", "a/.b", "%2e%2e", "a b", "a:b",
            "ä",
        ] {
            assert!(RepositoryName::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(RepositoryName::parse(&"a".repeat(256)).is_err());
    }

    #[test]
    fn tags_and_references() {
        assert!(Tag::parse("v1.0_rc-2").is_ok());
        assert!(Tag::parse("_x").is_ok());
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(Tag::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(matches!(Reference::parse("latest"), Ok(Reference::Tag(_))));
        assert!(matches!(Reference::parse("sha256:bad"), Err(NameError::Reference(..))));
    }
}
