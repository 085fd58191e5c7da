//! Opening a data directory: takes its lock, creates and initialises a new one (deployment and
//! tenant ids), resumes an existing one, and reconciles upload sessions left by a crash.

use std::sync::Arc;

use anyhow::Context;
use wharf_storage::fs::FsBlobStore;
use wharf_storage::sqlite::SqliteMetadataStore;
use wharf_storage::{BlobStore, MetadataStore};

use crate::config::Config;
use crate::state::{AppState, RegistryCache};

const SUBSCRIPTION_KEY: &str = "deployment.subscription_id";
const TENANT_KEY: &str = "deployment.tenant_id";

/// The stores a server runs on, with its hold on the data directory.
pub struct Stores {
    pub meta: Arc<dyn MetadataStore>,
    pub blobs: Arc<dyn BlobStore>,
    pub lock: wharf_storage::lock::DataDirLock,
}

impl Stores {
    /// The embedded stores of `data_dir` (SQLite metadata, a filesystem blob store), created
    /// if missing, the directory made owner-only and locked for this process.
    pub fn open_embedded(data_dir: &std::path::Path) -> anyhow::Result<Stores> {
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
        // The data directory holds signing keys and the deployment secret: owner only.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("cannot restrict the permissions of {}", data_dir.display()))?;
        }
        let lock = wharf_storage::lock::DataDirLock::acquire(data_dir)?;
        let meta = SqliteMetadataStore::open(&data_dir.join("metadata.db"))
            .with_context(|| format!("cannot open the metadata database in {}", data_dir.display()))?;
        let blobs = FsBlobStore::open(data_dir.join("blobs"))
            .with_context(|| format!("cannot open the blob store in {}", data_dir.display()))?;
        Ok(Stores { meta: Arc::new(meta), blobs: Arc::new(blobs), lock })
    }
}

/// Opens the data directory of `config` on its embedded stores.
pub async fn open(config: Config, listen_port: u16) -> anyhow::Result<Arc<AppState>> {
    let stores = Stores::open_embedded(&config.data_dir)?;
    open_with(config, listen_port, stores).await
}

/// Builds the state on `stores` (the embedded ones, or wrapped ones in tests): initialises a
/// new deployment, resumes an existing one, reconciles upload sessions left by a crash.
pub async fn open_with(config: Config, listen_port: u16, stores: Stores) -> anyhow::Result<Arc<AppState>> {
    let Stores { meta, blobs, lock: data_dir_lock } = stores;

    let subscription_id = setting_or_new(&*meta, SUBSCRIPTION_KEY).await?;
    let tenant_id = setting_or_new(&*meta, TENANT_KEY).await?;
    reconcile_uploads(&*meta, &*blobs).await?;

    let tls = config.tls_enabled();
    let public_port = config.public_port.unwrap_or(listen_port);
    let server_url = server_url(&config, tls, listen_port);
    let identity =
        crate::issuer::Identity::load(&*meta, &server_url, &tenant_id).await?.with_token_times(&config.tokens);
    let secret_key = match meta.setting_get(SECRET_KEY).await? {
        Some(hex) => wharf_identity::FingerprintKey::from_hex(&hex)
            .map_err(|e| anyhow::anyhow!("stored deployment key unreadable: {e}"))?,
        None => {
            let k = wharf_identity::FingerprintKey::generate();
            meta.setting_put(SECRET_KEY, &k.to_hex()).await?;
            k
        }
    };
    let run_queue = run_queue(&config).await;
    let state = Arc::new(AppState {
        run_queue,
        config,
        meta,
        blobs,
        subscription_id,
        tenant_id,
        public_port,
        registries: RegistryCache::default(),
        gc_lock: tokio::sync::RwLock::new(()),
        data_dir_lock,
        identity,
        authz: crate::authz::Authz::default(),
        tls,
        secret_key,
        router: std::sync::OnceLock::new(),
        tls_acceptor: std::sync::OnceLock::new(),
        connection_limits: std::sync::OnceLock::new(),
        private_listeners: std::sync::Mutex::new(std::collections::HashMap::new()),
        imports: Default::default(),
    });
    if state.meta.setting_get(BOOTSTRAPPED_KEY).await?.is_none() {
        bootstrap_directory(&state, &server_url).await?;
        state.meta.setting_put(BOOTSTRAPPED_KEY, "1").await?;
    }
    state.authz.reload(&*state.meta).await?;
    Ok(state)
}

/// The task engine of `config` and whether it can run anything here (said once at start-up;
/// without buildah or podman, every run fails at once with the reason).
async fn run_queue(config: &Config) -> crate::run_queue::RunQueue {
    use crate::run_queue::{EngineState, RunQueue};
    let tasks_dir = config.data_dir.join("tasks");
    let network = match config.tasks.network.as_str() {
        "host" => wharf_agent::Network::Host,
        "none" => wharf_agent::Network::None,
        other => wharf_agent::Network::Named(other.to_string()),
    };
    let storage = config
        .tasks
        .storage
        .as_ref()
        .map(|root| wharf_agent::StorageDirs { root: root.clone(), run_root: root.join("run") });
    // With the self-signed CA, runs trust it for this deployment's registries (buildah's and
    // podman's --cert-dir holds only that CA); with operator certificates, the system's roots.
    let cert_dir = match &config.tls {
        crate::config::TlsMode::SelfSigned => {
            let dir = tasks_dir.join("certs");
            let ca = crate::tls::ca_cert_path(&config.data_dir);
            match std::fs::create_dir_all(&dir).and_then(|()| std::fs::copy(&ca, dir.join("wharf-ca.crt"))) {
                Ok(_) => Some(dir),
                Err(e) => {
                    tracing::warn!(error = %e, ca = %ca.display(), "task runs will not trust the local CA");
                    None
                }
            }
        }
        _ => None,
    };
    let engine_config = wharf_agent::EngineConfig {
        buildah: "buildah".into(),
        podman: "podman".into(),
        work_root: tasks_dir.join("work"),
        storage,
        network,
        insecure_registries: config.tasks.insecure_registries.clone(),
        cert_dir,
        max_parallel_steps: config.tasks.runs.max(2),
        pull_always: true,
    };
    let engine = match wharf_agent::Engine::new(engine_config) {
        Err(e) => {
            EngineState::Unavailable(format!("the task engine could not be set up in {}: {e}", tasks_dir.display()))
        }
        Ok(engine) => match engine.probe().await {
            wharf_agent::Availability::Ready { buildah, podman } => {
                tracing::info!(%buildah, %podman, runs_at_once = config.tasks.runs, network = %config.tasks.network, "tasks are available");
                EngineState::Ready(Arc::new(engine))
            }
            wharf_agent::Availability::Missing { message } => EngineState::Unavailable(message),
        },
    };
    if let EngineState::Unavailable(why) = &engine {
        tracing::warn!("tasks are not available: {why}");
    }
    RunQueue::new(engine, config.tasks.runs, tasks_dir.join("logs"))
}

const SECRET_KEY: &str = "deployment.secret_key";
const BOOTSTRAPPED_KEY: &str = "deployment.bootstrapped";
/// The Owner role's id (Azure's built-in GUID).
pub const OWNER_ROLE_ID: &str = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
/// "Container Registry Data Importer and Data Reader" (Azure's built-in GUID).
pub const DATA_READER_ROLE_ID: &str = "577a9874-89fd-4f24-9dbd-b5034d0ad23a";
pub const BOOTSTRAP_ADMIN_UPN: &str = "admin@wharf.local";

/// The URL clients reach the public listener at, as written into bootstrap credentials and
/// token issuers.
fn server_url(config: &Config, tls: bool, port: u16) -> String {
    let scheme = if tls { "https" } else { "http" };
    let ip = config.listen.ip();
    let host = if ip.is_unspecified() {
        "127.0.0.1".to_string()
    } else if ip.is_ipv6() {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    format!("{scheme}://{host}:{port}")
}

/// A new deployment's directory: the bootstrap administrator (Owner at the subscription) with
/// credentials written once to `bootstrap-credentials.json`, and the built-in service
/// principals of trusted services.
async fn bootstrap_directory(state: &AppState, server_url: &str) -> anyhow::Result<()> {
    use crate::model::directory;
    let password = wharf_identity::secret::generate_password();
    let admin = match directory::find_user_by_upn(&*state.meta, BOOTSTRAP_ADMIN_UPN).await? {
        Some(u) => u,
        None => {
            directory::create_user(&*state.meta, BOOTSTRAP_ADMIN_UPN, "Wharf administrator", password.expose()).await?
        }
    };
    subscription_assignment(
        state,
        &admin.id,
        wharf_authz::AssignmentPrincipalType::User,
        OWNER_ROLE_ID,
        "Bootstrap administrator of this Wharf deployment",
        None,
    )
    .await?;
    // Trusted services that the user configures no identity or role for: their built-in
    // principals hold a read grant on every registry of the subscription, shown as system
    // assignments. "Container Registry Data Importer and Data Reader" counts in both
    // role-assignment modes.
    for (name, builtin) in
        [("Microsoft Defender for Containers", "defender-scanner"), ("Azure Container Registry Import", "acr-import")]
    {
        let sp = directory::create_sp(&*state.meta, name, Some(builtin)).await?;
        let description = format!("System assignment: {name} reads every registry (trusted service)");
        subscription_assignment(
            state,
            &sp.id,
            wharf_authz::AssignmentPrincipalType::ServicePrincipal,
            DATA_READER_ROLE_ID,
            &description,
            Some("System"),
        )
        .await?;
    }
    let creds = serde_json::json!({
        "server": server_url,
        "tenant": state.tenant_id,
        "subscription": state.subscription_id,
        "username": BOOTSTRAP_ADMIN_UPN,
        "password": password.expose(),
    });
    let path = state.config.data_dir.join("bootstrap-credentials.json");
    crate::tls::write_private(&path, &serde_json::to_string_pretty(&creds)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("A new Wharf deployment was initialised. Its administrator's credentials are in {}.", path.display());
    println!(
        "Sign the CLI in with:\n  wharf login --server {server_url} --username {BOOTSTRAP_ADMIN_UPN} --password '{}'",
        password.expose()
    );
    Ok(())
}

/// Records a role assignment of `role_guid` at the subscription scope.
async fn subscription_assignment(
    state: &AppState,
    principal: &str,
    principal_type: wharf_authz::AssignmentPrincipalType,
    role_guid: &str,
    description: &str,
    created_by: Option<&str>,
) -> anyhow::Result<()> {
    let scope = wharf_authz::Scope::subscription(&state.subscription_id)?;
    let role_id = format!("{}/providers/Microsoft.Authorization/roleDefinitions/{role_guid}", scope.as_str());
    let now = chrono::Utc::now();
    let mut a = wharf_authz::RoleAssignment::new(
        &uuid::Uuid::new_v4().to_string(),
        scope,
        &role_id,
        wharf_authz::PrincipalId::new(principal)?,
        principal_type,
    )?
    .with_description(description);
    a.created_on = Some(now);
    a.updated_on = Some(now);
    a.created_by = created_by.map(str::to_string);
    state.meta.resource_put(&crate::model::assignments::assignment_record(&a)).await?;
    Ok(())
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

/// Upload sessions whose bytes or records were lost in a crash are dropped, and commits a crash
/// interrupted are completed, so that the two stores agree again (`wharf_storage::maintenance`).
async fn reconcile_uploads(meta: &dyn MetadataStore, blobs: &dyn BlobStore) -> anyhow::Result<()> {
    wharf_storage::maintenance::reconcile_uploads(meta, blobs).await?;
    Ok(())
}
