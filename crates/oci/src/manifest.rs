//! Manifest parsing and structural validation.
//!
//! A pushed manifest is parsed once, here, into a `Manifest` value that lists everything it
//! references (config, layers, child manifests, subject). Whether those references exist is the
//! storage layer's question; this module only decides whether the document itself is valid.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::digest::Digest;
use crate::media_type::{self, essence};

/// Manifests larger than this are refused (`MANIFEST_INVALID`, 413 at the HTTP layer).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    OciImage,
    OciIndex,
    DockerImage,
    DockerList,
}

impl ManifestKind {
    pub fn media_type(self) -> &'static str {
        match self {
            ManifestKind::OciImage => media_type::OCI_MANIFEST,
            ManifestKind::OciIndex => media_type::OCI_INDEX,
            ManifestKind::DockerImage => media_type::DOCKER_MANIFEST,
            ManifestKind::DockerList => media_type::DOCKER_MANIFEST_LIST,
        }
    }

    pub fn from_media_type(mt: &str) -> Option<ManifestKind> {
        match essence(mt).as_str() {
            media_type::OCI_MANIFEST => Some(ManifestKind::OciImage),
            media_type::OCI_INDEX => Some(ManifestKind::OciIndex),
            media_type::DOCKER_MANIFEST => Some(ManifestKind::DockerImage),
            media_type::DOCKER_MANIFEST_LIST => Some(ManifestKind::DockerList),
            _ => None,
        }
    }

    pub fn is_index(self) -> bool {
        matches!(self, ManifestKind::OciIndex | ManifestKind::DockerList)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge,
    #[error("manifest is not valid JSON: {0}")]
    Json(String),
    #[error("manifest must be a JSON object")]
    NotAnObject,
    #[error("unsupported manifest media type '{0}'")]
    UnsupportedMediaType(String),
    #[error("manifest mediaType '{field}' does not match Content-Type '{header}'")]
    MediaTypeMismatch { field: String, header: String },
    #[error("schemaVersion must be 2")]
    SchemaVersion,
    #[error("invalid field '{field}': {reason}")]
    Field { field: String, reason: String },
}

/// A content descriptor as it appears in manifests and in the referrers index.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<Value>,
}

/// A parsed, structurally valid manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub kind: ManifestKind,
    /// Config descriptor (image manifests only).
    pub config: Option<Descriptor>,
    /// Layers (image manifests) — blobs that must exist in the repository.
    pub layers: Vec<Descriptor>,
    /// Child manifests (indexes only) — manifests that must exist in the repository.
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    /// `artifactType` as the referrers API reports it: the manifest's own field, else the
    /// config media type of an image manifest.
    pub artifact_type: Option<String>,
    pub annotations: Option<serde_json::Map<String, Value>>,
}

impl Manifest {
    /// Parses `bytes` sent with the `Content-Type` header `content_type` (if any).
    pub fn parse(bytes: &[u8], content_type: Option<&str>) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        let obj = doc.as_object().ok_or(ManifestError::NotAnObject)?;

        let field_mt = match obj.get("mediaType") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.as_str()),
            Some(_) => return Err(field_err("mediaType", "must be a string")),
        };
        let header_mt = content_type.map(essence).filter(|s| !s.is_empty());
        let kind = match (&header_mt, field_mt) {
            (Some(h), Some(f)) => {
                let hk = ManifestKind::from_media_type(h);
                if essence(f) != *h && hk.is_some() {
                    return Err(ManifestError::MediaTypeMismatch { field: f.to_string(), header: h.clone() });
                }
                hk.or_else(|| ManifestKind::from_media_type(f))
                    .ok_or_else(|| ManifestError::UnsupportedMediaType(f.to_string()))?
            }
            (Some(h), None) => match ManifestKind::from_media_type(h) {
                Some(k) => k,
                None => guess_kind(obj).ok_or_else(|| ManifestError::UnsupportedMediaType(h.clone()))?,
            },
            (None, Some(f)) => {
                ManifestKind::from_media_type(f).ok_or_else(|| ManifestError::UnsupportedMediaType(f.to_string()))?
            }
            (None, None) => guess_kind(obj).ok_or_else(|| ManifestError::UnsupportedMediaType("(none)".to_string()))?,
        };

        match obj.get("schemaVersion") {
            Some(v) if v.as_u64() == Some(2) => {}
            _ => return Err(ManifestError::SchemaVersion),
        }

        let artifact_type_field = match obj.get("artifactType") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(field_err("artifactType", "must be a string")),
        };
        let annotations = match obj.get("annotations") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m.clone()),
            Some(_) => return Err(field_err("annotations", "must be an object")),
        };
        let subject = obj.get("subject").filter(|v| !v.is_null()).map(|v| descriptor("subject", v)).transpose()?;

        let mut m = Manifest {
            kind,
            config: None,
            layers: Vec::new(),
            manifests: Vec::new(),
            subject,
            artifact_type: artifact_type_field.clone(),
            annotations,
        };
        if kind.is_index() {
            m.manifests = descriptor_list(obj, "manifests", true)?;
        } else {
            let config = obj.get("config").ok_or_else(|| field_err("config", "is required"))?;
            let config = descriptor("config", config)?;
            m.layers = descriptor_list(obj, "layers", kind == ManifestKind::DockerImage)?;
            if m.artifact_type.is_none() {
                m.artifact_type = Some(config.media_type.clone());
            }
            m.config = Some(config);
        }
        Ok(m)
    }

    /// Blobs this manifest references (config and layers).
    pub fn blob_references(&self) -> impl Iterator<Item = &Descriptor> {
        self.config.iter().chain(self.layers.iter())
    }
}

fn guess_kind(obj: &serde_json::Map<String, Value>) -> Option<ManifestKind> {
    if obj.contains_key("manifests") {
        Some(ManifestKind::OciIndex)
    } else if obj.contains_key("config") {
        Some(ManifestKind::OciImage)
    } else {
        None
    }
}

fn field_err(field: &str, reason: &str) -> ManifestError {
    ManifestError::Field { field: field.to_string(), reason: reason.to_string() }
}

fn descriptor(field: &str, v: &Value) -> Result<Descriptor, ManifestError> {
    let d: Descriptor = serde_json::from_value(v.clone()).map_err(|e| field_err(field, &e.to_string()))?;
    if d.media_type.is_empty() {
        return Err(field_err(field, "mediaType must not be empty"));
    }
    Ok(d)
}

fn descriptor_list(
    obj: &serde_json::Map<String, Value>,
    field: &str,
    required: bool,
) -> Result<Vec<Descriptor>, ManifestError> {
    match obj.get(field) {
        None | Some(Value::Null) if !required => Ok(Vec::new()),
        None | Some(Value::Null) => Err(field_err(field, "is required")),
        Some(Value::Array(items)) => {
            items.iter().enumerate().map(|(i, v)| descriptor(&format!("{field}[{i}]"), v)).collect()
        }
        Some(_) => Err(field_err(field, "must be an array")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    const L1: &str = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    fn image(extra: &str) -> String {
        format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "config":{{"mediaType":"application/vnd.example+json","digest":"{CFG}","size":2}},
            "layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{L1}","size":5}}]{extra}}}"#
        )
    }

    #[test]
    fn parses_image_with_subject() {
        let body = image(&format!(
            r#","subject":{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{L1}","size":9}}"#
        ));
        let m = Manifest::parse(body.as_bytes(), Some(media_type::OCI_MANIFEST)).unwrap();
        assert_eq!(m.kind, ManifestKind::OciImage);
        assert_eq!(m.blob_references().count(), 2);
        assert_eq!(m.artifact_type.as_deref(), Some("application/vnd.example+json"));
        assert!(m.subject.is_some());
    }

    #[test]
    fn rejects_bad_documents() {
        assert!(matches!(Manifest::parse(b"{", None), Err(ManifestError::Json(_))));
        assert!(matches!(Manifest::parse(b"[]", None), Err(ManifestError::NotAnObject)));
        let img = image("");
        assert!(matches!(
            Manifest::parse(img.as_bytes(), Some(media_type::OCI_INDEX)),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        let bad_digest = img.replace(L1, "sha256:abc");
        assert!(matches!(Manifest::parse(bad_digest.as_bytes(), None), Err(ManifestError::Field { .. })));
        let v1 = img.replace("\"schemaVersion\":2", "\"schemaVersion\":1");
        assert!(matches!(Manifest::parse(v1.as_bytes(), None), Err(ManifestError::SchemaVersion)));
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(Manifest::parse(&big, None), Err(ManifestError::TooLarge)));
    }

    #[test]
    fn parses_index_without_media_type_field() {
        let body = format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"{}","digest":"{L1}","size":5,
               "platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
            media_type::OCI_MANIFEST
        );
        let m = Manifest::parse(body.as_bytes(), Some(media_type::OCI_INDEX)).unwrap();
        assert_eq!(m.kind, ManifestKind::OciIndex);
        assert_eq!(m.manifests.len(), 1);
    }
}
