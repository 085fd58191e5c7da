//! Wharf's HTTP server: wires the stores to the planes — the data plane (OCI distribution and
//! ACR's `/acr/v1`), the registry token endpoints, the ARM-shaped management API, the Graph
//! subset, the Entra-like issuer and the managed-identity endpoint — and runs the listeners.
//!
//! Layers, each importing only the ones above it (docs/architecture.md, "Layers"):
//!
//! 1. `config`, `listener`, `tls`, `login_server`: configuration and sockets.
//! 2. `model` (the stored objects, typed), `issuer` (keys, token issuers, revocations),
//!    `authz` (the assignment index), `network` (compiled policies, the gate), `admin_user`,
//!    `gc`, `run_queue` (the run executor's doorbell and engine): the domain glue below the
//!    state; none of them takes the state or a plane's error.
//! 3. `state`: what every request shares.
//! 4. `http` (queries, JSON, the `Authorization` header, the OCI wire error), `auth`
//!    (credentials and grants), `private_link` (private-endpoint listeners), `runs` (the task-run
//!    executor), `run_requests`, `triggers`, `sources`, `run_retention` (the sweep of old runs):
//!    shared by planes.
//! 5. The planes — `oci`, `tokens`, `arm` (with ACR Tasks), `graph`, `entra`, `msi`, `logs`
//!    (run logs as blobs), `source_upload` (build sources), `source_hooks` (source triggers'
//!    webhooks) — none of which imports another. Each parses its requests into a typed
//!    endpoint whose permission is a pure function of it (`Endpoint::operation`,
//!    `ArmEndpoint::requirement`, `GraphEndpoint::requirement`, `TaskEndpoint::action`,
//!    `LogEndpoint::permission`, `SourceEndpoint::permission`, `HookEndpoint::permission`).
//! 6. This file: the router and `serve`.
#![forbid(unsafe_code)]

pub mod admin;
pub mod admin_user;
pub mod arm;
pub mod auth;
pub mod authz;
pub mod bootstrap;
pub mod config;
pub mod entra;
pub mod gc;
pub mod graph;
pub mod http;
pub mod import;
pub mod import_operations;
pub mod issuer;
pub mod listener;
pub mod login_server;
pub mod logs;
pub mod model;
pub mod msi;
pub mod network;
pub mod oci;
pub mod private_link;
pub mod run_queue;
pub mod run_requests;
pub mod run_retention;
pub mod runs;
pub mod source_hooks;
pub mod source_upload;
pub mod sources;
pub mod state;
pub mod tls;
pub mod tokens;
pub mod triggers;
pub mod uploads_sweep;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::Request;
use axum::response::Response;

pub use config::{Config, ServeArgs};
pub use state::AppState;

/// The whole HTTP application.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(route).with_state(state)
}

/// Routes a request to its plane by path.
async fn route(State(state): State<Arc<AppState>>, mut req: Request<Body>) -> Response {
    collapse_leading_slashes(&mut req);
    let path = req.uri().path().to_string();
    if path == "/v2" || path.starts_with("/v2/") || path.starts_with("/acr/v1/") {
        return oci::handle(state, req).await;
    }
    if path == "/oauth2/exchange" || path == "/oauth2/token" {
        return tokens::handle(state, req).await;
    }
    if path.starts_with("/v1.0/") {
        return graph::handle(state, req).await;
    }
    if path == "/msi/token" {
        return msi::handle(&state, req).await;
    }
    if path.starts_with(logs::PREFIX) {
        return logs::handle(state, req).await;
    }
    if path.starts_with(source_upload::PREFIX) {
        return source_upload::handle(state, req).await;
    }
    if path.starts_with(source_hooks::PREFIX) {
        return source_hooks::handle(state, req).await;
    }
    if path == "/metadata/endpoints" {
        return arm::cloud_metadata(&state, req.headers());
    }
    if path.starts_with("/subscriptions") || path == "/tenants" {
        return arm::handle(state, req).await;
    }
    match entra::EntraEndpoint::parse(&path) {
        Some((tenant, endpoint)) => entra::handle(&state, &tenant, endpoint, req).await,
        None => arm::error::response(&wharf_arm::ArmError::not_found_path(&path)),
    }
}

/// az joins endpoint URLs that end in `/` with paths that start with one
/// (`https://host//metadata/endpoints`, `https://host//v1.0/users` for a Graph resource id
/// with a trailing slash); ARM and Graph accept that, so leading slashes collapse to one.
fn collapse_leading_slashes(req: &mut Request<Body>) {
    let uri = req.uri();
    if !uri.path().starts_with("//") {
        return;
    }
    let path_and_query = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let collapsed = format!("/{}", path_and_query.trim_start_matches('/'));
    let mut parts = uri.clone().into_parts();
    if let Ok(pq) = collapsed.parse() {
        parts.path_and_query = Some(pq);
        if let Ok(uri) = axum::http::Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

/// Runs `wharf serve` until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    init_logging(&config.log);
    let fd = listener::raise_fd_limit();
    let limits = Arc::new(listener::ConnectionLimits::new(config.connections, fd, config.trusted_proxies.clone()));
    tracing::info!(open_files = ?fd.soft, raised_from = ?fd.raised_from, max_connections = limits.max_total, "connection limits");
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr()?;
    let acceptor = match &config.tls {
        config::TlsMode::Off => None,
        config::TlsMode::Files { cert, key } => Some(tls::acceptor(cert, key)?),
        config::TlsMode::SelfSigned => {
            std::fs::create_dir_all(&config.data_dir)?;
            let paths = tls::self_signed(&config.data_dir, &config.domain, config.listen.ip())?;
            println!(
                "TLS: certificate signed by the local CA {}; trust it with e.g. export REQUESTS_CA_BUNDLE={}",
                paths.ca_cert.display(),
                paths.ca_cert.display()
            );
            Some(tls::self_signed_acceptor(&paths, &config.domain)?)
        }
    };
    let state = bootstrap::open(config.clone(), local.port()).await?;
    tracing::info!(
        listen = %local,
        data_dir = %config.data_dir.display(),
        subscription = %state.subscription_id,
        "wharf is serving: management API at {local}, registries at <name>.{}:{}",
        config.domain,
        state.public_port
    );
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    println!("wharf listening on {scheme}://{local} (subscription {})", state.subscription_id);
    let gc_state = state.clone();
    let gc_task = tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            tick.tick().await;
            if let Err(e) = gc::collect(&gc_state).await {
                tracing::warn!(error = %e, "periodic garbage collection failed");
            }
        }
    });
    let sweep_task = uploads_sweep::spawn(state.clone());
    let runs_task = runs::spawn(state.clone());
    let sources_task = sources::spawn(state.clone());
    let timers_task = triggers::timers::spawn(state.clone());
    let retention_task = run_retention::spawn(state.clone());
    let app = router(state.clone());
    let _ = state.router.set(app.clone());
    let _ = state.tls_acceptor.set(acceptor.clone());
    let _ = state.connection_limits.set(limits.clone());
    private_link::restore_all(&state).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop_tx.send(true);
    });
    listener::serve(listener, acceptor, listener::ListenerKind::Public, app, limits, stop_rx).await?;
    for (_, stop) in state.private_listeners.lock().expect("listeners lock").drain() {
        let _ = stop.send(true);
    }
    gc_task.abort();
    sweep_task.abort();
    runs_task.abort();
    sources_task.abort();
    timers_task.abort();
    if let Some(t) = retention_task {
        t.abort();
    }
    tracing::info!("wharf stopped");
    Ok(())
}

fn init_logging(filter: &str) {
    let filter =
        tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
