//! Triggers: what makes a task run by itself. Each kind watches for its event and queues the
//! task's own run request (`crate::run_requests::task_request`) as an `AutoRun` that says why:
//! timers (`timers`: five-field cron ticks, each claimed once in the metadata store),
//! base-image updates (`base_images`: a pushed tag that a task's last run built on) and source
//! triggers (`webhooks`: a verified push or pull request from GitHub or Azure DevOps, whose
//! webhook plane is `crate::source_hooks`).
//!
//! Triggers sit below the planes so that any plane can raise their events, and decide nothing
//! about access: a triggered run acts as its task's identity, and each registry it reaches
//! decides what that identity may do, as for any run.

pub mod base_images;
pub mod timers;
pub mod webhooks;
