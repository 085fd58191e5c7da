//! Which registry and repository a data-plane request addresses.
//!
//! Host style (ACR's): the Host header is `{registry}.{domain}[:port]`, and the path's name is
//! the repository. Path style, for any other host: the first name segment is the registry.
//! Everything after this module sees the repository name inside its registry.

use std::sync::Arc;

use axum::http::StatusCode;
use serde_json::json;
use wharf_oci::RepositoryName;

use super::error::{Code, OciError, OciResult};
use crate::state::{AppState, RegistryInfo};

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

/// Decides the style from the Host header.
pub async fn style(state: &AppState, host: Option<&str>) -> OciResult<Style> {
    let Some(host) = host else { return Ok(Style::Path) };
    let hostname = strip_port(host).to_ascii_lowercase();
    let suffix = format!(".{}", state.config.domain);
    let Some(label) = hostname.strip_suffix(&suffix) else { return Ok(Style::Path) };
    if label.is_empty() || label.contains('.') {
        return Ok(Style::Path);
    }
    match state.registry(label).await {
        Ok(Some(info)) => Ok(Style::Host(info)),
        Ok(None) => Err(registry_unknown(label)),
        Err(e) => Err(OciError::internal("looking up the registry", e)),
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split(']').next().map(|h| h.trim_start_matches('[')).unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

pub fn registry_unknown(name: &str) -> OciError {
    OciError::new(StatusCode::NOT_FOUND, Code::NameUnknown, format!("registry '{name}' does not exist"))
        .detail(json!({"registry": name}))
}

/// Resolves a client-visible name under the given style.
pub async fn resolve(state: &AppState, style: &Style, name: &str) -> OciResult<Target> {
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
                Ok(None) => return Err(registry_unknown(reg)),
                Err(e) => return Err(OciError::internal("looking up the registry", e)),
            };
            (info, repo, format!("{reg}/"))
        }
    };
    let repo = RepositoryName::parse(repo).map_err(|e| OciError::name_invalid(e.to_string()))?;
    Ok(Target { registry, repo, prefix })
}

#[cfg(test)]
mod tests {
    use super::strip_port;

    #[test]
    fn strips_ports_and_brackets() {
        assert_eq!(strip_port("a.localhost:5000"), "a.localhost");
        assert_eq!(strip_port("a.localhost"), "a.localhost");
        assert_eq!(strip_port("[::1]:5000"), "::1");
        assert_eq!(strip_port("127.0.0.1:80"), "127.0.0.1");
    }
}
