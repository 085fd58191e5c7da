//! The model layer: the deployment's stored objects as typed values — the directory, managed
//! identities and hosting resources, the emulated network, role assignments and definitions, and
//! registries — read and written through `&dyn MetadataStore`.
//!
//! Owns: record ids and record types, the typed views of stored bodies (the JSON values
//! themselves are `wharf-arm`'s), and the lookups several planes share ("what is this object
//! id?", "which subnet is this?").
//! Must never: know HTTP or any plane's wire errors (every function returns `StorageError`),
//! import a plane, or decide who may do what.

pub mod assignments;
pub mod directory;
pub mod identities;
pub mod network;
pub mod principals;
pub mod registries;

use wharf_storage::{MetadataStore, ResourceFilter, ResourceRecord, StorageError};

/// Every stored record of one type, in any resource group.
pub async fn records_of_type(
    meta: &dyn MetadataStore,
    resource_type: &str,
) -> Result<Vec<ResourceRecord>, StorageError> {
    meta.resource_list(&ResourceFilter { resource_type: Some(resource_type.into()), resource_group: None }).await
}

/// A stored body that does not read back as its type: the store is corrupt (never a client
/// error, never silently skipped where it decides anything).
pub(crate) fn corrupt(record: &ResourceRecord, e: impl std::fmt::Display) -> StorageError {
    StorageError::Corrupt(format!("{} {}: {e}", record.resource_type, record.id))
}
