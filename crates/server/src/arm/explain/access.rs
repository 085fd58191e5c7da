//! `POST {registryId}/checkAccess`, and its network part: would a request of this principal, from this client
//! address or through this private endpoint, pass the registry's network rules — which rule,
//! listener or bypass decides, and why the trusted-services bypass applies or not — and which
//! ABAC environment attributes that network path gives the authorization check.
//!
//! Without a client address or private endpoint the request is judged on the public endpoint
//! for any address (`wharf_netrules::any_address`): allowed or denied whatever the address,
//! or "depends on the client address". Never logs an audit event (nothing is requested).

use std::net::{IpAddr, Ipv4Addr};

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::ArmError;
use wharf_authz::{DataPlaneTarget, DockerAction, EnvironmentAttributes};
use wharf_netrules::{Arrival, BypassNotApplicable, Caller, NetworkPolicy, NetworkRequest};
use wharf_storage::StorageError;

use super::{Directory, NetworkIdentity, PrincipalFacts};
use crate::arm::{ArmCtx, json_response, storage_error};
use crate::state::{AppState, RegistryInfo};

/// What the caller of `check-access` asked about the network path.
#[derive(Debug, Clone, Default)]
pub struct NetworkQuery {
    pub client_ip: Option<IpAddr>,
    /// Name or resource id of a private endpoint.
    pub private_endpoint: Option<String>,
    /// Limit a managed identity to this hosting resource (id).
    pub hosting_resource: Option<String>,
}

/// The network section of a `check-access` answer.
#[derive(Debug, Clone)]
pub struct NetworkAnswer {
    /// `Some(true|false)`, or `None` when it depends on the client address.
    pub allowed: Option<bool>,
    pub body: Value,
    /// The ABAC environment this network path gives the authorization check.
    pub environment: EnvironmentAttributes,
    pub explanation: String,
}

/// A question the server cannot answer as asked (bad input): a 400 for the caller.
#[derive(Debug, Clone)]
pub struct QueryError(pub String);

/// The private endpoint named `name_or_id`: its id and the registry it serves.
async fn private_endpoint(
    state: &AppState,
    registry: &RegistryInfo,
    name_or_id: &str,
) -> Result<Result<(String, String), QueryError>, StorageError> {
    let all = crate::model::network::private_endpoints(&*state.meta).await?;
    let served =
        |p: &crate::model::network::StoredPrivateEndpoint| p.endpoint.registry_id().unwrap_or_default().to_string();
    let matching: Vec<_> = if name_or_id.starts_with('/') {
        all.iter().filter(|p| p.record.id.eq_ignore_ascii_case(name_or_id.trim_end_matches('/'))).collect()
    } else {
        let named: Vec<_> = all.iter().filter(|p| p.record.name.eq_ignore_ascii_case(name_or_id)).collect();
        // A name shared by endpoints of several groups: prefer the one serving this registry.
        let own: Vec<_> =
            named.iter().copied().filter(|p| served(p).eq_ignore_ascii_case(&registry.resource_id)).collect();
        if own.len() == 1 { own } else { named }
    };
    Ok(match matching.as_slice() {
        [pe] => Ok((pe.record.id.clone(), served(pe))),
        [] => Err(QueryError(format!("The private endpoint '{name_or_id}' does not exist."))),
        _ => Err(QueryError(format!(
            "Several private endpoints are named '{name_or_id}'; pass the endpoint's resource id."
        ))),
    })
}

/// Evaluates the network path of `object_id`'s requests to `registry` under `policy`.
pub async fn evaluate(
    state: &AppState,
    registry: &RegistryInfo,
    policy: &NetworkPolicy,
    object_id: &str,
    query: &NetworkQuery,
) -> Result<Result<NetworkAnswer, QueryError>, StorageError> {
    let arrival = match &query.private_endpoint {
        Some(pe) => match private_endpoint(state, registry, pe).await? {
            Ok((endpoint_id, registry_id)) => Arrival::PrivateEndpoint { endpoint_id, registry_id },
            Err(e) => return Ok(Err(e)),
        },
        None => Arrival::Public,
    };
    let directory = Directory::load(state).await?;
    let (identities, principal_note) = match directory.facts(state, object_id).await? {
        PrincipalFacts::Callers(c) => (c, None),
        PrincipalFacts::Group { display_name } => (
            vec![NetworkIdentity {
                caller: Caller { principal_id: Some(object_id.to_ascii_lowercase()), ..Caller::default() },
                description: format!("group '{display_name}'"),
            }],
            Some(
                "a group makes no requests itself; its members' requests are judged as theirs, so the bypass is not evaluated here",
            ),
        ),
        PrincipalFacts::Unknown => (
            vec![NetworkIdentity {
                caller: Caller { principal_id: Some(object_id.to_ascii_lowercase()), ..Caller::default() },
                description: "an unknown principal".into(),
            }],
            Some("the principal is not in the directory"),
        ),
    };
    let identities: Vec<NetworkIdentity> = match &query.hosting_resource {
        Some(h) => {
            let on: Vec<_> = identities
                .into_iter()
                .filter(|i| {
                    i.caller
                        .hosting_resource_id
                        .as_deref()
                        .is_some_and(|id| id.eq_ignore_ascii_case(h.trim_end_matches('/')))
                })
                .collect();
            if on.is_empty() {
                return Ok(Err(QueryError(format!(
                    "The principal '{object_id}' is not a managed identity of the hosting resource '{h}'."
                ))));
            }
            on
        }
        None => identities,
    };
    let mut decisions = Vec::new();
    let mut verdicts = Vec::new();
    let mut explanations = Vec::new();
    for identity in &identities {
        let caller = &identity.caller;
        let (allowed, reason, explanation) = match (&arrival, query.client_ip) {
            (Arrival::Public, None) => {
                let any = wharf_netrules::any_address(policy, Some(caller));
                let allowed = any.allowed();
                (allowed, serde_json::to_value(&any).unwrap_or(Value::Null), any.explain(Some(caller)))
            }
            (_, ip) => {
                let request = NetworkRequest {
                    client_ip: ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                    arrival: &arrival,
                    registry_id: &registry.resource_id,
                    caller: Some(caller),
                };
                let d = wharf_netrules::check(policy, &request);
                (Some(d.allowed), serde_json::to_value(d.reason).unwrap_or(Value::Null), d.explain())
            }
        };
        decisions.push(json!({
            "identity": identity.description,
            "hostingResource": caller.hosting_resource_id.as_ref().map(|id| json!({"id": id, "type": caller.hosting_resource_type})),
            "allowed": allowed,
            "reason": reason,
            "bypass": bypass_facts(policy, caller),
            "explanation": explanation,
        }));
        verdicts.push(allowed);
        explanations.push(if identities.len() > 1 {
            format!("{}: {explanation}", identity.description)
        } else {
            explanation
        });
    }
    // Several hosting resources: allowed only if allowed from each of them.
    let allowed = if verdicts.contains(&Some(false)) {
        Some(false)
    } else if verdicts.contains(&None) {
        None
    } else {
        Some(true)
    };
    let evaluated = match (&arrival, query.client_ip) {
        (Arrival::PrivateEndpoint { .. }, _) => "privateEndpoint",
        (Arrival::Public, Some(_)) => "clientIp",
        (Arrival::Public, None) => "anyPublicAddress",
    };
    let mut explanation = explanations.join("\n");
    if let Some(note) = principal_note {
        explanation = format!("{explanation} ({note})");
    }
    let environment = crate::network::environment(policy, &arrival, query.client_ip);
    let body = json!({
        "evaluated": evaluated,
        "clientIp": query.client_ip.map(|ip| wharf_netrules::normalise_ip(ip).to_string()),
        "privateEndpoint": match &arrival { Arrival::PrivateEndpoint { endpoint_id, .. } => Some(endpoint_id), Arrival::Public => None },
        "allowed": allowed,
        "settings": {
            "publicNetworkAccess": registry.properties.public_network_access,
            "defaultAction": registry.properties.network_rule_set.default_action,
            "ipRules": policy.ip_rules().iter().map(|r| &r.value).collect::<Vec<_>>(),
            "virtualNetworkRules": policy.vnet_rules().iter().map(|r| &r.subnet_id).collect::<Vec<_>>(),
            "allowTrustedServices": policy.allow_trusted_services(),
            "networkRuleBypassAllowedForTasks": policy.bypass_for_tasks(),
        },
        "decisions": decisions,
        "explanation": explanation,
    });
    Ok(Ok(NetworkAnswer { allowed, body, environment, explanation }))
}

/// Why the trusted-services bypass would or would not lift a denial for `caller`, with the
/// facts it depends on (whether a denial needs lifting is the decision's business).
fn bypass_facts(policy: &NetworkPolicy, caller: &Caller) -> Value {
    let verdict = wharf_netrules::bypass(policy, Some(caller));
    let why_not = match &verdict {
        Ok(_) => None,
        Err(BypassNotApplicable::CallerNotTrusted { why }) => Some(why.to_string()),
        Err(BypassNotApplicable::VnetRulesPresent { .. }) => {
            Some("the registry has virtual-network rules, which switch the bypass off".to_string())
        }
        Err(BypassNotApplicable::BypassDisabled { .. }) => Some(if policy.allow_trusted_services() {
            "the registry's switch for this service is off".to_string()
        } else {
            "the registry does not allow trusted services (networkRuleBypassOptions: None)".to_string()
        }),
        Err(BypassNotApplicable::CallerUnknown) => Some("the caller is unknown".to_string()),
    };
    let service = wharf_netrules::trusted_service(caller);
    json!({
        "applies": verdict.is_ok(),
        "via": verdict.as_ref().ok().map(|(_, via)| via),
        "trustedService": service.map(|s| s.name()),
        "principalType": caller.principal_type.map(|t| t.as_str()),
        "identityKind": caller.identity_kind.map(|k| k.describe()),
        "hostingResourceType": caller.hosting_resource_type.clone().or_else(|| caller.hosting_resource_id.as_deref().map(type_of_id)),
        "virtualNetworkRulesPresent": policy.has_vnet_rules(),
        "allowTrustedServices": policy.allow_trusted_services(),
        "networkRuleBypassAllowedForTasks": policy.bypass_for_tasks(),
        "whyNot": why_not,
    })
}

/// `Namespace/type[/child…]` of an ARM resource id.
fn type_of_id(id: &str) -> String {
    let segs: Vec<&str> = id.trim_matches('/').split('/').collect();
    let Some(p) = segs.iter().rposition(|s| s.eq_ignore_ascii_case("providers")) else { return String::new() };
    let rest = &segs[p + 1..];
    let mut out = rest.first().map(|s| s.to_string()).unwrap_or_default();
    for t in rest.iter().skip(1).step_by(2) {
        out.push('/');
        out.push_str(t);
    }
    out
}

/// `POST {registryId}/checkAccess`: allowed or denied for a principal, repository and actions,
/// with the decisive assignment, role and condition trace, and the network part: from
/// `clientIp` on the public endpoint, through `privateEndpoint` (name or id), or — with
/// neither — from any public address. The answer is allowed only if both allow; the network
/// path also supplies the ABAC environment attributes (`isPrivateLink`, …).
pub async fn check_access(ctx: &ArmCtx, registry: &RegistryInfo) -> Result<Response, ArmError> {
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
    let query = NetworkQuery {
        client_ip,
        private_endpoint: text("privateEndpoint"),
        hosting_resource: text("hostingResource"),
    };
    let network = evaluate(&ctx.state, registry, &registry.network, principal, &query)
        .await
        .map_err(|e| storage_error("evaluating the network rules", e))?
        .map_err(|e| ArmError::invalid_request(e.0))?;
    let mode = registry.properties.role_assignment_mode;
    let decision =
        ctx.state.authz.data_plane(principal, &registry.scope, mode, target.clone(), &actions, &network.environment);
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
