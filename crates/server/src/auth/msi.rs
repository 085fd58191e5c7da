//! The App-Service-style managed-identity endpoint (`GET /msi/token?resource=…&api-version=2019-08-01`
//! with `X-IDENTITY-HEADER`), through which a workload of a hosting resource gets tokens for
//! that resource's identities.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

pub async fn handle(state: &AppState, req: Request<Body>) -> Response {
    let _ = (state, req);
    (StatusCode::NOT_FOUND, "no managed identity endpoint is configured").into_response()
}
