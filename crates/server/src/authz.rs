//! Authorization glue: keeps the decision engine's [`AssignmentIndex`] in memory (rebuilt from
//! the metadata store whenever role assignments, custom roles or groups change), resolves a
//! caller's principal set (own object id, then its groups), and answers the two questions the
//! server asks: may this caller perform this management action here, and which Docker actions
//! does this registry token grant.
//!
//! The engine itself (`wharf-authz`) is pure; this module is the only place that feeds it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use wharf_authz::{
    AssignmentIndex, DataPlaneRequest, DataPlaneTarget, Decision, DockerAction, EnvironmentAttributes, PrincipalId,
    RegistryMode, RoleAssignment, RoleDefinition, Scope,
};
use wharf_storage::{MetadataStore, ResourceFilter, StorageError};

pub const ASSIGNMENT_TYPE: &str = "Microsoft.Authorization/roleAssignments";
pub const DEFINITION_TYPE: &str = "Microsoft.Authorization/roleDefinitions";
pub const GROUP_TYPE: &str = "Microsoft.Graph/groups";

/// A directory group and its members' object ids.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub mail_nickname: String,
    #[serde(default)]
    pub members: Vec<String>,
}

pub fn group_record_id(object_id: &str) -> String {
    format!("/directory/groups/{object_id}")
}

#[derive(Default)]
pub struct Authz {
    index: RwLock<Arc<AssignmentIndex>>,
    /// member object id → ids of the groups it belongs to.
    memberships: RwLock<Arc<HashMap<String, Vec<String>>>>,
}

impl Authz {
    pub async fn load(meta: &dyn MetadataStore) -> Result<Authz, StorageError> {
        let a = Authz::default();
        a.reload(meta).await?;
        Ok(a)
    }

    /// Rebuilds the index from the store (after any change to assignments, roles or groups).
    pub async fn reload(&self, meta: &dyn MetadataStore) -> Result<(), StorageError> {
        let assignments = stored_assignments(meta).await?;
        let customs = custom_roles(meta).await?;
        let groups = groups(meta).await?;
        let mut memberships: HashMap<String, Vec<String>> = HashMap::new();
        for g in &groups {
            for m in &g.members {
                memberships.entry(m.to_ascii_lowercase()).or_default().push(g.id.to_ascii_lowercase());
            }
        }
        let index = AssignmentIndex::with_built_in_roles(customs, assignments);
        *self.index.write().expect("authz lock") = Arc::new(index);
        *self.memberships.write().expect("authz lock") = Arc::new(memberships);
        Ok(())
    }

    pub fn index(&self) -> Arc<AssignmentIndex> {
        self.index.read().expect("authz lock").clone()
    }

    /// The caller's own id first, then the groups it belongs to (nested groups included).
    pub fn principals(&self, object_id: &str) -> Vec<PrincipalId> {
        let memberships = self.memberships.read().expect("authz lock").clone();
        let mut out: Vec<String> = vec![object_id.to_ascii_lowercase()];
        let mut i = 0;
        while i < out.len() {
            if let Some(gs) = memberships.get(&out[i]) {
                for g in gs {
                    if !out.contains(g) {
                        out.push(g.clone());
                    }
                }
            }
            i += 1;
        }
        out.iter().filter_map(|id| PrincipalId::new(id).ok()).collect()
    }

    /// A control-plane decision.
    pub fn authorize_action(&self, object_id: &str, scope: &str, action: &str) -> Decision {
        let scope = Scope::parse(scope).unwrap_or_else(|_| Scope::root());
        self.index().authorize_action(&self.principals(object_id), &scope, action)
    }

    /// The Docker actions granted on `target` of a registry.
    pub fn data_plane(
        &self,
        object_id: &str,
        registry_id: &str,
        mode: RegistryMode,
        target: DataPlaneTarget,
        actions: &[DockerAction],
        environment: &EnvironmentAttributes,
    ) -> wharf_authz::DataPlaneDecision {
        let registry = Scope::parse(registry_id).unwrap_or_else(|_| Scope::root());
        let principals = self.principals(object_id);
        self.index().authorize_data_plane(&DataPlaneRequest { principals: &principals, registry: &registry, mode, target, actions, environment })
    }
}

pub async fn stored_assignments(meta: &dyn MetadataStore) -> Result<Vec<RoleAssignment>, StorageError> {
    let filter = ResourceFilter { resource_type: Some(ASSIGNMENT_TYPE.into()), resource_group: None };
    let mut out = Vec::new();
    for r in meta.resource_list(&filter).await? {
        match serde_json::from_value::<RoleAssignment>(r.body.clone()) {
            Ok(a) => out.push(a),
            Err(e) => tracing::error!(id = %r.id, error = %e, "unreadable role assignment ignored (it grants nothing)"),
        }
    }
    Ok(out)
}

pub async fn custom_roles(meta: &dyn MetadataStore) -> Result<Vec<RoleDefinition>, StorageError> {
    let filter = ResourceFilter { resource_type: Some(DEFINITION_TYPE.into()), resource_group: None };
    Ok(meta.resource_list(&filter).await?.into_iter().filter_map(|r| serde_json::from_value(r.body).ok()).collect())
}

pub async fn groups(meta: &dyn MetadataStore) -> Result<Vec<Group>, StorageError> {
    let filter = ResourceFilter { resource_type: Some(GROUP_TYPE.into()), resource_group: None };
    Ok(meta.resource_list(&filter).await?.into_iter().filter_map(|r| serde_json::from_value(r.body).ok()).collect())
}

/// The record id under which an assignment is stored: its ARM id.
pub fn assignment_record(a: &RoleAssignment) -> wharf_storage::ResourceRecord {
    let now = chrono::Utc::now();
    wharf_storage::ResourceRecord {
        id: a.arm_id(),
        resource_type: ASSIGNMENT_TYPE.into(),
        name: a.id.clone(),
        resource_group: None,
        key: uuid::Uuid::new_v4().to_string(),
        body: serde_json::to_value(a).expect("role assignment serializes"),
        created_at: a.created_on.unwrap_or(now),
        updated_at: now,
    }
}

pub fn registry_mode(mode: wharf_arm::registry::RoleAssignmentMode) -> RegistryMode {
    match mode {
        wharf_arm::registry::RoleAssignmentMode::LegacyRegistryPermissions => RegistryMode::LegacyRegistryPermissions,
        wharf_arm::registry::RoleAssignmentMode::AbacRepositoryPermissions => RegistryMode::AbacRepositoryPermissions,
    }
}
