//! Resource ids and the naming rules of the resources Wharf serves.

use crate::error::ArmError;

/// A parsed ARM resource id of the forms Wharf serves:
/// `/subscriptions/{sub}`, `/subscriptions/{sub}/resourceGroups/{rg}`, and
/// `/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}…]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceId {
    pub subscription: String,
    pub resource_group: Option<String>,
    /// `Microsoft.ContainerRegistry`
    pub namespace: Option<String>,
    /// Type segments and names: `[("registries","myreg"), ("tasks","t1")]`.
    pub segments: Vec<(String, String)>,
}

impl ResourceId {
    pub fn subscription(sub: &str) -> ResourceId {
        ResourceId { subscription: sub.to_string(), resource_group: None, namespace: None, segments: vec![] }
    }

    pub fn resource_group(sub: &str, rg: &str) -> ResourceId {
        ResourceId { resource_group: Some(rg.to_string()), ..ResourceId::subscription(sub) }
    }

    pub fn resource(sub: &str, rg: &str, namespace: &str, type_name: &str, name: &str) -> ResourceId {
        ResourceId {
            namespace: Some(namespace.to_string()),
            segments: vec![(type_name.to_string(), name.to_string())],
            ..ResourceId::resource_group(sub, rg)
        }
    }

    pub fn registry(sub: &str, rg: &str, name: &str) -> ResourceId {
        ResourceId::resource(sub, rg, "Microsoft.ContainerRegistry", "registries", name)
    }

    /// Parses an id, accepting ARM's case-insensitive segment keywords.
    pub fn parse(s: &str) -> Result<ResourceId, ArmError> {
        let bad = || ArmError::bad_request("InvalidResourceId", format!("'{s}' is not a valid resource id."));
        let parts: Vec<&str> = s.trim_end_matches('/').split('/').collect();
        if parts.len() < 3 || !parts[0].is_empty() || !parts[1].eq_ignore_ascii_case("subscriptions") {
            return Err(bad());
        }
        let mut id = ResourceId::subscription(parts[2]);
        let rest = &parts[3..];
        if rest.is_empty() {
            return Ok(id);
        }
        if rest.len() < 2 || !rest[0].eq_ignore_ascii_case("resourceGroups") || rest[1].is_empty() {
            return Err(bad());
        }
        id.resource_group = Some(rest[1].to_string());
        let rest = &rest[2..];
        if rest.is_empty() {
            return Ok(id);
        }
        if rest.len() < 4 || !rest[0].eq_ignore_ascii_case("providers") || !rest.len().is_multiple_of(2) {
            return Err(bad());
        }
        id.namespace = Some(rest[1].to_string());
        for pair in rest[2..].chunks(2) {
            if pair[0].is_empty() || pair[1].is_empty() {
                return Err(bad());
            }
            id.segments.push((pair[0].to_string(), pair[1].to_string()));
        }
        Ok(id)
    }

    /// `Microsoft.ContainerRegistry/registries` (or `…/registries/tasks` for nested types).
    pub fn resource_type(&self) -> Option<String> {
        let ns = self.namespace.as_ref()?;
        let types: Vec<&str> = self.segments.iter().map(|(t, _)| t.as_str()).collect();
        Some(format!("{ns}/{}", types.join("/")))
    }

    pub fn name(&self) -> Option<&str> {
        self.segments.last().map(|(_, n)| n.as_str())
    }
}

impl std::fmt::Display for ResourceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "/subscriptions/{}", self.subscription)?;
        if let Some(rg) = &self.resource_group {
            write!(f, "/resourceGroups/{rg}")?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, "/providers/{ns}")?;
            for (t, n) in &self.segments {
                write!(f, "/{t}/{n}")?;
            }
        }
        Ok(())
    }
}

/// ACR's rule: 5–50 alphanumeric characters.
pub fn validate_registry_name(name: &str) -> Result<(), ArmError> {
    let ok = (5..=50).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ArmError::bad_request(
            "InvalidResourceName",
            format!(
                "Resource name '{name}' is invalid. A registry name may contain only alphanumeric \
                 characters and must be between 5 and 50 characters long."
            ),
        ))
    }
}

/// ARM's rule for resource group names: 1–90 characters of letters, digits, underscores,
/// hyphens, periods and parentheses, not ending in a period.
pub fn validate_resource_group_name(name: &str) -> Result<(), ArmError> {
    let chars_ok = name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '(' | ')'));
    let ok = !name.is_empty() && name.chars().count() <= 90 && chars_ok && !name.ends_with('.');
    if ok {
        Ok(())
    } else {
        Err(ArmError::bad_request(
            "InvalidResourceGroupName",
            format!(
                "Resource group name '{name}' is invalid. It may contain 1-90 letters, digits, \
                 underscores, hyphens, periods and parentheses, and may not end in a period."
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_ids() {
        let s = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myreg";
        let id = ResourceId::parse(s).unwrap();
        assert_eq!(id.to_string(), s);
        assert_eq!(id.resource_type().as_deref(), Some("Microsoft.ContainerRegistry/registries"));
        assert_eq!(id.name(), Some("myreg"));
        let lower = ResourceId::parse("/subscriptions/s1/resourcegroups/rg").unwrap();
        assert_eq!(lower.resource_group.as_deref(), Some("rg"));
        for bad in [
            "",
            "/",
            "/subscriptions",
            "/subs/x",
            "/subscriptions/s/resourceGroups",
            "/subscriptions/s/resourceGroups/rg/providers/X",
        ] {
            assert!(ResourceId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn registry_and_group_names() {
        assert!(validate_registry_name("myRegistry1").is_ok());
        for bad in ["abcd", "my-registry", &"a".repeat(51), "regé1234"] {
            assert!(validate_registry_name(bad).is_err(), "{bad}");
        }
        assert!(validate_resource_group_name("rg-1_(x).y").is_ok());
        for bad in ["", "rg.", "a/b", &"a".repeat(91)] {
            assert!(validate_resource_group_name(bad).is_err(), "{bad}");
        }
    }
}
