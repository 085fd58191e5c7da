//! Docker token scopes: `repository:backend/nginx:pull,push`, `registry:catalog:*`.
//!
//! Owns: parsing the `scope` parameter of `/oauth2/token` (several scopes space-separated in
//! one value, or the parameter repeated), rendering scopes back (for `WWW-Authenticate`
//! challenges), and merging repeated scopes for one resource.
//! Must never: decide whether a scope is granted, or strip a path-style registry prefix from a
//! name (the server does that before anything looks at the name).
//!
//! A name may contain colons (a registry host with a port, `localhost:5000/foo`), so a scope is
//! read from both ends: the resource type is before the first colon, the actions after the last.

use std::fmt;

use crate::error::ScopeError;

/// One requested scope.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenScope {
    /// `repository`, `registry`, `artifact-repository` … optionally with a class:
    /// `repository(plugin)`.
    pub resource_type: String,
    /// The resource name: a repository (`backend/nginx`), or `catalog` for `registry`.
    pub name: String,
    /// Actions in request order, without duplicates: `pull`, `push`, `delete`,
    /// `metadata_read`, `metadata_write`, `*` …
    pub actions: Vec<String>,
}

fn valid_type_word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn valid_resource_type(s: &str) -> bool {
    match s.split_once('(') {
        None => valid_type_word(s),
        Some((word, rest)) => {
            valid_type_word(word)
                && rest.strip_suffix(')').is_some_and(|class| {
                    !class.contains(['(', ')'])
                        && !class.is_empty()
                        && class.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
                })
        }
    }
}

fn valid_action(s: &str) -> bool {
    s == "*" || (!s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'))
}

impl TokenScope {
    /// A scope from parts (not validated; use [`TokenScope::parse`] for input from clients).
    pub fn new(
        resource_type: impl Into<String>,
        name: impl Into<String>,
        actions: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            resource_type: resource_type.into(),
            name: name.into(),
            actions: actions.into_iter().map(Into::into).collect(),
        }
    }

    /// Parses one scope `type:name:action[,action…]`.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let (resource_type, rest) = s.split_once(':').ok_or_else(|| ScopeError::Shape(s.to_owned()))?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(|| ScopeError::Shape(s.to_owned()))?;
        if !valid_resource_type(resource_type) {
            return Err(ScopeError::ResourceType(s.to_owned()));
        }
        if name.is_empty() || name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ScopeError::Name(s.to_owned()));
        }
        let mut parsed: Vec<String> = Vec::new();
        for action in actions.split(',') {
            if !valid_action(action) {
                return Err(ScopeError::Actions(s.to_owned()));
            }
            if !parsed.iter().any(|a| a == action) {
                parsed.push(action.to_owned());
            }
        }
        Ok(Self { resource_type: resource_type.to_owned(), name: name.to_owned(), actions: parsed })
    }

    /// Whether this scope asks for `action` (exactly, or through `*`).
    pub fn requests(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action || a == "*")
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.resource_type, self.name, self.actions.join(","))
    }
}

impl std::str::FromStr for TokenScope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Parses the values of every `scope` parameter of a request (each may hold several scopes
/// separated by spaces). Empty values are ignored. Scopes are returned in order, unmerged.
pub fn parse_scopes<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Vec<TokenScope>, ScopeError> {
    values.into_iter().flat_map(str::split_whitespace).map(TokenScope::parse).collect()
}

/// Merges scopes naming the same resource into one, uniting their actions, keeping the order
/// of first appearance.
pub fn merge_scopes(scopes: impl IntoIterator<Item = TokenScope>) -> Vec<TokenScope> {
    let mut out: Vec<TokenScope> = Vec::new();
    for s in scopes {
        match out.iter_mut().find(|o| o.resource_type == s.resource_type && o.name == s.name) {
            Some(existing) => {
                for a in s.actions {
                    if !existing.actions.contains(&a) {
                        existing.actions.push(a);
                    }
                }
            }
            None => out.push(s),
        }
    }
    out
}

/// Renders scopes space-separated, as a `scope` parameter or a challenge's `scope="…"`.
pub fn render_scopes(scopes: &[TokenScope]) -> String {
    scopes.iter().map(TokenScope::to_string).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_common_forms() {
        let s = TokenScope::parse("repository:backend/nginx:pull,push").unwrap();
        assert_eq!(s, TokenScope::new("repository", "backend/nginx", ["pull", "push"]));
        assert_eq!(TokenScope::parse("registry:catalog:*").unwrap(), TokenScope::new("registry", "catalog", ["*"]));
        assert_eq!(TokenScope::parse("repository:hello-world:metadata_read").unwrap().actions, ["metadata_read"]);
        assert_eq!(TokenScope::parse("artifact-repository:repo:pull").unwrap().resource_type, "artifact-repository");
        assert_eq!(TokenScope::parse("repository(plugin):a/b:pull").unwrap().resource_type, "repository(plugin)");
        assert_eq!(TokenScope::parse("repository:*:*").unwrap().name, "*");
    }

    #[test]
    fn names_with_a_host_and_port_are_read_from_both_ends() {
        let s = TokenScope::parse("repository:localhost:5000/foo:pull").unwrap();
        assert_eq!(s.resource_type, "repository");
        assert_eq!(s.name, "localhost:5000/foo");
        assert_eq!(s.actions, ["pull"]);
        let s = TokenScope::parse("repository:a:b:pull,push").unwrap();
        assert_eq!(s.name, "a:b");
        assert_eq!(s.to_string(), "repository:a:b:pull,push");
    }

    #[test]
    fn rejects_malformed_scopes() {
        for bad in [
            "",
            "repository",
            "repository:nginx",
            "::pull",
            "Repository:a:pull",
            "repo sitory:a:pull",
            "repository(:a:pull",
            "repository(x:a:pull",
        ] {
            assert!(TokenScope::parse(bad).is_err(), "{bad:?}");
        }
        assert!(matches!(TokenScope::parse("repository::pull"), Err(ScopeError::Name(_))));
        assert!(matches!(TokenScope::parse("repository:a:"), Err(ScopeError::Actions(_))));
        assert!(matches!(TokenScope::parse("repository:a:pull,,push"), Err(ScopeError::Actions(_))));
        assert!(matches!(TokenScope::parse("repository:a:PULL"), Err(ScopeError::Actions(_))));
        assert!(matches!(TokenScope::parse("repository:a\u{0}b:pull"), Err(ScopeError::Name(_))));
    }

    #[test]
    fn duplicate_actions_are_collapsed() {
        assert_eq!(TokenScope::parse("repository:a:pull,pull,push").unwrap().actions, ["pull", "push"]);
    }

    #[test]
    fn multiple_scopes_space_separated_or_repeated() {
        let scopes = parse_scopes([
            "registry:catalog:* repository:repo1:pull  repository:repo1:delete",
            "",
            "repository:repo2:push",
        ])
        .unwrap();
        assert_eq!(scopes.len(), 4);
        let merged = merge_scopes(scopes);
        assert_eq!(
            merged,
            vec![
                TokenScope::new("registry", "catalog", ["*"]),
                TokenScope::new("repository", "repo1", ["pull", "delete"]),
                TokenScope::new("repository", "repo2", ["push"]),
            ]
        );
        assert_eq!(render_scopes(&merged), "registry:catalog:* repository:repo1:pull,delete repository:repo2:push");
        assert!(parse_scopes(["repository:a:pull bogus"]).is_err());
    }

    #[test]
    fn render_then_parse_is_identity() {
        for s in [
            "repository:backend/nginx:pull,push",
            "registry:catalog:*",
            "repository:localhost:5000/x/y:delete,metadata_write",
        ] {
            let parsed: TokenScope = s.parse().unwrap();
            assert_eq!(parsed.to_string(), s);
            assert_eq!(TokenScope::parse(&parsed.to_string()).unwrap(), parsed);
        }
    }

    #[test]
    fn requests_honours_wildcards() {
        let s = TokenScope::parse("repository:a:*").unwrap();
        assert!(s.requests("delete"));
        let s = TokenScope::parse("repository:a:pull").unwrap();
        assert!(s.requests("pull") && !s.requests("push"));
    }
}
