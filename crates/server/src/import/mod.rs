//! Importing images into a registry (ACR's `importImage`): the operation the management plane
//! starts once it has parsed the request and authorized the importer on the target.
//!
//! Owns, in order: the network judgement of the import service (a trusted service) on the
//! target and the source; the source's resolution (a registry of this deployment by resource id
//! or login server, else another OCI registry); for a source of this deployment, its export
//! policy and whether the caller may pull the repository — decided as that pull would be, in
//! the source's role-assignment mode, conditions included; the checks of the targets before
//! anything is copied (locks, and existing tags under `NoForce`); and the copy itself (`local`:
//! links and manifest records, never bytes). Each import runs in the background and records its
//! outcome in the operation table (`import_operations`).
//! Must never: copy before every check passed, or render a plane's wire format (its errors are
//! [`ImportError`] values the management plane renders).

pub mod image;
pub mod local;
pub mod remote;
pub mod request;

use std::sync::Arc;

use wharf_authz::{DataPlaneTarget, DockerAction};

pub use request::{ImportMode, ImportRequest, SourceRegistry};

use crate::import_operations::OperationStatus;
use crate::state::{AppState, HostRegistry, RegistryInfo};

/// ACR's limit of manifests in one imported image (an index and its children).
pub const MAX_MANIFESTS: usize = 50;

/// Why an import cannot start or did not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The request itself is wrong (answered at once, before any operation starts).
    #[error("{0}")]
    InvalidParameters(String),
    /// The source registry, repository, tag or digest does not exist.
    #[error("{0}")]
    SourceNotFound(String),
    /// The caller may not read the source.
    #[error("{0}")]
    Unauthorized(String),
    /// A registry's network rules keep the import service out, or the source may only be
    /// named by resource id.
    #[error("{0}")]
    NetworkDenied(String),
    /// The source's export policy forbids importing from it.
    #[error("{0}")]
    ExportDisabled(String),
    /// A target tag exists and the mode is `NoForce`.
    #[error("{0}")]
    TagExists(String),
    /// The image has more manifests than an import takes.
    #[error("{0}")]
    TooManyManifests(String),
    /// A target repository or tag is locked (`writeEnabled: false`), or a source one is not
    /// readable (`readEnabled: false`).
    #[error("{0}")]
    Locked(String),
    /// The source registry could not be reached or answered something unusable.
    #[error("{0}")]
    SourceUnreachable(String),
    /// A failure of Wharf's own stores (the detail is in the log).
    #[error("{0}")]
    Internal(String),
}

impl ImportError {
    /// ARM's error code: `InvalidParameters` for a refused request, `ImportImageFailed` for an
    /// import that started and failed (az prints it as `(ImportImageFailed) …`).
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::InvalidParameters(_) => "InvalidParameters",
            _ => "ImportImageFailed",
        }
    }

    /// What a failed operation reports: ARM's code and the message.
    pub fn status(&self) -> OperationStatus {
        OperationStatus::Failed { code: self.code().to_string(), message: format!("Import failed: {self}") }
    }
}

pub(crate) fn storage(context: &str, e: wharf_storage::StorageError) -> ImportError {
    tracing::error!(context, error = %e, "import: storage failure");
    ImportError::Internal(format!("an internal error occurred while {context}; retry the import"))
}

/// The caller that asked for the import, as the management plane authenticated it.
#[derive(Debug, Clone)]
pub struct Importer {
    pub object_id: String,
    /// How messages name the caller (UPN, app id).
    pub display: String,
}

/// Where an import reports its progress (the operation's entry in the table).
#[derive(Clone)]
pub struct Tracker {
    state: Arc<AppState>,
    operation: String,
}

impl Tracker {
    /// A manifest of the image was read.
    pub fn manifest(&self) {
        self.state.imports.progress(&self.operation, |p| p.manifests += 1);
    }

    /// `n` more blob bytes were received.
    pub fn bytes(&self, n: u64) {
        self.state.imports.progress(&self.operation, |p| p.bytes += n);
    }
}

/// Starts importing into `target`; returns the operation id whose status the client polls.
pub fn start(state: Arc<AppState>, importer: Importer, target: Arc<RegistryInfo>, request: ImportRequest) -> String {
    let id = state.imports.start(&target.resource_id);
    let operation = id.clone();
    tokio::spawn(async move {
        let tracker = Tracker { state: state.clone(), operation: operation.clone() };
        let outcome = run(&state, &importer, &target, &request, &tracker).await;
        let status = match &outcome {
            Ok(()) => OperationStatus::Succeeded,
            Err(e) => e.status(),
        };
        match &outcome {
            Ok(()) => {
                tracing::info!(operation, registry = %target.name, source = %request.source_image(), importer = %importer.display, "import succeeded")
            }
            Err(e) => {
                tracing::warn!(operation, registry = %target.name, source = %request.source_image(), importer = %importer.display, error = %e, "import failed")
            }
        }
        state.imports.finish(&operation, status);
    });
    id
}

/// One import, from the network checks to the last tag.
pub async fn run(
    state: &Arc<AppState>,
    importer: &Importer,
    target: &RegistryInfo,
    request: &ImportRequest,
    tracker: &Tracker,
) -> Result<(), ImportError> {
    crate::network::admits_import_service(target.guarded()).map_err(|why| {
        ImportError::NetworkDenied(format!(
            "the target registry '{}' does not let the import service in: {why}",
            target.name
        ))
    })?;
    let source = resolve_source(state, request).await?;
    match source {
        Source::Local(source) => {
            check_local_source(state, importer, &source, request)?;
            local::copy(state, &source, target, request, tracker).await
        }
        Source::Remote(host) => remote::copy(state, &host, target, request, tracker).await,
    }
}

/// Where the source is.
enum Source {
    Local(Arc<RegistryInfo>),
    Remote(String),
}

async fn resolve_source(state: &AppState, request: &ImportRequest) -> Result<Source, ImportError> {
    match &request.source {
        SourceRegistry::ResourceId(id) => {
            let not_found = || ImportError::SourceNotFound(format!("the source registry '{id}' was not found"));
            let name = wharf_arm::ResourceId::parse(id)
                .ok()
                .filter(|r| r.resource_type().is_some_and(|t| t.eq_ignore_ascii_case(wharf_arm::types::REGISTRY)))
                .and_then(|r| r.name().map(str::to_string))
                .ok_or_else(not_found)?;
            let info = state.registry(&name).await.map_err(|e| storage("looking up the source registry", e))?;
            match info {
                Some(info) if info.resource_id.eq_ignore_ascii_case(id) => Ok(Source::Local(info)),
                _ => Err(not_found()),
            }
        }
        SourceRegistry::Uri(host) => {
            match state.registry_of_host(host).await.map_err(|e| storage("looking up the source registry", e))? {
                HostRegistry::Registry(info) => {
                    // ACR reaches a registry without public access only through its resource id.
                    if info.properties.public_network_access.eq_ignore_ascii_case("Disabled") {
                        return Err(ImportError::NetworkDenied(format!(
                            "the source registry '{}' has public network access disabled; name it by its resource id (az acr import --registry <resource id>)",
                            info.name
                        )));
                    }
                    Ok(Source::Local(info))
                }
                HostRegistry::Unknown(label) => Err(ImportError::SourceNotFound(format!(
                    "the source registry '{host}' was not found: this deployment has no registry named '{label}'"
                ))),
                HostRegistry::NotALoginServer => Ok(Source::Remote(host.clone())),
            }
        }
    }
}

/// A source of this deployment: its export policy, the import service's network access, and
/// whether the caller may pull the repository.
fn check_local_source(
    state: &AppState,
    importer: &Importer,
    source: &RegistryInfo,
    request: &ImportRequest,
) -> Result<(), ImportError> {
    if !source.properties.exports_allowed() {
        return Err(ImportError::ExportDisabled(format!(
            "the source registry '{}' does not allow exports (policies.exportPolicy.status is disabled; 'az acr update --allow-exports true' allows them)",
            source.name
        )));
    }
    crate::network::admits_import_service(source.guarded()).map_err(|why| {
        ImportError::NetworkDenied(format!(
            "the source registry '{}' does not let the import service in: {why}",
            source.name
        ))
    })?;
    // Decided as the caller's pull of the repository would be, conditions included. The import
    // service reads from inside the deployment: no private link, no subnet.
    let environment = wharf_authz::EnvironmentAttributes {
        is_private_link: Some(false),
        private_endpoint: None,
        subnet: None,
        utc_now: Some(chrono::Utc::now()),
    };
    let repository = request.repository.as_str();
    let decision = state.authz.data_plane(
        &importer.object_id,
        &source.scope,
        source.properties.role_assignment_mode,
        DataPlaneTarget::Repository(repository.to_string()),
        &[DockerAction::Pull],
        &environment,
    );
    if decision.granted.contains(&DockerAction::Pull) {
        return Ok(());
    }
    tracing::warn!(importer = %importer.display, object_id = %importer.object_id, registry = %source.name, repository,
        explanation = %decision.explain(), "import: the caller may not pull the source repository");
    let needs = if source.properties.role_assignment_mode.is_abac() {
        "a role with the data action 'Microsoft.ContainerRegistry/registries/repositories/content/read' there, such as Container Registry Repository Reader, whose condition admits the repository"
    } else {
        "a role that grants pull there, such as AcrPull or Container Registry Data Importer and Data Reader"
    };
    Err(ImportError::Unauthorized(format!(
        "the client '{}' with object id '{}' may not pull repository '{repository}' of the source registry '{}'; it needs {needs}",
        importer.display, importer.object_id, source.name
    )))
}
