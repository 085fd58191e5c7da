//! Build sources: the gzip-compressed tar archives `az acr build` and `az acr run` upload
//! before they schedule a run. `listBuildSourceUploadUrl` (management plane) hands out an
//! upload link signed here ([`upload_link`]); the source plane (`source_upload.rs`) checks the
//! link and stores what is sent; `scheduleRun` [`claim`]s the upload for one run, and the run's
//! end [`release`]s it.
//!
//! Owns the files, below `{data-dir}/tasks/sources/{registry key}/`:
//! - `{id}.part` (a Put Blob being received), `{id}.blocks/` (staged blocks, by the SHA-256 of
//!   their id), `{id}.tar.gz` (an upload, committed, not yet claimed);
//! - `claimed/{id}.tar.gz` (held by a queued or running run) and `claimed/{id}.run` (that run's
//!   id, written once the run is queued).
//!
//! [`sweep`] removes what no run will read: uploads older than their link's lifetime plus an
//! hour, claimed sources whose run is over or gone. Must never: store more than the configured
//! limit for one upload, hand a registry's upload to a run of another registry, or let a second
//! run claim a source.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::state::AppState;

/// Path prefix of the source plane.
pub const PREFIX: &str = "/wharf-sources/";
/// The blob name every upload link ends in.
pub const BLOB_NAME: &str = "source.tar.gz";
/// How long an upload link is valid, in seconds.
pub const LINK_LIFETIME: i64 = 3600;
/// How long after its link expired an unclaimed upload is kept.
const UNCLAIMED_GRACE: Duration = Duration::from_secs(3600);
/// How often [`sweep`] runs.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(600);

/// The directory of every registry's sources.
pub fn root(state: &AppState) -> PathBuf {
    state.config.data_dir.join("tasks").join("sources")
}

/// A registry's directory of sources.
pub fn registry_dir(state: &AppState, registry: &str) -> PathBuf {
    root(state).join(registry)
}

/// An upload id: 32 lowercase hex digits.
pub fn is_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A registry key as paths carry it.
pub fn is_registry_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// What an upload link's signature covers: `{registry key}/{upload id}`.
pub fn resource(registry: &str, id: &str) -> String {
    format!("{registry}/{id}")
}

/// The signature of an upload (create and write) link to `resource` valid until `expiry`.
pub fn signature(state: &AppState, resource: &str, expiry: i64) -> String {
    wharf_identity::fingerprint(&state.secret_key, &format!("wharf build source\ncw\n{resource}\n{expiry}"))
}

/// `source/{id}.tar.gz`: what `scheduleRun` names the upload by (`sourceLocation`,
/// `contextPath`).
pub fn relative_path(id: &str) -> String {
    format!("source/{id}.tar.gz")
}

/// The upload id of a `relativePath`, or `None` when `location` is not one.
pub fn upload_of(location: &str) -> Option<&str> {
    let id = location.strip_prefix("source/")?.strip_suffix(".tar.gz")?;
    is_upload_id(id).then_some(id)
}

/// A new upload of `registry` for a client that reached this server at `base`: the link and
/// the relative path (`listBuildSourceUploadUrl`'s `uploadUrl` and `relativePath`).
pub fn upload_link(state: &AppState, base: &str, registry: &str, now: i64) -> (String, String) {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let expiry = now + LINK_LIFETIME;
    let sig = signature(state, &resource(registry, &id), expiry);
    (format!("{base}{PREFIX}{registry}/{id}/{BLOB_NAME}?se={expiry}&sp=cw&sig={sig}"), relative_path(&id))
}

pub fn committed(state: &AppState, registry: &str, id: &str) -> PathBuf {
    registry_dir(state, registry).join(format!("{id}.tar.gz"))
}

pub fn part(state: &AppState, registry: &str, id: &str) -> PathBuf {
    registry_dir(state, registry).join(format!("{id}.part"))
}

pub fn blocks(state: &AppState, registry: &str, id: &str) -> PathBuf {
    registry_dir(state, registry).join(format!("{id}.blocks"))
}

pub fn claimed(state: &AppState, registry: &str, id: &str) -> PathBuf {
    registry_dir(state, registry).join("claimed").join(format!("{id}.tar.gz"))
}

fn claimed_run(state: &AppState, registry: &str, id: &str) -> PathBuf {
    registry_dir(state, registry).join("claimed").join(format!("{id}.run"))
}

/// Why an upload cannot be claimed.
#[derive(Debug, PartialEq, Eq)]
pub enum ClaimError {
    /// Never uploaded (or expired and swept).
    Missing,
    /// Another run holds it.
    Taken,
    Io(String),
}

/// Takes `registry`'s upload `id` for one run.
pub async fn claim(state: &AppState, registry: &str, id: &str) -> Result<(), ClaimError> {
    let to = claimed(state, registry, id);
    if tokio::fs::try_exists(&to).await.unwrap_or(false) {
        return Err(ClaimError::Taken);
    }
    if let Some(dir) = to.parent() {
        tokio::fs::create_dir_all(dir).await.map_err(|e| ClaimError::Io(e.to_string()))?;
    }
    match tokio::fs::rename(committed(state, registry, id), &to).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(ClaimError::Missing),
        Err(e) => Err(ClaimError::Io(e.to_string())),
    }
}

/// Records which run holds a claimed source (for [`sweep`]).
pub async fn note_run(state: &AppState, registry: &str, id: &str, run_id: &str) {
    if let Err(e) = tokio::fs::write(claimed_run(state, registry, id), run_id).await {
        tracing::warn!(error = %e, upload = id, run = run_id, "recording a source's run failed; the sweep removes it after the grace period");
    }
}

/// Removes a claimed source (its run is over, or was never queued).
pub async fn release(state: &AppState, registry: &str, id: &str) {
    for p in [claimed(state, registry, id), claimed_run(state, registry, id)] {
        if let Err(e) = tokio::fs::remove_file(&p).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(error = %e, path = %p.display(), "removing a build source failed");
        }
    }
}

fn older_than(path: &Path, age: Duration) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .map(|t| t.elapsed().unwrap_or_default() > age)
        .unwrap_or(false)
}

/// One pass of the sweep; returns how many sources it removed.
pub async fn sweep(state: &AppState) -> usize {
    let root = root(state);
    let Ok(registries) = std::fs::read_dir(&root) else { return 0 };
    let unclaimed_age = Duration::from_secs(LINK_LIFETIME as u64) + UNCLAIMED_GRACE;
    let mut removed = 0;
    for registry in registries.flatten() {
        let key = registry.file_name().to_string_lossy().into_owned();
        let dir = registry.path();
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name != "claimed" && older_than(&path, unclaimed_age) {
                let gone = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
                removed += usize::from(gone.is_ok());
            }
        }
        for entry in std::fs::read_dir(dir.join("claimed")).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".tar.gz") else { continue };
            let run = std::fs::read_to_string(claimed_run(state, &key, id)).ok();
            let over = match run {
                // Claimed but never queued (the server stopped in between).
                None => older_than(&entry.path(), UNCLAIMED_GRACE),
                Some(run) => match state.meta.run_get(&wharf_storage::RegistryKey(key.clone()), run.trim()).await {
                    Ok(Some(r)) => wharf_tasks::RunStatus::parse(&r.status).is_none_or(|s| s.is_finished()),
                    Ok(None) => true,
                    Err(_) => false,
                },
            };
            if over {
                release(state, &key, id).await;
                removed += 1;
            }
        }
    }
    removed
}

/// The periodic sweep.
pub fn spawn(state: std::sync::Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let n = sweep(&state).await;
            if n > 0 {
                tracing::info!(removed = n, "build sources no run will read were removed");
            }
            tokio::time::sleep(SWEEP_INTERVAL).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_name_uploads() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(upload_of(&relative_path(id)), Some(id));
        for bad in [
            "source/../x.tar.gz",
            "source/0123.tar.gz",
            "/dev/null",
            "https://h/r.git",
            "source/ABCDEF0123456789abcdef0123456789.tar.gz",
        ] {
            assert_eq!(upload_of(bad), None, "{bad}");
        }
    }
}
