//! Secrets: generating them, hashing them for storage, verifying them, and fingerprinting them
//! for look-up.
//!
//! Owns: the alphabet and length of every secret Wharf hands out (service-principal client
//! secrets, user and admin passwords, repository-token passwords, the managed-identity
//! `X-IDENTITY-HEADER` value), the argon2id storage format (PHC strings) and the keyed
//! fingerprint used as a database index.
//! Must never: store, log or `Debug`-print a plaintext secret; compare secret material with a
//! short-circuiting `==`; hand-roll a hash or a MAC.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::{CryptoRng, Rng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::error::SecretError;

/// Letters and digits: safe in a shell, a URL, a Basic header and a `docker login` prompt.
const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Entra's client-secret alphabet: letters, digits and `.~_-`.
const CLIENT_SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.~_-";

/// Length of a generated password (about 238 bits from a 62-letter alphabet).
pub const PASSWORD_LEN: usize = 40;
/// Length of a generated client secret, as Entra's (40 characters).
pub const CLIENT_SECRET_LEN: usize = 40;
/// Length of a generated `X-IDENTITY-HEADER` value.
pub const IDENTITY_HEADER_LEN: usize = 48;

/// A plaintext secret held only long enough to show it once to its owner.
///
/// `Debug` and `Display` never show the value; call [`PlainSecret::expose`] deliberately.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainSecret(String);

impl PlainSecret {
    /// Wraps a value received from a client (a password typed by a user …).
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plaintext, for the one response that shows it, or to verify it against a hash.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlainSecret(<redacted>)")
    }
}

fn random_string<R: RngCore + CryptoRng>(rng: &mut R, alphabet: &[u8], len: usize) -> String {
    (0..len).map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())])).collect()
}

/// A password for a user, a registry admin user or a repository token: 40 letters and digits.
pub fn generate_password() -> PlainSecret {
    generate_password_with(&mut OsRng)
}

/// [`generate_password`] with a caller-supplied cryptographic RNG.
pub fn generate_password_with<R: RngCore + CryptoRng>(rng: &mut R) -> PlainSecret {
    PlainSecret(random_string(rng, ALPHANUMERIC, PASSWORD_LEN))
}

/// A service-principal client secret shaped like Entra's: 40 characters, the 4th to 6th being
/// the `8Q~` marker Entra uses, the rest from `[A-Za-z0-9.~_-]` (34 random characters ≈ 204 bits
/// plus 3 alphanumeric ones).
pub fn generate_client_secret() -> PlainSecret {
    generate_client_secret_with(&mut OsRng)
}

/// [`generate_client_secret`] with a caller-supplied cryptographic RNG.
pub fn generate_client_secret_with<R: RngCore + CryptoRng>(rng: &mut R) -> PlainSecret {
    let mut s = random_string(rng, ALPHANUMERIC, 3);
    s.push_str("8Q~");
    s.push_str(&random_string(rng, CLIENT_SECRET_ALPHABET, CLIENT_SECRET_LEN - 6));
    PlainSecret(s)
}

/// The secret a hosting resource's workload presents as `X-IDENTITY-HEADER` to the
/// managed-identity endpoint: 48 letters and digits.
pub fn generate_identity_header() -> PlainSecret {
    generate_identity_header_with(&mut OsRng)
}

/// [`generate_identity_header`] with a caller-supplied cryptographic RNG.
pub fn generate_identity_header_with<R: RngCore + CryptoRng>(rng: &mut R) -> PlainSecret {
    PlainSecret(random_string(rng, ALPHANUMERIC, IDENTITY_HEADER_LEN))
}

/// Argon2id cost parameters. Only new hashes use them: a stored hash carries its own
/// parameters, so changing these never invalidates existing secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashParams {
    /// Memory cost in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Degree of parallelism (lanes).
    pub parallelism: u32,
}

impl HashParams {
    /// OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane (≈ 20–40 ms per hash on a
    /// server core). The default.
    pub const PRODUCTION: HashParams = HashParams { memory_kib: 19 * 1024, iterations: 2, parallelism: 1 };

    /// The smallest parameters argon2 allows: for tests only, never for a deployment.
    pub const FAST_INSECURE_FOR_TESTS: HashParams = HashParams { memory_kib: 8, iterations: 1, parallelism: 1 };

    fn to_argon2(self) -> Result<Argon2<'static>, SecretError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| SecretError::InvalidParams(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

impl Default for HashParams {
    fn default() -> Self {
        Self::PRODUCTION
    }
}

/// A stored secret: an argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
/// Serializes as that string.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretHash(String);

impl SecretHash {
    /// Reads a stored PHC string, refusing anything that is not argon2id.
    pub fn parse(phc: &str) -> Result<Self, SecretError> {
        let parsed = PasswordHash::new(phc).map_err(|e| SecretError::MalformedHash(e.to_string()))?;
        if parsed.algorithm != Algorithm::Argon2id.ident() {
            return Err(SecretError::MalformedHash(format!("algorithm {} is not argon2id", parsed.algorithm)));
        }
        if parsed.hash.is_none() || parsed.salt.is_none() {
            return Err(SecretError::MalformedHash("no salt or no hash".into()));
        }
        Ok(Self(phc.to_owned()))
    }

    /// The PHC string, for storage.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The parameters this hash was made with (`None` only if the string cannot be read,
    /// which [`SecretHash::parse`] already rules out).
    pub fn params(&self) -> Option<HashParams> {
        let parsed = PasswordHash::new(&self.0).ok()?;
        let p = Params::try_from(&parsed).ok()?;
        Some(HashParams { memory_kib: p.m_cost(), iterations: p.t_cost(), parallelism: p.p_cost() })
    }

    /// True when this hash was made with other parameters than `params`: the server may
    /// re-hash the secret after a successful verification.
    pub fn needs_rehash(&self, params: &HashParams) -> bool {
        self.params() != Some(*params)
    }
}

impl TryFrom<String> for SecretHash {
    type Error = SecretError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<SecretHash> for String {
    fn from(value: SecretHash) -> Self {
        value.0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is not secret in the plaintext sense, but it is offline-attackable.
        f.write_str("SecretHash(<argon2id>)")
    }
}

/// Hashes a secret with argon2id and a fresh random 16-byte salt.
pub fn hash_secret(secret: &str, params: &HashParams) -> Result<SecretHash, SecretError> {
    let argon = params.to_argon2()?;
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon.hash_password(secret.as_bytes(), &salt).map_err(|e| SecretError::Hash(e.to_string()))?;
    Ok(SecretHash(hash.to_string()))
}

/// Verifies a secret against a stored hash, with the hash's own parameters. The final
/// comparison of the derived bytes is constant-time. Any malformed input is a mismatch.
pub fn verify_secret(secret: &str, stored: &SecretHash) -> bool {
    let Ok(parsed) = PasswordHash::new(&stored.0) else {
        return false;
    };
    // `Argon2::default()` takes algorithm, version and costs from the PHC string.
    Argon2::default().verify_password(secret.as_bytes(), &parsed).is_ok()
}

/// Compares two byte strings in constant time (for the length of the longer one): for
/// fingerprints, identity-header values and anything else that must not leak a prefix match.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A deployment-wide key for [`fingerprint`]. Serializes as 64 hex characters; keep it with
/// the signing keys, not in the metadata database it indexes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FingerprintKey([u8; 32]);

impl FingerprintKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Reads a key from its 64-character hex form.
    pub fn from_hex(value: &str) -> Result<Self, SecretError> {
        let bytes = hex::decode(value).map_err(|_| SecretError::MalformedFingerprintKey)?;
        let bytes: [u8; 32] = bytes.try_into().map_err(|_| SecretError::MalformedFingerprintKey)?;
        Ok(Self(bytes))
    }

    /// The 64-character hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl TryFrom<String> for FingerprintKey {
    type Error = SecretError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::from_hex(&value)
    }
}

impl From<FingerprintKey> for String {
    fn from(value: FingerprintKey) -> Self {
        value.to_hex()
    }
}

impl fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FingerprintKey(<redacted>)")
    }
}

/// A keyed, fast fingerprint of a secret: hex HMAC-SHA256(key, secret).
///
/// Use it as a unique index to find the one stored record a presented secret may belong to
/// (a repository-token password, an identity header) without running argon2 against every
/// record; then confirm with [`verify_secret`]. Without the key, a leaked index reveals
/// nothing usable for guessing.
pub fn fingerprint(key: &FingerprintKey, secret: &str) -> String {
    // HMAC zero-pads a key shorter than the hash's 64-byte block, so padding the 32-byte key
    // here gives the same MAC and uses the infallible fixed-size constructor.
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(&key.0);
    let mut mac = <Hmac<Sha256> as KeyInit>::new(&block.into());
    mac.update(secret.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FAST: HashParams = HashParams::FAST_INSECURE_FOR_TESTS;

    #[test]
    fn generated_secrets_have_the_documented_shape() {
        let p = generate_password();
        assert_eq!(p.expose().len(), PASSWORD_LEN);
        assert!(p.expose().bytes().all(|b| b.is_ascii_alphanumeric()));

        let c = generate_client_secret();
        assert_eq!(c.expose().len(), CLIENT_SECRET_LEN);
        assert_eq!(&c.expose()[3..6], "8Q~");
        assert!(c.expose().bytes().all(|b| CLIENT_SECRET_ALPHABET.contains(&b)));

        let h = generate_identity_header();
        assert_eq!(h.expose().len(), IDENTITY_HEADER_LEN);
        assert_ne!(generate_password(), generate_password());
    }

    #[test]
    fn debug_never_shows_the_plaintext() {
        let p = PlainSecret::new("hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
        let k = FingerprintKey::generate();
        assert!(!format!("{k:?}").contains(&k.to_hex()));
    }

    #[test]
    fn hash_then_verify() {
        let h = hash_secret("correct horse", &FAST).unwrap();
        assert!(h.as_str().starts_with("$argon2id$v=19$m=8,t=1,p=1$"));
        assert!(verify_secret("correct horse", &h));
        assert!(!verify_secret("correct hors", &h));
        assert!(!verify_secret("", &h));
    }

    #[test]
    fn hashes_are_salted() {
        let a = hash_secret("same", &FAST).unwrap();
        let b = hash_secret("same", &FAST).unwrap();
        assert_ne!(a, b);
        assert!(verify_secret("same", &a) && verify_secret("same", &b));
    }

    #[test]
    fn stored_hash_round_trips_through_serde_and_keeps_its_params() {
        let params = HashParams { memory_kib: 64, iterations: 2, parallelism: 2 };
        let h = hash_secret("s3cret", &params).unwrap();
        let json = serde_json::to_string(&h).unwrap();
        let back: SecretHash = serde_json::from_str(&json).unwrap();
        assert_eq!(back.params(), Some(params));
        assert!(verify_secret("s3cret", &back));
        assert!(back.needs_rehash(&FAST));
        assert!(!back.needs_rehash(&params));
    }

    #[test]
    fn non_argon2id_hashes_are_refused() {
        assert!(SecretHash::parse("plaintext").is_err());
        // An argon2i PHC string (other variant) is refused.
        let argon2i = "$argon2i$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$YWJjZGVmZ2hpamtsbW5vcA";
        assert!(matches!(SecretHash::parse(argon2i), Err(SecretError::MalformedHash(_))));
        assert!(serde_json::from_str::<SecretHash>("\"$2b$10$abc\"").is_err());
    }

    #[test]
    fn invalid_params_are_reported() {
        let bad = HashParams { memory_kib: 1, iterations: 0, parallelism: 1 };
        assert!(matches!(hash_secret("x", &bad), Err(SecretError::InvalidParams(_))));
    }

    #[test]
    fn fingerprints_are_keyed_and_stable() {
        let k1 = FingerprintKey::generate();
        let k2 = FingerprintKey::generate();
        assert_eq!(fingerprint(&k1, "abc"), fingerprint(&k1, "abc"));
        assert_ne!(fingerprint(&k1, "abc"), fingerprint(&k2, "abc"));
        assert_ne!(fingerprint(&k1, "abc"), fingerprint(&k1, "abd"));
        assert_eq!(fingerprint(&k1, "abc").len(), 64);
        let back = FingerprintKey::from_hex(&k1.to_hex()).unwrap();
        assert_eq!(fingerprint(&back, "abc"), fingerprint(&k1, "abc"));
        assert!(FingerprintKey::from_hex("abcd").is_err());
    }

    #[test]
    fn fingerprint_matches_rfc4231_test_case_2() {
        // HMAC zero-pads keys shorter than its block, so "Jefe" followed by zero bytes gives
        // the known answer of RFC 4231 test case 2.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let k = FingerprintKey(key);
        assert_eq!(
            fingerprint(&k, "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn constant_time_eq_compares_values() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
