//! Authorization glue: keeps the decision engine's [`AssignmentIndex`] in memory (rebuilt from
//! the metadata store whenever role assignments, custom roles or groups change), resolves a
//! caller's principal set (own object id, then its groups), and answers the two questions the
//! server asks: may this caller perform this management action here, and which Docker actions
//! does this registry token grant.
//!
//! The engine itself (`wharf-authz`) is pure; this module is the only place that feeds it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use wharf_authz::{
    AssignmentIndex, DataPlaneRequest, DataPlaneTarget, Decision, DockerAction, EnvironmentAttributes, PrincipalId,
    RegistryMode, RoleAssignment, RoleDefinition, Scope,
};
use wharf_storage::{MetadataStore, ResourceFilter, StorageError};

use crate::auth::directory::{self, Membership};

pub const ASSIGNMENT_TYPE: &str = "Microsoft.Authorization/roleAssignments";
pub const DEFINITION_TYPE: &str = "Microsoft.Authorization/roleDefinitions";
pub use crate::auth::directory::GROUP_TYPE;

/// The record id of a directory group.
pub fn group_record_id(object_id: &str) -> String {
    crate::auth::directory::group_id(object_id)
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

/// Direct group memberships, as the engine's principal expansion needs them: member object id
/// (lowercase) → the groups it is a direct member of.
#[derive(Debug, Default, Clone)]
pub struct Memberships(HashMap<String, Vec<String>>);

impl Memberships {
    /// From membership records, keeping only those whose group exists: a membership left behind
    /// by a group deleted at the same moment must not grant that group's assignments.
    pub fn new(memberships: &[Membership], existing_groups: &HashSet<String>) -> Memberships {
        let mut map: HashMap<String, Vec<String>> = HashMap::new();
        for m in memberships {
            let group = m.group_id.to_ascii_lowercase();
            if existing_groups.contains(&group) {
                map.entry(m.member_id.to_ascii_lowercase()).or_default().push(group);
            }
        }
        Memberships(map)
    }

    /// Every group `object_id` belongs to, directly or through nested groups, in breadth-first
    /// order, each once and never `object_id` itself. Membership cycles (A in B, B in A) are
    /// allowed in the directory; the visited set makes them terminate.
    pub fn transitive_groups(&self, object_id: &str) -> Vec<String> {
        let start = object_id.to_ascii_lowercase();
        let mut seen: HashSet<&str> = HashSet::from([start.as_str()]);
        let mut out: Vec<String> = Vec::new();
        let mut queue: std::collections::VecDeque<&str> = std::collections::VecDeque::from([start.as_str()]);
        while let Some(id) = queue.pop_front() {
            for g in self.0.get(id).into_iter().flatten() {
                if seen.insert(g.as_str()) {
                    out.push(g.clone());
                    queue.push_back(g.as_str());
                }
            }
        }
        out
    }
}

#[derive(Default)]
pub struct Authz {
    index: RwLock<Arc<AssignmentIndex>>,
    memberships: RwLock<Arc<Memberships>>,
    /// Serializes reloads: each reads the store after taking it, so the last one to finish has
    /// seen every change made before it started, and a slower earlier reload cannot overwrite
    /// a newer index with an older one.
    reloading: tokio::sync::Mutex<()>,
}

impl Authz {
    pub async fn load(meta: &dyn MetadataStore) -> Result<Authz, StorageError> {
        let a = Authz::default();
        a.reload(meta).await?;
        Ok(a)
    }

    /// Rebuilds the index from the store (after any change to assignments, roles or groups).
    pub async fn reload(&self, meta: &dyn MetadataStore) -> Result<(), StorageError> {
        let _one_at_a_time = self.reloading.lock().await;
        let assignments = stored_assignments(meta).await?;
        let customs = custom_roles(meta).await?;
        let groups: HashSet<String> =
            directory::list_groups(meta).await?.into_iter().map(|g| g.id.to_ascii_lowercase()).collect();
        let memberships = Memberships::new(&directory::memberships(meta).await?, &groups);
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
        let groups = self.transitive_groups(object_id);
        std::iter::once(object_id.to_ascii_lowercase())
            .chain(groups)
            .filter_map(|id| PrincipalId::new(&id).ok())
            .collect()
    }

    /// The groups `object_id` belongs to, directly or through nested groups, as of the last
    /// reload: the expansion authorization uses, which Graph's `checkMemberGroups` answers with.
    pub fn transitive_groups(&self, object_id: &str) -> Vec<String> {
        self.memberships.read().expect("authz lock").transitive_groups(object_id)
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
        self.index().authorize_data_plane(&DataPlaneRequest {
            principals: &principals,
            registry: &registry,
            mode,
            target,
            actions,
            environment,
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::directory::MemberKind;

    fn member(group: &str, member: &str) -> Membership {
        Membership { group_id: group.into(), member_id: member.into(), member_kind: MemberKind::User }
    }

    fn existing(ids: &[&str]) -> HashSet<String> {
        ids.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nested_groups_expand_breadth_first_and_only_once() {
        let m = Memberships::new(
            &[member("a", "sp"), member("b", "a"), member("c", "b"), member("c", "sp")],
            &existing(&["a", "b", "c"]),
        );
        assert_eq!(m.transitive_groups("SP"), vec!["a", "c", "b"]);
        assert_eq!(m.transitive_groups("b"), vec!["c"]);
        assert!(m.transitive_groups("stranger").is_empty());
    }

    #[test]
    fn cycles_terminate_and_never_include_the_object_itself() {
        let m = Memberships::new(&[member("a", "b"), member("b", "a"), member("a", "sp")], &existing(&["a", "b"]));
        assert_eq!(m.transitive_groups("sp"), vec!["a", "b"]);
        assert_eq!(m.transitive_groups("a"), vec!["b"]);
        assert_eq!(m.transitive_groups("b"), vec!["a"]);
    }

    #[test]
    fn memberships_of_missing_groups_grant_nothing() {
        let m = Memberships::new(&[member("gone", "sp"), member("a", "gone")], &existing(&["a"]));
        assert!(m.transitive_groups("sp").is_empty());
        assert_eq!(m.transitive_groups("gone"), vec!["a"]);
    }

    #[test]
    fn principals_put_the_caller_first() {
        let authz = Authz::default();
        *authz.memberships.write().unwrap() = Arc::new(Memberships::new(&[member("g1", "sp")], &existing(&["g1"])));
        let ids: Vec<String> = authz.principals("SP").iter().map(|p| p.as_str().to_string()).collect();
        assert_eq!(ids, vec!["sp", "g1"]);
    }
}
