//! Registry tokens: ACR's own refresh tokens (`POST /oauth2/exchange`) and access tokens
//! (`/oauth2/token`), with the claims ACR puts in them plus Wharf's binding claims.
//!
//! Owns: the claim shapes (`grant_type`, `access`, `permissions`, `aad_identity` …), their
//! lifetimes, binding a token to the login server (`aud`), the registry resource
//! (`wharf_registry`), the role-assignment mode in force at issue time (`wharf_mode`) and the
//! registry's token epoch (`wharf_epoch`, which a re-creation or a mode change replaces), and
//! the data-plane check of the granted `access` entries.
//! Must never: decide which actions a principal may be granted (the server asks `wharf-authz`
//! and passes the result in), accept a refresh token where an access token is needed or the
//! reverse, or accept a token after the registry's mode changed.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::claims::{DirectoryClaims, HostResource, IssuedToken, ManagedIdentityKind, PrincipalType};
use crate::error::{KeyError, TokenError};
use crate::jwt::{self, DEFAULT_LEEWAY, RevocationCutoffs, Validation};
use crate::keys::KeySet;
use crate::scope::TokenScope;

/// Lifetime of a refresh token: 3 hours, as ACR's (`az acr login` "valid for 3 hours").
pub const DEFAULT_REFRESH_TOKEN_LIFETIME: Duration = Duration::hours(3);
/// Lifetime of an access token: 75 minutes, as in ACR's published sample.
pub const DEFAULT_ACCESS_TOKEN_LIFETIME: Duration = Duration::minutes(75);
/// Default `iss` of registry tokens (ACR writes "Azure Container Registry").
pub const DEFAULT_REGISTRY_ISSUER: &str = "Wharf Container Registry";

const REFRESH_GRANT: &str = "refresh_token";
const ACCESS_GRANT: &str = "access_token";
const TOKEN_VERSION: &str = "1.0";

pub use wharf_vocab::RoleAssignmentMode;

/// The directory identity behind an ABAC-mode token (`aad_identity`; clients such as acr-cli
/// only test that it is present).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AadIdentity {
    /// Object id.
    pub oid: String,
    /// Tenant id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
}

/// ACR's `permissions` claim of refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    pub actions: Vec<String>,
    #[serde(rename = "notActions")]
    pub not_actions: Vec<String>,
}

/// One granted entry of an access token's `access` claim (Docker token spec).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccessEntry {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl AccessEntry {
    pub fn new(
        resource_type: impl Into<String>,
        name: impl Into<String>,
        actions: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            resource_type: resource_type.into(),
            name: name.into(),
            actions: actions.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<TokenScope> for AccessEntry {
    fn from(s: TokenScope) -> Self {
        Self { resource_type: s.resource_type, name: s.name, actions: s.actions }
    }
}

/// Whether granted `access` entries allow `action` on the resource `resource_type`/`name`.
///
/// Types and names compare exactly (repository names are lowercase by the OCI grammar); a
/// granted action `*` allows every action; a granted repository name `*` matches every
/// repository (`repository:*:*`, which the server grants only in legacy mode to a registry-wide
/// role). No other wildcard exists and no action implies another.
pub fn allows(access: &[AccessEntry], resource_type: &str, name: &str, action: &str) -> bool {
    access.iter().any(|e| {
        e.resource_type == resource_type
            && (e.name == name || (e.name == "*" && resource_type == "repository"))
            && e.actions.iter().any(|a| a == action || a == "*")
    })
}

/// Who a registry token is for, with what later decisions need without a directory look-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrySubject {
    /// Object id of a directory principal; for registry-local credentials, the admin user's
    /// or repository token's id.
    pub principal_id: String,
    pub principal_type: PrincipalType,
    /// `sub`: a UPN, an app id, an admin username, a token name …
    pub subject: String,
    /// Tenant of a directory principal.
    pub tenant_id: Option<String>,
    pub mi_kind: Option<ManagedIdentityKind>,
    pub host: Option<HostResource>,
    pub builtin: Option<String>,
}

impl RegistrySubject {
    /// The subject of a validated directory token (the `/oauth2/exchange` flow).
    pub fn from_directory(c: &DirectoryClaims) -> Self {
        Self {
            principal_id: c.oid.clone(),
            principal_type: c.wharf_principal_type,
            subject: c.upn.clone().or_else(|| c.appid.clone()).unwrap_or_else(|| c.oid.clone()),
            tenant_id: Some(c.tid.clone()),
            mi_kind: c.wharf_mi_kind,
            host: c.host(),
            builtin: c.wharf_builtin.clone(),
        }
    }

    /// A registry-local credential: the admin user, a repository token, or anonymous pull.
    /// `id` is the credential's stable id (revocation cutoffs are keyed by it), `name` its
    /// display name (`sub`).
    pub fn local(principal_type: PrincipalType, id: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            principal_id: id.into(),
            principal_type,
            subject: name.into(),
            tenant_id: None,
            mi_kind: None,
            host: None,
            builtin: None,
        }
    }

    /// The subject of a validated registry token (refresh → access).
    pub fn from_binding(sub: &str, b: &RegistryBinding) -> Self {
        Self {
            principal_id: b.wharf_principal_id.clone(),
            principal_type: b.wharf_principal_type,
            subject: sub.to_owned(),
            tenant_id: b.tenant.clone(),
            mi_kind: b.wharf_mi_kind,
            host: match (&b.wharf_host_resource, &b.wharf_host_type) {
                (Some(id), Some(t)) => Some(HostResource { id: id.clone(), resource_type: t.clone() }),
                _ => None,
            },
            builtin: b.wharf_builtin.clone(),
        }
    }
}

/// The registry a token is issued for or presented to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryContext {
    /// The login server (`myregistry.localhost:5000`), the token's `aud`. Compared
    /// case-insensitively; written lowercase.
    pub login_server: String,
    /// The registry's ARM resource id.
    pub registry_id: String,
    /// The registry's role-assignment mode now.
    pub mode: RoleAssignmentMode,
    /// The registry's token epoch now: an opaque value that changes when the registry is
    /// created again under the same name and whenever its mode changes, so that no earlier
    /// token works again (even after switching the mode back).
    pub epoch: String,
}

/// Claims common to refresh and access tokens that bind them to a principal and a registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryBinding {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub wharf_principal_id: String,
    pub wharf_principal_type: PrincipalType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wharf_mi_kind: Option<ManagedIdentityKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wharf_host_resource: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wharf_host_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wharf_builtin: Option<String>,
    /// The registry's role-assignment mode when the token was issued.
    pub wharf_mode: RoleAssignmentMode,
    /// The registry's ARM resource id.
    pub wharf_registry: String,
    /// The registry's token epoch when the token was issued (see [`RegistryContext::epoch`]).
    #[serde(default)]
    pub wharf_epoch: String,
    /// Present when the mode is `AbacRepositoryPermissions` and the principal is a directory one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aad_identity: Option<AadIdentity>,
}

impl RegistryBinding {
    fn new(subject: &RegistrySubject, ctx: &RegistryContext) -> Self {
        let aad_identity = (ctx.mode == RoleAssignmentMode::AbacRepositoryPermissions
            && subject.principal_type.is_directory_principal())
        .then(|| AadIdentity { oid: subject.principal_id.clone(), tid: subject.tenant_id.clone() });
        Self {
            tenant: subject.tenant_id.clone(),
            wharf_principal_id: subject.principal_id.clone(),
            wharf_principal_type: subject.principal_type,
            wharf_mi_kind: subject.mi_kind,
            wharf_host_resource: subject.host.as_ref().map(|h| h.id.clone()),
            wharf_host_type: subject.host.as_ref().map(|h| h.resource_type.clone()),
            wharf_builtin: subject.builtin.clone(),
            wharf_mode: ctx.mode,
            wharf_registry: ctx.registry_id.clone(),
            wharf_epoch: ctx.epoch.clone(),
            aad_identity,
        }
    }
}

/// Claims of a registry refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefreshClaims {
    pub jti: String,
    pub sub: String,
    pub nbf: i64,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
    pub version: String,
    pub grant_type: String,
    pub permissions: Permissions,
    pub roles: Vec<String>,
    #[serde(flatten)]
    pub binding: RegistryBinding,
}

/// Claims of a registry access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub jti: String,
    pub sub: String,
    pub nbf: i64,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    pub aud: String,
    pub version: String,
    pub access: Vec<AccessEntry>,
    pub roles: Vec<String>,
    pub grant_type: String,
    #[serde(flatten)]
    pub binding: RegistryBinding,
}

impl AccessClaims {
    /// [`allows`] on this token's `access` entries.
    pub fn allows(&self, resource_type: &str, name: &str, action: &str) -> bool {
        allows(&self.access, resource_type, name, action)
    }
}

/// Refuses a token issued under another role-assignment mode than the registry's current one:
/// after a mode switch, every earlier credential gets a 401, as in ACR.
pub fn check_mode(binding: &RegistryBinding, current: RoleAssignmentMode) -> Result<(), TokenError> {
    if binding.wharf_mode != current {
        return Err(TokenError::ModeMismatch { token: binding.wharf_mode.to_string(), current: current.to_string() });
    }
    Ok(())
}

/// Issues and validates a deployment's registry tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryTokenIssuer {
    /// `iss` of registry tokens.
    pub issuer: String,
    pub refresh_lifetime: Duration,
    pub access_lifetime: Duration,
    /// Clock skew allowed at validation.
    pub leeway: Duration,
}

impl Default for RegistryTokenIssuer {
    fn default() -> Self {
        Self {
            issuer: DEFAULT_REGISTRY_ISSUER.to_owned(),
            refresh_lifetime: DEFAULT_REFRESH_TOKEN_LIFETIME,
            access_lifetime: DEFAULT_ACCESS_TOKEN_LIFETIME,
            leeway: DEFAULT_LEEWAY,
        }
    }
}

impl RegistryTokenIssuer {
    /// Issues a refresh token for `subject` at registry `ctx`.
    pub fn issue_refresh(
        &self,
        keys: &KeySet,
        subject: &RegistrySubject,
        ctx: &RegistryContext,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken<RefreshClaims>, KeyError> {
        let t = now.timestamp();
        let claims = RefreshClaims {
            jti: Uuid::new_v4().to_string(),
            sub: subject.subject.clone(),
            nbf: t,
            exp: t + self.refresh_lifetime.num_seconds(),
            iat: t,
            iss: self.issuer.clone(),
            aud: ctx.login_server.to_ascii_lowercase(),
            version: TOKEN_VERSION.into(),
            grant_type: REFRESH_GRANT.into(),
            permissions: Permissions { actions: vec!["*".into()], not_actions: vec![] },
            roles: vec![],
            binding: RegistryBinding::new(subject, ctx),
        };
        let token = jwt::encode(keys, &claims)?;
        Ok(IssuedToken { token, expires_on: claims.exp, expires_in: claims.exp - claims.iat, claims })
    }

    /// Issues an access token granting `access` (already decided by the server) to `subject`.
    pub fn issue_access(
        &self,
        keys: &KeySet,
        subject: &RegistrySubject,
        ctx: &RegistryContext,
        access: Vec<AccessEntry>,
        now: DateTime<Utc>,
    ) -> Result<IssuedToken<AccessClaims>, KeyError> {
        let t = now.timestamp();
        let claims = AccessClaims {
            jti: Uuid::new_v4().to_string(),
            sub: subject.subject.clone(),
            nbf: t,
            exp: t + self.access_lifetime.num_seconds(),
            iat: t,
            iss: self.issuer.clone(),
            aud: ctx.login_server.to_ascii_lowercase(),
            version: TOKEN_VERSION.into(),
            access,
            roles: vec![],
            grant_type: ACCESS_GRANT.into(),
            binding: RegistryBinding::new(subject, ctx),
        };
        let token = jwt::encode(keys, &claims)?;
        Ok(IssuedToken { token, expires_on: claims.exp, expires_in: claims.exp - claims.iat, claims })
    }

    fn validation(&self, ctx: &RegistryContext) -> Validation {
        Validation {
            issuer: self.issuer.clone(),
            audiences: vec![ctx.login_server.to_ascii_lowercase()],
            leeway: self.leeway,
            max_lifetime: jwt::DEFAULT_MAX_LIFETIME.max(self.refresh_lifetime).max(self.access_lifetime),
        }
    }

    /// Verifies the JWS and the registered claims, then the token's kind, then its shape. An
    /// `aud` naming another login server is reported as such, and so is a token of the other
    /// kind (a refresh token lacks the access token's claims: without checking `grant_type`
    /// first, it would be reported as merely malformed).
    fn verify<C: serde::de::DeserializeOwned>(
        &self,
        keys: &KeySet,
        token: &str,
        ctx: &RegistryContext,
        now: DateTime<Utc>,
        expected_grant: &'static str,
    ) -> Result<C, TokenError> {
        let claims = match jwt::verify::<serde_json::Value>(keys, token, &self.validation(ctx), now) {
            Ok(v) => v.claims,
            Err(TokenError::WrongAudience { found }) => {
                return Err(TokenError::WrongLoginServer {
                    expected: ctx.login_server.to_ascii_lowercase(),
                    token: found.join(" "),
                });
            }
            Err(e) => return Err(e),
        };
        let found = claims.get("grant_type").and_then(serde_json::Value::as_str).unwrap_or_default();
        if found != expected_grant {
            return Err(TokenError::WrongGrantType { expected: expected_grant, found: found.to_owned() });
        }
        serde_json::from_value(claims).map_err(|e| TokenError::MalformedClaims(e.to_string()))
    }

    fn check_binding(
        &self,
        grant_type: &str,
        expected_grant: &'static str,
        iat: i64,
        binding: &RegistryBinding,
        ctx: &RegistryContext,
        revocations: &dyn RevocationCutoffs,
    ) -> Result<(), TokenError> {
        if grant_type != expected_grant {
            return Err(TokenError::WrongGrantType { expected: expected_grant, found: grant_type.to_owned() });
        }
        if binding.wharf_registry != ctx.registry_id {
            return Err(TokenError::WrongRegistry {
                expected: ctx.registry_id.clone(),
                token: binding.wharf_registry.clone(),
            });
        }
        check_mode(binding, ctx.mode)?;
        if binding.wharf_epoch != ctx.epoch {
            return Err(TokenError::StaleRegistryEpoch);
        }
        jwt::check_revocation(iat, revocations.cutoff_for(&binding.wharf_principal_id))
    }

    /// Validates a refresh token presented to registry `ctx` (at `/oauth2/token`, or as the
    /// password of the null-GUID username): signature, issuer, `aud` = login server, times,
    /// `grant_type`, registry, mode and the principal's revocation cutoff.
    pub fn validate_refresh(
        &self,
        keys: &KeySet,
        token: &str,
        ctx: &RegistryContext,
        now: DateTime<Utc>,
        revocations: &dyn RevocationCutoffs,
    ) -> Result<RefreshClaims, TokenError> {
        let c: RefreshClaims = self.verify(keys, token, ctx, now, REFRESH_GRANT)?;
        self.check_binding(&c.grant_type, REFRESH_GRANT, c.iat, &c.binding, ctx, revocations)?;
        Ok(c)
    }

    /// Validates an access token presented as `Authorization: Bearer` to registry `ctx`. The
    /// caller then checks the request's action with [`AccessClaims::allows`].
    pub fn validate_access(
        &self,
        keys: &KeySet,
        token: &str,
        ctx: &RegistryContext,
        now: DateTime<Utc>,
        revocations: &dyn RevocationCutoffs,
    ) -> Result<AccessClaims, TokenError> {
        let c: AccessClaims = self.verify(keys, token, ctx, now, ACCESS_GRANT)?;
        self.check_binding(&c.grant_type, ACCESS_GRANT, c.iat, &c.binding, ctx, revocations)?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::claims::{Audience, DirectoryPrincipal, DirectoryTokenIssuer, ManagedIdentityRef};
    use crate::jwt::NoRevocations;
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use chrono::TimeZone;

    const REGISTRY_ID: &str =
        "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry";

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 6, 1, 10, 0, 0).unwrap()
    }

    fn ctx(mode: RoleAssignmentMode) -> RegistryContext {
        RegistryContext {
            login_server: "myregistry.localhost:5000".into(),
            registry_id: REGISTRY_ID.into(),
            mode,
            epoch: format!("epoch-{mode}"),
        }
    }

    fn legacy() -> RegistryContext {
        ctx(RoleAssignmentMode::LegacyRegistryPermissions)
    }

    fn subject() -> RegistrySubject {
        let dir = DirectoryTokenIssuer::new("https://127.0.0.1:8443", "tenant-1");
        let principal = DirectoryPrincipal::ManagedIdentity {
            object_id: "mi-oid".into(),
            client_id: "mi-client".into(),
            identity: ManagedIdentityRef::SystemAssigned,
            host: HostResource::from_id(
                "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/cg1",
            )
            .unwrap(),
        };
        RegistrySubject::from_directory(&dir.claims_for(&principal, Audience::ContainerRegistry, t0()))
    }

    fn pull_nginx() -> Vec<AccessEntry> {
        vec![AccessEntry::new("repository", "backend/nginx", ["pull"]), AccessEntry::new("registry", "catalog", ["*"])]
    }

    #[test]
    fn refresh_then_access_round_trip() {
        let keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let refresh = issuer.issue_refresh(&keys, &subject(), &legacy(), t0()).unwrap();
        assert_eq!(refresh.expires_in, 3 * 3600);
        let r = issuer.validate_refresh(&keys, &refresh.token, &legacy(), t0(), &NoRevocations).unwrap();
        assert_eq!(r.grant_type, "refresh_token");
        assert_eq!(r.aud, "myregistry.localhost:5000");
        assert_eq!(r.binding.wharf_principal_type, PrincipalType::ManagedIdentity);
        assert_eq!(r.binding.wharf_host_type.as_deref(), Some("Microsoft.ContainerInstance/containerGroups"));
        assert_eq!(r.binding.aad_identity, None, "no aad_identity in legacy mode");

        let later = t0() + Duration::minutes(10);
        let sub = RegistrySubject::from_binding(&r.sub, &r.binding);
        assert_eq!(sub, subject());
        let access = issuer.issue_access(&keys, &sub, &legacy(), pull_nginx(), later).unwrap();
        assert_eq!(access.expires_in, 75 * 60);
        let a = issuer.validate_access(&keys, &access.token, &legacy(), later, &NoRevocations).unwrap();
        assert!(a.allows("repository", "backend/nginx", "pull"));
        assert!(!a.allows("repository", "backend/nginx", "push"));
        assert!(!a.allows("repository", "backend/redis", "pull"));
        assert!(a.allows("registry", "catalog", "*"));

        let raw = jwt::decode_unverified(&access.token).unwrap();
        assert_eq!(raw["access"][0]["type"], "repository");
        assert_eq!(raw["access"][0]["actions"][0], "pull");
        assert_eq!(raw["grant_type"], "access_token");
        assert_eq!(raw["version"], "1.0");
        assert_eq!(raw["wharf_mode"], "LegacyRegistryPermissions");
        assert_eq!(raw["wharf_registry"], REGISTRY_ID);
    }

    #[test]
    fn refresh_token_payload_decodes_with_standard_base64_like_the_acr_sdk() {
        // These values put '>' , '?' and '~' and non-ASCII text into the payload at all offsets:
        // naive base64url would contain '-' and '_'. Decode as the Python SDK does: append
        // `len % 4` '=' and use the standard alphabet.
        let keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let mut found_awkward = false;
        for (i, name) in ["a?b>c~d", "x~~y??z>>", "ünïcödé ~?>", "q"].into_iter().enumerate() {
            let mut s = subject();
            s.subject = name.to_owned();
            s.principal_id = format!("{i}~?>");
            let issued = issuer.issue_refresh(&keys, &s, &legacy(), t0()).unwrap();
            let naive =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(&issued.claims).unwrap());
            found_awkward |= naive.contains(['-', '_']);
            let payload = issued.token.split('.').nth(1).unwrap();
            assert!(!payload.contains(['-', '_']), "{payload}");
            let mut padded = payload.to_owned();
            padded.push_str(&"=".repeat(payload.len() % 4));
            let bytes = STANDARD.decode(&padded).unwrap();
            let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(value["exp"], issued.claims.exp);
            assert_eq!(value["sub"], name);
            // And it still validates normally.
            let back = issuer.validate_refresh(&keys, &issued.token, &legacy(), t0(), &NoRevocations).unwrap();
            assert_eq!(back.sub, name);
        }
        assert!(found_awkward, "the test inputs must exercise the problem");
    }

    #[test]
    fn abac_mode_tokens_carry_aad_identity_and_are_bound_to_the_mode() {
        let keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let abac = ctx(RoleAssignmentMode::AbacRepositoryPermissions);
        let refresh = issuer.issue_refresh(&keys, &subject(), &abac, t0()).unwrap();
        let r = issuer.validate_refresh(&keys, &refresh.token, &abac, t0(), &NoRevocations).unwrap();
        assert_eq!(r.binding.aad_identity, Some(AadIdentity { oid: "mi-oid".into(), tid: Some("tenant-1".into()) }));
        // The registry switches back to legacy: the ABAC-era token is refused.
        assert_eq!(
            issuer.validate_refresh(&keys, &refresh.token, &legacy(), t0(), &NoRevocations).unwrap_err(),
            TokenError::ModeMismatch {
                token: "AbacRepositoryPermissions".into(),
                current: "LegacyRegistryPermissions".into()
            }
        );
        let access = issuer.issue_access(&keys, &subject(), &legacy(), pull_nginx(), t0()).unwrap();
        assert!(matches!(
            issuer.validate_access(&keys, &access.token, &abac, t0(), &NoRevocations),
            Err(TokenError::ModeMismatch { .. })
        ));
        assert!(check_mode(&access.claims.binding, RoleAssignmentMode::LegacyRegistryPermissions).is_ok());
        assert!(check_mode(&access.claims.binding, RoleAssignmentMode::AbacRepositoryPermissions).is_err());
    }

    #[test]
    fn tokens_of_an_earlier_registry_epoch_are_refused() {
        let keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let before = legacy();
        let access = issuer.issue_access(&keys, &subject(), &before, pull_nginx(), t0()).unwrap();
        let refresh = issuer.issue_refresh(&keys, &subject(), &before, t0()).unwrap();
        assert_eq!(access.claims.binding.wharf_epoch, before.epoch);
        // The registry was deleted and created again under the same name and id, or its mode
        // went to ABAC and back: same login server, id and mode, a new epoch.
        let after = RegistryContext { epoch: "a-new-epoch".into(), ..before.clone() };
        assert_eq!(
            issuer.validate_access(&keys, &access.token, &after, t0(), &NoRevocations).unwrap_err(),
            TokenError::StaleRegistryEpoch
        );
        assert_eq!(
            issuer.validate_refresh(&keys, &refresh.token, &after, t0(), &NoRevocations).unwrap_err(),
            TokenError::StaleRegistryEpoch
        );
        assert!(issuer.validate_access(&keys, &access.token, &before, t0(), &NoRevocations).is_ok());
    }

    #[test]
    fn token_kinds_are_not_interchangeable() {
        let keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let refresh = issuer.issue_refresh(&keys, &subject(), &legacy(), t0()).unwrap();
        let access = issuer.issue_access(&keys, &subject(), &legacy(), pull_nginx(), t0()).unwrap();
        assert!(matches!(
            issuer.validate_access(&keys, &refresh.token, &legacy(), t0(), &NoRevocations),
            Err(TokenError::WrongGrantType { expected: "access_token", ref found }) if found == "refresh_token"
        ));
        assert!(matches!(
            issuer.validate_refresh(&keys, &access.token, &legacy(), t0(), &NoRevocations),
            Err(TokenError::WrongGrantType { expected: "refresh_token", ref found }) if found == "access_token"
        ));
        // A directory token is not a registry token, even for a registry audience.
        let dir = DirectoryTokenIssuer::new("https://127.0.0.1:8443", "tenant-1");
        let principal =
            DirectoryPrincipal::ServicePrincipal { object_id: "o".into(), app_id: "a".into(), builtin: None };
        let d = dir.issue(&keys, &principal, Audience::ContainerRegistry, t0()).unwrap();
        assert!(matches!(
            issuer.validate_access(&keys, &d.token, &legacy(), t0(), &NoRevocations),
            Err(TokenError::WrongIssuer { .. })
        ));
    }

    #[test]
    fn wrong_access_token_grant_type_is_reported_precisely() {
        let keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let mut claims = issuer.issue_access(&keys, &subject(), &legacy(), pull_nginx(), t0()).unwrap().claims;
        claims.grant_type = "refresh_token".into();
        let token = jwt::encode(&keys, &claims).unwrap();
        assert_eq!(
            issuer.validate_access(&keys, &token, &legacy(), t0(), &NoRevocations).unwrap_err(),
            TokenError::WrongGrantType { expected: "access_token", found: "refresh_token".into() }
        );
    }

    #[test]
    fn audience_registry_and_time_are_checked() {
        let keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let access = issuer.issue_access(&keys, &subject(), &legacy(), pull_nginx(), t0()).unwrap();
        let mut other_host = legacy();
        other_host.login_server = "other.localhost:5000".into();
        assert!(matches!(
            issuer.validate_access(&keys, &access.token, &other_host, t0(), &NoRevocations),
            Err(TokenError::WrongLoginServer { ref expected, ref token })
                if expected == "other.localhost:5000" && token == "myregistry.localhost:5000"
        ));
        let mut upper = legacy();
        upper.login_server = "MyRegistry.LOCALHOST:5000".into();
        assert!(issuer.validate_access(&keys, &access.token, &upper, t0(), &NoRevocations).is_ok());
        let mut other_registry = legacy();
        other_registry.registry_id = format!("{REGISTRY_ID}2");
        assert!(matches!(
            issuer.validate_access(&keys, &access.token, &other_registry, t0(), &NoRevocations),
            Err(TokenError::WrongRegistry { .. })
        ));
        assert!(matches!(
            issuer.validate_access(&keys, &access.token, &legacy(), t0() + Duration::minutes(77), &NoRevocations),
            Err(TokenError::Expired { .. })
        ));
        let other_keys = KeySet::generate(t0());
        assert!(matches!(
            issuer.validate_access(&other_keys, &access.token, &legacy(), t0(), &NoRevocations),
            Err(TokenError::UnknownKid(_))
        ));
    }

    #[test]
    fn credential_reset_revokes_earlier_tokens_of_that_principal_only() {
        let keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let refresh = issuer.issue_refresh(&keys, &subject(), &legacy(), t0()).unwrap();
        let reset_at = t0() + Duration::seconds(30);
        let cutoffs = |pid: &str| (pid == "mi-oid").then_some(reset_at);
        let now = t0() + Duration::minutes(1);
        assert!(matches!(
            issuer.validate_refresh(&keys, &refresh.token, &legacy(), now, &cutoffs),
            Err(TokenError::Revoked { .. })
        ));
        let other_cutoffs = |pid: &str| (pid == "someone-else").then_some(reset_at);
        assert!(issuer.validate_refresh(&keys, &refresh.token, &legacy(), now, &other_cutoffs).is_ok());
        let fresh = issuer.issue_refresh(&keys, &subject(), &legacy(), now).unwrap();
        assert!(issuer.validate_refresh(&keys, &fresh.token, &legacy(), now, &cutoffs).is_ok());
    }

    #[test]
    fn rotation_overlap_for_registry_tokens() {
        let mut keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let refresh = issuer.issue_refresh(&keys, &subject(), &legacy(), t0()).unwrap();
        keys.rotate(t0() + Duration::minutes(5));
        let t = t0() + Duration::hours(2);
        assert!(issuer.validate_refresh(&keys, &refresh.token, &legacy(), t, &NoRevocations).is_ok());
        keys.prune(t0() + Duration::minutes(5) + keys.overlap());
        assert!(matches!(
            issuer.validate_refresh(&keys, &refresh.token, &legacy(), t, &NoRevocations),
            Err(TokenError::UnknownKid(_))
        ));
    }

    #[test]
    fn local_credentials_get_no_aad_identity_even_in_abac_mode() {
        let keys = KeySet::generate(t0());
        let issuer = RegistryTokenIssuer::default();
        let abac = ctx(RoleAssignmentMode::AbacRepositoryPermissions);
        let token_subject = RegistrySubject::local(PrincipalType::RepositoryToken, "tok-id-1", "ci-token");
        let access = issuer.issue_access(&keys, &token_subject, &abac, pull_nginx(), t0()).unwrap();
        let a = issuer.validate_access(&keys, &access.token, &abac, t0(), &NoRevocations).unwrap();
        assert_eq!(a.sub, "ci-token");
        assert_eq!(a.binding.wharf_principal_type, PrincipalType::RepositoryToken);
        assert_eq!(a.binding.aad_identity, None);
        assert_eq!(a.binding.tenant, None);
    }

    #[test]
    fn allows_semantics() {
        let granted = vec![
            AccessEntry::new("repository", "a/b", ["pull", "push"]),
            AccessEntry::new("repository", "c", ["*"]),
            AccessEntry::new("registry", "catalog", ["*"]),
        ];
        assert!(allows(&granted, "repository", "a/b", "push"));
        assert!(!allows(&granted, "repository", "a/b", "delete"));
        assert!(!allows(&granted, "repository", "A/B", "pull"));
        assert!(!allows(&granted, "repository", "a", "pull"));
        assert!(allows(&granted, "repository", "c", "delete"));
        assert!(!allows(&granted, "registry", "c", "pull"));
        assert!(!allows(&granted, "repository", "catalog", "pull"));
        assert!(!allows(&[], "repository", "a/b", "pull"));
        let wildcard = vec![AccessEntry::new("repository", "*", ["pull"])];
        assert!(allows(&wildcard, "repository", "anything/at/all", "pull"));
        assert!(!allows(&wildcard, "repository", "anything", "push"));
        let registry_star = vec![AccessEntry::new("registry", "*", ["*"])];
        assert!(!allows(&registry_star, "registry", "catalog", "*"));
    }
}
