//! The registry token endpoints, as ACR serves them on each login server:
//! `POST /oauth2/exchange` (a directory access token for a registry refresh token) and
//! `GET|POST /oauth2/token` (a refresh token, Basic credentials or none for an access token
//! whose `access` claim lists what the decision engine granted).
//!
//! Token `service` values: host style uses the login server (`{registry}.{domain}[:port]`).
//! Path style on another host uses that host for every request (clients reuse the service of
//! the `/v2/` challenge for all scopes), so the registry is taken from the first segment of the
//! first repository scope, stripped from the scopes, and scopes of other registries are dropped:
//! `access` entries always name repositories inside one registry, and a token is bound to that
//! registry. Without a repository scope the token is deployment-level (ping, path-style
//! catalog). Every request is judged by the registry's network rules with the caller it
//! authenticates; a credential that fails from an address the rules block gets the firewall's
//! 403, as with ACR.
//!
//! Must never: grant anything itself (`auth::grant` decides), or issue a token bound to a
//! registry other than the one it names.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use wharf_identity::{Audience, BasicCredentials, RegistrySubject};
use wharf_vocab::PrincipalType;

use crate::auth::{credentials, grant};
use crate::http::oci::{Code, OciError, OciResult};
use crate::http::{Authorization, Query, json_response};
use crate::network::{Gate, Origin};
use crate::state::{AppState, HostRegistry, RegistryInfo};

/// Largest token request body accepted.
const MAX_BODY: usize = 64 * 1024;

/// Entry point for `/oauth2/exchange` and `/oauth2/token`.
pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let mut resp = match dispatch(&state, parts, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    resp.headers_mut().insert(crate::http::oci::API_VERSION_HEADER, http::HeaderValue::from_static("registry/2.0"));
    resp
}

async fn dispatch(state: &AppState, parts: http::request::Parts, body: Body) -> OciResult<Response> {
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return Err(OciError::new(Code::RequestTooLarge, "the token request body is larger than 64 KiB"));
    };
    let origin = Origin::of(
        crate::network::TrustedProxies::of(&state.config),
        parts.extensions.get::<crate::listener::ConnInfo>(),
        &parts.headers,
    );
    let mut params = Query::parse(parts.uri.query());
    match (parts.uri.path(), &parts.method) {
        ("/oauth2/exchange", &Method::POST) => exchange(state, &origin, &Query::from_form(&body)).await,
        ("/oauth2/token", &Method::GET | &Method::POST) => {
            if parts.method == Method::POST {
                params.extend(Query::from_form(&body));
            }
            token(state, &origin, &parts.headers, &params).await
        }
        _ => Err(OciError::method_not_allowed("use POST /oauth2/exchange, or GET or POST /oauth2/token")),
    }
}

fn invalid_request(message: impl Into<String>) -> OciError {
    OciError::new(Code::TokenRequestInvalid, message)
}

fn unauthorized(message: &str) -> OciError {
    OciError::new(Code::Unauthorized, message)
}

/// The registry a `service` names: `Some` for a login server of an existing registry, `None`
/// for any other host (path style).
async fn service_registry(state: &AppState, service: &str) -> OciResult<Option<Arc<RegistryInfo>>> {
    match state.registry_of_host(service).await {
        Ok(HostRegistry::Registry(r)) => Ok(Some(r)),
        Ok(HostRegistry::Unknown(_) | HostRegistry::NotALoginServer) => Ok(None),
        Err(e) => Err(OciError::from_storage("resolving a service", e)),
    }
}

/// `POST /oauth2/exchange`: a directory access token for a registry refresh token.
async fn exchange(state: &AppState, origin: &Origin, form: &Query) -> OciResult<Response> {
    if form.text("grant_type") != "access_token" {
        return Err(invalid_request("unsupported grant_type: use access_token"));
    }
    let service = form.text("service");
    let Some(registry) = service_registry(state, service).await? else {
        return Err(invalid_request(format!("service '{service}' is not a registry of this deployment")));
    };
    let gate = Gate::open(registry.guarded(), origin);
    let mut accepted = vec![Audience::ContainerRegistry];
    let arm_audience =
        registry.properties.policies["azureADAuthenticationAsArmPolicy"]["status"].as_str() != Some("disabled");
    if arm_audience {
        accepted.push(Audience::Management);
    }
    let now = chrono::Utc::now();
    let validated = {
        let keys = state.identity.keys.read().expect("keys lock");
        state.identity.directory.validate(&keys, form.text("access_token"), &accepted, now, &state.identity.cutoffs())
    };
    let claims = match validated {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(reason = %e, service, "exchange: directory token rejected");
            return Err(match gate.refuse_unauthenticated() {
                Some(denied) => denied.into(),
                None => unauthorized("the access token is invalid"),
            });
        }
    };
    let subject = RegistrySubject::from_directory(&claims);
    gate.admit(&crate::network::caller_of(&subject))?;
    let ctx = credentials::context(service, Some(&registry));
    let keys = state.identity.keys.read().expect("keys lock");
    match state.identity.registry.issue_refresh(&keys, &subject, &ctx, now) {
        Ok(t) => Ok(json_response(StatusCode::OK, &json!({"refresh_token": t.token}))),
        Err(e) => Err(OciError::internal("issuing a refresh token", e)),
    }
}

/// `GET|POST /oauth2/token`: an access token for the requested scopes.
async fn token(state: &AppState, origin: &Origin, headers: &http::HeaderMap, params: &Query) -> OciResult<Response> {
    let service = params.text("service").to_string();
    let mut scopes = wharf_identity::parse_scopes(params.all("scope"))
        .map_err(|e| invalid_request(format!("invalid scope: {e}")))?;
    let registry = match service_registry(state, &service).await? {
        Some(r) => Some(r),
        None => {
            // Path style: the registry is the first segment of the first repository scope.
            let first = scopes
                .iter()
                .find(|s| s.resource_type == "repository")
                .and_then(|s| s.name.split_once('/'))
                .map(|(r, _)| r.to_string());
            let reg = match first {
                Some(name) => {
                    state.registry(&name).await.map_err(|e| OciError::from_storage("resolving a registry", e))?
                }
                None => None,
            };
            // Scope names carry the registry prefix in path style; access entries do not, and
            // scopes of other registries are dropped (a token is bound to one registry).
            let prefix = reg.as_ref().map(|r| format!("{}/", r.name.to_ascii_lowercase())).unwrap_or_default();
            scopes.retain_mut(|s| {
                if s.resource_type != "repository" {
                    return true;
                }
                match s.name.strip_prefix(&prefix) {
                    Some(rest) if !rest.is_empty() => {
                        s.name = rest.to_string();
                        true
                    }
                    _ => false,
                }
            });
            reg
        }
    };
    let gate = registry.as_ref().map(|r| Gate::open(r.guarded(), origin));
    let refuse = |message: &str| -> OciError {
        match gate.as_ref().and_then(Gate::refuse_unauthenticated) {
            Some(denied) => denied.into(),
            None => unauthorized(message),
        }
    };
    let ctx = credentials::context(&service, registry.as_deref());
    let basic = match crate::http::authorization(headers) {
        Authorization::Unreadable => {
            tracing::warn!(service, "registry token request refused: the Authorization header is not visible ASCII");
            return Err(refuse("authentication required: the credentials are invalid"));
        }
        Authorization::Basic(v) => Some(wharf_identity::parse_basic_authorization(v)),
        Authorization::None | Authorization::Bearer(_) | Authorization::Other => None,
    };
    let creds: Option<BasicCredentials> = match (params.text("grant_type"), basic) {
        ("refresh_token", _) => Some(BasicCredentials {
            username: wharf_identity::NULL_GUID_USERNAME.to_string(),
            password: params.text("refresh_token").to_string(),
        }),
        (_, Some(Ok(c))) => Some(c),
        (_, Some(Err(e))) => {
            tracing::warn!(reason = %e, service, "registry token request with a malformed Basic Authorization header");
            return Err(refuse("malformed Basic credentials"));
        }
        ("password", None) if !params.text("username").is_empty() => Some(BasicCredentials {
            username: params.text("username").to_string(),
            password: params.text("password").to_string(),
        }),
        _ => None,
    };
    let subject = match &creds {
        Some(c) => match credentials::basic_subject(state, registry.as_deref(), &ctx, c).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(refuse("authentication required: the credentials are invalid")),
            Err(e) => return Err(OciError::from_storage("checking credentials", e)),
        },
        None => {
            if !registry.as_ref().is_some_and(|r| r.properties.anonymous_pull_enabled) {
                return Err(refuse("authentication required: this registry does not allow anonymous pull"));
            }
            RegistrySubject::local(PrincipalType::Anonymous, "anonymous", "anonymous")
        }
    };
    if let Some(gate) = &gate {
        gate.admit(&crate::network::caller_of(&subject))?;
    }
    let environment = match &registry {
        Some(reg) => crate::network::environment(&reg.network, &origin.arrival, Some(origin.client_ip)),
        None => wharf_authz::EnvironmentAttributes::default(),
    };
    let granted = grant::grant(state, &subject, registry.as_deref(), &scopes, &environment);
    let now = chrono::Utc::now();
    let keys = state.identity.keys.read().expect("keys lock");
    match state.identity.registry.issue_access(&keys, &subject, &ctx, granted, now) {
        Ok(t) => Ok(json_response(
            StatusCode::OK,
            &json!({"access_token": t.token, "token": t.token, "expires_in": t.expires_in, "issued_at": now.to_rfc3339()}),
        )),
        Err(e) => Err(OciError::internal("issuing an access token", e)),
    }
}
