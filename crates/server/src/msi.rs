//! The App-Service-style managed-identity endpoint (`GET /msi/token?resource=…&api-version=2019-08-01`
//! with `X-IDENTITY-HEADER`), through which a workload of a hosting resource gets tokens for
//! that resource's identities.
//!
//! The header value names the hosting resource (see `model::identities`). Without a selector
//! the token is for the resource's system-assigned identity (or, when it has none and exactly
//! one user-assigned identity, for that one, as Azure's instance metadata service does);
//! `client_id`, `principal_id` or `mi_res_id` select a user-assigned identity attached to that
//! resource.
//! Must never: say more than the caller may know: reasons for refusals are logged; the response
//! says only what was wrong with the request.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wharf_identity::{DirectoryPrincipal, HostResource, ManagedIdentityRef};
use wharf_vocab::ManagedIdentityKind;

use crate::http::Query;
use crate::model::identities;
use crate::state::AppState;

/// The header a workload presents.
pub const IDENTITY_HEADER: &str = "x-identity-header";
/// The App Service protocol version served.
pub const API_VERSION: &str = "2019-08-01";

/// An error in App Service's shape; the status follows from the kind.
#[derive(Debug)]
enum MsiError {
    /// The identity header is missing, unknown, rotated, or its resource deleted.
    Unauthorized,
    BadRequest(String),
    MethodNotAllowed,
    Internal,
}

impl MsiError {
    fn internal(e: impl std::fmt::Display) -> MsiError {
        tracing::error!(error = %e, "managed identity endpoint failure");
        MsiError::Internal
    }

    fn status(&self) -> StatusCode {
        match self {
            MsiError::Unauthorized => StatusCode::UNAUTHORIZED,
            MsiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            MsiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            MsiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> &str {
        match self {
            MsiError::Unauthorized => "The X-IDENTITY-HEADER header is missing or invalid.",
            MsiError::BadRequest(m) => m,
            MsiError::MethodNotAllowed => "Use GET.",
            MsiError::Internal => "An internal error occurred while issuing the token.",
        }
    }
}

impl IntoResponse for MsiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = json!({
            "statusCode": status.as_u16(),
            "message": self.message(),
            "correlationId": uuid::Uuid::new_v4().to_string(),
        });
        (status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
    }
}

/// The identity a request selects.
enum Selector {
    Default,
    ClientId(String),
    PrincipalId(String),
    ResourceId(String),
}

pub async fn handle(state: &AppState, req: Request<Body>) -> Response {
    match serve(state, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn selector(query: &Query) -> Result<Selector, MsiError> {
    let given = |keys: &[&str]| keys.iter().find_map(|k| query.get(k)).filter(|v| !v.is_empty()).map(str::to_string);
    let selectors: Vec<Selector> = [
        given(&["client_id"]).map(Selector::ClientId),
        given(&["principal_id", "object_id"]).map(Selector::PrincipalId),
        given(&["mi_res_id", "msi_res_id"]).map(Selector::ResourceId),
    ]
    .into_iter()
    .flatten()
    .collect();
    if selectors.len() > 1 {
        return Err(MsiError::BadRequest("Only one of client_id, principal_id and mi_res_id may be given.".into()));
    }
    Ok(selectors.into_iter().next().unwrap_or(Selector::Default))
}

async fn serve(state: &AppState, req: Request<Body>) -> Result<Response, MsiError> {
    if req.method() != Method::GET {
        return Err(MsiError::MethodNotAllowed);
    }
    let query = Query::parse(req.uri().query());
    let header = req.headers().get(IDENTITY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_string();
    if header.is_empty() {
        tracing::warn!("managed identity endpoint: request without X-IDENTITY-HEADER");
        return Err(MsiError::Unauthorized);
    }
    let Some(host) =
        identities::host_by_header(&*state.meta, &state.secret_key, &header).await.map_err(MsiError::internal)?
    else {
        tracing::warn!(
            "managed identity endpoint: the X-IDENTITY-HEADER value belongs to no hosting resource (unknown, rotated by a later workload-env call, or its resource was deleted)"
        );
        return Err(MsiError::Unauthorized);
    };
    let host_id = host.record.id.clone();
    match query.get("api-version") {
        Some(API_VERSION) => {}
        other => {
            tracing::warn!(resource = %host_id, api_version = ?other, "managed identity endpoint: unsupported api-version");
            return Err(MsiError::BadRequest(format!("The api-version must be {API_VERSION}.")));
        }
    }
    let Some(resource) = query.get("resource").filter(|r| !r.trim().is_empty()) else {
        return Err(MsiError::BadRequest("The 'resource' query parameter is required.".into()));
    };
    let audience = state.identity.resource_audience(resource).map_err(|e| {
        tracing::warn!(resource = %host_id, requested = %resource, reason = %e, "managed identity endpoint: unknown resource");
        MsiError::BadRequest(format!(
            "The resource '{resource}' is not served by this deployment. Use https://containerregistry.azure.net or https://management.azure.com/."
        ))
    })?;
    let selector = selector(&query)?;
    let host_resource = HostResource::from_id(&host_id)
        .ok_or_else(|| MsiError::internal(format!("hosting resource id {host_id} has no resource type")))?;

    // The user-assigned identities attached to this resource, as they exist now.
    let mut attached = vec![];
    for id in host.user_assigned_ids() {
        match identities::user_assigned(&*state.meta, &id).await.map_err(MsiError::internal)? {
            Some(ua) => attached.push(ua.object()),
            None => {
                tracing::info!(resource = %host_id, identity = %id, "an attached user-assigned identity no longer exists")
            }
        }
    }
    let system = host.system_object();
    let chosen = match &selector {
        Selector::Default => match (&system, attached.as_slice()) {
            (Some(s), _) => Some(s.clone()),
            (None, [only]) => Some(only.clone()),
            (None, _) => None,
        },
        Selector::ClientId(v) => {
            attached.iter().chain(system.iter()).find(|m| m.client_id.eq_ignore_ascii_case(v)).cloned()
        }
        Selector::PrincipalId(v) => {
            attached.iter().chain(system.iter()).find(|m| m.object_id.eq_ignore_ascii_case(v)).cloned()
        }
        Selector::ResourceId(v) => attached.iter().find(|m| m.resource_id.eq_ignore_ascii_case(v)).cloned(),
    };
    let Some(mi) = chosen else {
        let message = match selector {
            Selector::Default if attached.is_empty() => {
                "The resource has no managed identity. Enable one with 'wharf resource identity assign'."
            }
            Selector::Default => {
                "The resource has no system-assigned identity and several user-assigned ones: select one with client_id, principal_id or mi_res_id."
            }
            _ => "The requested identity is not assigned to this resource.",
        };
        tracing::warn!(resource = %host_id, "managed identity endpoint: {message}");
        return Err(MsiError::BadRequest(message.into()));
    };
    let identity = match mi.kind {
        ManagedIdentityKind::SystemAssigned => ManagedIdentityRef::SystemAssigned,
        ManagedIdentityKind::UserAssigned => ManagedIdentityRef::UserAssigned { resource_id: mi.resource_id.clone() },
    };
    let principal = DirectoryPrincipal::ManagedIdentity {
        object_id: mi.object_id.clone(),
        client_id: mi.client_id.clone(),
        identity,
        host: host_resource,
    };
    let issued = {
        let keys = state.identity.keys.read().expect("keys lock");
        state.identity.directory.issue(&keys, &principal, audience, chrono::Utc::now())
    }
    .map_err(MsiError::internal)?;
    tracing::info!(resource = %host_id, principal = %mi.object_id, kind = ?mi.kind, "issued a managed identity token");
    let body = json!({
        "access_token": issued.token,
        "expires_on": issued.expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": mi.client_id,
    });
    Ok((
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json; charset=utf-8"), (http::header::CACHE_CONTROL, "no-store")],
        body.to_string(),
    )
        .into_response())
}
