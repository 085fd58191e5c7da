//! The body of `importImage`, parsed into typed values before anything else happens: the
//! source (a registry of this deployment by resource id, or a registry URI), its credentials,
//! the source image by tag or digest, the target tags and untagged repositories, and the mode.
//!
//! Must never: look anything up. Every field is checked here, so an import that starts has a
//! well-formed plan.

use serde::Deserialize;
use wharf_oci::{Digest, Reference, RepositoryName, Tag};

use super::ImportError;

/// Where the image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRegistry {
    /// A registry resource id (a registry of this deployment).
    ResourceId(String),
    /// A registry host (`host[:port]`): a login server of this deployment or any OCI registry.
    Uri(String),
}

/// Credentials for the source (`source.credentials`).
#[derive(Clone, PartialEq, Eq)]
pub struct SourceCredentials {
    pub username: Option<String>,
    pub password: String,
}

impl std::fmt::Debug for SourceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceCredentials").field("username", &self.username).finish_non_exhaustive()
    }
}

/// A target tag, `repository:tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetTag {
    pub repository: RepositoryName,
    pub tag: Tag,
}

impl std::fmt::Display for TargetTag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.repository, self.tag)
    }
}

/// `NoForce` refuses an import that would move an existing tag, before anything is copied;
/// `Force` moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportMode {
    NoForce,
    Force,
}

/// An import, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRequest {
    pub source: SourceRegistry,
    pub credentials: Option<SourceCredentials>,
    pub repository: RepositoryName,
    pub reference: Reference,
    pub target_tags: Vec<TargetTag>,
    pub untagged_repositories: Vec<RepositoryName>,
    pub mode: ImportMode,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    source: Option<SourceBody>,
    #[serde(default)]
    target_tags: Option<Vec<String>>,
    #[serde(default)]
    untagged_target_repositories: Option<Vec<String>>,
    mode: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SourceBody {
    resource_id: Option<String>,
    registry_uri: Option<String>,
    credentials: Option<CredentialsBody>,
    source_image: Option<String>,
}

#[derive(Deserialize)]
struct CredentialsBody {
    username: Option<String>,
    password: Option<String>,
}

fn invalid(message: impl Into<String>) -> ImportError {
    ImportError::InvalidParameters(message.into())
}

/// Splits `repo[:tag]` or `repo@digest` (a bare repository means `latest`).
pub fn parse_image(image: &str) -> Result<(RepositoryName, Reference), ImportError> {
    let (repo, reference) = if let Some((repo, digest)) = image.split_once('@') {
        let digest = Digest::parse(digest)
            .map_err(|e| invalid(format!("The source image '{image}' names an invalid digest: {e}.")))?;
        (repo, Reference::Digest(digest))
    } else {
        // A ':' after the last '/' starts the tag (a registry port never reaches here).
        let slash = image.rfind('/').map_or(0, |i| i + 1);
        match image[slash..].find(':') {
            Some(i) => {
                let (repo, tag) = (&image[..slash + i], &image[slash + i + 1..]);
                let tag = Tag::parse(tag)
                    .map_err(|e| invalid(format!("The source image '{image}' names an invalid tag: {e}.")))?;
                (repo, Reference::Tag(tag))
            }
            None => (image, Reference::Tag(Tag::parse("latest").expect("latest is a tag"))),
        }
    };
    let repo = RepositoryName::parse(repo)
        .map_err(|e| invalid(format!("The image '{image}' names an invalid repository: {e}.")))?;
    Ok((repo, reference))
}

/// A target tag `repo[:tag]`; without a tag, the source's tag (or `latest` for a digest).
fn parse_target(target: &str, source: &Reference) -> Result<TargetTag, ImportError> {
    if target.contains('@') {
        return Err(invalid(format!(
            "The target tag '{target}' names a digest; name a repository and tag, or use untaggedTargetRepositories."
        )));
    }
    let slash = target.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match target[slash..].find(':') {
        Some(i) => (&target[..slash + i], target[slash + i + 1..].to_string()),
        None => match source {
            Reference::Tag(t) => (target, t.to_string()),
            Reference::Digest(_) => (target, "latest".to_string()),
        },
    };
    let repository = RepositoryName::parse(repo)
        .map_err(|e| invalid(format!("The target tag '{target}' names an invalid repository: {e}.")))?;
    let tag = Tag::parse(&tag).map_err(|e| invalid(format!("The target tag '{target}' names an invalid tag: {e}.")))?;
    Ok(TargetTag { repository, tag })
}

impl ImportRequest {
    /// Parses and checks an `importImage` body.
    pub fn parse(body: &[u8]) -> Result<ImportRequest, ImportError> {
        let body: Body = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("The request body is not a valid import request: {e}.")))?;
        let source = body.source.ok_or_else(|| invalid("The 'source' property is required."))?;
        let registry =
            match (source.resource_id.filter(|s| !s.is_empty()), source.registry_uri.filter(|s| !s.is_empty())) {
                (Some(id), None) => SourceRegistry::ResourceId(id),
                (None, Some(uri)) => {
                    let uri = uri.trim_end_matches('/');
                    let uri = uri.strip_prefix("https://").or_else(|| uri.strip_prefix("http://")).unwrap_or(uri);
                    if uri.is_empty() || uri.contains('/') || uri.contains('@') {
                        return Err(invalid(format!(
                            "The source registryUri '{uri}' is not a registry host ('host' or 'host:port')."
                        )));
                    }
                    SourceRegistry::Uri(uri.to_ascii_lowercase())
                }
                (Some(_), Some(_)) => {
                    return Err(invalid("Give either 'source.resourceId' or 'source.registryUri', not both."));
                }
                (None, None) => return Err(invalid("The source needs 'resourceId' or 'registryUri'.")),
            };
        let credentials = match source.credentials {
            None => None,
            Some(CredentialsBody { username, password: Some(password) }) if !password.is_empty() => {
                Some(SourceCredentials { username: username.filter(|u| !u.is_empty()), password })
            }
            Some(_) => return Err(invalid("'source.credentials.password' is required when credentials are given.")),
        };
        let image = source
            .source_image
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("'source.sourceImage' is required."))?;
        let (repository, reference) = parse_image(&image)?;
        let target_tags = body
            .target_tags
            .unwrap_or_default()
            .iter()
            .map(|t| parse_target(t, &reference))
            .collect::<Result<Vec<_>, _>>()?;
        let untagged_repositories = body
            .untagged_target_repositories
            .unwrap_or_default()
            .iter()
            .map(|r| {
                RepositoryName::parse(r)
                    .map_err(|e| invalid(format!("The untagged target repository '{r}' is invalid: {e}.")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if target_tags.is_empty() && untagged_repositories.is_empty() {
            return Err(invalid("Name at least one target: 'targetTags' or 'untaggedTargetRepositories'."));
        }
        let mode = match body.mode.as_deref() {
            None | Some("") => ImportMode::NoForce,
            Some(m) if m.eq_ignore_ascii_case("NoForce") => ImportMode::NoForce,
            Some(m) if m.eq_ignore_ascii_case("Force") => ImportMode::Force,
            Some(m) => return Err(invalid(format!("The mode '{m}' is not valid. Allowed values: NoForce, Force."))),
        };
        Ok(ImportRequest {
            source: registry,
            credentials,
            repository,
            reference,
            target_tags,
            untagged_repositories,
            mode,
        })
    }

    /// The source image as the request named it (`repo:tag` or `repo@digest`).
    pub fn source_image(&self) -> String {
        match &self.reference {
            Reference::Tag(t) => format!("{}:{t}", self.repository),
            Reference::Digest(d) => format!("{}@{d}", self.repository),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: serde_json::Value) -> Result<ImportRequest, ImportError> {
        ImportRequest::parse(v.to_string().as_bytes())
    }

    #[test]
    fn az_bodies_parse() {
        let r = parse(serde_json::json!({"source": {"resourceId": "/subscriptions/s/x", "sourceImage": "team/app:v1"},
            "targetTags": ["app:v1", "other"], "mode": "NoForce"}))
        .unwrap();
        assert_eq!(r.source, SourceRegistry::ResourceId("/subscriptions/s/x".into()));
        assert_eq!(r.repository.as_str(), "team/app");
        assert_eq!(r.target_tags.iter().map(|t| t.to_string()).collect::<Vec<_>>(), ["app:v1", "other:v1"]);
        assert_eq!(r.mode, ImportMode::NoForce);
        let d = format!("sha256:{}", "a".repeat(64));
        let r = parse(serde_json::json!({"source": {"registryUri": "Host:5000", "sourceImage": format!("app@{d}"),
            "credentials": {"username": "u", "password": "p"}}, "untaggedTargetRepositories": ["app"], "mode": "Force"}))
        .unwrap();
        assert_eq!(r.source, SourceRegistry::Uri("host:5000".into()));
        assert!(matches!(r.reference, Reference::Digest(_)));
        assert_eq!(r.mode, ImportMode::Force);
        let bare =
            parse(serde_json::json!({"source": {"resourceId": "x", "sourceImage": "app"}, "targetTags": ["app"]}));
        assert_eq!(bare.unwrap().source_image(), "app:latest");
    }

    #[test]
    fn bad_bodies_are_refused() {
        for body in [
            serde_json::json!({}),
            serde_json::json!({"source": {"sourceImage": "a"}, "targetTags": ["a"]}),
            serde_json::json!({"source": {"resourceId": "x", "registryUri": "y", "sourceImage": "a"}, "targetTags": ["a"]}),
            serde_json::json!({"source": {"resourceId": "x", "sourceImage": "A"}, "targetTags": ["a"]}),
            serde_json::json!({"source": {"resourceId": "x", "sourceImage": "a"}}),
            serde_json::json!({"source": {"resourceId": "x", "sourceImage": "a"}, "targetTags": ["a@sha256:00"]}),
            serde_json::json!({"source": {"resourceId": "x", "sourceImage": "a"}, "targetTags": ["a"], "mode": "Maybe"}),
            serde_json::json!({"source": {"registryUri": "h", "sourceImage": "a", "credentials": {"username": "u"}}, "targetTags": ["a"]}),
        ] {
            assert!(matches!(parse(body.clone()), Err(ImportError::InvalidParameters(_))), "{body}");
        }
    }
}
