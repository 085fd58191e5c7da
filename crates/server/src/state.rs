//! Process-wide state shared by every request: configuration, the two stores, the deployment's
//! ids, and a cache of registry resources for the data plane.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use wharf_arm::registry::{RegistryProperties, Sku};
use wharf_storage::{BlobStore, MetadataStore, RegistryKey, ResourceRecord};

use crate::config::Config;

pub struct AppState {
    pub config: Config,
    pub meta: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    /// The deployment id, which plays the part of the Azure subscription id.
    pub subscription_id: String,
    pub tenant_id: String,
    /// Port shown in login servers.
    pub public_port: u16,
    pub registries: RegistryCache,
    /// Held for reading from a blob's commit to its link; for writing by garbage collection.
    pub gc_lock: tokio::sync::RwLock<()>,
    pub identity: crate::auth::Identity,
    pub authz: crate::authz::Authz,
    /// Whether the public listener speaks TLS (decides `https` in URLs Wharf hands out).
    pub tls: bool,
    /// Deployment secret for derived values (admin passwords, identity-header fingerprints).
    pub secret_key: wharf_identity::FingerprintKey,
    /// The application, for listeners started after start-up (private endpoints).
    pub router: std::sync::OnceLock<axum::Router>,
    pub tls_acceptor: std::sync::OnceLock<Option<tokio_rustls::TlsAcceptor>>,
    /// The connection caps every listener shares.
    pub connection_limits: std::sync::OnceLock<Arc<crate::listener::ConnectionLimits>>,
    /// Stop switches of private endpoint listeners, by lowercase endpoint id.
    pub private_listeners: std::sync::Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
}

impl AppState {
    /// `scheme://host` as the client addressed this server (the Host header), for URLs handed
    /// back to it (token realms, OpenID endpoints).
    pub fn base_url(&self, headers: &http::HeaderMap) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        let host = headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| !h.is_empty() && h.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
            .unwrap_or_else(|| self.config.listen.to_string());
        format!("{scheme}://{host}")
    }

    /// Something registries' network rules depend on changed (e.g. a subnet): drop cached
    /// registry state.
    pub fn registries_changed(&self) {
        self.registries.clear();
    }

    pub fn secret_key(&self) -> wharf_identity::FingerprintKey {
        self.secret_key.clone()
    }

    /// `{name}.{domain}[:port]`, lowercase, as ACR spells login servers.
    pub fn login_server(&self, registry_name: &str) -> String {
        let host = format!("{}.{}", registry_name.to_ascii_lowercase(), self.config.domain);
        match self.public_port {
            443 => host,
            port => format!("{host}:{port}"),
        }
    }

    /// Looks a registry up by name (case-insensitive), through the cache.
    pub async fn registry(&self, name: &str) -> Result<Option<Arc<RegistryInfo>>, wharf_storage::StorageError> {
        let lower = name.to_ascii_lowercase();
        if let Some(hit) = self.registries.get(&lower) {
            return Ok(Some(hit));
        }
        let Some(record) = self.meta.resource_find_by_name(wharf_arm::types::REGISTRY, &lower).await? else {
            return Ok(None);
        };
        let mut info = RegistryInfo::from_record(&record)?;
        info.network = Arc::new(crate::network::policy(self, &info).await);
        let info = Arc::new(info);
        self.registries.put(&lower, info.clone());
        Ok(Some(info))
    }
}

/// What the data plane needs to know about a registry.
#[derive(Debug, Clone)]
pub struct RegistryInfo {
    pub name: String,
    pub key: RegistryKey,
    pub resource_id: String,
    pub sku: Sku,
    pub properties: RegistryProperties,
    /// The compiled network rules (filled by [`AppState::registry`]; an unfilled value allows
    /// everything and is used only where no network decision is taken).
    pub network: Arc<wharf_netrules::NetworkPolicy>,
}

impl RegistryInfo {
    pub fn from_record(record: &ResourceRecord) -> Result<RegistryInfo, wharf_storage::StorageError> {
        let corrupt = |what: &str| wharf_storage::StorageError::Corrupt(format!("registry {}: {what}", record.id));
        let sku = record.body["sku"]["name"].as_str().ok_or_else(|| corrupt("no sku"))?;
        let properties: RegistryProperties =
            serde_json::from_value(record.body["properties"].clone()).map_err(|e| corrupt(&e.to_string()))?;
        Ok(RegistryInfo {
            name: record.name.clone(),
            key: RegistryKey(record.key.clone()),
            resource_id: record.id.clone(),
            sku: Sku::parse(sku).map_err(|_| corrupt("bad sku"))?,
            properties,
            network: Arc::new(wharf_netrules::NetworkPolicy::default()),
        })
    }
}

/// Registry resources by lowercase name. Management writes invalidate entries.
#[derive(Default)]
pub struct RegistryCache {
    entries: RwLock<HashMap<String, Arc<RegistryInfo>>>,
}

impl RegistryCache {
    pub fn get(&self, lower_name: &str) -> Option<Arc<RegistryInfo>> {
        self.entries.read().expect("registry cache poisoned").get(lower_name).cloned()
    }

    pub fn put(&self, lower_name: &str, info: Arc<RegistryInfo>) {
        self.entries.write().expect("registry cache poisoned").insert(lower_name.to_string(), info);
    }

    pub fn clear(&self) {
        self.entries.write().expect("registry cache poisoned").clear();
    }

    pub fn invalidate(&self, name: &str) {
        self.entries.write().expect("registry cache poisoned").remove(&name.to_ascii_lowercase());
    }
}
