//! Custom role definitions as `az role definition create --role-definition`
//! accepts them, validated with Azure's limits.
//!
//! Owns: reading the az JSON (`Name`, `Description`, `Actions`, `NotActions`,
//! `DataActions`, `NotDataActions`, `AssignableScopes`; az lower-cases the
//! first letter of every key, so `name` and `Name` are the same key, `NAME`
//! is not) and turning it into a [`RoleDefinition`].
//!
//! Must never: invent an id (the caller passes the new GUID: no randomness
//! here) or silently drop a key. An unknown key is an error: a typo such as
//! `NotDataAction` would otherwise widen the role without anyone noticing.

use serde_json::{Map, Value};

use super::{ROLE_DEFINITION_TYPE, RoleDefinition, RoleDefinitionProperties, RoleType};
use crate::actions::{Permission, validate_action_pattern};
use crate::error::RoleDefinitionError;
use crate::scope::{Scope, ScopeKind};

/// Azure's limit on a role name, in characters.
pub const MAX_ROLE_NAME_CHARS: usize = 512;
/// Azure's limit on a role description, in characters.
pub const MAX_ROLE_DESCRIPTION_CHARS: usize = 2048;

/// The validated content of an az `--role-definition` document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomRoleRequest {
    pub name: String,
    pub description: String,
    pub permission: Permission,
    pub assignable_scopes: Vec<Scope>,
}

impl CustomRoleRequest {
    /// Builds the stored definition. `guid` is the new role's id, chosen by
    /// the caller. The ARM id is placed under the first assignable scope's
    /// subscription, as ARM does.
    pub fn into_definition(self, guid: &str) -> Result<RoleDefinition, RoleDefinitionError> {
        let guid = super::role_guid_from_id(guid).ok_or_else(|| RoleDefinitionError::InvalidId(guid.to_string()))?;
        let prefix = self
            .assignable_scopes
            .iter()
            .find_map(|s| s.subscription_id())
            .map(|sub| format!("/subscriptions/{sub}"))
            .unwrap_or_default();
        Ok(RoleDefinition {
            id: format!("{prefix}/providers/{ROLE_DEFINITION_TYPE}/{guid}"),
            name: guid,
            resource_type: ROLE_DEFINITION_TYPE.to_string(),
            properties: RoleDefinitionProperties {
                role_name: self.name,
                description: self.description,
                role_type: RoleType::CustomRole,
                assignable_scopes: self.assignable_scopes.iter().map(|s| s.as_str().to_string()).collect(),
                permissions: vec![self.permission],
            },
        })
    }
}

/// Parses and validates an az `--role-definition` JSON document.
pub fn parse_custom_role(json: &str) -> Result<CustomRoleRequest, RoleDefinitionError> {
    let value: Value = serde_json::from_str(json).map_err(|e| RoleDefinitionError::InvalidJson(e.to_string()))?;
    let Value::Object(object) = value else {
        return Err(RoleDefinitionError::InvalidJson("the role definition must be a JSON object".into()));
    };
    let fields = normalise_keys(object)?;
    let text = |key: &str| -> Result<Option<String>, RoleDefinitionError> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(RoleDefinitionError::WrongType { key: key.to_string(), expected: "a string" }),
        }
    };
    let list = |key: &str| -> Result<Vec<String>, RoleDefinitionError> {
        match fields.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(RoleDefinitionError::WrongType { key: key.to_string(), expected: "an array of strings" }),
                })
                .collect(),
            Some(_) => Err(RoleDefinitionError::WrongType { key: key.to_string(), expected: "an array of strings" }),
        }
    };

    let name = text("name")?.or(text("roleName")?).unwrap_or_default();
    if name.trim().is_empty() {
        return Err(RoleDefinitionError::MissingName);
    }
    let name_len = name.chars().count();
    if name_len > MAX_ROLE_NAME_CHARS {
        return Err(RoleDefinitionError::NameTooLong { length: name_len, limit: MAX_ROLE_NAME_CHARS });
    }
    let description = text("description")?.unwrap_or_default();
    let description_len = description.chars().count();
    if description_len > MAX_ROLE_DESCRIPTION_CHARS {
        return Err(RoleDefinitionError::DescriptionTooLong {
            length: description_len,
            limit: MAX_ROLE_DESCRIPTION_CHARS,
        });
    }
    let permission = Permission {
        actions: list("actions")?,
        not_actions: list("notActions")?,
        data_actions: list("dataActions")?,
        not_data_actions: list("notDataActions")?,
    };
    for action in permission
        .actions
        .iter()
        .chain(&permission.not_actions)
        .chain(&permission.data_actions)
        .chain(&permission.not_data_actions)
    {
        validate_action_pattern(action)
            .map_err(|reason| RoleDefinitionError::InvalidAction { action: action.clone(), reason })?;
    }
    if permission.actions.is_empty() && permission.data_actions.is_empty() {
        return Err(RoleDefinitionError::NoPermissions);
    }
    if permission.data_actions.iter().any(|a| a == "*") {
        return Err(RoleDefinitionError::InvalidAction {
            action: "*".into(),
            reason: "a data action must name a resource provider; '*' alone is not allowed in dataActions".into(),
        });
    }
    let scope_texts = list("assignableScopes")?;
    if scope_texts.is_empty() {
        return Err(RoleDefinitionError::NoAssignableScopes);
    }
    let mut assignable_scopes = Vec::with_capacity(scope_texts.len());
    for text in scope_texts {
        let scope = Scope::parse(&text).map_err(|e| RoleDefinitionError::InvalidScope(e.to_string()))?;
        if scope.kind() == ScopeKind::Root {
            return Err(RoleDefinitionError::RootScopeNotAllowed);
        }
        assignable_scopes.push(scope);
    }
    Ok(CustomRoleRequest { name, description, permission, assignable_scopes })
}

/// Applies az's key rule (lower-case the first letter) and rejects unknown or
/// duplicated keys.
fn normalise_keys(object: Map<String, Value>) -> Result<Map<String, Value>, RoleDefinitionError> {
    const KNOWN: &[&str] = &[
        "name",
        "roleName",
        "description",
        "actions",
        "notActions",
        "dataActions",
        "notDataActions",
        "assignableScopes",
        // Accepted and ignored: az sends or echoes these.
        "id",
        "isCustom",
        "roleType",
        "type",
    ];
    let mut out = Map::new();
    for (key, value) in object {
        let mut chars = key.chars();
        let normalised = match chars.next() {
            Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
            None => String::new(),
        };
        if !KNOWN.contains(&normalised.as_str()) {
            return Err(RoleDefinitionError::UnknownProperty(key));
        }
        if out.insert(normalised, value).is_some() {
            return Err(RoleDefinitionError::DuplicateProperty(key));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "/subscriptions/11111111-1111-1111-1111-111111111111";

    fn doc(body: &str) -> String {
        body.replace("$SUB", SUB)
    }

    #[test]
    fn az_shape_with_capitalised_keys() {
        let json = doc(r#"{
            "Name": "Registry Puller",
            "IsCustom": true,
            "Description": "Pull only",
            "Actions": ["Microsoft.ContainerRegistry/registries/pull/read"],
            "NotActions": [],
            "DataActions": ["Microsoft.ContainerRegistry/registries/repositories/content/read"],
            "NotDataActions": [],
            "AssignableScopes": ["$SUB"]
        }"#);
        let req = parse_custom_role(&json).unwrap();
        assert_eq!(req.name, "Registry Puller");
        let def = req.into_definition("22222222-2222-2222-2222-222222222222").unwrap();
        assert_eq!(def.properties.role_type, RoleType::CustomRole);
        assert_eq!(
            def.id,
            format!("{SUB}/providers/Microsoft.Authorization/roleDefinitions/22222222-2222-2222-2222-222222222222")
        );
        assert!(def.allows_action("Microsoft.ContainerRegistry/registries/pull/read"));
        assert_eq!(def.profile().conditions, super::super::ConditionSupport::Custom);
    }

    #[test]
    fn lower_case_keys_are_the_same() {
        let json = doc(
            r#"{"name":"x","actions":["Microsoft.ContainerRegistry/registries/read"],"assignableScopes":["$SUB"]}"#,
        );
        assert!(parse_custom_role(&json).is_ok());
    }

    #[test]
    fn rejections() {
        let long_name = "n".repeat(513);
        let long_desc = "d".repeat(2049);
        type Case = (String, fn(&RoleDefinitionError) -> bool);
        let cases: Vec<Case> = vec![
            ("[]".into(), |e| matches!(e, RoleDefinitionError::InvalidJson(_))),
            (
                doc(r#"{"Name":"x","Actions":["Microsoft.A/b"],"AssignableScopes":["$SUB"],"NotDataAction":[]}"#),
                |e| matches!(e, RoleDefinitionError::UnknownProperty(k) if k == "NotDataAction"),
            ),
            (doc(r#"{"Name":"x","name":"y","Actions":["Microsoft.A/b"],"AssignableScopes":["$SUB"]}"#), |e| {
                matches!(e, RoleDefinitionError::DuplicateProperty(_))
            }),
            (doc(r#"{"Actions":["Microsoft.A/b"],"AssignableScopes":["$SUB"]}"#), |e| {
                matches!(e, RoleDefinitionError::MissingName)
            }),
            (
                doc(&format!(r#"{{"Name":"{long_name}","Actions":["Microsoft.A/b"],"AssignableScopes":["$SUB"]}}"#)),
                |e| matches!(e, RoleDefinitionError::NameTooLong { length: 513, .. }),
            ),
            (
                doc(&format!(
                    r#"{{"Name":"x","Description":"{long_desc}","Actions":["Microsoft.A/b"],"AssignableScopes":["$SUB"]}}"#
                )),
                |e| matches!(e, RoleDefinitionError::DescriptionTooLong { length: 2049, .. }),
            ),
            (doc(r#"{"Name":"x","Actions":[],"AssignableScopes":["$SUB"]}"#), |e| {
                matches!(e, RoleDefinitionError::NoPermissions)
            }),
            (doc(r#"{"Name":"x","Actions":["pull"],"AssignableScopes":["$SUB"]}"#), |e| {
                matches!(e, RoleDefinitionError::InvalidAction { .. })
            }),
            (doc(r#"{"Name":"x","DataActions":["*"],"AssignableScopes":["$SUB"]}"#), |e| {
                matches!(e, RoleDefinitionError::InvalidAction { .. })
            }),
            (doc(r#"{"Name":"x","Actions":["Microsoft.A/b"],"AssignableScopes":[]}"#), |e| {
                matches!(e, RoleDefinitionError::NoAssignableScopes)
            }),
            (doc(r#"{"Name":"x","Actions":["Microsoft.A/b"],"AssignableScopes":["/"]}"#), |e| {
                matches!(e, RoleDefinitionError::RootScopeNotAllowed)
            }),
            (doc(r#"{"Name":"x","Actions":["Microsoft.A/b"],"AssignableScopes":["nope"]}"#), |e| {
                matches!(e, RoleDefinitionError::InvalidScope(_))
            }),
            (doc(r#"{"Name":5,"Actions":["Microsoft.A/b"],"AssignableScopes":["$SUB"]}"#), |e| {
                matches!(e, RoleDefinitionError::WrongType { .. })
            }),
        ];
        for (json, check) in cases {
            let err = parse_custom_role(&json).unwrap_err();
            assert!(check(&err), "{json}: got {err:?}");
        }
    }

    #[test]
    fn limits_are_inclusive() {
        let name = "n".repeat(512);
        let desc = "d".repeat(2048);
        let json = doc(&format!(
            r#"{{"Name":"{name}","Description":"{desc}","Actions":["Microsoft.A/b"],"AssignableScopes":["$SUB"]}}"#
        ));
        assert!(parse_custom_role(&json).is_ok());
    }
}
