//! The impact preview of a network-rule change (`POST {registryId}/networkRuleImpact`): which
//! principals with data access on the registry — from which hosting resources — and which
//! public addresses lose or gain data-plane network access if proposed network properties
//! replaced the current ones.
//!
//! Owns choosing the principals (every principal, or member of a group, whose role
//! assignments give it any data action on the registry in its current mode, plus the built-in
//! trusted-service principals) and rendering `wharf_netrules::impact` and
//! `wharf_netrules::address_impact` as JSON. Never applies a change; knows nothing of HTTP.

use std::collections::{BTreeMap, BTreeSet};

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::ArmError;
use wharf_arm::registry::RegistryProperties;
use wharf_authz::engine::AssignmentOutcome;
use wharf_authz::{DataAction, DataPlaneTarget, EnvironmentAttributes, Scope};
use wharf_netrules::{ImpactSubject, NetworkPolicy, SubjectAddresses};
use wharf_storage::StorageError;

use super::{Directory, NetworkIdentity, PrincipalFacts};
use crate::arm::{ArmCtx, json_response, storage_error};
use crate::state::{AppState, RegistryInfo};

/// A principal whose assignments give it data access on the registry.
#[derive(Debug, Default)]
struct Holder {
    /// Roles that include a data action here and are honoured in the registry's mode (their
    /// conditions may still restrict them to some repositories).
    roles: BTreeSet<String>,
    /// Groups it holds them through (empty when assigned directly).
    groups: BTreeSet<String>,
    builtin: bool,
}

/// The roles through which `object_id` holds any data action on the registry (conditions are
/// not evaluated: a condition-restricted role still counts).
fn data_roles(
    state: &AppState,
    object_id: &str,
    registry: &Scope,
    mode: wharf_authz::RoleAssignmentMode,
) -> BTreeSet<String> {
    let index = state.authz.index();
    let principals = state.authz.principals(object_id);
    let environment = EnvironmentAttributes::default();
    let mut roles = BTreeSet::new();
    for action in DataAction::ALL {
        let decision =
            index.authorize_data_action(&principals, registry, mode, action, &DataPlaneTarget::Catalog, &environment);
        for c in decision.considered {
            if matches!(c.outcome, AssignmentOutcome::Granted { .. } | AssignmentOutcome::ConditionNotMet { .. }) {
                roles.insert(c.role_name);
            }
        }
    }
    roles
}

/// Every principal with data access on the registry in its current mode (group members
/// expanded, nested groups included), plus the built-in trusted-service principals.
async fn holders(state: &AppState, registry: &RegistryInfo) -> Result<BTreeMap<String, Holder>, StorageError> {
    let scope = &registry.scope;
    let mode = registry.properties.role_assignment_mode;
    let groups: BTreeMap<String, crate::model::assignments::Group> = crate::model::assignments::groups(&*state.meta)
        .await?
        .into_iter()
        .map(|g| (g.id.to_ascii_lowercase(), g))
        .collect();
    // (principal, the group it came through)
    let mut candidates: Vec<(String, Option<String>)> = Vec::new();
    let index = state.authz.index();
    for a in index.assignments() {
        if !a.scope.is_at_or_above(scope) {
            continue;
        }
        let id = a.principal_id.as_str().to_ascii_lowercase();
        let Some(group) = groups.get(&id) else {
            candidates.push((id, None));
            continue;
        };
        let mut queue = vec![id.clone()];
        let mut seen = BTreeSet::from([id]);
        while let Some(g) = queue.pop() {
            for m in groups.get(&g).map(|g| g.members.as_slice()).unwrap_or_default() {
                let m = m.to_ascii_lowercase();
                if !seen.insert(m.clone()) {
                    continue;
                }
                if groups.contains_key(&m) {
                    queue.push(m);
                } else {
                    candidates.push((m, Some(group.display_name.clone())));
                }
            }
        }
    }
    let mut out: BTreeMap<String, Holder> = BTreeMap::new();
    for (id, group) in candidates {
        let roles = data_roles(state, &id, scope, mode);
        if roles.is_empty() {
            continue;
        }
        let h = out.entry(id).or_default();
        h.roles.extend(roles);
        h.groups.extend(group);
    }
    for sp in crate::model::directory::list_sps(&*state.meta).await? {
        if sp.builtin.is_some() {
            out.entry(sp.id.to_ascii_lowercase()).or_default().builtin = true;
        }
    }
    Ok(out)
}

/// The network properties as the preview and the PATCH body name them.
pub fn settings_json(p: &RegistryProperties) -> Value {
    json!({
        "publicNetworkAccess": p.public_network_access,
        "networkRuleSet": p.network_rule_set,
        "networkRuleBypassOptions": p.network_rule_bypass_options,
        "networkRuleBypassAllowedForTasks": p.network_rule_bypass_allowed_for_tasks,
    })
}

/// One subject of the preview and what the JSON says about it.
struct Subject {
    object_id: String,
    identity: NetworkIdentity,
    holder_roles: Vec<String>,
    groups: Vec<String>,
    builtin: bool,
}

/// The preview: `current` and `proposed` compiled policies of `registry`.
pub async fn preview(
    state: &AppState,
    registry: &RegistryInfo,
    proposed: &RegistryProperties,
    current: &NetworkPolicy,
    next: &NetworkPolicy,
) -> Result<Value, StorageError> {
    let directory = Directory::load(state).await?;
    let mut subjects: Vec<Subject> = Vec::new();
    let holders = holders(state, registry).await?;
    let considered = holders.len();
    for (object_id, h) in holders {
        let identities = match directory.facts(state, &object_id).await? {
            PrincipalFacts::Callers(c) => c,
            // A group assigned directly was expanded to its members; an unknown principal
            // (deleted from the directory) still has its assignment: only the rules admit it.
            PrincipalFacts::Group { .. } => continue,
            PrincipalFacts::Unknown => vec![NetworkIdentity {
                caller: wharf_netrules::Caller { principal_id: Some(object_id.clone()), ..Default::default() },
                description: "a principal not found in the directory".to_string(),
            }],
        };
        for identity in identities {
            subjects.push(Subject {
                object_id: object_id.clone(),
                identity,
                holder_roles: h.roles.iter().cloned().collect(),
                groups: h.groups.iter().cloned().collect(),
                builtin: h.builtin,
            });
        }
    }
    let impact_subjects: Vec<ImpactSubject> = subjects
        .iter()
        .map(|s| ImpactSubject {
            description: describe(s),
            caller: s.identity.caller.clone(),
            addresses: SubjectAddresses::Unknown,
            via_private_endpoint: false,
        })
        .collect();
    let lines = wharf_netrules::impact(current, next, &impact_subjects);
    let principals: Vec<Value> = lines
        .iter()
        .map(|l| {
            let s = &subjects[l.subject];
            let c = &s.identity.caller;
            json!({
                "principalId": s.object_id,
                "principalType": c.principal_type.map(|t| t.as_str()),
                "identityKind": c.identity_kind.map(|k| k.describe()),
                "hostingResource": c.hosting_resource_id.as_ref().map(|id| json!({"id": id, "type": c.hosting_resource_type})),
                "trustedService": wharf_netrules::trusted_service(c).map(|t| t.name()),
                "roles": s.holder_roles,
                "throughGroups": s.groups,
                "change": l.change,
                "allowedBy": l.allowed_by,
                "deniedBecause": l.denied_because,
                "description": l.description,
                "text": l.to_string(),
            })
        })
        .collect();
    let addresses = wharf_netrules::address_impact(current, next);
    let mut text: Vec<String> = addresses.lost_text().into_iter().chain(addresses.gained_text()).collect();
    text.extend(lines.iter().map(|l| l.to_string()));
    let private_endpoints: Vec<&str> =
        registry.properties.private_endpoint_connections.iter().map(|c| c.endpoint_id()).collect();
    Ok(json!({
        "registry": registry.name,
        "registryId": registry.resource_id,
        "current": settings_json(&registry.properties),
        "proposed": settings_json(proposed),
        "changesAccess": !text.is_empty(),
        "losesAccess": addresses.lost.is_some() || lines.iter().any(|l| l.change.is_loss()),
        "addresses": addresses,
        "principals": principals,
        "principalsConsidered": considered,
        "privateEndpoints": private_endpoints,
        "text": text,
    }))
}

/// "system-assigned identity of container group 'cg1' (principal …; AcrPull)".
fn describe(s: &Subject) -> String {
    let mut what = format!("{} (principal {}", s.identity.description, s.object_id);
    if !s.holder_roles.is_empty() {
        what.push_str(&format!("; {}", s.holder_roles.join(", ")));
    } else if s.builtin {
        what.push_str("; no data role on this registry");
    }
    if !s.groups.is_empty() {
        what.push_str(&format!(
            "; through group {}",
            s.groups.iter().map(|g| format!("'{g}'")).collect::<Vec<_>>().join(", ")
        ));
    }
    what.push(')');
    what
}

/// `POST {registryId}/networkRuleImpact` with a registry PATCH body restricted to the network
/// properties (`{"properties": {publicNetworkAccess?, networkRuleSet?, networkRuleBypassOptions?,
/// networkRuleBypassAllowedForTasks?}, "sku"?}`): who loses or gains data-plane network access,
/// and from which addresses, if the PATCH were applied. Validated as the PATCH would be;
/// changes nothing.
pub async fn network_impact(ctx: &ArmCtx, registry: &RegistryInfo) -> Result<Response, ArmError> {
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
    crate::arm::registries::check_vnet_rules(&ctx.state, &proposed).await?;
    let next = crate::network::compile(&*ctx.state.meta, &proposed)
        .await
        .map_err(|e| ArmError::invalid_request(e.to_string()))?;
    let impact = preview(&ctx.state, registry, &proposed, &registry.network, &next)
        .await
        .map_err(|e| storage_error("previewing a network-rule change", e))?;
    Ok(json_response(StatusCode::OK, &impact))
}
