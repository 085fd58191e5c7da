//! Issue #3's negative cases, end to end against a running server: wrong secrets, expired
//! tokens, tokens signed by another key, `alg: none` and HS256 key confusion, tokens for another
//! registry or audience, revocation after `credential reset`, and garbage — at every door where
//! each applies.
//!
//! The rule every refusal is held to:
//! 1. the protocol's status and error shape (ARM `{"error":{"code","message"}}`, Graph's,
//!    Entra's OAuth error, ACR's `{"errors":[{"code":"UNAUTHORIZED"…}]}` with the
//!    `WWW-Authenticate` challenge on the data plane);
//! 2. one answer per door: every refused token gets the same status, body and challenge
//!    (apart from per-response ids and timestamps), so the answer cannot tell a forged token
//!    from an expired one, and it uses none of the words of the reasons ([`REASON_WORDS`]);
//! 3. the server log, written while the request was handled, names the specific reason, and
//!    never contains the refused token or password.
//!
//! Entra's sign-in errors (`invalid_client` AADSTS7000215 for a wrong client secret,
//! `invalid_grant` AADSTS50126 for a wrong user password) keep Entra's codes and texts: they
//! describe the credential the caller sent, not a check made on a token, and az keys its advice
//! off 7000215.
//!
//! Covered elsewhere, not repeated here: a registry refresh token and a directory token from
//! before `wharf ad sp credential reset`, replayed at `/oauth2/token` and `/oauth2/exchange`
//! (tests/identity_directory.rs, `cli_ad_commands_and_credential_reset`; the management API and
//! the data plane are covered below), and the `X-IDENTITY-HEADER` of another hosting resource
//! (tests/identity_managed.rs, `hosting_resources_and_the_managed_identity_endpoint`).

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{
    ACR_SCOPE, Cli, GRAPH_SCOPE, MGMT_SCOPE, Reply, TestServer, admin_token, entra_token, exchange_refresh,
    owner_service_principal, send, sp_access_token,
};
use reqwest::header::{AUTHORIZATION, HOST, HeaderValue};
use reqwest::{Method, RequestBuilder, StatusCode};
use ring::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair, UnparsedPublicKey,
};
use serde_json::{Value, json};
use sha2::Digest as _;

const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";
/// The repository every data-plane door asks for (it need not exist: a valid credential gets
/// 404 `NAME_UNKNOWN`, a refused one 401).
const REPO: &str = "hello";

/// Words of the logged reasons that no refusal may contain (compared in lower case).
const REASON_WORDS: &[&str] = &[
    "signature",
    "expire",
    "kid",
    "algorithm",
    "alg",
    "es256",
    "hs256",
    "none",
    "jwk",
    "audience",
    "issuer",
    "revoked",
    "cutoff",
    "bound",
    "login server",
    "malformed",
    "base64",
    "not valid before",
    "issued",
    "grant_type",
    "mode",
    "secret",
    "password",
    "disabled",
    "unknown",
];

// ---- doors ----

/// A place a token is presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Door {
    /// The management API: `Authorization: Bearer` with a management-audience directory token.
    Management,
    /// The Graph subset: a Graph-audience directory token.
    Graph,
    /// The Entra-like token endpoint, `grant_type=refresh_token` with a directory refresh token.
    DirectoryRefresh,
    /// `POST /oauth2/exchange` with a container-registry-audience directory token.
    Exchange,
    /// `POST /oauth2/token`, `grant_type=refresh_token` with a registry refresh token.
    RefreshGrant,
    /// `/v2/…` with Basic: the null-GUID username and a registry refresh token.
    RefreshAsBasic,
    /// `/v2/…` with `Authorization: Bearer` and a registry access token.
    AccessBearer,
}

impl Door {
    const ALL: [Door; 7] = [
        Door::Management,
        Door::Graph,
        Door::DirectoryRefresh,
        Door::Exchange,
        Door::RefreshGrant,
        Door::RefreshAsBasic,
        Door::AccessBearer,
    ];

    /// The log message of a refusal at this door (its `reason` field follows).
    fn log_message(self) -> &'static str {
        match self {
            Door::Management => "directory token rejected on the management API",
            Door::Graph => "directory token rejected on the Graph API",
            Door::DirectoryRefresh => "directory refresh token rejected",
            Door::Exchange => "exchange: directory token rejected",
            Door::RefreshGrant | Door::RefreshAsBasic => "refresh token rejected",
            Door::AccessBearer => "registry access token rejected",
        }
    }

    fn shape(self) -> Shape {
        match self {
            Door::Management => Shape::Arm,
            Door::Graph => Shape::Graph,
            Door::DirectoryRefresh => Shape::Entra { status: 400, error: "invalid_grant", code: 9002313 },
            Door::Exchange | Door::RefreshGrant => Shape::AcrToken,
            Door::RefreshAsBasic | Door::AccessBearer => Shape::AcrChallenge,
        }
    }
}

/// The protocol shape of a refusal.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Arm,
    Graph,
    Entra { status: u16, error: &'static str, code: u64 },
    AcrToken,
    AcrChallenge,
}

fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn v2_path() -> String {
    format!("/v2/{REPO}/tags/list")
}

fn bearer(rb: RequestBuilder, token: &str) -> RequestBuilder {
    // from_bytes: garbage tokens may hold bytes a well-behaved client would never send.
    rb.header(AUTHORIZATION, HeaderValue::from_bytes(format!("Bearer {token}").as_bytes()).expect("a header value"))
}

fn basic(rb: RequestBuilder, user: &str, password: &str) -> RequestBuilder {
    rb.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(format!("{user}:{password}"))))
}

/// Presents `token` at `door`; registry doors address `registry` host style.
async fn knock(s: &TestServer, door: Door, registry: &str, token: &str) -> Reply {
    let c = s.client();
    let base = s.base();
    let service = s.login_server(registry);
    let rb = match door {
        Door::Management => bearer(
            c.get(format!("{base}/subscriptions/{}/resourcegroups?api-version=2022-12-01", s.subscription)),
            token,
        ),
        Door::Graph => bearer(c.get(format!("{base}/v1.0/me")), token),
        Door::DirectoryRefresh => c.post(format!("{base}/{}/oauth2/v2.0/token", s.tenant())).form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("scope", MGMT_SCOPE),
            ("client_id", "wharf-tests"),
        ]),
        Door::Exchange => c.post(format!("{base}/oauth2/exchange")).form(&[
            ("grant_type", "access_token"),
            ("service", service.as_str()),
            ("access_token", token),
        ]),
        Door::RefreshGrant => c.post(format!("{base}/oauth2/token")).form(&[
            ("grant_type", "refresh_token"),
            ("service", service.as_str()),
            ("scope", format!("repository:{REPO}:pull").as_str()),
            ("refresh_token", token),
        ]),
        Door::RefreshAsBasic => basic(c.get(format!("{base}{}", v2_path())).header(HOST, &service), NULL_GUID, token),
        Door::AccessBearer => bearer(c.get(format!("{base}{}", v2_path())).header(HOST, &service), token),
    };
    send(rb).await
}

/// Asserts that a real credential opens its door (so that a refusal of its variants is theirs).
fn expect_open(door: &str, r: &Reply) {
    let st = r.status.as_u16();
    assert!(st != 401 && st != 400 && st < 500, "{door}: the real credential was refused: {} {}", r.status, r.text());
}

/// What stays the same between two refusals at one door: status, challenge and body without
/// its per-response ids and times.
fn canonical(r: &Reply) -> String {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(m) => {
                for k in ["timestamp", "trace_id", "correlation_id", "innerError"] {
                    m.remove(k);
                }
                m.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut body: Value = serde_json::from_slice(&r.body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()));
    strip(&mut body);
    format!("{} | {} | {body}", r.status.as_u16(), r.header("www-authenticate").unwrap_or("-"))
}

/// The log written since a mark.
struct LogMark(usize);

impl LogMark {
    fn now(s: &TestServer) -> LogMark {
        LogMark(s.log_text().len())
    }

    fn since(&self, s: &TestServer) -> String {
        s.log_text().get(self.0..).unwrap_or_default().to_string()
    }
}

/// Collects the refusals of one server and holds them to the rule in the module comment.
struct Refusals<'a> {
    s: &'a TestServer,
    /// The first canonical refusal seen per door (and service), with what it was.
    seen: HashMap<String, (String, String)>,
}

impl<'a> Refusals<'a> {
    fn new(s: &'a TestServer) -> Refusals<'a> {
        Refusals { s, seen: HashMap::new() }
    }

    /// Presents `token` at `door` of `registry` and asserts its refusal: the shape, the door's
    /// one answer, and a log line written meanwhile with the door's message and `reason`, without
    /// the token.
    async fn refused(&mut self, door: Door, registry: &str, token: &str, reason: &str, what: &str) {
        let s = self.s;
        let mark = LogMark::now(s);
        let r = knock(s, door, registry, token).await;
        let what = format!("{door:?} at {registry}: {what}");
        let service = s.login_server(registry);
        Self::shape(door.shape(), &service, &r, &what);
        self.same_answer(&format!("{door:?} {service}"), &r, &what);
        let log = mark.since(s);
        let line = log.lines().find(|l| l.contains(door.log_message()) && l.contains(reason));
        assert!(
            line.is_some(),
            "{what}: no log line with {:?} and {reason:?}; log since the request:\n{log}",
            door.log_message()
        );
        if token.len() > 16 {
            assert!(!log.contains(token), "{what}: the refused token is in the log:\n{log}");
        }
    }

    /// Asserts the protocol shape of a refusal and that it names no reason.
    fn shape(shape: Shape, service: &str, r: &Reply, what: &str) {
        let body = r.text();
        let v: Value =
            serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{what}: the refusal is not JSON ({e}): {body}"));
        match shape {
            Shape::Arm | Shape::Graph => {
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {body}");
                let code = v["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    matches!(code, "InvalidAuthenticationToken" | "AuthenticationFailed"),
                    "{what}: error code {code}: {body}"
                );
                assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
                if matches!(shape, Shape::Graph) {
                    assert!(r.header("www-authenticate").is_some(), "{what}: Graph's 401 carries a challenge");
                }
            }
            Shape::Entra { status, error, code } => {
                assert_eq!(r.status.as_u16(), status, "{what}: {body}");
                assert_eq!(v["error"], error, "{what}: {body}");
                assert_eq!(v["error_codes"], json!([code]), "{what}: {body}");
                let description = v["error_description"].as_str().unwrap_or_default();
                assert!(description.starts_with(&format!("AADSTS{code}: ")), "{what}: {body}");
                for k in ["timestamp", "trace_id", "correlation_id"] {
                    assert!(v[k].is_string(), "{what}: Entra's error has {k}: {body}");
                }
            }
            Shape::AcrToken | Shape::AcrChallenge => {
                assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{what}: {body}");
                assert_eq!(v["errors"][0]["code"], "UNAUTHORIZED", "{what}: {body}");
                assert!(v["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
                if matches!(shape, Shape::AcrChallenge) {
                    let challenge =
                        r.header("www-authenticate").unwrap_or_else(|| panic!("{what}: no WWW-Authenticate: {body}"));
                    // The realm is on the host the client addressed (the login server in host style).
                    let realm = format!("/oauth2/token\",service=\"{service}\"");
                    assert!(
                        challenge.starts_with("Bearer realm=\"http") && challenge.contains(&realm),
                        "{what}: challenge {challenge}"
                    );
                    assert!(challenge.contains("error=\"invalid_token\""), "{what}: challenge {challenge}");
                }
            }
        }
        let visible = format!("{} {}", String::from_utf8_lossy(&r.body), r.header("www-authenticate").unwrap_or(""))
            .to_lowercase();
        for w in REASON_WORDS {
            assert!(!visible.contains(w), "{what}: the refusal says {w:?}: {visible}");
        }
    }

    /// Asserts that every refusal under `key` is the same answer.
    fn same_answer(&mut self, key: &str, r: &Reply, what: &str) {
        let c = canonical(r);
        let (first, first_what) = self.seen.entry(key.to_string()).or_insert_with(|| (c.clone(), what.to_string()));
        assert_eq!(&c, first, "{what}: a different answer than for {first_what}");
    }
}

// ---- real tokens ----

fn field(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_else(|| panic!("no {k} in {v}")).to_string()
}

/// A registry access token for `repository:hello:pull` from a refresh token; the whole answer.
async fn access(s: &TestServer, registry: &str, refresh: &str) -> Value {
    let r = knock(s, Door::RefreshGrant, registry, refresh).await;
    assert_eq!(r.status, StatusCode::OK, "access token at {registry}: {}", r.text());
    r.json()
}

/// Real tokens opening each door at `registry` (checked), for the bootstrap administrator.
async fn admin_tokens(s: &TestServer, registry: &str) -> HashMap<Door, String> {
    let mgmt = admin_token(s, MGMT_SCOPE).await;
    let graph = admin_token(s, GRAPH_SCOPE).await;
    let acr = field(&admin_token(s, ACR_SCOPE).await, "access_token");
    let refresh =
        exchange_refresh(s, &s.login_server(registry), &acr).await.unwrap_or_else(|| panic!("exchange at {registry}"));
    let access = field(&access(s, registry, &refresh).await, "access_token");
    let tokens = HashMap::from([
        (Door::Management, field(&mgmt, "access_token")),
        (Door::Graph, field(&graph, "access_token")),
        (Door::DirectoryRefresh, field(&mgmt, "refresh_token")),
        (Door::Exchange, acr),
        (Door::RefreshGrant, refresh.clone()),
        (Door::RefreshAsBasic, refresh),
        (Door::AccessBearer, access),
    ]);
    for door in Door::ALL {
        expect_open(&format!("{door:?}"), &knock(s, door, registry, &tokens[&door]).await);
    }
    tokens
}

async fn create_registry(s: &TestServer, token: &str, name: &str) {
    let rg = format!("rg-{name}");
    let (st, v) = s.mgmt_as(token, Method::PUT, &s.group_path(&rg), Some(json!({"location": "westus"}))).await;
    assert!(st.is_success(), "resource group {rg}: {st} {v}");
    let (st, v) = s
        .mgmt_as(
            token,
            Method::PUT,
            &s.registry_path(&rg, name),
            Some(json!({"location": "westus", "sku": {"name": "Premium"}})),
        )
        .await;
    assert!(st.is_success(), "registry {name}: {st} {v}");
}

// ---- forging ----

fn decode(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).expect("base64url")).expect("a JSON segment")
}

fn encode(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

/// The header and payload of a compact JWS.
fn split(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    (decode(parts.next().unwrap()), decode(parts.next().expect("a JWT")))
}

fn exp_of(token: &str) -> i64 {
    split(token).1["exp"].as_i64().expect("exp")
}

/// An ES256 key the server has never seen.
struct OtherKey {
    rng: ring::rand::SystemRandom,
    key: EcdsaKeyPair,
}

impl OtherKey {
    fn new() -> OtherKey {
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).expect("generate a P-256 key");
        let key =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).expect("load the key");
        OtherKey { rng, key }
    }

    /// A compact JWS of `header` and `payload`, signed with this key (checked: the forgery is
    /// a well-formed ES256 token, refused only for its key).
    fn sign(&self, header: &Value, payload: &Value) -> String {
        let input = format!("{}.{}", encode(header), encode(payload));
        let sig = self.key.sign(&self.rng, input.as_bytes()).expect("sign");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, self.key.public_key().as_ref())
            .verify(input.as_bytes(), sig.as_ref())
            .expect("the forgery verifies with its own key");
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
    }

    /// The public key as a JWK, and its RFC 7638 thumbprint.
    fn jwk(&self) -> (Value, String) {
        let point = self.key.public_key().as_ref();
        let (x, y) = (URL_SAFE_NO_PAD.encode(&point[1..33]), URL_SAFE_NO_PAD.encode(&point[33..65]));
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let thumbprint = URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()));
        (json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}), thumbprint)
    }
}

fn hs256(header: &Value, payload: &Value, secret: &[u8]) -> String {
    let input = format!("{}.{}", encode(header), encode(payload));
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret), input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

/// Variants of a real token that must all be refused: (what, token, logged reason).
fn forgeries(real: &str, jwks: &Value, other: &OtherKey) -> Vec<(String, String, &'static str)> {
    let (header, payload) = split(real);
    let kid = field(&header, "kid");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not in {jwks}"));
    let point =
        [vec![4u8], URL_SAFE_NO_PAD.decode(field(jwk, "x")).unwrap(), URL_SAFE_NO_PAD.decode(field(jwk, "y")).unwrap()]
            .concat();
    let (own_jwk, own_kid) = other.jwk();
    let with = |h: Value| -> Value {
        let mut merged = header.clone();
        merged.as_object_mut().unwrap().extend(h.as_object().unwrap().clone());
        merged
    };
    let mut longer = payload.clone();
    longer["exp"] = json!(payload["exp"].as_i64().unwrap() + 86_400);
    let real_signature = real.rsplit('.').next().unwrap();
    vec![
        (
            "re-signed with another key, the server's kid kept".into(),
            other.sign(&header, &payload),
            "signature does not verify",
        ),
        (
            "signed with another key under that key's own kid".into(),
            other.sign(&with(json!({"kid": own_kid})), &payload),
            "names no usable key",
        ),
        (
            "another key, carried in a jwk header".into(),
            other.sign(&with(json!({"jwk": own_jwk})), &payload),
            "header parameter \"jwk\" is not accepted",
        ),
        (
            "alg none, empty signature".into(),
            format!("{}.{}.", encode(&with(json!({"alg": "none"}))), encode(&payload)),
            "algorithm \"none\" is not accepted",
        ),
        (
            "alg none, bare header".into(),
            format!("{}.{}.", encode(&json!({"alg": "none"})), encode(&payload)),
            "algorithm \"none\" is not accepted",
        ),
        (
            "HS256 keyed with the JWKS entry".into(),
            hs256(&with(json!({"alg": "HS256"})), &payload, jwk.to_string().as_bytes()),
            "algorithm \"HS256\" is not accepted",
        ),
        (
            "HS256 keyed with the public point".into(),
            hs256(&with(json!({"alg": "HS256"})), &payload, &point),
            "algorithm \"HS256\" is not accepted",
        ),
        (
            "a longer exp under the original signature".into(),
            format!("{}.{}.{real_signature}", encode(&header), encode(&longer)),
            "signature does not verify",
        ),
    ]
}

async fn jwks(s: &TestServer) -> Value {
    let r = send(s.client().get(format!("{}/{}/discovery/v2.0/keys", s.base(), s.tenant()))).await;
    assert_eq!(r.status, StatusCode::OK);
    r.json()
}

// ---- the tests ----

/// Tokens signed by another key, `alg: none`, HS256 keyed with the public key, tampered claims:
/// refused at every door, each reason logged, one answer per door.
#[tokio::test]
async fn forged_tokens_are_refused_at_every_door() {
    let s = TestServer::start().await;
    s.registry("forged").await;
    let tokens = admin_tokens(&s, "forged").await;
    let jwks = jwks(&s).await;
    let other = OtherKey::new();
    let mut refusals = Refusals::new(&s);
    for door in Door::ALL {
        for (what, token, reason) in forgeries(&tokens[&door], &jwks, &other) {
            refusals.refused(door, "forged", &token, reason, &what).await;
        }
    }
    // The real tokens still work: nothing above was refused for another reason.
    for door in Door::ALL {
        expect_open(&format!("{door:?} after the forgeries"), &knock(&s, door, "forged", &tokens[&door]).await);
    }
}

/// With short lifetimes (`--*-token-lifetime 3`, `--token-clock-skew 3`): a token is accepted
/// within the skew after its expiry and refused after it, at every door; a refresh token that
/// was used (and remembered) before it expired is refused too. Directory refresh tokens live a
/// fixed 90 days and are not part of this test.
#[tokio::test]
async fn expired_tokens_are_refused_at_every_door() {
    const LIFETIME: i64 = 3;
    const SKEW: i64 = 3;
    let flags = [
        "--directory-token-lifetime",
        "3",
        "--registry-refresh-token-lifetime",
        "3",
        "--registry-access-token-lifetime",
        "3",
        "--token-clock-skew",
        "3",
    ];
    let s = TestServer::builder().flags(&flags).start().await;
    let setup = field(&admin_token(&s, MGMT_SCOPE).await, "access_token");
    create_registry(&s, &setup, "shortlived").await;

    // The configured lifetimes are what the token endpoints announce and what tokens carry.
    let mgmt = admin_token(&s, MGMT_SCOPE).await;
    assert_eq!(mgmt["expires_in"], LIFETIME, "{mgmt}");
    let tokens = admin_tokens(&s, "shortlived").await;
    for door in Door::ALL {
        if door != Door::DirectoryRefresh {
            let (_, c) = split(&tokens[&door]);
            assert_eq!(c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(), LIFETIME, "{door:?}: {c}");
        }
    }
    let a = access(&s, "shortlived", &tokens[&Door::RefreshGrant]).await;
    assert_eq!(a["expires_in"], LIFETIME, "{a}");

    // Past its expiry but within the skew, a token is still accepted.
    let management = &tokens[&Door::Management];
    tokio::time::sleep(Duration::from_secs_f64((exp_of(management) as f64 + 0.2 - unix_now()).max(0.0))).await;
    expect_open("Management within the skew", &knock(&s, Door::Management, "shortlived", management).await);

    // Past expiry plus skew, every door refuses.
    let latest = Door::ALL.iter().filter(|d| **d != Door::DirectoryRefresh).map(|d| exp_of(&tokens[d])).max().unwrap();
    tokio::time::sleep(Duration::from_secs_f64((latest as f64 + SKEW as f64 + 1.0 - unix_now()).max(0.0))).await;
    let mut refusals = Refusals::new(&s);
    for door in Door::ALL {
        if door != Door::DirectoryRefresh {
            refusals.refused(door, "shortlived", &tokens[&door], "token expired at", "expired").await;
        }
    }
}

/// Tokens of registry A at registry B (host style and path style), tokens of the wrong kind or
/// issuer, and directory tokens for another audience.
#[tokio::test]
async fn tokens_for_another_registry_or_audience_are_refused() {
    let s = TestServer::start().await;
    s.registry("registrya").await;
    s.registry("registryb").await;
    let a = admin_tokens(&s, "registrya").await;
    let mut refusals = Refusals::new(&s);
    let login_a = s.login_server("registrya");

    // Registry A's tokens at registry B's login server.
    let issued_for_a = format!("token issued for login server \"{login_a}\"");
    refusals
        .refused(Door::RefreshGrant, "registryb", &a[&Door::RefreshGrant], &issued_for_a, "A's refresh token")
        .await;
    refusals
        .refused(Door::RefreshAsBasic, "registryb", &a[&Door::RefreshAsBasic], &issued_for_a, "A's refresh token")
        .await;
    refusals.refused(Door::AccessBearer, "registryb", &a[&Door::AccessBearer], &issued_for_a, "A's access token").await;

    // The wrong kind of registry token, and tokens of the other issuer.
    refusals
        .refused(
            Door::AccessBearer,
            "registrya",
            &a[&Door::RefreshGrant],
            "grant_type \"refresh_token\" where \"access_token\" is required",
            "a refresh token as access token",
        )
        .await;
    refusals
        .refused(
            Door::RefreshGrant,
            "registrya",
            &a[&Door::AccessBearer],
            "grant_type \"access_token\" where \"refresh_token\" is required",
            "an access token as refresh token",
        )
        .await;
    refusals
        .refused(
            Door::RefreshAsBasic,
            "registrya",
            &a[&Door::AccessBearer],
            "grant_type \"access_token\" where \"refresh_token\" is required",
            "an access token as refresh token",
        )
        .await;
    refusals
        .refused(Door::AccessBearer, "registrya", &a[&Door::Exchange], "issuer", "a directory token as access token")
        .await;
    refusals
        .refused(Door::RefreshGrant, "registrya", &a[&Door::DirectoryRefresh], "issuer", "a directory refresh token")
        .await;
    refusals.refused(Door::Management, "registrya", &a[&Door::AccessBearer], "issuer", "a registry access token").await;
    refusals.refused(Door::Exchange, "registrya", &a[&Door::RefreshGrant], "issuer", "a registry refresh token").await;
    refusals
        .refused(Door::DirectoryRefresh, "registrya", &a[&Door::RefreshGrant], "issuer", "a registry refresh token")
        .await;
    refusals
        .refused(Door::DirectoryRefresh, "registrya", &a[&Door::Management], "audience", "a directory access token")
        .await;

    // Directory tokens for another audience.
    refusals
        .refused(
            Door::Management,
            "registrya",
            &a[&Door::Exchange],
            "audience [\"https://containerregistry.azure.net\"] is not accepted",
            "a container registry token",
        )
        .await;
    // A Graph token names the deployment's base URL, which is also the management endpoint: the
    // management API accepts it, as ARM accepts its own URL (issue 10 item 12; docs/decisions.md,
    // "The management plane accepts its own URL as an audience"). The exchange, which takes
    // ARM's public names only, does not.
    let r = knock(&s, Door::Management, "registrya", &a[&Door::Graph]).await;
    assert_eq!(r.status, StatusCode::OK, "a token for the base URL at the management API: {}", r.text());
    refusals.refused(Door::Graph, "registrya", &a[&Door::Management], "audience", "a management token").await;
    refusals.refused(Door::Exchange, "registrya", &a[&Door::Graph], "audience", "a Graph token").await;
    // An OpenID ID token (a user's password sign-in asking for `openid`, as az does) names the
    // client as its audience: it is no access token at any door.
    let az_client = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
    let admin = s.admin().unwrap().clone();
    let oidc_scope = format!("openid profile offline_access {MGMT_SCOPE}");
    let sign_in = |client_id: &'static str| {
        [
            ("grant_type", "password"),
            ("username", admin.username.as_str()),
            ("password", admin.password.as_str()),
            ("scope", oidc_scope.as_str()),
            ("client_id", client_id),
            ("client_info", "1"),
        ]
    };
    let (st, v) = entra_token(&s, &sign_in(az_client)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let id_token = field(&v, "id_token");
    let (_, claims) = split(&id_token);
    assert_eq!(
        (claims["aud"].as_str(), claims["preferred_username"].as_str()),
        (Some(az_client), Some(admin.username.as_str())),
        "{claims}"
    );
    let info = decode(&field(&v, "client_info"));
    assert_eq!(
        (info["uid"].as_str(), info["utid"].as_str()),
        (claims["oid"].as_str(), Some(admin.tenant.as_str())),
        "{info}"
    );
    for door in [Door::Management, Door::Graph, Door::Exchange, Door::DirectoryRefresh] {
        refusals.refused(door, "registrya", &id_token, "audience", "an ID token").await;
    }
    // A client id that is not a GUID (a resource URI, say) gets no ID token at all.
    let (st, v) = entra_token(&s, &sign_in("https://management.core.windows.net/")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v.get("id_token").is_none(), "{v}");

    // A management token is exchanged while the registry's azureADAuthenticationAsArmPolicy is
    // enabled (ACR's default) and refused once it is disabled.
    expect_open(
        "a management token at /oauth2/exchange (policy enabled)",
        &knock(&s, Door::Exchange, "registrya", &a[&Door::Management]).await,
    );
    let patch = json!({"properties": {"policies": {"azureADAuthenticationAsArmPolicy": {"status": "disabled"}}}});
    let (st, v) = s.mgmt(Method::PATCH, &s.registry_path("rg-registrya", "registrya"), Some(patch)).await;
    assert!(st.is_success(), "disabling authentication-as-arm: {st} {v}");
    assert_eq!(v["properties"]["policies"]["azureADAuthenticationAsArmPolicy"]["status"], "disabled", "{v}");
    refusals
        .refused(
            Door::Exchange,
            "registrya",
            &a[&Door::Management],
            "audience [\"https://management.core.windows.net/\"] is not accepted",
            "a management token, policy disabled",
        )
        .await;
    expect_open(
        "a container registry token, policy disabled",
        &knock(&s, Door::Exchange, "registrya", &a[&Door::Exchange]).await,
    );

    // A refresh token issued before a role-assignment mode switch, even one the server
    // remembers from a use just before the switch.
    let b_refresh =
        exchange_refresh(&s, &s.login_server("registryb"), &a[&Door::Exchange]).await.expect("exchange at registryb");
    expect_open("B's refresh token as Basic", &knock(&s, Door::RefreshAsBasic, "registryb", &b_refresh).await);
    let patch = json!({"properties": {"roleAssignmentMode": "AbacRepositoryPermissions"}});
    let (st, v) = s.mgmt(Method::PATCH, &s.registry_path("rg-registryb", "registryb"), Some(patch)).await;
    assert!(st.is_success(), "switching to ABAC mode: {st} {v}");
    for door in [Door::RefreshAsBasic, Door::RefreshGrant] {
        refusals
            .refused(
                door,
                "registryb",
                &b_refresh,
                "token bound to mode LegacyRegistryPermissions",
                "issued before a mode switch",
            )
            .await;
    }

    // Path style: every registry shares the service (the host), so the binding decides.
    let host = s.host();
    let (user, password) = s.creds().unwrap();
    let r = send(basic(
        s.client().get(format!("{}/oauth2/token?service={host}&scope=repository:registrya/{REPO}:pull", s.base())),
        &user,
        &password,
    ))
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let path_token = field(&r.json(), "access_token");
    expect_open(
        "path-style access token at its registry",
        &send(bearer(s.client().get(format!("{}/v2/registrya/{REPO}/tags/list", s.base())), &path_token)).await,
    );
    let mark = LogMark::now(&s);
    let r = send(bearer(s.client().get(format!("{}/v2/registryb/{REPO}/tags/list", s.base())), &path_token)).await;
    let what = "A's path-style access token at B";
    Refusals::shape(Shape::AcrChallenge, &host, &r, what);
    let log = mark.since(&s);
    assert!(
        log.lines().any(|l| l.contains("registry access token rejected")
            && l.contains("token bound to registry")
            && l.contains("/registries/registrya")),
        "{what}: log since the request:\n{log}"
    );
}

/// Wrong client secrets and passwords: Entra's answers at the directory token endpoint, one
/// answer for every wrong credential at `/oauth2/token` and `/v2/`, the reason logged and the
/// password never.
#[tokio::test]
async fn wrong_secrets_are_refused_at_every_door() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    s.registry("creds").await;
    let (app_id, secret, _) = owner_service_principal(&s, &cli, "neg-secrets");
    let admin = s.admin().unwrap().clone();
    let wrong = "Wr0ng-but-plausible-secret-value-123";
    let unknown_app = "7d9b5c2e-0a41-4c7e-9a0e-2f4d5b6c7a81";

    // Entra's shapes at the directory token endpoint.
    let mut refusals = Refusals::new(&s);
    let mark = LogMark::now(&s);
    let (st, v) = entra_token(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", app_id.as_str()),
            ("client_secret", wrong),
            ("scope", MGMT_SCOPE),
        ],
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str(), &v["error_codes"]),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"), &json!([7000215])),
        "{v}"
    );
    assert_log(&s, &mark, &["client_credentials sign-in refused", "the client secret does not match"], wrong);
    let mark = LogMark::now(&s);
    let (st, v) = entra_token(
        &s,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", unknown_app),
            ("client_secret", wrong),
            ("scope", MGMT_SCOPE),
        ],
    )
    .await;
    assert_eq!(
        (st, v["error"].as_str(), &v["error_codes"]),
        (StatusCode::BAD_REQUEST, Some("unauthorized_client"), &json!([700016])),
        "{v}"
    );
    assert_log(
        &s,
        &mark,
        &["client_credentials sign-in refused", "no service principal has this application id"],
        wrong,
    );
    for (user, reason) in [
        (admin.username.as_str(), "the password does not match"),
        ("nobody@contoso.test", "no user has this user principal name"),
    ] {
        let mark = LogMark::now(&s);
        let r = send(s.client().post(format!("{}/{}/oauth2/v2.0/token", s.base(), admin.tenant)).form(&[
            ("grant_type", "password"),
            ("username", user),
            ("password", wrong),
            ("scope", MGMT_SCOPE),
            ("client_id", "wharf-tests"),
        ]))
        .await;
        let what = format!("password grant for {user}");
        let v = r.json();
        assert_eq!(
            (r.status, v["error"].as_str(), &v["error_codes"]),
            (StatusCode::BAD_REQUEST, Some("invalid_grant"), &json!([50126])),
            "{what}: {v}"
        );
        // A wrong password and an unknown user get the same answer: no user enumeration.
        refusals.same_answer("password grant", &r, &what);
        assert_log(&s, &mark, &["password sign-in refused", reason], wrong);
    }

    // /oauth2/token and /v2/ with Basic: the right credentials work, every wrong one gets the
    // door's one answer.
    let (st, v) = s
        .mgmt(
            Method::PATCH,
            &s.registry_path("rg-creds", "creds"),
            Some(json!({"properties": {"adminUserEnabled": true}})),
        )
        .await;
    assert!(st.is_success(), "{st} {v}");
    let (st, creds) =
        s.mgmt(Method::POST, &format!("{}/listCredentials", s.registry_path("rg-creds", "creds")), None).await;
    assert_eq!(st, StatusCode::OK, "{creds}");
    let admin_user = field(&creds, "username");
    let admin_password = field(&creds["passwords"][0], "value");
    let service = s.login_server("creds");
    let at_token = |user: &str, password: &str| {
        basic(
            s.client().get(format!("{}/oauth2/token?service={service}&scope=repository:{REPO}:pull", s.base())),
            user,
            password,
        )
    };
    let at_v2 = |user: &str, password: &str| {
        basic(s.client().get(format!("{}{}", s.base(), v2_path())).header(HOST, &service), user, password)
    };
    let good = [
        (app_id.as_str(), secret.as_str()),
        (admin.username.as_str(), admin.password.as_str()),
        (admin_user.as_str(), admin_password.as_str()),
    ];
    for (user, password) in good {
        let r = send(at_token(user, password)).await;
        assert_eq!(r.status, StatusCode::OK, "{user} at /oauth2/token: {}", r.text());
        expect_open(&format!("{user} at /v2/"), &send(at_v2(user, password)).await);
    }
    let bad = [
        (app_id.as_str(), "Basic credentials of a service principal rejected", "the client secret does not match"),
        (
            unknown_app,
            "Basic credentials of a service principal rejected",
            "no service principal has this application id",
        ),
        (admin.username.as_str(), "password sign-in refused", "the password does not match"),
        ("nobody@contoso.test", "password sign-in refused", "no user has this user principal name"),
        (admin_user.as_str(), "admin user password rejected", ""),
    ];
    for (user, message, reason) in bad {
        for (door, rb, shape) in [
            ("/oauth2/token", at_token(user, wrong), Shape::AcrToken),
            ("/v2/", at_v2(user, wrong), Shape::AcrChallenge),
        ] {
            let mark = LogMark::now(&s);
            let r = send(rb).await;
            let what = format!("{user} with a wrong secret at {door}");
            Refusals::shape(shape, &service, &r, &what);
            refusals.same_answer(door, &r, &what);
            assert_log(&s, &mark, &[message, reason], wrong);
        }
    }
}

/// Asserts that the log since `mark` has a line with every needle, and no `secret`.
fn assert_log(s: &TestServer, mark: &LogMark, needles: &[&str], secret: &str) {
    let log = mark.since(s);
    assert!(
        log.lines().any(|l| needles.iter().all(|n| l.contains(n))),
        "no log line with {needles:?}; log since the request:\n{log}"
    );
    assert!(!log.contains(secret), "the refused secret is in the log:\n{log}");
}

/// `wharf ad sp credential reset` revokes the service principal's earlier tokens at the doors
/// identity_directory.rs does not try: the management API, and the data plane with the access
/// token and with the refresh token as Basic password (both remembered by the server's
/// credential cache before the reset).
#[tokio::test]
async fn credential_reset_revokes_tokens_at_the_management_api_and_the_data_plane() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    s.registry("resetreg").await;
    let (app_id, secret, _) = owner_service_principal(&s, &cli, "neg-reset");
    let mgmt = sp_access_token(&s, &app_id, &secret, MGMT_SCOPE).await;
    let acr = sp_access_token(&s, &app_id, &secret, ACR_SCOPE).await;
    let refresh = exchange_refresh(&s, &s.login_server("resetreg"), &acr).await.expect("exchange at resetreg");
    let access = field(&access(&s, "resetreg", &refresh).await, "access_token");
    let tokens = [(Door::Management, mgmt), (Door::RefreshAsBasic, refresh), (Door::AccessBearer, access)];
    for (door, token) in &tokens {
        expect_open(&format!("{door:?} before the reset"), &knock(&s, *door, "resetreg", token).await);
    }
    cli.run(&["ad", "sp", "credential", "reset", "--id", &app_id]).ok();
    let mut refusals = Refusals::new(&s);
    for (door, token) in &tokens {
        refusals.refused(*door, "resetreg", token, "was revoked by a cutoff", "after credential reset").await;
    }
}

/// Garbage in the token's place never makes a door answer 5xx; each answers in its protocol.
#[tokio::test]
async fn garbage_tokens_never_cause_a_server_error() {
    let s = TestServer::start().await;
    s.registry("garbage").await;
    let tokens = admin_tokens(&s, "garbage").await;
    let real_header = tokens[&Door::Management].split('.').next().unwrap().to_string();
    let random = |n: usize| URL_SAFE_NO_PAD.encode((0..n).map(|_| rand_byte()).collect::<Vec<u8>>());
    let third = "A".repeat(64 * 1024 / 3);
    let garbage: Vec<(&str, String)> = vec![
        ("empty", String::new()),
        ("three dots", "...".into()),
        ("two dots", "..".into()),
        ("not base64", "!!!.@@@.###".into()),
        ("random bytes in three segments", format!("{}.{}.{}", random(48), random(96), random(64))),
        ("random bytes in one segment", random(300)),
        ("64 KiB in one segment", "A".repeat(64 * 1024)),
        ("64 KiB in three segments", format!("{third}.{third}.{third}")),
        ("a header that is not an object", format!("{}.{}.{}", encode(&json!([1, 2])), random(40), random(64))),
        ("alg is a number", format!("{}.{}.{}", encode(&json!({"alg": 256, "kid": 7})), random(40), random(64))),
        (
            "kid is not a string",
            format!("{}.{}.{}", encode(&json!({"alg": "ES256", "kid": ["x"]})), random(40), random(64)),
        ),
        ("payload not JSON", format!("{real_header}.{}.{}", URL_SAFE_NO_PAD.encode("not json"), random(64))),
        ("a short signature", format!("{real_header}.{}.{}", encode(&json!({"exp": 1})), random(10))),
        ("non-ASCII text", "ünïcödé.tøkén.✓".into()),
        ("tab and spaces", "a\tb.c d.e  ".into()),
        ("invalid UTF-8", String::from_utf8_lossy(&[0xff, 0xfe, b'.', 0xc3, b'.', 0x80]).into_owned()),
    ];
    for door in Door::ALL {
        for (what, token) in &garbage {
            let r = knock(&s, door, "garbage", token).await;
            let what = format!("{door:?}: {what}");
            let st = r.status.as_u16();
            assert!(st < 500, "{what}: {} {}", r.status, r.text());
            // A 64 KiB token may exceed a form body's limit (413); otherwise the door refuses.
            // A 64 KiB token may exceed the limit of a form body (413) or of a request head (431);
            // otherwise the door refuses it in its protocol.
            if token.len() >= 60 * 1024 && (st == 413 || st == 431) {
                continue;
            }
            Refusals::shape(door.shape(), &s.login_server("garbage"), &r, &what);
        }
    }
    // Raw bytes that are not UTF-8 in the Authorization header itself.
    for door in [Door::Management, Door::Graph, Door::AccessBearer] {
        let raw = HeaderValue::from_bytes(b"Bearer \xff\xfe\x80abc").unwrap();
        let url = match door {
            Door::Management => {
                format!("{}/subscriptions/{}/resourcegroups?api-version=2022-12-01", s.base(), s.subscription)
            }
            Door::Graph => format!("{}/v1.0/me", s.base()),
            _ => format!("{}{}", s.base(), v2_path()),
        };
        let mut rb = s.client().get(url).header(AUTHORIZATION, raw);
        if door == Door::AccessBearer {
            rb = rb.header(HOST, s.login_server("garbage"));
        }
        let r = send(rb).await;
        Refusals::shape(door.shape(), &s.login_server("garbage"), &r, &format!("{door:?}: raw non-UTF-8 header"));
    }
    let log = s.log_text();
    assert!(!log.contains("panicked"), "the server panicked:\n{log}");
    for door in Door::ALL {
        expect_open(&format!("{door:?} after the garbage"), &knock(&s, door, "garbage", &tokens[&door]).await);
    }
}

fn rand_byte() -> u8 {
    let mut b = [0u8; 1];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b).expect("random");
    b[0]
}

/// The token endpoint signs no `access` entry for a repository name the data plane can never
/// serve (upper case, `..`, encoded separators, names past the length limit), whoever asks.
#[tokio::test]
async fn tokens_name_no_repository_the_registry_could_never_serve() {
    let s = TestServer::start().await;
    let reg = s.registry("namesreg").await;
    reg.push_image("team/app", "v1", "names").await;
    let (user, pass) = s.creds().unwrap();
    let service = s.login_server("namesreg");
    let long = format!("repository:{}:pull", "a".repeat(5000));
    for scope in ["repository:Team/App:pull", "repository:team/../app:pull", "repository:team%2Fapp:pull", &long] {
        let granted = s.granted(&user, &pass, &service, &[scope]).await;
        assert!(granted.is_empty(), "{scope}: {granted:?}");
    }
    // A valid name next to them is granted, so the refusal is per scope.
    let granted = s.granted(&user, &pass, &service, &["repository:team/app:pull", "repository:Team/App:pull"]).await;
    assert_eq!(granted.len(), 1, "{granted:?}");
    assert_eq!(granted[0]["name"], "team/app");
}
