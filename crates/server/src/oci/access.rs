//! The data plane's admission of one request, in one order: the network gate judges the
//! request; the credential is authenticated (once); a gate that was closed judges again with the
//! caller's facts (the trusted-services bypass); then the endpoint's operation is authorized
//! against what the credential allows. Anything short of that is refused: a credential the
//! rules would block gets the firewall's 403 first (an address the firewall blocks learns
//! nothing about credentials), a valid credential whose permissions fall short ACR's 401
//! challenge. One exception: the ping (`/v2/`) without a credential gets the challenge at a
//! closed gate too, so that a trusted service learns where its token comes from.
//!
//! Owns: [`Access`] (what a request's credential allows), the `WWW-Authenticate` challenges.
//! Must never: decide what a credential grants (`auth::grant` and the token's `access` claim
//! do), or validate a credential twice.

use std::sync::Arc;

use axum::http::HeaderMap;
use serde_json::json;
use wharf_authz::{DataPlaneOperation, EnvironmentAttributes, ScopeAction};
use wharf_identity::{AccessClaims, RegistrySubject};
use wharf_vocab::PrincipalType;

use super::target::Addressed;
use crate::auth::{credentials, grant};
use crate::http::Authorization;
use crate::http::oci::{Code, OciError, OciResult};
use crate::network::{Gate, Origin};
use crate::state::{AppState, RegistryInfo};

/// What the request's credential allows, once authenticated.
#[derive(Clone)]
pub enum Access {
    /// A Bearer access token: exactly its `access` entries.
    Token(Arc<AccessClaims>),
    /// Basic credentials (or none): what `auth::grant` gives this subject on `registry`, judged
    /// with the ABAC environment of the request's network path.
    Subject { subject: RegistrySubject, registry: Option<Arc<RegistryInfo>>, environment: Arc<EnvironmentAttributes> },
}

impl Access {
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

    /// Whether `action` is allowed on `name` (a repository inside the registry; ignored for the
    /// catalog).
    pub fn allows(&self, state: &AppState, action: ScopeAction, name: &str) -> bool {
        let (resource_type, action) = action.parts();
        let name = if resource_type == "registry" { "catalog" } else { name };
        match self {
            Access::Token(c) => c.allows(resource_type, name, action),
            Access::Subject { subject, registry, environment } => {
                grant::allows(state, subject, registry.as_deref(), environment, resource_type, name, action)
            }
        }
    }

    /// Whether `operation` on `name` is allowed: one of the scope actions the operation accepts.
    pub fn permits(&self, state: &AppState, operation: DataPlaneOperation, name: &str) -> bool {
        operation.accepted_scope_actions().iter().any(|a| self.allows(state, *a, name))
    }

    /// Whether the caller may list `registry`'s catalog, judged afresh by the engine (for
    /// listings that span registries).
    pub fn may_list(&self, state: &AppState, registry: &RegistryInfo) -> bool {
        let none = EnvironmentAttributes::default();
        let environment = match self {
            Access::Subject { environment, .. } => environment.as_ref(),
            Access::Token(_) => &none,
        };
        let (resource_type, action) = ScopeAction::Catalog.parts();
        grant::allows(state, &self.subject(), Some(registry), environment, resource_type, "catalog", action)
    }
}

/// The request facts admission needs.
pub struct Admission<'a> {
    pub headers: &'a HeaderMap,
    pub addressed: &'a Addressed,
    pub operation: Option<DataPlaneOperation>,
    pub origin: &'a Origin,
    /// The token `service` this request is judged under (the Host as the client sent it).
    pub service: &'a str,
}

/// Admits a request or refuses it, in the order the module comment gives.
pub async fn admit(state: &AppState, a: &Admission<'_>) -> OciResult<Access> {
    let registry = a.addressed.registry();
    let gate = registry.map(|r| Gate::open(r.guarded(), a.origin));
    let access = match authenticate(state, a).await {
        Ok(access) => access,
        Err(refusal) => {
            return Err(match gate.as_ref().and_then(Gate::refuse_unauthenticated) {
                Some(denied) => denied.into(),
                None => refusal,
            });
        }
    };
    if let Some(gate) = &gate {
        // A ping without a credential names nothing and proves nothing: at a closed gate it
        // gets the challenge, not the firewall's refusal, so that a client the bypass lets in
        // (a trusted service, such as a task's identity) learns where to get its token. Every
        // request that names content, or carries a credential, meets the firewall first.
        if a.operation.is_none()
            && !gate.is_open()
            && matches!(crate::http::authorization(a.headers), Authorization::None)
        {
            return Err(challenge(state, a, false));
        }
        gate.admit(&crate::network::caller_of(&access.subject()))?;
    }
    authorize(state, a, &access)?;
    Ok(access)
}

/// Who the credential stands for. A credential that is present but wrong is refused here,
/// whatever the request.
async fn authenticate(state: &AppState, a: &Admission<'_>) -> OciResult<Access> {
    let registry = a.addressed.registry();
    let ctx = credentials::context(a.service, registry.map(Arc::as_ref));
    // The ABAC environment is built only for credentials decided per request (a Bearer token
    // carries what was granted at issue).
    let environment = || match registry {
        Some(reg) => Arc::new(crate::network::environment(&reg.network, &a.origin.arrival, Some(a.origin.client_ip))),
        None => Arc::new(EnvironmentAttributes::default()),
    };
    let refused = || challenge(state, a, true);
    match crate::http::authorization(a.headers) {
        Authorization::None => Ok(Access::Subject {
            subject: RegistrySubject::local(PrincipalType::Anonymous, "anonymous", "anonymous"),
            registry: registry.cloned(),
            environment: environment(),
        }),
        Authorization::Bearer(token) => match credentials::access_token(state, &ctx, token) {
            Ok(claims) => Ok(Access::Token(claims)),
            Err(e) => {
                tracing::warn!(reason = %e, service = a.service, "registry access token rejected");
                Err(refused())
            }
        },
        Authorization::Basic(value) => {
            let creds = match wharf_identity::parse_basic_authorization(value) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(reason = %e, "malformed Authorization header");
                    return Err(refused());
                }
            };
            match credentials::basic_subject(state, registry.map(Arc::as_ref), &ctx, &creds).await {
                Ok(Some(subject)) => {
                    Ok(Access::Subject { subject, registry: registry.cloned(), environment: environment() })
                }
                Ok(None) => Err(refused()),
                Err(e) => Err(OciError::from_storage("checking credentials", e)),
            }
        }
        Authorization::Other => {
            tracing::warn!(
                service = a.service,
                "data-plane request refused: the Authorization scheme is neither Bearer nor Basic"
            );
            Err(refused())
        }
        Authorization::Unreadable => {
            tracing::warn!(
                service = a.service,
                "data-plane request refused: the Authorization header is not visible ASCII"
            );
            Err(refused())
        }
    }
}

/// Whether the credential covers the endpoint's operation. The ping answers 200 only to an
/// authenticated caller, so that clients learn the token realm.
fn authorize(state: &AppState, a: &Admission<'_>, access: &Access) -> OciResult<()> {
    let Some(operation) = a.operation else {
        return if access.is_anonymous() { Err(challenge(state, a, false)) } else { Ok(()) };
    };
    let name = a.addressed.repository().map(|t| t.repo.as_str()).unwrap_or("catalog");
    if access.permits(state, operation, name) {
        return Ok(());
    }
    if !access.is_anonymous() {
        tracing::info!(service = a.service, ?operation, name, "request not covered by its credential");
    }
    Err(challenge(state, a, false))
}

/// A 401 with ACR's challenge and body. The scope names the repository as the client spells it
/// (with the registry in path style).
fn challenge(state: &AppState, a: &Admission<'_>, invalid_token: bool) -> OciError {
    let base = state.base_url(a.headers);
    let mut value = format!("Bearer realm=\"{base}/oauth2/token\",service=\"{}\"", a.service);
    let scope = a.operation.map(|op| {
        let (resource_type, action) = op.challenge_scope_action().parts();
        let name = match (resource_type, a.addressed.repository()) {
            ("repository", Some(t)) => t.client_name(),
            _ => "catalog".to_string(),
        };
        (resource_type, name, action)
    });
    if let Some((resource_type, name, action)) = &scope {
        value.push_str(&format!(",scope=\"{resource_type}:{name}:{action}\""));
    }
    if invalid_token {
        value.push_str(",error=\"invalid_token\"");
    }
    let mut e = OciError::new(
        Code::Unauthorized,
        "authentication required, visit https://aka.ms/acr/authorization for more information.",
    )
    .header(http::header::WWW_AUTHENTICATE, value);
    if let Some((resource_type, name, action)) = scope {
        e = e.detail(json!([{"Type": resource_type, "Name": name, "Action": action}]));
    }
    e
}
