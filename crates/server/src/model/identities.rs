//! Managed identities and the hosting resources that carry them, as stored records.
//!
//! A user-assigned identity is a `Microsoft.ManagedIdentity/userAssignedIdentities` record whose
//! body is its ARM JSON. A hosting resource (container group, ML workspace, App Service site)
//! is a record whose body is its ARM JSON plus Wharf's private part under `_wharf`: its
//! system-assigned identity's ids and the keyed fingerprint of its current `IDENTITY_HEADER`
//! (never the secret itself). The settings index `msi.header.{fingerprint}` → resource id lets
//! the managed-identity endpoint find a resource from a header value.
//! Must never: return the private part to a client (`Host::public_body` leaves it out), or keep
//! a plaintext identity header.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wharf_arm::identity::{HOST_TYPES, HostingResource, USER_ASSIGNED_IDENTITY, UserAssignedIdentity};
use wharf_storage::{MetadataStore, ResourceRecord, StorageError};
use wharf_vocab::ManagedIdentityKind;

use super::corrupt;

/// Key of Wharf's private data inside a stored hosting-resource body.
const INTERNAL: &str = "_wharf";
/// Settings key prefix of the identity-header index.
pub const HEADER_INDEX_PREFIX: &str = "msi.header.";

/// A managed identity as the directory sees it: a service principal of type `ManagedIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedIdentityObject {
    pub object_id: String,
    pub client_id: String,
    pub kind: ManagedIdentityKind,
    /// The user-assigned identity's resource id, or the hosting resource's for a system-assigned one.
    pub resource_id: String,
    /// The resource's name (Entra names a managed identity's service principal after it).
    pub display_name: String,
}

/// A stored user-assigned identity.
#[derive(Debug, Clone)]
pub struct UserAssigned {
    pub record: ResourceRecord,
    pub identity: UserAssignedIdentity,
}

impl UserAssigned {
    pub fn from_record(record: ResourceRecord) -> Result<UserAssigned, StorageError> {
        let identity = serde_json::from_value(record.body.clone()).map_err(|e| corrupt(&record, e))?;
        Ok(UserAssigned { record, identity })
    }

    /// The directory view.
    pub fn object(&self) -> ManagedIdentityObject {
        let p = &self.identity.properties;
        ManagedIdentityObject {
            object_id: p.principal_id.clone(),
            client_id: p.client_id.clone(),
            kind: ManagedIdentityKind::UserAssigned,
            resource_id: self.record.id.clone(),
            display_name: self.record.name.clone(),
        }
    }
}

/// The user-assigned identity with resource id `id` (any case), or `None`.
pub async fn user_assigned(meta: &dyn MetadataStore, id: &str) -> Result<Option<UserAssigned>, StorageError> {
    match meta.resource_get(id).await? {
        Some(r) if r.resource_type.eq_ignore_ascii_case(USER_ASSIGNED_IDENTITY) => {
            UserAssigned::from_record(r).map(Some)
        }
        _ => Ok(None),
    }
}

/// A hosting resource's own identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemIdentity {
    pub principal_id: String,
    pub client_id: String,
}

/// What Wharf keeps about a hosting resource besides its ARM body.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInternal {
    #[serde(default)]
    pub system_identity: Option<SystemIdentity>,
    /// Keyed fingerprint (`wharf_identity::fingerprint`) of the current `IDENTITY_HEADER`.
    #[serde(default)]
    pub identity_header_fingerprint: Option<String>,
}

/// A stored hosting resource.
#[derive(Debug, Clone)]
pub struct Host {
    /// The record as stored (its body is rewritten by [`Host::to_record`]).
    pub record: ResourceRecord,
    pub resource: HostingResource,
    pub internal: HostInternal,
}

impl Host {
    pub fn from_record(record: ResourceRecord) -> Result<Host, StorageError> {
        let internal = match record.body.get(INTERNAL) {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| corrupt(&record, e))?,
            None => HostInternal::default(),
        };
        let resource = serde_json::from_value(record.body.clone()).map_err(|e| corrupt(&record, e))?;
        Ok(Host { record, resource, internal })
    }

    /// The ARM body as clients see it.
    pub fn public_body(&self) -> Value {
        serde_json::to_value(&self.resource).expect("a hosting resource serializes")
    }

    /// The record to store: the public body plus the private part.
    pub fn to_record(&self) -> ResourceRecord {
        let mut record = self.record.clone();
        record.body = self.public_body();
        record.body[INTERNAL] = serde_json::to_value(&self.internal).expect("internal serializes");
        record
    }

    /// Resource ids of the attached user-assigned identities, as stored.
    pub fn user_assigned_ids(&self) -> Vec<String> {
        self.resource.identity.iter().flat_map(|i| i.user_assigned_ids()).map(str::to_string).collect()
    }

    /// The identity a task carries for `selector` (`[system]` or a user-assigned identity's client
    /// id): its object id, client id and whether it is system-assigned.
    pub fn carried_identity(&self, selector: &str) -> Result<(String, String, bool), String> {
        if selector.eq_ignore_ascii_case("[system]") {
            return self
                .internal
                .system_identity
                .as_ref()
                .map(|s| (s.principal_id.clone(), s.client_id.clone(), true))
                .ok_or_else(|| {
                    format!(
                        "The task '{}' has no system-assigned identity: add one with '--assign-identity [system]' (identity.type SystemAssigned).",
                        self.record.name
                    )
                });
        }
        self.resource
            .identity
            .iter()
            .flat_map(|i| i.user_assigned_identities.values())
            .find(|u| u.client_id.eq_ignore_ascii_case(selector))
            .map(|u| (u.principal_id.clone(), u.client_id.clone(), false))
            .ok_or_else(|| {
                format!(
                    "The task '{}' has no user-assigned identity with client id '{selector}': attach it with 'wharf acr task identity assign --identities <its resource id>'.",
                    self.record.name
                )
            })
    }

    pub fn system_object(&self) -> Option<ManagedIdentityObject> {
        self.internal.system_identity.as_ref().map(|s| ManagedIdentityObject {
            object_id: s.principal_id.clone(),
            client_id: s.client_id.clone(),
            kind: ManagedIdentityKind::SystemAssigned,
            resource_id: self.record.id.clone(),
            display_name: self.record.name.clone(),
        })
    }
}

/// The record types that carry identities as hosting resources do: the hosting resource types,
/// and registry tasks (whose system-assigned identity is a managed identity of the directory).
pub const CARRIER_TYPES: [&str; 4] = [HOST_TYPES[0], HOST_TYPES[1], HOST_TYPES[2], wharf_arm::task::TASKS];

/// Whether a record type is one of the identity-carrying types ([`CARRIER_TYPES`]).
pub fn is_host_type(resource_type: &str) -> bool {
    CARRIER_TYPES.iter().any(|t| t.eq_ignore_ascii_case(resource_type))
}

/// The hosting resource with id `id` (any case), or `None`.
pub async fn host(meta: &dyn MetadataStore, id: &str) -> Result<Option<Host>, StorageError> {
    match meta.resource_get(id).await? {
        Some(r) if is_host_type(&r.resource_type) => Host::from_record(r).map(Some),
        _ => Ok(None),
    }
}

/// Every hosting resource of the deployment.
pub async fn hosts(meta: &dyn MetadataStore) -> Result<Vec<Host>, StorageError> {
    let mut out = vec![];
    for t in CARRIER_TYPES {
        for r in super::records_of_type(meta, t).await? {
            out.push(Host::from_record(r)?);
        }
    }
    Ok(out)
}

/// Every managed identity of the deployment (user-assigned ones and the system-assigned
/// identities of hosting resources).
pub async fn managed_identities(meta: &dyn MetadataStore) -> Result<Vec<ManagedIdentityObject>, StorageError> {
    let mut out = vec![];
    for r in super::records_of_type(meta, USER_ASSIGNED_IDENTITY).await? {
        out.push(UserAssigned::from_record(r)?.object());
    }
    out.extend(hosts(meta).await?.iter().filter_map(Host::system_object));
    Ok(out)
}

/// The managed identity whose object (principal) id is `object_id`.
pub async fn find_managed_identity(
    meta: &dyn MetadataStore,
    object_id: &str,
) -> Result<Option<ManagedIdentityObject>, StorageError> {
    Ok(managed_identities(meta).await?.into_iter().find(|m| m.object_id.eq_ignore_ascii_case(object_id)))
}

/// The settings key of an identity-header fingerprint.
pub fn header_index_key(fingerprint: &str) -> String {
    format!("{HEADER_INDEX_PREFIX}{fingerprint}")
}

/// The hosting resource an identity header belongs to, or `None` (unknown, rotated, or its
/// resource deleted). The fingerprint comparison is constant-time.
pub async fn host_by_header(
    meta: &dyn MetadataStore,
    key: &wharf_identity::FingerprintKey,
    header: &str,
) -> Result<Option<Host>, StorageError> {
    let fp = wharf_identity::fingerprint(key, header);
    let Some(id) = meta.setting_get(&header_index_key(&fp)).await?.filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    let Some(host) = host(meta, &id).await? else {
        return Ok(None);
    };
    let matches = host
        .internal
        .identity_header_fingerprint
        .as_deref()
        .is_some_and(|stored| wharf_identity::secret::constant_time_eq(stored.as_bytes(), fp.as_bytes()));
    Ok(matches.then_some(host))
}
