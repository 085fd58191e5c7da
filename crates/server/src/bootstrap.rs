//! Opening a data directory: creates and initialises a new one (deployment and tenant ids),
//! resumes an existing one, and reconciles upload sessions left by a crash.

use std::sync::Arc;

use anyhow::Context;
use wharf_storage::fs::FsBlobStore;
use wharf_storage::sqlite::SqliteMetadataStore;
use wharf_storage::{BlobStore, MetadataStore};

use crate::config::Config;
use crate::state::{AppState, RegistryCache};

const SUBSCRIPTION_KEY: &str = "deployment.subscription_id";
const TENANT_KEY: &str = "deployment.tenant_id";

pub async fn open(config: Config, listen_port: u16) -> anyhow::Result<Arc<AppState>> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data directory {}", config.data_dir.display()))?;
    let meta = SqliteMetadataStore::open(&config.data_dir.join("metadata.db"))
        .with_context(|| format!("cannot open the metadata database in {}", config.data_dir.display()))?;
    let blobs = FsBlobStore::open(config.data_dir.join("blobs"))
        .with_context(|| format!("cannot open the blob store in {}", config.data_dir.display()))?;
    let meta: Arc<dyn MetadataStore> = Arc::new(meta);
    let blobs: Arc<dyn BlobStore> = Arc::new(blobs);

    let subscription_id = setting_or_new(&*meta, SUBSCRIPTION_KEY).await?;
    let tenant_id = setting_or_new(&*meta, TENANT_KEY).await?;
    reconcile_uploads(&*meta, &*blobs).await?;

    let public_port = config.public_port.unwrap_or(listen_port);
    Ok(Arc::new(AppState {
        config,
        meta,
        blobs,
        subscription_id,
        tenant_id,
        public_port,
        registries: RegistryCache::default(),
        gc_lock: tokio::sync::RwLock::new(()),
    }))
}

async fn setting_or_new(meta: &dyn MetadataStore, key: &str) -> anyhow::Result<String> {
    if let Some(v) = meta.setting_get(key).await? {
        return Ok(v);
    }
    let v = uuid::Uuid::new_v4().to_string();
    meta.setting_put(key, &v).await?;
    tracing::info!(key, value = %v, "initialised a new data directory");
    Ok(v)
}

/// Upload sessions whose bytes or records were lost in a crash are dropped, so that the two
/// stores agree again.
async fn reconcile_uploads(meta: &dyn MetadataStore, blobs: &dyn BlobStore) -> anyhow::Result<()> {
    let records = meta.upload_list().await?;
    let on_disk = blobs.upload_ids().await?;
    for r in &records {
        if !on_disk.contains(&r.id) {
            tracing::warn!(upload = %r.id, "upload session has no bytes on disk; dropping it");
            meta.upload_delete(&r.id).await?;
        }
    }
    for id in on_disk {
        if !records.iter().any(|r| r.id == id) {
            blobs.upload_abort(&id).await?;
        }
    }
    Ok(())
}
