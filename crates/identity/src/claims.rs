//! Directory tokens: the Entra-like access tokens `/{tenant}/oauth2/v2.0/token` and the
//! managed-identity endpoint return, and the audiences they are issued for.
//!
//! Owns: `DirectoryClaims` (Entra v2.0 claim names plus Wharf's `wharf_*` claims), the
//! principal kinds a directory token can describe, the mapping of OAuth2 `scope=` and
//! managed-identity `resource=` values to an [`Audience`], and issuing and validating these
//! tokens.
//! Must never: look principals up (the server passes a resolved [`DirectoryPrincipal`]), decide
//! whether a hosting resource is a trusted service, or accept a directory token whose issuer,
//! audience or principal type is not one it issued.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{KeyError, ScopeError, TokenError};
use crate::jwt::{self, DEFAULT_LEEWAY, RevocationCutoffs, Validation};
use crate::keys::KeySet;

/// Default lifetime of a directory token: 1 hour.
pub const DEFAULT_DIRECTORY_TOKEN_LIFETIME: Duration = Duration::hours(1);

/// The Azure Resource Manager audience as Wharf writes it in `aud`.
pub const MANAGEMENT_AUDIENCE: &str = "https://management.core.windows.net/";
/// The other spelling of the ARM audience, accepted the same.
pub const MANAGEMENT_AUDIENCE_ALT: &str = "https://management.azure.com/";
/// The audience of tokens for container registries' `/oauth2/exchange`.
pub const CONTAINER_REGISTRY_AUDIENCE: &str = "https://containerregistry.azure.net";
/// Microsoft Graph's public resource id, the default Graph audience.
pub const DEFAULT_GRAPH_AUDIENCE: &str = "https://graph.microsoft.com/";

/// What a directory token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Audience {
    /// The management (ARM-shaped) API, by ARM's public names.
    Management,
    /// The management API by its own endpoint URL ([`Audiences::with_management_endpoint`]),
    /// as ARM also accepts `https://management.azure.com/`. The management plane accepts it
    /// beside [`Audience::Management`] ([`MANAGEMENT_PLANE`]); `/oauth2/exchange`, which takes
    /// ARM tokens, does not.
    ManagementEndpoint,
    /// Container registries (the token is exchanged at `/oauth2/exchange`).
    ContainerRegistry,
    /// The Graph-shaped directory API.
    Graph,
}

/// What the management plane accepts: ARM's public names and its own endpoint URL.
pub const MANAGEMENT_PLANE: [Audience; 2] = [Audience::Management, Audience::ManagementEndpoint];

/// The audience names a deployment answers to. Graph's is configurable: az sends the cloud's
/// `microsoftGraphResourceId` (for Wharf, typically the deployment's own base URL). The
/// management plane answers to ARM's public names and, like Azure Resource Manager, to its own
/// endpoint URL ([`Audiences::with_management_endpoint`]): the Azure SDK for JavaScript asks
/// for `{endpoint}/.default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audiences {
    graph: String,
    management_endpoint: Option<String>,
}

impl Default for Audiences {
    fn default() -> Self {
        Self::new(DEFAULT_GRAPH_AUDIENCE)
    }
}

/// Normal form of a resource URL for comparison: lowercase, no trailing slashes.
fn normalize_resource(value: &str) -> String {
    let v = value.trim().trim_end_matches('/').to_ascii_lowercase();
    // `https://host:443/` and `https://host/` name the same resource (az derives the Graph
    // scope from the cloud's endpoint as the user typed it).
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if let Some(rest) = v.strip_prefix(scheme) {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            if let Some(host) = authority.strip_suffix(port) {
                return format!("{scheme}{host}{path}");
            }
        }
    }
    v
}

/// OpenID Connect scopes MSAL may add beside the resource scope; they name no audience.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "offline_access", "email"];

impl Audiences {
    /// Audiences with the given Graph resource id (e.g. `https://127.0.0.1:8443/`).
    pub fn new(graph_resource: impl Into<String>) -> Self {
        Self { graph: graph_resource.into(), management_endpoint: None }
    }

    /// The same names, with the management plane also answering to its endpoint URL (e.g.
    /// `https://127.0.0.1:8443/`).
    pub fn with_management_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.management_endpoint = Some(endpoint.into());
        self
    }

    /// The value Wharf writes in `aud` for an audience.
    pub fn claim_value(&self, audience: Audience) -> String {
        match audience {
            Audience::Management => MANAGEMENT_AUDIENCE.to_owned(),
            Audience::ManagementEndpoint => {
                self.management_endpoint.clone().unwrap_or_else(|| MANAGEMENT_AUDIENCE.to_owned())
            }
            Audience::ContainerRegistry => CONTAINER_REGISTRY_AUDIENCE.to_owned(),
            Audience::Graph => self.graph.clone(),
        }
    }

    /// The resource names of an audience.
    fn names(&self, audience: Audience) -> Vec<&str> {
        match audience {
            Audience::Management => vec![MANAGEMENT_AUDIENCE, MANAGEMENT_AUDIENCE_ALT],
            Audience::ManagementEndpoint => self.management_endpoint.iter().map(String::as_str).collect(),
            Audience::ContainerRegistry => vec![CONTAINER_REGISTRY_AUDIENCE],
            Audience::Graph => vec![self.graph.as_str()],
        }
    }

    /// Every `aud` spelling accepted for an audience (with and without trailing slash).
    pub fn spellings(&self, audience: Audience) -> Vec<String> {
        let bases = self.names(audience);
        let mut out = Vec::new();
        for b in bases {
            let trimmed = b.trim_end_matches('/');
            out.push(trimmed.to_owned());
            out.push(format!("{trimmed}/"));
        }
        out
    }

    /// Which audience a resource URL names (`https://management.azure.com/`,
    /// `https://containerregistry.azure.net`, the Graph id, the management endpoint …),
    /// ignoring case, a default port and trailing slashes. When the management endpoint is also
    /// the Graph id (Wharf serves both at its base URL), the URL names Graph: the token carries
    /// the shared URL as `aud`, which both planes accept.
    pub fn classify(&self, resource: &str) -> Option<Audience> {
        let r = normalize_resource(resource);
        if r.is_empty() {
            return None;
        }
        [Audience::Management, Audience::ContainerRegistry, Audience::Graph, Audience::ManagementEndpoint]
            .into_iter()
            .find(|a| self.names(*a).iter().any(|s| normalize_resource(s) == r))
    }

    /// The audience of an OAuth2 v2 `scope` value: one `{resource}/.default` (az sends
    /// `https://management.core.windows.net//.default`, with a double slash), optionally beside
    /// `openid profile offline_access email`.
    pub fn parse_scope(&self, scope: &str) -> Result<Audience, ScopeError> {
        let resources: Vec<&str> =
            scope.split_whitespace().filter(|s| !OIDC_SCOPES.iter().any(|o| s.eq_ignore_ascii_case(o))).collect();
        let [single] = resources.as_slice() else {
            return Err(ScopeError::ResourceCount(scope.to_owned()));
        };
        let resource =
            single.strip_suffix("/.default").ok_or_else(|| ScopeError::UnknownResource((*single).to_owned()))?;
        self.classify(resource).ok_or_else(|| ScopeError::UnknownResource((*single).to_owned()))
    }

    /// The audience of the managed-identity endpoint's `resource=` value (a resource URL
    /// without `/.default`; a trailing `/.default` is tolerated).
    pub fn parse_resource(&self, resource: &str) -> Result<Audience, ScopeError> {
        let r = resource.trim();
        let r = r.strip_suffix("/.default").unwrap_or(r);
        self.classify(r).ok_or_else(|| ScopeError::UnknownResource(resource.to_owned()))
    }
}

/// [`Audiences::parse_scope`] with the default audiences (Graph = `https://graph.microsoft.com/`).
pub fn parse_scope_to_audience(scope: &str) -> Result<Audience, ScopeError> {
    Audiences::default().parse_scope(scope)
}

/// [`Audiences::parse_resource`] with the default audiences.
pub fn parse_resource_to_audience(resource: &str) -> Result<Audience, ScopeError> {
    Audiences::default().parse_resource(resource)
}

pub use wharf_vocab::{ManagedIdentityKind, PrincipalType};

/// Entra's `idtyp` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdentityType {
    User,
    App,
}

/// A resource that runs workloads and requested a managed identity's token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HostResource {
    /// The ARM resource id (`/subscriptions/…/providers/Microsoft.ContainerInstance/containerGroups/cg1`).
    pub id: String,
    /// Its resource type (`Microsoft.ContainerInstance/containerGroups`).
    pub resource_type: String,
}

impl HostResource {
    /// A host from its ARM id, deriving the resource type from the id. `None` when the id has
    /// no `/providers/{namespace}/{type}/{name}` part.
    pub fn from_id(id: &str) -> Option<Self> {
        Some(Self { resource_type: resource_type_of(id)?, id: id.to_owned() })
    }
}

/// The resource type of an ARM resource id: the namespace after the last `/providers/` and the
/// type segments of each `{type}/{name}` pair (`Microsoft.ContainerRegistry/registries/tasks`
/// for a task).
pub fn resource_type_of(id: &str) -> Option<String> {
    let lower = id.to_ascii_lowercase();
    let at = lower.rfind("/providers/")?;
    let rest = &id[at + "/providers/".len()..];
    let segments: Vec<&str> = rest.split('/').collect();
    let (namespace, pairs) = segments.split_first()?;
    if namespace.is_empty() || pairs.is_empty() || pairs.len() % 2 != 0 {
        return None;
    }
    if pairs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let mut out = (*namespace).to_owned();
    for pair in pairs.chunks(2) {
        out.push('/');
        out.push_str(pair[0]);
    }
    Some(out)
}

/// Which managed identity a token is for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ManagedIdentityRef {
    /// The hosting resource's own identity: `xms_mirid` is the host's id, as Azure does.
    SystemAssigned,
    /// A `Microsoft.ManagedIdentity/userAssignedIdentities` resource: `xms_mirid` is its id.
    UserAssigned { resource_id: String },
}

/// A resolved directory principal, the input of [`DirectoryTokenIssuer::issue`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectoryPrincipal {
    User {
        object_id: String,
        display_name: String,
        user_principal_name: String,
    },
    ServicePrincipal {
        object_id: String,
        app_id: String,
        /// For Wharf's built-in service principals: `defender-scanner`, `acr-import` …
        builtin: Option<String>,
    },
    ManagedIdentity {
        object_id: String,
        client_id: String,
        identity: ManagedIdentityRef,
        /// The resource whose workload asked for the token.
        host: HostResource,
    },
}

/// The claims of a directory token. Field names are Entra's, plus `wharf_*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectoryClaims {
    pub aud: String,
    pub iss: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub sub: String,
    /// The principal's object id.
    pub oid: String,
    /// The tenant id.
    pub tid: String,
    /// App (client) id, for service principals and managed identities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appid: Option<String>,
    /// Same as `appid` (v2.0 name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    pub idtyp: IdentityType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    pub ver: String,
    /// The managed identity's ARM resource id (for system-assigned: the host's id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xms_mirid: Option<String>,
    pub wharf_principal_type: PrincipalType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wharf_mi_kind: Option<ManagedIdentityKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wharf_host_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wharf_host_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wharf_builtin: Option<String>,
}

impl DirectoryClaims {
    /// The hosting resource of a managed identity's token.
    pub fn host(&self) -> Option<HostResource> {
        Some(HostResource { id: self.wharf_host_resource.clone()?, resource_type: self.wharf_host_type.clone()? })
    }
}

/// A signed token with the claims it carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken<C> {
    /// The compact JWS.
    pub token: String,
    pub claims: C,
    /// Expiry, unix seconds (the managed-identity endpoint's `expires_on`).
    pub expires_on: i64,
    /// Seconds from issue to expiry (the token endpoint's `expires_in`).
    pub expires_in: i64,
}

/// Issues and validates directory tokens for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryTokenIssuer {
    issuer_base: String,
    tenant_id: String,
    /// Lifetime of issued tokens (default 1 h).
    pub lifetime: Duration,
    /// Clock skew allowed at validation (default 60 s).
    pub leeway: Duration,
    /// The audience names answered to.
    pub audiences: Audiences,
}

impl DirectoryTokenIssuer {
    /// An issuer whose `iss` is `{issuer_base}/{tenant_id}/v2.0` (a trailing slash on the base
    /// is ignored), with default lifetime, leeway and audiences.
    pub fn new(issuer_base: impl Into<String>, tenant_id: impl Into<String>) -> Self {
        Self {
            issuer_base: issuer_base.into().trim_end_matches('/').to_owned(),
            tenant_id: tenant_id.into(),
            lifetime: DEFAULT_DIRECTORY_TOKEN_LIFETIME,
            leeway: DEFAULT_LEEWAY,
            audiences: Audiences::default(),
        }
    }

    /// The same issuer with another token lifetime.
    pub fn with_lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The same issuer with another set of audience names.
    pub fn with_audiences(mut self, audiences: Audiences) -> Self {
        self.audiences = audiences;
        self
    }

    /// The `iss` value: `{issuer_base}/{tenant}/v2.0`.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.issuer_base, self.tenant_id)
    }

    /// The tenant id (`tid`).
    pub fn tenant_id(&self) -> &str {
        &self.tenant_id
    }

    /// The claims a token for `principal` and `audience` issued at `now` carries.
    pub fn claims_for(
        &self,
        principal: &DirectoryPrincipal,
        audience: Audience,
        now: DateTime<Utc>,
    ) -> DirectoryClaims {
        let t = now.timestamp();
        let mut c = DirectoryClaims {
            aud: self.audiences.claim_value(audience),
            iss: self.issuer(),
            iat: t,
            nbf: t,
            exp: t + self.lifetime.num_seconds(),
            jti: Uuid::new_v4().to_string(),
            sub: String::new(),
            oid: String::new(),
            tid: self.tenant_id.clone(),
            appid: None,
            azp: None,
            idtyp: IdentityType::App,
            name: None,
            upn: None,
            ver: "2.0".into(),
            xms_mirid: None,
            wharf_principal_type: PrincipalType::ServicePrincipal,
            wharf_mi_kind: None,
            wharf_host_resource: None,
            wharf_host_type: None,
            wharf_builtin: None,
        };
        match principal {
            DirectoryPrincipal::User { object_id, display_name, user_principal_name } => {
                c.sub = object_id.clone();
                c.oid = object_id.clone();
                c.idtyp = IdentityType::User;
                c.name = Some(display_name.clone());
                c.upn = Some(user_principal_name.clone());
                c.wharf_principal_type = PrincipalType::User;
            }
            DirectoryPrincipal::ServicePrincipal { object_id, app_id, builtin } => {
                c.sub = object_id.clone();
                c.oid = object_id.clone();
                c.appid = Some(app_id.clone());
                c.azp = Some(app_id.clone());
                c.wharf_principal_type = PrincipalType::ServicePrincipal;
                c.wharf_builtin = builtin.clone();
            }
            DirectoryPrincipal::ManagedIdentity { object_id, client_id, identity, host } => {
                c.sub = object_id.clone();
                c.oid = object_id.clone();
                c.appid = Some(client_id.clone());
                c.azp = Some(client_id.clone());
                c.wharf_principal_type = PrincipalType::ManagedIdentity;
                let (kind, mirid) = match identity {
                    ManagedIdentityRef::SystemAssigned => (ManagedIdentityKind::SystemAssigned, host.id.clone()),
                    ManagedIdentityRef::UserAssigned { resource_id } => {
                        (ManagedIdentityKind::UserAssigned, resource_id.clone())
                    }
                };
                c.wharf_mi_kind = Some(kind);
                c.xms_mirid = Some(mirid);
                c.wharf_host_resource = Some(host.id.clone());
                c.wharf_host_type = Some(host.resource_type.clone());
            }
        }
        c
    }

    /// Signs a token for `principal` and `audience`, valid from `now` for the lifetime.
    pub fn issue(
        &self,
        keys: &KeySet,
        principal: &DirectoryPrincipal,
        audience: Audience,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken<DirectoryClaims>, KeyError> {
        let claims = self.claims_for(principal, audience, now);
        let token = jwt::encode(keys, &claims)?;
        Ok(IssuedToken { token, expires_on: claims.exp, expires_in: claims.exp - claims.iat, claims })
    }

    /// Validates a directory token for one of the `accepted` audiences at `now`: signature and
    /// header rules, issuer, audience, times, principal-kind consistency and the principal's
    /// revocation cutoff (keyed by `oid`).
    pub fn validate(
        &self,
        keys: &KeySet,
        token: &str,
        accepted: &[Audience],
        now: DateTime<Utc>,
        revocations: &dyn RevocationCutoffs,
    ) -> Result<DirectoryClaims, TokenError> {
        let audiences: Vec<String> = accepted.iter().flat_map(|a| self.audiences.spellings(*a)).collect();
        let validation = Validation {
            issuer: self.issuer(),
            audiences,
            leeway: self.leeway,
            max_lifetime: jwt::DEFAULT_MAX_LIFETIME.max(self.lifetime),
        };
        let verified = jwt::verify::<DirectoryClaims>(keys, token, &validation, now)?;
        let claims = verified.claims;
        check_consistency(&claims, &self.tenant_id)?;
        jwt::check_revocation(claims.iat, revocations.cutoff_for(&claims.oid))?;
        Ok(claims)
    }
}

/// The claims must describe one coherent directory principal.
fn check_consistency(c: &DirectoryClaims, tenant_id: &str) -> Result<(), TokenError> {
    let bad = |why: &str| Err(TokenError::MalformedClaims(why.to_owned()));
    if c.tid != tenant_id {
        return bad("tid is not the issuer's tenant");
    }
    if c.ver != "2.0" {
        return bad("ver is not 2.0");
    }
    if c.oid.is_empty() {
        return bad("oid is empty");
    }
    match c.wharf_principal_type {
        PrincipalType::User if c.idtyp != IdentityType::User => bad("user token with idtyp app"),
        PrincipalType::ServicePrincipal | PrincipalType::ManagedIdentity
            if c.idtyp != IdentityType::App || c.appid.is_none() =>
        {
            bad("app token without appid or with idtyp user")
        }
        PrincipalType::ManagedIdentity if c.wharf_mi_kind.is_none() || c.host().is_none() || c.xms_mirid.is_none() => {
            bad("managed identity token without kind, host or xms_mirid")
        }
        t if !t.is_directory_principal() => bad("not a directory principal type"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jwt::NoRevocations;
    use chrono::TimeZone;

    const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 1, 8, 0, 0).unwrap()
    }

    fn issuer() -> DirectoryTokenIssuer {
        DirectoryTokenIssuer::new("https://127.0.0.1:8443/", TENANT)
    }

    fn aci_identity() -> DirectoryPrincipal {
        DirectoryPrincipal::ManagedIdentity {
            object_id: "0b9c5d3e-0000-4000-8000-000000000001".into(),
            client_id: "6a1f0c2d-0000-4000-8000-000000000002".into(),
            identity: ManagedIdentityRef::UserAssigned {
                resource_id:
                    "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
                        .into(),
            },
            host: HostResource::from_id(
                "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/cg1",
            )
            .unwrap(),
        }
    }

    #[test]
    fn scopes_and_resources_map_to_audiences() {
        let cases = [
            ("https://management.core.windows.net//.default", Audience::Management),
            ("https://management.core.windows.net/.default", Audience::Management),
            ("https://management.azure.com/.default", Audience::Management),
            ("https://management.azure.com//.default", Audience::Management),
            ("HTTPS://Management.Azure.com/.default", Audience::Management),
            ("https://containerregistry.azure.net/.default", Audience::ContainerRegistry),
            ("https://graph.microsoft.com//.default", Audience::Graph),
            ("https://graph.microsoft.com/.default offline_access openid profile", Audience::Graph),
        ];
        for (scope, want) in cases {
            assert_eq!(parse_scope_to_audience(scope).unwrap(), want, "{scope}");
        }
        assert!(matches!(
            parse_scope_to_audience("https://vault.azure.net/.default"),
            Err(ScopeError::UnknownResource(_))
        ));
        assert!(matches!(
            parse_scope_to_audience("https://management.azure.com/user_impersonation"),
            Err(ScopeError::UnknownResource(_))
        ));
        assert!(matches!(
            parse_scope_to_audience("https://management.azure.com/.default https://graph.microsoft.com/.default"),
            Err(ScopeError::ResourceCount(_))
        ));
        assert!(matches!(parse_scope_to_audience("openid"), Err(ScopeError::ResourceCount(_))));

        assert_eq!(parse_resource_to_audience("https://management.azure.com/").unwrap(), Audience::Management);
        assert_eq!(parse_resource_to_audience("https://management.core.windows.net").unwrap(), Audience::Management);
        assert_eq!(
            parse_resource_to_audience("https://containerregistry.azure.net").unwrap(),
            Audience::ContainerRegistry
        );
        assert!(parse_resource_to_audience("https://evil.example/").is_err());
        assert!(parse_resource_to_audience("").is_err());

        let local = Audiences::new("https://127.0.0.1:8443/");
        assert_eq!(local.parse_scope("https://127.0.0.1:8443//.default").unwrap(), Audience::Graph);
        assert!(local.parse_scope("https://graph.microsoft.com/.default").is_err());
        // The default port may be written or left out, on either side; another port is another resource.
        let on_443 = Audiences::new("https://127.0.0.1:443/");
        assert_eq!(on_443.parse_scope("https://127.0.0.1//.default").unwrap(), Audience::Graph);
        assert_eq!(
            Audiences::new("https://wharf.example/").parse_scope("https://WHARF.example:443//.default").unwrap(),
            Audience::Graph
        );
        assert!(on_443.parse_scope("https://127.0.0.1:8443//.default").is_err());
        assert!(on_443.parse_scope("http://127.0.0.1//.default").is_err());
    }

    #[test]
    fn resource_types_come_from_ids() {
        assert_eq!(
            resource_type_of(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/cg1"
            )
            .as_deref(),
            Some("Microsoft.ContainerInstance/containerGroups")
        );
        assert_eq!(
            resource_type_of(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r1/tasks/t1"
            )
            .as_deref(),
            Some("Microsoft.ContainerRegistry/registries/tasks")
        );
        assert_eq!(resource_type_of("/subscriptions/s/resourceGroups/rg"), None);
        assert_eq!(resource_type_of("/subscriptions/s/providers/Microsoft.Web/sites"), None);
    }

    #[test]
    fn managed_identity_token_round_trip() {
        let keys = KeySet::generate(t0());
        let issued = issuer().issue(&keys, &aci_identity(), Audience::ContainerRegistry, t0()).unwrap();
        assert_eq!(issued.expires_in, 3600);
        let c = issuer().validate(&keys, &issued.token, &[Audience::ContainerRegistry], t0(), &NoRevocations).unwrap();
        assert_eq!(c, issued.claims);
        assert_eq!(c.iss, format!("https://127.0.0.1:8443/{TENANT}/v2.0"));
        assert_eq!(c.aud, "https://containerregistry.azure.net");
        assert_eq!(c.ver, "2.0");
        assert_eq!(c.idtyp, IdentityType::App);
        assert_eq!(c.wharf_principal_type, PrincipalType::ManagedIdentity);
        assert_eq!(c.wharf_mi_kind, Some(ManagedIdentityKind::UserAssigned));
        assert!(c.xms_mirid.as_deref().unwrap().ends_with("/userAssignedIdentities/id1"));
        assert_eq!(c.wharf_host_type.as_deref(), Some("Microsoft.ContainerInstance/containerGroups"));
        assert_eq!(c.host().unwrap().resource_type, "Microsoft.ContainerInstance/containerGroups");
        let raw = jwt::decode_unverified(&issued.token).unwrap();
        assert_eq!(raw["wharf_mi_kind"], "UserAssigned");
        assert_eq!(raw["idtyp"], "app");
        assert!(raw.get("upn").is_none());
    }

    #[test]
    fn system_assigned_mirid_is_the_host() {
        let host = HostResource::from_id(
            "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws",
        )
        .unwrap();
        let p = DirectoryPrincipal::ManagedIdentity {
            object_id: "o".into(),
            client_id: "c".into(),
            identity: ManagedIdentityRef::SystemAssigned,
            host: host.clone(),
        };
        let c = issuer().claims_for(&p, Audience::Management, t0());
        assert_eq!(c.xms_mirid.as_deref(), Some(host.id.as_str()));
        assert_eq!(c.wharf_mi_kind, Some(ManagedIdentityKind::SystemAssigned));
        assert_eq!(c.aud, MANAGEMENT_AUDIENCE);
    }

    #[test]
    fn user_and_builtin_service_principal_claims() {
        let user = DirectoryPrincipal::User {
            object_id: "u1".into(),
            display_name: "Ana Ñúñez".into(),
            user_principal_name: "ana@contoso.test".into(),
        };
        let c = issuer().claims_for(&user, Audience::Management, t0());
        assert_eq!(c.idtyp, IdentityType::User);
        assert_eq!(c.upn.as_deref(), Some("ana@contoso.test"));
        assert_eq!(c.appid, None);
        let sp = DirectoryPrincipal::ServicePrincipal {
            object_id: "sp1".into(),
            app_id: "app1".into(),
            builtin: Some("defender-scanner".into()),
        };
        let keys = KeySet::generate(t0());
        let issued = issuer().issue(&keys, &sp, Audience::ContainerRegistry, t0()).unwrap();
        let c = issuer().validate(&keys, &issued.token, &[Audience::ContainerRegistry], t0(), &NoRevocations).unwrap();
        assert_eq!(c.wharf_builtin.as_deref(), Some("defender-scanner"));
        assert_eq!(c.azp.as_deref(), Some("app1"));
        let issued = issuer().issue(&keys, &user, Audience::Management, t0()).unwrap();
        assert!(issuer().validate(&keys, &issued.token, &[Audience::Management], t0(), &NoRevocations).is_ok());
    }

    #[test]
    fn validation_refuses_wrong_audience_issuer_tenant_and_revoked() {
        let keys = KeySet::generate(t0());
        let issued = issuer().issue(&keys, &aci_identity(), Audience::Graph, t0()).unwrap();
        assert!(matches!(
            issuer().validate(
                &keys,
                &issued.token,
                &[Audience::Management, Audience::ContainerRegistry],
                t0(),
                &NoRevocations
            ),
            Err(TokenError::WrongAudience { .. })
        ));
        let other_tenant = DirectoryTokenIssuer::new("https://127.0.0.1:8443", "other");
        assert!(matches!(
            other_tenant.validate(&keys, &issued.token, &[Audience::Graph], t0(), &NoRevocations),
            Err(TokenError::WrongIssuer { .. })
        ));
        let later = t0() + Duration::minutes(5);
        let cutoff = |pid: &str| (pid == "0b9c5d3e-0000-4000-8000-000000000001").then_some(later);
        assert!(matches!(
            issuer().validate(&keys, &issued.token, &[Audience::Graph], later, &cutoff),
            Err(TokenError::Revoked { .. })
        ));
        let after = issuer().issue(&keys, &aci_identity(), Audience::Graph, later).unwrap();
        assert!(issuer().validate(&keys, &after.token, &[Audience::Graph], later, &cutoff).is_ok());
        assert!(matches!(
            issuer().validate(&keys, &issued.token, &[Audience::Graph], t0() + Duration::hours(2), &NoRevocations),
            Err(TokenError::Expired { .. })
        ));
    }

    #[test]
    fn management_audience_accepts_both_spellings() {
        let keys = KeySet::generate(t0());
        let mut c = issuer().claims_for(&aci_identity(), Audience::Management, t0());
        for aud in
            ["https://management.azure.com/", "https://management.azure.com", "https://management.core.windows.net"]
        {
            c.aud = aud.into();
            let token = jwt::encode(&keys, &c).unwrap();
            assert!(issuer().validate(&keys, &token, &[Audience::Management], t0(), &NoRevocations).is_ok(), "{aud}");
        }
    }

    /// Issue 10 item 12: the Azure SDK for JavaScript asks for `{endpoint}/.default`. As ARM
    /// does, the management plane accepts its own endpoint URL as the audience.
    #[test]
    fn the_management_plane_accepts_its_own_endpoint_url() {
        let keys = KeySet::generate(t0());
        let endpoint = "https://127.0.0.1:8443/";
        // Wharf's shape: Graph and the management plane share the base URL.
        let shared = issuer().with_audiences(Audiences::new(endpoint).with_management_endpoint(endpoint));
        let audience = shared.audiences.parse_scope("https://127.0.0.1:8443/.default").unwrap();
        let issued = shared.issue(&keys, &aci_identity(), audience, t0()).unwrap();
        assert_eq!(issued.claims.aud, endpoint);
        assert!(shared.validate(&keys, &issued.token, &MANAGEMENT_PLANE, t0(), &NoRevocations).is_ok());
        assert!(shared.validate(&keys, &issued.token, &[Audience::Graph], t0(), &NoRevocations).is_ok());
        // Not where only ARM's public names count (the registry exchange), nor for registries.
        for door in [&[Audience::ContainerRegistry, Audience::Management][..], &[Audience::Management]] {
            assert!(matches!(
                shared.validate(&keys, &issued.token, door, t0(), &NoRevocations),
                Err(TokenError::WrongAudience { .. })
            ));
        }
        // The ARM names keep working, and still only for the management plane.
        let arm = shared.issue(&keys, &aci_identity(), Audience::Management, t0()).unwrap();
        assert!(shared.validate(&keys, &arm.token, &MANAGEMENT_PLANE, t0(), &NoRevocations).is_ok());
        assert!(shared.validate(&keys, &arm.token, &[Audience::Graph], t0(), &NoRevocations).is_err());

        // With a Graph id of its own, the endpoint names the management plane alone.
        let separate =
            issuer().with_audiences(Audiences::new(DEFAULT_GRAPH_AUDIENCE).with_management_endpoint(endpoint));
        let audience = separate.audiences.parse_scope("https://127.0.0.1:8443//.default").unwrap();
        assert_eq!(audience, Audience::ManagementEndpoint);
        let token = separate.issue(&keys, &aci_identity(), audience, t0()).unwrap();
        assert_eq!(token.claims.aud, endpoint);
        assert!(separate.validate(&keys, &token.token, &MANAGEMENT_PLANE, t0(), &NoRevocations).is_ok());
        assert!(separate.validate(&keys, &token.token, &[Audience::Graph], t0(), &NoRevocations).is_err());
        // Without the setting, the endpoint is not a management audience.
        assert!(issuer().validate(&keys, &token.token, &MANAGEMENT_PLANE, t0(), &NoRevocations).is_err());
        // Another port or scheme is another resource.
        assert!(separate.audiences.parse_scope("https://127.0.0.1:9443/.default").is_err());
        assert!(separate.audiences.parse_scope("http://127.0.0.1:8443/.default").is_err());
    }

    #[test]
    fn incoherent_principal_claims_are_refused() {
        let keys = KeySet::generate(t0());
        let mut c = issuer().claims_for(&aci_identity(), Audience::Management, t0());
        c.wharf_host_resource = None;
        let token = jwt::encode(&keys, &c).unwrap();
        assert!(matches!(
            issuer().validate(&keys, &token, &[Audience::Management], t0(), &NoRevocations),
            Err(TokenError::MalformedClaims(_))
        ));
        let mut c = issuer().claims_for(&aci_identity(), Audience::Management, t0());
        c.wharf_principal_type = PrincipalType::RegistryAdmin;
        let token = jwt::encode(&keys, &c).unwrap();
        assert!(matches!(
            issuer().validate(&keys, &token, &[Audience::Management], t0(), &NoRevocations),
            Err(TokenError::MalformedClaims(_))
        ));
    }

    #[test]
    fn lifetime_is_configurable() {
        let i = issuer().with_lifetime(Duration::minutes(10));
        let c = i.claims_for(&aci_identity(), Audience::Management, t0());
        assert_eq!(c.exp - c.iat, 600);
    }
}
