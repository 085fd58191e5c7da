//! The emulated network as stored records: virtual networks (with their subnets) and private
//! endpoints, each a record whose body is its `wharf-arm` value's JSON.
//!
//! Must never: bind or close listeners (that is `crate::private_link`), or compile network rules
//! (that is `crate::network`).

use wharf_arm::network::{
    PRIVATE_ENDPOINT, PrivateEndpoint, Subnet, VIRTUAL_NETWORK, VirtualNetwork, vnet_of_subnet_id,
};
use wharf_storage::{MetadataStore, ResourceRecord, StorageError};

use super::corrupt;

/// A stored virtual network.
#[derive(Debug, Clone)]
pub struct StoredVnet {
    pub record: ResourceRecord,
    pub vnet: VirtualNetwork,
}

impl StoredVnet {
    /// The record to store, with the virtual network as its body.
    pub fn to_record(&self) -> ResourceRecord {
        let mut r = self.record.clone();
        r.body = serde_json::to_value(&self.vnet).expect("a virtual network serializes");
        r
    }
}

/// The virtual network with id `id` (any case), or `None`.
pub async fn vnet(meta: &dyn MetadataStore, id: &str) -> Result<Option<StoredVnet>, StorageError> {
    match meta.resource_get(id).await? {
        Some(r) if r.resource_type.eq_ignore_ascii_case(VIRTUAL_NETWORK) => {
            let vnet = serde_json::from_value(r.body.clone()).map_err(|e| corrupt(&r, e))?;
            Ok(Some(StoredVnet { record: r, vnet }))
        }
        _ => Ok(None),
    }
}

/// The subnet with resource id `subnet_id`, if its virtual network and the subnet exist.
pub async fn subnet(meta: &dyn MetadataStore, subnet_id: &str) -> Result<Option<Subnet>, StorageError> {
    let Some(vnet_id) = vnet_of_subnet_id(subnet_id) else { return Ok(None) };
    let Some(stored) = vnet(meta, vnet_id).await? else { return Ok(None) };
    Ok(stored.vnet.subnet_by_id(subnet_id).cloned())
}

/// A stored private endpoint.
#[derive(Debug, Clone)]
pub struct StoredPrivateEndpoint {
    pub record: ResourceRecord,
    pub endpoint: PrivateEndpoint,
}

impl StoredPrivateEndpoint {
    fn from_record(r: ResourceRecord) -> Result<StoredPrivateEndpoint, StorageError> {
        let endpoint = serde_json::from_value(r.body.clone()).map_err(|e| corrupt(&r, e))?;
        Ok(StoredPrivateEndpoint { record: r, endpoint })
    }
}

/// The private endpoint with id `id` (any case), or `None`.
pub async fn private_endpoint(
    meta: &dyn MetadataStore,
    id: &str,
) -> Result<Option<StoredPrivateEndpoint>, StorageError> {
    match meta.resource_get(id).await? {
        Some(r) if r.resource_type.eq_ignore_ascii_case(PRIVATE_ENDPOINT) => {
            StoredPrivateEndpoint::from_record(r).map(Some)
        }
        _ => Ok(None),
    }
}

/// Every private endpoint of the deployment.
pub async fn private_endpoints(meta: &dyn MetadataStore) -> Result<Vec<StoredPrivateEndpoint>, StorageError> {
    super::records_of_type(meta, PRIVATE_ENDPOINT).await?.into_iter().map(StoredPrivateEndpoint::from_record).collect()
}
