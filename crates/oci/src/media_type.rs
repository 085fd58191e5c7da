//! Media types the registry treats specially.

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const OCI_EMPTY_CONFIG: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// All manifest media types a client may ask for in `Accept`.
pub const MANIFEST_TYPES: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST];

pub fn is_manifest_type(mt: &str) -> bool {
    MANIFEST_TYPES.contains(&mt)
}

/// Media type without parameters (`; charset=…`) and surrounding blanks, lowercased.
pub fn essence(mt: &str) -> String {
    mt.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}
