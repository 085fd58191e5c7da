//! Owns one run from start to end: its directory (`runs/<run_id>/` with `workspace/`, the
//! auth file, env files and digest files), the scheduling of its steps by their `depends_on`
//! (at most `max_parallel_steps` at once), retries, step and run timeouts, cancellation, and
//! the cleanup of its containers and directory. Must never leave the run's auth file or a
//! non-`keep` container behind, and never send an unmasked line.

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;
use wharf_tasks::{BuildStep, CmdStep, Plan, PlannedStep, RunStatus, StepAction};

use crate::argv::{self, Common};
use crate::cgroups;
use crate::conf;
use crate::log::{self, RunLog};
use crate::orphans;
use crate::process::{self, Exit};
use crate::{Availability, Inner, Job, LogSink, Outcome, PushedImage, StepOutcome};

/// Housekeeping commands (`podman rm`, `podman kill`) get this long.
const HOUSEKEEPING: Duration = Duration::from_secs(30);
/// "No timeout": far enough.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// One run's shared state.
struct Ctx {
    inner: Arc<Inner>,
    run_id: String,
    /// The id the log names.
    display: String,
    /// The engine's plain-HTTP registries and the run's.
    insecure: Vec<String>,
    plan: wharf_tasks::Plan,
    dir: PathBuf,
    workspace: PathBuf,
    auth: PathBuf,
    log: RunLog,
    /// The engine's environment plus `REGISTRY_AUTH_FILE`.
    env: Vec<(String, String)>,
    images: Mutex<Vec<PushedImage>>,
    /// Tags built by this run's build steps so far: the only images a step may use without
    /// pulling them (its credentials decide every other image, as on a fresh agent).
    built: Mutex<Vec<String>>,
    /// Every container name a step used, with its `keep`.
    containers: Mutex<Vec<(String, bool)>>,
    /// `podman logs -f` of the detached steps.
    followers: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl Ctx {
    fn common(&self) -> Common<'_> {
        Common {
            global: self.inner.global.clone(),
            network: self.inner.cfg.network.as_arg(),
            authfile: &self.auth,
            cert_dir: self.inner.cfg.cert_dir.as_deref(),
            insecure: &self.insecure,
        }
    }
}

/// Why the run stopped before all its steps were done.
enum End {
    Failed(String),
    /// A step's timeout (`run: false`) or the run's.
    Timeout {
        run: bool,
        error: String,
    },
    Canceled,
    Error(String),
}

/// How one attempt of a step went.
enum Attempt {
    Ok,
    Exit(i32),
    TimedOut,
    Stopped,
    Error(String),
}

pub(crate) async fn execute(
    inner: Arc<Inner>,
    availability: Availability,
    job: Job,
    sink: LogSink,
    cancel: CancellationToken,
) -> Outcome {
    let t0 = Instant::now();
    let log = RunLog::new(sink, &job.plan.secrets);
    let early = |log: &RunLog, msg: String| {
        let error = log.mask(&msg);
        log.event(&msg);
        let shown = job.display_id.as_deref().unwrap_or(&job.run_id);
        log.line(&format!("Run ID: {shown} failed after {}. Error: {error}", log::go_seconds(t0.elapsed())));
        Outcome { status: RunStatus::Error, error: Some(error), steps: Vec::new(), images: Vec::new() }
    };
    if let Availability::Missing { message } = availability {
        return early(&log, message);
    }
    if let Err(msg) = validate(&job) {
        return early(&log, msg);
    }
    let dir = inner.cfg.work_root.join("runs").join(&job.run_id);
    // `create_dir` (not `_all`): an existing directory belongs to another run with this ID,
    // and is left alone.
    let created = std::fs::create_dir_all(dir.parent().expect("runs/<id>")).and_then(|()| std::fs::create_dir(&dir));
    if let Err(e) = created {
        return early(&log, format!("creating the run directory {}: {e}", dir.display()));
    }
    let workspace = dir.join("workspace");
    let filled = crate::context::fill(&dir, &workspace, &job.context, &log, after(t0, job.timeout), &cancel).await;
    let auth = if job.auth.is_null() { serde_json::json!({"auths": {}}) } else { job.auth.clone() };
    let prepared = filled.and_then(|_commit| {
        write_private(&dir.join("auth.json"), auth.to_string().as_bytes())
            .map_err(|e| format!("writing the auth file: {e}"))
    });
    if let Err(msg) = prepared {
        let _ = std::fs::remove_dir_all(&dir);
        return early(&log, msg);
    }
    let auth = dir.join("auth.json");
    let mut env = inner.env.clone();
    env.push(("REGISTRY_AUTH_FILE".into(), argv::path(&auth)));
    let mut insecure = inner.cfg.insecure_registries.clone();
    insecure.extend(job.insecure_registries.iter().filter(|r| !insecure.contains(r)).cloned().collect::<Vec<_>>());
    if !job.insecure_registries.is_empty() {
        // The run's own registries.conf: the engine's entries plus the run's.
        let conf = dir.join("registries.conf");
        if let Err(e) = std::fs::write(&conf, conf::registries_conf(&insecure)) {
            let _ = std::fs::remove_dir_all(&dir);
            return early(&log, format!("writing the run's registries.conf: {e}"));
        }
        env.retain(|(k, _)| k != "CONTAINERS_REGISTRIES_CONF");
        env.push(("CONTAINERS_REGISTRIES_CONF".into(), argv::path(&conf)));
    }
    let ctx = Arc::new(Ctx {
        inner,
        run_id: job.run_id.clone(),
        display: job.display_id.clone().unwrap_or_else(|| job.run_id.clone()),
        insecure,
        plan: job.plan,
        workspace: dir.join("workspace"),
        dir,
        auth,
        log: log.clone(),
        env,
        images: Mutex::new(Vec::new()),
        built: Mutex::new(Vec::new()),
        containers: Mutex::new(Vec::new()),
        followers: Mutex::new(Vec::new()),
    });

    let (end, steps) = schedule(&ctx, after(t0, job.timeout), job.timeout, &cancel).await;
    cleanup(&ctx).await;

    let elapsed = log::go_seconds(t0.elapsed());
    let images = ctx.images.lock().unwrap().clone();
    let (status, error) = match end {
        None => {
            log.line(&format!("Run ID: {} was successful after {elapsed}", ctx.display));
            return Outcome { status: RunStatus::Succeeded, error: None, steps, images };
        }
        Some(End::Failed(e)) => (RunStatus::Failed, e),
        Some(End::Timeout { error, .. }) => (RunStatus::Timeout, error),
        Some(End::Error(e)) => (RunStatus::Error, e),
        Some(End::Canceled) => (RunStatus::Canceled, "the run was canceled".to_string()),
    };
    let error = log.mask(&error);
    if status == RunStatus::Canceled {
        log.line(&format!("Run ID: {} was canceled after {elapsed}", ctx.display));
    } else {
        log.line(&format!("Run ID: {} failed after {elapsed}. Error: {error}", ctx.display));
    }
    Outcome { status, error: Some(error), steps, images }
}

fn validate(job: &Job) -> Result<(), String> {
    let id = &job.run_id;
    let id_ok = !id.is_empty()
        && id.len() <= 64
        && !id.starts_with('.')
        && id.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !id_ok {
        return Err(format!("invalid run ID '{id}': use 1 to 64 of [A-Za-z0-9_.-], not starting with '.'"));
    }
    let n = job.plan.steps.len();
    for (i, s) in job.plan.steps.iter().enumerate() {
        if let Some(d) = s.depends_on.iter().find(|&&d| d >= n || d == i) {
            return Err(format!("step {} depends on step index {d}, which is not another step of the plan", s.id));
        }
    }
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    f.write_all(content)
}

/// Starts every step whose dependencies are done, up to the parallel limit, until all are
/// done or the run ends early. Returns why it ended early, and the outcomes of the steps that
/// started.
async fn schedule(
    ctx: &Arc<Ctx>,
    deadline: Instant,
    run_timeout: Duration,
    cancel: &CancellationToken,
) -> (Option<End>, Vec<StepOutcome>) {
    let steps = &ctx.plan.steps;
    let max = ctx.inner.cfg.max_parallel_steps.max(1);
    let stop = CancellationToken::new();
    let mut started = vec![false; steps.len()];
    let mut done: Vec<Option<StepOutcome>> = vec![None; steps.len()];
    let mut set = JoinSet::new();
    let mut end: Option<End> = None;
    loop {
        // Canceled or out of time before a step could start: start none.
        if end.is_none() && (cancel.is_cancelled() || Instant::now() >= deadline) {
            end = Some(if cancel.is_cancelled() {
                End::Canceled
            } else {
                End::Timeout { run: true, error: format!("the run exceeded its timeout of {}s", run_timeout.as_secs()) }
            });
            stop.cancel();
        }
        if end.is_none() {
            for i in 0..steps.len() {
                if set.len() >= max {
                    break;
                }
                if !started[i] && steps[i].depends_on.iter().all(|&d| done[d].is_some()) {
                    started[i] = true;
                    let (ctx, stop) = (ctx.clone(), stop.clone());
                    set.spawn(async move { (i, run_step(&ctx, i, &stop).await) });
                }
            }
        }
        if set.is_empty() {
            break;
        }
        tokio::select! {
            joined = set.join_next() => {
                let Some(joined) = joined else { continue };
                let (i, (mut outcome, why)) = match joined {
                    Ok(r) => r,
                    Err(e) => {
                        end.get_or_insert(End::Error(format!("a step's task failed: {e}")));
                        stop.cancel();
                        continue;
                    }
                };
                if outcome.status == RunStatus::Canceled && matches!(end, Some(End::Timeout { run: true, .. })) {
                    outcome.status = RunStatus::Timeout;
                }
                if outcome.status != RunStatus::Succeeded && !steps[i].ignore_errors && end.is_none() {
                    end = Some(match outcome.status {
                        RunStatus::Timeout => End::Timeout { run: false, error: format!("failed during run, err: {why}") },
                        RunStatus::Error => End::Error(why),
                        _ => End::Failed(format!("failed during run, err: {why}")),
                    });
                    stop.cancel();
                }
                done[i] = Some(outcome);
            }
            _ = sleep_until(deadline), if end.is_none() => {
                end = Some(End::Timeout {
                    run: true,
                    error: format!("the run exceeded its timeout of {}s", run_timeout.as_secs()),
                });
                stop.cancel();
            }
            _ = cancel.cancelled(), if end.is_none() => {
                end = Some(End::Canceled);
                stop.cancel();
            }
        }
    }
    if end.is_none() && started.iter().any(|s| !s) {
        let ids: Vec<&str> = steps.iter().zip(&started).filter(|(_, s)| !**s).map(|(s, _)| s.id.as_str()).collect();
        end = Some(End::Error(format!("steps {} never started: their dependencies form a cycle", ids.join(", "))));
    }
    (end, done.into_iter().flatten().collect())
}

/// One step with its start delay and retries. Returns its outcome and, when it did not
/// succeed, why (`exit status 5`).
async fn run_step(ctx: &Ctx, index: usize, stop: &CancellationToken) -> (StepOutcome, String) {
    let step = &ctx.plan.steps[index];
    let started = Utc::now();
    let t = Instant::now();
    ctx.log.event(&log::step_header(
        &step.id,
        step.timeout,
        step.working_directory.as_deref().unwrap_or(""),
        ctx.inner.cfg.network.as_arg(),
    ));
    let finish = |status, exit_code, why: String| {
        let elapsed = t.elapsed();
        if status == RunStatus::Succeeded {
            ctx.log.event(&log::step_succeeded(&step.id, elapsed));
        } else {
            ctx.log.event(&log::step_failed(&step.id, elapsed, &why));
        }
        (StepOutcome { id: step.id.clone(), status, exit_code, started, duration: elapsed }, why)
    };
    if !step.start_delay.is_zero() && !pause(step.start_delay, stop).await {
        return finish(RunStatus::Canceled, None, "canceled".into());
    }
    let mut attempt = 0;
    loop {
        let limit = if step.timeout.is_zero() { FOREVER } else { step.timeout };
        let deadline = after(Instant::now(), limit);
        let result = match &step.action {
            StepAction::Build(b) => build(ctx, index, step, b, deadline, stop).await,
            StepAction::Push(images) => push(ctx, index, images, deadline, stop).await,
            StepAction::Cmd(c) => cmd(ctx, index, step, c, attempt, deadline, stop).await,
        };
        let (status, code, why) = match result {
            Attempt::Ok => return finish(RunStatus::Succeeded, Some(0), String::new()),
            Attempt::Stopped => return finish(RunStatus::Canceled, None, "canceled".into()),
            Attempt::Exit(c) => (RunStatus::Failed, Some(c), format!("exit status {c}")),
            Attempt::TimedOut => {
                (RunStatus::Timeout, None, format!("step {} exceeded its timeout of {}s", step.id, limit.as_secs()))
            }
            Attempt::Error(e) => (RunStatus::Error, None, e),
        };
        if attempt >= step.retries {
            return finish(status, code, why);
        }
        attempt += 1;
        ctx.log.event(&format!(
            "Step ID: {} failed ({why}); retry {attempt} of {} in {}s",
            step.id,
            step.retries,
            step.retry_delay.as_secs_f64()
        ));
        if !pause(step.retry_delay, stop).await {
            return finish(RunStatus::Canceled, None, "canceled".into());
        }
    }
}

/// `t + d`, or [`FOREVER`] from `t` when that overflows.
fn after(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).or_else(|| t.checked_add(FOREVER)).unwrap_or(t)
}

/// Sleeps, unless stopped first (then `false`).
async fn pause(d: Duration, stop: &CancellationToken) -> bool {
    tokio::select! {
        _ = sleep(d) => true,
        _ = stop.cancelled() => false,
    }
}

fn attempt_of(exit: Exit, tool: &Path) -> Attempt {
    match exit {
        Exit::Code(0) => Attempt::Ok,
        Exit::Code(c) => Attempt::Exit(c),
        Exit::TimedOut => Attempt::TimedOut,
        Exit::Stopped => Attempt::Stopped,
        Exit::Spawn(e) => Attempt::Error(format!("could not run {}: {e}", tool.display())),
    }
}

/// The step's environment: the plan's, then its own (a later value wins).
fn step_env(ctx: &Ctx, step: &PlannedStep) -> Vec<(String, String)> {
    env_of(&ctx.plan, step)
}

fn env_of(plan: &Plan, step: &PlannedStep) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in plan.env.iter().chain(&step.env) {
        match out.iter_mut().find(|(ek, _)| ek == k) {
            Some(e) => e.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

/// A path inside the workspace, from one relative to it; `None` when it would leave it.
fn inside(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut out = base.to_path_buf();
    let mut depth = 0usize;
    for c in Path::new(rel).components() {
        match c {
            Component::CurDir => {}
            Component::Normal(n) => {
                out.push(n);
                depth += 1;
            }
            Component::ParentDir if depth > 0 => {
                out.pop();
                depth -= 1;
            }
            _ => return None,
        }
    }
    Some(out)
}

/// The host directory of the step's working directory: `/workspace/x` (or `x`) is
/// `<run>/workspace/x`; anything else is the workspace itself.
fn host_working_dir(workspace: &Path, step: &PlannedStep) -> PathBuf {
    let wd = step.working_directory.as_deref().unwrap_or("");
    let rel = wd.strip_prefix("/workspace").unwrap_or(wd);
    if rel.starts_with('/') && !wd.starts_with("/workspace/") {
        return workspace.to_path_buf();
    }
    inside(workspace, rel.trim_start_matches('/')).unwrap_or_else(|| workspace.to_path_buf())
}

/// What a build step builds, on the host: its context directory and Dockerfile inside
/// `workspace`, and its build arguments (a bare `--build-arg K` takes K from the step's
/// environment, or is left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildInputs {
    pub context: PathBuf,
    pub dockerfile: PathBuf,
    pub build_args: Vec<(String, String)>,
}

/// The [`BuildInputs`] of `build`, step `step` of `plan`, with the run's files in `workspace`
/// (the engine's own path to them, and the server's for the base images a build uses); an
/// error when the context or the Dockerfile would lie outside the workspace.
pub fn build_inputs(
    workspace: &Path,
    plan: &Plan,
    step: &PlannedStep,
    build: &BuildStep,
) -> Result<BuildInputs, String> {
    let base = host_working_dir(workspace, step);
    let context = inside(&base, &build.context)
        .ok_or_else(|| format!("build context '{}' is not inside the run's working directory", build.context))?;
    let dockerfile_rel = build.dockerfile.as_deref().unwrap_or("Dockerfile");
    let dockerfile = inside(&context, dockerfile_rel)
        .ok_or_else(|| format!("Dockerfile '{dockerfile_rel}' is not inside the build context"))?;
    let env: HashMap<String, String> = env_of(plan, step).into_iter().collect();
    let build_args = build
        .build_args
        .iter()
        .filter_map(|(k, v)| v.clone().or_else(|| env.get(k).cloned()).map(|v| (k.clone(), v)))
        .collect();
    Ok(BuildInputs { context, dockerfile, build_args })
}

async fn build(
    ctx: &Ctx,
    index: usize,
    step: &PlannedStep,
    b: &BuildStep,
    deadline: Instant,
    stop: &CancellationToken,
) -> Attempt {
    let inputs = match build_inputs(&ctx.workspace, &ctx.plan, step, b) {
        Ok(i) => i,
        Err(why) => return Attempt::Error(why),
    };
    let (context, dockerfile, build_args) = (inputs.context, inputs.dockerfile, inputs.build_args);
    let cgroup_parent = cgroups::build_parent(&ctx.run_id, index);
    let args = argv::bud(
        &ctx.common(),
        &argv::Bud {
            tags: &b.tags,
            dockerfile: &dockerfile,
            context: &context,
            build_args: &build_args,
            target: b.target.as_deref(),
            no_cache: b.no_cache,
            // A run proves access to every base image it uses: pulled again unless an earlier
            // build of this run may have made it (then the default, "newer", still asks the
            // registry).
            pull_always: b.pull || (ctx.inner.cfg.pull_always && ctx.built.lock().unwrap().is_empty()),
            platform: b.platform.as_deref(),
            cgroup_parent: &cgroup_parent,
        },
    );
    let tool = &ctx.inner.cfg.buildah;
    let guard = orphans::Builds::start(&ctx.inner).await;
    let exit = process::stream(tool, &args, &ctx.env, &ctx.log, deadline, stop, async {}).await;
    let killed = matches!(exit, Exit::TimedOut | Exit::Stopped);
    if killed {
        // A RUN container whose buildah died before stopping it.
        cgroups::kill_all(&cgroup_parent);
    }
    // The sweep may remove other runs' leftovers too: not this run's log's business.
    let _removed = guard.finish(killed).await;
    let attempt = attempt_of(exit, tool);
    if let Attempt::Ok = attempt {
        ctx.built.lock().unwrap().extend(b.tags.iter().cloned());
    }
    attempt
}

async fn push(ctx: &Ctx, index: usize, images: &[String], deadline: Instant, stop: &CancellationToken) -> Attempt {
    let tool = &ctx.inner.cfg.buildah;
    for (j, image) in images.iter().enumerate() {
        let digestfile = ctx.dir.join(format!("digest-{index}-{j}"));
        let _ = std::fs::remove_file(&digestfile);
        let args = argv::push(&ctx.common(), image, &digestfile);
        match attempt_of(process::stream(tool, &args, &ctx.env, &ctx.log, deadline, stop, async {}).await, tool) {
            Attempt::Ok => {}
            other => return other,
        }
        let digest = match std::fs::read_to_string(&digestfile) {
            Ok(d) if d.trim().starts_with("sha256:") => d.trim().to_string(),
            Ok(d) => return Attempt::Error(format!("buildah push wrote an unexpected digest '{}'", d.trim())),
            Err(e) => return Attempt::Error(format!("reading the digest of {image}: {e}")),
        };
        let r = argv::parse_ref(image);
        let pushed = PushedImage { registry: r.registry, repository: r.repository, tag: r.tag, digest };
        ctx.log.line(&log::pushed_image(&pushed));
        ctx.images.lock().unwrap().push(pushed);
    }
    Attempt::Ok
}

async fn cmd(
    ctx: &Ctx,
    index: usize,
    step: &PlannedStep,
    c: &CmdStep,
    attempt: u32,
    deadline: Instant,
    stop: &CancellationToken,
) -> Attempt {
    let podman = &ctx.inner.cfg.podman;
    let global = &ctx.inner.global;
    let name = argv::container_name(&ctx.run_id, &step.id);
    {
        let mut names = ctx.containers.lock().unwrap();
        if !names.iter().any(|(n, _)| *n == name) {
            names.push((name.clone(), step.keep));
        }
    }
    if attempt > 0 {
        // A kept container of the previous attempt holds the name.
        let _ =
            process::quiet(podman, &argv::rm_force(global, std::slice::from_ref(&name)), &ctx.env, HOUSEKEEPING).await;
    }
    let env = step_env(ctx, step);
    let (multiline, plain): (Vec<_>, Vec<_>) = env.into_iter().partition(|(_, v)| v.contains('\n'));
    let env_file = ctx.dir.join(format!("env-{index}-{attempt}"));
    let text: String = plain.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    if let Err(e) = write_private(&env_file, text.as_bytes()) {
        return Attempt::Error(format!("writing the environment of step {}: {e}", step.id));
    }
    let workdir = if step.disable_working_directory_override {
        None
    } else {
        let wd = step.working_directory.as_deref().unwrap_or(&ctx.plan.working_directory);
        Some(match wd {
            "" => "/workspace".to_string(),
            w if w.starts_with('/') => w.to_string(),
            w => format!("/workspace/{w}"),
        })
    };
    // An image this run did not build is pulled (with the run's credentials) even when the
    // store has it: another run's pull proves nothing about this run's access.
    let fresh = ctx.inner.cfg.pull_always && !ctx.built.lock().unwrap().iter().any(|t| t == &c.image);
    if ctx.inner.cfg.cert_dir.is_some() && (fresh || !image_exists(ctx, &c.image).await) {
        let args = argv::pull(&ctx.common(), &c.image);
        match attempt_of(process::stream(podman, &args, &ctx.env, &ctx.log, deadline, stop, async {}).await, podman) {
            Attempt::Ok => {}
            other => return other,
        }
    }
    let args = argv::run(
        &ctx.common(),
        &argv::Run {
            name: &name,
            remove: !step.keep && !step.detach,
            detach: step.detach,
            env_file: Some(&env_file),
            env: &multiline,
            entrypoint: step.entry_point.as_deref(),
            workdir: workdir.as_deref(),
            workspace: &ctx.workspace,
            image: &c.image,
            args: &c.args,
            pull_always: fresh && ctx.inner.cfg.cert_dir.is_none(),
        },
    );
    ctx.log.event(&format!("Launching container with name: {name}"));
    let abort = async {
        let _ =
            process::quiet(podman, &argv::rm_force(global, std::slice::from_ref(&name)), &ctx.env, HOUSEKEEPING).await;
    };
    let exit = process::stream(podman, &args, &ctx.env, &ctx.log, deadline, stop, abort).await;
    // A `--rm` container whose podman exited on its own is gone already: the run's end need
    // not remove it (one process less per step).
    if matches!(exit, Exit::Code(_)) && !step.detach && !step.keep {
        ctx.containers.lock().unwrap().retain(|(n, _)| *n != name);
    }
    let result = attempt_of(exit, podman);
    if let Attempt::Ok = result {
        if step.detach {
            match process::follow(podman, &argv::logs_follow(global, &name), &ctx.env, ctx.log.clone()) {
                Ok(h) => ctx.followers.lock().unwrap().push(h),
                Err(e) => ctx.log.event(&format!("not following the logs of {name}: {e}")),
            }
        } else {
            ctx.log.event(&format!("Successfully executed container: {}", step.id));
        }
    }
    result
}

/// Whether the store has `image` (a cmd step may run an image a build of the run tagged).
async fn image_exists(ctx: &Ctx, image: &str) -> bool {
    let args = argv::image_exists(&ctx.inner.global, image);
    matches!(process::quiet(&ctx.inner.cfg.podman, &args, &ctx.env, HOUSEKEEPING).await, Ok((0, _)))
}

/// Ends the run's containers (all but the `keep` ones are removed; the kept ones that still
/// run, detached ones, are killed: nothing of a run keeps running after it), stops following
/// detached logs, and removes the run directory.
async fn cleanup(ctx: &Ctx) {
    let podman = &ctx.inner.cfg.podman;
    let global = &ctx.inner.global;
    let names = ctx.containers.lock().unwrap().clone();
    let remove: Vec<String> = names.iter().filter(|(_, keep)| !keep).map(|(n, _)| n.clone()).collect();
    let kept: Vec<String> = names.iter().filter(|(_, keep)| *keep).map(|(n, _)| n.clone()).collect();
    if !remove.is_empty() {
        match process::quiet(podman, &argv::rm_force(global, &remove), &ctx.env, HOUSEKEEPING).await {
            Ok((0, _)) => {}
            Ok((rc, out)) => {
                ctx.log.event(&format!("removing the run's containers: podman rm exited {rc}: {}", out.trim()))
            }
            Err(e) => ctx.log.event(&format!("removing the run's containers: {e}")),
        }
    }
    if !kept.is_empty() {
        let _ = process::quiet(podman, &argv::kill(global, &kept), &ctx.env, HOUSEKEEPING).await;
    }
    for f in ctx.followers.lock().unwrap().drain(..) {
        f.abort();
    }
    cgroups::remove(&cgroups::run_path(&ctx.run_id)).await;
    let dir = ctx.dir.clone();
    let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&dir)).await;
    if !matches!(removed, Ok(Ok(()))) {
        // The auth file at least must go.
        let _ = std::fs::remove_file(&ctx.auth);
        ctx.log.event(&format!("could not remove the run directory {}", ctx.dir.display()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_workspace() {
        let ws = Path::new("/r/workspace");
        assert_eq!(inside(ws, "."), Some(ws.to_path_buf()));
        assert_eq!(inside(ws, "a/../b"), Some(ws.join("b")));
        assert_eq!(inside(ws, "../x"), None);
        assert_eq!(inside(ws, "/etc"), None);
    }
}
