//! The App-Service-style managed-identity endpoint (`GET /msi/token?resource=…&api-version=2019-08-01`
//! with `X-IDENTITY-HEADER`), through which a workload of a hosting resource gets tokens for
//! that resource's identities.
//!
//! The header value names the hosting resource (see `arm::resources::hosts`). Without a
//! selector the token is for the resource's system-assigned identity (or, when it has none and
//! exactly one user-assigned identity, for that one, as Azure's instance metadata service
//! does); `client_id`, `principal_id` or `mi_res_id` select a user-assigned identity attached
//! to that resource. Reasons for refusals are logged; the response says only what the caller
//! may know.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wharf_identity::{DirectoryPrincipal, HostResource, ManagedIdentityRef};

use crate::arm::resources::{hosts, identities};
use crate::state::AppState;

/// The header a workload presents.
pub const IDENTITY_HEADER: &str = "x-identity-header";
/// The App Service protocol version served.
pub const API_VERSION: &str = "2019-08-01";

/// An error in App Service's shape.
fn error(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "statusCode": status.as_u16(),
        "message": message,
        "correlationId": uuid::Uuid::new_v4().to_string(),
    });
    (status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "managed identity endpoint failure");
    error(StatusCode::INTERNAL_SERVER_ERROR, "An internal error occurred while issuing the token.")
}

/// The identity a request selects.
enum Selector {
    Default,
    ClientId(String),
    PrincipalId(String),
    ResourceId(String),
}

pub async fn handle(state: &AppState, req: Request<Body>) -> Response {
    if req.method() != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Use GET.");
    }
    let query: HashMap<String, String> = crate::oci::parse_query(req.uri().query());
    let header = req.headers().get(IDENTITY_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_string();
    if header.is_empty() {
        tracing::warn!("managed identity endpoint: request without X-IDENTITY-HEADER");
        return error(StatusCode::UNAUTHORIZED, "The X-IDENTITY-HEADER header is missing or invalid.");
    }
    let host = match hosts::host_by_header(state, &header).await {
        Ok(Some(h)) => h,
        Ok(None) => {
            tracing::warn!(
                "managed identity endpoint: the X-IDENTITY-HEADER value belongs to no hosting resource (unknown, rotated by a later workload-env call, or its resource was deleted)"
            );
            return error(StatusCode::UNAUTHORIZED, "The X-IDENTITY-HEADER header is missing or invalid.");
        }
        Err(e) => return internal(e),
    };
    let host_id = host.record.id.clone();
    match query.get("api-version").map(String::as_str) {
        Some(API_VERSION) => {}
        other => {
            tracing::warn!(resource = %host_id, api_version = ?other, "managed identity endpoint: unsupported api-version");
            return error(StatusCode::BAD_REQUEST, &format!("The api-version must be {API_VERSION}."));
        }
    }
    let Some(resource) = query.get("resource").filter(|r| !r.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "The 'resource' query parameter is required.");
    };
    let audience = match super::entra::resource_audience(state, resource) {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(resource = %host_id, requested = %resource, reason = %e, "managed identity endpoint: unknown resource");
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "The resource '{resource}' is not served by this deployment. Use https://containerregistry.azure.net or https://management.azure.com/."
                ),
            );
        }
    };
    let selectors: Vec<Selector> = [
        query.get("client_id").map(|v| Selector::ClientId(v.clone())),
        query.get("principal_id").or_else(|| query.get("object_id")).map(|v| Selector::PrincipalId(v.clone())),
        query.get("mi_res_id").or_else(|| query.get("msi_res_id")).map(|v| Selector::ResourceId(v.clone())),
    ]
    .into_iter()
    .flatten()
    .filter(
        |s| !matches!(s, Selector::ClientId(v) | Selector::PrincipalId(v) | Selector::ResourceId(v) if v.is_empty()),
    )
    .collect();
    if selectors.len() > 1 {
        return error(StatusCode::BAD_REQUEST, "Only one of client_id, principal_id and mi_res_id may be given.");
    }
    let selector = selectors.into_iter().next().unwrap_or(Selector::Default);
    let Some(host_resource) = HostResource::from_id(&host_id) else {
        return internal(format!("hosting resource id {host_id} has no resource type"));
    };

    // The user-assigned identities attached to this resource, as they exist now.
    let mut attached = vec![];
    for id in host.user_assigned_ids() {
        match identities::get(state, &id).await {
            Ok(Some(r)) => {
                if let Some(mi) = identities::object_of(&r) {
                    attached.push(mi);
                }
            }
            Ok(None) => {
                tracing::info!(resource = %host_id, identity = %id, "an attached user-assigned identity no longer exists")
            }
            Err(e) => return internal(e),
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
        return error(StatusCode::BAD_REQUEST, message);
    };
    let identity = match mi.kind {
        wharf_identity::ManagedIdentityKind::SystemAssigned => ManagedIdentityRef::SystemAssigned,
        wharf_identity::ManagedIdentityKind::UserAssigned => {
            ManagedIdentityRef::UserAssigned { resource_id: mi.resource_id.clone() }
        }
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
    };
    let issued = match issued {
        Ok(t) => t,
        Err(e) => return internal(e),
    };
    tracing::info!(resource = %host_id, principal = %mi.object_id, kind = ?mi.kind, "issued a managed identity token");
    let body = json!({
        "access_token": issued.token,
        "expires_on": issued.expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": mi.client_id,
    });
    (
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json; charset=utf-8"), (http::header::CACHE_CONTROL, "no-store")],
        body.to_string(),
    )
        .into_response()
}
