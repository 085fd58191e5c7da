//! Wharf's HTTP server: wires the stores to the data plane (OCI distribution and ACR's
//! `/acr/v1`) and the ARM-shaped management API, and runs the listeners.
//!
//! Request routing is by path prefix; each plane parses its requests into typed endpoints
//! (`oci::Endpoint`, `arm::ArmEndpoint`) before doing anything else.
#![forbid(unsafe_code)]

pub mod arm;
pub mod bootstrap;
pub mod config;
pub mod gc;
pub mod oci;
pub mod state;

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

async fn route(State(state): State<Arc<AppState>>, req: Request<Body>) -> Response {
    let path = req.uri().path();
    if path == "/v2" || path.starts_with("/v2/") || path.starts_with("/acr/v1/") {
        oci::handle(state, req).await
    } else {
        arm::handle(state, req).await
    }
}

/// Runs `wharf serve` until SIGINT or SIGTERM.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = args.resolve()?;
    init_logging(&config.log);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let local = listener.local_addr()?;
    let state = bootstrap::open(config.clone(), local.port()).await?;
    tracing::info!(
        listen = %local,
        data_dir = %config.data_dir.display(),
        subscription = %state.subscription_id,
        "wharf is serving: management API at http://{local}/, registries at http://<name>.{}:{}/",
        config.domain,
        state.public_port
    );
    println!("wharf listening on http://{local} (subscription {})", state.subscription_id);
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
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown_signal()).await?;
    gc_task.abort();
    tracing::info!("wharf stopped");
    Ok(())
}

fn init_logging(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
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
