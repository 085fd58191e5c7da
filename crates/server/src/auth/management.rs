//! Bearer-token authentication of management (ARM and Graph) calls.

use axum::http::HeaderMap;
use wharf_arm::ArmError;
use wharf_identity::{Audience, DirectoryClaims};

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

/// Validates `Authorization: Bearer` for `audience`.
///
/// Every refused token gets the same answer, `401 InvalidAuthenticationToken`: the response
/// never says which check failed (signature, algorithm, key id, expiry, audience, issuer,
/// revocation …), so it is no oracle for someone crafting tokens. ARM itself answers an
/// expired token with `ExpiredAuthenticationToken`; Wharf does not, because that answer is
/// given only after the signature verified and so would confirm that a token is genuine.
/// Clients renew tokens from `expires_in`, not from this code. The reason is logged.
pub fn authenticate(state: &AppState, headers: &HeaderMap, audience: Audience) -> Result<ManagementCaller, ArmError> {
    let Some(raw) = headers.get(http::header::AUTHORIZATION) else {
        return Err(unauthenticated(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        ));
    };
    let bearer = raw.to_str().ok().and_then(|v| {
        let scheme = v.get(..7)?;
        scheme.eq_ignore_ascii_case("bearer ").then(|| v[7..].trim())
    });
    let Some(token) = bearer else {
        tracing::info!(audience = ?audience, "management call refused: the Authorization header is not 'Bearer' followed by visible ASCII");
        return Err(unauthenticated(
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is provided in an invalid format.",
        ));
    };
    let id = &state.identity;
    let keys = id.keys.read().expect("keys lock");
    // The management plane also answers to its own endpoint URL, as ARM does.
    let accepted = match audience {
        Audience::Management => &wharf_identity::MANAGEMENT_PLANE[..],
        _ => std::slice::from_ref(&audience),
    };
    match id.directory.validate(&keys, token, accepted, chrono::Utc::now(), &id.cutoffs()) {
        Ok(claims) => Ok(ManagementCaller { claims }),
        Err(e) => {
            match audience {
                Audience::Graph => tracing::warn!(reason = %e, "directory token rejected on the Graph API"),
                _ => {
                    tracing::warn!(reason = %e, audience = ?audience, "directory token rejected on the management API")
                }
            }
            Err(invalid_token())
        }
    }
}

/// The one answer to any refused bearer token.
fn invalid_token() -> ArmError {
    unauthenticated("InvalidAuthenticationToken", "The access token is invalid.")
}
