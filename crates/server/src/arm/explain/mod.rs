//! Wharf's explanation endpoints on a registry, part of the management plane: `checkAccess`
//! (`access`), `networkRuleImpact` (`impact`) and `roleAssignmentModeImpact` (here), and the
//! network facts of directory principals they share — a principal as the network check would
//! see its requests, one [`Caller`] per hosting resource it can run in.
//!
//! Must never: change anything, or write an audit event (nothing is requested of the data
//! plane).

pub mod access;
pub mod impact;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::ArmError;
use wharf_arm::identity::{CONTAINER_GROUPS, ML_WORKSPACES, WEB_SITES};
use wharf_authz::{PrincipalId, RoleAssignmentMode};
use wharf_netrules::{Caller, ManagedIdentityKind, PrincipalType};
use wharf_storage::StorageError;

use super::{ArmCtx, json_response, storage_error};
use crate::model::identities::{self, Host, ManagedIdentityObject};
use crate::model::principals::{self, DirectoryObject};
use crate::state::{AppState, RegistryInfo};

/// A principal as the network check would see its requests from one hosting resource, with a
/// description for messages.
#[derive(Debug, Clone)]
pub struct NetworkIdentity {
    pub caller: Caller,
    /// "user 'alice@contoso.com'", "system-assigned identity of container group 'cg1'", …
    pub description: String,
}

/// What a directory object id is, for the network check.
#[derive(Debug, Clone)]
pub enum PrincipalFacts {
    /// A user, service principal or managed identity: the callers its requests can carry.
    Callers(Vec<NetworkIdentity>),
    /// A group: groups make no requests, their members do.
    Group { display_name: String },
    /// Not found in the directory.
    Unknown,
}

/// The hosting resources of a deployment, loaded once for the facts of many principals.
pub struct Directory {
    hosts: Vec<Host>,
}

impl Directory {
    pub async fn load(state: &AppState) -> Result<Directory, StorageError> {
        Ok(Directory { hosts: identities::hosts(&*state.meta).await? })
    }

    /// The network facts of `object_id`.
    pub async fn facts(&self, state: &AppState, object_id: &str) -> Result<PrincipalFacts, StorageError> {
        let oid = object_id.to_ascii_lowercase();
        Ok(match principals::lookup(&*state.meta, &oid).await? {
            Some(DirectoryObject::ManagedIdentity(mi)) => PrincipalFacts::Callers(self.identity_callers(&mi)),
            Some(DirectoryObject::User(u)) => PrincipalFacts::Callers(vec![NetworkIdentity {
                caller: Caller::principal(PrincipalType::User, &oid),
                description: format!("user '{}'", u.user_principal_name),
            }]),
            Some(DirectoryObject::ServicePrincipal(sp)) => {
                let builtin = sp.builtin.as_deref().and_then(wharf_netrules::BuiltinPrincipal::from_tag);
                let (caller, description) = match builtin {
                    Some(b) => (
                        Caller { principal_id: Some(oid.clone()), ..Caller::builtin(b) },
                        format!("built-in principal '{}'", sp.display_name),
                    ),
                    None => (
                        Caller::principal(PrincipalType::ServicePrincipal, &oid),
                        format!("service principal '{}'", sp.display_name),
                    ),
                };
                PrincipalFacts::Callers(vec![NetworkIdentity { caller, description }])
            }
            Some(DirectoryObject::Group(g)) => PrincipalFacts::Group { display_name: g.display_name },
            None => PrincipalFacts::Unknown,
        })
    }

    /// A system-assigned identity runs in its own resource; a user-assigned one in every
    /// resource it is attached to (and, attached to none, it has no hosting resource at all).
    fn identity_callers(&self, mi: &ManagedIdentityObject) -> Vec<NetworkIdentity> {
        let on = |host_id: &str, host_type: &str, kind: ManagedIdentityKind| Caller {
            principal_id: Some(mi.object_id.to_ascii_lowercase()),
            hosting_resource_type: Some(host_type.to_string()),
            ..Caller::managed_identity(kind, host_id)
        };
        match mi.kind {
            ManagedIdentityKind::SystemAssigned => {
                let host_type = self
                    .hosts
                    .iter()
                    .find(|h| h.record.id.eq_ignore_ascii_case(&mi.resource_id))
                    .map(|h| h.record.resource_type.clone())
                    .unwrap_or_default();
                let description =
                    format!("system-assigned identity of {} '{}'", host_noun(&host_type), mi.display_name);
                let caller = if host_type.is_empty() {
                    Caller {
                        principal_id: Some(mi.object_id.to_ascii_lowercase()),
                        ..Caller::managed_identity(ManagedIdentityKind::SystemAssigned, &mi.resource_id)
                    }
                } else {
                    on(&mi.resource_id, &host_type, ManagedIdentityKind::SystemAssigned)
                };
                vec![NetworkIdentity { caller, description }]
            }
            ManagedIdentityKind::UserAssigned => {
                let attached: Vec<NetworkIdentity> = self
                    .hosts
                    .iter()
                    .filter(|h| h.user_assigned_ids().iter().any(|id| id.eq_ignore_ascii_case(&mi.resource_id)))
                    .map(|h| NetworkIdentity {
                        caller: on(&h.record.id, &h.record.resource_type, ManagedIdentityKind::UserAssigned),
                        description: format!(
                            "user-assigned identity '{}' on {} '{}'",
                            mi.display_name,
                            host_noun(&h.record.resource_type),
                            h.record.name
                        ),
                    })
                    .collect();
                if !attached.is_empty() {
                    return attached;
                }
                let caller = Caller {
                    principal_id: Some(mi.object_id.to_ascii_lowercase()),
                    principal_type: Some(PrincipalType::ManagedIdentity),
                    identity_kind: Some(ManagedIdentityKind::UserAssigned),
                    ..Caller::default()
                };
                vec![NetworkIdentity {
                    caller,
                    description: format!(
                        "user-assigned identity '{}' (attached to no hosting resource)",
                        mi.display_name
                    ),
                }]
            }
        }
    }
}

/// How messages name a hosting resource type.
pub fn host_noun(resource_type: &str) -> &'static str {
    let is = |t: &str| resource_type.eq_ignore_ascii_case(t);
    if is(CONTAINER_GROUPS) {
        "container group"
    } else if is(ML_WORKSPACES) {
        "ML workspace"
    } else if is(WEB_SITES) {
        "web app (App Service)"
    } else if is(wharf_netrules::REGISTRY_TASKS) {
        "registry task"
    } else {
        "resource"
    }
}

/// `POST {registryId}/roleAssignmentModeImpact` {"roleAssignmentMode": …}: who gains or loses
/// data access on which repositories if the registry switched mode.
pub async fn mode_impact(ctx: &ArmCtx, registry: &RegistryInfo) -> Result<Response, ArmError> {
    let body = ctx.json()?;
    let to = body["roleAssignmentMode"].as_str().and_then(RoleAssignmentMode::parse).ok_or_else(|| {
        ArmError::invalid_request(format!("roleAssignmentMode {:?} is not valid.", body["roleAssignmentMode"].as_str()))
    })?;
    let from = registry.properties.role_assignment_mode;
    let repos = ctx
        .state
        .meta
        .repository_list(&registry.key, None, 100_000)
        .await
        .map_err(|e| storage_error("listing repositories", e))?;
    let repo_refs: Vec<&str> = repos.iter().map(String::as_str).collect();
    let index = ctx.state.authz.index();
    let mut principals: Vec<String> = index.assignments().map(|a| a.principal_id.as_str().to_string()).collect();
    principals.sort();
    principals.dedup();
    let sets: Vec<Vec<PrincipalId>> = principals.iter().map(|p| ctx.state.authz.principals(p)).collect();
    let impacts = index.what_if_mode_change(&sets, &registry.scope, &repo_refs, from, to);
    let value: Vec<Value> = impacts
        .iter()
        .filter(|i| !i.changes.is_empty())
        .map(|i| {
            json!({
                "principalId": i.principals.first().map(|p| p.as_str()),
                "changes": i.changes.iter().map(|c| json!({
                    "target": c.target.to_string(),
                    "gained": c.gained.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                    "lost": c.lost.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"from": from.as_str(), "to": to.as_str(), "value": value})))
}
