//! Compact JWS (JWT) encoding and strict verification, ES256 only.
//!
//! Owns: the header Wharf writes (`{"alg":"ES256","kid":…,"typ":"JWT"}`), the encoding of
//! segments, and the checks every token passes before its claims are believed: algorithm
//! pinned to ES256, no `crit`, no embedded or remote keys, a known `kid`, a valid signature,
//! then `iss`, `aud`, `exp`, `nbf`, `iat` (with a configurable skew) and the revocation cutoff.
//! Must never: read the clock, look at claims before the signature verified, pick the
//! verification algorithm or key from anything the token says other than a `kid` of our set.
//!
//! ## Segments readable with standard base64
//!
//! The ACR Python SDK reads a refresh token's `exp` with `base64.b64decode` (standard
//! alphabet, after appending `len % 4` `=` signs). Each JSON segment Wharf writes is therefore
//! made so that its base64url form is also valid standard base64 and needs no padding:
//! - For ASCII input, base64 emits `-`/`_` (values 62/63) only for the last sextet of a
//!   3-byte group, when that byte is `>`, `?`, `~` or DEL; higher sextets of ASCII bytes stay
//!   below 62. So every non-ASCII character and those four are written as JSON `\uXXXX`
//!   escapes (they can only occur inside JSON strings, so the JSON means the same).
//! - Spaces before the closing `}` make the byte length a multiple of 3, so there is no padding.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Duration, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{KeyError, TokenError};
use crate::keys::{ALGORITHM, KeySet, verify_signature};

/// Default allowance for clock differences when checking `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::seconds(60);

/// Default upper bound of `exp - iat` accepted at verification: 24 hours.
pub const DEFAULT_MAX_LIFETIME: Duration = Duration::hours(24);

/// The largest token accepted for parsing (bytes); bigger ones are refused before decoding.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Header names that carry or point at keys: refused, the key set alone names keys.
const KEY_CARRYING_HEADERS: [&str; 5] = ["jwk", "jku", "x5u", "x5c", "x5t#S256"];

/// Turns a serializable value into a segment whose base64url form contains no `-`, `_` or `=`.
pub(crate) fn encode_json_segment<T: Serialize>(value: &T) -> Result<String, KeyError> {
    let json = serde_json::to_string(value).map_err(|e| KeyError::Claims(e.to_string()))?;
    if !json.ends_with('}') {
        return Err(KeyError::Claims("a JWT segment must be a JSON object".into()));
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '>' | '?' | '~' | '\u{7f}' => push_escaped(&mut out, c),
            c if !c.is_ascii() => push_escaped(&mut out, c),
            c => out.push(c),
        }
    }
    let pad = (3 - out.len() % 3) % 3;
    out.insert_str(out.len() - 1, &" ".repeat(pad));
    Ok(URL_SAFE_NO_PAD.encode(out.as_bytes()))
}

fn push_escaped(out: &mut String, c: char) {
    let mut units = [0u16; 2];
    for unit in c.encode_utf16(&mut units) {
        out.push_str(&format!("\\u{unit:04x}"));
    }
}

#[derive(Serialize)]
struct WrittenHeader<'a> {
    alg: &'static str,
    kid: &'a str,
    typ: &'static str,
}

/// Signs `claims` with the key set's active key and returns the compact JWS.
pub fn encode<C: Serialize>(keys: &KeySet, claims: &C) -> Result<String, KeyError> {
    let payload = encode_json_segment(claims)?;
    // The header needs the kid before signing: sign the exact bytes `header.payload`.
    let kid = keys.active_kid().to_owned();
    let header = encode_json_segment(&WrittenHeader { alg: ALGORITHM, kid: &kid, typ: "JWT" })?;
    let signing_input = format!("{header}.{payload}");
    let (signed_kid, signature) = keys.sign(signing_input.as_bytes())?;
    if signed_kid != kid {
        return Err(KeyError::NoActiveKey);
    }
    Ok(format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// What a token must satisfy besides its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validation {
    /// The exact `iss` required.
    pub issuer: String,
    /// `aud` (a string, or any member of an array) must equal one of these exactly.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Largest `exp - iat` accepted.
    pub max_lifetime: Duration,
}

impl Validation {
    /// A validation for one issuer and a set of audiences, with the default leeway and
    /// maximum lifetime.
    pub fn new(issuer: impl Into<String>, audiences: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            issuer: issuer.into(),
            audiences: audiences.into_iter().map(Into::into).collect(),
            leeway: DEFAULT_LEEWAY,
            max_lifetime: DEFAULT_MAX_LIFETIME,
        }
    }

    /// The same validation with another leeway.
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }
}

/// The `aud` claim: a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
enum AudienceClaim {
    One(String),
    Many(Vec<String>),
}

impl AudienceClaim {
    fn values(&self) -> Vec<String> {
        match self {
            AudienceClaim::One(a) => vec![a.clone()],
            AudienceClaim::Many(a) => a.clone(),
        }
    }
}

/// The registered claims every Wharf token carries, read for the generic checks.
#[derive(Deserialize)]
struct RegisteredClaims {
    iss: Option<String>,
    aud: Option<AudienceClaim>,
    exp: Option<i64>,
    nbf: Option<i64>,
    iat: Option<i64>,
    jti: Option<String>,
}

/// Per-principal revocation cutoffs: tokens issued before the cutoff of their principal are
/// invalid (set by a credential reset). Implemented for closures
/// `Fn(&str) -> Option<DateTime<Utc>>` taking the principal's object id.
pub trait RevocationCutoffs {
    /// The instant before which this principal's tokens are revoked, if any.
    fn cutoff_for(&self, principal_id: &str) -> Option<DateTime<Utc>>;
}

impl<F> RevocationCutoffs for F
where
    F: Fn(&str) -> Option<DateTime<Utc>>,
{
    fn cutoff_for(&self, principal_id: &str) -> Option<DateTime<Utc>> {
        self(principal_id)
    }
}

/// No principal has a revocation cutoff.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRevocations;

impl RevocationCutoffs for NoRevocations {
    fn cutoff_for(&self, _principal_id: &str) -> Option<DateTime<Utc>> {
        None
    }
}

/// Refuses a token issued (`iat`, whole seconds) before `cutoff`. A token issued in the same
/// second as a cutoff with a fractional part is refused too: fail closed.
pub fn check_revocation(iat: i64, cutoff: Option<DateTime<Utc>>) -> Result<(), TokenError> {
    let Some(cutoff) = cutoff else {
        return Ok(());
    };
    let cutoff_secs = if cutoff.timestamp_subsec_nanos() > 0 { cutoff.timestamp() + 1 } else { cutoff.timestamp() };
    if iat < cutoff_secs {
        return Err(TokenError::Revoked { iat, cutoff: cutoff.timestamp() });
    }
    Ok(())
}

/// A verified token: its claims and the registered values that were checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<C> {
    pub claims: C,
    pub kid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: Option<String>,
}

fn decode_segment(segment: &str, what: &'static str) -> Result<Vec<u8>, TokenError> {
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| TokenError::Malformed(what))
}

/// Checks the header strictly and returns the kid.
fn check_header(header: &[u8]) -> Result<String, TokenError> {
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(header).map_err(|e| TokenError::MalformedHeader(e.to_string()))?;
    let alg = match header.get("alg") {
        Some(serde_json::Value::String(alg)) => alg,
        Some(other) => return Err(TokenError::AlgorithmNotAllowed(other.to_string())),
        None => return Err(TokenError::AlgorithmNotAllowed(String::new())),
    };
    if alg != ALGORITHM {
        return Err(TokenError::AlgorithmNotAllowed(alg.clone()));
    }
    if let Some(crit) = header.get("crit") {
        let names = match crit {
            serde_json::Value::Array(items) => items.iter().map(|v| v.to_string()).collect(),
            other => vec![other.to_string()],
        };
        return Err(TokenError::CriticalHeader(names));
    }
    if let Some(name) = KEY_CARRYING_HEADERS.iter().find(|h| header.contains_key(**h)) {
        return Err(TokenError::ForbiddenHeader((*name).to_owned()));
    }
    match header.get("typ") {
        None => {}
        Some(serde_json::Value::String(t)) if t.eq_ignore_ascii_case("JWT") => {}
        Some(other) => return Err(TokenError::WrongType(other.to_string())),
    }
    match header.get("kid") {
        Some(serde_json::Value::String(kid)) => Ok(kid.clone()),
        Some(_) => Err(TokenError::MalformedHeader("kid is not a string".into())),
        None => Err(TokenError::MissingKid),
    }
}

/// Verifies a compact JWS against the key set and `validation` at instant `now`, then parses
/// its payload as `C`. Checks, in order: shape, header (alg, crit, key headers, typ, kid),
/// signature, `iss`, `aud`, `exp`, `nbf`, `iat`.
pub fn verify<C: DeserializeOwned>(
    keys: &KeySet,
    token: &str,
    validation: &Validation,
    now: DateTime<Utc>,
) -> Result<Verified<C>, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("not three dot-separated segments"));
    };
    let header = decode_segment(header_b64, "header is not base64url")?;
    let kid = check_header(&header)?;
    let key = keys.verifying_key(&kid, now).ok_or_else(|| TokenError::UnknownKid(kid.clone()))?;
    let signature = decode_segment(signature_b64, "signature is not base64url")?;
    if signature.len() != 64 {
        return Err(TokenError::BadSignature);
    }
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !verify_signature(key, signing_input.as_bytes(), &signature) {
        return Err(TokenError::BadSignature);
    }

    // Only now is the payload trusted enough to be read.
    let payload = decode_segment(payload_b64, "payload is not base64url")?;
    let registered: RegisteredClaims =
        serde_json::from_slice(&payload).map_err(|e| TokenError::MalformedClaims(e.to_string()))?;

    let iss = registered.iss.ok_or(TokenError::MissingClaim("iss"))?;
    if iss != validation.issuer {
        return Err(TokenError::WrongIssuer { expected: validation.issuer.clone(), found: iss });
    }
    let aud = registered.aud.ok_or(TokenError::MissingClaim("aud"))?.values();
    if !aud.iter().any(|a| validation.audiences.contains(a)) {
        return Err(TokenError::WrongAudience { found: aud });
    }

    let now_s = now.timestamp();
    let leeway = validation.leeway.num_seconds();
    let exp = registered.exp.ok_or(TokenError::MissingClaim("exp"))?;
    let nbf = registered.nbf.ok_or(TokenError::MissingClaim("nbf"))?;
    let iat = registered.iat.ok_or(TokenError::MissingClaim("iat"))?;
    if now_s >= exp.saturating_add(leeway) {
        return Err(TokenError::Expired { exp, now: now_s });
    }
    if now_s < nbf.saturating_sub(leeway) {
        return Err(TokenError::NotYetValid { nbf, now: now_s });
    }
    if iat > now_s.saturating_add(leeway) {
        return Err(TokenError::BadIssuedAt { iat, reason: "issued in the future" });
    }
    if exp <= iat {
        return Err(TokenError::BadIssuedAt { iat, reason: "expires before it was issued" });
    }
    if exp.saturating_sub(iat) > validation.max_lifetime.num_seconds() {
        return Err(TokenError::BadIssuedAt { iat, reason: "lifetime longer than the maximum" });
    }

    let claims: C = serde_json::from_slice(&payload).map_err(|e| TokenError::MalformedClaims(e.to_string()))?;
    Ok(Verified { claims, kid, iat, exp, jti: registered.jti })
}

/// Reads a token's payload WITHOUT verifying anything: for logs and diagnostics only, never
/// for a decision.
pub fn decode_unverified(token: &str) -> Result<serde_json::Value, TokenError> {
    let payload = token.split('.').nth(1).ok_or(TokenError::Malformed("not three dot-separated segments"))?;
    let bytes = decode_segment(payload, "payload is not base64url")?;
    serde_json::from_slice(&bytes).map_err(|e| TokenError::MalformedClaims(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use chrono::TimeZone;
    use hmac::{Hmac, Mac};
    use serde_json::json;
    use sha2::Sha256;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    fn claims(now: DateTime<Utc>) -> serde_json::Value {
        let n = now.timestamp();
        json!({"iss": "https://issuer.test/t/v2.0", "aud": "api://wharf", "sub": "s",
               "iat": n, "nbf": n, "exp": n + 3600, "jti": "j1"})
    }

    fn validation() -> Validation {
        Validation::new("https://issuer.test/t/v2.0", ["api://wharf"])
    }

    fn forge(header: serde_json::Value, payload: &str, signature: &[u8]) -> String {
        format!("{}.{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), payload, URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn round_trip() {
        let keys = KeySet::generate(t0());
        let token = encode(&keys, &claims(t0())).unwrap();
        let v: Verified<serde_json::Value> = verify(&keys, &token, &validation(), t0()).unwrap();
        assert_eq!(v.claims["sub"], "s");
        assert_eq!(v.kid, keys.active_kid());
        assert_eq!(v.jti.as_deref(), Some("j1"));
        let header = decode_segment(token.split('.').next().unwrap(), "h").unwrap();
        let header: serde_json::Value = serde_json::from_slice(&header).unwrap();
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["typ"], "JWT");
        assert_eq!(header["kid"], keys.active_kid());
    }

    #[test]
    fn segments_decode_with_standard_base64_even_for_awkward_text() {
        // Every byte pattern that would put '-' or '_' into base64url: '>', '?', '~', DEL,
        // and non-ASCII text, at every offset modulo 3.
        let keys = KeySet::generate(t0());
        for prefix in ["", "a", "ab"] {
            let mut c = claims(t0());
            c["sub"] = json!(format!("{prefix}>>??~~\u{7f}é漢字😀 a?b>c~"));
            let token = encode(&keys, &c).unwrap();
            for segment in token.split('.').take(2) {
                assert!(!segment.contains(['-', '_', '=']), "{segment}");
                assert_eq!(segment.len() % 4, 0);
                let decoded = STANDARD.decode(segment).unwrap();
                let value: serde_json::Value = serde_json::from_slice(&decoded).unwrap();
                assert!(value.is_object());
            }
            let v: Verified<serde_json::Value> = verify(&keys, &token, &validation(), t0()).unwrap();
            assert_eq!(v.claims["sub"], c["sub"]);
        }
    }

    #[test]
    fn rejects_alg_none() {
        let keys = KeySet::generate(t0());
        let token = encode(&keys, &claims(t0())).unwrap();
        let payload = token.split('.').nth(1).unwrap();
        for alg in ["none", "None", "NONE"] {
            let forged = forge(json!({"alg": alg, "kid": keys.active_kid()}), payload, b"");
            let forged = forged.trim_end_matches('.').to_owned() + ".";
            let err = verify::<serde_json::Value>(&keys, &forged, &validation(), t0()).unwrap_err();
            assert_eq!(err, TokenError::AlgorithmNotAllowed(alg.to_owned()));
        }
        let no_alg = forge(json!({"kid": keys.active_kid()}), payload, &[0; 64]);
        assert!(matches!(
            verify::<serde_json::Value>(&keys, &no_alg, &validation(), t0()),
            Err(TokenError::AlgorithmNotAllowed(_))
        ));
    }

    #[test]
    fn rejects_hs256_signed_with_the_public_key_as_secret() {
        // The classic confusion attack: the attacker HMACs with the published public key.
        let keys = KeySet::generate(t0());
        let jwk = &keys.jwks(t0()).keys[0];
        let payload = encode_json_segment(&claims(t0())).unwrap();
        for (alg, secret) in [
            ("HS256", serde_json::to_string(jwk).unwrap()),
            ("HS256", format!("{}{}", jwk.x, jwk.y)),
            ("HS384", jwk.x.clone()),
            ("HS512", jwk.y.clone()),
        ] {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": jwk.kid, "typ": "JWT"}).to_string());
            let input = format!("{header}.{payload}");
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(input.as_bytes());
            let tag = mac.finalize().into_bytes();
            let forged = format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag));
            let err = verify::<serde_json::Value>(&keys, &forged, &validation(), t0()).unwrap_err();
            assert_eq!(err, TokenError::AlgorithmNotAllowed(alg.to_owned()));
        }
    }

    #[test]
    fn rejects_other_algorithms() {
        let keys = KeySet::generate(t0());
        let token = encode(&keys, &claims(t0())).unwrap();
        let (_, rest) = token.split_once('.').unwrap();
        for alg in ["RS256", "PS256", "ES384", "ES512", "EdDSA", "es256"] {
            let header = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": keys.active_kid()}).to_string());
            let forged = format!("{header}.{rest}");
            let err = verify::<serde_json::Value>(&keys, &forged, &validation(), t0()).unwrap_err();
            assert_eq!(err, TokenError::AlgorithmNotAllowed(alg.to_owned()));
        }
    }

    #[test]
    fn rejects_crit_and_key_carrying_headers_even_when_validly_signed() {
        // Sign a custom header with the real key: only the header rules can refuse it.
        let keys = KeySet::generate(t0());
        let payload = encode_json_segment(&claims(t0())).unwrap();
        let sign_with = |header: serde_json::Value| {
            let h = URL_SAFE_NO_PAD.encode(header.to_string());
            let input = format!("{h}.{payload}");
            let (_, sig) = keys.sign(input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
        };
        let kid = keys.active_kid();
        let crit = sign_with(json!({"alg":"ES256","kid":kid,"crit":["exp"],"exp":1}));
        assert_eq!(
            verify::<serde_json::Value>(&keys, &crit, &validation(), t0()).unwrap_err(),
            TokenError::CriticalHeader(vec!["\"exp\"".into()])
        );
        let jwk = sign_with(json!({"alg":"ES256","kid":kid,"jwk":{"kty":"EC"}}));
        assert_eq!(
            verify::<serde_json::Value>(&keys, &jwk, &validation(), t0()).unwrap_err(),
            TokenError::ForbiddenHeader("jwk".into())
        );
        let jku = sign_with(json!({"alg":"ES256","kid":kid,"jku":"https://evil/jwks"}));
        assert_eq!(
            verify::<serde_json::Value>(&keys, &jku, &validation(), t0()).unwrap_err(),
            TokenError::ForbiddenHeader("jku".into())
        );
        let typ = sign_with(json!({"alg":"ES256","kid":kid,"typ":"at+jwt"}));
        assert!(matches!(verify::<serde_json::Value>(&keys, &typ, &validation(), t0()), Err(TokenError::WrongType(_))));
        let no_kid = sign_with(json!({"alg":"ES256"}));
        assert_eq!(
            verify::<serde_json::Value>(&keys, &no_kid, &validation(), t0()).unwrap_err(),
            TokenError::MissingKid
        );
        // The same construction with a clean header verifies: the refusals above are the rules'.
        let clean = sign_with(json!({"alg":"ES256","kid":kid}));
        assert!(verify::<serde_json::Value>(&keys, &clean, &validation(), t0()).is_ok());
    }

    #[test]
    fn rejects_wrong_key_and_unknown_kid() {
        let keys = KeySet::generate(t0());
        let other = KeySet::generate(t0());
        let token = encode(&other, &claims(t0())).unwrap();
        assert!(matches!(
            verify::<serde_json::Value>(&keys, &token, &validation(), t0()),
            Err(TokenError::UnknownKid(_))
        ));
        // Other key's signature under our kid.
        let (_, rest) = token.split_once('.').unwrap();
        let header = URL_SAFE_NO_PAD.encode(json!({"alg":"ES256","kid":keys.active_kid(),"typ":"JWT"}).to_string());
        let other_sig = format!("{header}.{rest}");
        assert_eq!(
            verify::<serde_json::Value>(&keys, &other_sig, &validation(), t0()).unwrap_err(),
            TokenError::BadSignature
        );
    }

    #[test]
    fn rejects_tampered_payload_and_signature() {
        let keys = KeySet::generate(t0());
        let token = encode(&keys, &claims(t0())).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        let mut evil = claims(t0());
        evil["sub"] = json!("admin");
        let tampered = format!("{}.{}.{}", parts[0], encode_json_segment(&evil).unwrap(), parts[2]);
        assert_eq!(
            verify::<serde_json::Value>(&keys, &tampered, &validation(), t0()).unwrap_err(),
            TokenError::BadSignature
        );
        let mut sig = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
        sig[10] ^= 1;
        let bad_sig = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig));
        assert_eq!(
            verify::<serde_json::Value>(&keys, &bad_sig, &validation(), t0()).unwrap_err(),
            TokenError::BadSignature
        );
        let short = format!("{}.{}.{}", parts[0], parts[1], URL_SAFE_NO_PAD.encode(&sig[..32]));
        assert_eq!(
            verify::<serde_json::Value>(&keys, &short, &validation(), t0()).unwrap_err(),
            TokenError::BadSignature
        );
        for malformed in ["", "a.b", "a.b.c.d", &format!("{}.{}", parts[0], parts[1])] {
            assert!(matches!(
                verify::<serde_json::Value>(&keys, malformed, &validation(), t0()),
                Err(TokenError::Malformed(_))
            ));
        }
        let padded = format!("{token}=");
        assert!(verify::<serde_json::Value>(&keys, &padded, &validation(), t0()).is_err());
    }

    #[test]
    fn rejects_wrong_issuer_and_audience() {
        let keys = KeySet::generate(t0());
        let token = encode(&keys, &claims(t0())).unwrap();
        let wrong_iss = Validation::new("https://other/t/v2.0", ["api://wharf"]);
        assert!(matches!(
            verify::<serde_json::Value>(&keys, &token, &wrong_iss, t0()),
            Err(TokenError::WrongIssuer { .. })
        ));
        let wrong_aud = Validation::new("https://issuer.test/t/v2.0", ["api://other"]);
        assert_eq!(
            verify::<serde_json::Value>(&keys, &token, &wrong_aud, t0()).unwrap_err(),
            TokenError::WrongAudience { found: vec!["api://wharf".into()] }
        );
        let mut multi = claims(t0());
        multi["aud"] = json!(["x", "api://wharf"]);
        let token = encode(&keys, &multi).unwrap();
        assert!(verify::<serde_json::Value>(&keys, &token, &validation(), t0()).is_ok());
    }

    #[test]
    fn time_checks_use_the_leeway() {
        let keys = KeySet::generate(t0());
        let token = encode(&keys, &claims(t0())).unwrap();
        let v = validation();
        let exp = t0() + Duration::hours(1);
        assert!(verify::<serde_json::Value>(&keys, &token, &v, exp + Duration::seconds(59)).is_ok());
        assert!(matches!(
            verify::<serde_json::Value>(&keys, &token, &v, exp + Duration::seconds(60)),
            Err(TokenError::Expired { .. })
        ));
        let strict = validation().with_leeway(Duration::zero());
        assert!(matches!(verify::<serde_json::Value>(&keys, &token, &strict, exp), Err(TokenError::Expired { .. })));
        assert!(verify::<serde_json::Value>(&keys, &token, &v, t0() - Duration::seconds(60)).is_ok());
        assert!(matches!(
            verify::<serde_json::Value>(&keys, &token, &v, t0() - Duration::seconds(61)),
            Err(TokenError::NotYetValid { .. })
        ));
    }

    #[test]
    fn iat_must_be_plausible() {
        let keys = KeySet::generate(t0());
        let n = t0().timestamp();
        let mut future = claims(t0());
        future["iat"] = json!(n + 3600);
        future["exp"] = json!(n + 7200);
        let token = encode(&keys, &future).unwrap();
        assert!(matches!(
            verify::<serde_json::Value>(&keys, &token, &validation(), t0()),
            Err(TokenError::BadIssuedAt { reason: "issued in the future", .. })
        ));
        let mut long = claims(t0());
        long["exp"] = json!(n + 25 * 3600);
        let token = encode(&keys, &long).unwrap();
        assert!(matches!(
            verify::<serde_json::Value>(&keys, &token, &validation(), t0()),
            Err(TokenError::BadIssuedAt { .. })
        ));
        for missing in ["iat", "nbf", "exp", "iss", "aud"] {
            let mut c = claims(t0());
            c.as_object_mut().unwrap().remove(missing);
            let token = encode(&keys, &c).unwrap();
            assert_eq!(
                verify::<serde_json::Value>(&keys, &token, &validation(), t0()).unwrap_err(),
                TokenError::MissingClaim(match missing {
                    "iat" => "iat",
                    "nbf" => "nbf",
                    "exp" => "exp",
                    "iss" => "iss",
                    _ => "aud",
                })
            );
        }
    }

    #[test]
    fn rotation_overlap_then_prune() {
        let mut keys = KeySet::generate(t0());
        let token = encode(&keys, &claims(t0())).unwrap();
        keys.rotate(t0() + Duration::minutes(1));
        let during = t0() + Duration::minutes(30);
        assert!(verify::<serde_json::Value>(&keys, &token, &validation(), during).is_ok());
        // New tokens are signed by the new key and verify as well.
        let fresh = encode(&keys, &claims(during)).unwrap();
        assert!(verify::<serde_json::Value>(&keys, &fresh, &validation(), during).is_ok());
        keys.prune(t0() + Duration::minutes(1) + keys.overlap());
        assert!(matches!(
            verify::<serde_json::Value>(&keys, &token, &validation(), during),
            Err(TokenError::UnknownKid(_))
        ));
        assert!(verify::<serde_json::Value>(&keys, &fresh, &validation(), during).is_ok());
    }

    #[test]
    fn revocation_cutoff_is_inclusive_of_the_partial_second() {
        let at = |s: i64, ms: u32| Utc.timestamp_opt(s, ms * 1_000_000).unwrap();
        assert!(check_revocation(100, None).is_ok());
        assert!(check_revocation(100, Some(at(100, 0))).is_ok());
        assert!(check_revocation(99, Some(at(100, 0))).is_err());
        assert!(check_revocation(100, Some(at(100, 500))).is_err());
        assert!(check_revocation(101, Some(at(100, 500))).is_ok());
    }

    #[test]
    fn unverified_decoding_is_available_for_logs() {
        let keys = KeySet::generate(t0());
        let token = encode(&keys, &claims(t0())).unwrap();
        assert_eq!(decode_unverified(&token).unwrap()["jti"], "j1");
    }
}
