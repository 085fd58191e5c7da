//! A management request, parsed from method and path into an [`ArmEndpoint`], and the one
//! permission table of the management plane: [`ArmEndpoint::requirement`], a pure function of
//! the endpoint that dispatch authorizes before any store is read.
//!
//! ARM's keywords (`subscriptions`, `resourceGroups`, `providers`, type names) compare
//! case-insensitively; names keep the case the client sent. A path Wharf serves nothing at is
//! a 404 before authentication (as ARM answers `InvalidResourceType`); a method the endpoint
//! does not take is the variant [`ArmEndpoint::MethodNotAllowed`], refused after
//! authentication.

use axum::http::Method;
use wharf_arm::identity::{HOST_TYPES, USER_ASSIGNED_IDENTITY};
use wharf_arm::network::{PRIVATE_ENDPOINT, VIRTUAL_NETWORK};
use wharf_arm::{ArmError, ResourceId};

/// A registry's actions (`POST …/registries/{name}/{action}`, and `listUsages`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegistryAction {
    ListCredentials,
    RegenerateCredential,
    ListUsages,
    CheckAccess,
    RoleAssignmentModeImpact,
    NetworkRuleImpact,
    /// `importImage`: starts an import (answered 202 with the operation's status URL).
    ImportImage,
}

impl RegistryAction {
    const ALL: [(RegistryAction, &'static str, Method); 7] = [
        (RegistryAction::ListCredentials, "listCredentials", Method::POST),
        (RegistryAction::RegenerateCredential, "regenerateCredential", Method::POST),
        (RegistryAction::ListUsages, "listUsages", Method::GET),
        (RegistryAction::CheckAccess, "checkAccess", Method::POST),
        (RegistryAction::RoleAssignmentModeImpact, "roleAssignmentModeImpact", Method::POST),
        (RegistryAction::NetworkRuleImpact, "networkRuleImpact", Method::POST),
        (RegistryAction::ImportImage, "importImage", Method::POST),
    ];

    fn parse(segment: &str) -> Option<(RegistryAction, Method)> {
        Self::ALL.iter().find(|(_, name, _)| name.eq_ignore_ascii_case(segment)).map(|(a, _, m)| (*a, m.clone()))
    }
}

/// The path segment below a registry under which import operations are polled.
pub const IMPORT_OPERATIONS: &str = "importOperations";

/// An item of a hosting-resource or identity path: the resource's group and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub group: String,
    pub name: String,
}

/// A management request, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArmEndpoint {
    ListSubscriptions,
    GetSubscription,
    ListTenants,
    ListGroups,
    GetGroup {
        group: String,
    },
    /// `HEAD` on a resource group (`az group exists`).
    CheckGroup {
        group: String,
    },
    PutGroup {
        group: String,
    },
    PatchGroup {
        group: String,
    },
    DeleteGroup {
        group: String,
    },
    /// `…/resources`: every resource (of a group, or the subscription).
    ListResources {
        group: Option<String>,
    },
    ListRegistries {
        group: Option<String>,
    },
    /// `/subscriptions/{sub}/providers/{namespace}/{type}`: every resource of a type other than
    /// registries in the subscription (`az identity list`, `az network vnet list`, …).
    ListByType {
        namespace: String,
        type_name: String,
    },
    /// `POST /subscriptions/{sub}/providers/Microsoft.ContainerRegistry/checkNameAvailability`.
    CheckRegistryName,
    GetRegistry {
        group: String,
        name: String,
    },
    PutRegistry {
        group: String,
        name: String,
    },
    PatchRegistry {
        group: String,
        name: String,
    },
    DeleteRegistry {
        group: String,
        name: String,
    },
    RegistryAction {
        group: String,
        name: String,
        action: RegistryAction,
    },
    /// `GET …/registries/{name}/importOperations/{operation}`: the status of an import (the
    /// `Location` that `importImage` answers with).
    ImportOperation {
        group: String,
        name: String,
        operation: String,
    },
    /// ACR Tasks: tasks, runs, `scheduleRun` (their own permission table, `TaskEndpoint::action`).
    Tasks {
        group: String,
        name: String,
        endpoint: super::tasks::TaskEndpoint,
    },
    /// A registry child or action of an ACR feature Wharf does not serve yet (tasks, runs,
    /// import, webhooks, replications, scope maps, tokens, cache rules …): listing its
    /// collection answers an empty list, anything else ACR's `FeatureNotSupported`.
    RegistryFeature {
        group: String,
        name: String,
        method: Method,
        rest: Vec<String>,
    },
    ListIdentities {
        group: String,
    },
    GetIdentity(Named),
    PutIdentity(Named),
    PatchIdentity(Named),
    DeleteIdentity(Named),
    ListHosts {
        group: String,
        resource_type: &'static str,
    },
    GetHost {
        resource_type: &'static str,
        at: Named,
    },
    PutHost {
        resource_type: &'static str,
        at: Named,
    },
    PatchHost {
        resource_type: &'static str,
        at: Named,
    },
    DeleteHost {
        resource_type: &'static str,
        at: Named,
    },
    /// `POST {host}/workloadEnvironment`: the workload's managed-identity environment.
    HostWorkloadEnvironment {
        resource_type: &'static str,
        at: Named,
    },
    ListVnets {
        group: String,
    },
    GetVnet(Named),
    PutVnet(Named),
    DeleteVnet(Named),
    ListSubnets {
        vnet: Named,
    },
    GetSubnet {
        vnet: Named,
        subnet: String,
    },
    /// `PUT` or `PATCH` of a subnet.
    PutSubnet {
        vnet: Named,
        subnet: String,
    },
    DeleteSubnet {
        vnet: Named,
        subnet: String,
    },
    ListPrivateEndpoints {
        group: String,
    },
    GetPrivateEndpoint(Named),
    PutPrivateEndpoint(Named),
    DeletePrivateEndpoint(Named),
    /// A resource of a provider or type Wharf does not serve.
    UnknownResource {
        group: String,
        namespace: String,
        rest: Vec<String>,
    },
    ListRoleAssignments {
        scope: String,
    },
    GetRoleAssignment {
        scope: String,
        name: String,
    },
    PutRoleAssignment {
        scope: String,
        name: String,
    },
    DeleteRoleAssignment {
        scope: String,
        name: String,
    },
    ListRoleDefinitions {
        scope: String,
    },
    GetRoleDefinition {
        scope: String,
        name: String,
    },
    PutRoleDefinition {
        scope: String,
        name: String,
    },
    DeleteRoleDefinition {
        scope: String,
        name: String,
    },
    /// A served path with a method it does not take.
    MethodNotAllowed {
        method: Method,
    },
}

/// The action a listing filters its items by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemAction {
    /// The same action on every item.
    Fixed(String),
    /// `{item's type}/read` (a listing of several types).
    ReadOfItemType,
}

/// What an endpoint needs, decided before any store read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Any authenticated caller.
    Authenticated,
    /// Every `(action, scope)` listed (one or more).
    Actions(Vec<(String, String)>),
    /// A listing: each item is shown only to a caller who holds the action on it.
    PerItem(ItemAction),
    /// The actions listed, plus `action` on the resource the request body names at `pointer`
    /// (a JSON pointer), as ARM's linked access checks do.
    Linked { actions: Vec<(String, String)>, action: String, pointer: &'static str },
}

fn one(action: impl Into<String>, scope: impl Into<String>) -> Requirement {
    Requirement::Actions(vec![(action.into(), scope.into())])
}

fn verb(method: &Method) -> &'static str {
    match *method {
        Method::GET | Method::HEAD => "read",
        Method::DELETE => "delete",
        _ => "write",
    }
}

impl ArmEndpoint {
    /// Parses method and path. Returns the subscription named in the path too (the caller
    /// checks it).
    pub fn parse(method: &Method, path: &str) -> Result<(Option<String>, ArmEndpoint), ArmError> {
        let not_allowed = || Ok(ArmEndpoint::MethodNotAllowed { method: method.clone() });
        let get_only = |ep: ArmEndpoint| if *method == Method::GET { Ok(ep) } else { not_allowed() };
        if path.trim_end_matches('/').eq_ignore_ascii_case("/tenants") {
            return Ok((None, get_only(ArmEndpoint::ListTenants)?));
        }
        let segs: Vec<String> = path
            .trim_matches('/')
            .split('/')
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect();
        let is = |i: usize, kw: &str| segs.get(i).is_some_and(|s| s.eq_ignore_ascii_case(kw));
        let not_found = || ArmError::not_found_path(path);
        if !is(0, "subscriptions") {
            return Err(not_found());
        }
        // Extension resources of Microsoft.Authorization at any scope.
        if let Some(i) =
            (0..segs.len().saturating_sub(2)).find(|&i| is(i, "providers") && is(i + 1, "Microsoft.Authorization"))
        {
            let scope = format!("/{}", segs[..i].join("/"));
            let name = segs.get(i + 3).cloned();
            if segs.len() > i + 4 {
                return Err(not_found());
            }
            let sub = segs.get(1).cloned();
            let kind = segs.get(i + 2).map(|s| s.to_ascii_lowercase());
            let ep = match (kind.as_deref(), name, method.clone()) {
                (Some("roleassignments"), None, Method::GET) => Ok(ArmEndpoint::ListRoleAssignments { scope }),
                (Some("roleassignments"), Some(name), Method::GET) => {
                    Ok(ArmEndpoint::GetRoleAssignment { scope, name })
                }
                (Some("roleassignments"), Some(name), Method::PUT) => {
                    Ok(ArmEndpoint::PutRoleAssignment { scope, name })
                }
                (Some("roleassignments"), Some(name), Method::DELETE) => {
                    Ok(ArmEndpoint::DeleteRoleAssignment { scope, name })
                }
                (Some("roledefinitions"), None, Method::GET) => Ok(ArmEndpoint::ListRoleDefinitions { scope }),
                (Some("roledefinitions"), Some(name), Method::GET) => {
                    Ok(ArmEndpoint::GetRoleDefinition { scope, name })
                }
                (Some("roledefinitions"), Some(name), Method::PUT) => {
                    Ok(ArmEndpoint::PutRoleDefinition { scope, name })
                }
                (Some("roledefinitions"), Some(name), Method::DELETE) => {
                    Ok(ArmEndpoint::DeleteRoleDefinition { scope, name })
                }
                (Some("roleassignments" | "roledefinitions"), _, _) => not_allowed(),
                _ => Err(not_found()),
            }?;
            return Ok((sub, ep));
        }
        if segs.len() == 1 {
            return Ok((None, get_only(ArmEndpoint::ListSubscriptions)?));
        }
        let sub = Some(segs[1].clone());
        let rest = &segs[2..];
        let at = |i: usize, kw: &str| rest.get(i).is_some_and(|s| s.eq_ignore_ascii_case(kw));
        let registries_at =
            |i: usize| at(i, "providers") && at(i + 1, "Microsoft.ContainerRegistry") && at(i + 2, "registries");
        let ep = match rest.len() {
            0 => get_only(ArmEndpoint::GetSubscription)?,
            1 if at(0, "resourcegroups") => get_only(ArmEndpoint::ListGroups)?,
            1 if at(0, "resources") => get_only(ArmEndpoint::ListResources { group: None })?,
            2 if at(0, "resourcegroups") => {
                let group = rest[1].clone();
                match *method {
                    Method::GET => ArmEndpoint::GetGroup { group },
                    Method::HEAD => ArmEndpoint::CheckGroup { group },
                    Method::PUT => ArmEndpoint::PutGroup { group },
                    Method::PATCH => ArmEndpoint::PatchGroup { group },
                    Method::DELETE => ArmEndpoint::DeleteGroup { group },
                    _ => not_allowed()?,
                }
            }
            3 if registries_at(0) => get_only(ArmEndpoint::ListRegistries { group: None })?,
            3 if at(0, "providers") && at(1, "Microsoft.ContainerRegistry") && at(2, "checkNameAvailability") => {
                if *method == Method::POST {
                    ArmEndpoint::CheckRegistryName
                } else {
                    not_allowed()?
                }
            }
            3 if at(0, "providers") => {
                get_only(ArmEndpoint::ListByType { namespace: rest[1].clone(), type_name: rest[2].clone() })?
            }
            3 if at(0, "resourcegroups") && at(2, "resources") => {
                get_only(ArmEndpoint::ListResources { group: Some(rest[1].clone()) })?
            }
            5 if at(0, "resourcegroups") && registries_at(2) => {
                get_only(ArmEndpoint::ListRegistries { group: Some(rest[1].clone()) })?
            }
            6 if at(0, "resourcegroups") && registries_at(2) => {
                let (group, name) = (rest[1].clone(), rest[5].clone());
                match *method {
                    Method::GET => ArmEndpoint::GetRegistry { group, name },
                    Method::PUT => ArmEndpoint::PutRegistry { group, name },
                    Method::PATCH => ArmEndpoint::PatchRegistry { group, name },
                    Method::DELETE => ArmEndpoint::DeleteRegistry { group, name },
                    _ => not_allowed()?,
                }
            }
            n if n > 6 && at(0, "resourcegroups") && registries_at(2) => {
                let (group, name, tail) = (rest[1].clone(), rest[5].clone(), rest[6..].to_vec());
                if let Some(endpoint) = super::tasks::TaskEndpoint::parse(method, &tail) {
                    return Ok((sub, ArmEndpoint::Tasks { group, name, endpoint }));
                }
                match (tail.as_slice(), RegistryAction::parse(&tail[0])) {
                    ([kind, operation], _) if kind.eq_ignore_ascii_case(IMPORT_OPERATIONS) => {
                        if *method != Method::GET {
                            return Ok((sub, not_allowed()?));
                        }
                        ArmEndpoint::ImportOperation { group, name, operation: operation.clone() }
                    }
                    ([_], Some((action, m))) if m == *method => ArmEndpoint::RegistryAction { group, name, action },
                    ([_], Some(_)) => not_allowed()?,
                    _ => ArmEndpoint::RegistryFeature { group, name, method: method.clone(), rest: tail },
                }
            }
            n if n >= 5 && at(0, "resourcegroups") && at(2, "providers") => {
                Self::parse_resource(method, rest[1].clone(), &rest[3], &rest[4..])?
            }
            _ => return Err(not_found()),
        };
        Ok((sub, ep))
    }

    /// `…/resourceGroups/{group}/providers/{namespace}/{rest…}`: identities, hosting resources,
    /// virtual networks, subnets and private endpoints.
    fn parse_resource(
        method: &Method,
        group: String,
        namespace: &str,
        rest: &[String],
    ) -> Result<ArmEndpoint, ArmError> {
        let wanted = format!("{namespace}/{}", rest[0]);
        let is_type = |t: &str| t.eq_ignore_ascii_case(&wanted);
        let named = |name: &String| Named { group: group.clone(), name: name.clone() };
        let not_allowed = || Ok(ArmEndpoint::MethodNotAllowed { method: method.clone() });
        let crud = |get: fn(Named) -> ArmEndpoint,
                    put: fn(Named) -> ArmEndpoint,
                    patch: Option<fn(Named) -> ArmEndpoint>,
                    delete: fn(Named) -> ArmEndpoint,
                    at: Named|
         -> Result<ArmEndpoint, ArmError> {
            Ok(match (method.clone(), patch) {
                (Method::GET, _) => get(at),
                (Method::PUT, _) => put(at),
                (Method::PATCH, Some(p)) => p(at),
                (Method::DELETE, _) => delete(at),
                _ => return not_allowed(),
            })
        };
        let unknown = || ArmEndpoint::UnknownResource {
            group: group.clone(),
            namespace: namespace.to_string(),
            rest: rest.to_vec(),
        };
        let lower: Vec<String> = rest.iter().map(|s| s.to_ascii_lowercase()).collect();
        let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
        if is_type(USER_ASSIGNED_IDENTITY) {
            return match rest {
                [_] if *method == Method::GET => Ok(ArmEndpoint::ListIdentities { group }),
                [_] => not_allowed(),
                [_, name] => crud(
                    ArmEndpoint::GetIdentity,
                    ArmEndpoint::PutIdentity,
                    Some(ArmEndpoint::PatchIdentity),
                    ArmEndpoint::DeleteIdentity,
                    named(name),
                ),
                _ => Err(ArmError::not_found_path(&format!("{namespace}/{}", rest.join("/")))),
            };
        }
        if let Some(resource_type) = HOST_TYPES.into_iter().find(|t| is_type(t)) {
            return Ok(match rest {
                [_] if *method == Method::GET => ArmEndpoint::ListHosts { group, resource_type },
                [_] => return not_allowed(),
                [_, name] => {
                    let at = named(name);
                    match *method {
                        Method::GET => ArmEndpoint::GetHost { resource_type, at },
                        Method::PUT => ArmEndpoint::PutHost { resource_type, at },
                        Method::PATCH => ArmEndpoint::PatchHost { resource_type, at },
                        Method::DELETE => ArmEndpoint::DeleteHost { resource_type, at },
                        _ => return not_allowed(),
                    }
                }
                [_, name, action] if action.eq_ignore_ascii_case(super::resources::WORKLOAD_ENVIRONMENT_ACTION) => {
                    if *method != Method::POST {
                        return not_allowed();
                    }
                    ArmEndpoint::HostWorkloadEnvironment { resource_type, at: named(name) }
                }
                _ => return Err(ArmError::not_found_path(&format!("{namespace}/{}", rest.join("/")))),
            });
        }
        if namespace.eq_ignore_ascii_case("Microsoft.Network") {
            let get = *method == Method::GET;
            return Ok(match lower.as_slice() {
                ["virtualnetworks"] if get => ArmEndpoint::ListVnets { group },
                ["privateendpoints"] if get => ArmEndpoint::ListPrivateEndpoints { group },
                ["virtualnetworks"] | ["privateendpoints"] => return not_allowed(),
                ["virtualnetworks", _] => {
                    let at = named(&rest[1]);
                    match *method {
                        Method::GET => ArmEndpoint::GetVnet(at),
                        Method::PUT => ArmEndpoint::PutVnet(at),
                        Method::DELETE => ArmEndpoint::DeleteVnet(at),
                        _ => return not_allowed(),
                    }
                }
                ["virtualnetworks", _, "subnets"] if get => ArmEndpoint::ListSubnets { vnet: named(&rest[1]) },
                ["virtualnetworks", _, "subnets"] => return not_allowed(),
                ["virtualnetworks", _, "subnets", _] => {
                    let (vnet, subnet) = (named(&rest[1]), rest[3].clone());
                    match *method {
                        Method::GET => ArmEndpoint::GetSubnet { vnet, subnet },
                        Method::PUT | Method::PATCH => ArmEndpoint::PutSubnet { vnet, subnet },
                        Method::DELETE => ArmEndpoint::DeleteSubnet { vnet, subnet },
                        _ => return not_allowed(),
                    }
                }
                ["privateendpoints", _] => {
                    let at = named(&rest[1]);
                    match *method {
                        Method::GET => ArmEndpoint::GetPrivateEndpoint(at),
                        Method::PUT => ArmEndpoint::PutPrivateEndpoint(at),
                        Method::DELETE => ArmEndpoint::DeletePrivateEndpoint(at),
                        _ => return not_allowed(),
                    }
                }
                _ => unknown(),
            });
        }
        Ok(unknown())
    }

    /// What the endpoint needs, in subscription `sub`: the management plane's one permission
    /// table. Every endpoint has a row (the match is exhaustive); dispatch authorizes it before
    /// reading any store.
    pub fn requirement(&self, sub: &str) -> Requirement {
        use ArmEndpoint as E;
        const REGISTRY: &str = "Microsoft.ContainerRegistry/registries";
        const ASSIGNMENTS: &str = "Microsoft.Authorization/roleAssignments";
        const DEFINITIONS: &str = "Microsoft.Authorization/roleDefinitions";
        let group_id = |g: &str| ResourceId::resource_group(sub, g).to_string();
        let registry_id = |g: &str, n: &str| ResourceId::registry(sub, g, n).to_string();
        let resource_id = |t: &str, at: &Named| {
            let (namespace, type_name) = t.split_once('/').expect("resource types have a namespace");
            ResourceId::resource(sub, &at.group, namespace, type_name, &at.name).to_string()
        };
        let fixed = |a: String| Requirement::PerItem(ItemAction::Fixed(a));
        match self {
            E::ListSubscriptions | E::GetSubscription | E::ListTenants | E::MethodNotAllowed { .. } => {
                Requirement::Authenticated
            }
            E::ListGroups => fixed("Microsoft.Resources/subscriptions/resourceGroups/read".into()),
            E::GetGroup { group } | E::CheckGroup { group } => {
                one("Microsoft.Resources/subscriptions/resourceGroups/read", group_id(group))
            }
            E::PutGroup { group } | E::PatchGroup { group } => {
                one("Microsoft.Resources/subscriptions/resourceGroups/write", group_id(group))
            }
            E::DeleteGroup { group } => one("Microsoft.Resources/subscriptions/resourceGroups/delete", group_id(group)),
            E::ListResources { .. } => Requirement::PerItem(ItemAction::ReadOfItemType),
            E::ListRegistries { .. } => fixed(format!("{REGISTRY}/read")),
            E::ListByType { namespace, type_name } => fixed(format!("{namespace}/{type_name}/read")),
            E::CheckRegistryName => {
                one("Microsoft.ContainerRegistry/checkNameAvailability/read", format!("/subscriptions/{sub}"))
            }
            E::GetRegistry { group, name } => one(format!("{REGISTRY}/read"), registry_id(group, name)),
            E::PutRegistry { group, name } | E::PatchRegistry { group, name } => {
                one(format!("{REGISTRY}/write"), registry_id(group, name))
            }
            E::DeleteRegistry { group, name } => one(format!("{REGISTRY}/delete"), registry_id(group, name)),
            E::RegistryAction { group, name, action } => {
                let id = registry_id(group, name);
                let each = |actions: &[&str]| {
                    Requirement::Actions(actions.iter().map(|a| (a.to_string(), id.clone())).collect())
                };
                match action {
                    RegistryAction::ListCredentials => {
                        each(&["Microsoft.ContainerRegistry/registries/listCredentials/action"])
                    }
                    RegistryAction::RegenerateCredential => {
                        each(&["Microsoft.ContainerRegistry/registries/regenerateCredential/action"])
                    }
                    RegistryAction::ListUsages => each(&["Microsoft.ContainerRegistry/registries/listUsages/read"]),
                    // The answer shows the registry's network properties and the assignments
                    // that decide.
                    RegistryAction::CheckAccess | RegistryAction::NetworkRuleImpact => each(&[
                        "Microsoft.Authorization/roleAssignments/read",
                        "Microsoft.ContainerRegistry/registries/read",
                    ]),
                    RegistryAction::RoleAssignmentModeImpact => each(&["Microsoft.ContainerRegistry/registries/read"]),
                    // Reading the source is decided by the import itself, once it has resolved
                    // the source registry (a data-plane decision in the source's mode).
                    RegistryAction::ImportImage => each(&["Microsoft.ContainerRegistry/registries/importImage/action"]),
                }
            }
            // Whoever may import into the registry may follow its imports (the operation id is
            // random, and the operation must belong to this registry).
            E::ImportOperation { group, name, .. } => {
                one(format!("{REGISTRY}/importImage/action"), registry_id(group, name))
            }
            E::Tasks { group, name, endpoint } => match endpoint.action() {
                Some(action) => one(action, registry_id(group, name)),
                // A method the path does not take: refused after authentication.
                None => Requirement::Authenticated,
            },
            E::RegistryFeature { group, name, method, rest } => {
                // A POST to a single segment is an action (`importImage`, `scheduleRun`);
                // anything else addresses a child resource type (`tasks`, `tasks/t1`).
                let action = match (rest.as_slice(), method) {
                    ([action], &Method::POST) => format!("{REGISTRY}/{action}/action"),
                    ([child, ..], m) => format!("{REGISTRY}/{child}/{}", verb(m)),
                    ([], m) => format!("{REGISTRY}/{}", verb(m)),
                };
                one(action, registry_id(group, name))
            }
            E::ListIdentities { group } => one(format!("{USER_ASSIGNED_IDENTITY}/read"), group_id(group)),
            E::GetIdentity(at) => {
                one(format!("{USER_ASSIGNED_IDENTITY}/read"), resource_id(USER_ASSIGNED_IDENTITY, at))
            }
            E::PutIdentity(at) | E::PatchIdentity(at) => {
                one(format!("{USER_ASSIGNED_IDENTITY}/write"), resource_id(USER_ASSIGNED_IDENTITY, at))
            }
            E::DeleteIdentity(at) => {
                one(format!("{USER_ASSIGNED_IDENTITY}/delete"), resource_id(USER_ASSIGNED_IDENTITY, at))
            }
            E::ListHosts { group, resource_type } => one(format!("{resource_type}/read"), group_id(group)),
            E::GetHost { resource_type, at } => one(format!("{resource_type}/read"), resource_id(resource_type, at)),
            E::PutHost { resource_type, at } | E::PatchHost { resource_type, at } => {
                one(format!("{resource_type}/write"), resource_id(resource_type, at))
            }
            E::DeleteHost { resource_type, at } => {
                one(format!("{resource_type}/delete"), resource_id(resource_type, at))
            }
            // Handing out a workload's identity secret is a write to the resource.
            E::HostWorkloadEnvironment { resource_type, at } => {
                one(format!("{resource_type}/write"), resource_id(resource_type, at))
            }
            E::ListVnets { group } => one(format!("{VIRTUAL_NETWORK}/read"), group_id(group)),
            E::GetVnet(at) => one(format!("{VIRTUAL_NETWORK}/read"), resource_id(VIRTUAL_NETWORK, at)),
            E::PutVnet(at) => one(format!("{VIRTUAL_NETWORK}/write"), resource_id(VIRTUAL_NETWORK, at)),
            E::DeleteVnet(at) => one(format!("{VIRTUAL_NETWORK}/delete"), resource_id(VIRTUAL_NETWORK, at)),
            E::ListSubnets { vnet } => {
                one(format!("{VIRTUAL_NETWORK}/subnets/read"), resource_id(VIRTUAL_NETWORK, vnet))
            }
            E::GetSubnet { vnet, subnet } => one(
                format!("{VIRTUAL_NETWORK}/subnets/read"),
                format!("{}/subnets/{subnet}", resource_id(VIRTUAL_NETWORK, vnet)),
            ),
            E::PutSubnet { vnet, subnet } => one(
                format!("{VIRTUAL_NETWORK}/subnets/write"),
                format!("{}/subnets/{subnet}", resource_id(VIRTUAL_NETWORK, vnet)),
            ),
            E::DeleteSubnet { vnet, subnet } => one(
                format!("{VIRTUAL_NETWORK}/subnets/delete"),
                format!("{}/subnets/{subnet}", resource_id(VIRTUAL_NETWORK, vnet)),
            ),
            E::ListPrivateEndpoints { group } => one(format!("{PRIVATE_ENDPOINT}/read"), group_id(group)),
            E::GetPrivateEndpoint(at) => one(format!("{PRIVATE_ENDPOINT}/read"), resource_id(PRIVATE_ENDPOINT, at)),
            // Connecting an endpoint to a registry needs the registry's approval right too.
            E::PutPrivateEndpoint(at) => Requirement::Linked {
                actions: vec![(format!("{PRIVATE_ENDPOINT}/write"), resource_id(PRIVATE_ENDPOINT, at))],
                action: "Microsoft.ContainerRegistry/registries/privateEndpointConnectionsApproval/action".into(),
                pointer: "/properties/privateLinkServiceConnections/0/properties/privateLinkServiceId",
            },
            E::DeletePrivateEndpoint(at) => {
                one(format!("{PRIVATE_ENDPOINT}/delete"), resource_id(PRIVATE_ENDPOINT, at))
            }
            E::UnknownResource { group, namespace, rest } => match rest.as_slice() {
                [type_name] => one(format!("{namespace}/{type_name}/read"), group_id(group)),
                [type_name, name, ..] => one(
                    format!("{namespace}/{type_name}/read"),
                    format!("{}/providers/{namespace}/{type_name}/{name}", group_id(group)),
                ),
                [] => Requirement::Authenticated,
            },
            E::ListRoleAssignments { scope } | E::GetRoleAssignment { scope, .. } => {
                one(format!("{ASSIGNMENTS}/read"), scope.clone())
            }
            E::PutRoleAssignment { scope, .. } => one(format!("{ASSIGNMENTS}/write"), scope.clone()),
            E::DeleteRoleAssignment { scope, .. } => one(format!("{ASSIGNMENTS}/delete"), scope.clone()),
            // Role definitions are readable by every signed-in caller, as in Azure.
            E::ListRoleDefinitions { .. } | E::GetRoleDefinition { .. } => Requirement::Authenticated,
            E::PutRoleDefinition { scope, .. } => one(format!("{DEFINITIONS}/write"), scope.clone()),
            E::DeleteRoleDefinition { scope, .. } => one(format!("{DEFINITIONS}/delete"), scope.clone()),
        }
    }

    /// The resource type api-version errors name.
    pub fn resource_type(&self) -> &'static str {
        match self {
            ArmEndpoint::ListRegistries { .. }
            | ArmEndpoint::CheckRegistryName
            | ArmEndpoint::GetRegistry { .. }
            | ArmEndpoint::PutRegistry { .. }
            | ArmEndpoint::PatchRegistry { .. }
            | ArmEndpoint::DeleteRegistry { .. } => wharf_arm::types::REGISTRY,
            _ => "Microsoft.Resources",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "00000000-0000-4000-8000-000000000001";

    fn p(m: Method, path: &str) -> ArmEndpoint {
        ArmEndpoint::parse(&m, path).unwrap_or_else(|e| panic!("{m} {path}: {e:?}")).1
    }

    fn at(rest: &str) -> String {
        format!("/subscriptions/{SUB}/resourceGroups/rg{rest}")
    }

    #[test]
    fn paths_parse_case_insensitively() {
        let (sub, ep) = ArmEndpoint::parse(&Method::GET, "/subscriptions/S/resourcegroups/rg1").unwrap();
        assert_eq!(sub.as_deref(), Some("S"));
        assert_eq!(ep, ArmEndpoint::GetGroup { group: "rg1".into() });
        assert_eq!(
            p(Method::GET, "/subscriptions/S/providers/microsoft.containerregistry/registries"),
            ArmEndpoint::ListRegistries { group: None }
        );
        assert!(ArmEndpoint::parse(&Method::GET, "/subscriptions/S/foo").is_err());
        assert_eq!(p(Method::POST, &at("")), ArmEndpoint::MethodNotAllowed { method: Method::POST });
        assert_eq!(
            p(Method::GET, &at("/providers/Microsoft.ContainerRegistry/registries/r/listCredentials")),
            ArmEndpoint::MethodNotAllowed { method: Method::GET }
        );
    }

    /// Every endpoint and what it needs: the management plane's permission table (an endpoint
    /// added without a row fails to compile in `requirement` and fails the count here).
    #[test]
    fn every_endpoint_has_its_requirement() {
        use Requirement::*;
        let sub = format!("/subscriptions/{SUB}");
        let reg = at("/providers/Microsoft.ContainerRegistry/registries/r");
        let act = |a: &str, s: &str| Actions(vec![(a.to_string(), s.to_string())]);
        let mi = at("/providers/Microsoft.ManagedIdentity/userAssignedIdentities/i");
        let cg = at("/providers/Microsoft.ContainerInstance/containerGroups/c");
        let vnet = at("/providers/Microsoft.Network/virtualNetworks/v");
        let pe = at("/providers/Microsoft.Network/privateEndpoints/p");
        let ra = |s: &str| format!("{s}/providers/Microsoft.Authorization/roleAssignments/g");
        let rd = |s: &str| format!("{s}/providers/Microsoft.Authorization/roleDefinitions/g");
        let table: Vec<(Method, String, Requirement)> = vec![
            (Method::GET, "/subscriptions".into(), Authenticated),
            (Method::GET, sub.clone(), Authenticated),
            (Method::GET, "/tenants".into(), Authenticated),
            (
                Method::GET,
                format!("{sub}/resourcegroups"),
                PerItem(ItemAction::Fixed("Microsoft.Resources/subscriptions/resourceGroups/read".into())),
            ),
            (Method::GET, at(""), act("Microsoft.Resources/subscriptions/resourceGroups/read", &at(""))),
            (Method::HEAD, at(""), act("Microsoft.Resources/subscriptions/resourceGroups/read", &at(""))),
            (Method::PUT, at(""), act("Microsoft.Resources/subscriptions/resourceGroups/write", &at(""))),
            (Method::PATCH, at(""), act("Microsoft.Resources/subscriptions/resourceGroups/write", &at(""))),
            (Method::DELETE, at(""), act("Microsoft.Resources/subscriptions/resourceGroups/delete", &at(""))),
            (Method::GET, format!("{sub}/resources"), PerItem(ItemAction::ReadOfItemType)),
            (
                Method::GET,
                format!("{sub}/providers/Microsoft.ContainerRegistry/registries"),
                PerItem(ItemAction::Fixed("Microsoft.ContainerRegistry/registries/read".into())),
            ),
            (
                Method::GET,
                format!("{sub}/providers/Microsoft.ManagedIdentity/userAssignedIdentities"),
                PerItem(ItemAction::Fixed("Microsoft.ManagedIdentity/userAssignedIdentities/read".into())),
            ),
            (
                Method::POST,
                format!("{sub}/providers/Microsoft.ContainerRegistry/checkNameAvailability"),
                act("Microsoft.ContainerRegistry/checkNameAvailability/read", &sub),
            ),
            (Method::GET, reg.clone(), act("Microsoft.ContainerRegistry/registries/read", &reg)),
            (Method::PUT, reg.clone(), act("Microsoft.ContainerRegistry/registries/write", &reg)),
            (Method::PATCH, reg.clone(), act("Microsoft.ContainerRegistry/registries/write", &reg)),
            (Method::DELETE, reg.clone(), act("Microsoft.ContainerRegistry/registries/delete", &reg)),
            (
                Method::POST,
                format!("{reg}/listCredentials"),
                act("Microsoft.ContainerRegistry/registries/listCredentials/action", &reg),
            ),
            (
                Method::POST,
                format!("{reg}/checkAccess"),
                Actions(vec![
                    ("Microsoft.Authorization/roleAssignments/read".into(), reg.clone()),
                    ("Microsoft.ContainerRegistry/registries/read".into(), reg.clone()),
                ]),
            ),
            (
                Method::POST,
                format!("{reg}/roleAssignmentModeImpact"),
                act("Microsoft.ContainerRegistry/registries/read", &reg),
            ),
            (Method::PUT, format!("{reg}/tasks/t1"), act("Microsoft.ContainerRegistry/registries/tasks/write", &reg)),
            (
                Method::POST,
                format!("{reg}/runs/ca1/listLogSasUrl"),
                act("Microsoft.ContainerRegistry/registries/runs/listLogSasUrl/action", &reg),
            ),
            (Method::GET, format!("{reg}/webhooks"), act("Microsoft.ContainerRegistry/registries/webhooks/read", &reg)),
            (
                Method::POST,
                format!("{reg}/importImage"),
                act("Microsoft.ContainerRegistry/registries/importImage/action", &reg),
            ),
            (
                Method::GET,
                format!("{reg}/importOperations/0b6c"),
                act("Microsoft.ContainerRegistry/registries/importImage/action", &reg),
            ),
            (
                Method::GET,
                at("/providers/Microsoft.ManagedIdentity/userAssignedIdentities"),
                act("Microsoft.ManagedIdentity/userAssignedIdentities/read", &at("")),
            ),
            (Method::GET, mi.clone(), act("Microsoft.ManagedIdentity/userAssignedIdentities/read", &mi)),
            (Method::PUT, mi.clone(), act("Microsoft.ManagedIdentity/userAssignedIdentities/write", &mi)),
            (Method::PATCH, mi.clone(), act("Microsoft.ManagedIdentity/userAssignedIdentities/write", &mi)),
            (Method::DELETE, mi.clone(), act("Microsoft.ManagedIdentity/userAssignedIdentities/delete", &mi)),
            (
                Method::GET,
                at("/providers/Microsoft.ContainerInstance/containerGroups"),
                act("Microsoft.ContainerInstance/containerGroups/read", &at("")),
            ),
            (Method::GET, cg.clone(), act("Microsoft.ContainerInstance/containerGroups/read", &cg)),
            (Method::PUT, cg.clone(), act("Microsoft.ContainerInstance/containerGroups/write", &cg)),
            (Method::PATCH, cg.clone(), act("Microsoft.ContainerInstance/containerGroups/write", &cg)),
            (Method::DELETE, cg.clone(), act("Microsoft.ContainerInstance/containerGroups/delete", &cg)),
            (
                Method::POST,
                format!("{cg}/workloadEnvironment"),
                act("Microsoft.ContainerInstance/containerGroups/write", &cg),
            ),
            (
                Method::GET,
                at("/providers/Microsoft.Network/virtualNetworks"),
                act("Microsoft.Network/virtualNetworks/read", &at("")),
            ),
            (Method::GET, vnet.clone(), act("Microsoft.Network/virtualNetworks/read", &vnet)),
            (Method::PUT, vnet.clone(), act("Microsoft.Network/virtualNetworks/write", &vnet)),
            (Method::DELETE, vnet.clone(), act("Microsoft.Network/virtualNetworks/delete", &vnet)),
            (Method::GET, format!("{vnet}/subnets"), act("Microsoft.Network/virtualNetworks/subnets/read", &vnet)),
            (
                Method::GET,
                format!("{vnet}/subnets/s"),
                act("Microsoft.Network/virtualNetworks/subnets/read", &format!("{vnet}/subnets/s")),
            ),
            (
                Method::PATCH,
                format!("{vnet}/subnets/s"),
                act("Microsoft.Network/virtualNetworks/subnets/write", &format!("{vnet}/subnets/s")),
            ),
            (
                Method::DELETE,
                format!("{vnet}/subnets/s"),
                act("Microsoft.Network/virtualNetworks/subnets/delete", &format!("{vnet}/subnets/s")),
            ),
            (
                Method::GET,
                at("/providers/Microsoft.Network/privateEndpoints"),
                act("Microsoft.Network/privateEndpoints/read", &at("")),
            ),
            (Method::GET, pe.clone(), act("Microsoft.Network/privateEndpoints/read", &pe)),
            (
                Method::PUT,
                pe.clone(),
                Linked {
                    actions: vec![("Microsoft.Network/privateEndpoints/write".into(), pe.clone())],
                    action: "Microsoft.ContainerRegistry/registries/privateEndpointConnectionsApproval/action".into(),
                    pointer: "/properties/privateLinkServiceConnections/0/properties/privateLinkServiceId",
                },
            ),
            (Method::DELETE, pe.clone(), act("Microsoft.Network/privateEndpoints/delete", &pe)),
            (
                Method::GET,
                at("/providers/Contoso.Things/widgets/w"),
                act("Contoso.Things/widgets/read", &at("/providers/Contoso.Things/widgets/w")),
            ),
            (
                Method::GET,
                format!("{reg}/providers/Microsoft.Authorization/roleAssignments"),
                act("Microsoft.Authorization/roleAssignments/read", &reg),
            ),
            (Method::GET, ra(&reg), act("Microsoft.Authorization/roleAssignments/read", &reg)),
            (Method::PUT, ra(&reg), act("Microsoft.Authorization/roleAssignments/write", &reg)),
            (Method::DELETE, ra(&reg), act("Microsoft.Authorization/roleAssignments/delete", &reg)),
            (Method::GET, format!("{sub}/providers/Microsoft.Authorization/roleDefinitions"), Authenticated),
            (Method::GET, rd(&sub), Authenticated),
            (Method::PUT, rd(&sub), act("Microsoft.Authorization/roleDefinitions/write", &sub)),
            (Method::DELETE, rd(&sub), act("Microsoft.Authorization/roleDefinitions/delete", &sub)),
            (Method::POST, reg.clone(), Authenticated),
        ];
        let mut variants = std::collections::HashSet::new();
        for (method, path, want) in &table {
            let endpoint = p(method.clone(), path);
            assert_eq!(endpoint.requirement(SUB), *want, "{method} {path} ({endpoint:?})");
            variants.insert(std::mem::discriminant(&endpoint));
        }
        // Variants the table reaches (every variant of ArmEndpoint but none left out).
        assert_eq!(variants.len(), ARM_ENDPOINT_VARIANTS, "every ArmEndpoint variant appears in the table");
    }

    const ARM_ENDPOINT_VARIANTS: usize = 54;
}
