//! Registry credentials: who a data-plane or token-endpoint credential stands for.
//!
//! Owns: the registry token context a request is judged in (login server, registry, mode and
//! token epoch), Basic credentials (a service principal's app id and secret, a directory user's
//! UPN and password, the registry's admin user, the null GUID with a refresh token), Bearer
//! access tokens, a user's password check, and the cache of verified credentials (keyed by a
//! SHA-256 of the credential and its context, so argon2 and signature checks are not repeated
//! per request; only identities are cached, never what they may do).
//! Must never: decide what a credential grants (`auth::grant` does), or tell the caller why a
//! credential was refused (the reason goes to the log).

use std::sync::Arc;

use sha2::{Digest as _, Sha256};
use wharf_identity::{
    AccessClaims, Audience, BasicCredentials, BasicUsername, DirectoryPrincipal, RegistryContext, RegistrySubject,
    TokenError,
};
use wharf_storage::{MetadataStore, StorageError};
use wharf_vocab::PrincipalType;

use crate::issuer::CachedAuth;
use crate::model::directory;
use crate::state::{AppState, RegistryInfo};

/// Seconds a verified Basic credential is remembered.
const BASIC_CACHE_SECONDS: i64 = 60;

/// The token context a request to `registry` under the token `service` is judged in. Without
/// a registry (a deployment-level request: ping, path-style catalog) the context names none.
pub fn context(service: &str, registry: Option<&RegistryInfo>) -> RegistryContext {
    RegistryContext {
        login_server: service.to_ascii_lowercase(),
        registry_id: registry.map(|r| r.resource_id.clone()).unwrap_or_default(),
        mode: registry.map(|r| r.properties.role_assignment_mode).unwrap_or_default(),
        epoch: registry.map(|r| r.token_epoch.clone()).unwrap_or_default(),
    }
}

fn cache_key(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().into()
}

/// A Bearer access token presented to `ctx`, verified (or remembered as verified for exactly
/// this context until it expires).
pub fn access_token(state: &AppState, ctx: &RegistryContext, token: &str) -> Result<Arc<AccessClaims>, TokenError> {
    let mode = ctx.mode.to_string();
    let key = cache_key(&["access", &ctx.login_server, &ctx.registry_id, &mode, &ctx.epoch, token]);
    if let Some(CachedAuth::Access(c)) = state.identity.cache_get(&key) {
        return Ok(c);
    }
    let validated = {
        let keys = state.identity.keys.read().expect("keys lock");
        state.identity.registry.validate_access(&keys, token, ctx, chrono::Utc::now(), &state.identity.cutoffs())
    };
    let claims = Arc::new(validated?);
    state.identity.cache_put(key, CachedAuth::Access(claims.clone()), claims.exp);
    Ok(claims)
}

/// Resolves Basic credentials to a subject, or `None` if they are wrong. Reasons are logged.
pub async fn basic_subject(
    state: &AppState,
    registry: Option<&RegistryInfo>,
    ctx: &RegistryContext,
    creds: &BasicCredentials,
) -> Result<Option<RegistrySubject>, StorageError> {
    // The mode and epoch are part of the key: a refresh token remembered before a mode switch
    // or a re-creation of the registry must be validated again (and refused).
    let mode = ctx.mode.to_string();
    let key =
        cache_key(&["basic", &ctx.login_server, &ctx.registry_id, &mode, &ctx.epoch, &creds.username, &creds.password]);
    if let Some(CachedAuth::Subject(s)) = state.identity.cache_get(&key) {
        return Ok(Some(s));
    }
    let now = chrono::Utc::now();
    // A subject is remembered for BASIC_CACHE_SECONDS, and never past the end of the refresh
    // token it came from (expiry plus the allowed skew).
    let mut cache_until = now.timestamp() + BASIC_CACHE_SECONDS;
    let meta = &*state.meta;
    let subject = match creds.username_kind() {
        BasicUsername::RefreshToken => {
            let keys = state.identity.keys.read().expect("keys lock");
            match state.identity.registry.validate_refresh(&keys, &creds.password, ctx, now, &state.identity.cutoffs())
            {
                Ok(c) => {
                    cache_until = cache_until.min(c.exp + state.identity.registry.leeway.num_seconds());
                    Some(RegistrySubject::from_binding(&c.sub, &c.binding))
                }
                Err(e) => {
                    tracing::warn!(reason = %e, service = %ctx.login_server, "refresh token rejected");
                    None
                }
            }
        }
        BasicUsername::AppId(app_id) => {
            let refused = |reason: &str| {
                tracing::warn!(app_id = %app_id, reason, service = %ctx.login_server, "Basic credentials of a service principal rejected");
                None
            };
            match directory::find_sp_by_app_id(meta, &app_id.to_string()).await? {
                None => refused("no service principal has this application id"),
                Some(sp) if !sp.account_enabled => refused("the service principal is disabled"),
                Some(sp) if !directory::sp_secret_matches(&sp, &creds.password) => {
                    refused("the client secret does not match")
                }
                Some(sp) => {
                    let p = DirectoryPrincipal::ServicePrincipal {
                        object_id: sp.id.clone(),
                        app_id: sp.app_id.clone(),
                        builtin: sp.builtin.clone(),
                    };
                    Some(subject_of(state, &p))
                }
            }
        }
        BasicUsername::Name(name) if name.contains('@') => {
            authenticate_user(meta, name, &creds.password).await?.map(|p| subject_of(state, &p))
        }
        BasicUsername::Name(name) => match registry {
            Some(reg) if reg.name.eq_ignore_ascii_case(name) && reg.properties.admin_user_enabled => {
                if crate::admin_user::password_matches(meta, &state.secret_key, &reg.key.0, &creds.password).await? {
                    Some(RegistrySubject::local(
                        PrincipalType::RegistryAdmin,
                        admin_principal_id(reg),
                        reg.name.to_ascii_lowercase(),
                    ))
                } else {
                    tracing::warn!(registry = %reg.name, "admin user password rejected");
                    None
                }
            }
            _ => {
                tracing::warn!(username = %name, "Basic credentials for an unknown user (admin user disabled or wrong registry?)");
                None
            }
        },
    };
    if let Some(s) = &subject {
        state.identity.cache_put(key, CachedAuth::Subject(s.clone()), cache_until);
    }
    Ok(subject)
}

/// The principal id of a registry's admin user (bound to the registry's key, so a registry
/// created again under the same name has another admin user).
/// The principal-id prefix of task-run tokens of `registry` (`taskrun/{registry key}/{run}`).
pub fn task_run_prefix(registry: &RegistryInfo) -> String {
    format!("taskrun/{}/", registry.key.0)
}

pub fn admin_principal_id(registry: &RegistryInfo) -> String {
    format!("admin:{}", registry.key.0)
}

pub fn subject_of(state: &AppState, p: &DirectoryPrincipal) -> RegistrySubject {
    let claims = state.identity.directory.claims_for(p, Audience::ContainerRegistry, chrono::Utc::now());
    RegistrySubject::from_directory(&claims)
}

/// Checks a user's UPN and password. The reason of a refusal is logged, never returned.
pub async fn authenticate_user(
    meta: &dyn MetadataStore,
    upn: &str,
    password: &str,
) -> Result<Option<DirectoryPrincipal>, StorageError> {
    let refused = |reason: &str| {
        tracing::warn!(upn, reason, "password sign-in refused");
        Ok(None)
    };
    let Some(user) = directory::find_user_by_upn(meta, upn).await? else {
        return refused("no user has this user principal name");
    };
    if !user.account_enabled {
        return refused("the account is disabled");
    }
    if !directory::verify(password, &user.password_hash) {
        return refused("the password does not match");
    }
    Ok(Some(DirectoryPrincipal::User {
        object_id: user.id,
        display_name: user.display_name,
        user_principal_name: user.user_principal_name,
    }))
}
