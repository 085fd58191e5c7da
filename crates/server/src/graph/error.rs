//! Graph's wire errors, `{"error":{"code","message","innerError"}}`, whose status follows from
//! the code.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::management::AuthError;

/// Graph's error codes, each with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GraphCode {
    ResourceNotFound,
    BadRequest,
    /// A path Graph serves nothing at.
    SegmentNotFound,
    MethodNotAllowed,
    Denied,
    /// An object with the same unique key exists.
    SameKeyExists,
    InvalidAuthenticationToken,
    Unavailable,
    Internal,
}

impl GraphCode {
    fn wire(self) -> &'static str {
        match self {
            GraphCode::ResourceNotFound => "Request_ResourceNotFound",
            GraphCode::BadRequest | GraphCode::MethodNotAllowed => "Request_BadRequest",
            GraphCode::SegmentNotFound => "BadRequest",
            GraphCode::Denied => "Authorization_RequestDenied",
            GraphCode::SameKeyExists => "Request_MultipleObjectsWithSameKeyValue",
            GraphCode::InvalidAuthenticationToken => "InvalidAuthenticationToken",
            GraphCode::Unavailable => "ServiceNotAvailable",
            GraphCode::Internal => "InternalServerError",
        }
    }

    fn status(self) -> StatusCode {
        match self {
            GraphCode::ResourceNotFound => StatusCode::NOT_FOUND,
            GraphCode::BadRequest | GraphCode::SegmentNotFound => StatusCode::BAD_REQUEST,
            GraphCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            GraphCode::Denied => StatusCode::FORBIDDEN,
            GraphCode::SameKeyExists => StatusCode::CONFLICT,
            GraphCode::InvalidAuthenticationToken => StatusCode::UNAUTHORIZED,
            GraphCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            GraphCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug, Clone)]
pub struct GraphError {
    pub code: GraphCode,
    pub message: String,
}

pub type GraphResult<T> = Result<T, GraphError>;

impl GraphError {
    pub fn new(code: GraphCode, message: impl Into<String>) -> GraphError {
        GraphError { code, message: message.into() }
    }

    pub fn not_found(what: &str) -> GraphError {
        GraphError::new(
            GraphCode::ResourceNotFound,
            format!(
                "Resource '{what}' does not exist or one of its queried reference-property objects are not present."
            ),
        )
    }

    pub fn bad_request(message: impl Into<String>) -> GraphError {
        GraphError::new(GraphCode::BadRequest, message)
    }

    pub fn denied(message: impl Into<String>) -> GraphError {
        GraphError::new(GraphCode::Denied, message)
    }

    pub fn method_not_allowed(method: &http::Method) -> GraphError {
        GraphError::new(
            GraphCode::MethodNotAllowed,
            format!("The method '{method}' is not supported on this resource."),
        )
    }

    /// A storage failure while doing `context`: 503 when the store is unavailable (retry),
    /// else 500; the detail stays in the log.
    pub fn storage(context: &str, e: wharf_storage::StorageError) -> GraphError {
        tracing::error!(context, error = %e, "directory storage failure");
        match e {
            wharf_storage::StorageError::Unavailable(_) => GraphError::new(
                GraphCode::Unavailable,
                format!("The directory is unavailable while {context}; retry later."),
            ),
            _ => GraphError::new(GraphCode::Internal, format!("Internal error while {context}.")),
        }
    }

    /// The 401 of a refused bearer token (every refusal gets the same message class).
    pub fn unauthenticated(e: AuthError) -> GraphError {
        let message = match e {
            AuthError::Missing => "Authentication failed. The 'Authorization' header is missing.",
            AuthError::Malformed => {
                "Authentication failed. The 'Authorization' header is provided in an invalid format."
            }
            AuthError::Invalid => "The access token is invalid.",
        };
        GraphError::new(GraphCode::InvalidAuthenticationToken, message)
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code.wire(),
            "message": self.message,
            "innerError": {"date": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true), "request-id": uuid::Uuid::new_v4().to_string()},
        }});
        let mut resp =
            (self.code.status(), [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], body.to_string())
                .into_response();
        if self.code == GraphCode::InvalidAuthenticationToken {
            resp.headers_mut().insert(http::header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
