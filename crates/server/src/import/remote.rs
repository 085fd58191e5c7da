//! An import from a registry outside this deployment (`source.registryUri`), through the
//! `oci-client` crate: its challenge handling (anonymous, Basic, and the Bearer token flow
//! registries answer `401` with), manifests by tag or digest, blobs streamed straight into the
//! blob store.
//!
//! Owns: the client's configuration (HTTPS, except for `--import-insecure-registry` hosts);
//! the source credentials (`username` + `password` as Basic, a password alone as a Bearer
//! token, as ACR takes an access token); checking every manifest's digest and every blob's (the
//! blob store commits only bytes that hash to their digest); resuming a broken blob transfer
//! with a `Range` request from the bytes already stored.
//! Must never: link a blob into a target without having received its bytes from the source in
//! this import — a blob the deployment already holds is fetched all the same, so a manifest
//! naming someone else's blob can never lend it to the importer — or log the credentials.

use std::collections::{BTreeSet, VecDeque};

use oci_client::client::{BlobResponse, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use wharf_oci::{Digest, Manifest, Reference, media_type};
use wharf_storage::UploadId;

use super::image::{Piece, is_foreign};
use super::{ImportError, ImportRequest, MAX_MANIFESTS, storage};
use crate::state::{AppState, RegistryInfo};

/// How often a broken blob transfer is resumed before the import gives up.
const BLOB_ATTEMPTS: usize = 4;

/// The manifest types asked for.
const ACCEPTED: [&str; 4] =
    [media_type::OCI_MANIFEST, media_type::OCI_INDEX, media_type::DOCKER_MANIFEST, media_type::DOCKER_MANIFEST_LIST];

fn client(state: &AppState) -> oci_client::Client {
    let config = ClientConfig {
        protocol: ClientProtocol::HttpsExcept(state.config.import_insecure_registries.clone()),
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(60)),
        ..ClientConfig::default()
    };
    oci_client::Client::new(config)
}

fn auth_of(request: &ImportRequest) -> RegistryAuth {
    match &request.credentials {
        None => RegistryAuth::Anonymous,
        Some(c) => match &c.username {
            Some(user) => RegistryAuth::Basic(user.clone(), c.password.clone()),
            None => RegistryAuth::Bearer(c.password.clone()),
        },
    }
}

/// What a failure of the remote registry means for the import.
fn remote_error(host: &str, what: &str, e: OciDistributionError) -> ImportError {
    use OciDistributionError as E;
    match e {
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => ImportError::Unauthorized(format!(
            "the source registry '{host}' refused the credentials (or their absence) while reading {what}"
        )),
        E::ImageManifestNotFoundError(_) => {
            ImportError::SourceNotFound(format!("{what} was not found in the source registry '{host}'"))
        }
        E::ServerError { code: 404, .. } => {
            ImportError::SourceNotFound(format!("{what} was not found in the source registry '{host}'"))
        }
        E::ServerError { code: 401 | 403, .. } => {
            ImportError::Unauthorized(format!("the source registry '{host}' refused access to {what}"))
        }
        E::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown
                        | oci_client::errors::OciErrorCode::NameUnknown
                        | oci_client::errors::OciErrorCode::NotFound
                        | oci_client::errors::OciErrorCode::BlobUnknown
                )
            }) =>
        {
            ImportError::SourceNotFound(format!("{what} was not found in the source registry '{host}'"))
        }
        E::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::Unauthorized | oci_client::errors::OciErrorCode::Denied
                )
            }) =>
        {
            ImportError::Unauthorized(format!("the source registry '{host}' refused access to {what}"))
        }
        other => {
            ImportError::SourceUnreachable(format!("reading {what} from the source registry '{host}' failed: {other}"))
        }
    }
}

/// Fetches one manifest and checks its digest (against the reference when it is one).
async fn fetch_manifest(
    client: &oci_client::Client,
    host: &str,
    reference: &oci_client::Reference,
    auth: &RegistryAuth,
    expected: Option<&Digest>,
    what: &str,
) -> Result<(Digest, String, bytes::Bytes), ImportError> {
    let (bytes, _) =
        client.pull_manifest_raw(reference, auth, &ACCEPTED).await.map_err(|e| remote_error(host, what, e))?;
    let digest = match expected {
        Some(d) => {
            let computed = Digest::of(d.algorithm(), &bytes);
            if &computed != d {
                return Err(ImportError::SourceUnreachable(format!(
                    "the source registry '{host}' answered {what} with bytes whose digest is {computed}, not {d}"
                )));
            }
            d.clone()
        }
        None => Digest::sha256_of(&bytes),
    };
    let parsed = Manifest::parse(&bytes, None).map_err(|e| {
        ImportError::SourceUnreachable(format!("{what} from '{host}' is not a manifest Wharf can store: {e}"))
    })?;
    Ok((digest, parsed.kind.media_type().to_string(), bytes::Bytes::from(bytes)))
}

/// Streams one blob into the blob store, resuming a broken transfer with `Range` from what the
/// session holds; the commit verifies the digest.
async fn fetch_blob(
    state: &AppState,
    client: &oci_client::Client,
    host: &str,
    reference: &oci_client::Reference,
    digest: &Digest,
    size: u64,
    tracker: &super::Tracker,
) -> Result<(), ImportError> {
    if let Some(max) = state.config.max_blob_size
        && size > max
    {
        return Err(ImportError::SourceUnreachable(format!(
            "blob '{digest}' ({size} bytes) is larger than this deployment's --max-blob-size ({max} bytes)"
        )));
    }
    let what = format!("blob '{digest}'");
    let id = UploadId::new();
    state.blobs.upload_create(&id, digest.algorithm()).await.map_err(|e| storage("starting a blob", e))?;
    let result = async {
        let digest_str = digest.to_string();
        let mut last_error = None;
        for _ in 0..BLOB_ATTEMPTS {
            let offset = state.blobs.upload_size(&id).await.map_err(|e| storage("resuming a blob", e))?;
            if offset == size {
                break;
            }
            let stream = if offset == 0 {
                client.pull_blob_stream(reference, digest_str.as_str()).await.map(|s| s.stream)
            } else {
                match client.pull_blob_stream_partial(reference, digest_str.as_str(), offset, None).await {
                    Ok(BlobResponse::Partial(s)) => Ok(s.stream),
                    // The registry ignored the range: start over.
                    Ok(BlobResponse::Full(s)) => {
                        state.blobs.upload_abort(&id).await.map_err(|e| storage("restarting a blob", e))?;
                        state
                            .blobs
                            .upload_create(&id, digest.algorithm())
                            .await
                            .map_err(|e| storage("restarting a blob", e))?;
                        Ok(s.stream)
                    }
                    Err(e) => Err(e),
                }
            };
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    let e = remote_error(host, &what, e);
                    if matches!(e, ImportError::SourceUnreachable(_)) {
                        last_error = Some(e);
                        continue;
                    }
                    return Err(e);
                }
            };
            let offset = state.blobs.upload_size(&id).await.map_err(|e| storage("resuming a blob", e))?;
            let counting = tracker.clone();
            let stream = Box::pin(futures::TryStreamExt::inspect_ok(stream, move |b| counting.bytes(b.len() as u64)));
            match state.blobs.upload_append(&id, offset, stream, Some(size - offset)).await {
                Ok(n) if n == size => break,
                Ok(n) => {
                    last_error = Some(ImportError::SourceUnreachable(format!(
                        "the source registry '{host}' sent {n} of the {size} bytes of {what}"
                    )))
                }
                Err(e) => {
                    tracing::info!(%digest, error = %e, "import: a blob transfer broke off; resuming");
                    last_error =
                        Some(ImportError::SourceUnreachable(format!("receiving {what} from '{host}' failed: {e}")));
                }
            }
        }
        if state.blobs.upload_size(&id).await.map_err(|e| storage("reading a blob", e))? != size {
            return Err(last_error.unwrap_or_else(|| {
                ImportError::SourceUnreachable(format!("receiving {what} from '{host}' did not complete"))
            }));
        }
        state.blobs.upload_commit(&id, digest).await.map_err(|e| match e {
            wharf_storage::StorageError::DigestMismatch { .. } => ImportError::SourceUnreachable(format!(
                "the source registry '{host}' sent bytes for {what} that do not hash to that digest"
            )),
            e => storage("committing a blob", e),
        })?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = state.blobs.upload_abort(&id).await;
    }
    result.map(|_| id)?;
    Ok(())
}

/// Imports `request`'s image from the registry at `host` into `target`.
pub async fn copy(
    state: &std::sync::Arc<AppState>,
    host: &str,
    target: &RegistryInfo,
    request: &ImportRequest,
    tracker: &super::Tracker,
) -> Result<(), ImportError> {
    let client = client(state);
    let auth = auth_of(request);
    let repo = request.repository.to_string();
    let root = match &request.reference {
        Reference::Tag(t) => oci_client::Reference::with_tag(host.to_string(), repo.clone(), t.to_string()),
        Reference::Digest(d) => oci_client::Reference::with_digest(host.to_string(), repo.clone(), d.to_string()),
    };
    let expected = match &request.reference {
        Reference::Digest(d) => Some(d.clone()),
        Reference::Tag(_) => None,
    };
    let mut pieces: Vec<Piece> = Vec::new();
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([(root.clone(), expected, format!("image '{}'", request.source_image()))]);
    while let Some((reference, expected, what)) = queue.pop_front() {
        let (digest, media_type, bytes) =
            fetch_manifest(&client, host, &reference, &auth, expected.as_ref(), &what).await?;
        if !seen.insert(digest.clone()) {
            continue;
        }
        if seen.len() > MAX_MANIFESTS {
            return Err(ImportError::TooManyManifests(format!(
                "the image '{}' has more than {MAX_MANIFESTS} manifests, the most one import copies",
                request.source_image()
            )));
        }
        let parsed = Manifest::parse(&bytes, Some(&media_type))
            .map_err(|e| ImportError::SourceUnreachable(format!("{what} is not a manifest Wharf can store: {e}")))?;
        for child in &parsed.manifests {
            queue.push_back((
                root.clone_with_digest(child.digest.to_string()),
                Some(child.digest.clone()),
                format!("child manifest '{}'", child.digest),
            ));
        }
        tracker.manifest();
        let blobs = parsed.blob_references().filter(|d| !is_foreign(d)).map(|d| (d.digest.clone(), d.size)).collect();
        pieces.push(Piece { digest, media_type, bytes, parsed, blobs, architecture: None, os: None });
    }
    super::image::check_targets(state, target, request, &pieces[0].digest).await?;
    let mut fetched = BTreeSet::new();
    for piece in &pieces {
        for (digest, size) in &piece.blobs {
            if fetched.insert(digest.clone()) {
                fetch_blob(state, &client, host, &root, digest, *size, tracker).await?;
                super::image::link(state, target, request, digest, *size).await?;
            }
        }
    }
    for piece in &mut pieces {
        (piece.architecture, piece.os) = super::image::platform_of(state, &piece.parsed).await;
    }
    super::image::store(state, target, request, &pieces).await
}
