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
            Some(json) => KeySet::from_json(&json).map_err(|e| anyhow::anyhow!("the stored signing keys are unreadable: {e}"))?,
            None => KeySet::generate(now),
        };
        let active_age = keys
            .keys()
            .iter()
            .find(|k| k.kid == keys.active_kid())
            .map(|k| now - k.created_at)
            .unwrap_or_default();
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
        Ok(Identity {
            keys: RwLock::new(keys),
            directory: DirectoryTokenIssuer::new(issuer_base, tenant),
            registry: RegistryTokenIssuer::default(),
            revocations: RwLock::new(revocations),
            cache: Mutex::new(HashMap::new()),
        })
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

/// What a principal is granted on a registry for the requested scopes. This is the one place
/// where authorization decides token contents.
///
/// Until the authorization engine lands, every authenticated directory principal and the admin
/// user are granted what they ask; anonymous callers get `pull` on registries with anonymous
/// pull enabled.
pub fn grant(subject: &RegistrySubject, anonymous_pull: bool, requested: &[wharf_identity::Scope]) -> Vec<AccessEntry> {
    requested
        .iter()
        .filter_map(|s| {
            let actions: Vec<String> = if subject.principal_type == PrincipalType::Anonymous {
                if !anonymous_pull || s.resource_type != "repository" {
                    return None;
                }
                s.actions.iter().filter(|a| *a == "pull").cloned().collect()
            } else {
                s.actions.clone()
            };
            (!actions.is_empty()).then(|| AccessEntry::new(&s.resource_type, &s.name, actions))
        })
        .collect()
}
