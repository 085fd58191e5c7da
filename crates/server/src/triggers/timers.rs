//! Timer triggers fire: the scheduler that, at every whole minute (every five-field cron tick
//! is on one), queues an `AutoRun` for each enabled timer of each enabled task whose schedule
//! ticked since it last looked. The run is the one `scheduleRun` would queue for the task
//! ([`crate::run_requests::task_request`]), with `timerTrigger: {timerTriggerName,
//! scheduleOccurrence}`.
//!
//! A tick runs once: the run is created together with the tick's claim in the metadata store
//! (`MetadataStore::run_create_for_tick`), so a restart, or another replica sharing the store,
//! that sees the same tick queues nothing. Ticks missed while no scheduler ran: at start-up the
//! most recent tick of each timer within [`MISSED_TICK_GRACE`] fires once, if the task has not
//! changed since; older ones are skipped (docs/decisions.md). Claims older than
//! [`CLAIM_RETENTION`] are swept.
//!
//! Must never: decide a tick from memory alone, fire a disabled timer or task, or fire one tick
//! twice.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, DurationRound, Utc};
use serde_json::json;
use wharf_arm::task::{TASKS, TaskSpec};
use wharf_storage::{StorageError, TimerTick};

use crate::model::identities::Host;
use crate::model::registries::StoredRegistry;
use crate::runs::{self as executor, RunOrigin};
use crate::state::AppState;

/// How far back the first look after a start reaches: the latest tick of each timer missed
/// within it fires once; older missed ticks never do.
pub const MISSED_TICK_GRACE: Duration = Duration::from_secs(5 * 60);

/// How long a claimed tick is remembered. It must be longer than [`MISSED_TICK_GRACE`] (a
/// restart within the grace must still see the claim); the rest is history for operators.
pub const CLAIM_RETENTION: Duration = Duration::from_secs(24 * 3600);

/// One tick that queued a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fired {
    pub task: String,
    pub trigger: String,
    pub tick: DateTime<Utc>,
    pub run_id: String,
}

fn chrono_of(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).expect("a short duration")
}

/// One look at every task's timers, for the ticks in `(after, now]`. At `startup`, a tick also
/// has to come after the task's last change (a timer added or changed after its tick, while no
/// scheduler ran, does not fire for it). Returns the ticks that queued a run; a tick another
/// look (or replica) already claimed is not among them. A task whose run cannot be built (its
/// identity gone, a step this version cannot run) is logged and skipped, tick unclaimed.
pub async fn check(
    state: &AppState,
    after: DateTime<Utc>,
    now: DateTime<Utc>,
    startup: bool,
) -> Result<Vec<Fired>, StorageError> {
    let mut fired = vec![];
    for record in crate::model::records_of_type(&*state.meta, TASKS).await? {
        let host = Host::from_record(record)?;
        let spec = match TaskSpec::parse(&host.resource.properties) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(task = %host.record.id, error = %e.message, "a stored task does not read; its timers do not fire");
                continue;
            }
        };
        if !spec.enabled {
            continue;
        }
        let from = if startup { after.max(host.record.updated_at) } else { after };
        for timer in spec.timers.iter().filter(|t| t.enabled) {
            let Some(tick) = timer.schedule.due(from, now) else { continue };
            if let Some(f) = fire(state, &host, &timer.name, tick, now).await? {
                fired.push(f);
            }
        }
    }
    Ok(fired)
}

/// Queues the run of `host` for `tick` of its timer `trigger`, unless that tick was claimed.
async fn fire(
    state: &AppState,
    host: &Host,
    trigger: &str,
    tick: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Option<Fired>, StorageError> {
    let Some(registry_id) = host.record.id.rsplit_once("/tasks/").map(|(r, _)| r.to_string()) else {
        return Ok(None);
    };
    let Some(record) = state.meta.resource_get(&registry_id).await? else {
        return Ok(None);
    };
    let registry = StoredRegistry::from_record(record)?;
    let request = match crate::run_requests::task_request(state, &registry, host, &json!({})) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(task = %host.record.id, trigger, tick = %tick, code = %e.code, error = %e.message, "a timer ticked but its task cannot run");
            return Ok(None);
        }
    };
    let origin = RunOrigin::Timer { trigger: trigger.to_string(), occurrence: tick };
    let new = executor::new_run(&registry, &request, &origin, now);
    let claim = TimerTick { task: host.record.id.clone(), trigger: trigger.to_string(), tick };
    let Some(run) = state.meta.run_create_for_tick(&new, &claim, now).await? else {
        return Ok(None);
    };
    tracing::info!(task = %host.record.id, trigger, tick = %tick, run = %run.run_id, "timer trigger fired");
    executor::queued(state, &registry, &run);
    Ok(Some(Fired { task: host.record.id.clone(), trigger: trigger.to_string(), tick, run_id: run.run_id }))
}

/// Forgets claimed ticks older than [`CLAIM_RETENTION`] before `now`.
pub async fn sweep(state: &AppState, now: DateTime<Utc>) -> Result<u64, StorageError> {
    state.meta.timer_ticks_sweep(now - chrono_of(CLAIM_RETENTION)).await
}

/// The next whole minute after `now`: when the next cron tick can be.
pub fn next_minute(now: DateTime<Utc>) -> DateTime<Utc> {
    now.duration_trunc(chrono::Duration::minutes(1)).unwrap_or(now) + chrono::Duration::minutes(1)
}

/// The scheduler, started with the server: a first look back over [`MISSED_TICK_GRACE`], then
/// one at every whole minute; claims are swept hourly. A look that fails (the store
/// unavailable) is retried at the next minute over the same window (capped at the grace).
pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let grace = chrono_of(MISSED_TICK_GRACE);
        let mut after = Utc::now() - grace;
        let mut startup = true;
        let mut last_sweep: Option<DateTime<Utc>> = None;
        loop {
            let now = Utc::now();
            match check(&state, after.max(now - grace), now, startup).await {
                Ok(_) => {
                    after = now;
                    startup = false;
                }
                Err(e) => {
                    tracing::error!(error = %e, "looking at the tasks' timer triggers failed; retrying at the next minute")
                }
            }
            if last_sweep.is_none_or(|t| now - t >= chrono::Duration::hours(1)) {
                match sweep(&state, now).await {
                    Ok(n) if n > 0 => tracing::info!(claims = n, "forgot old timer ticks"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "sweeping old timer ticks failed"),
                }
                last_sweep = Some(now);
            }
            // Wall-clock time to the next minute, a little after it so that the tick is in the
            // window; if the clock steps, the windows still join up (each starts where the last
            // ended).
            let wait = (next_minute(Utc::now()) - Utc::now()).to_std().unwrap_or_default();
            tokio::time::sleep(wait + Duration::from_millis(20)).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn the_scheduler_wakes_at_each_whole_minute() {
        let t = Utc.with_ymd_and_hms(2024, 3, 4, 12, 0, 0).unwrap();
        assert_eq!(next_minute(t), t + chrono::Duration::minutes(1));
        assert_eq!(next_minute(t + chrono::Duration::milliseconds(59_999)), t + chrono::Duration::minutes(1));
        const { assert!(CLAIM_RETENTION.as_secs() > MISSED_TICK_GRACE.as_secs()) };
    }
}
