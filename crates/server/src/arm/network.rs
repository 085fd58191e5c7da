//! `Microsoft.Network`, emulated on this host: virtual networks and subnets are address ranges
//! (loopback addresses such as 127.10.0.0/16 work as distinct hosts), service endpoints are a
//! flag on a subnet, and a private endpoint is an extra listener Wharf binds on an address of
//! its subnet that serves one registry.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use ipnet::IpNet;
use serde_json::{Value, json};
use wharf_arm::{ArmError, ResourceId};
use wharf_storage::{ResourceFilter, ResourceRecord};

use super::{ArmCtx, json_response, storage_error};

pub const VNET_TYPE: &str = "Microsoft.Network/virtualNetworks";
pub const PE_TYPE: &str = "Microsoft.Network/privateEndpoints";
/// The service-endpoint name that registry virtual-network rules need on a subnet.
pub const REGISTRY_SERVICE_ENDPOINT: &str = "Microsoft.ContainerRegistry";

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn record(
    id: String,
    resource_type: &str,
    name: &str,
    group: &str,
    key: String,
    body: Value,
    created: Option<chrono::DateTime<chrono::Utc>>,
) -> ResourceRecord {
    ResourceRecord {
        id,
        resource_type: resource_type.into(),
        name: name.into(),
        resource_group: Some(group.into()),
        key,
        body,
        created_at: created.unwrap_or_else(now),
        updated_at: now(),
    }
}

fn prefix(v: &Value, what: &str) -> Result<IpNet, ArmError> {
    let s = v.as_str().ok_or_else(|| ArmError::invalid_request(format!("{what} is required.")))?;
    s.parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
        ArmError::bad_request(
            "InvalidAddressPrefixFormat",
            format!("Address prefix {s} of {what} is not a valid CIDR range."),
        )
    })
}

pub async fn handle(ctx: &ArmCtx, group: &str, rest: &[String]) -> Result<Response, ArmError> {
    super::groups::require(&ctx.state, group).await?;
    let parts: Vec<&str> = rest.iter().map(String::as_str).collect();
    let lower: Vec<String> = parts.iter().map(|p| p.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match lower.as_slice() {
        ["virtualnetworks"] => list(ctx, group, VNET_TYPE).await,
        ["privateendpoints"] => list(ctx, group, PE_TYPE).await,
        ["virtualnetworks", _] => vnet(ctx, group, parts[1]).await,
        ["virtualnetworks", _, "subnets"] => {
            let v = require(ctx, &vnet_id(ctx, group, parts[1])).await?;
            Ok(json_response(StatusCode::OK, &json!({"value": v.body["properties"]["subnets"]})))
        }
        ["virtualnetworks", _, "subnets", _] => subnet(ctx, group, parts[1], parts[3]).await,
        ["privateendpoints", _] => private_endpoint(ctx, group, parts[1]).await,
        _ => Err(ArmError::new(
            400,
            "NoRegisteredProviderFound",
            format!("No registered resource provider found for 'Microsoft.Network/{}'.", rest.join("/")),
        )),
    }
}

fn vnet_id(ctx: &ArmCtx, group: &str, name: &str) -> String {
    ResourceId::resource(&ctx.state.subscription_id, group, "Microsoft.Network", "virtualNetworks", name).to_string()
}

async fn require(ctx: &ArmCtx, id: &str) -> Result<ResourceRecord, ArmError> {
    ctx.state.meta.resource_get(id).await.map_err(|e| storage_error("reading a network resource", e))?.ok_or_else(
        || {
            let rid = ResourceId::parse(id).ok();
            ArmError::resource_not_found(
                &rid.as_ref().and_then(|r| r.resource_type()).unwrap_or_default(),
                rid.as_ref().and_then(|r| r.name()).unwrap_or_default(),
                rid.as_ref().and_then(|r| r.resource_group.as_deref()).unwrap_or_default(),
            )
        },
    )
}

async fn list(ctx: &ArmCtx, group: &str, resource_type: &str) -> Result<Response, ArmError> {
    let filter = ResourceFilter { resource_type: Some(resource_type.into()), resource_group: Some(group.into()) };
    let all = ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing network resources", e))?;
    Ok(json_response(StatusCode::OK, &json!({"value": all.into_iter().map(|r| r.body).collect::<Vec<_>>()})))
}

/// A subnet's ARM JSON.
fn subnet_json(vnet_id: &str, name: &str, prefix: IpNet, endpoints: &[String]) -> Value {
    json!({
        "id": format!("{vnet_id}/subnets/{name}"),
        "name": name,
        "type": "Microsoft.Network/virtualNetworks/subnets",
        "properties": {
            "addressPrefix": prefix.to_string(),
            "serviceEndpoints": endpoints.iter().map(|s| json!({"service": s, "locations": ["*"], "provisioningState": "Succeeded"})).collect::<Vec<_>>(),
            "provisioningState": "Succeeded",
            "privateEndpointNetworkPolicies": "Disabled",
        }
    })
}

fn service_endpoints(props: &Value) -> Result<Vec<String>, ArmError> {
    let mut out = vec![];
    for e in props["serviceEndpoints"].as_array().into_iter().flatten() {
        let s = e["service"]
            .as_str()
            .or_else(|| e.as_str())
            .ok_or_else(|| ArmError::invalid_request("serviceEndpoints[].service is required."))?;
        out.push(s.to_string());
    }
    Ok(out)
}

/// Checks that every subnet lies in the address space and no two overlap.
fn check_subnets(space: &[IpNet], subnets: &[(String, IpNet)]) -> Result<(), ArmError> {
    for (name, p) in subnets {
        if !space.iter().any(|s| s.contains(p)) {
            return Err(ArmError::bad_request(
                "NetcfgSubnetRangeOutsideVnet",
                format!("Subnet '{name}' ({p}) is not within the address space of the virtual network."),
            ));
        }
    }
    for (i, (a, pa)) in subnets.iter().enumerate() {
        for (b, pb) in &subnets[i + 1..] {
            if pa.contains(pb) || pb.contains(pa) {
                return Err(ArmError::bad_request(
                    "NetcfgSubnetRangesOverlap",
                    format!("Subnets '{a}' ({pa}) and '{b}' ({pb}) overlap."),
                ));
            }
        }
    }
    Ok(())
}

async fn vnet(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
    let id = vnet_id(ctx, group, name);
    match ctx.method {
        Method::GET => Ok(json_response(StatusCode::OK, &require(ctx, &id).await?.body)),
        Method::DELETE => {
            let deleted = ctx
                .state
                .meta
                .resource_delete_tree(&id)
                .await
                .map_err(|e| storage_error("deleting a virtual network", e))?;
            Ok(json_response(if deleted.is_empty() { StatusCode::NO_CONTENT } else { StatusCode::OK }, &Value::Null))
        }
        Method::PUT => {
            let body = ctx.json()?;
            let props = &body["properties"];
            let space: Vec<IpNet> = props["addressSpace"]["addressPrefixes"]
                .as_array()
                .ok_or_else(|| ArmError::invalid_request("properties.addressSpace.addressPrefixes is required."))?
                .iter()
                .map(|p| prefix(p, "addressPrefixes"))
                .collect::<Result<_, _>>()?;
            let mut subnets = vec![];
            for s in props["subnets"].as_array().into_iter().flatten() {
                let sname =
                    s["name"].as_str().ok_or_else(|| ArmError::invalid_request("subnets[].name is required."))?;
                subnets.push((
                    sname.to_string(),
                    prefix(&s["properties"]["addressPrefix"], "subnets[].properties.addressPrefix")?,
                    service_endpoints(&s["properties"])?,
                ));
            }
            let pairs: Vec<(String, IpNet)> = subnets.iter().map(|(n, p, _)| (n.clone(), *p)).collect();
            check_subnets(&space, &pairs)?;
            let existing =
                ctx.state.meta.resource_get(&id).await.map_err(|e| storage_error("reading a virtual network", e))?;
            let location = body["location"].as_str().unwrap_or("local");
            let out = json!({
                "id": id, "name": name, "type": VNET_TYPE, "location": location,
                "tags": body.get("tags").cloned().unwrap_or(json!({})),
                "properties": {
                    "provisioningState": "Succeeded",
                    "addressSpace": {"addressPrefixes": space.iter().map(|p| p.to_string()).collect::<Vec<_>>()},
                    "subnets": subnets.iter().map(|(n, p, e)| subnet_json(&id, n, *p, e)).collect::<Vec<_>>(),
                }
            });
            let key = existing.as_ref().map(|r| r.key.clone()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let created = ctx
                .state
                .meta
                .resource_put(&record(
                    id.clone(),
                    VNET_TYPE,
                    name,
                    group,
                    key,
                    out.clone(),
                    existing.map(|r| r.created_at),
                ))
                .await
                .map_err(|e| storage_error("storing a virtual network", e))?;
            Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &out))
        }
        ref m => Err(ArmError::method_not_allowed(m.as_str())),
    }
}

async fn subnet(ctx: &ArmCtx, group: &str, vnet: &str, name: &str) -> Result<Response, ArmError> {
    let vid = vnet_id(ctx, group, vnet);
    let mut rec = require(ctx, &vid).await?;
    let subnets = rec.body["properties"]["subnets"].as_array().cloned().unwrap_or_default();
    let pos = subnets.iter().position(|s| s["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)));
    match ctx.method {
        Method::GET => match pos {
            Some(i) => Ok(json_response(StatusCode::OK, &subnets[i])),
            None => Err(ArmError::new(404, "NotFound", format!("Resource {vid}/subnets/{name} not found."))),
        },
        Method::PUT | Method::PATCH => {
            let body = ctx.json()?;
            let props = &body["properties"];
            let current = pos.map(|i| subnets[i].clone());
            let p = match props.get("addressPrefix") {
                Some(v) if !v.is_null() => prefix(v, "properties.addressPrefix")?,
                _ => prefix(
                    &current.as_ref().map(|c| c["properties"]["addressPrefix"].clone()).unwrap_or(Value::Null),
                    "properties.addressPrefix",
                )?,
            };
            let endpoints = if props.get("serviceEndpoints").is_some() {
                service_endpoints(props)?
            } else {
                current.as_ref().map(|c| service_endpoints(&c["properties"])).transpose()?.unwrap_or_default()
            };
            let new = subnet_json(&vid, name, p, &endpoints);
            let mut list = subnets.clone();
            match pos {
                Some(i) => list[i] = new.clone(),
                None => list.push(new.clone()),
            }
            let space: Vec<IpNet> = rec.body["properties"]["addressSpace"]["addressPrefixes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p.as_str()?.parse().ok())
                .collect();
            let pairs: Vec<(String, IpNet)> = list
                .iter()
                .filter_map(|s| {
                    Some((s["name"].as_str()?.to_string(), s["properties"]["addressPrefix"].as_str()?.parse().ok()?))
                })
                .collect();
            check_subnets(&space, &pairs)?;
            rec.body["properties"]["subnets"] = Value::Array(list);
            rec.updated_at = now();
            ctx.state.meta.resource_put(&rec).await.map_err(|e| storage_error("storing a virtual network", e))?;
            ctx.state.registries_changed();
            Ok(json_response(if pos.is_some() { StatusCode::OK } else { StatusCode::CREATED }, &new))
        }
        Method::DELETE => {
            let Some(i) = pos else { return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null)) };
            let mut list = subnets;
            list.remove(i);
            rec.body["properties"]["subnets"] = Value::Array(list);
            ctx.state.meta.resource_put(&rec).await.map_err(|e| storage_error("storing a virtual network", e))?;
            Ok(json_response(StatusCode::OK, &Value::Null))
        }
        ref m => Err(ArmError::method_not_allowed(m.as_str())),
    }
}

/// Finds a subnet by id: its prefix and service endpoints.
pub async fn find_subnet(
    state: &crate::state::AppState,
    subnet_id: &str,
) -> Result<Option<(IpNet, Vec<String>)>, wharf_storage::StorageError> {
    let lower = subnet_id.to_ascii_lowercase();
    let Some((vnet, _)) = lower.split_once("/subnets/") else { return Ok(None) };
    let Some(rec) = state.meta.resource_get(vnet).await? else { return Ok(None) };
    for s in rec.body["properties"]["subnets"].as_array().into_iter().flatten() {
        if s["id"].as_str().is_some_and(|i| i.eq_ignore_ascii_case(subnet_id)) {
            let p: Option<IpNet> = s["properties"]["addressPrefix"].as_str().and_then(|p| p.parse().ok());
            let e = service_endpoints(&s["properties"]).unwrap_or_default();
            return Ok(p.map(|p| (p, e)));
        }
    }
    Ok(None)
}

async fn private_endpoint(ctx: &ArmCtx, group: &str, name: &str) -> Result<Response, ArmError> {
    let id = ResourceId::resource(&ctx.state.subscription_id, group, "Microsoft.Network", "privateEndpoints", name)
        .to_string();
    match ctx.method {
        Method::GET => Ok(json_response(StatusCode::OK, &require(ctx, &id).await?.body)),
        Method::DELETE => {
            let Some(rec) =
                ctx.state.meta.resource_get(&id).await.map_err(|e| storage_error("reading a private endpoint", e))?
            else {
                return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
            };
            crate::private_link::remove(&ctx.state, &rec)
                .await
                .map_err(|e| storage_error("removing a private endpoint", e))?;
            ctx.state
                .meta
                .resource_delete_tree(&id)
                .await
                .map_err(|e| storage_error("deleting a private endpoint", e))?;
            Ok(json_response(StatusCode::OK, &Value::Null))
        }
        Method::PUT => {
            if ctx
                .state
                .meta
                .resource_get(&id)
                .await
                .map_err(|e| storage_error("reading a private endpoint", e))?
                .is_some()
            {
                return Err(ArmError::bad_request(
                    "PrivateEndpointCannotBeUpdated",
                    "A private endpoint cannot be changed; delete it and create it again.",
                ));
            }
            let body = ctx.json()?;
            let props = &body["properties"];
            let subnet_id = props["subnet"]["id"]
                .as_str()
                .ok_or_else(|| ArmError::invalid_request("properties.subnet.id is required."))?;
            let (subnet, _) = find_subnet(&ctx.state, subnet_id)
                .await
                .map_err(|e| storage_error("reading a subnet", e))?
                .ok_or_else(|| {
                    ArmError::bad_request("InvalidResourceReference", format!("Subnet {subnet_id} does not exist."))
                })?;
            let conns = props["privateLinkServiceConnections"].as_array().cloned().unwrap_or_default();
            let conn = conns.first().ok_or_else(|| {
                ArmError::invalid_request("properties.privateLinkServiceConnections must name the registry.")
            })?;
            let conn_name = conn["name"].as_str().unwrap_or(name).to_string();
            let target = conn["properties"]["privateLinkServiceId"]
                .as_str()
                .ok_or_else(|| ArmError::invalid_request("privateLinkServiceId is required."))?;
            let groups: Vec<&str> =
                conn["properties"]["groupIds"].as_array().into_iter().flatten().filter_map(|g| g.as_str()).collect();
            if groups != ["registry"] {
                return Err(ArmError::bad_request(
                    "InvalidGroupId",
                    "Container registries expose one private link group id: 'registry'.",
                ));
            }
            let rid = ResourceId::parse(target)?;
            let registry_rec = match (rid.resource_group.as_deref(), rid.name()) {
                (Some(g), Some(n)) => super::registries::require(&ctx.state, g, n).await?,
                _ => {
                    return Err(ArmError::bad_request(
                        "InvalidResourceReference",
                        format!("{target} is not a registry."),
                    ));
                }
            };
            ctx.authorize(
                "Microsoft.ContainerRegistry/registries/privateEndpointConnectionsApproval/action",
                &registry_rec.id,
            )?;
            let sku = registry_rec.body["sku"]["name"].as_str().unwrap_or("Basic");
            if !sku.eq_ignore_ascii_case("Premium") {
                return Err(ArmError::bad_request(
                    "FeatureNotSupportedForSku",
                    "Private endpoints are only supported for registries in the Premium SKU.",
                ));
            }
            let requested_ip =
                props["ipConfigurations"][0]["properties"]["privateIPAddress"].as_str().map(str::to_string);
            let ip = crate::private_link::choose_address(&ctx.state, subnet, requested_ip.as_deref())
                .await
                .map_err(|m| ArmError::bad_request("PrivateIPAddressNotAvailable", m))?;
            let location = body["location"].as_str().unwrap_or("local");
            let out = json!({
                "id": id, "name": name, "type": PE_TYPE, "location": location,
                "properties": {
                    "provisioningState": "Succeeded",
                    "subnet": {"id": subnet_id},
                    "privateLinkServiceConnections": [{
                        "id": format!("{id}/privateLinkServiceConnections/{conn_name}"),
                        "name": conn_name,
                        "properties": {
                            "privateLinkServiceId": registry_rec.id, "groupIds": ["registry"],
                            "privateLinkServiceConnectionState": {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"},
                            "provisioningState": "Succeeded"
                        }
                    }],
                    "customDnsConfigs": [{"fqdn": registry_rec.body["properties"]["loginServer"], "ipAddresses": [ip.to_string()]}],
                    "ipConfigurations": [{"name": "registry", "properties": {"privateIPAddress": ip.to_string(), "groupId": "registry", "memberName": "registry"}}],
                    "networkInterfaces": [],
                }
            });
            let rec = record(id.clone(), PE_TYPE, name, group, uuid::Uuid::new_v4().to_string(), out.clone(), None);
            ctx.state.meta.resource_put(&rec).await.map_err(|e| storage_error("storing a private endpoint", e))?;
            if let Err(e) = crate::private_link::add(&ctx.state, &rec, &registry_rec, &conn_name).await {
                let _ = ctx.state.meta.resource_delete_tree(&id).await;
                return Err(ArmError::bad_request(
                    "PrivateEndpointListenerFailed",
                    format!("Wharf could not listen on {ip} for the private endpoint: {e}"),
                ));
            }
            Ok(json_response(StatusCode::CREATED, &out))
        }
        ref m => Err(ArmError::method_not_allowed(m.as_str())),
    }
}
