//! Turns a data-plane request (method + path) into a typed [`Endpoint`] before anything else
//! happens, and says what each endpoint needs: [`Endpoint::operation`] is the data plane's one
//! permission table (the token scope actions each operation accepts are `wharf-authz`'s
//! [`DataPlaneOperation::accepted_scope_actions`]). Handlers and authorization work on these
//! values, never on raw paths.
//!
//! Names here are as the client sees them: with the registry prefix in path style
//! (`myregistry/backend/nginx`). [`crate::oci::target`] resolves them to a registry and a
//! repository inside it.

use axum::http::Method;
use percent_encoding::percent_decode_str;
use wharf_authz::DataPlaneOperation;
use wharf_oci::{Digest, Reference, Tag};
use wharf_storage::UploadId;

use crate::http::oci::{Code, OciError, OciResult};

/// How many variants [`Endpoint`] has (the permission table test checks it covers them all).
#[cfg(test)]
const ENDPOINT_VARIANTS: usize = 28;

#[derive(Debug, Clone, PartialEq)]
pub enum Endpoint {
    Ping,
    Catalog,
    HeadBlob { name: String, digest: Digest },
    GetBlob { name: String, digest: Digest },
    DeleteBlob { name: String, digest: Digest },
    StartUpload { name: String },
    UploadStatus { name: String, id: UploadId },
    PatchUpload { name: String, id: UploadId },
    PutUpload { name: String, id: UploadId },
    CancelUpload { name: String, id: UploadId },
    GetManifest { name: String, reference: Reference },
    HeadManifest { name: String, reference: Reference },
    PutManifest { name: String, reference: Reference },
    DeleteManifest { name: String, reference: Reference },
    ListTags { name: String },
    ListReferrers { name: String, digest: Digest },
    AcrCatalog,
    AcrGetRepository { name: String },
    AcrPatchRepository { name: String },
    AcrDeleteRepository { name: String },
    AcrListTags { name: String },
    AcrGetTag { name: String, tag: Tag },
    AcrPatchTag { name: String, tag: Tag },
    AcrDeleteTag { name: String, tag: Tag },
    AcrListManifests { name: String },
    AcrGetManifest { name: String, reference: Reference },
    AcrPatchManifest { name: String, reference: Reference },
    AcrDeleteManifest { name: String, reference: Reference },
}

impl Endpoint {
    /// What the endpoint does, for authorization: the one data-plane permission table. `None`
    /// only for the ping, which any authenticated caller may make.
    pub fn operation(&self) -> Option<DataPlaneOperation> {
        use DataPlaneOperation as Op;
        use Endpoint::*;
        Some(match self {
            Ping => return None,
            Catalog | AcrCatalog => Op::Catalog,
            HeadBlob { .. } | GetBlob { .. } => Op::PullBlob,
            GetManifest { .. } | HeadManifest { .. } => Op::PullManifest,
            StartUpload { .. } | UploadStatus { .. } | PatchUpload { .. } | PutUpload { .. } | CancelUpload { .. } => {
                Op::PushBlob
            }
            PutManifest { .. } => Op::PushManifest,
            DeleteBlob { .. } => Op::DeleteBlob,
            DeleteManifest { reference: Reference::Digest(_), .. } | AcrDeleteManifest { .. } => Op::DeleteManifest,
            DeleteManifest { reference: Reference::Tag(_), .. } | AcrDeleteTag { .. } => Op::DeleteTag,
            AcrDeleteRepository { .. } => Op::DeleteRepository,
            ListTags { .. } => Op::ListTags,
            ListReferrers { .. } => Op::ListReferrers,
            AcrGetRepository { .. }
            | AcrListTags { .. }
            | AcrGetTag { .. }
            | AcrListManifests { .. }
            | AcrGetManifest { .. } => Op::ReadMetadata,
            AcrPatchRepository { .. } | AcrPatchTag { .. } | AcrPatchManifest { .. } => Op::WriteMetadata,
        })
    }

    /// The client-visible repository name the endpoint acts on, if any.
    pub fn name(&self) -> Option<&str> {
        use Endpoint::*;
        match self {
            Ping | Catalog | AcrCatalog => None,
            HeadBlob { name, .. }
            | GetBlob { name, .. }
            | DeleteBlob { name, .. }
            | StartUpload { name }
            | UploadStatus { name, .. }
            | PatchUpload { name, .. }
            | PutUpload { name, .. }
            | CancelUpload { name, .. }
            | GetManifest { name, .. }
            | HeadManifest { name, .. }
            | PutManifest { name, .. }
            | DeleteManifest { name, .. }
            | ListTags { name }
            | ListReferrers { name, .. }
            | AcrGetRepository { name }
            | AcrPatchRepository { name }
            | AcrDeleteRepository { name }
            | AcrListTags { name }
            | AcrGetTag { name, .. }
            | AcrPatchTag { name, .. }
            | AcrDeleteTag { name, .. }
            | AcrListManifests { name }
            | AcrGetManifest { name, .. }
            | AcrPatchManifest { name, .. }
            | AcrDeleteManifest { name, .. } => Some(name),
        }
    }

    /// Parses a request path (still percent-encoded, without the query) under `/v2` or `/acr/v1`.
    pub fn parse(method: &Method, path: &str) -> OciResult<Endpoint> {
        if let Some(rest) = path.strip_prefix("/v2") {
            parse_v2(method, rest)
        } else if let Some(rest) = path.strip_prefix("/acr/v1") {
            parse_acr(method, rest)
        } else {
            Err(not_found_route())
        }
    }
}

fn not_found_route() -> OciError {
    OciError::new(Code::RouteUnknown, "no registry API is served at this path")
}

fn method_not_allowed(method: &Method) -> OciError {
    OciError::method_not_allowed(format!("method {method} is not supported on this endpoint"))
}

/// Decodes the path's segments, one per raw `/`-separated segment. A segment may decode to
/// something containing `/` (the Azure SDKs send a nested repository name as one encoded
/// segment, `team%2Fsvc%2Fapi`, and ACR and distribution read it as the nested name): such a
/// segment can only be part of a name, never an endpoint keyword (`blobs`, `manifests`,
/// `_tags` …), which must match a whole segment — so encoded separators cannot change which
/// endpoint a path is. Control characters are refused.
fn segments(path: &str) -> OciResult<Vec<String>> {
    path.split('/')
        .map(|raw| {
            let decoded = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| OciError::name_invalid("path segment is not valid UTF-8"))?;
            if decoded.chars().any(char::is_control) {
                return Err(OciError::name_invalid(format!("invalid path segment '{raw}'")));
            }
            Ok(decoded.into_owned())
        })
        .collect()
}

fn upload_id(raw: &str) -> OciResult<UploadId> {
    UploadId::parse(raw).ok_or_else(OciError::upload_unknown)
}

/// The name the segments spell (a segment may hold encoded separators, see [`segments`]).
fn join_name(parts: &[String]) -> OciResult<String> {
    let name = parts.join("/");
    if parts.is_empty() || name.split('/').any(str::is_empty) {
        return Err(OciError::name_invalid("repository name has an empty path component"));
    }
    Ok(name)
}

fn digest(s: &str) -> OciResult<Digest> {
    Digest::parse(s).map_err(|e| OciError::digest_invalid(format!("invalid digest '{s}': {e}")))
}

/// A manifest reference, with the error a bad one deserves for this method.
fn reference(method: &Method, s: &str) -> OciResult<Reference> {
    Reference::parse(s).map_err(|e| {
        if s.contains(':') {
            OciError::digest_invalid(e.to_string())
        } else if method == Method::PUT {
            OciError::new(Code::ManifestInvalid, e.to_string())
        } else {
            OciError::manifest_unknown(&s)
        }
    })
}

fn tag(method: &Method, s: &str) -> OciResult<Tag> {
    Tag::parse(s).map_err(|e| {
        if method == Method::GET || method == Method::HEAD || method == Method::DELETE {
            OciError::manifest_unknown(&s)
        } else {
            OciError::new(Code::ManifestInvalid, e.to_string())
        }
    })
}

fn parse_v2(method: &Method, rest: &str) -> OciResult<Endpoint> {
    if rest.is_empty() || rest == "/" {
        return match *method {
            Method::GET | Method::HEAD => Ok(Endpoint::Ping),
            _ => Err(method_not_allowed(method)),
        };
    }
    let Some(rest) = rest.strip_prefix('/') else { return Err(not_found_route()) };
    let segs = segments(rest)?;
    let n = segs.len();
    if n == 1 && segs[0] == "_catalog" {
        return match *method {
            Method::GET => Ok(Endpoint::Catalog),
            _ => Err(method_not_allowed(method)),
        };
    }
    // Upload start: <name>/blobs/uploads/ (trailing slash optional).
    let upload_start = if n >= 3 && segs[n - 1].is_empty() && segs[n - 2] == "uploads" && segs[n - 3] == "blobs" {
        Some(n - 3)
    } else if n >= 3 && segs[n - 1] == "uploads" && segs[n - 2] == "blobs" {
        Some(n - 2)
    } else {
        None
    };
    if let Some(end) = upload_start {
        let name = join_name(&segs[..end])?;
        return match *method {
            Method::POST => Ok(Endpoint::StartUpload { name }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if n >= 4 && segs[n - 3] == "blobs" && segs[n - 2] == "uploads" {
        let name = join_name(&segs[..n - 3])?;
        let id = upload_id(&segs[n - 1])?;
        return match *method {
            Method::GET => Ok(Endpoint::UploadStatus { name, id }),
            Method::PATCH => Ok(Endpoint::PatchUpload { name, id }),
            Method::PUT => Ok(Endpoint::PutUpload { name, id }),
            Method::DELETE => Ok(Endpoint::CancelUpload { name, id }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if n >= 3 && segs[n - 2] == "tags" && segs[n - 1] == "list" {
        let name = join_name(&segs[..n - 2])?;
        return match *method {
            Method::GET => Ok(Endpoint::ListTags { name }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if n >= 3 {
        let name = || join_name(&segs[..n - 2]);
        let last = &segs[n - 1];
        match segs[n - 2].as_str() {
            "blobs" => {
                let (name, digest) = (name()?, digest(last)?);
                return match *method {
                    Method::HEAD => Ok(Endpoint::HeadBlob { name, digest }),
                    Method::GET => Ok(Endpoint::GetBlob { name, digest }),
                    Method::DELETE => Ok(Endpoint::DeleteBlob { name, digest }),
                    _ => Err(method_not_allowed(method)),
                };
            }
            "manifests" => {
                let (name, reference) = (name()?, reference(method, last)?);
                return match *method {
                    Method::GET => Ok(Endpoint::GetManifest { name, reference }),
                    Method::HEAD => Ok(Endpoint::HeadManifest { name, reference }),
                    Method::PUT => Ok(Endpoint::PutManifest { name, reference }),
                    Method::DELETE => Ok(Endpoint::DeleteManifest { name, reference }),
                    _ => Err(method_not_allowed(method)),
                };
            }
            "referrers" => {
                let (name, digest) = (name()?, digest(last)?);
                return match *method {
                    Method::GET => Ok(Endpoint::ListReferrers { name, digest }),
                    _ => Err(method_not_allowed(method)),
                };
            }
            _ => {}
        }
    }
    Err(not_found_route())
}

fn parse_acr(method: &Method, rest: &str) -> OciResult<Endpoint> {
    let Some(rest) = rest.strip_prefix('/') else { return Err(not_found_route()) };
    // ACR's soft-delete API (`az acr manifest list-deleted`, `restore`) addresses
    // `/acr/v1/_deleted/{name}/…`; Wharf keeps no deleted manifests yet.
    if rest == "_deleted" || rest.starts_with("_deleted/") {
        return Err(OciError::unsupported(
            "soft delete is not available in this version of Wharf: deleted manifests are not kept, so there is nothing to list or restore",
        ));
    }
    let segs = segments(rest)?;
    let n = segs.len();
    if n == 1 && segs[0] == "_catalog" {
        return match *method {
            Method::GET => Ok(Endpoint::AcrCatalog),
            _ => Err(method_not_allowed(method)),
        };
    }
    if n >= 2 && segs[n - 1] == "_tags" {
        let name = join_name(&segs[..n - 1])?;
        return match *method {
            Method::GET => Ok(Endpoint::AcrListTags { name }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if n >= 2 && segs[n - 1] == "_manifests" {
        let name = join_name(&segs[..n - 1])?;
        return match *method {
            Method::GET => Ok(Endpoint::AcrListManifests { name }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if n >= 3 && segs[n - 2] == "_tags" {
        let name = join_name(&segs[..n - 2])?;
        let tag = tag(method, &segs[n - 1])?;
        return match *method {
            Method::GET => Ok(Endpoint::AcrGetTag { name, tag }),
            Method::PATCH => Ok(Endpoint::AcrPatchTag { name, tag }),
            Method::DELETE => Ok(Endpoint::AcrDeleteTag { name, tag }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if n >= 3 && segs[n - 2] == "_manifests" {
        let name = join_name(&segs[..n - 2])?;
        let reference = reference(method, &segs[n - 1])?;
        return match *method {
            Method::GET => Ok(Endpoint::AcrGetManifest { name, reference }),
            Method::PATCH => Ok(Endpoint::AcrPatchManifest { name, reference }),
            Method::DELETE => Ok(Endpoint::AcrDeleteManifest { name, reference }),
            _ => Err(method_not_allowed(method)),
        };
    }
    if n >= 1 && !segs[0].starts_with('_') {
        let name = join_name(&segs)?;
        return match *method {
            Method::GET => Ok(Endpoint::AcrGetRepository { name }),
            Method::PATCH => Ok(Endpoint::AcrPatchRepository { name }),
            Method::DELETE => Ok(Endpoint::AcrDeleteRepository { name }),
            _ => Err(method_not_allowed(method)),
        };
    }
    Err(not_found_route())
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn p(m: Method, path: &str) -> OciResult<Endpoint> {
        Endpoint::parse(&m, path)
    }

    #[test]
    fn parses_the_distribution_routes() {
        assert_eq!(p(Method::GET, "/v2/").unwrap(), Endpoint::Ping);
        assert_eq!(p(Method::GET, "/v2/_catalog").unwrap(), Endpoint::Catalog);
        assert!(
            matches!(p(Method::POST, "/v2/a/b/blobs/uploads/").unwrap(), Endpoint::StartUpload { name } if name == "a/b")
        );
        let id = "6f1f3a2e-0b4c-4c1e-9c57-3b8e0f0f6a11";
        assert!(
            matches!(p(Method::PATCH, &format!("/v2/a/blobs/uploads/{id}")).unwrap(), Endpoint::PatchUpload { id: u, .. } if u.to_string() == id)
        );
        assert_eq!(p(Method::PATCH, "/v2/a/blobs/uploads/x").unwrap_err().code, Code::BlobUploadUnknown);
        assert!(matches!(p(Method::GET, &format!("/v2/a/blobs/{D}")).unwrap(), Endpoint::GetBlob { .. }));
        assert!(
            matches!(p(Method::GET, &format!("/v2/blobs/blobs/uploads/{id}")).unwrap(), Endpoint::UploadStatus { name, .. } if name == "blobs")
        );
        assert!(matches!(p(Method::PUT, "/v2/a/manifests/v1").unwrap(), Endpoint::PutManifest { .. }));
        assert!(matches!(p(Method::GET, "/v2/tags/tags/list").unwrap(), Endpoint::ListTags { name } if name == "tags"));
        assert!(matches!(p(Method::GET, &format!("/v2/a/referrers/{D}")).unwrap(), Endpoint::ListReferrers { .. }));
        let encoded = D.replace(':', "%3A");
        assert!(matches!(
            p(Method::HEAD, &format!("/v2/a/manifests/{encoded}")).unwrap(),
            Endpoint::HeadManifest { .. }
        ));
    }

    #[test]
    fn errors_carry_the_spec_codes() {
        assert_eq!(p(Method::GET, "/v2/a/blobs/sha256:zz").unwrap_err().code, Code::DigestInvalid);
        assert_eq!(p(Method::GET, "/v2/a/manifests/-bad").unwrap_err().code, Code::ManifestUnknown);
        assert_eq!(p(Method::PUT, "/v2/a/manifests/-bad").unwrap_err().code, Code::ManifestInvalid);
        assert!(matches!(p(Method::GET, "/v2/a%2Fb/tags/list").unwrap(), Endpoint::ListTags { name } if name == "a/b"));
        // An encoded separator never makes a keyword: this is a name, not a manifest route.
        assert!(
            matches!(p(Method::GET, "/v2/a%2Fmanifests%2Fv1/tags/list").unwrap(), Endpoint::ListTags { name } if name == "a/manifests/v1")
        );
        assert_eq!(p(Method::GET, "/v2/a/b%2Fmanifests%2Fv1").unwrap_err().status(), http::StatusCode::NOT_FOUND);
        assert_eq!(p(Method::GET, "/v2/a//b/tags/list").unwrap_err().code, Code::NameInvalid);
        assert_eq!(p(Method::POST, "/v2/a/manifests/v1").unwrap_err().code, Code::MethodNotAllowed);
        assert_eq!(p(Method::GET, "/v2/nothing").unwrap_err().status(), http::StatusCode::NOT_FOUND);
    }

    #[test]
    fn parses_acr_routes() {
        assert_eq!(p(Method::GET, "/acr/v1/_catalog").unwrap(), Endpoint::AcrCatalog);
        assert_eq!(p(Method::GET, "/acr/v1/_deleted/app/_manifests").unwrap_err().code, Code::Unsupported);
        assert!(
            matches!(p(Method::GET, "/acr/v1/a/b/_tags").unwrap(), Endpoint::AcrListTags { name } if name == "a/b")
        );
        assert!(matches!(p(Method::PATCH, "/acr/v1/a/_tags/v1").unwrap(), Endpoint::AcrPatchTag { .. }));
        assert!(matches!(
            p(Method::GET, &format!("/acr/v1/a/_manifests/{D}")).unwrap(),
            Endpoint::AcrGetManifest { .. }
        ));
        assert!(
            matches!(p(Method::DELETE, "/acr/v1/a/b").unwrap(), Endpoint::AcrDeleteRepository { name } if name == "a/b")
        );
        // The Azure SDKs encode nested names as one segment; ACR reads them as nested.
        assert!(
            matches!(p(Method::GET, "/acr/v1/team%2Fsvc%2Fapi/_tags").unwrap(), Endpoint::AcrListTags { name } if name == "team/svc/api")
        );
        assert!(
            matches!(p(Method::PATCH, "/acr/v1/svc%2fapi/_tags/v1").unwrap(), Endpoint::AcrPatchTag { name, .. } if name == "svc/api")
        );
        assert!(
            matches!(p(Method::DELETE, &format!("/acr/v1/svc%2Fapi/_manifests/{D}")).unwrap(), Endpoint::AcrDeleteManifest { name, .. } if name == "svc/api")
        );
        assert_eq!(p(Method::GET, "/acr/v1/a%2F%2Fb/_tags").unwrap_err().code, Code::NameInvalid);
        assert_eq!(p(Method::GET, "/acr/v1/a%00b/_tags").unwrap_err().code, Code::NameInvalid);
        // OCI paths keep refusing encoded separators.
        assert!(matches!(p(Method::GET, "/v2/a%2Fb/tags/list").unwrap(), Endpoint::ListTags { name } if name == "a/b"));
        // An encoded separator never makes a keyword: this is a name, not a manifest route.
        assert!(
            matches!(p(Method::GET, "/v2/a%2Fmanifests%2Fv1/tags/list").unwrap(), Endpoint::ListTags { name } if name == "a/manifests/v1")
        );
        assert_eq!(p(Method::GET, "/v2/a/b%2Fmanifests%2Fv1").unwrap_err().status(), http::StatusCode::NOT_FOUND);
    }

    /// Every endpoint and its operation: the data plane's permission table (in the style of
    /// garage's router tests; an endpoint added without a row fails to compile in `operation`
    /// and fails the variant count here).
    #[test]
    fn every_endpoint_has_its_operation() {
        use DataPlaneOperation as Op;
        let id = "6f1f3a2e-0b4c-4c1e-9c57-3b8e0f0f6a11";
        let table: Vec<(Method, String, Option<Op>)> = vec![
            (Method::GET, "/v2/".into(), None),
            (Method::GET, "/v2/_catalog".into(), Some(Op::Catalog)),
            (Method::HEAD, format!("/v2/a/b/blobs/{D}"), Some(Op::PullBlob)),
            (Method::GET, format!("/v2/a/b/blobs/{D}"), Some(Op::PullBlob)),
            (Method::DELETE, format!("/v2/a/b/blobs/{D}"), Some(Op::DeleteBlob)),
            (Method::POST, "/v2/a/b/blobs/uploads/".into(), Some(Op::PushBlob)),
            (Method::GET, format!("/v2/a/b/blobs/uploads/{id}"), Some(Op::PushBlob)),
            (Method::PATCH, format!("/v2/a/b/blobs/uploads/{id}"), Some(Op::PushBlob)),
            (Method::PUT, format!("/v2/a/b/blobs/uploads/{id}"), Some(Op::PushBlob)),
            (Method::DELETE, format!("/v2/a/b/blobs/uploads/{id}"), Some(Op::PushBlob)),
            (Method::GET, "/v2/a/b/manifests/v1".into(), Some(Op::PullManifest)),
            (Method::HEAD, format!("/v2/a/b/manifests/{D}"), Some(Op::PullManifest)),
            (Method::PUT, "/v2/a/b/manifests/v1".into(), Some(Op::PushManifest)),
            (Method::DELETE, format!("/v2/a/b/manifests/{D}"), Some(Op::DeleteManifest)),
            (Method::DELETE, "/v2/a/b/manifests/v1".into(), Some(Op::DeleteTag)),
            (Method::GET, "/v2/a/b/tags/list".into(), Some(Op::ListTags)),
            (Method::GET, format!("/v2/a/b/referrers/{D}"), Some(Op::ListReferrers)),
            (Method::GET, "/acr/v1/_catalog".into(), Some(Op::Catalog)),
            (Method::GET, "/acr/v1/a/b".into(), Some(Op::ReadMetadata)),
            (Method::PATCH, "/acr/v1/a/b".into(), Some(Op::WriteMetadata)),
            (Method::DELETE, "/acr/v1/a/b".into(), Some(Op::DeleteRepository)),
            (Method::GET, "/acr/v1/a/b/_tags".into(), Some(Op::ReadMetadata)),
            (Method::GET, "/acr/v1/a/b/_tags/v1".into(), Some(Op::ReadMetadata)),
            (Method::PATCH, "/acr/v1/a/b/_tags/v1".into(), Some(Op::WriteMetadata)),
            (Method::DELETE, "/acr/v1/a/b/_tags/v1".into(), Some(Op::DeleteTag)),
            (Method::GET, "/acr/v1/a/b/_manifests".into(), Some(Op::ReadMetadata)),
            (Method::GET, format!("/acr/v1/a/b/_manifests/{D}"), Some(Op::ReadMetadata)),
            (Method::PATCH, format!("/acr/v1/a/b/_manifests/{D}"), Some(Op::WriteMetadata)),
            (Method::DELETE, format!("/acr/v1/a/b/_manifests/{D}"), Some(Op::DeleteManifest)),
        ];
        let mut variants = std::collections::HashSet::new();
        for (method, path, expected) in &table {
            let endpoint = p(method.clone(), path).unwrap_or_else(|e| panic!("{method} {path}: {e:?}"));
            assert_eq!(endpoint.operation(), *expected, "{method} {path}");
            variants.insert(std::mem::discriminant(&endpoint));
        }
        assert_eq!(variants.len(), ENDPOINT_VARIANTS, "every Endpoint variant appears in the table");
    }
}
