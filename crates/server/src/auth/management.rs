//! Bearer-token authentication of management (ARM and Graph) calls.

use axum::http::HeaderMap;
use wharf_arm::ArmError;
use wharf_identity::{Audience, DirectoryClaims, TokenError};

use crate::state::AppState;

/// The authenticated caller of a management request.
#[derive(Debug, Clone)]
pub struct ManagementCaller {
    pub claims: DirectoryClaims,
}

impl ManagementCaller {
    pub fn object_id(&self) -> &str {
        &self.claims.oid
    }
}

/// An ARM 401.
pub fn unauthenticated(code: &str, message: &str) -> ArmError {
    ArmError::new(401, code, message)
}

/// Validates `Authorization: Bearer` for `audience`. Reasons are logged, never returned.
pub fn authenticate(state: &AppState, headers: &HeaderMap, audience: Audience) -> Result<ManagementCaller, ArmError> {
    let Some(value) = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) else {
        return Err(unauthenticated("AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."));
    };
    let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) else {
        return Err(unauthenticated(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        ));
    };
    let id = &state.identity;
    let keys = id.keys.read().expect("keys lock");
    match id.directory.validate(&keys, token.trim(), &[audience], chrono::Utc::now(), &id.cutoffs()) {
        Ok(claims) => Ok(ManagementCaller { claims }),
        Err(e) => {
            tracing::warn!(reason = %e, "management token rejected");
            Err(match e {
                TokenError::Expired { .. } => unauthenticated(
                    "ExpiredAuthenticationToken",
                    "The access token expiry UTC time is earlier than current UTC time.",
                ),
                _ => unauthenticated("InvalidAuthenticationToken", "The access token is invalid."),
            })
        }
    }
}
