//! Resources under a resource group other than registries: user-assigned managed identities
//! (`identities`) and the hosting resources that carry identities (container groups, ML
//! workspaces, web sites, `hosts`); the subscription-wide listing by type; what happens after a
//! record tree is deleted (a resource group's cascade, or one resource).
//!
//! Owns: the ARM handlers of these resources.
//! Must never: issue tokens (that is the managed-identity endpoint), or keep a plaintext
//! identity header.

pub mod hosts;
pub mod identities;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::identity::{HOST_TYPES, USER_ASSIGNED_IDENTITY, host_type};
use wharf_arm::network::{PRIVATE_ENDPOINT, VIRTUAL_NETWORK};
use wharf_arm::{ArmError, types};
use wharf_storage::ResourceRecord;

use super::{ArmCtx, json_response, storage_error};
use crate::model::identities::{Host, UserAssigned};
use crate::state::AppState;

/// The Wharf-specific action that returns a workload's managed-identity environment.
pub const WORKLOAD_ENVIRONMENT_ACTION: &str = "workloadEnvironment";

/// The canonical spelling of a type this module lists, from a path's namespace and type segment.
fn canonical_type(namespace: &str, type_name: &str) -> Option<&'static str> {
    let wanted = format!("{namespace}/{type_name}");
    std::iter::once(USER_ASSIGNED_IDENTITY)
        .chain(HOST_TYPES)
        .chain([VIRTUAL_NETWORK, PRIVATE_ENDPOINT])
        .find(|t| t.eq_ignore_ascii_case(&wanted))
}

/// A provider or type Wharf does not serve under a resource group.
pub async fn unknown(ctx: &ArmCtx, group: &str, namespace: &str, rest: &[String]) -> Result<Response, ArmError> {
    super::groups::require(&ctx.state, group).await?;
    Err(ArmError::new(
        400,
        "NoRegisteredProviderFound",
        format!(
            "No registered resource provider found for '{namespace}/{}'. Wharf serves {USER_ASSIGNED_IDENTITY}, {}, {VIRTUAL_NETWORK} and {PRIVATE_ENDPOINT}.",
            rest.join("/"),
            HOST_TYPES.join(", ")
        ),
    ))
}

/// `GET /subscriptions/{sub}/providers/{namespace}/{type}`: the resources of one served type
/// across resource groups, each shown only to callers who may read it (as ARM filters
/// subscription listings).
pub async fn list_by_type(ctx: &ArmCtx, namespace: &str, type_name: &str) -> Result<Response, ArmError> {
    let Some(resource_type) = canonical_type(namespace, type_name) else {
        return Err(ArmError::new(
            400,
            "NoRegisteredProviderFound",
            format!(
                "No registered resource provider found for '{namespace}/{type_name}'. Wharf lists {}, {}, {VIRTUAL_NETWORK}, {PRIVATE_ENDPOINT} and {} here.",
                USER_ASSIGNED_IDENTITY,
                HOST_TYPES.join(", "),
                types::REGISTRY
            ),
        ));
    };
    let all = crate::model::records_of_type(&*ctx.state.meta, resource_type)
        .await
        .map_err(|e| storage_error("listing resources", e))?;
    let mut value = vec![];
    for r in all.into_iter().filter(|r| ctx.shows(&r.id, resource_type)) {
        value.push(match host_type(resource_type) {
            Some(_) => Host::from_record(r).map_err(|e| storage_error("listing resources", e))?.public_body(),
            None => r.body,
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

/// `tags` of a request body: an object of strings (`default` when absent).
pub fn tags_of(body: &Value, default: Value) -> Result<Value, ArmError> {
    match body.get("tags") {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(Value::Object(m.clone())),
        Some(_) => Err(ArmError::invalid_request("'tags' must be an object of string values.")),
    }
}

/// `location` of a request body, normalised as ARM does; the group's when absent.
pub fn location_of(body: &Value, group: &ResourceRecord) -> String {
    body.get("location")
        .and_then(Value::as_str)
        .filter(|l| !l.is_empty())
        .map(|l| l.to_ascii_lowercase().replace(' ', ""))
        .unwrap_or_else(|| group.body["location"].as_str().unwrap_or("local").to_string())
}

/// What must follow the deletion of a record tree (already out of the store, and out of the
/// assignment index and registry cache — `AppState::delete_tree`): deleted registries' content
/// is purged, the identities deleted resources carried (system-assigned ones, deleted
/// user-assigned ones) have their tokens revoked and their identity headers stop working, and
/// deleted private endpoints' listeners close.
pub async fn after_delete(state: &AppState, deleted: &[ResourceRecord]) -> Result<(), ArmError> {
    for r in deleted {
        if r.resource_type.eq_ignore_ascii_case(types::REGISTRY) {
            super::registries::purge(state, r).await?;
        } else if r.resource_type.eq_ignore_ascii_case(USER_ASSIGNED_IDENTITY) {
            let ua =
                UserAssigned::from_record(r.clone()).map_err(|e| storage_error("reading a deleted identity", e))?;
            identities::revoke(state, &ua.object().object_id).await?;
        } else if crate::model::identities::is_host_type(&r.resource_type) {
            let host = Host::from_record(r.clone()).map_err(|e| storage_error("reading a deleted resource", e))?;
            hosts::forget(state, &host).await?;
        } else if r.resource_type.eq_ignore_ascii_case(PRIVATE_ENDPOINT) {
            crate::private_link::stop(state, &r.id);
        }
    }
    Ok(())
}
