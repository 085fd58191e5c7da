//! Token-issuing state: the deployment's signing key set (created at first start, rotated when
//! older than [`KEY_ROTATION_DAYS`], pruned after the overlap), the directory and registry
//! token issuers configured with the operator's lifetimes, per-principal revocation cutoffs, and
//! the cache of verified credentials.
//!
//! Owns: loading and persisting keys and cutoffs (`settings` of the metadata store), and the
//! credential cache, which is cleared whenever a cutoff or an admin password changes.
//! Must never: decide what a credential grants, or cache a decision (only who a credential is).

use std::collections::HashMap;
use std::sync::{Mutex, RwLock};

use chrono::{DateTime, Utc};
use wharf_identity::{DirectoryTokenIssuer, KeySet, RegistrySubject, RegistryTokenIssuer, RevocationCutoffs};
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
    cache: Mutex<HashMap<[u8; 32], (CachedAuth, i64)>>,
}

#[derive(Clone)]
pub enum CachedAuth {
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
        self.clear_cache();
        meta.setting_put(REVOCATIONS_SETTING, &json).await?;
        Ok(())
    }

    /// The audience of an OAuth2 `scope`: the deployment's own names first (Graph = the server's
    /// base URL, which az sends as its cloud's `microsoftGraphResourceId`), then the public ones,
    /// so that `https://graph.microsoft.com/.default` is also answered (with the deployment's
    /// Graph `aud`).
    pub fn scope_audience(&self, scope: &str) -> Result<wharf_identity::Audience, wharf_identity::ScopeError> {
        self.directory.audiences.parse_scope(scope).or_else(|_| wharf_identity::parse_scope_to_audience(scope))
    }

    /// The audience of a managed-identity `resource=` value, with the same two sets of names.
    pub fn resource_audience(&self, resource: &str) -> Result<wharf_identity::Audience, wharf_identity::ScopeError> {
        self.directory
            .audiences
            .parse_resource(resource)
            .or_else(|_| wharf_identity::parse_resource_to_audience(resource))
    }

    /// Forgets every cached credential (after a revocation or a password change).
    pub fn clear_cache(&self) {
        self.cache.lock().expect("auth cache lock").clear();
    }

    pub fn cutoffs(&self) -> Cutoffs<'_> {
        Cutoffs(self)
    }

    pub fn cache_get(&self, key: &[u8; 32]) -> Option<CachedAuth> {
        let now = Utc::now().timestamp();
        let cache = self.cache.lock().expect("auth cache lock");
        cache.get(key).filter(|(_, exp)| *exp > now).map(|(v, _)| v.clone())
    }

    pub fn cache_put(&self, key: [u8; 32], value: CachedAuth, expires: i64) {
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
