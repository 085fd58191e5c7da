//! A registry's admin user: its two passwords are derived, not stored — HMAC(deployment key,
//! registry key, password name, generation) — so that `credential show` can show them again
//! (as ACR does) while the database never holds them. Regenerating one bumps its generation.
//!
//! Must never: compare passwords in variable time, or keep a password anywhere.

use std::collections::HashMap;

use wharf_identity::FingerprintKey;
use wharf_storage::{MetadataStore, StorageError};

/// The two password names ACR gives the admin user.
pub const PASSWORD_NAMES: [&str; 2] = ["password", "password2"];

fn generations_key(registry_key: &str) -> String {
    format!("admin.{registry_key}")
}

async fn generations(meta: &dyn MetadataStore, registry_key: &str) -> Result<HashMap<String, u64>, StorageError> {
    Ok(meta
        .setting_get(&generations_key(registry_key))
        .await?
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default())
}

/// `(name, value)` of both passwords.
pub async fn passwords(
    meta: &dyn MetadataStore,
    key: &FingerprintKey,
    registry_key: &str,
) -> Result<[(String, String); 2], StorageError> {
    let gens = generations(meta, registry_key).await?;
    Ok(PASSWORD_NAMES.map(|name| {
        let g = gens.get(name).copied().unwrap_or(0);
        let v = wharf_identity::fingerprint(key, &format!("admin|{registry_key}|{name}|{g}"));
        let raw = hex::decode(&v[..48]).unwrap_or_default();
        (name.to_string(), base64::Engine::encode(&base64::engine::general_purpose::STANDARD, raw))
    }))
}

/// `regenerateCredential`: a new value for `password` or `password2`. The caller clears the
/// credential cache, so the old value stops working at once.
pub async fn regenerate(meta: &dyn MetadataStore, registry_key: &str, name: &str) -> Result<(), StorageError> {
    let mut gens = generations(meta, registry_key).await?;
    *gens.entry(name.to_string()).or_insert(0) += 1;
    meta.setting_put(&generations_key(registry_key), &serde_json::to_string(&gens).expect("a map serializes")).await
}

/// Whether `password` is one of the admin user's passwords.
pub async fn password_matches(
    meta: &dyn MetadataStore,
    key: &FingerprintKey,
    registry_key: &str,
    password: &str,
) -> Result<bool, StorageError> {
    let pw = passwords(meta, key, registry_key).await?;
    Ok(pw.iter().any(|(_, v)| wharf_identity::secret::constant_time_eq(v.as_bytes(), password.as_bytes())))
}
