//! Managed identities in ARM's shapes: user-assigned identities
//! (`Microsoft.ManagedIdentity/userAssignedIdentities`), the hosting resources that run workloads
//! with identities (container groups, ML workspaces, App Service sites), and the `identity`
//! object of a resource — both as stored and as a PUT/PATCH asks to change it.
//!
//! Owns: the typed values and the parsing of an `identity` request with ARM's error codes.
//! Must never: mint object or client ids, or look identities up; the server does both.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ArmError;

pub const USER_ASSIGNED_IDENTITY: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";
pub const CONTAINER_GROUPS: &str = "Microsoft.ContainerInstance/containerGroups";
pub const ML_WORKSPACES: &str = "Microsoft.MachineLearningServices/workspaces";
pub const WEB_SITES: &str = "Microsoft.Web/sites";

/// The hosting resource types whose workloads can carry managed identities.
pub const HOST_TYPES: [&str; 3] = [CONTAINER_GROUPS, ML_WORKSPACES, WEB_SITES];

/// The canonical spelling of a hosting resource type, if `resource_type` is one (any case).
pub fn host_type(resource_type: &str) -> Option<&'static str> {
    HOST_TYPES.into_iter().find(|t| t.eq_ignore_ascii_case(resource_type))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserAssignedIdentity {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub location: String,
    #[serde(default)]
    pub tags: Value,
    pub properties: UserAssignedIdentityProperties,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedIdentityProperties {
    pub tenant_id: String,
    /// The identity's object id in the directory.
    pub principal_id: String,
    pub client_id: String,
    #[serde(default = "no_isolation")]
    pub isolation_scope: String,
}

fn no_isolation() -> String {
    "None".to_string()
}

/// One attached user-assigned identity, as a resource's `identity.userAssignedIdentities` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserAssignedRef {
    pub principal_id: String,
    pub client_id: String,
}

/// A resource's `identity` object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIdentity {
    /// `SystemAssigned`, `UserAssigned`, `SystemAssigned, UserAssigned` or `None`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The system-assigned identity's object id (its client id is not shown, as in Azure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    /// Attached user-assigned identities by resource id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub user_assigned_identities: BTreeMap<String, UserAssignedRef>,
}

impl ResourceIdentity {
    /// The `identity` object for a system-assigned identity (its object id) and attached ones.
    pub fn new(tenant: &str, system_principal_id: Option<&str>, user: BTreeMap<String, UserAssignedRef>) -> Self {
        let kind = match (system_principal_id.is_some(), !user.is_empty()) {
            (true, true) => "SystemAssigned, UserAssigned",
            (true, false) => "SystemAssigned",
            (false, true) => "UserAssigned",
            (false, false) => "None",
        };
        ResourceIdentity {
            kind: kind.to_string(),
            principal_id: system_principal_id.map(str::to_string),
            tenant_id: system_principal_id.map(|_| tenant.to_string()),
            user_assigned_identities: user,
        }
    }

    /// The resource ids of the attached user-assigned identities.
    pub fn user_assigned_ids(&self) -> impl Iterator<Item = &str> {
        self.user_assigned_identities.keys().map(String::as_str)
    }
}

/// A hosting resource as clients see it (its `properties` are the client's, kept as given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostingResource {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub location: String,
    #[serde(default)]
    pub tags: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<ResourceIdentity>,
    #[serde(default)]
    pub properties: Value,
}

/// What a PUT or PATCH asks of a resource's identities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityRequest {
    pub system: bool,
    pub user: bool,
    /// `userAssignedIdentities` entries: resource id and whether it is attached (`{}`) or
    /// detached (`null`).
    pub entries: Vec<(String, bool)>,
}

impl IdentityRequest {
    /// Parses the `identity` value of a request body; `None` when absent or null.
    pub fn parse(v: &Value) -> Result<Option<IdentityRequest>, ArmError> {
        let bad = |m: &str| ArmError::bad_request("InvalidIdentityType", m.to_string());
        match v {
            Value::Null => return Ok(None),
            Value::Object(_) => {}
            _ => return Err(ArmError::invalid_request("'identity' must be an object.")),
        }
        let t = v["type"].as_str().ok_or_else(|| {
            bad("'identity.type' is required: SystemAssigned, UserAssigned, 'SystemAssigned, UserAssigned' or None.")
        })?;
        let (mut system, mut user, mut none) = (false, false, false);
        for part in t.split(',').map(str::trim) {
            match part.to_ascii_lowercase().as_str() {
                "systemassigned" => system = true,
                "userassigned" => user = true,
                "none" => none = true,
                _ => {
                    return Err(bad(&format!(
                        "The identity type '{t}' is invalid. Use SystemAssigned, UserAssigned, 'SystemAssigned, UserAssigned' or None."
                    )));
                }
            }
        }
        if none && (system || user) {
            return Err(bad(&format!("The identity type '{t}' is invalid: None cannot be combined with other types.")));
        }
        let mut entries = vec![];
        match &v["userAssignedIdentities"] {
            Value::Null => {}
            Value::Object(m) => {
                for (id, val) in m {
                    match val {
                        Value::Null => entries.push((id.clone(), false)),
                        Value::Object(_) => entries.push((id.clone(), true)),
                        _ => {
                            return Err(ArmError::invalid_request(
                                "'identity.userAssignedIdentities' values must be {} (attach) or null (detach).",
                            ));
                        }
                    }
                }
            }
            _ => {
                return Err(ArmError::invalid_request(
                    "'identity.userAssignedIdentities' must be an object keyed by identity resource ids.",
                ));
            }
        }
        if !user && entries.iter().any(|(_, add)| *add) {
            return Err(bad(
                "'identity.userAssignedIdentities' is only allowed when the identity type includes UserAssigned.",
            ));
        }
        Ok(Some(IdentityRequest { system, user, entries }))
    }

    /// No identity at all (a PUT without `identity` replaces whatever there was with this).
    pub fn none() -> IdentityRequest {
        IdentityRequest { system: false, user: false, entries: vec![] }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identity_types_parse() {
        let r = IdentityRequest::parse(
            &json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"/x": {}, "/y": null}}),
        )
        .unwrap()
        .unwrap();
        assert!(r.system && r.user);
        assert_eq!(r.entries, vec![("/x".to_string(), true), ("/y".to_string(), false)]);
        let r = IdentityRequest::parse(&json!({"type": "systemassigned"})).unwrap().unwrap();
        assert!(r.system && !r.user);
        assert!(IdentityRequest::parse(&json!({"type": "None, SystemAssigned"})).is_err());
        assert!(IdentityRequest::parse(&json!({"type": "Bogus"})).is_err());
        assert!(
            IdentityRequest::parse(&json!({"type": "SystemAssigned", "userAssignedIdentities": {"/x": {}}})).is_err()
        );
        assert_eq!(IdentityRequest::parse(&Value::Null).unwrap(), None);
    }

    #[test]
    fn identity_shapes() {
        let none = ResourceIdentity::new("t", None, BTreeMap::new());
        assert_eq!(serde_json::to_value(&none).unwrap(), json!({"type": "None"}));
        let system = ResourceIdentity::new("t", Some("p"), BTreeMap::new());
        assert_eq!(
            serde_json::to_value(&system).unwrap(),
            json!({"type": "SystemAssigned", "principalId": "p", "tenantId": "t"})
        );
        let user =
            BTreeMap::from([("/u".to_string(), UserAssignedRef { principal_id: "up".into(), client_id: "uc".into() })]);
        let v = serde_json::to_value(ResourceIdentity::new("t", Some("p"), user)).unwrap();
        assert_eq!(v["type"], "SystemAssigned, UserAssigned");
        assert_eq!(v["userAssignedIdentities"]["/u"]["clientId"], "uc");
        assert!(v.get("clientId").is_none(), "the system identity's client id is not shown, as in Azure");
    }
}
