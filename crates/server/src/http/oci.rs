//! OCI distribution errors: the spec's codes and JSON body (`{"errors":[{code, message,
//! detail}]}`), the one place they become HTTP. Every error's status follows from its [`Code`];
//! call sites never choose one.
//!
//! Used by the data plane and by the registry token endpoints, whose errors ACR gives in the
//! same shape. A network denial is ACR's firewall's body byte for byte (apostrophes written
//! `\u0027`, as that component writes them).

use std::net::IpAddr;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use wharf_storage::StorageError;

/// The header every data-plane and token-endpoint answer carries.
pub const API_VERSION_HEADER: &str = "docker-distribution-api-version";

/// What went wrong, as precisely as the status needs: several kinds share one wire code (the
/// spec's codes do not say which status to send).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    /// A chunk the session cannot take (malformed, ended early).
    BlobUploadInvalid,
    /// A chunk that does not start where the session ends (416, with the session's range).
    BlobUploadRangeInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    /// A manifest over the size limit.
    ManifestTooLarge,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    /// A size that does not add up (`Content-Length`).
    SizeInvalid,
    /// An upload past the configured blob size limit.
    BlobTooLarge,
    /// A `Range` outside the blob.
    RangeNotSatisfiable,
    /// Authentication required (with the `WWW-Authenticate` challenge).
    Unauthorized,
    /// A token request that is malformed (`/oauth2/*`: ACR answers these 400 `UNAUTHORIZED`).
    TokenRequestInvalid,
    /// Refused: network rules, locks, quotas of the caller.
    Denied,
    /// A request Wharf cannot serve as sent (bad parameters).
    Unsupported,
    /// The method is not served on this path.
    MethodNotAllowed,
    /// No registry API at this path.
    RouteUnknown,
    /// A request body over its limit (token requests, attribute updates).
    RequestTooLarge,
    TooManyRequests,
    /// The store failed for a moment (a retry may succeed).
    Unavailable,
    /// Not a spec code: a failure of Wharf itself (the body says so, the log has details).
    Internal,
}

impl Code {
    /// The code the body carries.
    pub fn wire(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid | Code::BlobUploadRangeInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid | Code::ManifestTooLarge => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid | Code::BlobTooLarge | Code::RangeNotSatisfiable => "SIZE_INVALID",
            Code::Unauthorized | Code::TokenRequestInvalid => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported | Code::MethodNotAllowed | Code::RouteUnknown | Code::RequestTooLarge => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::Unavailable => "UNAVAILABLE",
            Code::Internal => "INTERNAL_ERROR",
        }
    }

    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown
            | Code::RouteUnknown => StatusCode::NOT_FOUND,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid
            | Code::TokenRequestInvalid
            | Code::Unsupported => StatusCode::BAD_REQUEST,
            Code::BlobUploadRangeInvalid | Code::RangeNotSatisfiable => StatusCode::RANGE_NOT_SATISFIABLE,
            Code::ManifestTooLarge | Code::BlobTooLarge | Code::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Code::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Debug)]
pub struct OciError {
    pub code: Code,
    pub message: String,
    /// Boxed: most errors carry none, and every `Result` of the plane carries the error's size.
    pub detail: Option<Box<Value>>,
    pub headers: Vec<(HeaderName, String)>,
    /// Written as ACR's firewall writes its denials.
    firewall: bool,
}

pub type OciResult<T> = Result<T, OciError>;

impl OciError {
    pub fn new(code: Code, message: impl Into<String>) -> OciError {
        OciError { code, message: message.into(), detail: None, headers: Vec::new(), firewall: false }
    }

    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    pub fn detail(mut self, detail: Value) -> OciError {
        self.detail = Some(Box::new(detail));
        self
    }

    pub fn header(mut self, name: HeaderName, value: impl Into<String>) -> OciError {
        self.headers.push((name, value.into()));
        self
    }

    pub fn blob_unknown(digest: &impl std::fmt::Display) -> OciError {
        OciError::new(Code::BlobUnknown, "blob unknown to registry").detail(json!({"digest": digest.to_string()}))
    }

    pub fn upload_unknown() -> OciError {
        OciError::new(Code::BlobUploadUnknown, "blob upload unknown to registry")
    }

    pub fn manifest_unknown(reference: &impl std::fmt::Display) -> OciError {
        OciError::new(Code::ManifestUnknown, "manifest unknown").detail(json!({"reference": reference.to_string()}))
    }

    pub fn name_unknown(name: &str) -> OciError {
        OciError::new(Code::NameUnknown, "repository name not known to registry").detail(json!({"name": name}))
    }

    pub fn registry_unknown(name: &str) -> OciError {
        OciError::new(Code::NameUnknown, format!("registry '{name}' does not exist")).detail(json!({"registry": name}))
    }

    pub fn name_invalid(message: impl Into<String>) -> OciError {
        OciError::new(Code::NameInvalid, message)
    }

    pub fn digest_invalid(message: impl Into<String>) -> OciError {
        OciError::new(Code::DigestInvalid, message)
    }

    pub fn unsupported(message: impl Into<String>) -> OciError {
        OciError::new(Code::Unsupported, message)
    }

    pub fn method_not_allowed(message: impl Into<String>) -> OciError {
        OciError::new(Code::MethodNotAllowed, message)
    }

    /// ACR's 403 for a request the registry's network rules refuse, naming the client address.
    pub fn network_denied(client_ip: IpAddr) -> OciError {
        OciError { firewall: true, ..OciError::new(Code::Denied, wharf_netrules::deny_message(client_ip)) }
    }

    /// A failure of Wharf itself: logged with `err`, answered without it.
    pub fn internal(context: &str, err: impl std::fmt::Display) -> OciError {
        tracing::error!(context, error = %err, "internal error");
        OciError::new(Code::Internal, format!("internal error while {context}"))
    }

    /// Maps storage errors that have a protocol meaning; a store that is unavailable is a 503
    /// (retry), anything else internal.
    pub fn from_storage(context: &str, err: StorageError) -> OciError {
        match err {
            StorageError::UploadUnknown => OciError::upload_unknown(),
            StorageError::UploadTooLarge => {
                OciError::new(Code::BlobTooLarge, "upload exceeds the registry's blob size limit")
            }
            StorageError::DigestMismatch { expected, actual } => OciError::digest_invalid(format!(
                "provided digest {expected} does not match the content's digest {actual}"
            )),
            StorageError::UploadLimit { scope, limit } => {
                let (holder, setting) = match scope {
                    wharf_storage::UploadLimitScope::Registry => ("this registry holds", "--max-uploads-per-registry"),
                    wharf_storage::UploadLimitScope::Principal => ("you hold", "--max-uploads-per-principal"),
                };
                OciError::new(
                    Code::TooManyRequests,
                    format!(
                        "{holder} {limit} open upload sessions already, the limit ({setting} of the server): \
                         complete or cancel (DELETE) unfinished uploads, or wait until idle ones expire"
                    ),
                )
                .detail(json!({"limit": limit, "scope": scope}))
            }
            StorageError::ClientStream(e) => {
                OciError::new(Code::BlobUploadInvalid, format!("the request body ended early or failed: {e}"))
            }
            StorageError::Unavailable(e) => {
                tracing::error!(context, error = %e, "the store is unavailable");
                OciError::new(
                    Code::Unavailable,
                    format!("the registry's store is unavailable while {context}; retry later"),
                )
            }
            other => OciError::internal(context, other),
        }
    }

    /// The JSON body, as sent.
    pub fn body(&self) -> String {
        let mut entry = json!({"code": self.code.wire(), "message": self.message});
        if let Some(d) = &self.detail {
            entry["detail"] = (**d).clone();
        }
        let body = json!({"errors": [entry]}).to_string();
        if self.firewall { body.replace('\'', "\\u0027") } else { body }
    }
}

impl IntoResponse for OciError {
    fn into_response(self) -> Response {
        let mut resp = (self.status(), self.body()).into_response();
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

impl From<crate::network::Denied> for OciError {
    fn from(d: crate::network::Denied) -> OciError {
        OciError::network_denied(d.client_ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_denials_are_acrs_bytes() {
        let e = OciError::network_denied("203.0.113.9".parse().unwrap());
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        assert_eq!(
            e.body(),
            r#"{"errors":[{"code":"DENIED","message":"client with IP \u0027203.0.113.9\u0027 is not allowed access. Refer https://aka.ms/acr/firewall to grant access."}]}"#
        );
        let parsed: Value =
            serde_json::from_str(&OciError::network_denied("::ffff:192.0.2.4".parse().unwrap()).body()).unwrap();
        assert_eq!(
            parsed["errors"][0]["message"],
            "client with IP '192.0.2.4' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."
        );
    }

    #[test]
    fn statuses_follow_codes() {
        assert_eq!(OciError::upload_unknown().status(), StatusCode::NOT_FOUND);
        assert_eq!(OciError::from_storage("x", StorageError::UploadTooLarge).status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            OciError::from_storage("x", StorageError::Unavailable("pool timed out".into())).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(Code::BlobUploadRangeInvalid.wire(), Code::BlobUploadInvalid.wire());
        assert_eq!(OciError::new(Code::TokenRequestInvalid, "m").status(), StatusCode::BAD_REQUEST);
    }
}
