//! Which registry and repository a data-plane request addresses, resolved once per request.
//!
//! Host style (ACR's): the Host header is `{registry}.{domain}[:port]`, and the path's name is
//! the repository. Path style, for any other host: the first name segment is the registry.
//! Everything after this module sees the repository name inside its registry.

use std::sync::Arc;

use wharf_oci::RepositoryName;

use crate::http::oci::{OciError, OciResult};
use crate::state::{AppState, HostRegistry, RegistryInfo};

/// How the request names its registry.
#[derive(Debug, Clone)]
pub enum Style {
    Host(Arc<RegistryInfo>),
    Path,
}

/// A resolved repository.
#[derive(Debug, Clone)]
pub struct Target {
    pub registry: Arc<RegistryInfo>,
    pub repo: RepositoryName,
    /// `"{registry}/"` in path style: prefixed to names the client sees.
    pub prefix: String,
}

impl Target {
    /// The name as the client spells it (for `Location`, tag lists, …).
    pub fn client_name(&self) -> String {
        format!("{}{}", self.prefix, self.repo)
    }
}

/// What a request addresses, resolved before authentication.
#[derive(Debug, Clone)]
pub enum Addressed {
    /// A repository of a registry.
    Repository(Target),
    /// A registry as a whole: host-style ping or catalog.
    Registry(Arc<RegistryInfo>),
    /// No registry: path-style ping or catalog, which span the deployment.
    Deployment,
}

impl Addressed {
    pub fn registry(&self) -> Option<&Arc<RegistryInfo>> {
        match self {
            Addressed::Repository(t) => Some(&t.registry),
            Addressed::Registry(r) => Some(r),
            Addressed::Deployment => None,
        }
    }

    pub fn repository(&self) -> Option<&Target> {
        match self {
            Addressed::Repository(t) => Some(t),
            _ => None,
        }
    }
}

/// Decides the style from the Host header. A login server's shape naming no registry is a 404.
pub async fn style(state: &AppState, host: Option<&str>) -> OciResult<Style> {
    let Some(host) = host else { return Ok(Style::Path) };
    match state.registry_of_host(host).await {
        Ok(HostRegistry::Registry(info)) => Ok(Style::Host(info)),
        Ok(HostRegistry::Unknown(label)) => Err(OciError::registry_unknown(&label)),
        Ok(HostRegistry::NotALoginServer) => Ok(Style::Path),
        Err(e) => Err(OciError::from_storage("looking up the registry", e)),
    }
}

/// What `name` (as the client spells it; `None` for endpoints without a repository) addresses
/// under `style`.
pub async fn resolve(state: &AppState, style: &Style, name: Option<&str>) -> OciResult<Addressed> {
    let Some(name) = name else {
        return Ok(match style {
            Style::Host(info) => Addressed::Registry(info.clone()),
            Style::Path => Addressed::Deployment,
        });
    };
    resolve_repository(state, style, name).await.map(Addressed::Repository)
}

/// Resolves a client-visible repository name under the given style (also for a mount's
/// `from`).
pub async fn resolve_repository(state: &AppState, style: &Style, name: &str) -> OciResult<Target> {
    let (registry, repo, prefix) = match style {
        Style::Host(info) => (info.clone(), name, String::new()),
        Style::Path => {
            let (reg, repo) = name.split_once('/').ok_or_else(|| {
                OciError::name_invalid(format!(
                    "'{name}' names no repository: on a host that is not a login server, \
                     names start with the registry (e.g. myregistry/backend/nginx)"
                ))
            })?;
            let info = match state.registry(reg).await {
                Ok(Some(info)) => info,
                Ok(None) => return Err(OciError::registry_unknown(reg)),
                Err(e) => return Err(OciError::from_storage("looking up the registry", e)),
            };
            (info, repo, format!("{reg}/"))
        }
    };
    let repo = RepositoryName::parse(repo).map_err(|e| OciError::name_invalid(e.to_string()))?;
    Ok(Target { registry, repo, prefix })
}
