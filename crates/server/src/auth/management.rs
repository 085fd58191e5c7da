//! Bearer-token authentication of management (ARM) and Graph calls.
//!
//! Every refused token gets the same answer: the error never says which check failed
//! (signature, algorithm, key id, expiry, audience, issuer, revocation …), so it is no oracle
//! for someone crafting tokens. ARM itself answers an expired token with
//! `ExpiredAuthenticationToken`; Wharf does not, because that answer is given only after the
//! signature verified and so would confirm that a token is genuine. Clients renew tokens from
//! `expires_in`, not from this code. The reason is logged.
//! Must never: render a wire error (each plane renders [`AuthError`] in its own shape).

use axum::http::HeaderMap;
use wharf_identity::{Audience, DirectoryClaims};

use crate::http::Authorization;
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

    /// How messages name the caller: its UPN, app id, or object id.
    pub fn display(&self) -> String {
        let c = &self.claims;
        c.upn.clone().or_else(|| c.appid.clone()).unwrap_or_else(|| c.oid.clone())
    }
}

/// Why a management call is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthError {
    /// No `Authorization` header.
    Missing,
    /// Not `Bearer` followed by visible ASCII.
    Malformed,
    /// A bearer token that does not validate for the audience (the reason is in the log).
    Invalid,
}

/// Validates `Authorization: Bearer` for `audience`.
pub fn authenticate(state: &AppState, headers: &HeaderMap, audience: Audience) -> Result<ManagementCaller, AuthError> {
    let token = match crate::http::authorization(headers) {
        Authorization::None => return Err(AuthError::Missing),
        Authorization::Bearer(t) => t,
        Authorization::Basic(_) | Authorization::Other | Authorization::Unreadable => {
            tracing::info!(audience = ?audience, "management call refused: the Authorization header is not 'Bearer' followed by visible ASCII");
            return Err(AuthError::Malformed);
        }
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
            Err(AuthError::Invalid)
        }
    }
}
