//! ARM scopes: `/`, `/subscriptions/{id}`, `.../resourceGroups/{rg}`,
//! `.../providers/{namespace}/{type}/{name}[/{type}/{name}…]` and management
//! groups (`/providers/Microsoft.Management/managementGroups/{id}`).
//!
//! Owns: parsing and validating scope strings, ARM's case-insensitive
//! comparison, and inheritance (`is_at_or_above`): an assignment at a
//! subscription applies to its resource groups, registries and everything
//! below them.
//!
//! Must never: consult a resource store. Whether a resource exists is the
//! caller's business; this module only reasons about the text. Management
//! group ancestry is not lexical in ARM, so a management-group scope is only
//! "above" scopes that literally start with it.

use std::fmt;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::ScopeError;

/// The provider namespace and resource type of a container registry.
pub const REGISTRY_TYPE: &str = "Microsoft.ContainerRegistry/registries";

/// What a scope designates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeKind {
    /// `/`: only valid in a built-in role's `assignableScopes`.
    Root,
    ManagementGroup,
    Subscription,
    ResourceGroup,
    /// A resource (or child resource) under a provider namespace.
    Resource,
}

/// A validated ARM scope. Equality, hashing and inheritance ignore case, as
/// ARM does; the original spelling is kept for display.
#[derive(Clone)]
pub struct Scope {
    text: String,
    /// Lower-cased `text`, used for every comparison.
    key: String,
    kind: ScopeKind,
}

impl Scope {
    /// Parses a scope string. One trailing `/` is tolerated and dropped
    /// (except for the root scope itself).
    pub fn parse(input: &str) -> Result<Scope, ScopeError> {
        if input == "/" {
            return Ok(Scope::root());
        }
        if !input.starts_with('/') {
            return Err(ScopeError::NotAbsolute(input.to_string()));
        }
        if let Some(bad) = input.chars().find(|c| c.is_control() || matches!(c, '?' | '#')) {
            return Err(ScopeError::InvalidCharacter { scope: input.to_string(), found: bad });
        }
        let trimmed = input.strip_suffix('/').unwrap_or(input);
        let segments: Vec<&str> = trimmed[1..].split('/').collect();
        if segments.iter().any(|s| s.is_empty() || s.trim() != *s) {
            return Err(ScopeError::EmptySegment(input.to_string()));
        }
        // ARM ids have no relative segments; `a/../b` must never be stored as a scope that
        // some other resource's id would later match.
        if segments.iter().any(|s| *s == "." || *s == "..") {
            return Err(ScopeError::RelativeSegment(input.to_string()));
        }
        let kind = classify(&segments).ok_or_else(|| ScopeError::Malformed(input.to_string()))?;
        Ok(Scope { key: trimmed.to_lowercase(), text: trimmed.to_string(), kind })
    }

    /// The root scope `/`.
    pub fn root() -> Scope {
        Scope { text: "/".into(), key: "/".into(), kind: ScopeKind::Root }
    }

    pub fn subscription(subscription_id: &str) -> Result<Scope, ScopeError> {
        Scope::parse(&format!("/subscriptions/{subscription_id}"))
    }

    pub fn resource_group(subscription_id: &str, resource_group: &str) -> Result<Scope, ScopeError> {
        Scope::parse(&format!("/subscriptions/{subscription_id}/resourceGroups/{resource_group}"))
    }

    /// `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}`.
    pub fn registry(subscription_id: &str, resource_group: &str, name: &str) -> Result<Scope, ScopeError> {
        Scope::parse(&format!(
            "/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{REGISTRY_TYPE}/{name}"
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn kind(&self) -> ScopeKind {
        self.kind
    }

    /// True when an assignment at `self` applies to a resource at `resource`:
    /// the same scope or an ancestor of it, compared case-insensitively on
    /// whole segments (so `/subscriptions/a` is not above `/subscriptions/ab`).
    pub fn is_at_or_above(&self, resource: &Scope) -> bool {
        is_prefix_scope(&self.key, &resource.key)
    }

    /// The subscription this scope lies in, if any (spelled as written).
    pub fn subscription_id(&self) -> Option<&str> {
        let mut parts = self.text[1..].split('/');
        match parts.next() {
            Some(first) if first.eq_ignore_ascii_case("subscriptions") => parts.next(),
            _ => None,
        }
    }

    /// The resource group this scope lies in, if any.
    pub fn resource_group_name(&self) -> Option<&str> {
        let mut parts = self.text[1..].split('/');
        parts.next()?;
        parts.next()?;
        match parts.next() {
            Some(rg) if rg.eq_ignore_ascii_case("resourceGroups") => parts.next(),
            _ => None,
        }
    }

    /// The registry name when this scope is exactly a container registry.
    pub fn registry_name(&self) -> Option<&str> {
        let lower_type = REGISTRY_TYPE.to_ascii_lowercase();
        let (head, name) = self.text.rsplit_once('/')?;
        let head_key = head.to_lowercase();
        let is_registry = self.kind == ScopeKind::Resource
            && head_key.ends_with(&format!("/providers/{lower_type}"))
            && head_key.matches("/providers/").count() == 1;
        is_registry.then_some(name)
    }

    /// The registry scope this scope lies in (itself when it is a registry).
    pub fn enclosing_registry(&self) -> Option<Scope> {
        let marker = format!("/providers/{}/", REGISTRY_TYPE.to_ascii_lowercase());
        let at = self.key.find(&marker)?;
        let rest = &self.text[at + marker.len()..];
        let name = rest.split('/').next()?;
        Scope::parse(&self.text[..at + marker.len() + name.len()]).ok()
    }
}

/// Free-function form of [`Scope::is_at_or_above`].
pub fn is_at_or_above(assignment_scope: &Scope, resource_scope: &Scope) -> bool {
    assignment_scope.is_at_or_above(resource_scope)
}

fn is_prefix_scope(ancestor_key: &str, key: &str) -> bool {
    if ancestor_key == "/" {
        return true;
    }
    match key.strip_prefix(ancestor_key) {
        Some("") => true,
        Some(rest) => rest.starts_with('/'),
        None => false,
    }
}

fn classify(segments: &[&str]) -> Option<ScopeKind> {
    let is = |i: usize, word: &str| segments.get(i).is_some_and(|s| s.eq_ignore_ascii_case(word));
    if is(0, "subscriptions") {
        match segments.len() {
            2 => Some(ScopeKind::Subscription),
            4 if is(2, "resourceGroups") => Some(ScopeKind::ResourceGroup),
            n if n >= 4 && is(2, "resourceGroups") && is(4, "providers") => {
                provider_tail(&segments[5..]).then_some(ScopeKind::Resource)
            }
            n if n >= 3 && is(2, "providers") => provider_tail(&segments[3..]).then_some(ScopeKind::Resource),
            _ => None,
        }
    } else if is(0, "providers") {
        let tail = &segments[1..];
        if !provider_tail(tail) {
            return None;
        }
        let management_group = tail.len() == 3
            && tail[0].eq_ignore_ascii_case("Microsoft.Management")
            && tail[1].eq_ignore_ascii_case("managementGroups");
        Some(if management_group { ScopeKind::ManagementGroup } else { ScopeKind::Resource })
    } else {
        None
    }
}

/// `{namespace}/{type}/{name}` followed by any number of `{type}/{name}` pairs
/// (a nested `providers/{namespace}` extension is also a pair).
fn provider_tail(tail: &[&str]) -> bool {
    tail.len() >= 3 && tail[0].contains('.') && (tail.len() - 1).is_multiple_of(2)
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Scope {}

impl Hash for Scope {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({})", self.text)
    }
}

impl std::str::FromStr for Scope {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::parse(s)
    }
}

impl Serialize for Scope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Scope::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "/subscriptions/00000000-0000-0000-0000-000000000001";

    fn s(text: &str) -> Scope {
        Scope::parse(text).unwrap()
    }

    #[test]
    fn kinds() {
        assert_eq!(s("/").kind(), ScopeKind::Root);
        assert_eq!(s(SUB).kind(), ScopeKind::Subscription);
        assert_eq!(s(&format!("{SUB}/resourceGroups/rg")).kind(), ScopeKind::ResourceGroup);
        let reg = Scope::registry("00000000-0000-0000-0000-000000000001", "rg", "myreg").unwrap();
        assert_eq!(reg.kind(), ScopeKind::Resource);
        assert_eq!(reg.registry_name(), Some("myreg"));
        assert_eq!(s("/providers/Microsoft.Management/managementGroups/mg1").kind(), ScopeKind::ManagementGroup);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "subscriptions/x",
            "/subscriptions",
            "/subscriptions//resourceGroups/rg",
            "/subscriptions/x/resourceGroups",
            "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries",
            "/subscriptions/x/foo/bar",
            "/tenants/x",
            "/subscriptions/x?y",
            "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/a/../b",
            "/subscriptions/x/resourceGroups/./providers/Microsoft.ContainerRegistry/registries/a",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        // A trailing slash is normalised away, so the scope names the registry itself.
        let trailing =
            Scope::parse("/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/a/")
                .unwrap();
        assert_eq!(
            trailing.as_str(),
            "/subscriptions/x/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/a"
        );
    }

    #[test]
    fn case_insensitive_equality_keeps_spelling() {
        let a = s(&format!("{SUB}/resourceGroups/MyRG"));
        let b = s(&format!("{}/RESOURCEGROUPS/myrg", SUB.to_uppercase()));
        assert_eq!(a, b);
        assert_eq!(a.to_string(), format!("{SUB}/resourceGroups/MyRG"));
    }

    #[test]
    fn trailing_slash_is_dropped() {
        assert_eq!(s(&format!("{SUB}/")), s(SUB));
    }

    #[test]
    fn inheritance() {
        let sub = s(SUB);
        let rg = s(&format!("{SUB}/resourceGroups/rg"));
        let reg = s(&format!("{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r1"));
        let child = s(&format!("{}/replications/westus", reg.as_str()));
        let other_rg = s(&format!("{SUB}/resourceGroups/rg2"));
        assert!(Scope::root().is_at_or_above(&reg));
        assert!(sub.is_at_or_above(&reg));
        assert!(rg.is_at_or_above(&reg));
        assert!(reg.is_at_or_above(&reg));
        assert!(reg.is_at_or_above(&child));
        assert!(!reg.is_at_or_above(&rg));
        assert!(!other_rg.is_at_or_above(&reg));
        // whole segments only
        let rg_prefix = s(&format!("{SUB}/resourceGroups/r"));
        assert!(!rg_prefix.is_at_or_above(&rg));
        assert_eq!(child.enclosing_registry(), Some(reg.clone()));
        assert_eq!(child.registry_name(), None);
        assert_eq!(reg.subscription_id(), Some("00000000-0000-0000-0000-000000000001"));
        assert_eq!(reg.resource_group_name(), Some("rg"));
    }

    #[test]
    fn serde_round_trip() {
        let reg = s(&format!("{SUB}/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r1"));
        let json = serde_json::to_string(&reg).unwrap();
        let back: Scope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, reg);
        assert!(serde_json::from_str::<Scope>("\"nope\"").is_err());
    }
}
