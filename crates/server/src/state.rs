//! Process-wide state shared by every request: configuration, the two stores, the deployment's
//! ids, the token-issuing state, the authorization index, and a cache of registries (with their
//! compiled network policies) for the data plane.
//!
//! Owns: the registry cache and its invalidation (a registry write, a subnet change).
//! Must never: import a plane; everything here is built from the layers below it (`model`,
//! `issuer`, `authz`, `network`) so that planes share state without sharing code paths.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use wharf_arm::registry::{RegistryProperties, Sku};
use wharf_authz::Scope;
use wharf_storage::{BlobStore, MetadataStore, RegistryKey, StorageError};

use crate::config::Config;
use crate::model::registries::StoredRegistry;
use crate::network::Guarded;

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
    /// Held for reading by a cross-repository mount while it links; for writing by garbage
    /// collection (see `gc.rs`).
    pub gc_lock: tokio::sync::RwLock<()>,
    /// This process's hold on the data directory (`wharf admin fsck` and other servers are
    /// refused while it lives).
    pub data_dir_lock: wharf_storage::lock::DataDirLock,
    pub identity: crate::issuer::Identity,
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
    /// The task-run doorbell, cancel switches and engine (the queue is in `meta`).
    pub run_queue: crate::run_queue::RunQueue,
    /// Stop switches of private endpoint listeners, by lowercase endpoint id.
    pub private_listeners: std::sync::Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
    /// Import operations started by `importImage`, for their status URLs.
    pub imports: crate::import_operations::ImportOperations,
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

    /// Deletes a record and every record below it, and brings each cache that held any of them
    /// up to date before returning — the assignment index (a registry's or a resource group's
    /// assignments go with it) and the registry cache — so that nothing deleted keeps deciding.
    pub async fn delete_tree(&self, id: &str) -> Result<Vec<wharf_storage::ResourceRecord>, StorageError> {
        let deleted = self.meta.resource_delete_tree(id).await?;
        for r in &deleted {
            if r.resource_type.eq_ignore_ascii_case(wharf_arm::types::REGISTRY) {
                self.registries.invalidate(&r.name);
            }
        }
        self.authz.records_deleted(&*self.meta, &deleted).await?;
        Ok(deleted)
    }

    /// Something registries' network rules depend on changed (e.g. a subnet): drop cached
    /// registry state.
    pub fn registries_changed(&self) {
        self.registries.clear();
    }

    /// `{name}.{domain}[:port]`, lowercase, as ACR spells login servers.
    pub fn login_server(&self, registry_name: &str) -> String {
        crate::login_server::login_server(registry_name, &self.config.domain, self.public_port)
    }

    /// The registry whose login server `host` is (`Host` header or token `service`); `Ok(None)`
    /// when the host is not a login server of this deployment's shape (path style), an error
    /// naming the label when it is one but no such registry exists.
    pub async fn registry_of_host(&self, host: &str) -> Result<HostRegistry, StorageError> {
        let Some(label) = crate::login_server::registry_label(host, &self.config.domain) else {
            return Ok(HostRegistry::NotALoginServer);
        };
        Ok(match self.registry(&label).await? {
            Some(info) => HostRegistry::Registry(info),
            None => HostRegistry::Unknown(label),
        })
    }

    /// Looks a registry up by name (case-insensitive), through the cache.
    pub async fn registry(&self, name: &str) -> Result<Option<Arc<RegistryInfo>>, StorageError> {
        let lower = name.to_ascii_lowercase();
        if let Some(hit) = self.registries.get(&lower) {
            return Ok(Some(hit));
        }
        let generation = self.registries.generation();
        let Some(stored) = crate::model::registries::by_name(&*self.meta, &lower).await? else {
            return Ok(None);
        };
        let network = crate::network::policy(&*self.meta, &stored.record.name, &stored.properties).await;
        let info = Arc::new(RegistryInfo::new(&stored, network)?);
        self.registries.put(&lower, info.clone(), generation);
        Ok(Some(info))
    }
}

/// What a host names.
pub enum HostRegistry {
    /// A login server of an existing registry.
    Registry(Arc<RegistryInfo>),
    /// A login server's shape, but no registry has that name.
    Unknown(String),
    /// Any other host: path style.
    NotALoginServer,
}

/// What the data plane needs to know about a registry.
#[derive(Debug, Clone)]
pub struct RegistryInfo {
    pub name: String,
    pub key: RegistryKey,
    pub resource_id: String,
    /// The resource id as an authorization scope.
    pub scope: Scope,
    pub sku: Sku,
    pub properties: RegistryProperties,
    /// The epoch registry tokens are bound to (see `model::registries`).
    pub token_epoch: String,
    /// The compiled network rules.
    pub network: Arc<wharf_netrules::NetworkPolicy>,
}

impl RegistryInfo {
    pub fn new(stored: &StoredRegistry, network: wharf_netrules::NetworkPolicy) -> Result<RegistryInfo, StorageError> {
        let scope = Scope::parse(&stored.record.id)
            .map_err(|e| StorageError::Corrupt(format!("registry id {}: {e}", stored.record.id)))?;
        Ok(RegistryInfo {
            name: stored.record.name.clone(),
            key: stored.key(),
            resource_id: stored.record.id.clone(),
            scope,
            sku: stored.sku,
            properties: stored.properties.clone(),
            token_epoch: stored.token_epoch(),
            network: Arc::new(network),
        })
    }

    /// What the network gate needs of this registry.
    pub fn guarded(&self) -> Guarded<'_> {
        Guarded { name: &self.name, resource_id: &self.resource_id, policy: &self.network }
    }
}

/// Registry resources by lowercase name. Management writes invalidate entries; an entry read
/// from the store before an invalidation is never cached after it.
#[derive(Default)]
pub struct RegistryCache {
    entries: RwLock<Entries>,
}

#[derive(Default)]
struct Entries {
    by_name: HashMap<String, Arc<RegistryInfo>>,
    /// Bumped by every invalidation.
    generation: u64,
}

impl RegistryCache {
    pub fn get(&self, lower_name: &str) -> Option<Arc<RegistryInfo>> {
        self.entries.read().expect("registry cache poisoned").by_name.get(lower_name).cloned()
    }

    /// Take before reading the store; [`RegistryCache::put`] drops what was read if anything
    /// was invalidated since.
    pub fn generation(&self) -> u64 {
        self.entries.read().expect("registry cache poisoned").generation
    }

    pub fn put(&self, lower_name: &str, info: Arc<RegistryInfo>, read_at: u64) {
        let mut e = self.entries.write().expect("registry cache poisoned");
        if e.generation == read_at {
            e.by_name.insert(lower_name.to_string(), info);
        }
    }

    pub fn clear(&self) {
        let mut e = self.entries.write().expect("registry cache poisoned");
        e.by_name.clear();
        e.generation += 1;
    }

    pub fn invalidate(&self, name: &str) {
        let mut e = self.entries.write().expect("registry cache poisoned");
        e.by_name.remove(&name.to_ascii_lowercase());
        e.generation += 1;
    }
}
