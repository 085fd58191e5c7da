//! `wharf acr build`: a Docker build of a local directory (packed and uploaded), a local
//! archive or a remote context, queued as az's `DockerBuildRequest` and followed like a run.
//! Owns the order az checks and sends things in (the registry lookup, the source location,
//! the Dockerfile, the upload, `scheduleRun`); the body is [`super::body::docker_build_request`],
//! the upload [`super::source`].

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::Value;

use super::args::AcrBuildArgs;
use super::{TASKS_API, auth_mode_warning, body, follow, registry_for, source};
use crate::client::Client;
use crate::context::Source;
use crate::context::pack::ExtraDockerfile;
use crate::error::CliError;
use crate::logstream;
use crate::output::warning;

/// az's refusal for a registry without a managed SKU.
const BUILD_NOT_SUPPORTED: &str = "Builds are only supported for managed registries.";

pub async fn acr_build(a: AcrBuildArgs) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    acr_build_with(&client, a).await
}

pub(super) async fn acr_build_with(client: &Client, a: AcrBuildArgs) -> Result<Option<Value>, CliError> {
    let reg = registry_for(client, &a.registry, BUILD_NOT_SUPPORTED).await?;
    auth_mode_warning(&reg, a.auth_mode);
    // Flag errors (platform, build arguments) before anything is packed or uploaded.
    body::docker_build_request(&a, "", "")?;
    let (source_location, docker_file_path) = match Source::parse(&a.source_location, false)? {
        Source::Directory(dir) => {
            // As az: -f is a local path (from the current directory), default <dir>/Dockerfile.
            let dockerfile = a.file.as_ref().map(PathBuf::from).unwrap_or_else(|| dir.join("Dockerfile"));
            if !dockerfile.is_file() {
                return Err(CliError::Other(format!("Unable to find '{}'.", dockerfile.display())));
            }
            let name_in_tar = format!("{}_{}", uuid::Uuid::new_v4().simple(), base_name(&dockerfile));
            let extra = ExtraDockerfile { path: dockerfile, name_in_tar: name_in_tar.clone() };
            let archive = source::pack_directory(&dir, Some(extra), "build_archive").await?;
            (source::upload(client, &reg, archive.path()).await?, name_in_tar)
        }
        Source::Tarball(path) => {
            (source::upload(client, &reg, &path).await?, a.file.clone().unwrap_or_else(|| "Dockerfile".into()))
        }
        Source::Remote(url) => {
            source::remote(client, &reg, &url).await?;
            (url, a.file.clone().unwrap_or_else(|| "Dockerfile".into()))
        }
        Source::Null => return Err(CliError::Other("internal: /dev/null is no build context".into())),
    };
    for w in body::push_enabled(&a).1 {
        warning(&w);
    }
    let b = body::docker_build_request(&a, &source_location, &docker_file_path)?;
    let queued = client.arm(Method::POST, &format!("{}/scheduleRun", reg.path), TASKS_API, Some(&b)).await?;
    let timeout = a.timeout.unwrap_or(logstream::DEFAULT_TIMEOUT_SECS);
    follow(client, &reg, &queued, a.no_logs, a.no_wait, timeout, "build").await
}

/// The file name of a path given with `/` or `\` (az's `os.path.basename` after replacing `\`).
fn base_name(path: &Path) -> String {
    let s = path.to_string_lossy().replace('\\', "/");
    s.rsplit('/').next().unwrap_or_default().to_string()
}
