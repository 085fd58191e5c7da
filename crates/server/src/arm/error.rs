//! The management plane's wire errors: ARM's `{"error":{"code","message"}}` with its status,
//! and the one conversion of every error below the plane into it — authentication failures,
//! the authorization crate's scope, role and assignment errors, and storage failures (a store
//! that is unavailable is a 503 the client retries; anything else a 500 whose detail stays in
//! the log).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use wharf_arm::ArmError;
use wharf_authz::error::{AssignmentError, RoleDefinitionError, ScopeError};
use wharf_storage::StorageError;

use crate::auth::management::AuthError;

/// The response of an ARM error.
pub fn response(e: &ArmError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], e.body().to_string()).into_response()
}

/// A storage failure while doing `context`.
pub fn storage(context: &str, e: StorageError) -> ArmError {
    match e {
        StorageError::Unavailable(detail) => {
            tracing::error!(context, error = %detail, "management store unavailable");
            ArmError::new(503, "ServiceUnavailable", format!("The store is unavailable while {context}; retry later."))
        }
        e => {
            tracing::error!(context, error = %e, "management storage failure");
            ArmError::internal(format!("Internal error while {context}."))
        }
    }
}

/// ARM's 401 for a refused bearer token (the challenge header is the plane's).
pub fn unauthenticated(e: AuthError) -> ArmError {
    match e {
        AuthError::Missing => {
            ArmError::new(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        }
        AuthError::Malformed => ArmError::new(
            401,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        ),
        AuthError::Invalid => ArmError::new(401, "InvalidAuthenticationToken", "The access token is invalid."),
    }
}

pub fn from_scope(e: ScopeError) -> ArmError {
    ArmError::bad_request(e.code(), e.to_string())
}

pub fn from_role_definition(e: RoleDefinitionError) -> ArmError {
    let status = match e {
        RoleDefinitionError::NameExists(_) => 409,
        _ => 400,
    };
    ArmError::new(status, e.code(), e.to_string())
}

pub fn from_assignment(e: AssignmentError) -> ArmError {
    let status = match e {
        AssignmentError::AlreadyExists { .. } => 409,
        _ => 400,
    };
    ArmError::new(status, e.code(), e.to_string())
}
