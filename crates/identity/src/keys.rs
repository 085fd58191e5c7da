//! The token issuer's signing keys: an ES256 (P-256) key set with rotation.
//!
//! Owns: generating keys, naming them (`kid` = RFC 7638 JWK thumbprint), the serialized form
//! the server stores (JSON with PKCS#8 PEM private keys), the public JWKS, and the rotation
//! rules: exactly one active key signs; after `rotate(now)` the previous key keeps verifying
//! until `now + overlap`, and `prune(now)` then drops it.
//! Must never: read the clock, print a private key (`Debug` shows kids only), sign with a
//! retired key, or accept a key past its overlap window for verification.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand::rngs::OsRng;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::KeyError;

/// The only JWS algorithm Wharf signs and accepts.
pub const ALGORITHM: &str = "ES256";

/// How long a retired key keeps verifying by default: 4 hours, longer than the longest token
/// Wharf issues (a 3-hour registry refresh token) plus clock skew.
pub const DEFAULT_OVERLAP: Duration = Duration::hours(4);

/// Version of the serialized key-set document.
const DOCUMENT_VERSION: u32 = 1;

/// One key of the set.
#[derive(Clone)]
struct KeyEntry {
    kid: String,
    created_at: DateTime<Utc>,
    /// When the key stopped signing (it was rotated out). `None` for the active key.
    retired_at: Option<DateTime<Utc>>,
    /// The instant from which the key no longer verifies. `None` for the active key.
    not_after: Option<DateTime<Utc>>,
    signing: SigningKey,
    verifying: VerifyingKey,
    /// The uncompressed SEC1 point (65 bytes), the form `ring` verifies with.
    public_point: Vec<u8>,
}

impl KeyEntry {
    fn new(signing: SigningKey, created_at: DateTime<Utc>) -> Self {
        let verifying = *signing.verifying_key();
        Self {
            kid: thumbprint(&verifying),
            created_at,
            retired_at: None,
            not_after: None,
            public_point: verifying.to_encoded_point(false).as_bytes().to_vec(),
            signing,
            verifying,
        }
    }

    fn verifies_at(&self, now: DateTime<Utc>) -> bool {
        self.not_after.is_none_or(|end| now < end)
    }
}

/// Public metadata of one key, for operators (`wharf` CLI, logs). No key material.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub kid: String,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub not_after: Option<DateTime<Utc>>,
    pub active: bool,
}

/// A signing key set: one active key and the retired keys still inside their overlap window.
#[derive(Clone)]
pub struct KeySet {
    keys: Vec<KeyEntry>,
    active_kid: String,
    overlap: Duration,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("active_kid", &self.active_kid)
            .field("kids", &self.keys.iter().map(|k| &k.kid).collect::<Vec<_>>())
            .field("overlap", &self.overlap)
            .finish()
    }
}

impl KeySet {
    /// A new set with one fresh active key and the default overlap ([`DEFAULT_OVERLAP`]).
    pub fn generate(now: DateTime<Utc>) -> Self {
        Self::generate_with(&mut OsRng, now, DEFAULT_OVERLAP)
    }

    /// A new set from a caller-supplied cryptographic RNG and overlap window.
    pub fn generate_with<R: RngCore + CryptoRng>(rng: &mut R, now: DateTime<Utc>, overlap: Duration) -> Self {
        let entry = KeyEntry::new(SigningKey::random(rng), now);
        Self { active_kid: entry.kid.clone(), keys: vec![entry], overlap }
    }

    /// How long a rotated-out key keeps verifying.
    pub fn overlap(&self) -> Duration {
        self.overlap
    }

    /// The kid of the key that signs.
    pub fn active_kid(&self) -> &str {
        &self.active_kid
    }

    /// Metadata of every key, the active one first.
    pub fn keys(&self) -> Vec<KeyInfo> {
        let mut infos: Vec<KeyInfo> = self
            .keys
            .iter()
            .map(|k| KeyInfo {
                kid: k.kid.clone(),
                created_at: k.created_at,
                retired_at: k.retired_at,
                not_after: k.not_after,
                active: k.kid == self.active_kid,
            })
            .collect();
        infos.sort_by_key(|k| !k.active);
        infos
    }

    /// Makes a fresh key the active one. The previously active key stops signing now and keeps
    /// verifying until `now + overlap`. Returns the new kid.
    pub fn rotate(&mut self, now: DateTime<Utc>) -> String {
        self.rotate_with(&mut OsRng, now)
    }

    /// [`KeySet::rotate`] with a caller-supplied cryptographic RNG.
    pub fn rotate_with<R: RngCore + CryptoRng>(&mut self, rng: &mut R, now: DateTime<Utc>) -> String {
        let overlap = self.overlap;
        for key in self.keys.iter_mut().filter(|k| k.retired_at.is_none()) {
            key.retired_at = Some(now);
            key.not_after = Some(now + overlap);
        }
        let entry = KeyEntry::new(SigningKey::random(rng), now);
        let kid = entry.kid.clone();
        self.keys.push(entry);
        self.active_kid = kid.clone();
        kid
    }

    /// Drops the retired keys whose overlap window has ended. Returns their kids.
    pub fn prune(&mut self, now: DateTime<Utc>) -> Vec<String> {
        let (keep, drop): (Vec<_>, Vec<_>) = self.keys.drain(..).partition(|k| k.verifies_at(now));
        self.keys = keep;
        drop.into_iter().map(|k| k.kid).collect()
    }

    /// True when `kid` names a key that verifies at `now`.
    pub fn verifies_kid(&self, kid: &str, now: DateTime<Utc>) -> bool {
        self.verifying_key(kid, now).is_some()
    }

    pub(crate) fn verifying_key(&self, kid: &str, now: DateTime<Utc>) -> Option<PublicKey<'_>> {
        self.keys.iter().find(|k| k.kid == kid && k.verifies_at(now)).map(|k| PublicKey {
            point: &k.public_point,
            #[cfg(test)]
            verifying: &k.verifying,
        })
    }

    /// Signs `message` with the active key: returns its kid and the 64-byte `r || s` signature.
    pub(crate) fn sign(&self, message: &[u8]) -> Result<(&str, [u8; 64]), KeyError> {
        let active = self
            .keys
            .iter()
            .find(|k| k.kid == self.active_kid && k.retired_at.is_none())
            .ok_or(KeyError::NoActiveKey)?;
        let signature: Signature = active.signing.sign(message);
        Ok((&active.kid, signature.to_bytes().into()))
    }

    /// The public keys that verify at `now`, as a JWKS document.
    pub fn jwks(&self, now: DateTime<Utc>) -> Jwks {
        Jwks {
            keys: self
                .keys
                .iter()
                .filter(|k| k.verifies_at(now))
                .map(|k| Jwk::from_verifying_key(&k.verifying))
                .collect(),
        }
    }

    /// The stored form: a JSON document with each key's PKCS#8 PEM private key and metadata.
    /// It is secret: store it with the deployment's other secrets.
    pub fn to_json(&self) -> Result<String, KeyError> {
        let keys = self
            .keys
            .iter()
            .map(|k| {
                let pem = k.signing.to_pkcs8_pem(LineEnding::LF).map_err(|e| KeyError::Encode(e.to_string()))?;
                Ok(StoredKey {
                    kid: k.kid.clone(),
                    alg: ALGORITHM.to_owned(),
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                    not_after: k.not_after,
                    private_key_pem: pem.as_str().to_owned(),
                })
            })
            .collect::<Result<Vec<_>, KeyError>>()?;
        let doc = StoredKeySet {
            version: DOCUMENT_VERSION,
            overlap_seconds: self.overlap.num_seconds(),
            active_kid: self.active_kid.clone(),
            keys,
        };
        serde_json::to_string_pretty(&doc).map_err(|e| KeyError::Malformed(e.to_string()))
    }

    /// Loads a stored key set, checking every kid against its key and that the active key
    /// exists and is not retired.
    pub fn from_json(json: &str) -> Result<Self, KeyError> {
        let doc: StoredKeySet = serde_json::from_str(json).map_err(|e| KeyError::Malformed(e.to_string()))?;
        if doc.version != DOCUMENT_VERSION {
            return Err(KeyError::UnsupportedVersion(doc.version));
        }
        if doc.overlap_seconds < 0 {
            return Err(KeyError::Malformed("negative overlap_seconds".into()));
        }
        let mut keys: Vec<KeyEntry> = Vec::with_capacity(doc.keys.len());
        for stored in doc.keys {
            if stored.alg != ALGORITHM {
                return Err(KeyError::Malformed(format!("key {} has alg {}", stored.kid, stored.alg)));
            }
            let signing = SigningKey::from_pkcs8_pem(&stored.private_key_pem)
                .map_err(|_| KeyError::BadPrivateKey { kid: stored.kid.clone() })?;
            let mut entry = KeyEntry::new(signing, stored.created_at);
            if entry.kid != stored.kid {
                return Err(KeyError::KidMismatch { stored: stored.kid, computed: entry.kid });
            }
            if keys.iter().any(|k| k.kid == entry.kid) {
                return Err(KeyError::DuplicateKid(entry.kid));
            }
            if stored.retired_at.is_some() != stored.not_after.is_some() {
                return Err(KeyError::Malformed(format!(
                    "key {} must have both or neither of retired_at and not_after",
                    entry.kid
                )));
            }
            entry.retired_at = stored.retired_at;
            entry.not_after = stored.not_after;
            keys.push(entry);
        }
        let active_ok = keys.iter().any(|k| k.kid == doc.active_kid && k.retired_at.is_none());
        if !active_ok {
            return Err(KeyError::NoActiveKey);
        }
        Ok(Self { keys, active_kid: doc.active_kid, overlap: Duration::seconds(doc.overlap_seconds) })
    }
}

#[derive(Serialize, Deserialize)]
struct StoredKeySet {
    version: u32,
    overlap_seconds: i64,
    active_kid: String,
    keys: Vec<StoredKey>,
}

#[derive(Serialize, Deserialize)]
struct StoredKey {
    kid: String,
    alg: String,
    created_at: DateTime<Utc>,
    #[serde(default)]
    retired_at: Option<DateTime<Utc>>,
    #[serde(default)]
    not_after: Option<DateTime<Utc>>,
    private_key_pem: String,
}

/// A JSON Web Key Set (RFC 7517), as served at the issuer's `jwks_uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// One public EC P-256 signing key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub alg: String,
}

impl Jwk {
    fn from_verifying_key(key: &VerifyingKey) -> Self {
        let (x, y) = coordinates(key);
        Self {
            kty: "EC".into(),
            crv: "P-256".into(),
            x,
            y,
            kid: thumbprint(key),
            use_: "sig".into(),
            alg: ALGORITHM.into(),
        }
    }
}

/// base64url x and y of an uncompressed P-256 point.
fn coordinates(key: &VerifyingKey) -> (String, String) {
    let point = key.to_encoded_point(false);
    // An uncompressed point always has both coordinates.
    let x = point.x().map(|x| URL_SAFE_NO_PAD.encode(x)).unwrap_or_default();
    let y = point.y().map(|y| URL_SAFE_NO_PAD.encode(y)).unwrap_or_default();
    (x, y)
}

/// RFC 7638 thumbprint: base64url(SHA-256 of the required members in lexicographic order).
fn thumbprint(key: &VerifyingKey) -> String {
    let (x, y) = coordinates(key);
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// A verification key of the set, borrowed.
#[derive(Clone, Copy)]
pub(crate) struct PublicKey<'a> {
    point: &'a [u8],
    #[cfg(test)]
    verifying: &'a VerifyingKey,
}

/// Verifies a 64-byte `r || s` ES256 signature (helper for the JWS layer).
///
/// Verification uses `ring` (already in the build through rustls): about five times faster
/// than the pure-Rust `p256` verifier, and this runs on every authenticated data-plane request.
/// Key generation, PEM and signing stay with `p256`; a test cross-checks the two.
pub(crate) fn verify_signature(key: PublicKey<'_>, message: &[u8], signature: &[u8]) -> bool {
    if signature.len() != 64 {
        return false;
    }
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, key.point)
        .verify(message, signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn jwks_has_the_published_shape() {
        let ks = KeySet::generate(t0());
        let v = serde_json::to_value(ks.jwks(t0())).unwrap();
        let keys = v["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let k = keys[0].as_object().unwrap();
        let mut names: Vec<&str> = k.keys().map(String::as_str).collect();
        names.sort();
        assert_eq!(names, ["alg", "crv", "kid", "kty", "use", "x", "y"]);
        assert_eq!(k["kty"], "EC");
        assert_eq!(k["crv"], "P-256");
        assert_eq!(k["use"], "sig");
        assert_eq!(k["alg"], "ES256");
        assert_eq!(k["kid"], ks.active_kid());
        for c in ["x", "y"] {
            let bytes = URL_SAFE_NO_PAD.decode(k[c].as_str().unwrap()).unwrap();
            assert_eq!(bytes.len(), 32);
        }
    }

    #[test]
    fn thumbprint_matches_rfc7638_procedure() {
        // Recompute the thumbprint from the published JWK members, independently of `thumbprint`.
        let ks = KeySet::generate(t0());
        let jwk = &ks.jwks(t0()).keys[0];
        let mut members = std::collections::BTreeMap::new();
        members.insert("crv", jwk.crv.as_str());
        members.insert("kty", jwk.kty.as_str());
        members.insert("x", jwk.x.as_str());
        members.insert("y", jwk.y.as_str());
        let canonical = serde_json::to_string(&members).unwrap();
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        assert_eq!(jwk.kid, expected);
        assert_eq!(jwk.kid.len(), 43);
    }

    #[test]
    fn json_round_trip_keeps_keys_and_metadata() {
        let mut ks = KeySet::generate(t0());
        let old = ks.active_kid().to_owned();
        let new = ks.rotate(t0() + Duration::hours(1));
        let json = ks.to_json().unwrap();
        assert!(json.contains("BEGIN PRIVATE KEY"));
        let back = KeySet::from_json(&json).unwrap();
        assert_eq!(back.active_kid(), new);
        assert_eq!(back.keys(), ks.keys());
        assert_eq!(back.overlap(), DEFAULT_OVERLAP);
        assert!(back.verifies_kid(&old, t0() + Duration::hours(2)));
        assert_eq!(back.jwks(t0()), ks.jwks(t0()));
    }

    #[test]
    fn debug_shows_no_key_material() {
        let ks = KeySet::generate(t0());
        let dbg = format!("{ks:?}");
        assert!(dbg.contains(ks.active_kid()));
        assert!(!dbg.contains("PRIVATE"));
        assert!(!dbg.contains("SigningKey"));
    }

    #[test]
    fn rotation_keeps_the_previous_key_for_the_overlap_only() {
        let mut ks = KeySet::generate(t0());
        let old = ks.active_kid().to_owned();
        let t1 = t0() + Duration::days(30);
        let new = ks.rotate(t1);
        assert_ne!(old, new);
        assert_eq!(ks.active_kid(), new);
        assert_eq!(ks.jwks(t1).keys.len(), 2);
        let end = t1 + DEFAULT_OVERLAP;
        assert!(ks.verifies_kid(&old, end - Duration::seconds(1)));
        assert!(!ks.verifies_kid(&old, end), "not_after is exclusive");
        assert_eq!(ks.jwks(end).keys.len(), 1);
        assert!(ks.prune(end - Duration::seconds(1)).is_empty());
        assert_eq!(ks.prune(end), vec![old.clone()]);
        assert!(!ks.verifies_kid(&old, t1));
        assert!(ks.verifies_kid(&new, end + Duration::days(365)));
        let info = ks.keys();
        assert_eq!(info.len(), 1);
        assert!(info[0].active);
    }

    #[test]
    fn a_second_rotation_does_not_extend_an_older_retired_key() {
        let mut ks = KeySet::generate(t0());
        let k0 = ks.active_kid().to_owned();
        ks.rotate(t0());
        ks.rotate(t0() + Duration::hours(3));
        let info = ks.keys();
        let k0_info = info.iter().find(|k| k.kid == k0).unwrap();
        assert_eq!(k0_info.not_after, Some(t0() + DEFAULT_OVERLAP));
        assert_eq!(info.iter().filter(|k| k.active).count(), 1);
    }

    #[test]
    fn signs_with_the_active_key_only() {
        let mut ks = KeySet::generate(t0());
        let old = ks.active_kid().to_owned();
        let new = ks.rotate(t0());
        let (kid, sig) = ks.sign(b"msg").unwrap();
        assert_eq!(kid, new);
        let new_key = ks.verifying_key(&new, t0()).unwrap();
        let old_key = ks.verifying_key(&old, t0()).unwrap();
        assert!(verify_signature(new_key, b"msg", &sig));
        assert!(!verify_signature(old_key, b"msg", &sig));
        assert!(!verify_signature(new_key, b"msh", &sig));
        assert!(!verify_signature(new_key, b"msg", &sig[..63]));
    }

    #[test]
    fn ring_and_p256_agree_on_signatures() {
        use p256::ecdsa::signature::Verifier;
        let ks = KeySet::generate(t0());
        let key = ks.verifying_key(ks.active_kid(), t0()).unwrap();
        for msg in [&b""[..], b"a", b"header.payload"] {
            let (_, sig) = ks.sign(msg).unwrap();
            let parsed = Signature::from_slice(&sig).unwrap();
            assert!(key.verifying.verify(msg, &parsed).is_ok());
            assert!(verify_signature(key, msg, &sig));
            let mut bad = sig;
            bad[63] ^= 0x80;
            let p256_ok = Signature::from_slice(&bad).map(|s| key.verifying.verify(msg, &s).is_ok()).unwrap_or(false);
            assert_eq!(p256_ok, verify_signature(key, msg, &bad));
            assert!(!verify_signature(key, msg, &bad));
        }
    }

    #[test]
    fn tampered_documents_are_refused() {
        let ks = KeySet::generate(t0());
        let json = ks.to_json().unwrap();

        let wrong_kid = json.replace(ks.active_kid(), "not-the-thumbprint");
        assert!(matches!(
            KeySet::from_json(&wrong_kid),
            Err(KeyError::KidMismatch { .. }) | Err(KeyError::NoActiveKey)
        ));

        let mut doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        doc["active_kid"] = "missing".into();
        assert_eq!(KeySet::from_json(&doc.to_string()).unwrap_err(), KeyError::NoActiveKey);

        let mut doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        doc["version"] = 2.into();
        assert_eq!(KeySet::from_json(&doc.to_string()).unwrap_err(), KeyError::UnsupportedVersion(2));

        let mut doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        doc["keys"][0]["private_key_pem"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n".into();
        assert!(matches!(KeySet::from_json(&doc.to_string()), Err(KeyError::BadPrivateKey { .. })));

        let mut doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let first = doc["keys"][0].clone();
        doc["keys"].as_array_mut().unwrap().push(first);
        assert!(matches!(KeySet::from_json(&doc.to_string()), Err(KeyError::DuplicateKid(_))));

        assert!(matches!(KeySet::from_json("{}"), Err(KeyError::Malformed(_))));
    }
}
