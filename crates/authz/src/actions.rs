//! Azure action strings and the permission check of a role's permission block.
//!
//! Owns: matching an action (`Microsoft.ContainerRegistry/registries/pull/read`)
//! against a pattern from a role (`*`, `*/read`, `Microsoft.ContainerRegistry/*`,
//! `Microsoft.Authorization/*/Write`) the way Azure does: case-insensitive,
//! `*` matching any run of characters including `/`, whole-string match; and
//! the rule "permitted iff matched by some `actions` entry and by no
//! `notActions` entry" (the same for `dataActions` / `notDataActions`).
//!
//! Must never: mix the two families. `actions: ["*"]` grants no data action,
//! exactly as in Azure (that is why Owner has no data-plane access in an
//! ABAC-mode registry).

use serde::{Deserialize, Serialize};

/// Azure wildcard match of an action against a role pattern. ASCII
/// case-insensitive; `*` matches any (possibly empty) run of characters.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    if !pattern.contains('*') {
        return pattern.eq_ignore_ascii_case(action);
    }
    wildcard_match(pattern.as_bytes(), action.as_bytes())
}

/// Iterative glob with single-star backtracking: linear in practice, never
/// exponential.
fn wildcard_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p].eq_ignore_ascii_case(&text[t]) {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// Checks the shape of an action pattern as ARM would before storing a role:
/// non-empty, no whitespace or control characters, and either `*` alone or
/// `{Namespace}/…` / `*/…`.
pub fn validate_action_pattern(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("an action must not be empty".into());
    }
    if pattern.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("action '{pattern}' contains whitespace"));
    }
    if pattern == "*" {
        return Ok(());
    }
    let (head, rest) = pattern
        .split_once('/')
        .ok_or_else(|| format!("action '{pattern}' must look like 'Provider.Namespace/resource/operation'"))?;
    if rest.is_empty() || pattern.contains("//") {
        return Err(format!("action '{pattern}' has an empty segment"));
    }
    if head != "*" && (!head.contains('.') || head.starts_with('.') || head.ends_with('.')) {
        return Err(format!("action '{pattern}' does not start with a provider namespace"));
    }
    Ok(())
}

/// One `permissions[]` entry of a role definition (ARM JSON shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Permission {
    #[serde(default)]
    pub actions: Vec<String>,
    #[serde(default)]
    pub not_actions: Vec<String>,
    #[serde(default)]
    pub data_actions: Vec<String>,
    #[serde(default)]
    pub not_data_actions: Vec<String>,
}

impl Permission {
    /// Control-plane check: some `actions` entry matches and no `notActions` does.
    pub fn allows_action(&self, action: &str) -> bool {
        permitted(&self.actions, &self.not_actions, action)
    }

    /// Data-plane check: some `dataActions` entry matches and no `notDataActions` does.
    pub fn allows_data_action(&self, data_action: &str) -> bool {
        permitted(&self.data_actions, &self.not_data_actions, data_action)
    }

    /// The `notActions` entry that removes `action`, if one does.
    pub fn excluding_not_action(&self, action: &str) -> Option<&str> {
        first_match(&self.not_actions, action)
    }

    /// The `notDataActions` entry that removes `data_action`, if one does.
    pub fn excluding_not_data_action(&self, data_action: &str) -> Option<&str> {
        first_match(&self.not_data_actions, data_action)
    }
}

fn first_match<'a>(patterns: &'a [String], action: &str) -> Option<&'a str> {
    patterns.iter().find(|p| action_matches(p, action)).map(String::as_str)
}

fn permitted(allow: &[String], deny: &[String], action: &str) -> bool {
    first_match(allow, action).is_some() && first_match(deny, action).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_as_azure_uses_them() {
        let table: &[(&str, &str, bool)] = &[
            ("*", "Microsoft.ContainerRegistry/registries/pull/read", true),
            ("*/read", "Microsoft.ContainerRegistry/registries/pull/read", true),
            ("*/read", "Microsoft.ContainerRegistry/registries/push/write", false),
            ("Microsoft.ContainerRegistry/*", "Microsoft.ContainerRegistry/registries/push/write", true),
            ("Microsoft.ContainerRegistry/*", "Microsoft.Storage/storageAccounts/read", false),
            ("Microsoft.Authorization/*/Write", "Microsoft.Authorization/roleAssignments/write", true),
            ("Microsoft.Authorization/*/Write", "Microsoft.Authorization/roleAssignments/delete", false),
            ("Microsoft.Authorization/*/Delete", "microsoft.authorization/locks/DELETE", true),
            (
                "microsoft.containerregistry/registries/pull/read",
                "Microsoft.ContainerRegistry/registries/pull/read",
                true,
            ),
            (
                "Microsoft.ContainerRegistry/registries/pull/read",
                "Microsoft.ContainerRegistry/registries/pull/readx",
                false,
            ),
            ("Microsoft.ContainerRegistry/registries/pull/read", "Microsoft.ContainerRegistry/registries/pull", false),
            ("Microsoft.*/registries/*/read", "Microsoft.ContainerRegistry/registries/pull/read", true),
            ("**", "", true),
            ("a*b*c", "aXbYbZc", true),
            ("a*b*c", "aXbYbZ", false),
        ];
        for (pattern, action, expected) in table {
            assert_eq!(action_matches(pattern, action), *expected, "{pattern} vs {action}");
        }
    }

    #[test]
    fn not_actions_subtract() {
        let contributor = Permission {
            actions: vec!["*".into()],
            not_actions: vec!["Microsoft.Authorization/*/Write".into(), "Microsoft.Authorization/*/Delete".into()],
            ..Permission::default()
        };
        assert!(contributor.allows_action("Microsoft.ContainerRegistry/registries/write"));
        assert!(!contributor.allows_action("Microsoft.Authorization/roleAssignments/write"));
        assert_eq!(
            contributor.excluding_not_action("Microsoft.Authorization/roleAssignments/write"),
            Some("Microsoft.Authorization/*/Write")
        );
        assert!(contributor.allows_action("Microsoft.Authorization/roleAssignments/read"));
        // actions never grant data actions
        assert!(!contributor.allows_data_action("Microsoft.ContainerRegistry/registries/repositories/content/read"));
    }

    #[test]
    fn data_actions_are_separate() {
        let p = Permission {
            data_actions: vec!["Microsoft.ContainerRegistry/registries/repositories/*".into()],
            not_data_actions: vec!["Microsoft.ContainerRegistry/registries/repositories/*/delete".into()],
            ..Permission::default()
        };
        assert!(p.allows_data_action("Microsoft.ContainerRegistry/registries/repositories/content/read"));
        assert!(!p.allows_data_action("Microsoft.ContainerRegistry/registries/repositories/content/delete"));
        assert!(!p.allows_action("Microsoft.ContainerRegistry/registries/repositories/content/read"));
    }

    #[test]
    fn pattern_validation() {
        for good in ["*", "*/read", "Microsoft.Support/*", "Microsoft.ContainerRegistry/registries/pull/read"] {
            assert!(validate_action_pattern(good).is_ok(), "{good}");
        }
        for bad in ["", "read", "Microsoft/x", "Microsoft.X/", "Microsoft.X//y", "Microsoft.X/a b"] {
            assert!(validate_action_pattern(bad).is_err(), "{bad}");
        }
    }
}
