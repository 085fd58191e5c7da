//! Who is calling, as far as the network check cares, and which callers are trusted services.
//!
//! Owns the caller facts (principal type, managed-identity kind, hosting resource, built-in
//! principal tag), the enum of trusted services, and the seed's trusted-services table as one
//! function, [`classify`]. It never looks at addresses or policies, and it never decides
//! authorization: a trusted service still needs a role.

use std::fmt;

use serde::Serialize;

/// ARM resource types the table mentions (compared ASCII-case-insensitively).
pub const CONTAINER_GROUPS: &str = "Microsoft.ContainerInstance/containerGroups";
pub const ML_WORKSPACES: &str = "Microsoft.MachineLearningServices/workspaces";
pub const REGISTRY_TASKS: &str = "Microsoft.ContainerRegistry/registries/tasks";
pub const APP_SERVICE_SITES: &str = "Microsoft.Web/sites";

pub use wharf_vocab::{ManagedIdentityKind, PrincipalType};

/// Decisions and audit events name principal types with their camelCase words.
fn principal_type_word<S: serde::Serializer>(t: &PrincipalType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.as_str())
}

fn optional_principal_type_word<S: serde::Serializer>(t: &Option<PrincipalType>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(t.as_str()),
        None => s.serialize_none(),
    }
}

/// First-party principals Wharf itself runs. The identity layer sets this tag only on tokens
/// it minted for these services, never from anything a client sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuiltinPrincipal {
    /// Tag `defender-scanner`: the vulnerability scanner (Microsoft Defender for Cloud).
    DefenderScanner,
    /// Tag `acr-import`: the registry's import service.
    AcrImport,
}

impl BuiltinPrincipal {
    /// Parses the tag (`defender-scanner`, `acr-import`).
    pub fn from_tag(tag: &str) -> Option<BuiltinPrincipal> {
        match tag {
            "defender-scanner" => Some(BuiltinPrincipal::DefenderScanner),
            "acr-import" => Some(BuiltinPrincipal::AcrImport),
            _ => None,
        }
    }
    pub fn tag(self) -> &'static str {
        match self {
            BuiltinPrincipal::DefenderScanner => "defender-scanner",
            BuiltinPrincipal::AcrImport => "acr-import",
        }
    }
}

/// What the network check knows about the caller. Every fact is optional; a missing fact never
/// makes a caller trusted (fail closed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Caller {
    /// Object id (or other stable id) of the principal, for audit only.
    pub principal_id: Option<String>,
    #[serde(serialize_with = "optional_principal_type_word")]
    pub principal_type: Option<PrincipalType>,
    /// For managed identities: system- or user-assigned.
    pub identity_kind: Option<ManagedIdentityKind>,
    /// ARM id of the resource the managed identity belongs to (the container group, workspace,
    /// task …). When `hosting_resource_type` is absent it is derived from this id.
    pub hosting_resource_id: Option<String>,
    /// ARM type of the hosting resource, e.g. `Microsoft.ContainerInstance/containerGroups`.
    pub hosting_resource_type: Option<String>,
    pub builtin: Option<BuiltinPrincipal>,
}

impl Caller {
    /// A managed identity hosted by `hosting_resource_id` (its type is derived from the id).
    pub fn managed_identity(kind: ManagedIdentityKind, hosting_resource_id: &str) -> Caller {
        Caller {
            principal_type: Some(PrincipalType::ManagedIdentity),
            identity_kind: Some(kind),
            hosting_resource_id: Some(hosting_resource_id.to_owned()),
            ..Caller::default()
        }
    }

    /// A principal of the given type with no hosting resource (users, service principals …).
    pub fn principal(principal_type: PrincipalType, principal_id: &str) -> Caller {
        Caller {
            principal_id: Some(principal_id.to_owned()),
            principal_type: Some(principal_type),
            ..Caller::default()
        }
    }

    /// One of Wharf's built-in principals.
    pub fn builtin(builtin: BuiltinPrincipal) -> Caller {
        Caller { principal_type: Some(PrincipalType::ServicePrincipal), builtin: Some(builtin), ..Caller::default() }
    }

    /// True when the hosting resource is of ARM type `ty`: the explicit type if one is given,
    /// else the type the hosting resource id names.
    pub fn hosting_is(&self, ty: &str) -> bool {
        match (&self.hosting_resource_type, &self.hosting_resource_id) {
            (Some(t), _) => t.eq_ignore_ascii_case(ty),
            (None, Some(id)) => id_is_of_type(id, ty),
            (None, None) => false,
        }
    }

    /// Short name of the hosting resource for messages: the last segment of its id.
    pub(crate) fn hosting_name(&self) -> Option<&str> {
        self.hosting_resource_id
            .as_deref()
            .and_then(|id| id.trim_end_matches('/').rsplit('/').next())
            .filter(|s| !s.is_empty())
    }
}

/// The services whose instances may bypass network rules (the seed's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TrustedService {
    /// Azure Container Instances: deploy from the registry with a managed identity of the
    /// container group; system- **or** user-assigned identity.
    ContainerInstances,
    /// Azure Machine Learning: deploy or train with a custom image from a workspace; the
    /// workspace's system-assigned identity only.
    MachineLearning,
    /// ACR Tasks: a task reaching its own or another registry; the task's system-assigned
    /// identity only. Also admitted by `networkRuleBypassAllowedForTasks`.
    RegistryTasks,
    /// Microsoft Defender for Cloud: vulnerability scanning; built-in principal, no identity.
    DefenderForCloud,
    /// Azure Container Registry import: importing to or from a network-restricted registry;
    /// built-in principal, no identity.
    RegistryImport,
}

impl TrustedService {
    pub fn name(self) -> &'static str {
        match self {
            TrustedService::ContainerInstances => "Azure Container Instances",
            TrustedService::MachineLearning => "Azure Machine Learning",
            TrustedService::RegistryTasks => "ACR Tasks",
            TrustedService::DefenderForCloud => "Microsoft Defender for Cloud",
            TrustedService::RegistryImport => "Azure Container Registry import",
        }
    }

    /// Whether a user-assigned identity of this service counts (only ACI's does).
    pub fn accepts_user_assigned(self) -> bool {
        matches!(self, TrustedService::ContainerInstances)
    }
}

impl fmt::Display for TrustedService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a caller is not a trusted service instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum NotTrusted<'a> {
    /// No principal type and no built-in tag: nothing to trust.
    UnknownPrincipal,
    /// Users, service principals, the admin user, repository tokens and anonymous callers are
    /// never trusted services.
    PrincipalType {
        #[serde(serialize_with = "principal_type_word")]
        principal_type: PrincipalType,
    },
    /// A managed identity whose kind (system/user-assigned) is unknown.
    UnknownIdentityKind,
    /// A managed identity with no hosting resource.
    NoHostingResource,
    /// The hosting resource id names a different type than the one claimed.
    HostingResourceMismatch { hosting_resource_id: &'a str, claimed_type: &'a str },
    /// App Service (`Microsoft.Web/sites`, including slots): explicitly not trusted.
    AppService,
    /// A user-assigned identity of a service that accepts only system-assigned identities.
    UserAssignedNotAccepted { service: TrustedService },
    /// A hosting resource (its type, or its id when no type was given) not in the table.
    UntrustedHostingResource { hosting_resource: &'a str },
}

impl fmt::Display for NotTrusted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotTrusted::UnknownPrincipal => f.write_str("the caller's principal is unknown"),
            NotTrusted::PrincipalType { principal_type } => {
                let what = match principal_type {
                    PrincipalType::User => "a user",
                    PrincipalType::ServicePrincipal => "a service principal",
                    PrincipalType::ManagedIdentity => "a managed identity",
                    PrincipalType::RegistryAdmin => "the registry admin user",
                    PrincipalType::RepositoryToken => "a repository-scoped token",
                    PrincipalType::Anonymous => "an anonymous caller",
                    PrincipalType::TaskRun => "a task run's own registry token",
                };
                write!(f, "{what} is never a trusted service")
            }
            NotTrusted::UnknownIdentityKind => {
                f.write_str("the managed identity's kind (system- or user-assigned) is unknown")
            }
            NotTrusted::NoHostingResource => f.write_str("the managed identity has no known hosting resource"),
            NotTrusted::HostingResourceMismatch { hosting_resource_id, claimed_type } => {
                write!(f, "hosting resource '{hosting_resource_id}' is not of the claimed type '{claimed_type}'")
            }
            NotTrusted::AppService => f.write_str("App Service (Microsoft.Web/sites) is not a trusted service"),
            NotTrusted::UserAssignedNotAccepted { service } => {
                let of = match service {
                    TrustedService::MachineLearning => "an ML workspace",
                    TrustedService::RegistryTasks => "a registry task",
                    other => other.name(),
                };
                write!(f, "user-assigned identity of {of} does not count (only system-assigned identities are trusted)")
            }
            NotTrusted::UntrustedHostingResource { hosting_resource } => {
                write!(f, "identities hosted by {hosting_resource} are not a trusted service")
            }
        }
    }
}

/// The seed's trusted-services table as a function. Row by row:
///
/// | caller | result |
/// |---|---|
/// | built-in `defender-scanner` | [`TrustedService::DefenderForCloud`] |
/// | built-in `acr-import` | [`TrustedService::RegistryImport`] |
/// | managed identity, system- or user-assigned, hosted by `Microsoft.ContainerInstance/containerGroups` | [`TrustedService::ContainerInstances`] |
/// | managed identity, system-assigned, hosted by `Microsoft.MachineLearningServices/workspaces` | [`TrustedService::MachineLearning`] |
/// | managed identity, system-assigned, hosted by `Microsoft.ContainerRegistry/registries/tasks` | [`TrustedService::RegistryTasks`] |
/// | user-assigned identity of an ML workspace or a task | not trusted: only system-assigned identities count unless the table says otherwise |
/// | anything hosted by `Microsoft.Web/sites` (App Service, slots) | not trusted, whatever role it holds |
/// | users, service principals, admin user, repository tokens, anonymous | not trusted |
/// | a missing fact (kind, hosting resource) or an id that contradicts the claimed type | not trusted (fail closed) |
pub fn classify(caller: &Caller) -> Result<TrustedService, NotTrusted<'_>> {
    match caller.builtin {
        Some(BuiltinPrincipal::DefenderScanner) => return Ok(TrustedService::DefenderForCloud),
        Some(BuiltinPrincipal::AcrImport) => return Ok(TrustedService::RegistryImport),
        None => {}
    }
    match caller.principal_type {
        None => return Err(NotTrusted::UnknownPrincipal),
        Some(PrincipalType::ManagedIdentity) => {}
        Some(principal_type) => return Err(NotTrusted::PrincipalType { principal_type }),
    }
    let (claimed, id) = (caller.hosting_resource_type.as_deref(), caller.hosting_resource_id.as_deref());
    let hosting_resource = claimed.or(id).ok_or(NotTrusted::NoHostingResource)?;
    if let (Some(claimed), Some(id)) = (claimed, id)
        && !id_is_of_type(id, claimed)
    {
        return Err(NotTrusted::HostingResourceMismatch { hosting_resource_id: id, claimed_type: claimed });
    }
    let service = if caller.hosting_is(CONTAINER_GROUPS) {
        TrustedService::ContainerInstances
    } else if caller.hosting_is(ML_WORKSPACES) {
        TrustedService::MachineLearning
    } else if caller.hosting_is(REGISTRY_TASKS) {
        TrustedService::RegistryTasks
    } else if is_app_service(caller) {
        return Err(NotTrusted::AppService);
    } else {
        return Err(NotTrusted::UntrustedHostingResource { hosting_resource });
    };
    match caller.identity_kind {
        None => Err(NotTrusted::UnknownIdentityKind),
        Some(ManagedIdentityKind::SystemAssigned) => Ok(service),
        Some(ManagedIdentityKind::UserAssigned) if service.accepts_user_assigned() => Ok(service),
        Some(ManagedIdentityKind::UserAssigned) => Err(NotTrusted::UserAssignedNotAccepted { service }),
    }
}

/// The trusted service `caller` is an instance of, if any (see [`classify`] for why not).
pub fn trusted_service(caller: &Caller) -> Option<TrustedService> {
    classify(caller).ok()
}

/// App Service sites and their child resources (slots): `Microsoft.Web/sites[/…]`.
fn is_app_service(caller: &Caller) -> bool {
    const PREFIX: &str = "Microsoft.Web/sites/";
    match (&caller.hosting_resource_type, &caller.hosting_resource_id) {
        (Some(t), _) => {
            t.eq_ignore_ascii_case(APP_SERVICE_SITES)
                || t.get(..PREFIX.len()).is_some_and(|p| p.eq_ignore_ascii_case(PREFIX))
        }
        (None, Some(id)) => provider_segments(id).is_some_and(|rest| {
            rest.len() >= 3 && rest[0].eq_ignore_ascii_case("Microsoft.Web") && rest[1].eq_ignore_ascii_case("sites")
        }),
        (None, None) => false,
    }
}

/// The segments after the last `providers` segment of an ARM id.
fn provider_segments(id: &str) -> Option<Vec<&str>> {
    let segments: Vec<&str> = id.trim_matches('/').split('/').collect();
    let providers = segments.iter().rposition(|s| s.eq_ignore_ascii_case("providers"))?;
    Some(segments[providers + 1..].to_vec())
}

/// True when ARM resource id `id` names a resource of type `ty` (`Namespace/type[/child…]`),
/// compared ASCII-case-insensitively: `/subscriptions/s/resourceGroups/g/providers/
/// Microsoft.ContainerRegistry/registries/r/tasks/t` is of type
/// `Microsoft.ContainerRegistry/registries/tasks`.
pub fn id_is_of_type(id: &str, ty: &str) -> bool {
    let Some(rest) = provider_segments(id) else {
        return false;
    };
    let type_parts: Vec<&str> = ty.split('/').collect();
    if type_parts.len() < 2 || rest.len() != 2 * type_parts.len() - 1 {
        return false;
    }
    rest[0].eq_ignore_ascii_case(type_parts[0])
        && (1..type_parts.len()).all(|i| rest[2 * i - 1].eq_ignore_ascii_case(type_parts[i]) && !rest[2 * i].is_empty())
}
