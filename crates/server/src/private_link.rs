//! Private endpoints as listeners: each endpoint is a socket Wharf binds on an address of its
//! subnet (same port as the public listener) that serves one registry. Traffic arriving there
//! is private-link traffic. Listeners are restored at start-up and closed when the endpoint is
//! deleted.
//!
//! Owns: binding and closing these listeners, choosing an endpoint's address, and the
//! registry's `privateEndpointConnections` entries.
//! Must never: decide what traffic on a listener may do (the network rules do).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
use wharf_arm::network::RegistryPrivateEndpointConnection;
use wharf_storage::StorageError;

use crate::listener::ListenerKind;
use crate::model::network::{StoredPrivateEndpoint, private_endpoints};
use crate::model::registries::StoredRegistry;
use crate::state::AppState;

/// The address for a new endpoint: the requested one if it lies in the subnet and is free, else
/// the first free address from the subnet's fifth (Azure reserves the first four).
pub async fn choose_address(state: &AppState, subnet: IpNet, requested: Option<IpAddr>) -> Result<IpAddr, String> {
    let used: Vec<IpAddr> = private_endpoints(&*state.meta)
        .await
        .map_err(|e| e.to_string())?
        .iter()
        .filter_map(|p| p.endpoint.address())
        .collect();
    if let Some(ip) = requested {
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
pub async fn add(state: &AppState, pe: &StoredPrivateEndpoint, registry: &StoredRegistry) -> anyhow::Result<()> {
    start(state, pe).await?;
    let mut props = registry.properties.clone();
    props.private_endpoint_connections.retain(|c| !c.endpoint_id().eq_ignore_ascii_case(&pe.record.id));
    let connection = pe.endpoint.connection_name().unwrap_or(&pe.record.name);
    props.private_endpoint_connections.push(RegistryPrivateEndpointConnection::new(
        &registry.record.id,
        connection,
        &pe.record.id,
    ));
    put_connections(state, registry, props.private_endpoint_connections).await?;
    Ok(())
}

async fn put_connections(
    state: &AppState,
    registry: &StoredRegistry,
    connections: Vec<RegistryPrivateEndpointConnection>,
) -> Result<(), StorageError> {
    let mut reg = registry.record.clone();
    reg.body["properties"]["privateEndpointConnections"] =
        serde_json::to_value(connections).expect("connections serialize");
    reg.updated_at = chrono::Utc::now();
    state.meta.resource_put(&reg).await?;
    state.registries.invalidate(&reg.name);
    Ok(())
}

/// Closes the endpoint's listener (if this process serves it).
pub fn stop(state: &AppState, endpoint_id: &str) {
    if let Some(stop) =
        state.private_listeners.lock().expect("listeners lock").remove(&endpoint_id.to_ascii_lowercase())
    {
        let _ = stop.send(true);
    }
}

/// Closes the endpoint's listener and removes its connection from the registry.
pub async fn remove(state: &AppState, pe: &StoredPrivateEndpoint) -> Result<(), StorageError> {
    stop(state, &pe.record.id);
    let Some(registry_id) = pe.endpoint.registry_id() else { return Ok(()) };
    if let Some(registry) = crate::model::registries::by_id(&*state.meta, registry_id).await? {
        let mut kept = registry.properties.private_endpoint_connections.clone();
        kept.retain(|c| !c.endpoint_id().eq_ignore_ascii_case(&pe.record.id));
        put_connections(state, &registry, kept).await?;
    }
    Ok(())
}

async fn start(state: &AppState, pe: &StoredPrivateEndpoint) -> anyhow::Result<()> {
    let ip = pe.endpoint.address().ok_or_else(|| anyhow::anyhow!("the endpoint has no address"))?;
    let registry_id =
        pe.endpoint.registry_id().ok_or_else(|| anyhow::anyhow!("the endpoint names no registry"))?.to_string();
    let addr = SocketAddr::new(ip, state.config.listen.port());
    let listener =
        tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("cannot listen on {addr}: {e}"))?;
    let router = state.router.get().cloned().ok_or_else(|| anyhow::anyhow!("the server is not running yet"))?;
    let tls = state.tls_acceptor.get().cloned().flatten();
    let limits =
        state.connection_limits.get().cloned().ok_or_else(|| anyhow::anyhow!("the server is not running yet"))?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    state.private_listeners.lock().expect("listeners lock").insert(pe.record.id.to_ascii_lowercase(), tx);
    let kind = ListenerKind::PrivateEndpoint { endpoint_id: pe.record.id.clone(), registry_id };
    tracing::info!(endpoint = %pe.record.id, %addr, "private endpoint listening");
    tokio::spawn(async move {
        if let Err(e) = crate::listener::serve(listener, tls, kind, router, limits, rx).await {
            tracing::error!(error = %e, "private endpoint listener failed");
        }
    });
    Ok(())
}

/// Re-binds every stored endpoint's listener (at start-up).
pub async fn restore_all(state: &AppState) {
    let all = match private_endpoints(&*state.meta).await {
        Ok(all) => all,
        Err(e) => {
            tracing::error!(error = %e, "could not read the private endpoints to restore their listeners");
            return;
        }
    };
    for pe in all {
        if let Err(e) = start(state, &pe).await {
            tracing::error!(endpoint = %pe.record.id, error = %e, "could not restore a private endpoint listener");
        }
    }
}
