//! OCI distribution errors: the spec's codes and JSON body, mapped to HTTP in this one place.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wharf_storage::StorageError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// Not a spec code: a failure of Wharf itself (the body says so, and the log has details).
    Internal,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::Internal => "INTERNAL_ERROR",
        }
    }
}

#[derive(Debug)]
pub struct OciError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    pub detail: Option<Value>,
    pub headers: Vec<(HeaderName, String)>,
}

pub type OciResult<T> = Result<T, OciError>;

impl OciError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> OciError {
        OciError { status, code, message: message.into(), detail: None, headers: Vec::new() }
    }

    pub fn detail(mut self, detail: Value) -> OciError {
        self.detail = Some(detail);
        self
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> OciError {
        self.headers.push((name, value.into()));
        self
    }

    pub fn blob_unknown(digest: &impl std::fmt::Display) -> OciError {
        OciError::new(StatusCode::NOT_FOUND, Code::BlobUnknown, "blob unknown to registry")
            .detail(json!({"digest": digest.to_string()}))
    }

    pub fn upload_unknown() -> OciError {
        OciError::new(StatusCode::NOT_FOUND, Code::BlobUploadUnknown, "blob upload unknown to registry")
    }

    pub fn manifest_unknown(reference: &impl std::fmt::Display) -> OciError {
        OciError::new(StatusCode::NOT_FOUND, Code::ManifestUnknown, "manifest unknown")
            .detail(json!({"reference": reference.to_string()}))
    }

    pub fn name_unknown(name: &str) -> OciError {
        OciError::new(StatusCode::NOT_FOUND, Code::NameUnknown, "repository name not known to registry")
            .detail(json!({"name": name}))
    }

    pub fn name_invalid(message: impl Into<String>) -> OciError {
        OciError::new(StatusCode::BAD_REQUEST, Code::NameInvalid, message)
    }

    pub fn digest_invalid(message: impl Into<String>) -> OciError {
        OciError::new(StatusCode::BAD_REQUEST, Code::DigestInvalid, message)
    }

    pub fn unsupported(message: impl Into<String>) -> OciError {
        OciError::new(StatusCode::METHOD_NOT_ALLOWED, Code::Unsupported, message)
    }

    pub fn internal(context: &str, err: impl std::fmt::Display) -> OciError {
        tracing::error!(context, error = %err, "internal error");
        OciError::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, format!("internal error while {context}"))
    }

    /// Maps storage errors that have a protocol meaning; anything else is internal.
    pub fn from_storage(context: &str, err: StorageError) -> OciError {
        match err {
            StorageError::UploadUnknown => OciError::upload_unknown(),
            StorageError::UploadTooLarge => OciError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Code::SizeInvalid,
                "upload exceeds the registry's blob size limit",
            ),
            StorageError::DigestMismatch { expected, actual } => OciError::digest_invalid(format!(
                "provided digest {expected} does not match the content's digest {actual}"
            )),
            StorageError::UploadLimit { scope, limit } => {
                let (holder, setting) = match scope {
                    wharf_storage::UploadLimitScope::Registry => ("this registry holds", "--max-uploads-per-registry"),
                    wharf_storage::UploadLimitScope::Principal => ("you hold", "--max-uploads-per-principal"),
                };
                OciError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    Code::TooManyRequests,
                    format!(
                        "{holder} {limit} open upload sessions already, the limit ({setting} of the server): \
                         complete or cancel (DELETE) unfinished uploads, or wait until idle ones expire"
                    ),
                )
                .detail(json!({"limit": limit, "scope": scope}))
            }
            StorageError::ClientStream(e) => OciError::new(
                StatusCode::BAD_REQUEST,
                Code::BlobUploadInvalid,
                format!("the request body ended early or failed: {e}"),
            ),
            other => OciError::internal(context, other),
        }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let mut entry = json!({"code": self.code.as_str(), "message": self.message});
        if let Some(d) = self.detail {
            entry["detail"] = d;
        }
        let body = json!({"errors": [entry]}).to_string();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        for (name, value) in self.headers {
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(name, v);
            }
        }
        resp
    }
}
