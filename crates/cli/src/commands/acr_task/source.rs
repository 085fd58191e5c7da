//! The `sourceLocation` of `acr build` and `acr run`: a local context packed and uploaded
//! through `listBuildSourceUploadUrl`, a local archive uploaded as it is, or a remote URL
//! checked as az checks it. Owns the order of az's messages and requests around the upload
//! (`Packing source code…`, `Uploading archived source code from '…'…`, `Sending context (…)
//! to registry: …`) and the upload's progress bar; must never draw that bar on a stderr that
//! is not a terminal, and never keep the temporary archive (it is deleted when its
//! [`TempArchive`] is dropped, on success and on error).

use std::io::IsTerminal;
use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;

use super::{Registry, call};
use crate::blob_upload::{self, Limits};
use crate::client::Client;
use crate::context::pack::{self, ExtraDockerfile, TempArchive};
use crate::context::{human_size, is_remote_tarball};
use crate::error::CliError;
use crate::output::warning;

/// Packs `dir` into a new temporary `<prefix>_<hex>.tar.gz` (az's `_pack_source_code`), with
/// az's warnings. `dockerfile`: the extra top-level copy of the Dockerfile (`acr build`).
pub(super) async fn pack_directory(
    dir: &Path,
    dockerfile: Option<ExtraDockerfile>,
    prefix: &str,
) -> Result<TempArchive, CliError> {
    warning("Packing source code into tar to upload...");
    let dockerfile_name = dockerfile.as_ref().and_then(|d| d.path.file_name()).map(|n| n.to_string_lossy().to_string());
    let (ignore, custom) = pack::load_dockerignore(dir, dockerfile_name.as_deref())?;
    if let Some(c) = custom {
        warning(&format!("Overriding .dockerignore with {}", c.display()));
    }
    let archive = TempArchive::create(prefix)?;
    let (dir, out) = (dir.to_path_buf(), archive.path().to_path_buf());
    let packed = tokio::task::spawn_blocking(move || pack::pack(&dir, &ignore, dockerfile.as_ref(), &out))
        .await
        .map_err(|e| CliError::Other(format!("packing the context failed: {e}")))??;
    for name in &packed.vcs_excluded {
        warning(&format!("Excluding '{name}' based on default ignore rules"));
    }
    for name in &packed.skipped {
        warning(&format!("Excluding '{name}': not a file, directory or symbolic link"));
    }
    Ok(archive)
}

/// Uploads the archive at `path` (az's `upload_source_code` after packing) and returns the
/// `relativePath` that names it in `sourceLocation`.
pub(super) async fn upload(client: &Client, reg: &Registry, path: &Path) -> Result<String, CliError> {
    upload_with(client, reg, path, Limits::default()).await
}

pub(super) async fn upload_with(
    client: &Client,
    reg: &Registry,
    path: &Path,
    limits: Limits,
) -> Result<String, CliError> {
    let size =
        std::fs::metadata(path).map_err(|e| CliError::Other(format!("cannot read {}: {e}", path.display())))?.len();
    warning(&format!("Uploading archived source code from '{}'...", path.display()));
    let links = call(client, Method::POST, &format!("{}/listBuildSourceUploadUrl", reg.path), None)
        .await
        .map_err(|e| CliError::Other(format!("Failed to get a SAS URL to upload context. Error: {e}")))?;
    let upload_url = links["uploadUrl"]
        .as_str()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| CliError::Other("Failed to get a SAS URL to upload context.".into()))?;
    let relative_path = links["relativePath"]
        .as_str()
        .ok_or_else(|| CliError::Other("the server's listBuildSourceUploadUrl answer has no relativePath".into()))?
        .to_string();
    let bar = progress_bar();
    let result = blob_upload::upload_file(client.http(), upload_url, path, limits, &bar).await;
    bar.finish_and_clear();
    result?;
    warning(&format!("Sending context ({}) to registry: {}...", human_size(size), reg.name));
    Ok(relative_path)
}

/// A progress bar on stderr when stderr is a terminal, else one that draws nothing.
fn progress_bar() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} ({bytes_per_sec}, {eta})") {
        bar.set_style(style);
    }
    bar
}

/// A remote context, as az's `check_remote_source_code` takes it: a remote tarball must
/// answer a plain `HEAD` below 400; then az's `Sending context to registry: …` warning.
pub(super) async fn remote(client: &Client, reg: &Registry, url: &str) -> Result<(), CliError> {
    if is_remote_tarball(url) {
        let resp =
            client.http().head(url).send().await.map_err(|e| CliError::Other(format!("cannot reach '{url}': {e}")))?;
        if resp.status().as_u16() >= 400 {
            return Err(CliError::Other(format!("'{url}' doesn't exist.")));
        }
    }
    warning(&format!("Sending context to registry: {}...", reg.name));
    Ok(())
}
