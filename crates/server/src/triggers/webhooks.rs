//! Source triggers fire: what a verified webhook delivery (a push, a pull request) does to a
//! task. The trigger's configured branch and enabled events decide whether the delivery queues
//! a run; the run is the one `scheduleRun` would queue for the task
//! ([`crate::run_requests::task_request`]) with its git context pinned to the delivered commit,
//! as an `AutoRun` with ACR's `sourceTrigger` metadata. Also owns each trigger's webhook
//! address and secret, which the tasks plane reveals through `listDetails` and the webhook
//! plane (`source_hooks`) checks.
//!
//! The secret is derived, never stored: an HMAC of the deployment key over the task's internal
//! key (a random id given when the task is created, kept across updates) and the trigger's
//! name. Renaming the trigger or creating the task again gives a new one.
//!
//! Must never: decide whether a delivery is genuine (the webhook plane does, before this is
//! called), queue a run for a disabled task or trigger, another branch, or an event the trigger
//! does not have, or queue one delivery twice.

use chrono::{DateTime, Utc};
use serde_json::json;
use wharf_arm::ArmError;
use wharf_arm::source_trigger::SourceTrigger;
use wharf_arm::task::{TASKS, TaskSpec};
use wharf_storage::StorageError;

use crate::model::identities::Host;
use crate::model::registries::StoredRegistry;
use crate::runs::{self as executor, RunContext, RunOrigin, SourceEvent};
use crate::state::AppState;

/// Path prefix of the webhook plane: `/wharf-hooks/{registry}/{task}/{trigger}`.
pub const PREFIX: &str = "/wharf-hooks/";

/// The secret a source trigger's webhook deliveries are verified with (64 hex characters).
pub fn secret(state: &AppState, host: &Host, trigger: &str) -> String {
    wharf_identity::fingerprint(
        &state.secret_key,
        &format!("wharf source trigger webhook\n{}\n{trigger}", host.record.key),
    )
}

/// The address GitHub or Azure DevOps posts a trigger's deliveries to, for a server reached at
/// `base` (`scheme://host`).
pub fn url(base: &str, registry: &str, task: &str, trigger: &str) -> String {
    format!("{base}{PREFIX}{registry}/{task}/{trigger}")
}

/// A source trigger, found from a webhook's address.
pub struct Target {
    pub registry: StoredRegistry,
    pub host: Host,
    pub trigger: SourceTrigger,
    pub task_enabled: bool,
}

/// The trigger `trigger` of the task `task` of the registry `registry` (names compared
/// case-insensitively), or `None` if any of them does not exist or the task does not read.
pub async fn find(state: &AppState, registry: &str, task: &str, trigger: &str) -> Result<Option<Target>, StorageError> {
    let Some(info) = state.registry(registry).await? else { return Ok(None) };
    let Some(record) = state.meta.resource_get(&info.resource_id).await? else { return Ok(None) };
    let registry = StoredRegistry::from_record(record)?;
    let id = format!("{}/tasks/{task}", registry.record.id);
    let Some(record) = state.meta.resource_get(&id).await? else { return Ok(None) };
    if !record.resource_type.eq_ignore_ascii_case(TASKS) {
        return Ok(None);
    }
    let host = Host::from_record(record)?;
    let Ok(spec) = TaskSpec::parse(&host.resource.properties) else { return Ok(None) };
    let Some(trigger) = spec.sources.into_iter().find(|t| t.name.eq_ignore_ascii_case(trigger)) else {
        return Ok(None);
    };
    Ok(Some(Target { registry, host, trigger, task_enabled: spec.enabled }))
}

/// One change a delivery reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A push that moved `branch` to `commit`.
    Commit { branch: String, commit: String },
    /// A pull request opened or updated: `commit` (its head, on `head_branch`) to merge into
    /// `base_branch`.
    PullRequest { number: String, commit: String, head_branch: String, base_branch: String },
}

/// A verified delivery, read from its provider's payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The provider's delivery (or event) id; redeliveries carry the same one.
    pub id: String,
    /// The URLs the payload gives for its repository (clone, web, SSH).
    pub repository_urls: Vec<String>,
    pub changes: Vec<Change>,
}

/// What a delivery did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Queued {
        run_id: String,
    },
    /// Nothing queued, and why (for the provider's delivery log).
    Ignored(String),
}

/// Why a delivery that should run the task could not.
#[derive(Debug)]
pub enum DeliverError {
    Storage(StorageError),
    /// The task cannot run now (its identity gone, its context invalid).
    Run(ArmError),
}

/// The change of `delivery` that runs `trigger`, or why none does.
fn matching<'a>(trigger: &SourceTrigger, delivery: &'a Delivery) -> Result<&'a Change, String> {
    let mut why = vec![];
    for c in &delivery.changes {
        match c {
            Change::Commit { branch, .. } if !trigger.commit => {
                why.push(format!("a push to '{branch}', and the trigger's events do not include commit"))
            }
            Change::Commit { branch, .. } if *branch != trigger.branch => {
                why.push(format!("a push to '{branch}', and the trigger watches '{}'", trigger.branch))
            }
            Change::PullRequest { number, .. } if !trigger.pull_request => {
                why.push(format!("pull request {number}, and the trigger's events do not include pullrequest"))
            }
            Change::PullRequest { number, base_branch, .. } if *base_branch != trigger.branch => why.push(format!(
                "pull request {number} into '{base_branch}', and the trigger watches '{}'",
                trigger.branch
            )),
            c => return Ok(c),
        }
    }
    Err(if why.is_empty() { "the delivery reports no change".into() } else { why.join("; ") })
}

/// Queues the run `delivery` asks of `target`, unless the trigger's rules say no.
pub async fn deliver(
    state: &AppState,
    target: &Target,
    delivery: &Delivery,
    now: DateTime<Utc>,
) -> Result<Outcome, DeliverError> {
    let ignore = |why: String| Ok(Outcome::Ignored(why));
    let (host, trigger) = (&target.host, &target.trigger);
    if !target.task_enabled {
        return ignore(format!("The task '{}' is disabled.", host.record.name));
    }
    if !trigger.enabled {
        return ignore(format!("The source trigger '{}' is disabled.", trigger.name));
    }
    if !delivery.repository_urls.is_empty()
        && !trigger.same_repository(delivery.repository_urls.iter().map(String::as_str))
    {
        return ignore(format!(
            "The delivery is for '{}', not the trigger's repository '{}'.",
            delivery.repository_urls[0], trigger.repository_url
        ));
    }
    let change = match matching(trigger, delivery) {
        Ok(c) => c,
        Err(why) => return ignore(format!("Nothing to run: {why}.")),
    };
    let mut request =
        crate::run_requests::task_request(state, &target.registry, host, &json!({})).map_err(DeliverError::Run)?;
    let RunContext::Git { reference, .. } = &mut request.context else {
        return ignore(format!("The task '{}' does not build from a git repository.", host.record.name));
    };
    let (event_type, commit, pull_request, branch) = match change {
        Change::Commit { branch, commit } => ("commit", commit, None, branch),
        Change::PullRequest { number, commit, head_branch, .. } => {
            ("pullrequest", commit, Some(number.clone()), head_branch)
        }
    };
    *reference = Some(commit.clone());
    request.branch = Some(branch.clone());
    let key =
        format!("{}\n{}\n{}", host.record.id.to_ascii_lowercase(), trigger.name.to_ascii_lowercase(), delivery.id);
    if !state.run_queue.first_delivery(&key) {
        return ignore(format!("The delivery '{}' was handled already.", delivery.id));
    }
    let origin = RunOrigin::Source(SourceEvent {
        id: delivery.id.clone(),
        event_type,
        commit: commit.clone(),
        pull_request,
        repository_url: trigger.repository_url.split('#').next().unwrap_or_default().to_string(),
        branch: branch.clone(),
        provider: trigger.control.as_str(),
    });
    let new = executor::new_run(&target.registry, &request, &origin, now);
    let run = match state.meta.run_create(&new, now).await {
        Ok(r) => r,
        Err(e) => {
            state.run_queue.forget_delivery(&key);
            return Err(DeliverError::Storage(e));
        }
    };
    tracing::info!(task = %host.record.id, trigger = %trigger.name, event_type, commit, run = %run.run_id, "source trigger fired");
    executor::queued(state, &target.registry, &run);
    Ok(Outcome::Queued { run_id: run.run_id })
}

#[cfg(test)]
mod tests {
    use wharf_arm::source_trigger::SourceControl;

    use super::*;

    fn trigger(commit: bool, pull_request: bool) -> SourceTrigger {
        SourceTrigger {
            name: "t".into(),
            enabled: true,
            commit,
            pull_request,
            control: SourceControl::Github,
            repository_url: "https://github.com/o/r.git".into(),
            branch: "main".into(),
        }
    }

    fn delivery(changes: Vec<Change>) -> Delivery {
        Delivery { id: "d".into(), repository_urls: vec![], changes }
    }

    #[test]
    fn only_the_watched_branch_and_enabled_events_run() {
        let push = |b: &str| Change::Commit { branch: b.into(), commit: "c".repeat(40) };
        let pr = |base: &str| Change::PullRequest {
            number: "7".into(),
            commit: "d".repeat(40),
            head_branch: "feature".into(),
            base_branch: base.into(),
        };
        assert_eq!(matching(&trigger(true, false), &delivery(vec![push("main")])), Ok(&push("main")));
        let e = matching(&trigger(true, false), &delivery(vec![push("dev")])).unwrap_err();
        assert!(e.contains("'dev'") && e.contains("watches 'main'"), "{e}");
        let e = matching(&trigger(false, true), &delivery(vec![push("main")])).unwrap_err();
        assert!(e.contains("do not include commit"), "{e}");
        assert_eq!(matching(&trigger(false, true), &delivery(vec![pr("main")])), Ok(&pr("main")));
        assert!(matching(&trigger(true, false), &delivery(vec![pr("main")])).is_err());
        assert!(matching(&trigger(true, true), &delivery(vec![pr("dev")])).is_err());
        // Azure DevOps pushes several refs at once: the watched one is found.
        assert_eq!(matching(&trigger(true, false), &delivery(vec![push("dev"), push("main")])), Ok(&push("main")));
        assert!(matching(&trigger(true, true), &delivery(vec![])).is_err());
    }
}
