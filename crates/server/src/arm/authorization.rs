//! `Microsoft.Authorization`: role definitions and role assignments at any scope.
//!
//! Owns: the ARM shapes of definitions and assignments, validating an assignment before it is
//! stored (its scope normalised and naming a resource that exists — a grant on a registry not
//! yet created would otherwise take effect when someone creates one of that name —, its role,
//! principal and condition), and keeping the assignment index in step with the store.
//! Must never: authorize a request itself (dispatch did, from the endpoint's requirement), or
//! read every assignment to write one (the index answers).

use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::ArmError;
use wharf_authz::roles::{built_in_roles, parse_custom_role, role_guid_from_id};
use wharf_authz::scope::ScopeKind;
use wharf_authz::{AssignmentLimits, AssignmentPrincipalType, PrincipalId, RoleAssignment, RoleDefinition, Scope};

use super::{ArmCtx, json_response, storage_error};
use crate::model::assignments;

fn scope_of(s: &str) -> Result<Scope, ArmError> {
    Scope::parse(s).map_err(|e| ArmError::bad_request("InvalidScope", format!("The scope '{s}' is not valid: {e}")))
}

/// A role definition as listed at `scope` (az sends these ids back in assignments).
fn definition_json(role: &RoleDefinition, scope: &Scope) -> Value {
    let mut v = serde_json::to_value(role).expect("role serializes");
    let sub = scope.subscription_id().map(|s| format!("/subscriptions/{s}")).unwrap_or_default();
    v["id"] = json!(format!("{sub}/providers/Microsoft.Authorization/roleDefinitions/{}", role.guid()));
    v
}

async fn all_roles(ctx: &ArmCtx) -> Result<Vec<RoleDefinition>, ArmError> {
    let mut roles = built_in_roles();
    roles.extend(
        assignments::custom_roles(&*ctx.state.meta).await.map_err(|e| storage_error("reading role definitions", e))?,
    );
    Ok(roles)
}

async fn reload(ctx: &ArmCtx) -> Result<(), ArmError> {
    ctx.state.authz.reload(&*ctx.state.meta).await.map_err(|e| storage_error("reloading role assignments", e))
}

pub async fn list_definitions(ctx: &ArmCtx, scope: &str) -> Result<Response, ArmError> {
    let scope = scope_of(scope)?;
    let roles = all_roles(ctx).await?;
    let filter = ctx.query.text("$filter");
    let wanted = filter.trim().strip_prefix("roleName eq ").map(|v| v.trim().trim_matches('\'').to_string());
    if !filter.trim().is_empty() && wanted.is_none() && !filter.contains("type eq") {
        return Err(ArmError::bad_request(
            "InvalidFilter",
            format!("The $filter '{filter}' is not supported; use roleName eq '…'."),
        ));
    }
    let value: Vec<Value> = roles
        .iter()
        .filter(|r| wanted.as_ref().is_none_or(|w| r.role_name().eq_ignore_ascii_case(w)))
        .map(|r| definition_json(r, &scope))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

fn definition_not_found(guid: &str) -> ArmError {
    ArmError::new(
        404,
        "RoleDefinitionDoesNotExist",
        format!("The specified role definition with ID '{guid}' does not exist."),
    )
}

pub async fn get_definition(ctx: &ArmCtx, scope: &str, guid: &str) -> Result<Response, ArmError> {
    let scope = scope_of(scope)?;
    let roles = all_roles(ctx).await?;
    let role = roles.iter().find(|r| r.guid().eq_ignore_ascii_case(guid)).ok_or_else(|| definition_not_found(guid))?;
    Ok(json_response(StatusCode::OK, &definition_json(role, &scope)))
}

pub async fn put_definition(ctx: &ArmCtx, scope: &str, guid: &str) -> Result<Response, ArmError> {
    let scope = scope_of(scope)?;
    if built_in_roles().iter().any(|r| r.guid().eq_ignore_ascii_case(guid)) {
        return Err(ArmError::bad_request(
            "RoleDefinitionUpdateNotAllowed",
            "Built-in role definitions cannot be changed.",
        ));
    }
    let body = ctx.json()?;
    let props = body.get("properties").cloned().unwrap_or(body.clone());
    let request = parse_custom_role(&props.to_string()).map_err(super::error::from_role_definition)?;
    let role = request.into_definition(guid).map_err(super::error::from_role_definition)?;
    if all_roles(ctx)
        .await?
        .iter()
        .any(|r| r.role_name().eq_ignore_ascii_case(role.role_name()) && !r.guid().eq_ignore_ascii_case(guid))
    {
        return Err(super::error::from_role_definition(wharf_authz::RoleDefinitionError::NameExists(
            role.role_name().to_string(),
        )));
    }
    let created = ctx
        .state
        .meta
        .resource_put(&assignments::definition_record(&role, guid))
        .await
        .map_err(|e| storage_error("storing a role definition", e))?;
    reload(ctx).await?;
    Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &definition_json(&role, &scope)))
}

pub async fn delete_definition(ctx: &ArmCtx, _scope: &str, guid: &str) -> Result<Response, ArmError> {
    let deleted = ctx
        .state
        .delete_tree(&assignments::definition_id(guid))
        .await
        .map_err(|e| storage_error("deleting a role definition", e))?;
    match deleted.first() {
        Some(r) => Ok(json_response(StatusCode::OK, &r.body)),
        None => Ok(json_response(StatusCode::NO_CONTENT, &Value::Null)),
    }
}

/// An assignment as ARM shows it: the role definition id carries the assignment's
/// subscription, as the definitions listed at that scope do (az matches the two to fill in
/// `roleDefinitionName`).
fn assignment_json(a: &RoleAssignment) -> Value {
    let mut v = serde_json::to_value(a).expect("assignment serializes");
    if let (Some(sub), Some(guid)) = (a.scope.subscription_id(), role_guid_from_id(&a.role_definition_id)) {
        v["properties"]["roleDefinitionId"] =
            json!(format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{guid}"));
    }
    v
}

fn assignment_not_found(guid: &str) -> ArmError {
    ArmError::new(404, "RoleAssignmentNotFound", format!("The role assignment '{guid}' is not found."))
}

/// `{scope}/…/roleAssignments` with az's `$filter` forms (`atScope()`, `principalId eq`,
/// `assignedTo(…)`): assignments at, above (inherited) and — without `atScope()` — below the
/// scope.
pub async fn list_assignments(ctx: &ArmCtx, scope: &str) -> Result<Response, ArmError> {
    let scope = scope_of(scope)?;
    let filter = ctx.query.text("$filter").trim().to_string();
    let at_scope_only = filter.contains("atScope()");
    let principal = filter
        .split("principalId eq ")
        .nth(1)
        .or_else(|| filter.split("assignedTo(").nth(1))
        .map(|v| v.trim_start_matches('\'').split('\'').next().unwrap_or("").to_ascii_lowercase());
    let index = ctx.state.authz.index();
    let mut value: Vec<&RoleAssignment> = index
        .assignments()
        .filter(|a| a.scope.is_at_or_above(&scope) || (!at_scope_only && scope.is_at_or_above(&a.scope)))
        .filter(|a| principal.as_ref().is_none_or(|p| a.principal_id.as_str().eq_ignore_ascii_case(p)))
        .collect();
    // A stable order: by creation time, then id.
    value.sort_by(|a, b| a.created_on.cmp(&b.created_on).then_with(|| a.id.cmp(&b.id)));
    let value: Vec<Value> = value.into_iter().map(assignment_json).collect();
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

pub async fn get_assignment(ctx: &ArmCtx, scope: &str, guid: &str) -> Result<Response, ArmError> {
    let scope = scope_of(scope)?;
    let index = ctx.state.authz.index();
    let a = index
        .assignments()
        .find(|a| a.id.eq_ignore_ascii_case(guid) && a.scope == scope)
        .ok_or_else(|| assignment_not_found(guid))?;
    Ok(json_response(StatusCode::OK, &assignment_json(a)))
}

pub async fn delete_assignment(ctx: &ArmCtx, scope: &str, guid: &str) -> Result<Response, ArmError> {
    let scope = scope_of(scope)?;
    let found = {
        let index = ctx.state.authz.index();
        index.assignments().find(|a| a.id.eq_ignore_ascii_case(guid) && a.scope == scope).cloned()
    };
    let Some(a) = found else {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    };
    ctx.state.delete_tree(&a.arm_id()).await.map_err(|e| storage_error("deleting a role assignment", e))?;
    Ok(json_response(StatusCode::OK, &assignment_json(&a)))
}

/// Assignments may only name a scope that exists in this deployment: its subscription, one of
/// its resource groups, or one of its resources — answered as ARM answers a scope that names
/// nothing (`SubscriptionNotFound`, `ResourceGroupNotFound`, `ResourceNotFound`).
async fn require_scope_exists(ctx: &ArmCtx, scope: &Scope) -> Result<(), ArmError> {
    let sub = &ctx.state.subscription_id;
    let Some(scope_sub) = scope.subscription_id() else {
        return Err(ArmError::bad_request(
            "InvalidScope",
            format!(
                "The scope '{}' is not a subscription, resource group or resource of this deployment.",
                scope.as_str()
            ),
        ));
    };
    if !scope_sub.eq_ignore_ascii_case(sub) {
        return Err(ArmError::subscription_not_found(scope_sub));
    }
    if scope.kind() == ScopeKind::Subscription {
        return Ok(());
    }
    let group = scope.resource_group_name().unwrap_or_default();
    let exists = |id: String| async move {
        ctx.state.meta.resource_get(&id).await.map(|r| r.is_some()).map_err(|e| storage_error("reading the scope", e))
    };
    if !exists(wharf_arm::ResourceId::resource_group(sub, group).to_string()).await? {
        return Err(ArmError::resource_group_not_found(group));
    }
    if scope.kind() == ScopeKind::Resource && !exists(scope.as_str().to_string()).await? {
        let id = wharf_arm::ResourceId::parse(scope.as_str()).ok();
        let resource_type = id.as_ref().and_then(|r| r.resource_type()).unwrap_or_default();
        let name = id.as_ref().and_then(|r| r.name().map(str::to_string)).unwrap_or_default();
        return Err(ArmError::resource_not_found(&resource_type, &name, group));
    }
    Ok(())
}

fn principal_not_found(id: &str, tenant: &str) -> ArmError {
    ArmError::bad_request(
        "PrincipalNotFound",
        format!(
            "Principal {id} does not exist in the directory {tenant}. Check that you have the correct principal ID."
        ),
    )
}

pub async fn put_assignment(ctx: &ArmCtx, scope_text: &str, guid: &str) -> Result<Response, ArmError> {
    let scope = scope_of(scope_text)?;
    let body = ctx.json()?;
    let p = &body["properties"];
    let role_id = p["roleDefinitionId"]
        .as_str()
        .ok_or_else(|| ArmError::invalid_request("properties.roleDefinitionId is required."))?;
    let principal =
        p["principalId"].as_str().ok_or_else(|| ArmError::invalid_request("properties.principalId is required."))?;
    let role_guid = role_guid_from_id(role_id).ok_or_else(|| {
        ArmError::bad_request("InvalidRoleDefinitionId", format!("'{role_id}' is not a role definition id."))
    })?;
    let requested_type = match p["principalType"].as_str() {
        Some(t) => Some(serde_json::from_value::<AssignmentPrincipalType>(json!(t)).map_err(|_| {
            ArmError::invalid_request(format!("principalType '{t}' is not one of User, Group, ServicePrincipal."))
        })?),
        None => None,
    };
    let (condition, _version) =
        wharf_authz::assignment::condition_from_request(p["condition"].as_str(), p["conditionVersion"].as_str())
            .map_err(super::error::from_assignment)?;
    let principal_id = PrincipalId::new(principal).map_err(super::error::from_assignment)?;
    require_scope_exists(ctx, &scope).await?;
    let roles = all_roles(ctx).await?;
    let role = roles.iter().find(|r| r.guid() == role_guid).ok_or_else(|| {
        ArmError::new(
            400,
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{role_guid}' does not exist."),
        )
    })?;
    let object = crate::model::principals::lookup(&*ctx.state.meta, principal)
        .await
        .map_err(|e| storage_error("reading the directory", e))?
        .ok_or_else(|| principal_not_found(principal, &ctx.state.tenant_id))?;
    let principal_type = requested_type.unwrap_or_else(|| object.assignment_principal_type());
    let mut a = RoleAssignment::new(
        guid,
        scope.clone(),
        &format!("/providers/Microsoft.Authorization/roleDefinitions/{role_guid}"),
        principal_id,
        principal_type,
    )
    .map_err(super::error::from_assignment)?;
    let now = chrono::Utc::now();
    a.created_on = Some(now);
    a.updated_on = Some(now);
    a.created_by = Some(ctx.caller.object_id().to_string());
    a.updated_by = Some(ctx.caller.object_id().to_string());
    if let Some(d) = p["description"].as_str() {
        a = a.with_description(d);
    }
    if let Some(c) = condition.clone() {
        a = a.with_condition(c);
    }
    let limits = AssignmentLimits { max_per_subscription: ctx.state.config.max_role_assignments };
    wharf_authz::check_new_assignment(&a, role, &*ctx.state.authz.index(), limits)
        .map_err(super::error::from_assignment)?;
    let warnings = warnings_for(ctx, &scope, role, condition.as_ref()).await;
    let created = ctx
        .state
        .meta
        .resource_put(&assignments::assignment_record(&a))
        .await
        .map_err(|e| storage_error("storing a role assignment", e))?;
    ctx.state.authz.assignment_stored(a.clone());
    let mut resp = json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &assignment_json(&a));
    for w in warnings {
        tracing::warn!(assignment = %a.id, warning = %w, "role assignment condition warning");
        let ascii: String = w
            .replace('…', "...")
            .chars()
            .map(|c| if c.is_ascii() && !c.is_ascii_control() { c } else { ' ' })
            .collect();
        if let Ok(v) = HeaderValue::from_str(&ascii) {
            resp.headers_mut().append("wharf-warning", v);
        }
    }
    Ok(resp)
}

/// Lint warnings for a new assignment, with the repositories a slash-less prefix would match
/// today beyond the intended ones.
async fn warnings_for(
    ctx: &ArmCtx,
    scope: &Scope,
    role: &RoleDefinition,
    condition: Option<&wharf_authz::Condition>,
) -> Vec<String> {
    let Some(c) = condition else { return vec![] };
    let warnings = wharf_authz::condition::lint::lint(c, role);
    if warnings.is_empty() {
        return vec![];
    }
    let repos = registry_repositories(ctx, scope).await;
    warnings
        .into_iter()
        .map(|w| {
            let mut text = w.to_string();
            if let wharf_authz::condition::lint::Warning::PrefixWithoutTrailingSlash { operator, value } = &w {
                let ignore_case = format!("{operator:?}").contains("IgnoreCase");
                let extra = wharf_authz::condition::lint::extra_prefix_matches(value, ignore_case, &repos);
                if !extra.is_empty() {
                    text.push_str(&format!(
                        " It would match these repositories today beyond '{value}/': {}.",
                        extra.join(", ")
                    ));
                }
            }
            text
        })
        .collect()
}

async fn registry_repositories(ctx: &ArmCtx, scope: &Scope) -> Vec<String> {
    let Some(name) = scope.registry_name() else { return vec![] };
    let Ok(Some(reg)) = ctx.state.registry(name).await else { return vec![] };
    ctx.state.meta.repository_list(&reg.key, None, 100_000).await.unwrap_or_default()
}
