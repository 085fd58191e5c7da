//! `Microsoft.Authorization`: role definitions and role assignments at any scope, plus Wharf's
//! explanation endpoints on a registry (`checkAccess`, `roleAssignmentModeImpact`,
//! `networkRuleImpact`).

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::ArmError;
use wharf_authz::roles::{built_in_roles, parse_custom_role, role_guid_from_id};
use wharf_authz::{
    AssignmentLimits, DataPlaneTarget, DockerAction, PrincipalId, PrincipalType, RoleAssignment, RoleDefinition, Scope,
    check_new_assignment,
};

use super::{ArmCtx, json_response, storage_error};
use crate::authz::{self, DEFINITION_TYPE};

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
    roles
        .extend(authz::custom_roles(&*ctx.state.meta).await.map_err(|e| storage_error("reading role definitions", e))?);
    Ok(roles)
}

/// `{scope}/providers/Microsoft.Authorization/roleDefinitions[/{guid}]`.
pub async fn definitions(ctx: &ArmCtx, scope: &str, name: Option<&str>) -> Result<Response, ArmError> {
    let scope = scope_of(scope)?;
    let roles = all_roles(ctx).await?;
    match (&ctx.method, name) {
        (&Method::GET, None) => {
            let filter = ctx.query.get("$filter").map(String::as_str).unwrap_or("");
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
        (&Method::GET, Some(guid)) => {
            let role = roles.iter().find(|r| r.guid().eq_ignore_ascii_case(guid)).ok_or_else(|| {
                ArmError::new(
                    404,
                    "RoleDefinitionDoesNotExist",
                    format!("The specified role definition with ID '{guid}' does not exist."),
                )
            })?;
            Ok(json_response(StatusCode::OK, &definition_json(role, &scope)))
        }
        (&Method::PUT, Some(guid)) => {
            ctx.authorize("Microsoft.Authorization/roleDefinitions/write", scope.as_str())?;
            if built_in_roles().iter().any(|r| r.guid().eq_ignore_ascii_case(guid)) {
                return Err(ArmError::bad_request(
                    "RoleDefinitionUpdateNotAllowed",
                    "Built-in role definitions cannot be changed.",
                ));
            }
            let body = ctx.json()?;
            let props = body.get("properties").cloned().unwrap_or(body.clone());
            let request =
                parse_custom_role(&props.to_string()).map_err(|e| ArmError::bad_request(e.code(), e.to_string()))?;
            let role = request.into_definition(guid).map_err(|e| ArmError::bad_request(e.code(), e.to_string()))?;
            if built_in_roles()
                .iter()
                .chain(
                    authz::custom_roles(&*ctx.state.meta).await.map_err(|e| storage_error("reading roles", e))?.iter(),
                )
                .any(|r| r.role_name().eq_ignore_ascii_case(role.role_name()) && !r.guid().eq_ignore_ascii_case(guid))
            {
                return Err(ArmError::new(
                    409,
                    "RoleDefinitionWithSameNameExists",
                    format!("A role definition named '{}' already exists.", role.role_name()),
                ));
            }
            let now = chrono::Utc::now();
            let record = wharf_storage::ResourceRecord {
                id: format!("/providers/Microsoft.Authorization/roleDefinitions/{}", guid.to_ascii_lowercase()),
                resource_type: DEFINITION_TYPE.into(),
                name: guid.to_ascii_lowercase(),
                resource_group: None,
                key: uuid::Uuid::new_v4().to_string(),
                body: serde_json::to_value(&role).expect("role serializes"),
                created_at: now,
                updated_at: now,
            };
            let created = ctx
                .state
                .meta
                .resource_put(&record)
                .await
                .map_err(|e| storage_error("storing a role definition", e))?;
            reload(ctx).await?;
            Ok(json_response(
                if created { StatusCode::CREATED } else { StatusCode::OK },
                &definition_json(&role, &scope),
            ))
        }
        (&Method::DELETE, Some(guid)) => {
            ctx.authorize("Microsoft.Authorization/roleDefinitions/delete", scope.as_str())?;
            let id = format!("/providers/Microsoft.Authorization/roleDefinitions/{}", guid.to_ascii_lowercase());
            let deleted = ctx
                .state
                .meta
                .resource_delete_tree(&id)
                .await
                .map_err(|e| storage_error("deleting a role definition", e))?;
            reload(ctx).await?;
            match deleted.first() {
                Some(r) => Ok(json_response(StatusCode::OK, &r.body)),
                None => Ok(json_response(StatusCode::NO_CONTENT, &Value::Null)),
            }
        }
        (m, _) => Err(ArmError::method_not_allowed(m.as_str())),
    }
}

async fn reload(ctx: &ArmCtx) -> Result<(), ArmError> {
    ctx.state.authz.reload(&*ctx.state.meta).await.map_err(|e| storage_error("reloading role assignments", e))
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

/// `{scope}/providers/Microsoft.Authorization/roleAssignments[/{guid}]`.
pub async fn assignments(ctx: &ArmCtx, scope_text: &str, name: Option<&str>) -> Result<Response, ArmError> {
    let scope = scope_of(scope_text)?;
    let meta = &*ctx.state.meta;
    let existing = authz::stored_assignments(meta).await.map_err(|e| storage_error("reading role assignments", e))?;
    match (&ctx.method, name) {
        (&Method::GET, None) => {
            ctx.authorize("Microsoft.Authorization/roleAssignments/read", scope.as_str())?;
            let filter = ctx.query.get("$filter").map(String::as_str).unwrap_or("").trim().to_string();
            let at_scope_only = filter.contains("atScope()");
            let principal = filter
                .split("principalId eq ")
                .nth(1)
                .or_else(|| filter.split("assignedTo(").nth(1))
                .map(|v| v.trim_start_matches('\'').split('\'').next().unwrap_or("").to_ascii_lowercase());
            let value: Vec<Value> = existing
                .iter()
                .filter(|a| a.scope.is_at_or_above(&scope) || (!at_scope_only && scope.is_at_or_above(&a.scope)))
                .filter(|a| principal.as_ref().is_none_or(|p| a.principal_id.as_str().eq_ignore_ascii_case(p)))
                .map(assignment_json)
                .collect();
            Ok(json_response(StatusCode::OK, &json!({"value": value})))
        }
        (&Method::GET, Some(guid)) => {
            ctx.authorize("Microsoft.Authorization/roleAssignments/read", scope.as_str())?;
            let a = existing.iter().find(|a| a.id.eq_ignore_ascii_case(guid) && a.scope == scope).ok_or_else(|| {
                ArmError::new(404, "RoleAssignmentNotFound", format!("The role assignment '{guid}' is not found."))
            })?;
            Ok(json_response(StatusCode::OK, &assignment_json(a)))
        }
        (&Method::PUT, Some(guid)) => create(ctx, &scope, guid, &existing).await,
        (&Method::DELETE, Some(guid)) => {
            ctx.authorize("Microsoft.Authorization/roleAssignments/delete", scope.as_str())?;
            let Some(a) = existing.iter().find(|a| a.id.eq_ignore_ascii_case(guid) && a.scope == scope) else {
                return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
            };
            meta.resource_delete_tree(&a.arm_id()).await.map_err(|e| storage_error("deleting a role assignment", e))?;
            reload(ctx).await?;
            Ok(json_response(StatusCode::OK, &assignment_json(a)))
        }
        (m, _) => Err(ArmError::method_not_allowed(m.as_str())),
    }
}

async fn create(ctx: &ArmCtx, scope: &Scope, guid: &str, existing: &[RoleAssignment]) -> Result<Response, ArmError> {
    ctx.authorize("Microsoft.Authorization/roleAssignments/write", scope.as_str())?;
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
    let roles = all_roles(ctx).await?;
    let role = roles.iter().find(|r| r.guid() == role_guid).ok_or_else(|| {
        ArmError::new(
            400,
            "RoleDefinitionDoesNotExist",
            format!("The specified role definition with ID '{role_guid}' does not exist."),
        )
    })?;
    let principal_type = match p["principalType"].as_str() {
        Some(t) => serde_json::from_value::<PrincipalType>(json!(t)).map_err(|_| {
            ArmError::invalid_request(format!(
                "principalType '{t}' is not one of User, Group, ServicePrincipal, ForeignGroup, Device."
            ))
        })?,
        None => {
            principal_kind(ctx, principal).await?.ok_or_else(|| principal_not_found(principal, &ctx.state.tenant_id))?
        }
    };
    if principal_kind(ctx, principal).await?.is_none() {
        return Err(principal_not_found(principal, &ctx.state.tenant_id));
    }
    let (condition, _version) =
        wharf_authz::assignment::condition_from_request(p["condition"].as_str(), p["conditionVersion"].as_str())
            .map_err(|e| ArmError::bad_request(e.code(), e.to_string()))?;
    let principal_id = PrincipalId::new(principal).map_err(|e| ArmError::bad_request(e.code(), e.to_string()))?;
    let mut a = RoleAssignment::new(
        guid,
        scope.clone(),
        &format!("/providers/Microsoft.Authorization/roleDefinitions/{role_guid}"),
        principal_id,
        principal_type,
    )
    .map_err(|e| ArmError::bad_request(e.code(), e.to_string()))?;
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
    check_new_assignment(&a, role, existing, limits()).map_err(|e| {
        let status = if e.code() == "RoleAssignmentExists" { 409 } else { 400 };
        ArmError::new(status, e.code(), e.to_string())
    })?;
    let warnings = warnings_for(ctx, scope, role, condition.as_ref()).await;
    let created = ctx
        .state
        .meta
        .resource_put(&authz::assignment_record(&a))
        .await
        .map_err(|e| storage_error("storing a role assignment", e))?;
    reload(ctx).await?;
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

fn principal_not_found(id: &str, tenant: &str) -> ArmError {
    ArmError::bad_request(
        "PrincipalNotFound",
        format!(
            "Principal {id} does not exist in the directory {tenant}. Check that you have the correct principal ID."
        ),
    )
}

/// Limits on role assignments (Azure's 4,000 per subscription unless configured).
pub fn limits() -> AssignmentLimits {
    let mut l = AssignmentLimits::default();
    if let Some(n) = std::env::var("WHARF_MAX_ROLE_ASSIGNMENTS").ok().and_then(|v| v.parse().ok()) {
        l.max_per_subscription = n;
    }
    l
}

/// What kind of directory object an object id names, if any.
pub async fn principal_kind(ctx: &ArmCtx, id: &str) -> Result<Option<PrincipalType>, ArmError> {
    let meta = &*ctx.state.meta;
    let lower = id.to_ascii_lowercase();
    let err = |e| storage_error("reading the directory", e);
    if meta.resource_get(&crate::auth::directory::user_id(&lower)).await.map_err(err)?.is_some() {
        return Ok(Some(PrincipalType::User));
    }
    if meta.resource_get(&crate::auth::directory::sp_id(&lower)).await.map_err(err)?.is_some() {
        return Ok(Some(PrincipalType::ServicePrincipal));
    }
    if meta.resource_get(&authz::group_record_id(&lower)).await.map_err(err)?.is_some() {
        return Ok(Some(PrincipalType::Group));
    }
    // Managed identities: principal ids recorded on identity and hosting resources.
    let all = meta.resource_list(&wharf_storage::ResourceFilter::default()).await.map_err(err)?;
    let is_mi = all.iter().any(|r| {
        r.body["properties"]["principalId"].as_str().is_some_and(|p| p.eq_ignore_ascii_case(&lower))
            || r.body["identity"]["principalId"].as_str().is_some_and(|p| p.eq_ignore_ascii_case(&lower))
    });
    Ok(is_mi.then_some(PrincipalType::ServicePrincipal))
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
    let mut out = Vec::new();
    let repos = registry_repositories(ctx, scope).await;
    for w in wharf_authz::condition::lint::lint(c, role) {
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
        out.push(text);
    }
    out
}

async fn registry_repositories(ctx: &ArmCtx, scope: &Scope) -> Vec<String> {
    let Some(name) = scope.registry_name() else { return vec![] };
    let Ok(Some(reg)) = ctx.state.registry(name).await else { return vec![] };
    ctx.state.meta.repository_list(&reg.key, None, 100_000).await.unwrap_or_default()
}

/// `POST {registryId}/checkAccess`: allowed or denied for a principal, repository and actions,
/// with the decisive assignment, role and condition trace, and the network part: from
/// `clientIp` on the public endpoint, through `privateEndpoint` (name or id), or — with
/// neither — from any public address. The answer is allowed only if both allow; the network
/// path also supplies the ABAC environment attributes (`isPrivateLink`, …).
pub async fn check_access(ctx: &ArmCtx, registry: &crate::state::RegistryInfo) -> Result<Response, ArmError> {
    ctx.authorize("Microsoft.Authorization/roleAssignments/read", &registry.resource_id)?;
    // The network part shows the registry's network properties.
    ctx.authorize("Microsoft.ContainerRegistry/registries/read", &registry.resource_id)?;
    let body = ctx.json()?;
    let principal =
        body["principalId"].as_str().ok_or_else(|| ArmError::invalid_request("principalId is required."))?;
    let actions: Vec<DockerAction> = match body["actions"].as_array() {
        Some(a) => a
            .iter()
            .filter_map(|v| v.as_str())
            .map(|s| {
                DockerAction::parse(s).ok_or_else(|| {
                    ArmError::invalid_request(format!(
                        "unknown action '{s}'; use pull, push, delete, metadata_read, metadata_write or *"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        None => vec![DockerAction::Pull],
    };
    let target = match body["repository"].as_str() {
        Some(r) if !r.is_empty() => DataPlaneTarget::Repository(r.to_string()),
        _ => DataPlaneTarget::Catalog,
    };
    let text = |k: &str| body[k].as_str().map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let client_ip = match text("clientIp") {
        Some(ip) => Some(
            ip.parse::<std::net::IpAddr>()
                .map_err(|_| ArmError::invalid_request(format!("clientIp '{ip}' is not an IP address.")))?,
        ),
        None => None,
    };
    let query = crate::network::access::NetworkQuery {
        client_ip,
        private_endpoint: text("privateEndpoint"),
        hosting_resource: text("hostingResource"),
    };
    let policy = crate::network::policy(&ctx.state, registry).await;
    let network = crate::network::access::evaluate(&ctx.state, registry, &policy, principal, &query)
        .await
        .map_err(|e| storage_error("evaluating the network rules", e))?
        .map_err(|e| ArmError::invalid_request(e.0))?;
    let mode = authz::registry_mode(registry.properties.role_assignment_mode);
    let decision = ctx.state.authz.data_plane(
        principal,
        &registry.resource_id,
        mode,
        target.clone(),
        &actions,
        &network.environment,
    );
    let decisions: Vec<Value> = decision
        .decisions
        .iter()
        .map(|d| json!({
            "action": d.action.as_str(),
            "allowed": d.allowed,
            "requirements": d.requirements.iter().map(|r| json!({"dataAction": r.action, "allowed": r.is_allowed(), "assignment": r.decisive_assignment(), "explanation": r.explain()})).collect::<Vec<_>>(),
        }))
        .collect();
    let authorized = !decision.granted.is_empty() && decision.decisions.iter().all(|d| d.allowed);
    let verdict = match (authorized, network.allowed) {
        (true, Some(true)) => "allowed",
        (true, None) => "dependsOnClientAddress",
        _ => "denied",
    };
    let env = &network.environment;
    let body = json!({
        "principalId": principal,
        "registry": registry.name,
        "roleAssignmentMode": mode.as_str(),
        "target": target.to_string(),
        "allowed": verdict == "allowed",
        "decision": verdict,
        "authorizationAllowed": authorized,
        "granted": decision.granted.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        "decisions": decisions,
        "environment": {"isPrivateLink": env.is_private_link, "privateEndpoint": env.private_endpoint, "subnet": env.subnet},
        "network": network.body,
        "explanation": format!("{}\nNetwork: {}", decision.explain().trim_end(), network.explanation),
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// `POST {registryId}/networkRuleImpact` with a registry PATCH body restricted to the network
/// properties (`{"properties": {publicNetworkAccess?, networkRuleSet?, networkRuleBypassOptions?,
/// networkRuleBypassAllowedForTasks?}, "sku"?}`): who loses or gains data-plane network access,
/// and from which addresses, if the PATCH were applied. Validated as the PATCH would be;
/// changes nothing. Needs what reading the registry and its role assignments needs.
pub async fn network_impact(ctx: &ArmCtx, registry: &crate::state::RegistryInfo) -> Result<Response, ArmError> {
    ctx.authorize("Microsoft.ContainerRegistry/registries/read", &registry.resource_id)?;
    ctx.authorize("Microsoft.Authorization/roleAssignments/read", &registry.resource_id)?;
    const NETWORK: [&str; 4] =
        ["publicNetworkAccess", "networkRuleSet", "networkRuleBypassOptions", "networkRuleBypassAllowedForTasks"];
    let body = ctx.json()?;
    let usage = |what: String| {
        ArmError::invalid_request(format!(
            "{what} networkRuleImpact takes a registry PATCH body with network properties only: {{\"properties\": {{{}}}}}.",
            NETWORK.join(", ")
        ))
    };
    if let Some(k) = body.as_object().into_iter().flat_map(|m| m.keys()).find(|k| *k != "properties" && *k != "sku") {
        return Err(usage(format!("'{k}' is not accepted.")));
    }
    let props = body.get("properties").cloned().unwrap_or(Value::Null);
    if let Some(k) = props.as_object().into_iter().flat_map(|m| m.keys()).find(|k| !NETWORK.contains(&k.as_str())) {
        return Err(usage(format!("'properties.{k}' is not a network property.")));
    }
    let sku = match body.get("sku").and_then(|s| s.get("name")).and_then(Value::as_str) {
        Some(name) => wharf_arm::registry::Sku::parse(name)?,
        None => registry.sku,
    };
    let proposed = registry.properties.apply(&props)?;
    proposed.validate(sku)?;
    super::registries::check_vnet_rules(&ctx.state, &proposed).await?;
    let current = crate::network::policy(&ctx.state, registry).await;
    let next =
        crate::network::compile(&ctx.state, &proposed).await.map_err(|e| ArmError::invalid_request(e.to_string()))?;
    let impact = crate::network::impact::preview(&ctx.state, registry, &proposed, &current, &next)
        .await
        .map_err(|e| storage_error("previewing a network-rule change", e))?;
    Ok(json_response(StatusCode::OK, &impact))
}

/// `POST {registryId}/roleAssignmentModeImpact` {"roleAssignmentMode": …}: who gains or loses
/// data access on which repositories if the registry switched mode.
pub async fn mode_impact(ctx: &ArmCtx, registry: &crate::state::RegistryInfo) -> Result<Response, ArmError> {
    ctx.authorize("Microsoft.ContainerRegistry/registries/read", &registry.resource_id)?;
    let body = ctx.json()?;
    let to = match body["roleAssignmentMode"].as_str() {
        Some("AbacRepositoryPermissions") => wharf_authz::RegistryMode::AbacRepositoryPermissions,
        Some("LegacyRegistryPermissions") => wharf_authz::RegistryMode::LegacyRegistryPermissions,
        other => return Err(ArmError::invalid_request(format!("roleAssignmentMode {other:?} is not valid."))),
    };
    let from = authz::registry_mode(registry.properties.role_assignment_mode);
    let repos = ctx
        .state
        .meta
        .repository_list(&registry.key, None, 100_000)
        .await
        .map_err(|e| storage_error("listing repositories", e))?;
    let repo_refs: Vec<&str> = repos.iter().map(String::as_str).collect();
    let scope = scope_of(&registry.resource_id)?;
    let assignments =
        authz::stored_assignments(&*ctx.state.meta).await.map_err(|e| storage_error("reading role assignments", e))?;
    let mut principals: Vec<String> = assignments.iter().map(|a| a.principal_id.as_str().to_string()).collect();
    principals.sort();
    principals.dedup();
    let sets: Vec<Vec<PrincipalId>> = principals.iter().map(|p| ctx.state.authz.principals(p)).collect();
    let impacts = ctx.state.authz.index().what_if_mode_change(&sets, &scope, &repo_refs, from, to);
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
