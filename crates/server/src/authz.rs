//! Authorization glue: keeps the decision engine's [`AssignmentIndex`] in memory, resolves a
//! caller's principal set (own object id, then its groups), and answers the two questions the
//! server asks: may this caller perform this management action here, and which Docker actions
//! does this registry token grant.
//!
//! The index is a cache of the store and changes the moment the store does: a stored
//! assignment is inserted ([`Authz::assignment_stored`]), deleted records leave it
//! ([`Authz::records_deleted`], for every path that deletes a record tree: registries,
//! resource groups, identities, hosting resources, assignments themselves), and a change of
//! custom roles or groups reloads it whole.
//! The engine itself (`wharf-authz`) is pure; this module is the only place that feeds it.
//! Must never: answer from an index older than the last write that returned to its client.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use wharf_authz::{
    AssignmentIndex, DataPlaneRequest, DataPlaneTarget, Decision, DockerAction, EnvironmentAttributes, PrincipalId,
    RoleAssignment, RoleAssignmentMode, Scope,
};
use wharf_storage::{MetadataStore, ResourceRecord, StorageError};

use crate::model::assignments::{self, ASSIGNMENT_TYPE, DEFINITION_TYPE};
use crate::model::directory::{self, GROUP_TYPE, MEMBERSHIP_TYPE, Membership};

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
        let assignments = assignments::stored_assignments(meta).await?;
        let customs = assignments::custom_roles(meta).await?;
        let groups: HashSet<String> =
            directory::list_groups(meta).await?.into_iter().map(|g| g.id.to_ascii_lowercase()).collect();
        let memberships = Memberships::new(&directory::memberships(meta).await?, &groups);
        let index = AssignmentIndex::with_built_in_roles(customs, assignments);
        *self.index.write().expect("authz lock") = Arc::new(index);
        *self.memberships.write().expect("authz lock") = Arc::new(memberships);
        Ok(())
    }

    /// An assignment was stored (created or replaced): the index has it at once, without
    /// reading the store again.
    pub fn assignment_stored(&self, assignment: RoleAssignment) {
        let mut index = self.index.write().expect("authz lock");
        Arc::make_mut(&mut index).insert(assignment);
    }

    /// Records were deleted (a record tree: a registry with the assignments at its scope, a
    /// resource group with everything in it, an assignment): the index forgets the
    /// assignments among them at once; deleted custom roles, groups or memberships reload it.
    pub async fn records_deleted(
        &self,
        meta: &dyn MetadataStore,
        deleted: &[ResourceRecord],
    ) -> Result<(), StorageError> {
        let is = |r: &ResourceRecord, t: &str| r.resource_type.eq_ignore_ascii_case(t);
        if deleted.iter().any(|r| is(r, DEFINITION_TYPE) || is(r, GROUP_TYPE) || is(r, MEMBERSHIP_TYPE)) {
            return self.reload(meta).await;
        }
        let removed: Vec<&ResourceRecord> = deleted.iter().filter(|r| is(r, ASSIGNMENT_TYPE)).collect();
        if !removed.is_empty() {
            let mut index = self.index.write().expect("authz lock");
            let index = Arc::make_mut(&mut index);
            for r in removed {
                index.remove(&r.name);
            }
        }
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
    pub fn authorize_action(&self, object_id: &str, scope: &Scope, action: &str) -> Decision {
        self.index().authorize_action(&self.principals(object_id), scope, action)
    }

    /// The Docker actions granted on `target` of a registry.
    pub fn data_plane(
        &self,
        object_id: &str,
        registry: &Scope,
        mode: RoleAssignmentMode,
        target: DataPlaneTarget,
        actions: &[DockerAction],
        environment: &EnvironmentAttributes,
    ) -> wharf_authz::DataPlaneDecision {
        let principals = self.principals(object_id);
        self.index().authorize_data_plane(&DataPlaneRequest {
            principals: &principals,
            registry,
            mode,
            target,
            actions,
            environment,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::directory::MemberKind;

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
