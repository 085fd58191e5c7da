//! Registries as stored records: the ARM body (`sku`, `properties` …) plus Wharf's private part
//! under `_wharf`, never shown to clients.
//!
//! The private part holds the registry's token epoch: registry tokens are bound to it, and it
//! changes whenever a token issued before must stop working although the registry's name and
//! resource id stay — when the registry is created again under the same name (a new record, so
//! a new epoch) and whenever its role-assignment mode changes (switching back to the old mode
//! does not bring the old epoch back).
//! Must never: return the private part to a client ([`StoredRegistry::public_body`] leaves it
//! out).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wharf_arm::registry::{RegistryProperties, Sku};
use wharf_storage::{MetadataStore, RegistryKey, ResourceRecord, StorageError};

use super::corrupt;

const INTERNAL: &str = "_wharf";

/// What Wharf keeps about a registry besides its ARM body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryInternal {
    /// See the module comment; absent on records written before epochs existed, which then
    /// use the registry key (fixed for the record's life).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_epoch: Option<String>,
}

impl RegistryInternal {
    /// A fresh epoch (a new registry, a mode change).
    pub fn new_epoch() -> RegistryInternal {
        RegistryInternal { token_epoch: Some(uuid::Uuid::new_v4().to_string()) }
    }
}

/// A stored registry, read back.
#[derive(Debug, Clone)]
pub struct StoredRegistry {
    pub record: ResourceRecord,
    pub sku: Sku,
    pub properties: RegistryProperties,
    pub internal: RegistryInternal,
}

impl StoredRegistry {
    pub fn from_record(record: ResourceRecord) -> Result<StoredRegistry, StorageError> {
        let sku = record.body["sku"]["name"].as_str().ok_or_else(|| corrupt(&record, "no sku"))?;
        let sku = Sku::parse(sku).map_err(|_| corrupt(&record, "bad sku"))?;
        let properties = serde_json::from_value(record.body["properties"].clone()).map_err(|e| corrupt(&record, e))?;
        let internal = match record.body.get(INTERNAL) {
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| corrupt(&record, e))?,
            None => RegistryInternal::default(),
        };
        Ok(StoredRegistry { record, sku, properties, internal })
    }

    pub fn key(&self) -> RegistryKey {
        RegistryKey(self.record.key.clone())
    }

    /// The epoch registry tokens are bound to.
    pub fn token_epoch(&self) -> String {
        self.internal.token_epoch.clone().unwrap_or_else(|| self.record.key.clone())
    }

    /// The ARM body as clients see it.
    pub fn public_body(&self) -> Value {
        public_body(&self.record.body)
    }
}

/// A registry body without Wharf's private part.
pub fn public_body(body: &Value) -> Value {
    let mut b = body.clone();
    if let Value::Object(m) = &mut b {
        m.remove(INTERNAL);
    }
    b
}

/// Sets the private part of a registry body.
pub fn set_internal(body: &mut Value, internal: &RegistryInternal) {
    body[INTERNAL] = serde_json::to_value(internal).expect("registry internals serialize");
}

/// The registry named `name` (case-insensitive), whatever its resource group.
pub async fn by_name(meta: &dyn MetadataStore, name: &str) -> Result<Option<StoredRegistry>, StorageError> {
    match meta.resource_find_by_name(wharf_arm::types::REGISTRY, &name.to_ascii_lowercase()).await? {
        Some(r) => StoredRegistry::from_record(r).map(Some),
        None => Ok(None),
    }
}

/// The registry with resource id `id` (any case).
pub async fn by_id(meta: &dyn MetadataStore, id: &str) -> Result<Option<StoredRegistry>, StorageError> {
    match meta.resource_get(id).await? {
        Some(r) if r.resource_type.eq_ignore_ascii_case(wharf_arm::types::REGISTRY) => {
            StoredRegistry::from_record(r).map(Some)
        }
        _ => Ok(None),
    }
}
