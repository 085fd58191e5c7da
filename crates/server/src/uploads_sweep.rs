//! Upload sessions over time: their last activity, the caps on how many may be open, the
//! periodic sweep that expires idle ones and completes commits whose metadata write failed, and
//! discarding a deleted registry's sessions.
//!
//! What a session is and how both stores are kept in agreement lives in
//! `wharf_storage::maintenance`; this module only decides when (the configured
//! [`UploadPolicy`]) and logs. It must never expire a session sooner than its idle timeout, and
//! never complete a committed session that a request may still be completing.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wharf_storage::{StorageError, UploadId, UploadLimits, UploadRecord, maintenance};

use crate::config::UploadPolicy;
use crate::state::AppState;

/// The caps `MetadataStore::upload_put` enforces for a new session.
pub fn limits(policy: &UploadPolicy) -> UploadLimits {
    UploadLimits { per_registry: Some(policy.max_per_registry), per_principal: Some(policy.max_per_principal) }
}

/// Recorded activity may lag behind the real one by this much (at most a minute, or a quarter
/// of the idle timeout when that is shorter), so that a busy session costs one metadata write a
/// minute rather than one per request.
fn activity_resolution(policy: &UploadPolicy) -> chrono::Duration {
    let step = (policy.idle_timeout / 4).min(Duration::from_secs(60));
    chrono::Duration::from_std(step).unwrap_or(chrono::Duration::seconds(60))
}

/// How often the sweep runs: half the idle timeout, between 1 s and 10 minutes. A session
/// expires between its idle timeout and that plus one interval (plus the activity resolution).
pub fn sweep_interval(policy: &UploadPolicy) -> Duration {
    (policy.idle_timeout / 2).clamp(Duration::from_secs(1), Duration::from_secs(600))
}

/// Records that a request named `record`'s session, if its recorded activity is older than the
/// resolution. A failure is logged, not returned: the request goes on, and the sweep still
/// looks at the session's bytes before expiring it.
pub async fn note_activity(state: &AppState, record: &UploadRecord) {
    let now = Utc::now();
    if now - record.last_activity < activity_resolution(&state.config.uploads) {
        return;
    }
    if let Err(e) = state.meta.upload_touch(&record.id, now).await {
        tracing::warn!(upload = %record.id, error = %e, "could not record an upload session's activity");
    }
}

/// Discards the bytes of upload sessions whose records were deleted with their registry.
pub async fn discard(state: &AppState, ids: &[UploadId]) {
    if let Err(e) = maintenance::discard_uploads(&*state.blobs, ids).await {
        tracing::warn!(error = %e, "could not discard a deleted registry's upload sessions; the next start removes them");
    }
}

/// One sweep: expire idle sessions, then complete committed sessions whose metadata write
/// failed (committed more than the garbage-collection grace period ago: a request completes its
/// own within moments).
pub async fn sweep(state: &AppState, now: DateTime<Utc>) -> Result<(), StorageError> {
    let policy = &state.config.uploads;
    let idle_before = now - chrono::Duration::from_std(policy.idle_timeout).unwrap_or(chrono::Duration::days(1));
    let expired = maintenance::expire_uploads(&*state.meta, &*state.blobs, idle_before).await?;
    if !expired.sessions.is_empty() || !expired.unrecorded.is_empty() {
        tracing::info!(
            sessions = expired.sessions.len(),
            unrecorded = expired.unrecorded.len(),
            idle_timeout_seconds = policy.idle_timeout.as_secs(),
            "expired idle upload sessions"
        );
    }
    let settled_before = now - chrono::Duration::seconds(crate::gc::GRACE_SECONDS);
    let completed = maintenance::complete_committed_uploads(&*state.meta, &*state.blobs, settled_before).await?;
    if !completed.is_empty() {
        tracing::info!(count = completed.len(), "completed uploads whose metadata write had failed");
    }
    Ok(())
}

/// Runs the sweep every [`sweep_interval`], the first time at once.
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(sweep_interval(&state.config.uploads));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(e) = sweep(&state, Utc::now()).await {
                tracing::warn!(error = %e, "upload session sweep failed; the next one retries");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_the_idle_timeout_within_bounds() {
        let policy = |secs| UploadPolicy { idle_timeout: Duration::from_secs(secs), ..UploadPolicy::default() };
        assert_eq!(sweep_interval(&policy(86_400)), Duration::from_secs(600));
        assert_eq!(sweep_interval(&policy(60)), Duration::from_secs(30));
        assert_eq!(sweep_interval(&policy(1)), Duration::from_secs(1));
        assert_eq!(activity_resolution(&policy(86_400)), chrono::Duration::seconds(60));
        assert_eq!(activity_resolution(&policy(2)), chrono::Duration::milliseconds(500));
    }
}
