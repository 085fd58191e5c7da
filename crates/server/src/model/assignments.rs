//! Role assignments and custom role definitions as stored records, and the directory groups as
//! the callers outside the directory see them (with their direct members).
//!
//! An assignment is stored under its ARM id (`{scope}/providers/Microsoft.Authorization/
//! roleAssignments/{guid}`), so deleting a resource's record tree deletes the assignments at
//! its scope with it; a custom role under `/providers/Microsoft.Authorization/roleDefinitions/
//! {guid}`.
//! Must never: decide anything with them (that is `wharf-authz`, fed by `crate::authz`).

use std::collections::HashMap;

use wharf_authz::{RoleAssignment, RoleDefinition};
use wharf_storage::{MetadataStore, ResourceRecord, StorageError};

use super::directory;

pub const ASSIGNMENT_TYPE: &str = "Microsoft.Authorization/roleAssignments";
pub const DEFINITION_TYPE: &str = "Microsoft.Authorization/roleDefinitions";

/// Every stored role assignment. An unreadable one is logged and left out: it grants nothing.
pub async fn stored_assignments(meta: &dyn MetadataStore) -> Result<Vec<RoleAssignment>, StorageError> {
    Ok(super::records_of_type(meta, ASSIGNMENT_TYPE).await?.iter().filter_map(assignment_of).collect())
}

/// The assignment a record holds, if it is a readable assignment record.
pub fn assignment_of(r: &ResourceRecord) -> Option<RoleAssignment> {
    if !r.resource_type.eq_ignore_ascii_case(ASSIGNMENT_TYPE) {
        return None;
    }
    match serde_json::from_value::<RoleAssignment>(r.body.clone()) {
        Ok(a) => Some(a),
        Err(e) => {
            tracing::error!(id = %r.id, error = %e, "unreadable role assignment ignored (it grants nothing)");
            None
        }
    }
}

pub async fn custom_roles(meta: &dyn MetadataStore) -> Result<Vec<RoleDefinition>, StorageError> {
    Ok(super::records_of_type(meta, DEFINITION_TYPE)
        .await?
        .into_iter()
        .filter_map(|r| serde_json::from_value(r.body).ok())
        .collect())
}

/// The record an assignment is stored as: under its ARM id.
pub fn assignment_record(a: &RoleAssignment) -> ResourceRecord {
    let now = chrono::Utc::now();
    ResourceRecord {
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

/// The record id of a custom role definition.
pub fn definition_id(guid: &str) -> String {
    format!("/providers/Microsoft.Authorization/roleDefinitions/{}", guid.to_ascii_lowercase())
}

/// The record a custom role definition is stored as.
pub fn definition_record(role: &RoleDefinition, guid: &str) -> ResourceRecord {
    let now = chrono::Utc::now();
    ResourceRecord {
        id: definition_id(guid),
        resource_type: DEFINITION_TYPE.into(),
        name: guid.to_ascii_lowercase(),
        resource_group: None,
        key: uuid::Uuid::new_v4().to_string(),
        body: serde_json::to_value(role).expect("role serializes"),
        created_at: now,
        updated_at: now,
    }
}

/// A directory group with the object ids of its direct members: the view of groups that
/// callers outside the directory need (e.g. the network-rule impact preview).
#[derive(Debug, Clone)]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub mail_nickname: String,
    pub members: Vec<String>,
}

/// Every directory group with its direct members (nested groups appear as members).
pub async fn groups(meta: &dyn MetadataStore) -> Result<Vec<Group>, StorageError> {
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    for m in directory::memberships(meta).await? {
        members.entry(m.group_id.to_ascii_lowercase()).or_default().push(m.member_id);
    }
    Ok(directory::list_groups(meta)
        .await?
        .into_iter()
        .map(|g| Group {
            members: members.remove(&g.id.to_ascii_lowercase()).unwrap_or_default(),
            id: g.id,
            display_name: g.display_name,
            mail_nickname: g.mail_nickname,
        })
        .collect())
}
