//! "What is this object id?": the one lookup of a directory object by id, over users, service
//! principals, groups and managed identities (which are ARM resources, not directory records).
//!
//! Must never: say more than what exists; whether a caller may know it is the plane's business.

use wharf_authz::AssignmentPrincipalType;
use wharf_storage::{MetadataStore, StorageError};

use super::directory::{self, Group, MemberKind, ServicePrincipal, User};
use super::identities::{self, ManagedIdentityObject};

/// A directory object found by its object id.
#[derive(Debug, Clone)]
pub enum DirectoryObject {
    User(User),
    ServicePrincipal(ServicePrincipal),
    Group(Group),
    ManagedIdentity(ManagedIdentityObject),
}

impl DirectoryObject {
    /// ARM's `principalType` for a role assignment to this object (a managed identity is a
    /// service principal there, as in Azure).
    pub fn assignment_principal_type(&self) -> AssignmentPrincipalType {
        match self {
            DirectoryObject::User(_) => AssignmentPrincipalType::User,
            DirectoryObject::ServicePrincipal(_) | DirectoryObject::ManagedIdentity(_) => {
                AssignmentPrincipalType::ServicePrincipal
            }
            DirectoryObject::Group(_) => AssignmentPrincipalType::Group,
        }
    }
}

impl DirectoryObject {
    /// The object id.
    pub fn id(&self) -> &str {
        match self {
            DirectoryObject::User(u) => &u.id,
            DirectoryObject::ServicePrincipal(sp) => &sp.id,
            DirectoryObject::ManagedIdentity(mi) => &mi.object_id,
            DirectoryObject::Group(g) => &g.id,
        }
    }

    /// The kind a group membership records.
    pub fn member_kind(&self) -> MemberKind {
        match self {
            DirectoryObject::User(_) => MemberKind::User,
            DirectoryObject::ServicePrincipal(_) | DirectoryObject::ManagedIdentity(_) => MemberKind::ServicePrincipal,
            DirectoryObject::Group(_) => MemberKind::Group,
        }
    }
}

/// Finds directory objects by object id, with the managed identities (ARM resources) listed
/// once for many lookups.
pub struct Lookup {
    identities: Vec<ManagedIdentityObject>,
}

impl Lookup {
    pub async fn load(meta: &dyn MetadataStore) -> Result<Lookup, StorageError> {
        Ok(Lookup { identities: identities::managed_identities(meta).await? })
    }

    /// The directory object with this object id (any case), or `None`.
    pub async fn find(
        &self,
        meta: &dyn MetadataStore,
        object_id: &str,
    ) -> Result<Option<DirectoryObject>, StorageError> {
        let oid = object_id.to_ascii_lowercase();
        if let Some(u) = directory::get_user(meta, &oid).await? {
            return Ok(Some(DirectoryObject::User(u)));
        }
        if let Some(sp) = directory::get_sp(meta, &oid).await? {
            return Ok(Some(DirectoryObject::ServicePrincipal(sp)));
        }
        if let Some(mi) = self.identities.iter().find(|m| m.object_id.eq_ignore_ascii_case(&oid)) {
            return Ok(Some(DirectoryObject::ManagedIdentity(mi.clone())));
        }
        Ok(directory::get_group(meta, &oid).await?.map(DirectoryObject::Group))
    }
}

/// The directory object with this object id (any case), or `None`.
pub async fn lookup(meta: &dyn MetadataStore, object_id: &str) -> Result<Option<DirectoryObject>, StorageError> {
    Lookup::load(meta).await?.find(meta, object_id).await
}

/// The directory principal a token would be issued for, for the user or service principal with
/// object id `object_id` (`None` for any other object, or a disabled user): what a quick run
/// scheduled with `[caller]` acts as, looked up again when it starts.
pub async fn directory_principal(
    meta: &dyn MetadataStore,
    object_id: &str,
) -> Result<Option<wharf_identity::DirectoryPrincipal>, StorageError> {
    Ok(match lookup(meta, object_id).await? {
        Some(DirectoryObject::User(u)) if u.account_enabled => Some(wharf_identity::DirectoryPrincipal::User {
            object_id: u.id,
            display_name: u.display_name,
            user_principal_name: u.user_principal_name,
        }),
        Some(DirectoryObject::ServicePrincipal(sp)) => Some(wharf_identity::DirectoryPrincipal::ServicePrincipal {
            object_id: sp.id,
            app_id: sp.app_id,
            builtin: sp.builtin,
        }),
        _ => None,
    })
}
