//! The Entra-like endpoints a directory principal signs in through, shaped as Microsoft's so
//! that MSAL (az, azure-identity) works unmodified:
//! `POST /{tenant}/oauth2/v2.0/token` (`client_credentials`, `password`, `refresh_token`; a
//! user's answer carries `client_info` and, when `openid` is asked for, an ID token),
//! `GET /{tenant}/v2.0/.well-known/openid-configuration` and `GET /{tenant}/discovery/v2.0/keys`.
//!
//! Owns: routing these paths ([`EntraEndpoint`]), the grants, and Entra's error shape
//! ([`EntraError`], whose HTTP status follows from its OAuth2 error code).
//! Must never: say why a refresh token was refused (one answer; the reason is logged).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use wharf_identity::{DirectoryPrincipal, Validation};

use crate::http::Query;
use crate::model::directory;
use crate::state::AppState;

const REFRESH_AUDIENCE: &str = "urn:wharf:directory-refresh";
/// Lifetime of directory refresh tokens (users signing in with a password).
pub const REFRESH_LIFETIME_DAYS: i64 = 90;

#[derive(Debug, Serialize, Deserialize)]
struct DirectoryRefreshClaims {
    iss: String,
    aud: String,
    sub: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    jti: String,
}

/// An OpenID Connect ID token for a user who signed in with a password (MSAL reads the
/// user's name and tenant from it and keys its account cache on `client_info`). It is never an
/// access token: its audience is the client's application id (a GUID, never one of Wharf's
/// resource audiences), and it lacks the `idtyp`, `jti` and `wharf_principal_type` claims every
/// access-token validator requires.
#[derive(Debug, Serialize)]
struct IdTokenClaims {
    aud: String,
    iss: String,
    iat: i64,
    nbf: i64,
    exp: i64,
    sub: String,
    oid: String,
    tid: String,
    name: String,
    preferred_username: String,
    ver: &'static str,
}

/// OAuth2's error codes as Entra uses them; each has its HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthCode {
    InvalidRequest,
    InvalidScope,
    UnauthorizedClient,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    MethodNotAllowed,
    ServerError,
}

impl OAuthCode {
    fn wire(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest | OAuthCode::MethodNotAllowed => "invalid_request",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::ServerError => "server_error",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            OAuthCode::InvalidClient => StatusCode::UNAUTHORIZED,
            OAuthCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            OAuthCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

/// An OAuth2 error in Entra's shape (`AADSTS…` codes in the description).
#[derive(Debug, Clone)]
pub struct EntraError {
    pub code: OAuthCode,
    pub aadsts: u32,
    pub description: String,
}

impl EntraError {
    pub fn new(code: OAuthCode, aadsts: u32, description: impl Into<String>) -> EntraError {
        EntraError { code, aadsts, description: description.into() }
    }

    /// A failure of Wharf itself: logged, answered without details.
    fn internal(e: impl std::fmt::Display) -> EntraError {
        tracing::error!(error = %e, "token endpoint failure");
        EntraError::new(OAuthCode::ServerError, 90033, "A transient error has occurred. Please try again.")
    }
}

impl IntoResponse for EntraError {
    fn into_response(self) -> Response {
        let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let body = json!({
            "error": self.code.wire(),
            "error_description": format!("AADSTS{}: {}", self.aadsts, self.description),
            "error_codes": [self.aadsts],
            "timestamp": now,
            "trace_id": uuid::Uuid::new_v4().to_string(),
            "correlation_id": uuid::Uuid::new_v4().to_string(),
        });
        (self.code.status(), [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string())
            .into_response()
    }
}

/// An Entra request, parsed from its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntraEndpoint {
    Token,
    OpenIdConfiguration,
    Keys,
}

impl EntraEndpoint {
    /// The tenant segment and the endpoint of `/{tenant}/…`, if the path is Entra's.
    pub fn parse(path: &str) -> Option<(String, EntraEndpoint)> {
        let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (tenant, rest) = segs.split_first()?;
        let endpoint = match rest {
            ["oauth2", "v2.0", "token"] => EntraEndpoint::Token,
            ["v2.0", ".well-known", "openid-configuration"] => EntraEndpoint::OpenIdConfiguration,
            ["discovery", "v2.0", "keys"] | ["discovery", "keys"] => EntraEndpoint::Keys,
            _ => return None,
        };
        Some((tenant.to_string(), endpoint))
    }
}

/// Largest token request body accepted.
const MAX_BODY: usize = 1024 * 1024;

/// Serves a request that [`EntraEndpoint::parse`] recognised.
pub async fn handle(state: &AppState, tenant: &str, endpoint: EntraEndpoint, req: axum::extract::Request) -> Response {
    match serve(state, tenant, endpoint, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn serve(
    state: &AppState,
    tenant: &str,
    endpoint: EntraEndpoint,
    req: axum::extract::Request,
) -> Result<Response, EntraError> {
    let known_tenant = tenant.eq_ignore_ascii_case(&state.tenant_id) || matches!(tenant, "organizations" | "common");
    if !known_tenant {
        return Err(EntraError::new(
            OAuthCode::InvalidRequest,
            90002,
            format!(
                "Tenant '{tenant}' not found. Check the tenant id: this Wharf deployment's tenant is the one 'wharf account show' prints."
            ),
        ));
    }
    let (parts, body) = req.into_parts();
    let base = state.base_url(&parts.headers);
    match (endpoint, &parts.method) {
        (EntraEndpoint::OpenIdConfiguration, &http::Method::GET) => Ok(openid_configuration(state, &base)),
        (EntraEndpoint::Keys, &http::Method::GET) => {
            let jwks = state.identity.keys.read().expect("keys lock").jwks(chrono::Utc::now());
            Ok((
                StatusCode::OK,
                [(http::header::CONTENT_TYPE, "application/json")],
                serde_json::to_string(&jwks).expect("jwks"),
            )
                .into_response())
        }
        (EntraEndpoint::Token, &http::Method::POST) => {
            let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
                return Err(EntraError::new(OAuthCode::InvalidRequest, 90014, "The request body is too large."));
            };
            token(state, &Query::from_form(&body)).await
        }
        _ => Err(EntraError::new(OAuthCode::MethodNotAllowed, 900561, "The endpoint only accepts POST requests.")),
    }
}

fn openid_configuration(state: &AppState, base: &str) -> Response {
    let t = &state.tenant_id;
    let body = json!({
        "token_endpoint": format!("{base}/{t}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{base}/{t}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": state.identity.directory.issuer(),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{t}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{base}/{t}/oauth2/v2.0/logout"),
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "oid", "tid", "upn", "name"],
        "tenant_region_scope": "WW",
        "cloud_instance_name": "wharf",
        "cloud_graph_host_name": "graph.wharf",
        "msgraph_host": "graph.wharf",
    });
    (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The resource scope among the space-separated `scope` values (ignoring OIDC scopes).
fn resource_scope(scope: &str) -> Option<&str> {
    scope.split_whitespace().find(|s| !matches!(*s, "openid" | "profile" | "offline_access" | "email"))
}

async fn token(state: &AppState, form: &Query) -> Result<Response, EntraError> {
    let f = |k: &str| form.text(k);
    let Some(scope) = resource_scope(f("scope")) else {
        return Err(EntraError::new(
            OAuthCode::InvalidScope,
            70011,
            "The provided request must include a 'scope' input parameter naming a resource, e.g. https://management.core.windows.net//.default.",
        ));
    };
    let audience = match state.identity.scope_audience(scope) {
        Ok(a) => a,
        Err(_) => {
            return Err(EntraError::new(
                OAuthCode::InvalidScope,
                500011,
                format!("The resource principal named {scope} was not found in the tenant."),
            ));
        }
    };
    let meta = &*state.meta;
    let (principal, refresh_for): (DirectoryPrincipal, Option<String>) = match f("grant_type") {
        "client_credentials" => {
            let (client_id, secret) = (f("client_id"), f("client_secret"));
            let sp = match directory::find_sp_by_app_id(meta, client_id).await {
                Ok(Some(sp)) if sp.account_enabled => sp,
                Ok(found) => {
                    let reason = if found.is_some() {
                        "the service principal is disabled"
                    } else {
                        "no service principal has this application id"
                    };
                    tracing::warn!(client_id, reason, "client_credentials sign-in refused");
                    return Err(EntraError::new(
                        OAuthCode::UnauthorizedClient,
                        700016,
                        format!("Application with identifier '{client_id}' was not found in the directory."),
                    ));
                }
                Err(e) => return Err(EntraError::internal(e)),
            };
            if !directory::sp_secret_matches(&sp, secret) {
                tracing::warn!(app_id = %sp.app_id, reason = "the client secret does not match", "client_credentials sign-in refused");
                return Err(EntraError::new(
                    OAuthCode::InvalidClient,
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                ));
            }
            (DirectoryPrincipal::ServicePrincipal { object_id: sp.id, app_id: sp.app_id, builtin: sp.builtin }, None)
        }
        "password" => {
            let (username, password) = (f("username"), f("password"));
            match crate::auth::credentials::authenticate_user(&*state.meta, username, password).await {
                Ok(Some(p)) => {
                    let oid = object_id_of(&p);
                    (p, Some(oid))
                }
                Ok(None) => {
                    return Err(EntraError::new(
                        OAuthCode::InvalidGrant,
                        50126,
                        "Error validating credentials due to invalid username or password.",
                    ));
                }
                Err(e) => return Err(EntraError::internal(e)),
            }
        }
        "refresh_token" => match user_from_refresh(state, f("refresh_token")).await {
            Some(p) => {
                let oid = object_id_of(&p);
                (p, Some(oid))
            }
            // One answer whatever the reason (logged by `user_from_refresh`).
            None => {
                return Err(EntraError::new(
                    OAuthCode::InvalidGrant,
                    9002313,
                    "The refresh token was not accepted. Sign in again with 'wharf login'.",
                ));
            }
        },
        other => {
            return Err(EntraError::new(
                OAuthCode::UnsupportedGrantType,
                70003,
                format!("The app requested an unsupported grant type '{other}'."),
            ));
        }
    };
    let now = chrono::Utc::now();
    let issued = {
        let keys = state.identity.keys.read().expect("keys lock");
        state.identity.directory.issue(&keys, &principal, audience, now)
    };
    let issued = match issued {
        Ok(t) => t,
        Err(e) => return Err(EntraError::internal(e)),
    };
    let mut body = json!({
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": issued.expires_in,
        "ext_expires_in": issued.expires_in,
        "access_token": issued.token,
    });
    if let Some(oid) = refresh_for {
        match issue_refresh(state, &oid, now) {
            Ok(rt) => body["refresh_token"] = json!(rt),
            Err(e) => return Err(EntraError::internal(e)),
        }
    }
    if let DirectoryPrincipal::User { object_id, display_name, user_principal_name } = &principal {
        if f("client_info") == "1" {
            use base64::Engine;
            let info = json!({"uid": object_id, "utid": state.identity.directory.tenant_id()});
            body["client_info"] = json!(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(info.to_string()));
        }
        let client_id = f("client_id");
        if f("scope").split_whitespace().any(|s| s == "openid") && uuid::Uuid::parse_str(client_id).is_ok() {
            let claims = IdTokenClaims {
                aud: client_id.to_ascii_lowercase(),
                iss: state.identity.directory.issuer(),
                iat: now.timestamp(),
                nbf: now.timestamp(),
                exp: issued.expires_on,
                sub: object_id.clone(),
                oid: object_id.clone(),
                tid: state.identity.directory.tenant_id().to_string(),
                name: display_name.clone(),
                preferred_username: user_principal_name.clone(),
                ver: "2.0",
            };
            let keys = state.identity.keys.read().expect("keys lock");
            match wharf_identity::jwt::encode(&keys, &claims) {
                Ok(t) => body["id_token"] = json!(t),
                Err(e) => return Err(EntraError::internal(e)),
            }
        }
    }
    Ok((
        StatusCode::OK,
        [(http::header::CONTENT_TYPE, "application/json; charset=utf-8"), (http::header::CACHE_CONTROL, "no-store")],
        body.to_string(),
    )
        .into_response())
}

pub fn object_id_of(p: &DirectoryPrincipal) -> String {
    match p {
        DirectoryPrincipal::User { object_id, .. }
        | DirectoryPrincipal::ServicePrincipal { object_id, .. }
        | DirectoryPrincipal::ManagedIdentity { object_id, .. } => object_id.clone(),
    }
}

fn issue_refresh(
    state: &AppState,
    oid: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<String, wharf_identity::KeyError> {
    let t = now.timestamp();
    let claims = DirectoryRefreshClaims {
        iss: state.identity.directory.issuer(),
        aud: REFRESH_AUDIENCE.into(),
        sub: oid.into(),
        iat: t,
        nbf: t,
        exp: t + REFRESH_LIFETIME_DAYS * 86_400,
        jti: uuid::Uuid::new_v4().to_string(),
    };
    let keys = state.identity.keys.read().expect("keys lock");
    wharf_identity::jwt::encode(&keys, &claims)
}

async fn user_from_refresh(state: &AppState, token: &str) -> Option<DirectoryPrincipal> {
    let now = chrono::Utc::now();
    let claims = {
        let keys = state.identity.keys.read().expect("keys lock");
        let mut v = Validation::new(state.identity.directory.issuer(), [REFRESH_AUDIENCE])
            .with_leeway(state.identity.directory.leeway);
        v.max_lifetime = chrono::Duration::days(REFRESH_LIFETIME_DAYS + 1);
        match wharf_identity::jwt::verify::<DirectoryRefreshClaims>(&keys, token, &v, now) {
            Ok(c) => c.claims,
            Err(e) => {
                tracing::warn!(reason = %e, "directory refresh token rejected");
                return None;
            }
        }
    };
    use wharf_identity::RevocationCutoffs;
    let cutoff = state.identity.cutoffs().cutoff_for(&claims.sub);
    if let Err(e) = wharf_identity::jwt::check_revocation(claims.iat, cutoff) {
        tracing::warn!(reason = %e, "directory refresh token revoked");
        return None;
    }
    let user = match directory::get_user(&*state.meta, &claims.sub).await {
        Ok(Some(u)) if u.account_enabled => u,
        Ok(found) => {
            let reason = if found.is_some() { "the account is disabled" } else { "the user no longer exists" };
            tracing::warn!(reason, user = %claims.sub, "directory refresh token rejected");
            return None;
        }
        Err(e) => {
            tracing::error!(error = %e, "directory refresh token: reading the user failed");
            return None;
        }
    };
    Some(DirectoryPrincipal::User {
        object_id: user.id,
        display_name: user.display_name,
        user_principal_name: user.user_principal_name,
    })
}
