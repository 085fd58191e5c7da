//! Resources under a resource group other than registries: user-assigned managed identities
//! (`Microsoft.ManagedIdentity/userAssignedIdentities`, in `identities`) and the hosting
//! resources that carry identities (container groups, ML workspaces, web sites, in `hosts`).
//!
//! Owns: the ARM shapes of these resources, the identities they carry (object and client ids),
//! and the identity-header secrets of hosting resources (stored only as keyed fingerprints).
//! Must never: issue tokens (that is `auth::msi`), or keep a plaintext identity header.

pub mod hosts;
pub mod identities;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::ArmError;
use wharf_identity::ManagedIdentityKind;
use wharf_storage::{MetadataStore, ResourceFilter, StorageError};

use super::{ArmCtx, json_response, storage_error};

/// `Microsoft.ManagedIdentity/userAssignedIdentities`.
pub const USER_ASSIGNED_IDENTITY: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

/// The hosting resource types whose workloads can carry managed identities.
pub const HOST_TYPES: [&str; 3] = [
    "Microsoft.ContainerInstance/containerGroups",
    "Microsoft.MachineLearningServices/workspaces",
    "Microsoft.Web/sites",
];

/// The canonical spelling of a served resource type, from a path's namespace and type segment.
pub fn canonical_type(namespace: &str, type_name: &str) -> Option<&'static str> {
    let wanted = format!("{namespace}/{type_name}");
    std::iter::once(USER_ASSIGNED_IDENTITY).chain(HOST_TYPES).find(|t| t.eq_ignore_ascii_case(&wanted))
}

pub async fn handle(ctx: &ArmCtx, group: &str, namespace: &str, rest: &[String]) -> Result<Response, ArmError> {
    let rg = super::groups::require(&ctx.state, group).await?;
    let path = format!("{namespace}/{}", rest.join("/"));
    let no_provider = || {
        ArmError::new(
            400,
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for '{path}'. Wharf serves {USER_ASSIGNED_IDENTITY} and {}.",
                HOST_TYPES.join(", ")
            ),
        )
    };
    let Some(type_name) = rest.first() else {
        return Err(no_provider());
    };
    let Some(resource_type) = canonical_type(namespace, type_name) else {
        return Err(no_provider());
    };
    let name = rest.get(1).map(String::as_str);
    let tail: Vec<&str> = rest.iter().skip(2).map(String::as_str).collect();
    if resource_type == USER_ASSIGNED_IDENTITY {
        identities::handle(ctx, &rg, name, &tail).await
    } else {
        hosts::handle(ctx, &rg, resource_type, name, &tail).await
    }
}

/// `GET /subscriptions/{sub}/providers/{namespace}/{type}`: the resources of one served type
/// across resource groups, each shown only to callers who may read it (as ARM filters
/// subscription listings).
pub async fn list_by_type(ctx: &ArmCtx, namespace: &str, type_name: &str) -> Result<Response, ArmError> {
    let network = [super::network::VNET_TYPE, super::network::PE_TYPE];
    let wanted = format!("{namespace}/{type_name}");
    let Some(resource_type) =
        canonical_type(namespace, type_name).or_else(|| network.into_iter().find(|t| t.eq_ignore_ascii_case(&wanted)))
    else {
        return Err(ArmError::new(
            400,
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for '{wanted}'. Wharf lists {}, {} and Microsoft.ContainerRegistry/registries here.",
                USER_ASSIGNED_IDENTITY,
                HOST_TYPES.iter().chain(&network).copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    };
    let filter = ResourceFilter { resource_type: Some(resource_type.into()), resource_group: None };
    let all = ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing resources", e))?;
    let read = format!("{resource_type}/read");
    let mut value = vec![];
    for r in all.into_iter().filter(|r| ctx.allowed(&read, &r.id)) {
        value.push(if HOST_TYPES.contains(&resource_type) {
            hosts::Host::from_record(r).map_err(|e| storage_error("listing resources", e))?.public_body()
        } else {
            r.body
        });
    }
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

/// Resource names: 1–128 letters, digits, `-`, `_` and `.`, starting with a letter or digit.
pub fn validate_name(name: &str, resource_type: &str) -> Result<(), ArmError> {
    let ok = (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(ArmError::bad_request(
            "InvalidResourceName",
            format!(
                "Resource name '{name}' of type '{resource_type}' is invalid. Use 1-128 letters, digits, '-', '_' and '.', starting with a letter or a digit."
            ),
        ))
    }
}

/// `tags` of a request body: an object of strings (`{}` when absent).
pub fn tags_of(body: &Value, default: Value) -> Result<Value, ArmError> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(Value::Object(m.clone())),
        Some(_) => Err(ArmError::invalid_request("'tags' must be an object of string values.")),
    }
}

/// `location` of a request body, normalised as ARM does; the group's when absent.
pub fn location_of(body: &Value, group: &wharf_storage::ResourceRecord) -> String {
    body.get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .map(|l| l.to_ascii_lowercase().replace(' ', ""))
        .unwrap_or_else(|| group.body["location"].as_str().unwrap_or("local").to_string())
}

/// A managed identity as the directory sees it: a service principal of type `ManagedIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedIdentityObject {
    pub object_id: String,
    pub client_id: String,
    pub kind: ManagedIdentityKind,
    /// The user-assigned identity's resource id, or the hosting resource's for a system-assigned one.
    pub resource_id: String,
    /// The resource's name (Entra names a managed identity's service principal after it).
    pub display_name: String,
}

/// Every managed identity of the deployment (user-assigned ones and the system-assigned
/// identities of hosting resources).
pub async fn managed_identities(meta: &dyn MetadataStore) -> Result<Vec<ManagedIdentityObject>, StorageError> {
    let mut out = vec![];
    let filter = ResourceFilter { resource_type: Some(USER_ASSIGNED_IDENTITY.into()), resource_group: None };
    for r in meta.resource_list(&filter).await? {
        if let Some(mi) = identities::object_of(&r) {
            out.push(mi);
        }
    }
    for t in HOST_TYPES {
        let filter = ResourceFilter { resource_type: Some(t.into()), resource_group: None };
        for r in meta.resource_list(&filter).await? {
            if let Some(s) = hosts::Host::from_record(r).ok().and_then(|h| h.system_object()) {
                out.push(s);
            }
        }
    }
    Ok(out)
}

/// Cleans up after resources were deleted by a cascade (a resource group's deletion): the
/// identities they carried (system-assigned ones, deleted user-assigned ones) have their tokens
/// revoked, and their identity headers stop working.
pub async fn after_delete(
    state: &crate::state::AppState,
    deleted: &[wharf_storage::ResourceRecord],
) -> Result<(), ArmError> {
    for r in deleted {
        if r.resource_type.eq_ignore_ascii_case(USER_ASSIGNED_IDENTITY) {
            if let Some(mi) = identities::object_of(r) {
                identities::revoke(state, &mi.object_id).await?;
            }
        } else if HOST_TYPES.iter().any(|t| t.eq_ignore_ascii_case(&r.resource_type)) {
            let host = hosts::Host::from_record(r.clone())
                .map_err(|e| super::storage_error("reading a deleted resource", e))?;
            hosts::forget(state, &host).await?;
        }
    }
    Ok(())
}

/// The managed identity whose object (principal) id is `object_id`.
pub async fn find_managed_identity(
    meta: &dyn MetadataStore,
    object_id: &str,
) -> Result<Option<ManagedIdentityObject>, StorageError> {
    Ok(managed_identities(meta).await?.into_iter().find(|m| m.object_id.eq_ignore_ascii_case(object_id)))
}
