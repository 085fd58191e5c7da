//! HTTP helpers every plane shares: query strings and forms that keep repeated keys, JSON
//! responses, the one reader of the `Authorization` header, and the OCI wire error (used by the
//! data plane and the registry token endpoints alike).
//!
//! Must never: import a plane, or decide anything about a request.

pub mod oci;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The pairs of a query string or an `application/x-www-form-urlencoded` body, in order, with
/// repeated keys kept (Docker clients send one `scope=` per scope).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// The query of a request URI (`None`: no query).
    pub fn parse(raw: Option<&str>) -> Query {
        raw.map(|q| Query::from_form(q.as_bytes())).unwrap_or_default()
    }

    pub fn from_form(body: &[u8]) -> Query {
        Query(url::form_urlencoded::parse(body).into_owned().collect())
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// The first value of `key`, or `""`.
    pub fn text(&self, key: &str) -> &str {
        self.get(key).unwrap_or("")
    }

    /// Every value of `key`, in order.
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0.iter().filter(move |(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Appends the pairs of `other` (a form body after the query).
    pub fn extend(&mut self, other: Query) {
        self.0.extend(other.0);
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, v: &Value) -> Response {
    (status, [(http::header::CONTENT_TYPE, "application/json; charset=utf-8")], v.to_string()).into_response()
}

/// What a request's `Authorization` header carries. Schemes compare case-insensitively.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authorization<'a> {
    None,
    /// `Bearer <token>` (the token trimmed).
    Bearer(&'a str),
    /// `Basic <base64>`: the whole header value, for `wharf_identity::parse_basic_authorization`.
    Basic(&'a str),
    /// Another scheme (refused by every door).
    Other,
    /// Not visible ASCII: refused, never ignored (fail closed).
    Unreadable,
}

/// Reads the `Authorization` header.
pub fn authorization(headers: &HeaderMap) -> Authorization<'_> {
    let Some(raw) = headers.get(http::header::AUTHORIZATION) else { return Authorization::None };
    let Ok(v) = raw.to_str() else { return Authorization::Unreadable };
    let scheme = |name: &str| v.len() >= name.len() && v[..name.len()].eq_ignore_ascii_case(name);
    if scheme("bearer ") {
        Authorization::Bearer(v[7..].trim())
    } else if scheme("basic ") {
        Authorization::Basic(v)
    } else {
        Authorization::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_keep_repeated_keys() {
        let q = Query::parse(Some("scope=repository%3Aa%3Apush&scope=repository:b:pull&service=x&n="));
        assert_eq!(q.all("scope").collect::<Vec<_>>(), ["repository:a:push", "repository:b:pull"]);
        assert_eq!(q.get("service"), Some("x"));
        assert_eq!(q.get("n"), Some(""));
        assert_eq!(q.get("last"), None);
        let mut q = Query::parse(None);
        q.extend(Query::from_form(b"grant_type=password&scope=a&scope=b"));
        assert_eq!(q.all("scope").count(), 2);
    }

    #[test]
    fn authorization_schemes() {
        let h = |v: &[u8]| {
            let mut m = HeaderMap::new();
            m.insert(http::header::AUTHORIZATION, http::HeaderValue::from_bytes(v).unwrap());
            m
        };
        assert_eq!(authorization(&HeaderMap::new()), Authorization::None);
        assert_eq!(authorization(&h(b"bearer  abc ")), Authorization::Bearer("abc"));
        assert_eq!(authorization(&h(b"BASIC eA==")), Authorization::Basic("BASIC eA=="));
        assert_eq!(authorization(&h(b"Digest x")), Authorization::Other);
        assert_eq!(authorization(&h(b"Bearer")), Authorization::Other);
        assert_eq!(authorization(&h(b"Bearer ")), Authorization::Bearer(""));
        assert_eq!(authorization(&h(b"Bearer \xff")), Authorization::Unreadable);
    }
}
