//! ACR's data-plane authentication: challenges, the credentials a request may carry (Bearer
//! access tokens, Basic with a service principal, a directory user, the admin user, or the null
//! GUID with a refresh token), `/oauth2/exchange`, `/oauth2/token`, and the check of each
//! request against what its credential grants.
//!
//! Token `service` values: host style uses the login server (`{registry}.{domain}[:port]`).
//! Path style on another host uses that host for every request (clients reuse the service of
//! the `/v2/` challenge for all scopes), so the token endpoint takes the registry from the
//! first segment of the scope's repository names and strips it: `access` entries always name
//! repositories inside one registry, and a token is bound to that registry. Without a
//! repository scope it yields a deployment-level token (ping, path-style catalog).

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sha2::{Digest as _, Sha256};
use wharf_authz::EnvironmentAttributes;
use wharf_identity::{
    AccessClaims, AccessEntry, Audience, BasicCredentials, BasicUsername, PrincipalType, RegistryContext,
    RegistrySubject, RoleAssignmentMode, Scope,
};

use super::{CachedAuth, directory, entra};
use crate::oci::endpoint::Endpoint;
use crate::oci::error::{Code, OciError};
use crate::state::{AppState, RegistryInfo};

/// Seconds a verified Basic credential is remembered.
const BASIC_CACHE_SECONDS: i64 = 60;

/// What the request's credential allows, once authenticated.
#[derive(Clone)]
pub enum Access {
    /// A Bearer access token: exactly its `access` entries.
    Token(Arc<AccessClaims>),
    /// Basic credentials (or none): what [`super::grant_in`] gives this subject on `registry`, judged
    /// with the ABAC environment of the request's network path.
    Subject { subject: RegistrySubject, registry: Option<Arc<RegistryInfo>>, environment: Arc<EnvironmentAttributes> },
}

impl Access {
    fn anonymous(registry: Option<Arc<RegistryInfo>>, environment: Arc<EnvironmentAttributes>) -> Access {
        Access::Subject {
            subject: RegistrySubject::local(PrincipalType::Anonymous, "anonymous", "anonymous"),
            registry,
            environment,
        }
    }

    pub fn is_anonymous(&self) -> bool {
        matches!(self, Access::Subject { subject, .. } if subject.principal_type == PrincipalType::Anonymous)
    }

    /// Who the credential stands for.
    pub fn subject(&self) -> RegistrySubject {
        match self {
            Access::Token(c) => RegistrySubject::from_binding(&c.sub, &c.binding),
            Access::Subject { subject, .. } => subject.clone(),
        }
    }

    /// Whether the caller may list `registry`'s catalog, judged afresh by the engine (for
    /// listings that span registries).
    pub fn may_list(&self, state: &AppState, registry: &RegistryInfo) -> bool {
        let scope = Scope { resource_type: "registry".into(), name: "catalog".into(), actions: vec!["*".into()] };
        let none = EnvironmentAttributes::default();
        let environment = match self {
            Access::Subject { environment, .. } => environment.as_ref(),
            Access::Token(_) => &none,
        };
        !super::grant_in(state, &self.subject(), Some(registry), &[scope], environment).is_empty()
    }

    /// The principal the credential stands for.
    pub fn principal_id(&self) -> Option<&str> {
        match self {
            Access::Token(c) => Some(&c.binding.wharf_principal_id),
            Access::Subject { subject, .. } => Some(&subject.principal_id),
        }
    }

    /// Whether `action` on `resource_type:name` is allowed.
    pub fn allows(&self, state: &AppState, resource_type: &str, name: &str, action: &str) -> bool {
        match self {
            Access::Token(c) => c.allows(resource_type, name, action),
            Access::Subject { subject, registry, environment } => {
                let scope =
                    Scope { resource_type: resource_type.into(), name: name.into(), actions: vec![action.into()] };
                let granted = super::grant_in(state, subject, registry.as_deref(), &[scope], environment);
                wharf_identity::allows(&granted, resource_type, name, action)
            }
        }
    }
}

/// What an endpoint needs: one of `actions` on `resource_type:name`.
#[derive(Debug, Clone, PartialEq)]
pub struct Required {
    pub resource_type: &'static str,
    pub name: String,
    pub actions: &'static [&'static str],
}

impl Required {
    fn scope(&self) -> String {
        format!("{}:{}:{}", self.resource_type, self.name, self.actions[0])
    }
}

/// The Docker scope action each endpoint needs (one table; the authorization engine maps these
/// actions onto data actions). `repo` is the repository inside the registry.
pub fn required(endpoint: &Endpoint, repo: &str) -> Option<Required> {
    use Endpoint::*;
    let r = |actions: &'static [&'static str]| {
        Some(Required { resource_type: "repository", name: repo.to_string(), actions })
    };
    match endpoint {
        Ping => None,
        Catalog | AcrCatalog => Some(Required { resource_type: "registry", name: "catalog".into(), actions: &["*"] }),
        HeadBlob { .. } | GetBlob { .. } | GetManifest { .. } | HeadManifest { .. } => r(&["pull"]),
        ListTags { .. } | ListReferrers { .. } => r(&["pull", "metadata_read"]),
        StartUpload { .. }
        | UploadStatus { .. }
        | PatchUpload { .. }
        | PutUpload { .. }
        | CancelUpload { .. }
        | PutManifest { .. } => r(&["push"]),
        DeleteBlob { .. }
        | DeleteManifest { .. }
        | AcrDeleteRepository { .. }
        | AcrDeleteTag { .. }
        | AcrDeleteManifest { .. } => r(&["delete"]),
        AcrGetRepository { .. }
        | AcrListTags { .. }
        | AcrGetTag { .. }
        | AcrListManifests { .. }
        | AcrGetManifest { .. } => r(&["metadata_read"]),
        AcrPatchRepository { .. } | AcrPatchTag { .. } | AcrPatchManifest { .. } => r(&["metadata_write"]),
    }
}

/// The token context a request is judged in.
pub fn context(service: &str, registry: Option<&RegistryInfo>) -> RegistryContext {
    RegistryContext {
        login_server: service.to_ascii_lowercase(),
        registry_id: registry.map(|r| r.resource_id.clone()).unwrap_or_default(),
        mode: match registry.map(|r| r.properties.role_assignment_mode) {
            Some(wharf_arm::registry::RoleAssignmentMode::AbacRepositoryPermissions) => {
                RoleAssignmentMode::AbacRepositoryPermissions
            }
            _ => RoleAssignmentMode::LegacyRegistryPermissions,
        },
    }
}

fn cache_key(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    h.finalize().into()
}

/// A 401 with ACR's challenge and body.
pub fn challenge(base: &str, service: &str, required: Option<&Required>, invalid_token: bool) -> OciError {
    let mut value = format!("Bearer realm=\"{base}/oauth2/token\",service=\"{service}\"");
    if let Some(r) = required {
        value.push_str(&format!(",scope=\"{}\"", r.scope()));
    }
    if invalid_token {
        value.push_str(",error=\"invalid_token\"");
    }
    let detail = required.map(|r| json!([{"Type": r.resource_type, "Name": r.name, "Action": r.actions[0]}]));
    let mut e = OciError::new(
        StatusCode::UNAUTHORIZED,
        Code::Unauthorized,
        "authentication required, visit https://aka.ms/acr/authorization for more information.",
    )
    .header(http::header::WWW_AUTHENTICATE, value);
    if let Some(d) = detail {
        e = e.detail(d);
    }
    e
}

/// Resolves Basic credentials to a subject, or `None` if they are wrong. Reasons are logged.
pub async fn basic_subject(
    state: &AppState,
    registry: Option<&RegistryInfo>,
    ctx: &RegistryContext,
    creds: &BasicCredentials,
) -> Result<Option<RegistrySubject>, wharf_storage::StorageError> {
    // The mode is part of the key: a refresh token remembered under one role-assignment mode
    // must be validated again (and refused) after a mode switch.
    let mode = ctx.mode.to_string();
    let key = cache_key(&["basic", &ctx.login_server, &ctx.registry_id, &mode, &creds.username, &creds.password]);
    if let Some(CachedAuth::Subject(s)) = state.identity.cache_get(&key) {
        return Ok(Some(s));
    }
    let now = chrono::Utc::now();
    // A subject is remembered for BASIC_CACHE_SECONDS, and never past the end of the refresh
    // token it came from (expiry plus the allowed skew).
    let mut cache_until = now.timestamp() + BASIC_CACHE_SECONDS;
    let subject = match creds.username_kind() {
        BasicUsername::RefreshToken => {
            let keys = state.identity.keys.read().expect("keys lock");
            match state.identity.registry.validate_refresh(&keys, &creds.password, ctx, now, &state.identity.cutoffs())
            {
                Ok(c) => {
                    cache_until = cache_until.min(c.exp + state.identity.registry.leeway.num_seconds());
                    Some(RegistrySubject::from_binding(&c.sub, &c.binding))
                }
                Err(e) => {
                    tracing::warn!(reason = %e, service = %ctx.login_server, "refresh token rejected");
                    None
                }
            }
        }
        BasicUsername::AppId(app_id) => {
            let refused = |reason: &str| {
                tracing::warn!(app_id = %app_id, reason, service = %ctx.login_server, "Basic credentials of a service principal rejected");
                None
            };
            match directory::find_sp_by_app_id(&*state.meta, &app_id.to_string()).await? {
                None => refused("no service principal has this application id"),
                Some(sp) if !sp.account_enabled => refused("the service principal is disabled"),
                Some(sp) if !directory::sp_secret_matches(&sp, &creds.password) => {
                    refused("the client secret does not match")
                }
                Some(sp) => {
                    let p = wharf_identity::DirectoryPrincipal::ServicePrincipal {
                        object_id: sp.id.clone(),
                        app_id: sp.app_id.clone(),
                        builtin: sp.builtin.clone(),
                    };
                    Some(subject_of(state, &p))
                }
            }
        }
        BasicUsername::Name(name) if name.contains('@') => {
            entra::authenticate_user(state, name, &creds.password).await?.map(|p| subject_of(state, &p))
        }
        BasicUsername::Name(name) => match registry {
            Some(reg) if reg.name.eq_ignore_ascii_case(name) && reg.properties.admin_user_enabled => {
                if admin_password_matches(state, reg, &creds.password).await? {
                    Some(RegistrySubject::local(
                        PrincipalType::RegistryAdmin,
                        format!("admin:{}", reg.key.0),
                        reg.name.to_ascii_lowercase(),
                    ))
                } else {
                    tracing::warn!(registry = %reg.name, "admin user password rejected");
                    None
                }
            }
            _ => {
                tracing::warn!(username = %name, "Basic credentials for an unknown user (admin user disabled or wrong registry?)");
                None
            }
        },
    };
    if let Some(s) = &subject {
        state.identity.cache_put(key, CachedAuth::Subject(s.clone()), cache_until);
    }
    Ok(subject)
}

fn subject_of(state: &AppState, p: &wharf_identity::DirectoryPrincipal) -> RegistrySubject {
    let claims = state.identity.directory.claims_for(p, Audience::ContainerRegistry, chrono::Utc::now());
    RegistrySubject::from_directory(&claims)
}

// ---- the admin user ----

/// The admin user's passwords are derived, not stored: HMAC(deployment key, registry key,
/// password name, generation). ACR shows them again on `credential show`, so they must be
/// recoverable; deriving them keeps them out of the database.
pub async fn admin_passwords(
    state: &AppState,
    reg_key: &str,
) -> Result<[(String, String); 2], wharf_storage::StorageError> {
    let gens = admin_generations(state, reg_key).await?;
    let key = state.secret_key();
    Ok(["password", "password2"].map(|name| {
        let g = gens.get(name).copied().unwrap_or(0);
        let v = wharf_identity::fingerprint(&key, &format!("admin|{reg_key}|{name}|{g}"));
        (
            name.to_string(),
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                hex::decode(&v[..48]).unwrap_or_default(),
            ),
        )
    }))
}

async fn admin_generations(
    state: &AppState,
    reg_key: &str,
) -> Result<HashMap<String, u64>, wharf_storage::StorageError> {
    Ok(state
        .meta
        .setting_get(&format!("admin.{reg_key}"))
        .await?
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default())
}

/// `regenerateCredential`: a new value for `password` or `password2`.
pub async fn regenerate_admin_password(
    state: &AppState,
    reg_key: &str,
    name: &str,
) -> Result<(), wharf_storage::StorageError> {
    let mut gens = admin_generations(state, reg_key).await?;
    *gens.entry(name.to_string()).or_insert(0) += 1;
    state.meta.setting_put(&format!("admin.{reg_key}"), &serde_json::to_string(&gens).expect("map")).await?;
    state.identity.cache.lock().expect("auth cache lock").clear();
    Ok(())
}

async fn admin_password_matches(
    state: &AppState,
    reg: &RegistryInfo,
    password: &str,
) -> Result<bool, wharf_storage::StorageError> {
    let pw = admin_passwords(state, &reg.key.0).await?;
    Ok(pw.iter().any(|(_, v)| wharf_identity::secret::constant_time_eq(v.as_bytes(), password.as_bytes())))
}

// ---- the per-request check ----

/// Authenticates a data-plane request and checks it against what its credential allows.
/// `registry` is the addressed registry (None for a path-style catalog or ping), `repo` the
/// repository inside it, `service` the token service this request is judged under,
/// `environment` builds the ABAC attributes of its network path; it runs only for Basic
/// credentials and anonymous callers (a Bearer token carries what was granted at issue).
#[allow(clippy::too_many_arguments)]
pub async fn check(
    state: &AppState,
    headers: &HeaderMap,
    registry: Option<&Arc<RegistryInfo>>,
    service: &str,
    endpoint: &Endpoint,
    repo: &str,
    client_prefix: &str,
    environment: impl FnOnce() -> EnvironmentAttributes,
) -> Result<Access, OciError> {
    let base = state.base_url(headers);
    let need = required(endpoint, repo);
    // Challenges name the repository as the client spells it (with the registry in path style).
    let shown = need.as_ref().map(|r| Required {
        name: if r.resource_type == "repository" { format!("{client_prefix}{}", r.name) } else { r.name.clone() },
        ..r.clone()
    });
    // The shared registry record, not a copy: with hundreds of network rules a copy per request
    // costs more than the whole network check.
    let registry_arc = registry.cloned();
    let registry = registry.map(Arc::as_ref);
    let ctx = context(service, registry);
    // Fail closed: an Authorization header that is not visible ASCII is refused, not ignored.
    let auth = match headers.get(http::header::AUTHORIZATION).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            tracing::warn!(service, "data-plane request refused: the Authorization header is not visible ASCII");
            return Err(challenge(&base, service, shown.as_ref(), true));
        }
    };
    let access = match auth {
        None => Access::anonymous(registry_arc.clone(), Arc::new(environment())),
        Some(v) if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") => {
            let token = v[7..].trim();
            let key = cache_key(&["access", &ctx.login_server, &ctx.registry_id, token]);
            let claims = match state.identity.cache_get(&key) {
                // A cached token is re-checked against the registry as it is now: a mode switch
                // or another registry invalidates it, as a fresh validation would.
                Some(CachedAuth::Access(c))
                    if c.binding.wharf_registry == ctx.registry_id
                        && wharf_identity::check_mode(&c.binding, ctx.mode).is_ok() =>
                {
                    c
                }
                _ => {
                    let keys = state.identity.keys.read().expect("keys lock");
                    let validated = state.identity.registry.validate_access(
                        &keys,
                        token,
                        &ctx,
                        chrono::Utc::now(),
                        &state.identity.cutoffs(),
                    );
                    drop(keys);
                    match validated {
                        Ok(c) => {
                            let c = Arc::new(c);
                            state.identity.cache_put(key, CachedAuth::Access(c.clone()), c.exp);
                            c
                        }
                        Err(e) => {
                            tracing::warn!(reason = %e, service, "registry access token rejected");
                            return Err(challenge(&base, service, shown.as_ref(), true));
                        }
                    }
                }
            };
            Access::Token(claims)
        }
        Some(v) => match wharf_identity::parse_basic_authorization(v) {
            Ok(creds) => match basic_subject(state, registry, &ctx, &creds).await {
                Ok(Some(subject)) => {
                    Access::Subject { subject, registry: registry_arc.clone(), environment: Arc::new(environment()) }
                }
                Ok(None) => return Err(challenge(&base, service, shown.as_ref(), true)),
                Err(e) => return Err(OciError::internal("checking credentials", e)),
            },
            Err(e) => {
                tracing::warn!(reason = %e, "malformed Authorization header");
                return Err(challenge(&base, service, shown.as_ref(), true));
            }
        },
    };
    match &need {
        None => {
            // `/v2/` answers 200 only to an authenticated caller, so clients learn the realm.
            if access.is_anonymous() {
                return Err(challenge(&base, service, None, false));
            }
        }
        Some(r) => {
            let ok = r.actions.iter().any(|a| access.allows(state, r.resource_type, &r.name, a));
            if !ok {
                let invalid = !access.is_anonymous();
                if invalid {
                    tracing::info!(service, scope = %r.scope(), "request not covered by its credential");
                }
                return Err(challenge(&base, service, shown.as_ref(), false));
            }
        }
    }
    Ok(access)
}

/// Who a request's credential stands for, if it is valid for this registry, regardless of what
/// it grants (network decisions need the caller even when authorization will refuse it).
pub async fn authenticated_subject(
    state: &AppState,
    headers: &HeaderMap,
    registry: Option<&RegistryInfo>,
    service: &str,
) -> Option<RegistrySubject> {
    let ctx = context(service, registry);
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    if v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer ") {
        let keys = state.identity.keys.read().expect("keys lock");
        let c = state
            .identity
            .registry
            .validate_access(&keys, v[7..].trim(), &ctx, chrono::Utc::now(), &state.identity.cutoffs())
            .ok()?;
        return Some(RegistrySubject::from_binding(&c.sub, &c.binding));
    }
    let creds = wharf_identity::parse_basic_authorization(v).ok()?;
    basic_subject(state, registry, &ctx, &creds).await.ok().flatten()
}

// ---- /oauth2/exchange and /oauth2/token ----

fn token_error(status: StatusCode, message: &str) -> Response {
    let body = json!({"errors": [{"code": "UNAUTHORIZED", "message": message}]});
    (status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string()).into_response()
}

/// Resolves a `service` value: `Some(registry)` for a login server of this deployment, `None`
/// for any other host (path style).
pub async fn service_registry(
    state: &AppState,
    service: &str,
) -> Result<Option<Arc<RegistryInfo>>, wharf_storage::StorageError> {
    let lower = service.to_ascii_lowercase();
    let host =
        lower.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map(|(h, _)| h).unwrap_or(&lower);
    let suffix = format!(".{}", state.config.domain);
    match host.strip_suffix(&suffix) {
        Some(label) if !label.is_empty() && !label.contains('.') => state.registry(label).await,
        _ => Ok(None),
    }
}

/// `POST /oauth2/exchange`: a directory access token for a registry refresh token.
pub async fn exchange(state: &AppState, origin: &crate::network::Origin, body: &[u8]) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let f = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    if f("grant_type") != "access_token" {
        return token_error(StatusCode::BAD_REQUEST, "unsupported grant_type: use access_token");
    }
    let service = f("service");
    let registry = match service_registry(state, service).await {
        Ok(r) => r,
        Err(e) => return OciError::internal("resolving a service", e).into_response(),
    };
    let Some(registry) = registry else {
        return token_error(
            StatusCode::BAD_REQUEST,
            &format!("service '{service}' is not a registry of this deployment"),
        );
    };
    let mut accepted = vec![Audience::ContainerRegistry];
    let arm_audience =
        registry.properties.policies["azureADAuthenticationAsArmPolicy"]["status"].as_str() != Some("disabled");
    if arm_audience {
        accepted.push(Audience::Management);
    }
    let now = chrono::Utc::now();
    let ctx = context(service, Some(&registry));
    let keys = state.identity.keys.read().expect("keys lock");
    let claims =
        match state.identity.directory.validate(&keys, f("access_token"), &accepted, now, &state.identity.cutoffs()) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(reason = %e, service, "exchange: directory token rejected");
                if let Some(denied) = crate::network::refuse_unauthenticated(Some(&*registry), origin) {
                    return denied;
                }
                return token_error(StatusCode::UNAUTHORIZED, "the access token is invalid");
            }
        };
    drop(keys);
    let subject = RegistrySubject::from_directory(&claims);
    if let Err(resp) =
        crate::network::judge(&registry, &registry.network, origin, Some(&crate::network::caller_of(&subject)))
    {
        return resp;
    }
    let keys = state.identity.keys.read().expect("keys lock");
    match state.identity.registry.issue_refresh(&keys, &subject, &ctx, now) {
        Ok(t) => (
            StatusCode::OK,
            [(http::header::CONTENT_TYPE, "application/json")],
            json!({"refresh_token": t.token}).to_string(),
        )
            .into_response(),
        Err(e) => OciError::internal("issuing a refresh token", e).into_response(),
    }
}

/// `GET|POST /oauth2/token`: an access token for the requested scopes.
pub async fn token(
    state: &AppState,
    origin: &crate::network::Origin,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    method: &http::Method,
    body: &[u8],
) -> Response {
    let mut params: Vec<(String, String)> = query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if *method == http::Method::POST {
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    let get = |k: &str| params.iter().find(|(pk, _)| pk == k).map(|(_, v)| v.as_str()).unwrap_or("");
    let service = get("service").to_string();
    let scopes_raw: Vec<&str> = params.iter().filter(|(k, _)| k == "scope").map(|(_, v)| v.as_str()).collect();
    let mut scopes = match wharf_identity::parse_scopes(scopes_raw.iter().copied()) {
        Ok(s) => s,
        Err(e) => return token_error(StatusCode::BAD_REQUEST, &format!("invalid scope: {e}")),
    };
    let registry = match service_registry(state, &service).await {
        Ok(r) => r,
        Err(e) => return OciError::internal("resolving a service", e).into_response(),
    };
    let registry = match registry {
        Some(r) => Some(r),
        None => {
            // Path style: the registry is the first segment of the first repository scope.
            let first = scopes
                .iter()
                .find(|s| s.resource_type == "repository")
                .and_then(|s| s.name.split_once('/'))
                .map(|(r, _)| r.to_string());
            let reg = match first {
                Some(name) => match state.registry(&name).await {
                    Ok(r) => r,
                    Err(e) => return OciError::internal("resolving a registry", e).into_response(),
                },
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
    let ctx = context(&service, registry.as_deref());
    let anonymous_pull = registry.as_ref().is_some_and(|r| r.properties.anonymous_pull_enabled);
    if headers.get(http::header::AUTHORIZATION).is_some_and(|v| v.to_str().is_err()) {
        tracing::warn!(service, "registry token request refused: the Authorization header is not visible ASCII");
        return crate::network::refuse_unauthenticated(registry.as_deref(), origin).unwrap_or_else(|| {
            token_error(StatusCode::UNAUTHORIZED, "authentication required: the credentials are invalid")
        });
    }
    let basic = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() > 6 && v[..6].eq_ignore_ascii_case("basic "))
        .map(wharf_identity::parse_basic_authorization);
    let grant_type = get("grant_type");
    let creds: Option<BasicCredentials> = match (grant_type, basic) {
        ("refresh_token", _) => Some(BasicCredentials {
            username: wharf_identity::NULL_GUID_USERNAME.to_string(),
            password: get("refresh_token").to_string(),
        }),
        (_, Some(Ok(c))) => Some(c),
        (_, Some(Err(e))) => {
            tracing::warn!(reason = %e, service, "registry token request with a malformed Basic Authorization header");
            return crate::network::refuse_unauthenticated(registry.as_deref(), origin)
                .unwrap_or_else(|| token_error(StatusCode::UNAUTHORIZED, "malformed Basic credentials"));
        }
        ("password", None) if !get("username").is_empty() => {
            Some(BasicCredentials { username: get("username").to_string(), password: get("password").to_string() })
        }
        _ => None,
    };
    let subject = match &creds {
        Some(c) => match basic_subject(state, registry.as_deref(), &ctx, c).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                return crate::network::refuse_unauthenticated(registry.as_deref(), origin).unwrap_or_else(|| {
                    token_error(StatusCode::UNAUTHORIZED, "authentication required: the credentials are invalid")
                });
            }
            Err(e) => return OciError::internal("checking credentials", e).into_response(),
        },
        None => {
            if !anonymous_pull {
                return crate::network::refuse_unauthenticated(registry.as_deref(), origin).unwrap_or_else(|| {
                    token_error(
                        StatusCode::UNAUTHORIZED,
                        "authentication required: this registry does not allow anonymous pull",
                    )
                });
            }
            RegistrySubject::local(PrincipalType::Anonymous, "anonymous", "anonymous")
        }
    };
    if let Some(reg) = &registry
        && let Err(resp) = crate::network::judge(reg, &reg.network, origin, Some(&crate::network::caller_of(&subject)))
    {
        return resp;
    }
    let environment = match &registry {
        Some(reg) => crate::network::environment(&reg.network, &origin.arrival, Some(origin.client_ip)),
        None => wharf_authz::EnvironmentAttributes::default(),
    };
    let granted: Vec<AccessEntry> = super::grant_in(state, &subject, registry.as_deref(), &scopes, &environment);
    let now = chrono::Utc::now();
    let keys = state.identity.keys.read().expect("keys lock");
    match state.identity.registry.issue_access(&keys, &subject, &ctx, granted, now) {
        Ok(t) => {
            let body = json!({"access_token": t.token, "token": t.token, "expires_in": t.expires_in, "issued_at": now.to_rfc3339()});
            (StatusCode::OK, [(http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
        }
        Err(e) => OciError::internal("issuing an access token", e).into_response(),
    }
}
