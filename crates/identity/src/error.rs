//! The error enums of this crate, one per concern.
//!
//! Owns: the precise reasons why a secret, a key set, a token, a scope or a Basic header was
//! refused. These reasons are for the server's log and for tests; the HTTP layer maps all of
//! them to a generic answer (`401 UNAUTHORIZED`, `invalid_token` …).
//! Must never: carry secret material (passwords, private keys, whole tokens) in a message.

use thiserror::Error;

/// Why a secret could not be hashed, or a stored hash could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SecretError {
    /// The Argon2 parameters are out of range (memory too small for the lanes, zero passes …).
    #[error("invalid argon2 parameters: {0}")]
    InvalidParams(String),
    /// Hashing failed inside the argon2 implementation.
    #[error("hashing failed: {0}")]
    Hash(String),
    /// A stored value is not an argon2id PHC string.
    #[error("stored secret hash is not an argon2id PHC string: {0}")]
    MalformedHash(String),
    /// A fingerprint key is not 32 bytes of hex.
    #[error("fingerprint key must be 64 hex characters")]
    MalformedFingerprintKey,
}

/// Why a signing key set could not be built, loaded or used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The serialized key set is not valid JSON of the expected shape.
    #[error("key set document is malformed: {0}")]
    Malformed(String),
    /// The document has a format version this code does not know.
    #[error("unsupported key set version {0}")]
    UnsupportedVersion(u32),
    /// A private key is not a PKCS#8 PEM P-256 key.
    #[error("private key of kid {kid} is not a PKCS#8 PEM P-256 key")]
    BadPrivateKey { kid: String },
    /// A stored kid does not match the key's RFC 7638 thumbprint.
    #[error("stored kid {stored} does not match the key's thumbprint {computed}")]
    KidMismatch { stored: String, computed: String },
    /// Two keys carry the same kid.
    #[error("duplicate kid {0}")]
    DuplicateKid(String),
    /// The active kid names no key of the set, or names a retired one.
    #[error("the key set has no usable active key")]
    NoActiveKey,
    /// Encoding a private key as PEM failed.
    #[error("could not encode a private key: {0}")]
    Encode(String),
    /// Claims could not be serialized to JSON.
    #[error("could not serialize claims: {0}")]
    Claims(String),
}

/// Why a token was refused. Every variant names one precise reason.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TokenError {
    /// Not three base64url segments separated by dots, or a segment is not valid base64url.
    #[error("malformed token: {0}")]
    Malformed(&'static str),
    /// The header is not a JSON object, or a field has the wrong JSON type.
    #[error("malformed header: {0}")]
    MalformedHeader(String),
    /// The header's `alg` is not ES256 (`none`, HS256, RS256, ES384 …).
    #[error("algorithm {0:?} is not accepted (only ES256)")]
    AlgorithmNotAllowed(String),
    /// The header carries `crit`: no JWS extension is understood, so any is refused.
    #[error("header carries crit extensions {0:?}, none are supported")]
    CriticalHeader(Vec<String>),
    /// The header embeds or points at a key (`jwk`, `jku`, `x5u`, `x5c`); only the key set decides.
    #[error("header parameter {0:?} is not accepted")]
    ForbiddenHeader(String),
    /// The header's `typ` is present and is not `JWT`.
    #[error("token type {0:?} is not JWT")]
    WrongType(String),
    /// The header has no `kid`.
    #[error("header has no kid")]
    MissingKid,
    /// The `kid` names no key of the set (never existed, pruned, or past its overlap window).
    #[error("kid {0:?} names no usable key")]
    UnknownKid(String),
    /// The signature does not verify with the named key.
    #[error("signature does not verify")]
    BadSignature,
    /// The payload is not a JSON object with the expected claims.
    #[error("malformed claims: {0}")]
    MalformedClaims(String),
    /// A required claim is absent.
    #[error("claim {0} is missing")]
    MissingClaim(&'static str),
    /// `iss` differs from the expected issuer.
    #[error("issuer {found:?} is not the expected {expected:?}")]
    WrongIssuer { expected: String, found: String },
    /// No `aud` value is in the allowed set.
    #[error("audience {found:?} is not accepted")]
    WrongAudience { found: Vec<String> },
    /// `exp` (plus skew) is in the past.
    #[error("token expired at {exp} (now {now})")]
    Expired { exp: i64, now: i64 },
    /// `nbf` (minus skew) is in the future.
    #[error("token not valid before {nbf} (now {now})")]
    NotYetValid { nbf: i64, now: i64 },
    /// `iat` is in the future, after `exp`, or the lifetime exceeds the maximum.
    #[error("issued-at {iat} is not plausible: {reason}")]
    BadIssuedAt { iat: i64, reason: &'static str },
    /// The token was issued before the principal's revocation cutoff (credential reset).
    #[error("token issued at {iat} was revoked by a cutoff at {cutoff}")]
    Revoked { iat: i64, cutoff: i64 },
    /// A registry token of the wrong kind (a refresh token where an access token is needed …).
    #[error("grant_type {found:?} where {expected:?} is required")]
    WrongGrantType { expected: &'static str, found: String },
    /// The token was issued under another role-assignment mode than the registry has now.
    #[error("token bound to mode {token} but the registry is in {current}")]
    ModeMismatch { token: String, current: String },
    /// A registry token whose `aud` is another login server: it was issued for another
    /// registry (or another host name of this deployment).
    #[error("token issued for login server {token:?}, not {expected:?}")]
    WrongLoginServer { expected: String, token: String },
    /// The token was issued for another registry resource.
    #[error("token bound to registry {token:?}, not {expected:?}")]
    WrongRegistry { expected: String, token: String },
    /// The token was issued before its registry was created again under the same name, or
    /// before a change of its role-assignment mode.
    #[error("token issued for an earlier epoch of the registry (re-created, or its mode changed since)")]
    StaleRegistryEpoch,
}

/// Why a scope string (Docker token scope or an OAuth2 `.default` scope) was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScopeError {
    /// The scope has fewer than three colon-separated parts.
    #[error("scope {0:?} is not of the form type:name:actions")]
    Shape(String),
    /// The resource type is empty or has characters outside `[a-z0-9_-]` (plus an optional `(class)`).
    #[error("scope {0:?} has an invalid resource type")]
    ResourceType(String),
    /// The resource name is empty or contains whitespace or control characters.
    #[error("scope {0:?} has an invalid resource name")]
    Name(String),
    /// An action is empty or has characters outside `[a-z0-9_*]`.
    #[error("scope {0:?} has an invalid action list")]
    Actions(String),
    /// An OAuth2 scope or resource names no audience Wharf issues tokens for.
    #[error("unknown resource {0:?}")]
    UnknownResource(String),
    /// An OAuth2 scope list names several resources (`a/.default b/.default`) or none.
    #[error("scope {0:?} must name exactly one resource")]
    ResourceCount(String),
}

/// Why an `Authorization: Basic` value was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BasicError {
    /// The scheme is not `Basic`.
    #[error("authorization scheme is not Basic")]
    NotBasic,
    /// The credentials are not standard base64.
    #[error("basic credentials are not base64")]
    Base64,
    /// The decoded credentials are not UTF-8.
    #[error("basic credentials are not UTF-8")]
    Utf8,
    /// No ':' separates username and password.
    #[error("basic credentials have no ':' separator")]
    NoSeparator,
    /// The username is empty.
    #[error("basic credentials have an empty username")]
    EmptyUsername,
    /// The credentials contain control characters.
    #[error("basic credentials contain control characters")]
    ControlCharacter,
}
