//! In-process test support: a [`TestApp`] that runs Wharf's router over its embedded stores in a
//! temporary data directory, with the metadata store wrapped in a [`FaultyStore`] that a test
//! can tell to fail, and requests sent straight to the router (no sockets).
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use chrono::{DateTime, Utc};
use http::{Method, Request, StatusCode};
use serde_json::Value;
use tower::ServiceExt;
use wharf_oci::{Digest, Reference, RepositoryName, Tag};
use wharf_storage::*;

/// What the wrapped store does with a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Pass every call through.
    None,
    /// Fail every call as a store that is briefly unavailable.
    Unavailable,
    /// Fail every call with a database error (whose text must never reach a client).
    Broken,
    /// Fail calls that change something; reads pass.
    Writes,
}

pub const SECRET_ERROR_TEXT: &str = "disk I/O error at page 4711 of /secret/path";

/// A metadata store that fails on demand.
pub struct FaultyStore {
    inner: Arc<dyn MetadataStore>,
    fault: Mutex<Fault>,
}

impl FaultyStore {
    pub fn set(&self, fault: Fault) {
        *self.fault.lock().unwrap() = fault;
    }

    fn check(&self, write: bool) -> Result<()> {
        match *self.fault.lock().unwrap() {
            Fault::None => Ok(()),
            Fault::Writes if !write => Ok(()),
            Fault::Unavailable => Err(StorageError::Unavailable(format!("pool exhausted ({SECRET_ERROR_TEXT})"))),
            Fault::Broken | Fault::Writes => Err(StorageError::Database(SECRET_ERROR_TEXT.into())),
        }
    }
}

/// Implements the store by delegating each method to the inner one after asking the fault
/// switch; `w` marks writes. The whole impl is generated so that `async_trait` sees the methods.
macro_rules! delegate {
    ($( $kind:ident fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty; )*) => {
        #[async_trait]
        impl MetadataStore for FaultyStore {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.check(delegate!(@write $kind))?;
                    self.inner.$name($($arg),*).await
                }
            )*
        }
    };
    (@write r) => { false };
    (@write w) => { true };
}

delegate! {
        r fn setting_get(&self, key: &str) -> Result<Option<String>>;
        w fn setting_put(&self, key: &str, value: &str) -> Result<()>;
        w fn resource_put(&self, resource: &ResourceRecord) -> Result<bool>;
        w fn resource_insert_unique_name(&self, resource: &ResourceRecord) -> Result<()>;
        r fn resource_get(&self, id: &str) -> Result<Option<ResourceRecord>>;
        r fn resource_find_by_name(&self, resource_type: &str, name: &str) -> Result<Option<ResourceRecord>>;
        r fn resource_list(&self, filter: &ResourceFilter) -> Result<Vec<ResourceRecord>>;
        w fn resource_delete_tree(&self, id: &str) -> Result<Vec<ResourceRecord>>;
        r fn repository_list(&self, registry: &RegistryKey, last: Option<&str>, n: usize) -> Result<Vec<String>>;
        r fn repository_get(&self, registry: &RegistryKey, repo: &RepositoryName) -> Result<Option<RepositoryRecord>>;
        w fn repository_set_attributes(&self, registry: &RegistryKey, repo: &RepositoryName, attributes: &ChangeableAttributes) -> Result<bool>;
        w fn repository_delete(&self, registry: &RegistryKey, repo: &RepositoryName) -> Result<bool>;
        w fn blob_record(&self, digest: &Digest, size: u64) -> Result<()>;
        w fn blob_link(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest, size: u64) -> Result<()>;
        r fn blob_visible(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest) -> Result<Option<u64>>;
        w fn blob_unlink(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest) -> Result<bool>;
        w fn blob_collect_unreferenced(&self, older_than: i64) -> Result<Vec<Digest>>;
        r fn blob_records(&self, after: Option<&Digest>, limit: usize) -> Result<Vec<BlobRecord>>;
        r fn blob_records_of(&self, digests: &[Digest]) -> Result<Vec<BlobRecord>>;
        r fn blob_references(&self, digest: &Digest) -> Result<BlobReferences>;
        w fn blob_forget(&self, digest: &Digest) -> Result<bool>;
        r fn blob_references_unrecorded(&self) -> Result<Vec<UnrecordedReference>>;
        w fn manifest_put(&self, registry: &RegistryKey, repo: &RepositoryName, manifest: &NewManifest) -> Result<ManifestPutOutcome>;
        r fn manifest_read(&self, registry: &RegistryKey, repo: &RepositoryName, reference: &Reference, with_bytes: bool) -> Result<ManifestRead>;
        w fn manifest_delete(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest) -> Result<Option<Vec<String>>>;
        r fn manifest_list(&self, registry: &RegistryKey, repo: &RepositoryName, page: &Page) -> Result<Vec<ManifestMeta>>;
        w fn manifest_set_attributes(&self, registry: &RegistryKey, repo: &RepositoryName, digest: &Digest, attributes: &ChangeableAttributes) -> Result<bool>;
        r fn tag_list(&self, registry: &RegistryKey, repo: &RepositoryName, page: &Page) -> Result<Vec<TagRecord>>;
        r fn tag_get(&self, registry: &RegistryKey, repo: &RepositoryName, tag: &Tag) -> Result<Option<TagRecord>>;
        w fn tag_set_attributes(&self, registry: &RegistryKey, repo: &RepositoryName, tag: &Tag, attributes: &ChangeableAttributes) -> Result<bool>;
        w fn tag_delete(&self, registry: &RegistryKey, repo: &RepositoryName, tag: &Tag) -> Result<bool>;
        r fn referrers(&self, registry: &RegistryKey, repo: &RepositoryName, subject: &Digest, artifact_type: Option<&str>) -> Result<Vec<ManifestMeta>>;
        w fn registry_purge(&self, registry: &RegistryKey) -> Result<Vec<UploadId>>;
        r fn registry_keys_with_content(&self) -> Result<Vec<RegistryKey>>;
        r fn registry_size(&self, registry: &RegistryKey) -> Result<u64>;
        w fn upload_put(&self, upload: &UploadRecord, limits: &UploadLimits) -> Result<()>;
        r fn upload_get(&self, id: &UploadId) -> Result<Option<UploadRecord>>;
        w fn upload_delete(&self, id: &UploadId) -> Result<()>;
        r fn upload_list(&self) -> Result<Vec<UploadRecord>>;
        w fn upload_touch(&self, id: &UploadId, at: DateTime<Utc>) -> Result<()>;
        r fn upload_list_idle(&self, before: DateTime<Utc>) -> Result<Vec<UploadRecord>>;
        w fn upload_delete_if_idle(&self, id: &UploadId, before: DateTime<Utc>) -> Result<bool>;
        w fn upload_complete(&self, upload: &UploadRecord, digest: &Digest, size: u64) -> Result<bool>;
        w fn run_create(&self, run: &NewRun, now: DateTime<Utc>) -> Result<RunRecord>;
        r fn run_get(&self, registry: &RegistryKey, run_id: &str) -> Result<Option<RunRecord>>;
        r fn run_list(&self, registry: &RegistryKey, filter: &RunFilter) -> Result<Vec<RunRecord>>;
        w fn run_update(&self, run: &RunRecord, expected_status: &str, now: DateTime<Utc>) -> Result<bool>;
        w fn run_claim(&self, agent: &str, lease_until: DateTime<Utc>, now: DateTime<Utc>) -> Result<Option<RunRecord>>;
        w fn run_renew(&self, registry: &RegistryKey, run_id: &str, agent: &str, lease_until: DateTime<Utc>) -> Result<bool>;
        r fn run_expired_leases(&self, now: DateTime<Utc>) -> Result<Vec<RunRecord>>;
        r fn runs_in_progress(&self) -> Result<Vec<RunRecord>>;
        r fn run_count_queued_before(&self, run: &RunRecord) -> Result<u64>;
        r fn runs_finished_before(&self, before: DateTime<Utc>, after: Option<&RunRecord>, limit: usize) -> Result<Vec<RunRecord>>;
        w fn run_delete(&self, run: &RunRecord) -> Result<bool>;
        w fn run_create_for_tick(&self, run: &NewRun, tick: &TimerTick, now: DateTime<Utc>) -> Result<Option<RunRecord>>;
        w fn timer_ticks_sweep(&self, before: DateTime<Utc>) -> Result<u64>;
        w fn task_images_set(&self, task: &str, task_registry: &RegistryKey, images: &[TaskImage], now: DateTime<Utc>) -> Result<()>;
        r fn task_images_using(&self, registry: &RegistryKey, repository: &str, tag: &str) -> Result<Vec<TaskImageRow>>;
        r fn task_images_of(&self, task: &str) -> Result<Vec<TaskImageRow>>;
        w fn run_create_for_image_update(&self, run: &NewRun, now: DateTime<Utc>) -> Result<Option<RunRecord>>;
        r fn integrity_check(&self) -> Result<Vec<String>>;
        r fn counts(&self) -> Result<MetadataCounts>;
}

/// One answer of the router.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
    }
}

/// Wharf's router over its embedded stores, in process.
pub struct TestApp {
    _dir: tempfile::TempDir,
    pub state: Arc<wharf_server::AppState>,
    router: axum::Router,
    pub faults: Arc<FaultyStore>,
    /// A management (ARM) token of the bootstrap administrator, and a Graph one.
    pub arm_token: String,
    pub graph_token: String,
    /// The administrator's Basic credentials.
    pub admin: (String, String),
}

impl TestApp {
    pub async fn start() -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let args = wharf_server::ServeArgs { data_dir: Some(data_dir.clone()), ..Default::default() };
        let config = args.resolve().unwrap();
        let mut stores = wharf_server::bootstrap::Stores::open_embedded(&data_dir).unwrap();
        let faults = Arc::new(FaultyStore { inner: stores.meta.clone(), fault: Mutex::new(Fault::None) });
        stores.meta = faults.clone();
        let state = wharf_server::bootstrap::open_with(config, 5000, stores).await.unwrap();
        let router = wharf_server::router(state.clone());
        let creds: Value =
            serde_json::from_str(&std::fs::read_to_string(data_dir.join("bootstrap-credentials.json")).unwrap())
                .unwrap();
        let admin = (creds["username"].as_str().unwrap().to_string(), creds["password"].as_str().unwrap().to_string());
        let mut app =
            TestApp { _dir: dir, state, router, faults, arm_token: String::new(), graph_token: String::new(), admin };
        app.arm_token = app.user_token("https://management.core.windows.net//.default").await;
        app.graph_token = app.user_token("https://graph.microsoft.com/.default").await;
        app
    }

    async fn user_token(&self, scope: &str) -> String {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "password")
            .append_pair("username", &self.admin.0)
            .append_pair("password", &self.admin.1)
            .append_pair("scope", scope)
            .finish();
        let tenant = self.state.tenant_id.clone();
        let a = self
            .send(
                Request::post(format!("/{tenant}/oauth2/v2.0/token"))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(Body::from(body))
                    .unwrap(),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{a:?}");
        a.json()["access_token"].as_str().unwrap().to_string()
    }

    pub async fn send(&self, req: Request<Body>) -> Answer {
        let resp = self.router.clone().oneshot(req).await.expect("the router answers");
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let bytes = axum::body::to_bytes(resp.into_body(), 16 * 1024 * 1024).await.unwrap();
        Answer { status, content_type, text: String::from_utf8_lossy(&bytes).into_owned() }
    }

    /// A management call with the administrator's token.
    pub async fn arm(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let sep = if path.contains('?') { '&' } else { '?' };
        let req = Request::builder()
            .method(method)
            .uri(format!("{path}{sep}api-version=2023-07-01"))
            .header("authorization", format!("Bearer {}", self.arm_token))
            .header("content-type", "application/json")
            .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
            .unwrap();
        self.send(req).await
    }

    /// A Graph call with the administrator's token.
    pub async fn graph(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let req = Request::builder()
            .method(method)
            .uri(format!("/v1.0/{path}"))
            .header("authorization", format!("Bearer {}", self.graph_token))
            .header("content-type", "application/json")
            .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
            .unwrap();
        self.send(req).await
    }

    /// A data-plane call (path style) with the administrator's Basic credentials.
    pub async fn data(&self, method: Method, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Answer {
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", self.admin.0, self.admin.1));
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "127.0.0.1:5000")
            .header("authorization", format!("Basic {basic}"));
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        self.send(req.body(Body::from(body)).unwrap()).await
    }

    pub fn registry_path(&self, rg: &str, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}",
            self.state.subscription_id
        )
    }
}
