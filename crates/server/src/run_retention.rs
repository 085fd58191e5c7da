//! The retention of task runs: finished runs older than `--run-retention-days` (ACR keeps run
//! records and logs for 30 days) are deleted with their log files, except runs whose
//! `isArchiveEnabled` is set, which are kept until their registry goes. The sweep runs at
//! start-up and then hourly; [`sweep`] takes `now` so tests age runs without waiting.
//!
//! A run's age counts from its record's last change (`updated_at`: its end, or a later change
//! of its archive flag). Only finished runs are candidates (the store lists them), and a run is
//! deleted only if it did not change since it was read (`MetadataStore::run_delete`), so a run
//! archived while the sweep looked at it stays.
//!
//! Must never: delete a run that is queued or in progress, an archived run, or a log whose run
//! record survives.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use wharf_storage::{RunRecord, StorageError};

use crate::state::AppState;

/// How often the sweep looks, after its first look at start-up.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);

/// Runs read per page of the sweep.
const PAGE: usize = 500;

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    /// Runs deleted, with their logs.
    pub deleted: u64,
    /// Old finished runs kept because they are archived.
    pub archived: u64,
}

/// Whether a run's `isArchiveEnabled` is set.
fn archived(run: &RunRecord) -> bool {
    run.body["properties"]["isArchiveEnabled"].as_bool() == Some(true)
}

/// Deletes the finished, unarchived runs last changed more than `days` days before `now`, and
/// their log files.
pub async fn sweep(state: &AppState, days: u32, now: DateTime<Utc>) -> Result<Swept, StorageError> {
    let before = now - chrono::Duration::days(i64::from(days));
    let mut out = Swept::default();
    let mut after: Option<RunRecord> = None;
    loop {
        let page = state.meta.runs_finished_before(before, after.as_ref(), PAGE).await?;
        let full = page.len() == PAGE;
        for run in &page {
            if archived(run) {
                out.archived += 1;
                continue;
            }
            // The record first: a log without a record is an orphan file, a record without
            // its log would be a run whose log link answers nothing.
            if state.meta.run_delete(run).await? {
                let log = state.run_queue.log_path(&run.registry.0, &run.run_id);
                match tokio::fs::remove_file(&log).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => tracing::warn!(path = %log.display(), error = %e, "removing an expired run's log failed"),
                }
                out.deleted += 1;
            }
        }
        // Deleted runs leave the listing; the cursor only has to step over the ones kept.
        after = page.into_iter().last();
        if !full {
            return Ok(out);
        }
    }
}

/// The sweep, started with the server unless retention is off (`--run-retention-days 0`).
pub fn spawn(state: Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    let days = state.config.tasks.run_retention_days?;
    Some(tokio::spawn(async move {
        loop {
            match sweep(&state, days, Utc::now()).await {
                Ok(s) if s.deleted > 0 => {
                    tracing::info!(deleted = s.deleted, archived_kept = s.archived, days, "expired task runs deleted")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "the task run retention sweep failed; retrying in an hour"),
            }
            tokio::time::sleep(SWEEP_INTERVAL).await;
        }
    }))
}
