//! Authentication: who is calling, proven by what.
//!
//! - `entra`: the Entra-like token issuer (`/{tenant}/oauth2/v2.0/token`, OpenID discovery,
//!   JWKS) for directory principals.
//! - `management`: bearer-token authentication of every management (ARM) call.
//! - `registry`: ACR's data-plane flow: challenges, Basic credentials, `/oauth2/exchange` and
//!   `/oauth2/token`, and the per-request check of the access token's `access` claim.
//! - `directory`: users and service principals and their hashed secrets.
//!
//! Which actions a principal is *granted* is decided in one function, [`grant`], which the
//! authorization engine plugs into.
//!
//! Refusals: a refused credential is logged with its precise reason (`reason = …`, at warn) and
//! answered with the door's one generic answer, whatever the reason (ARM
//! `InvalidAuthenticationToken`, ACR `UNAUTHORIZED` with the `WWW-Authenticate` challenge,
//! Entra `invalid_grant`), so a response is no oracle for forged tokens. Entra's sign-in errors
//! for a wrong client secret or password keep Entra's codes. `tests/identity_negative.rs`
//! checks every door.

pub mod directory;
pub mod entra;
pub mod management;
pub mod msi;
pub mod registry;

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use chrono::{DateTime, Utc};
use wharf_identity::{
    AccessEntry, DirectoryTokenIssuer, KeySet, PrincipalType, RegistrySubject, RegistryTokenIssuer, RevocationCutoffs,
};
use wharf_storage::MetadataStore;

const KEYSET_SETTING: &str = "identity.keyset";
const REVOCATIONS_SETTING: &str = "identity.revocations";
/// Signing keys older than this are rotated at start-up.
pub const KEY_ROTATION_DAYS: i64 = 30;

/// Token-issuing state: the signing keys, the issuers, and per-principal revocation cutoffs.
pub struct Identity {
    pub keys: RwLock<KeySet>,
    pub directory: DirectoryTokenIssuer,
    pub registry: RegistryTokenIssuer,
    revocations: RwLock<HashMap<String, DateTime<Utc>>>,
    /// Verified Basic credentials and access tokens, so that argon2 and signature checks are not
    /// repeated on every request. Keyed by a SHA-256 of the credential.
    pub(crate) cache: Mutex<HashMap<[u8; 32], (CachedAuth, i64)>>,
}

#[derive(Clone)]
pub(crate) enum CachedAuth {
    Subject(RegistrySubject),
    Access(std::sync::Arc<wharf_identity::AccessClaims>),
}

impl Identity {
    /// Loads the key set (creating or rotating it as needed) and the revocation cutoffs.
    pub async fn load(meta: &dyn MetadataStore, issuer_base: &str, tenant: &str) -> anyhow::Result<Identity> {
        let now = Utc::now();
        let mut keys = match meta.setting_get(KEYSET_SETTING).await? {
            Some(json) => {
                KeySet::from_json(&json).map_err(|e| anyhow::anyhow!("the stored signing keys are unreadable: {e}"))?
            }
            None => KeySet::generate(now),
        };
        let active_age =
            keys.keys().iter().find(|k| k.kid == keys.active_kid()).map(|k| now - k.created_at).unwrap_or_default();
        if active_age > chrono::Duration::days(KEY_ROTATION_DAYS) {
            let kid = keys.rotate(now);
            tracing::info!(kid, "rotated the token signing key");
        }
        keys.prune(now);
        meta.setting_put(KEYSET_SETTING, &keys.to_json().map_err(|e| anyhow::anyhow!("{e}"))?).await?;
        let revocations: HashMap<String, DateTime<Utc>> = match meta.setting_get(REVOCATIONS_SETTING).await? {
            Some(j) => serde_json::from_str(&j).unwrap_or_default(),
            None => HashMap::new(),
        };
        // Graph and the management plane are both served at the base URL.
        let base = format!("{}/", issuer_base.trim_end_matches('/'));
        Ok(Identity {
            keys: RwLock::new(keys),
            directory: DirectoryTokenIssuer::new(issuer_base, tenant)
                .with_audiences(wharf_identity::Audiences::new(base.clone()).with_management_endpoint(base)),
            registry: RegistryTokenIssuer::default(),
            revocations: RwLock::new(revocations),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Applies the configured token lifetimes and clock skew (`wharf serve --*-token-lifetime`,
    /// `--token-clock-skew`) to both issuers.
    pub fn with_token_times(mut self, t: &crate::config::TokenTimes) -> Identity {
        let secs = |s: u32| chrono::Duration::seconds(i64::from(s));
        self.directory.lifetime = secs(t.directory_lifetime);
        self.directory.leeway = secs(t.clock_skew);
        self.registry.refresh_lifetime = secs(t.registry_refresh_lifetime);
        self.registry.access_lifetime = secs(t.registry_access_lifetime);
        self.registry.leeway = secs(t.clock_skew);
        self
    }

    /// Tokens issued to `principal_id` before now stop working (credential reset).
    pub async fn revoke_before_now(&self, meta: &dyn MetadataStore, principal_id: &str) -> anyhow::Result<()> {
        let json = {
            let mut r = self.revocations.write().expect("revocations lock");
            r.insert(principal_id.to_string(), Utc::now());
            serde_json::to_string(&*r)?
        };
        self.cache.lock().expect("auth cache lock").clear();
        meta.setting_put(REVOCATIONS_SETTING, &json).await?;
        Ok(())
    }

    pub fn cutoffs(&self) -> Cutoffs<'_> {
        Cutoffs(self)
    }

    pub(crate) fn cache_get(&self, key: &[u8; 32]) -> Option<CachedAuth> {
        let now = Utc::now().timestamp();
        let cache = self.cache.lock().expect("auth cache lock");
        cache.get(key).filter(|(_, exp)| *exp > now).map(|(v, _)| v.clone())
    }

    pub(crate) fn cache_put(&self, key: [u8; 32], value: CachedAuth, expires: i64) {
        let mut cache = self.cache.lock().expect("auth cache lock");
        if cache.len() > 50_000 {
            let now = Utc::now().timestamp();
            cache.retain(|_, (_, exp)| *exp > now);
            if cache.len() > 50_000 {
                cache.clear();
            }
        }
        cache.insert(key, (value, expires));
    }
}

pub struct Cutoffs<'a>(&'a Identity);

impl RevocationCutoffs for Cutoffs<'_> {
    fn cutoff_for(&self, principal_id: &str) -> Option<DateTime<Utc>> {
        self.0.revocations.read().expect("revocations lock").get(principal_id).copied()
    }
}

/// What a principal is granted on a registry for the requested scopes: the one place where
/// authorization decides token contents.
///
/// - Anonymous callers get `pull` on repositories of registries with anonymous pull.
/// - The registry's admin user gets everything on its own registry.
/// - Directory principals get what the decision engine grants under the registry's
///   role-assignment mode; in ABAC mode a wildcard repository (`repository:*:*`) is refused.
/// - Without a registry (a deployment-level token, path style), only the catalog scope is kept;
///   the path-style listing then shows only registries whose catalog the engine grants the
///   caller (`oci::listing::repositories`).
pub fn grant(
    state: &crate::state::AppState,
    subject: &RegistrySubject,
    registry: Option<&crate::state::RegistryInfo>,
    requested: &[wharf_identity::Scope],
) -> Vec<AccessEntry> {
    grant_in(state, subject, registry, requested, &wharf_authz::EnvironmentAttributes::default())
}

/// [`grant`] with the ABAC environment attributes of the request's network path
/// (`crate::network::environment`); without them, conditions on `@Environment` fail closed.
pub fn grant_in(
    state: &crate::state::AppState,
    subject: &RegistrySubject,
    registry: Option<&crate::state::RegistryInfo>,
    requested: &[wharf_identity::Scope],
    environment: &wharf_authz::EnvironmentAttributes,
) -> Vec<AccessEntry> {
    use wharf_authz::{DataPlaneTarget, DockerAction, RegistryMode};
    let anonymous_pull = registry.is_some_and(|r| r.properties.anonymous_pull_enabled);
    requested
        .iter()
        .filter_map(|s| {
            let is_repo = s.resource_type == "repository";
            let is_catalog = s.resource_type == "registry" && s.name == "catalog";
            if !is_repo && !is_catalog {
                return None;
            }
            let actions: Vec<String> = match subject.principal_type {
                PrincipalType::Anonymous => {
                    if !anonymous_pull || !is_repo {
                        return None;
                    }
                    s.actions.iter().filter(|a| *a == "pull").cloned().collect()
                }
                PrincipalType::RegistryAdmin => {
                    let own = registry.is_some_and(|r| r.properties.admin_user_enabled && subject.principal_id == format!("admin:{}", r.key.0));
                    if !own {
                        return None;
                    }
                    s.actions.clone()
                }
                PrincipalType::RepositoryToken => return None,
                PrincipalType::User | PrincipalType::ServicePrincipal | PrincipalType::ManagedIdentity => {
                    let Some(reg) = registry else {
                        return is_catalog.then(|| AccessEntry::new("registry", "catalog", ["*"]));
                    };
                    let mode = crate::authz::registry_mode(reg.properties.role_assignment_mode);
                    if is_repo && mode == RegistryMode::AbacRepositoryPermissions && s.name.contains('*') {
                        tracing::info!(scope = %s, "wildcard repository scopes are refused in ABAC mode");
                        return None;
                    }
                    let (target, wanted) = if is_catalog {
                        (DataPlaneTarget::Catalog, vec![DockerAction::All])
                    } else {
                        (DataPlaneTarget::Repository(s.name.clone()), s.actions.iter().filter_map(|a| DockerAction::parse(a)).collect())
                    };
                    if wanted.is_empty() {
                        return None;
                    }
                    let decision = state.authz.data_plane(&subject.principal_id, &reg.resource_id, mode, target, &wanted, environment);
                    if decision.granted.is_empty() {
                        tracing::info!(principal = %subject.principal_id, scope = %s, explanation = %decision.explain(), "registry token: nothing granted");
                    }
                    decision.token_actions().into_iter().map(str::to_string).collect()
                }
            };
            (!actions.is_empty()).then(|| AccessEntry::new(&s.resource_type, &s.name, actions))
        })
        .collect()
}
