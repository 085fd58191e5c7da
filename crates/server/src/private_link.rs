//! Private endpoints as listeners: each endpoint is a socket Wharf binds on an address of its
//! subnet (same port as the public listener) that serves one registry. Traffic arriving there
//! is private-link traffic. Listeners are restored at start-up and closed when the endpoint is
//! deleted.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use serde_json::{Value, json};
use wharf_storage::{ResourceFilter, ResourceRecord, StorageError};

use crate::listener::ListenerKind;
use crate::state::AppState;

fn pe_address(rec: &ResourceRecord) -> Option<IpAddr> {
    rec.body["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"].as_str()?.parse().ok()
}

fn pe_registry(rec: &ResourceRecord) -> Option<String> {
    rec.body["properties"]["privateLinkServiceConnections"][0]["properties"]["privateLinkServiceId"]
        .as_str()
        .map(str::to_string)
}

async fn endpoints(state: &AppState) -> Result<Vec<ResourceRecord>, StorageError> {
    let filter = ResourceFilter { resource_type: Some(crate::arm::network::PE_TYPE.into()), resource_group: None };
    state.meta.resource_list(&filter).await
}

/// The address for a new endpoint: the requested one if it lies in the subnet and is free, else
/// the first free address from the subnet's fifth (Azure reserves the first four).
pub async fn choose_address(state: &AppState, subnet: IpNet, requested: Option<&str>) -> Result<IpAddr, String> {
    let used: Vec<IpAddr> = endpoints(state).await.map_err(|e| e.to_string())?.iter().filter_map(pe_address).collect();
    if let Some(r) = requested {
        let ip: IpAddr = r.parse().map_err(|_| format!("'{r}' is not an IP address"))?;
        if !subnet.contains(&ip) {
            return Err(format!("{ip} is not in the subnet {subnet}"));
        }
        if used.contains(&ip) {
            return Err(format!("{ip} is already used by another private endpoint"));
        }
        return Ok(ip);
    }
    subnet
        .hosts()
        .skip(3)
        .find(|ip| !used.contains(ip))
        .ok_or_else(|| format!("the subnet {subnet} has no free address"))
}

/// Binds the endpoint's listener and records the connection on the registry.
pub async fn add(
    state: &AppState,
    pe: &ResourceRecord,
    registry: &ResourceRecord,
    connection: &str,
) -> anyhow::Result<()> {
    start(state, pe).await?;
    let mut reg = registry.clone();
    let conns = reg.body["properties"]["privateEndpointConnections"].as_array().cloned().unwrap_or_default();
    let mut conns: Vec<Value> = conns
        .into_iter()
        .filter(|c| c["properties"]["privateEndpoint"]["id"].as_str() != Some(pe.id.as_str()))
        .collect();
    conns.push(json!({
        "id": format!("{}/privateEndpointConnections/{connection}", reg.id),
        "name": connection,
        "type": "Microsoft.ContainerRegistry/registries/privateEndpointConnections",
        "properties": {
            "privateEndpoint": {"id": pe.id},
            "privateLinkServiceConnectionState": {"status": "Approved", "description": "Auto-Approved", "actionsRequired": "None"},
            "provisioningState": "Succeeded",
            "groupIds": ["registry"],
        }
    }));
    reg.body["properties"]["privateEndpointConnections"] = Value::Array(conns);
    reg.updated_at = chrono::Utc::now();
    state.meta.resource_put(&reg).await?;
    state.registries.invalidate(&reg.name);
    Ok(())
}

/// Closes the endpoint's listener and removes its connection from the registry.
pub async fn remove(state: &AppState, pe: &ResourceRecord) -> Result<(), StorageError> {
    if let Some(stop) = state.private_listeners.lock().expect("listeners lock").remove(&pe.id.to_ascii_lowercase()) {
        let _ = stop.send(true);
    }
    if let Some(reg_id) = pe_registry(pe)
        && let Some(mut reg) = state.meta.resource_get(&reg_id).await?
        && let Some(conns) = reg.body["properties"]["privateEndpointConnections"].as_array()
    {
        let kept: Vec<Value> = conns
            .iter()
            .filter(|c| {
                c["properties"]["privateEndpoint"]["id"]
                    .as_str()
                    .map(|i| !i.eq_ignore_ascii_case(&pe.id))
                    .unwrap_or(true)
            })
            .cloned()
            .collect();
        reg.body["properties"]["privateEndpointConnections"] = Value::Array(kept);
        state.meta.resource_put(&reg).await?;
        state.registries.invalidate(&reg.name);
    }
    Ok(())
}

async fn start(state: &AppState, pe: &ResourceRecord) -> anyhow::Result<()> {
    let ip = pe_address(pe).ok_or_else(|| anyhow::anyhow!("the endpoint has no address"))?;
    let registry_id = pe_registry(pe).ok_or_else(|| anyhow::anyhow!("the endpoint names no registry"))?;
    let addr = SocketAddr::new(ip, state.config.listen.port());
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let router = state.router.get().cloned().ok_or_else(|| anyhow::anyhow!("the server is not running yet"))?;
    let tls = state.tls_acceptor.get().cloned().flatten();
    let limits =
        state.connection_limits.get().cloned().ok_or_else(|| anyhow::anyhow!("the server is not running yet"))?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    state.private_listeners.lock().expect("listeners lock").insert(pe.id.to_ascii_lowercase(), tx);
    let kind = ListenerKind::PrivateEndpoint { endpoint_id: pe.id.clone(), registry_id };
    tracing::info!(endpoint = %pe.id, %addr, "private endpoint listening");
    tokio::spawn(async move {
        if let Err(e) = crate::listener::serve(listener, tls, kind, router, limits, rx).await {
            tracing::error!(error = %e, "private endpoint listener failed");
        }
    });
    Ok(())
}

/// Re-binds every stored endpoint's listener (at start-up).
pub async fn restore_all(state: &AppState) {
    let Ok(all) = endpoints(state).await else { return };
    for pe in all {
        if let Err(e) = start(state, &pe).await {
            tracing::error!(endpoint = %pe.id, error = %e, "could not restore a private endpoint listener");
        }
    }
}
