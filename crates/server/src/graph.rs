//! The Microsoft Graph subset that az and Wharf's CLI use to manage the directory:
//! users, applications and service principals under `/v1.0/`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::Request;
use axum::response::Response;

use crate::state::AppState;

pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Response {
    let _ = state;
    crate::arm::arm_error_response(&wharf_arm::ArmError::new(404, "Request_ResourceNotFound", format!("Resource '{}' does not exist.", req.uri().path())))
}
