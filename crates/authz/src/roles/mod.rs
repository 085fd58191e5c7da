//! Role definitions: the ARM JSON shape, the built-in catalogue, and what each
//! role means to a registry (which role-assignment modes honour it on the data
//! plane, whether an assignment of it may carry a condition).
//!
//! Must never: decide access. It answers "does this role's permission list
//! cover that action?"; scopes, conditions and modes are combined in
//! `engine`.
//!
//! Custom roles (documented decision, see also `docs/authz-decisions.md`):
//! a custom role is honoured in both modes, but what counts differs:
//! * legacy mode counts its `actions` against the legacy registry actions
//!   (`registries/pull/read`, `registries/push/write`,
//!   `registries/artifacts/delete`) exactly like AcrPull/AcrPush/AcrDelete, plus
//!   the quarantine / trusted-collection data actions;
//! * ABAC mode counts only its `dataActions` under
//!   `Microsoft.ContainerRegistry/registries/repositories/*`,
//!   `registries/catalog/read` and the quarantine data actions; its `actions`
//!   never grant data-plane access there (the same rule that strips Owner).
//! * A custom role with any `dataActions` accepts a condition; one with
//!   `Microsoft.Authorization/roleAssignments/write` accepts a delegation
//!   condition; any other custom role rejects conditions.

mod builtin;
mod custom;

use serde::{Deserialize, Serialize};

use crate::actions::Permission;
use crate::data_plane::RoleAssignmentMode;

pub use builtin::{BUILT_IN_ROLES, BuiltInRole};
pub use custom::{CustomRoleRequest, MAX_ROLE_DESCRIPTION_CHARS, MAX_ROLE_NAME_CHARS, parse_custom_role};

/// ARM resource type of role definitions.
pub const ROLE_DEFINITION_TYPE: &str = "Microsoft.Authorization/roleDefinitions";

/// Whether a role is Azure's or the tenant's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RoleType {
    BuiltInRole,
    CustomRole,
}

/// A role definition in ARM's JSON shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleDefinition {
    /// `/providers/Microsoft.Authorization/roleDefinitions/{guid}` (built-in)
    /// or `/subscriptions/{s}/providers/Microsoft.Authorization/roleDefinitions/{guid}`.
    pub id: String,
    /// The role's GUID.
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub properties: RoleDefinitionProperties,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleDefinitionProperties {
    pub role_name: String,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "type")]
    pub role_type: RoleType,
    pub assignable_scopes: Vec<String>,
    pub permissions: Vec<Permission>,
}

/// Which registry role-assignment modes honour a role on the data plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModeSupport {
    pub legacy: bool,
    pub abac: bool,
}

impl ModeSupport {
    pub fn honoured_in(self, mode: RoleAssignmentMode) -> bool {
        match mode {
            RoleAssignmentMode::LegacyRegistryPermissions => self.legacy,
            RoleAssignmentMode::AbacRepositoryPermissions => self.abac,
        }
    }
}

/// Whether an assignment of the role may carry a condition, and of what kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionSupport {
    /// Repository Reader/Writer/Contributor: ABAC repository conditions.
    Repository,
    /// A custom role with data actions: conditions evaluated as written.
    Custom,
    /// Owner, User Access Administrator, RBAC Administrator (and custom roles
    /// that can write role assignments): conditions that constrain role
    /// assignment writes, evaluated on the control plane.
    Delegation,
    /// Assigning the role with a condition is an error (Catalog Lister, the
    /// legacy Acr* roles, every other built-in role).
    NotSupported,
}

impl ConditionSupport {
    pub fn accepts_conditions(self) -> bool {
        !matches!(self, ConditionSupport::NotSupported)
    }
}

/// What a role means to a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleProfile {
    pub data_plane: ModeSupport,
    pub conditions: ConditionSupport,
}

impl RoleDefinition {
    /// The role's GUID, lower-cased.
    pub fn guid(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    pub fn role_name(&self) -> &str {
        &self.properties.role_name
    }

    pub fn role_type(&self) -> RoleType {
        self.properties.role_type
    }

    pub fn permissions(&self) -> &[Permission] {
        &self.properties.permissions
    }

    /// Control-plane check across all permission blocks.
    pub fn allows_action(&self, action: &str) -> bool {
        self.permissions().iter().any(|p| p.allows_action(action))
    }

    /// Data-plane check across all permission blocks.
    pub fn allows_data_action(&self, data_action: &str) -> bool {
        self.permissions().iter().any(|p| p.allows_data_action(data_action))
    }

    /// The `notActions` entry that removed an action some `actions` entry granted.
    pub fn not_action_excluding(&self, action: &str) -> Option<String> {
        self.permissions().iter().find_map(|p| {
            let granted = p.actions.iter().any(|a| crate::actions::action_matches(a, action));
            granted.then(|| p.excluding_not_action(action).map(str::to_string)).flatten()
        })
    }

    /// The `notDataActions` entry that removed a data action some
    /// `dataActions` entry granted.
    pub fn not_data_action_excluding(&self, data_action: &str) -> Option<String> {
        self.permissions().iter().find_map(|p| {
            let granted = p.data_actions.iter().any(|a| crate::actions::action_matches(a, data_action));
            granted.then(|| p.excluding_not_data_action(data_action).map(str::to_string)).flatten()
        })
    }

    /// True when the role grants any data action at all.
    pub fn has_data_actions(&self) -> bool {
        self.permissions().iter().any(|p| !p.data_actions.is_empty())
    }

    /// What this role means to a registry. Built-in roles come from the table;
    /// custom roles follow the rules in this module's header.
    pub fn profile(&self) -> RoleProfile {
        if self.role_type() == RoleType::BuiltInRole
            && let Some(b) = built_in_entry(&self.name)
        {
            return RoleProfile { data_plane: b.data_plane, conditions: b.conditions };
        }
        let conditions = if self.has_data_actions() {
            ConditionSupport::Custom
        } else if self.allows_action("Microsoft.Authorization/roleAssignments/write") {
            ConditionSupport::Delegation
        } else {
            ConditionSupport::NotSupported
        };
        RoleProfile { data_plane: ModeSupport { legacy: true, abac: true }, conditions }
    }
}

impl BuiltInRole {
    /// The ARM JSON form of this built-in role.
    pub fn definition(&self) -> RoleDefinition {
        let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        RoleDefinition {
            id: format!("/providers/{ROLE_DEFINITION_TYPE}/{}", self.guid),
            name: self.guid.to_string(),
            resource_type: ROLE_DEFINITION_TYPE.to_string(),
            properties: RoleDefinitionProperties {
                role_name: self.name.to_string(),
                description: self.description.to_string(),
                role_type: RoleType::BuiltInRole,
                assignable_scopes: vec!["/".to_string()],
                permissions: vec![Permission {
                    actions: owned(self.actions),
                    not_actions: owned(self.not_actions),
                    data_actions: owned(self.data_actions),
                    not_data_actions: owned(self.not_data_actions),
                }],
            },
        }
    }
}

fn built_in_entry(guid: &str) -> Option<&'static BuiltInRole> {
    BUILT_IN_ROLES.iter().find(|b| b.guid.eq_ignore_ascii_case(guid))
}

/// Every built-in role, in ARM JSON form.
pub fn built_in_roles() -> Vec<RoleDefinition> {
    BUILT_IN_ROLES.iter().map(BuiltInRole::definition).collect()
}

/// A built-in role by its exact name (case-insensitive, as `az role` matches).
pub fn built_in_role_by_name(name: &str) -> Option<RoleDefinition> {
    BUILT_IN_ROLES.iter().find(|b| b.name.eq_ignore_ascii_case(name)).map(BuiltInRole::definition)
}

/// A built-in role by GUID or by any role definition id ending in the GUID.
pub fn built_in_role_by_id(id_or_guid: &str) -> Option<RoleDefinition> {
    let guid = role_guid_from_id(id_or_guid)?;
    built_in_entry(&guid).map(BuiltInRole::definition)
}

/// Extracts the lower-cased GUID from `…/roleDefinitions/{guid}` or a bare GUID.
pub fn role_guid_from_id(id: &str) -> Option<String> {
    let candidate = id.rsplit('/').next()?;
    let ok = candidate.len() == 36 && uuid::Uuid::parse_str(candidate).is_ok();
    ok.then(|| candidate.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO: &str = "Microsoft.ContainerRegistry/registries/repositories";

    #[test]
    fn catalogue_is_complete_and_unique() {
        let roles = built_in_roles();
        assert_eq!(roles.len(), 24);
        let mut guids: Vec<_> = roles.iter().map(|r| r.guid()).collect();
        guids.sort();
        guids.dedup();
        assert_eq!(guids.len(), roles.len());
        for r in &roles {
            assert_eq!(r.properties.assignable_scopes, vec!["/"]);
            assert_eq!(r.properties.role_type, RoleType::BuiltInRole);
            assert!(role_guid_from_id(&r.id).is_some());
            assert!(!r.properties.description.is_empty());
        }
    }

    #[test]
    fn exact_ids() {
        let uaa = built_in_role_by_name("User Access Administrator").unwrap();
        assert_eq!(uaa.name, "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9");
        assert_eq!(uaa.permissions()[0].actions, vec!["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"]);
        assert_eq!(built_in_role_by_name("acrpull").unwrap().name, "7f951dda-4ed3-4680-a7ca-43fe172d538d");
        let lister = built_in_role_by_id(
            "/subscriptions/x/providers/Microsoft.Authorization/roleDefinitions/BFDB9389-C9A5-478A-BB2F-BA9CA092C3C7",
        )
        .unwrap();
        assert_eq!(lister.role_name(), "Container Registry Repository Catalog Lister");
    }

    #[test]
    fn json_shape() {
        let role = built_in_role_by_name("Container Registry Repository Reader").unwrap();
        let v = serde_json::to_value(&role).unwrap();
        assert_eq!(v["type"], "Microsoft.Authorization/roleDefinitions");
        assert_eq!(v["name"], "b93aa761-3e63-49ed-ac28-beffa264f7ac");
        assert_eq!(v["properties"]["roleName"], "Container Registry Repository Reader");
        assert_eq!(v["properties"]["type"], "BuiltInRole");
        assert_eq!(v["properties"]["assignableScopes"][0], "/");
        assert_eq!(v["properties"]["permissions"][0]["dataActions"][1], format!("{REPO}/content/read"));
        assert!(v["properties"]["permissions"][0]["notDataActions"].as_array().unwrap().is_empty());
        let back: RoleDefinition = serde_json::from_value(v).unwrap();
        assert_eq!(back, role);
    }

    #[test]
    fn profiles() {
        let p = |n: &str| built_in_role_by_name(n).unwrap().profile();
        use RoleAssignmentMode::*;
        for legacy_only in ["Owner", "Contributor", "Reader", "AcrPull", "AcrPush", "AcrDelete", "AcrImageSigner"] {
            assert!(p(legacy_only).data_plane.honoured_in(LegacyRegistryPermissions), "{legacy_only}");
            assert!(!p(legacy_only).data_plane.honoured_in(AbacRepositoryPermissions), "{legacy_only}");
        }
        for abac_only in [
            "Container Registry Repository Reader",
            "Container Registry Repository Writer",
            "Container Registry Repository Contributor",
            "Container Registry Repository Catalog Lister",
        ] {
            assert!(!p(abac_only).data_plane.honoured_in(LegacyRegistryPermissions), "{abac_only}");
            assert!(p(abac_only).data_plane.honoured_in(AbacRepositoryPermissions), "{abac_only}");
        }
        for both in ["AcrQuarantineReader", "AcrQuarantineWriter", "Container Registry Data Importer and Data Reader"] {
            assert!(p(both).data_plane.legacy && p(both).data_plane.abac, "{both}");
        }
        assert_eq!(p("Container Registry Repository Writer").conditions, ConditionSupport::Repository);
        assert_eq!(p("Container Registry Repository Catalog Lister").conditions, ConditionSupport::NotSupported);
        assert_eq!(p("AcrPull").conditions, ConditionSupport::NotSupported);
        assert_eq!(p("Owner").conditions, ConditionSupport::Delegation);
    }

    #[test]
    fn not_action_reporting() {
        let contributor = built_in_role_by_name("Contributor").unwrap();
        assert_eq!(
            contributor.not_action_excluding("Microsoft.Authorization/roleAssignments/write").as_deref(),
            Some("Microsoft.Authorization/*/Write")
        );
        assert_eq!(contributor.not_action_excluding("Microsoft.ContainerRegistry/registries/pull/read"), None);
        let reader = built_in_role_by_name("Reader").unwrap();
        assert!(reader.allows_action("Microsoft.ContainerRegistry/registries/pull/read"));
        assert!(!reader.allows_action("Microsoft.ContainerRegistry/registries/push/write"));
    }
}
