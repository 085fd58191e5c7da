//! Base-image triggers: a task runs again when a tag that its last run built on is pushed with
//! new content, in any registry of the deployment. Two halves meet in the metadata store's
//! `task_images`:
//!
//! - [`record`], when a task's run starts: the base images of each build step's Dockerfile
//!   (`wharf_tasks::base_images`: the final stage's base is the runtime one) resolved to the
//!   digests their tags name now, and the images the run pushes. Images outside this deployment
//!   are not recorded: Wharf sees no push to them.
//! - [`pushed`], when the data plane stores a manifest under a tag: every task that recorded
//!   that tag as a base with another digest, whose `baseImageTrigger` is enabled and whose
//!   trigger type takes that role (`Runtime`: the runtime base only; `All`: any), queues its own
//!   run request as an `AutoRun` with ACR's `imageUpdateTrigger` — unless the task already has
//!   an image-update run queued (a burst of pushes coalesces into that run, which builds on the
//!   newest bases when it starts).
//!
//! Chains rebuild in order: a task whose image is a base of another triggers it by pushing, so
//! base → mid → app runs mid, then app once mid's image is pushed. Two refinements keep that to
//! one run each: of the tasks one push triggers, a task that another of them leads to (through
//! its pushed images) is left for that one's push; and a task whose pushed images lead back to
//! itself is on a cycle and is never triggered by a base image (the server log names it).
//!
//! Must never: trigger a task on a push it cannot know of (another deployment's images), run a
//! task whose trigger or status is disabled, or loop.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::path::Path;
use std::sync::Arc;

use chrono::{SecondsFormat, Utc};
use serde_json::json;
use wharf_oci::{RepositoryName, Tag};
use wharf_storage::{RegistryKey, RunRecord, StorageError, TaskImage, TaskImageRole};

use crate::runs::{self as executor, RunOrigin, RunRequest};
use crate::state::{AppState, HostRegistry};

/// How many tasks a reachability search looks at before it gives up (and answers "no").
const MAX_GRAPH: usize = 256;

/// A tag of a registry of this deployment that now names `digest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub registry: RegistryKey,
    pub registry_name: String,
    pub repository: String,
    pub tag: String,
    pub digest: String,
}

/// An image reference of a build resolved to a registry of this deployment.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Resolved {
    registry: RegistryKey,
    registry_name: String,
    repository: String,
    /// `None` for a reference by digest (which no push changes).
    tag: Option<String>,
}

/// The registry, repository and tag that `reference` names, when it is in this deployment:
/// `{registry}.{domain}[:port]/repo[:tag]` (host style), or `host:port/{registry}/repo[:tag]`
/// with this server's port (path style). A reference without a registry host is Docker Hub's.
async fn resolve(state: &AppState, reference: &str) -> Option<Resolved> {
    if !wharf_tasks::has_registry(reference) {
        return None;
    }
    let (host, rest) = reference.split_once('/')?;
    let (path, tag) = match rest.split_once('@') {
        Some((p, _digest)) => (p, None),
        None => match rest.rsplit_once(':').filter(|(_, t)| !t.contains('/')) {
            Some((p, t)) => (p, Some(t.to_string())),
            None => (rest, Some("latest".to_string())),
        },
    };
    let (info, repository) = match state.registry_of_host(host).await.ok()? {
        HostRegistry::Registry(info) => (info, path.to_string()),
        HostRegistry::Unknown(_) => return None,
        HostRegistry::NotALoginServer => {
            let port = host.rsplit_once(':').and_then(|(_, p)| p.parse::<u16>().ok());
            if port != Some(state.public_port) {
                return None;
            }
            let (name, repo) = path.split_once('/')?;
            (state.registry(name).await.ok()??, repo.to_string())
        }
    };
    RepositoryName::parse(&repository).ok()?;
    if let Some(t) = &tag {
        Tag::parse(t).ok()?;
    }
    Some(Resolved { registry: info.key.clone(), registry_name: info.name.clone(), repository, tag })
}

/// Records the images a task's run builds on and pushes, as it starts (`context`: the run's
/// staged files). Quick runs record nothing. What cannot be read (a Dockerfile that does not
/// parse) is logged to the run and left out; it never fails the run.
pub async fn record(
    state: &AppState,
    run: &RunRecord,
    request: &RunRequest,
    plan: &wharf_tasks::Plan,
    context: Option<&Path>,
    log: &tokio::sync::mpsc::UnboundedSender<String>,
) {
    let Some(task_id) = &request.task_id else { return };
    let mut images: Vec<TaskImage> = Vec::new();
    let mut shown: Vec<String> = Vec::new();
    for step in &plan.steps {
        match &step.action {
            wharf_tasks::StepAction::Build(build) => {
                let Some(dir) = context else { continue };
                let bases = wharf_agent::build_inputs(dir, plan, step, build).and_then(|inputs| {
                    let text = read_dockerfile(&inputs.dockerfile)?;
                    wharf_tasks::base_images(&text, &inputs.build_args, build.target.as_deref())
                });
                let bases = match bases {
                    Ok(b) => b,
                    Err(why) => {
                        let _ = log.send(format!("The base images of step {} are not known ({why}): base-image updates will not run this task for it.", step.id));
                        continue;
                    }
                };
                for base in bases {
                    let Some(r) = resolve(state, &base.reference).await else { continue };
                    let Some(tag) = r.tag else { continue };
                    let digest = tag_digest(state, &r.registry, &r.repository, &tag).await;
                    let role = if base.runtime { TaskImageRole::Runtime } else { TaskImageRole::BuildTime };
                    shown.push(format!(
                        "  - {} ({}): {}",
                        base.reference,
                        if base.runtime { "runtime" } else { "build time" },
                        digest.as_deref().unwrap_or("not found")
                    ));
                    images.push(TaskImage { registry: r.registry, repository: r.repository, tag, role, digest });
                }
            }
            wharf_tasks::StepAction::Push(refs) => {
                for reference in refs {
                    if let Some(r) = resolve(state, reference).await
                        && let Some(tag) = r.tag
                    {
                        images.push(TaskImage {
                            registry: r.registry,
                            repository: r.repository,
                            tag,
                            role: TaskImageRole::Output,
                            digest: None,
                        });
                    }
                }
            }
            wharf_tasks::StepAction::Cmd(_) => {}
        }
    }
    if !shown.is_empty() {
        let _ = log.send(format!("Base images of this deployment the run builds on:\n{}", shown.join("\n")));
    }
    if let Err(e) = state.meta.task_images_set(task_id, &run.registry, &images, Utc::now()).await {
        tracing::warn!(error = %e, run = %run.run_id, "recording a run's base images failed");
    }
}

fn read_dockerfile(path: &Path) -> Result<String, String> {
    const MAX: u64 = 1 << 20;
    let meta = std::fs::metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.len() > MAX {
        return Err(format!("the Dockerfile is larger than {MAX} bytes"));
    }
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

async fn tag_digest(state: &AppState, registry: &RegistryKey, repository: &str, tag: &str) -> Option<String> {
    let repo = RepositoryName::parse(repository).ok()?;
    let tag = Tag::parse(tag).ok()?;
    state.meta.tag_get(registry, &repo, &tag).await.ok()?.map(|t| t.digest.to_string())
}

/// The data plane stored a manifest under a tag: the tasks built on it run (in the background;
/// the push's answer does not wait).
pub fn pushed(state: &Arc<AppState>, event: Pushed) {
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(e) = handle(&state, &event).await {
            tracing::error!(error = %e, registry = %event.registry_name, repository = %event.repository, tag = %event.tag, "base-image triggers failed");
        }
    });
}

/// What a push does to one task that recorded its tag as a base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Run,
    /// Its last run already built on this digest.
    Current,
    /// Its trigger is disabled, or takes only the runtime base and this is a build-time one.
    NotTriggered,
    /// Another task this push runs leads to it; it runs when that one pushes.
    AfterUpstream(String),
    /// Its pushed images lead back to itself.
    OnCycle,
}

/// A task that recorded the pushed tag as a base, as [`choose`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub task: String,
    pub role: TaskImageRole,
    /// The digest its last run built on.
    pub digest: Option<String>,
    /// Its `baseImageTrigger` type if the trigger and the task are enabled: `All` or `Runtime`.
    pub trigger: Option<String>,
}

/// The verdict for each candidate of a push of `digest`; `reaches(a, b)`: task `a`'s pushed
/// images lead, through the tasks built on them, to task `b` (`reaches(a, a)`: a cycle).
pub fn choose(digest: &str, candidates: &[Candidate], reaches: impl Fn(&str, &str) -> bool) -> Vec<(String, Verdict)> {
    let first: Vec<(String, Verdict)> = candidates
        .iter()
        .map(|c| {
            let verdict = match &c.trigger {
                _ if c.digest.as_deref() == Some(digest) => Verdict::Current,
                None => Verdict::NotTriggered,
                Some(t) if t.eq_ignore_ascii_case("Runtime") && c.role != TaskImageRole::Runtime => {
                    Verdict::NotTriggered
                }
                Some(_) if reaches(&c.task, &c.task) => Verdict::OnCycle,
                Some(_) => Verdict::Run,
            };
            (c.task.clone(), verdict)
        })
        .collect();
    let running: Vec<&String> = first.iter().filter(|(_, v)| *v == Verdict::Run).map(|(t, _)| t).collect();
    first
        .iter()
        .map(|(task, verdict)| match verdict {
            Verdict::Run => match running.iter().find(|u| *u != &task && reaches(u, task)) {
                Some(upstream) => (task.clone(), Verdict::AfterUpstream((*upstream).clone())),
                None => (task.clone(), Verdict::Run),
            },
            v => (task.clone(), v.clone()),
        })
        .collect()
}

/// The task graph around a push: for each task, the tasks built on the images it pushes.
struct Graph {
    next: HashMap<String, BTreeSet<String>>,
}

impl Graph {
    /// Loads what is reachable from `roots`, up to [`MAX_GRAPH`] tasks.
    async fn around(state: &AppState, roots: &[String]) -> Result<Graph, StorageError> {
        let mut next: HashMap<String, BTreeSet<String>> = HashMap::new();
        let mut queue: VecDeque<String> = roots.iter().cloned().collect();
        while let Some(task) = queue.pop_front() {
            if next.contains_key(&task) || next.len() >= MAX_GRAPH {
                continue;
            }
            let mut after = BTreeSet::new();
            for row in state.meta.task_images_of(&task).await? {
                if row.image.role != TaskImageRole::Output {
                    continue;
                }
                for user in
                    state.meta.task_images_using(&row.image.registry, &row.image.repository, &row.image.tag).await?
                {
                    if user.image.role != TaskImageRole::Output {
                        after.insert(user.task.clone());
                        queue.push_back(user.task);
                    }
                }
            }
            next.insert(task, after);
        }
        Ok(Graph { next })
    }

    fn reaches(&self, from: &str, to: &str) -> bool {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut queue: VecDeque<&str> = self.next.get(from).into_iter().flatten().map(String::as_str).collect();
        while let Some(t) = queue.pop_front() {
            if t == to {
                return true;
            }
            if seen.insert(t) {
                queue.extend(self.next.get(t).into_iter().flatten().map(String::as_str));
            }
        }
        false
    }
}

/// The task's `baseImageTrigger` type when the task and its trigger are enabled.
fn trigger_of(properties: &serde_json::Value) -> Option<String> {
    let enabled = |v: &serde_json::Value| v.as_str().is_none_or(|s| s.eq_ignore_ascii_case("Enabled"));
    let t = &properties["trigger"]["baseImageTrigger"];
    (t.is_object() && enabled(&properties["status"]) && enabled(&t["status"]))
        .then(|| t["baseImageTriggerType"].as_str().unwrap_or("Runtime").to_string())
}

async fn handle(state: &AppState, event: &Pushed) -> Result<(), StorageError> {
    let rows = state.meta.task_images_using(&event.registry, &event.repository, &event.tag).await?;
    let mut candidates: Vec<Candidate> = Vec::new();
    let mut hosts = HashMap::new();
    for row in rows.into_iter().filter(|r| r.image.role != TaskImageRole::Output) {
        if candidates.iter().any(|c| c.task == row.task) {
            continue;
        }
        let Some(host) = crate::model::identities::host(&*state.meta, &row.task).await? else {
            // The task is gone: forget what it recorded.
            state.meta.task_images_set(&row.task, &row.task_registry, &[], Utc::now()).await?;
            continue;
        };
        candidates.push(Candidate {
            task: row.task.clone(),
            role: row.image.role,
            digest: row.image.digest.clone(),
            trigger: trigger_of(&host.resource.properties),
        });
        hosts.insert(row.task.clone(), (row.task_registry.clone(), host));
    }
    if candidates.is_empty() {
        return Ok(());
    }
    let roots: Vec<String> = candidates.iter().map(|c| c.task.clone()).collect();
    let graph = Graph::around(state, &roots).await?;
    for (task, verdict) in choose(&event.digest, &candidates, |a, b| graph.reaches(a, b)) {
        let (task_registry, host) = &hosts[&task];
        match verdict {
            Verdict::Run => queue(state, event, task_registry, host).await?,
            Verdict::OnCycle => tracing::warn!(
                task = %host.record.name,
                image = %format!("{}/{}:{}", event.registry_name, event.repository, event.tag),
                "the task's pushed images lead back to it: base-image updates do not run tasks on a cycle"
            ),
            Verdict::AfterUpstream(upstream) => tracing::info!(
                task = %host.record.name,
                %upstream,
                "base image updated: the task runs when the task it builds on pushes"
            ),
            Verdict::Current | Verdict::NotTriggered => {}
        }
    }
    Ok(())
}

async fn queue(
    state: &AppState,
    event: &Pushed,
    task_registry: &RegistryKey,
    host: &crate::model::identities::Host,
) -> Result<(), StorageError> {
    let Some(registry) = executor::registry_of(state, task_registry).await? else { return Ok(()) };
    let request = match crate::run_requests::task_request(state, &registry, host, &json!({})) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(task = %host.record.name, error = %e.message, "a base-image update cannot run the task");
            return Ok(());
        }
    };
    let origin = RunOrigin::ImageUpdate {
        registry: state.login_server(&event.registry_name),
        repository: event.repository.clone(),
        tag: event.tag.clone(),
        digest: event.digest.clone(),
    };
    let now = Utc::now();
    match state.meta.run_create_for_image_update(&executor::new_run(&registry, &request, &origin, now), now).await? {
        Some(run) => {
            tracing::info!(
                task = %host.record.name,
                run = %run.run_id,
                image = %format!("{}/{}:{}@{}", event.registry_name, event.repository, event.tag, event.digest),
                at = %now.to_rfc3339_opts(SecondsFormat::Millis, true),
                "base image updated: run queued"
            );
            executor::queued(state, &registry, &run);
        }
        None => {
            tracing::info!(task = %host.record.name, "base image updated: the task's queued image-update run takes it")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(task: &str, role: TaskImageRole, digest: Option<&str>, trigger: Option<&str>) -> Candidate {
        Candidate { task: task.into(), role, digest: digest.map(str::to_string), trigger: trigger.map(str::to_string) }
    }

    fn edges(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str, &str) -> bool {
        move |a: &str, b: &str| {
            let mut seen = vec![a.to_string()];
            let mut i = 0;
            while i < seen.len() {
                let from = seen[i].clone();
                for (x, y) in pairs {
                    if *x == from {
                        if *y == b {
                            return true;
                        }
                        if !seen.iter().any(|s| s == y) {
                            seen.push(y.to_string());
                        }
                    }
                }
                i += 1;
            }
            false
        }
    }

    #[test]
    fn runtime_triggers_take_only_the_runtime_base_and_all_takes_any() {
        let got = choose(
            "sha256:new",
            &[
                c("rt-run", TaskImageRole::Runtime, Some("sha256:old"), Some("Runtime")),
                c("rt-build", TaskImageRole::BuildTime, Some("sha256:old"), Some("Runtime")),
                c("all-build", TaskImageRole::BuildTime, Some("sha256:old"), Some("All")),
                c("off", TaskImageRole::Runtime, Some("sha256:old"), None),
                c("current", TaskImageRole::Runtime, Some("sha256:new"), Some("All")),
                c("never-found", TaskImageRole::Runtime, None, Some("Runtime")),
            ],
            edges(&[]),
        );
        let verdicts: Vec<Verdict> = got.into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            verdicts,
            [Verdict::Run, Verdict::NotTriggered, Verdict::Run, Verdict::NotTriggered, Verdict::Current, Verdict::Run]
        );
    }

    #[test]
    fn a_task_downstream_of_another_waits_for_its_push_and_cycles_never_run() {
        // mid and app both build on base; app also builds on mid's image.
        let got = choose(
            "sha256:new",
            &[
                c("mid", TaskImageRole::Runtime, Some("sha256:old"), Some("Runtime")),
                c("app", TaskImageRole::BuildTime, Some("sha256:old"), Some("All")),
            ],
            edges(&[("mid", "app")]),
        );
        assert_eq!(got, [("mid".to_string(), Verdict::Run), ("app".to_string(), Verdict::AfterUpstream("mid".into()))]);
        // a and b build on each other's images.
        let got = choose(
            "sha256:new",
            &[c("a", TaskImageRole::Runtime, Some("sha256:old"), Some("Runtime"))],
            edges(&[("a", "b"), ("b", "a")]),
        );
        assert_eq!(got, [("a".to_string(), Verdict::OnCycle)]);
    }

    #[test]
    fn triggers_read_from_the_task() {
        let p = |v: serde_json::Value| trigger_of(&v);
        assert_eq!(
            p(json!({"trigger": {"baseImageTrigger": {"status": "Enabled", "baseImageTriggerType": "All"}}}))
                .as_deref(),
            Some("All")
        );
        assert_eq!(p(json!({"trigger": {"baseImageTrigger": {"name": "x"}}})).as_deref(), Some("Runtime"));
        assert_eq!(p(json!({"trigger": {"baseImageTrigger": {"status": "Disabled"}}})), None);
        assert_eq!(p(json!({"status": "Disabled", "trigger": {"baseImageTrigger": {"status": "Enabled"}}})), None);
        assert_eq!(p(json!({"trigger": {}})), None);
    }
}
