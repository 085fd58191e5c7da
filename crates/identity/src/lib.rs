//! wharf-identity: secrets, the token issuer's signing keys, and the JWTs Wharf issues and
//! validates.
//!
//! Owns: everything cryptographic about identities — secret generation and argon2id hashing,
//! the ES256 key set with rotation and its JWKS, compact JWS encoding and strict verification,
//! the claims of directory (Entra-like) tokens and of registry (ACR) refresh and access tokens,
//! Docker scope strings and `Authorization: Basic` values.
//! Must never: do I/O (HTTP, database, files), read the clock (every function takes `now`), or
//! decide authorization (which roles grant what is `wharf-authz`'s job; this crate only carries
//! the granted `access` entries and checks them).
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use wharf_identity::*;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let now = Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap(); // the server passes its clock
//! let keys = KeySet::generate(now);
//!
//! // 1. A directory token for a service principal, as `/{tenant}/oauth2/v2.0/token` returns it.
//! let directory = DirectoryTokenIssuer::new("https://127.0.0.1:8443", "tenant-guid");
//! let sp = DirectoryPrincipal::ServicePrincipal {
//!     object_id: "sp-object-id".into(), app_id: "sp-app-id".into(), builtin: None,
//! };
//! let audience = parse_scope_to_audience("https://containerregistry.azure.net/.default")?;
//! let aad = directory.issue(&keys, &sp, audience, now)?;
//!
//! // 2. `/oauth2/exchange` validates it ...
//! let claims = directory.validate(
//!     &keys, &aad.token, &[Audience::ContainerRegistry, Audience::Management], now, &NoRevocations,
//! )?;
//!
//! // 3. ... and returns a registry refresh token; `/oauth2/token` turns it into an access token
//! //    with the actions the authorization engine granted.
//! let registry = RegistryTokenIssuer::default();
//! let ctx = RegistryContext {
//!     login_server: "myregistry.localhost:5000".into(),
//!     registry_id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry".into(),
//!     mode: RoleAssignmentMode::AbacRepositoryPermissions,
//!     epoch: "3f1c…".into(),
//! };
//! let refresh = registry.issue_refresh(&keys, &RegistrySubject::from_directory(&claims), &ctx, now)?;
//! let r = registry.validate_refresh(&keys, &refresh.token, &ctx, now, &NoRevocations)?;
//! let granted = vec![AccessEntry::new("repository", "backend/nginx", ["pull"])];
//! let subject = RegistrySubject::from_binding(&r.sub, &r.binding);
//! let access = registry.issue_access(&keys, &subject, &ctx, granted, now)?;
//!
//! // 4. The data plane validates the Bearer token and checks the request's action.
//! let a = registry.validate_access(&keys, &access.token, &ctx, now, &NoRevocations)?;
//! assert!(a.allows("repository", "backend/nginx", "pull"));
//! assert!(!a.allows("repository", "backend/nginx", "push"));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod basic;
pub mod claims;
pub mod error;
pub mod jwt;
pub mod keys;
pub mod registry_token;
pub mod scope;
pub mod secret;

pub use basic::{BasicCredentials, BasicUsername, NULL_GUID_USERNAME, parse_basic_authorization};
pub use claims::{
    Audience, Audiences, DirectoryClaims, DirectoryPrincipal, DirectoryTokenIssuer, HostResource, IdentityType,
    IssuedToken, MANAGEMENT_PLANE, ManagedIdentityKind, ManagedIdentityRef, PrincipalType, parse_resource_to_audience,
    parse_scope_to_audience, resource_type_of,
};
pub use error::{BasicError, KeyError, ScopeError, SecretError, TokenError};
pub use jwt::{NoRevocations, RevocationCutoffs, Validation};
pub use keys::{Jwk, Jwks, KeyInfo, KeySet};
pub use registry_token::{
    AadIdentity, AccessClaims, AccessEntry, RefreshClaims, RegistryBinding, RegistryContext, RegistrySubject,
    RegistryTokenIssuer, RoleAssignmentMode, allows, check_mode,
};
pub use scope::{TokenScope, merge_scopes, parse_scopes, render_scopes};
pub use secret::{FingerprintKey, HashParams, PlainSecret, SecretHash, fingerprint, hash_secret, verify_secret};
