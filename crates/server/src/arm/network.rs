//! `Microsoft.Network`, emulated on this host: virtual networks and subnets are address ranges
//! (loopback addresses such as 127.10.0.0/16 work as distinct hosts), service endpoints are a
//! flag on a subnet, and a private endpoint is an extra listener Wharf binds on an address of
//! its subnet that serves one registry. The values and their rules are `wharf-arm`'s
//! (`wharf_arm::network`).

use axum::http::StatusCode;
use axum::response::Response;
use ipnet::IpNet;
use serde_json::{Value, json};
use wharf_arm::network::{
    PRIVATE_ENDPOINT, PrivateEndpoint, PrivateEndpointRequest, Subnet, VIRTUAL_NETWORK, VirtualNetwork, parse_prefix,
    parse_service_endpoints,
};
use wharf_arm::registry::Sku;
use wharf_arm::{ArmError, ResourceId};
use wharf_storage::{ResourceFilter, ResourceRecord};

use super::endpoint::Named;
use super::{ArmCtx, json_response, storage_error};
use crate::model::network::{self as stored, StoredVnet};

fn record(
    id: String,
    resource_type: &str,
    at: &Named,
    key: String,
    body: Value,
    created: Option<chrono::DateTime<chrono::Utc>>,
) -> ResourceRecord {
    let now = chrono::Utc::now();
    ResourceRecord {
        id,
        resource_type: resource_type.into(),
        name: at.name.clone(),
        resource_group: Some(at.group.clone()),
        key,
        body,
        created_at: created.unwrap_or(now),
        updated_at: now,
    }
}

fn vnet_id(ctx: &ArmCtx, at: &Named) -> String {
    ResourceId::resource(&ctx.state.subscription_id, &at.group, "Microsoft.Network", "virtualNetworks", &at.name)
        .to_string()
}

fn private_endpoint_id(ctx: &ArmCtx, at: &Named) -> String {
    ResourceId::resource(&ctx.state.subscription_id, &at.group, "Microsoft.Network", "privateEndpoints", &at.name)
        .to_string()
}

async fn require_vnet(ctx: &ArmCtx, at: &Named) -> Result<StoredVnet, ArmError> {
    super::groups::require(&ctx.state, &at.group).await?;
    stored::vnet(&*ctx.state.meta, &vnet_id(ctx, at))
        .await
        .map_err(|e| storage_error("reading a network resource", e))?
        .ok_or_else(|| ArmError::resource_not_found(VIRTUAL_NETWORK, &at.name, &at.group))
}

pub async fn list(ctx: &ArmCtx, group: &str, resource_type: &str) -> Result<Response, ArmError> {
    super::groups::require(&ctx.state, group).await?;
    let filter = ResourceFilter { resource_type: Some(resource_type.into()), resource_group: Some(group.into()) };
    let all = ctx.state.meta.resource_list(&filter).await.map_err(|e| storage_error("listing network resources", e))?;
    Ok(json_response(StatusCode::OK, &json!({"value": all.into_iter().map(|r| r.body).collect::<Vec<_>>()})))
}

pub async fn get_vnet(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    Ok(json_response(StatusCode::OK, &require_vnet(ctx, at).await?.record.body))
}

pub async fn delete_vnet(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    super::groups::require(&ctx.state, &at.group).await?;
    let deleted =
        ctx.state.delete_tree(&vnet_id(ctx, at)).await.map_err(|e| storage_error("deleting a virtual network", e))?;
    if !deleted.is_empty() {
        // Virtual-network rules naming its subnets now match nothing.
        ctx.state.registries_changed();
    }
    Ok(json_response(if deleted.is_empty() { StatusCode::NO_CONTENT } else { StatusCode::OK }, &Value::Null))
}

pub async fn put_vnet(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    super::groups::require(&ctx.state, &at.group).await?;
    let id = vnet_id(ctx, at);
    let body = ctx.json()?;
    let props = &body["properties"];
    let space: Vec<IpNet> = props["addressSpace"]["addressPrefixes"]
        .as_array()
        .ok_or_else(|| ArmError::invalid_request("properties.addressSpace.addressPrefixes is required."))?
        .iter()
        .map(|p| parse_prefix(p, "addressPrefixes"))
        .collect::<Result<_, _>>()?;
    let mut subnets = vec![];
    for s in props["subnets"].as_array().into_iter().flatten() {
        let name = s["name"].as_str().ok_or_else(|| ArmError::invalid_request("subnets[].name is required."))?;
        let prefix = parse_prefix(&s["properties"]["addressPrefix"], "subnets[].properties.addressPrefix")?;
        subnets.push(Subnet::new(&id, name, prefix, &parse_service_endpoints(&s["properties"])?));
    }
    let location = body["location"].as_str().unwrap_or("local");
    let tags = body.get("tags").cloned().unwrap_or(json!({}));
    let vnet = VirtualNetwork::new(&id, &at.name, location, tags, space, subnets)?;
    let existing = ctx.state.meta.resource_get(&id).await.map_err(|e| storage_error("reading a virtual network", e))?;
    let key = existing.as_ref().map(|r| r.key.clone()).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let out = serde_json::to_value(&vnet).expect("a virtual network serializes");
    let rec = record(id, VIRTUAL_NETWORK, at, key, out.clone(), existing.map(|r| r.created_at));
    let created = ctx.state.meta.resource_put(&rec).await.map_err(|e| storage_error("storing a virtual network", e))?;
    ctx.state.registries_changed();
    Ok(json_response(if created { StatusCode::CREATED } else { StatusCode::OK }, &out))
}

pub async fn list_subnets(ctx: &ArmCtx, vnet: &Named) -> Result<Response, ArmError> {
    let v = require_vnet(ctx, vnet).await?;
    Ok(json_response(StatusCode::OK, &json!({"value": v.vnet.properties.subnets})))
}

pub async fn get_subnet(ctx: &ArmCtx, vnet: &Named, name: &str) -> Result<Response, ArmError> {
    let v = require_vnet(ctx, vnet).await?;
    match v.vnet.subnet(name) {
        Some(s) => Ok(json_response(StatusCode::OK, &serde_json::to_value(s).expect("a subnet serializes"))),
        None => Err(ArmError::new(404, "NotFound", format!("Resource {}/subnets/{name} not found.", v.record.id))),
    }
}

/// `PUT` or `PATCH` of a subnet: what the body gives replaces, what it leaves out stays.
pub async fn put_subnet(ctx: &ArmCtx, vnet: &Named, name: &str) -> Result<Response, ArmError> {
    let mut v = require_vnet(ctx, vnet).await?;
    let body = ctx.json()?;
    let props = &body["properties"];
    let current = v.vnet.subnet(name).cloned();
    let prefix = match props.get("addressPrefix") {
        Some(p) if !p.is_null() => parse_prefix(p, "properties.addressPrefix")?,
        _ => match &current {
            Some(c) => c.properties.address_prefix,
            None => parse_prefix(&Value::Null, "properties.addressPrefix")?,
        },
    };
    let endpoints = if props.get("serviceEndpoints").is_some() {
        parse_service_endpoints(props)?
    } else {
        current.as_ref().map(Subnet::service_endpoint_names).unwrap_or_default()
    };
    let subnet = Subnet::new(&v.record.id, name, prefix, &endpoints);
    let replaced = v.vnet.put_subnet(subnet.clone())?;
    v.record.updated_at = chrono::Utc::now();
    ctx.state.meta.resource_put(&v.to_record()).await.map_err(|e| storage_error("storing a virtual network", e))?;
    ctx.state.registries_changed();
    let status = if replaced { StatusCode::OK } else { StatusCode::CREATED };
    Ok(json_response(status, &serde_json::to_value(&subnet).expect("a subnet serializes")))
}

pub async fn delete_subnet(ctx: &ArmCtx, vnet: &Named, name: &str) -> Result<Response, ArmError> {
    let mut v = require_vnet(ctx, vnet).await?;
    if !v.vnet.remove_subnet(name) {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    }
    v.record.updated_at = chrono::Utc::now();
    ctx.state.meta.resource_put(&v.to_record()).await.map_err(|e| storage_error("storing a virtual network", e))?;
    ctx.state.registries_changed();
    Ok(json_response(StatusCode::OK, &Value::Null))
}

pub async fn get_private_endpoint(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    super::groups::require(&ctx.state, &at.group).await?;
    let found = stored::private_endpoint(&*ctx.state.meta, &private_endpoint_id(ctx, at))
        .await
        .map_err(|e| storage_error("reading a private endpoint", e))?;
    let pe = found.ok_or_else(|| ArmError::resource_not_found(PRIVATE_ENDPOINT, &at.name, &at.group))?;
    Ok(json_response(StatusCode::OK, &pe.record.body))
}

pub async fn delete_private_endpoint(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    super::groups::require(&ctx.state, &at.group).await?;
    let id = private_endpoint_id(ctx, at);
    let found = stored::private_endpoint(&*ctx.state.meta, &id)
        .await
        .map_err(|e| storage_error("reading a private endpoint", e))?;
    let Some(pe) = found else {
        return Ok(json_response(StatusCode::NO_CONTENT, &Value::Null));
    };
    crate::private_link::remove(&ctx.state, &pe).await.map_err(|e| storage_error("removing a private endpoint", e))?;
    ctx.state.delete_tree(&id).await.map_err(|e| storage_error("deleting a private endpoint", e))?;
    Ok(json_response(StatusCode::OK, &Value::Null))
}

pub async fn put_private_endpoint(ctx: &ArmCtx, at: &Named) -> Result<Response, ArmError> {
    super::groups::require(&ctx.state, &at.group).await?;
    let id = private_endpoint_id(ctx, at);
    let meta = &*ctx.state.meta;
    if meta.resource_get(&id).await.map_err(|e| storage_error("reading a private endpoint", e))?.is_some() {
        return Err(ArmError::bad_request(
            "PrivateEndpointCannotBeUpdated",
            "A private endpoint cannot be changed; delete it and create it again.",
        ));
    }
    let request = PrivateEndpointRequest::parse(&ctx.json()?, &at.name)?;
    let subnet = stored::subnet(meta, &request.subnet_id)
        .await
        .map_err(|e| storage_error("reading a subnet", e))?
        .ok_or_else(|| {
            ArmError::bad_request("InvalidResourceReference", format!("Subnet {} does not exist.", request.subnet_id))
        })?;
    let target = ResourceId::parse(&request.registry_id)?;
    let registry = match (target.resource_group.as_deref(), target.name()) {
        (Some(g), Some(n)) => super::registries::require(&ctx.state, g, n).await?,
        _ => {
            return Err(ArmError::bad_request(
                "InvalidResourceReference",
                format!("{} is not a registry.", request.registry_id),
            ));
        }
    };
    if registry.sku != Sku::Premium {
        return Err(ArmError::bad_request(
            "FeatureNotSupportedForSku",
            "Private endpoints are only supported for registries in the Premium SKU.",
        ));
    }
    let ip =
        crate::private_link::choose_address(&ctx.state, subnet.properties.address_prefix, request.requested_address)
            .await
            .map_err(|m| ArmError::bad_request("PrivateIPAddressNotAvailable", m))?;
    let request = PrivateEndpointRequest { registry_id: registry.record.id.clone(), ..request };
    let endpoint = PrivateEndpoint::new(&id, &at.name, &request, ip, &registry.properties.login_server);
    let out = serde_json::to_value(&endpoint).expect("a private endpoint serializes");
    let rec = record(id.clone(), PRIVATE_ENDPOINT, at, uuid::Uuid::new_v4().to_string(), out.clone(), None);
    meta.resource_put(&rec).await.map_err(|e| storage_error("storing a private endpoint", e))?;
    let stored_endpoint = stored::StoredPrivateEndpoint { record: rec, endpoint };
    if let Err(e) = crate::private_link::add(&ctx.state, &stored_endpoint, &registry).await {
        let _ = ctx.state.delete_tree(&id).await;
        return Err(ArmError::bad_request(
            "PrivateEndpointListenerFailed",
            format!("Wharf could not listen on {ip} for the private endpoint: {e}"),
        ));
    }
    Ok(json_response(StatusCode::CREATED, &out))
}
