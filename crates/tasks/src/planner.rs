//! Owns planning: a task's source (a task file, a single `--cmd`, or a `Docker` build
//! request) plus the run's variables and values become the [`Plan`] an agent executes —
//! build strings split into [`BuildStep`]s, image names qualified with the run's registry,
//! dependencies from `when`, ACR's defaults for ids and timeouts, the secrets to mask. Also
//! the create-time [`validate`]. It must never do I/O: a task needing a Key Vault secret or
//! an alias file is refused here, with its position.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::alias::DEFAULT_ACR_IMAGE;
use crate::error::{Problem, TaskError};
use crate::image::qualify;
use crate::plan::{BuildStep, CmdStep, Plan, PlannedStep, RunVars, StepAction};
use crate::prepare::read_task_file;
use crate::shell;
use crate::taskfile::{StepKind, TaskFile};
use crate::template::{self, Missing};
use crate::values::Values;

/// A step's timeout when neither it nor the file's `stepTimeout` sets one (ACR: 600 s).
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(600);
/// The pause between a step's retries when it sets no `retryDelay` (ACR: 5 s).
pub const DEFAULT_RETRY_DELAY: Duration = Duration::from_secs(5);
/// The working directory of a run whose file sets none.
pub const DEFAULT_WORKING_DIRECTORY: &str = "/workspace";
/// The timeout of the build and push steps of a `Docker` source: the run's own default
/// timeout in ACR (3600 s), since a quick build is bounded by the run, not by a step.
pub const DOCKER_STEP_TIMEOUT: Duration = Duration::from_secs(3600);
/// The `timeout:` az writes into the task file of `az acr task create --cmd`.
pub const CMD_TASK_TIMEOUT: u64 = 3600;

/// A Docker build argument as a request carries it (`--arg`, `--secret-arg`,
/// `--build-arg`, `--secret-build-arg`): `{"name","value","isSecret"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    pub name: String,
    pub value: String,
    #[serde(default)]
    pub is_secret: bool,
}

/// What a run executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskSource {
    /// A task file's content (an `EncodedTask`'s decoded `encodedTaskContent`, or a
    /// `FileTask`'s file read from the source).
    Yaml(String),
    /// A single command (`--cmd`), planned as the task file az writes for it, see
    /// [`cmd_task_content`].
    Cmd(String),
    /// ACR's `Docker` step / `DockerBuildRequest`: a build, and a push of its images when
    /// `push` is set and there are images.
    Docker {
        /// `imageNames`, templates allowed (`app:{{.Run.ID}}`); qualified with the run's
        /// registry.
        image_names: Vec<String>,
        /// `dockerFilePath`, relative to the context (empty: `Dockerfile`).
        dockerfile: String,
        /// The build context as [`BuildStep::context`] wants it (empty: `.`).
        context: String,
        arguments: Vec<Argument>,
        target: Option<String>,
        /// `isPushEnabled`.
        push: bool,
        no_cache: bool,
        /// `os/architecture[/variant]`.
        platform: Option<String>,
    },
}

/// A plan and, for a task file, the file it came from: the step properties a [`Plan`] has
/// no field for (`volumeMounts`, `network`, `user`, `privileged`, `repeat`, …) are in
/// `file.steps[i]`, at the same index as `plan.steps[i]`, and the volumes in `file.volumes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedTask {
    pub plan: Plan,
    pub file: Option<TaskFile>,
}

/// Planning with settings: what a self-hosted registry has to choose that ACR fixes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planner {
    /// The image the image alias `acr` stands for in `cmd` steps (`cmd: acr purge …`) of
    /// version v1.1.0 files. ACR: [`DEFAULT_ACR_IMAGE`], the ACR CLI; a registry without
    /// access to it points this at its own copy.
    pub acr_image: String,
}

impl Default for Planner {
    fn default() -> Planner {
        Planner { acr_image: DEFAULT_ACR_IMAGE.to_string() }
    }
}

/// Plans `source` for one run with the default [`Planner`].
pub fn plan(source: &TaskSource, vars: &RunVars, values: &Values) -> Result<Plan, TaskError> {
    Planner::default().plan(source, vars, values)
}

/// Checks `source` at `task create`: rendered with placeholder run variables and `values`
/// (a value not given yet renders as [`template::PLACEHOLDER_VALUE`], since `--set` may
/// come with the run), then parsed and planned. Key Vault secrets and alias files are not
/// refused here (a run refuses them). The error has the line and column of the fault.
pub fn validate(source: &TaskSource, values: &Values) -> Result<Plan, TaskError> {
    Planner::default().validate(source, values)
}

/// The task file az sends for `--cmd <cmd>`: with `timeout: 3600` for `task create`
/// (`timeout = Some(3600)`), without for `az acr run` and `task update` (`None`). Note the
/// space after `steps:`, as az writes it.
pub fn cmd_task_content(cmd: &str, timeout: Option<u64>) -> String {
    let mut text = format!("version: v1.1.0\nsteps: \n  - cmd: {cmd}\n    disableWorkingDirectoryOverride: true\n");
    if let Some(t) = timeout {
        text.push_str(&format!("    timeout: {t}\n"));
    }
    text
}

/// Run variables for validation, where no run exists yet.
pub fn placeholder_run_vars() -> RunVars {
    RunVars {
        id: "ca1".to_string(),
        registry: "registry.invalid".to_string(),
        registry_name: "registry".to_string(),
        date: "20000101-000000z".to_string(),
        os: "linux".to_string(),
        architecture: "amd64".to_string(),
        task_name: "task".to_string(),
        commit: String::new(),
        branch: String::new(),
        shared_volume: DEFAULT_WORKING_DIRECTORY.to_string(),
    }
}

impl Planner {
    /// Plans `source` for one run.
    pub fn plan(&self, source: &TaskSource, vars: &RunVars, values: &Values) -> Result<Plan, TaskError> {
        self.plan_task(source, vars, values).map(|t| t.plan)
    }

    /// Plans `source` for one run, keeping the task file.
    pub fn plan_task(&self, source: &TaskSource, vars: &RunVars, values: &Values) -> Result<PlannedTask, TaskError> {
        self.plan_with(source, vars, values, Missing::Error)
    }

    /// See [`validate`].
    pub fn validate(&self, source: &TaskSource, values: &Values) -> Result<Plan, TaskError> {
        self.plan_with(source, &placeholder_run_vars(), values, Missing::Placeholder).map(|t| t.plan)
    }

    fn plan_with(
        &self,
        source: &TaskSource,
        vars: &RunVars,
        values: &Values,
        missing: Missing,
    ) -> Result<PlannedTask, TaskError> {
        let text = match source {
            TaskSource::Yaml(text) => text.clone(),
            TaskSource::Cmd(cmd) => cmd_task_content(cmd, Some(CMD_TASK_TIMEOUT)),
            TaskSource::Docker { .. } => {
                return Ok(PlannedTask { plan: plan_docker(source, vars, values, missing)?, file: None });
            }
        };
        let file = read_task_file(&text, vars, values, missing)?;
        if missing == Missing::Error {
            check_runnable(&file)?;
        }
        let plan = self.plan_file(&file, vars, values)?;
        Ok(PlannedTask { plan, file: Some(file) })
    }

    fn plan_file(&self, file: &TaskFile, vars: &RunVars, values: &Values) -> Result<Plan, TaskError> {
        let ids = file.step_ids();
        let deps = file.dependencies();
        let mut image_aliases: Vec<(String, String)> =
            file.alias.as_ref().map(|a| a.values.clone()).unwrap_or_default();
        image_aliases.push(("acr".to_string(), self.acr_image.clone()));
        let file_timeout = file.step_timeout.filter(|&t| t > 0).map(Duration::from_secs);
        let mut steps = Vec::with_capacity(file.steps.len());
        for (i, step) in file.steps.iter().enumerate() {
            let fail = |problem: Problem| TaskError::TaskFile { at: step.kind_at, problem };
            let action = match &step.kind {
                StepKind::Build(s) => {
                    let words = shell::split(s).ok_or_else(|| fail(Problem::UnterminatedQuote(s.clone())))?;
                    let mut build = parse_build(&words, &vars.registry).map_err(fail)?;
                    build.pull |= step.pull;
                    StepAction::Build(build)
                }
                StepKind::Push(images) => StepAction::Push(push_list(images, &vars.registry).map_err(fail)?),
                StepKind::Cmd(s) => {
                    let mut words = shell::split(s).ok_or_else(|| fail(Problem::UnterminatedQuote(s.clone())))?;
                    if words.is_empty() {
                        return Err(fail(Problem::EmptyCmd));
                    }
                    if file.has_aliases()
                        && let Some((_, value)) = image_aliases.iter().find(|(name, _)| *name == words[0])
                    {
                        let replacement = shell::split(value).unwrap_or_else(|| vec![value.clone()]);
                        words.splice(0..1, replacement);
                    }
                    let mut words = words.into_iter();
                    let image = words.next().filter(|w| !w.is_empty()).ok_or_else(|| fail(Problem::EmptyCmd))?;
                    StepAction::Cmd(CmdStep { image, args: words.collect() })
                }
            };
            steps.push(PlannedStep {
                id: ids[i].clone(),
                action,
                depends_on: deps[i].clone(),
                detach: step.detach,
                entry_point: step.entry_point.clone(),
                env: step.env.clone(),
                ignore_errors: step.ignore_errors,
                retries: step.retries,
                retry_delay: step.retry_delay.filter(|&d| d > 0).map_or(DEFAULT_RETRY_DELAY, Duration::from_secs),
                timeout: step
                    .timeout
                    .filter(|&t| t > 0)
                    .map(Duration::from_secs)
                    .or(file_timeout)
                    .unwrap_or(DEFAULT_STEP_TIMEOUT),
                working_directory: step.working_directory.clone(),
                keep: step.keep,
                start_delay: Duration::from_secs(step.start_delay),
                disable_working_directory_override: step.disable_working_directory_override,
            });
        }
        // Secret values, and the single-line files of secret volumes (a token, a password):
        // output is masked line by line, so a multi-line file could never match whole.
        let mut secrets = values.secrets();
        for volume in &file.volumes {
            for (_, content) in &volume.secret {
                if let Ok(text) = std::str::from_utf8(content) {
                    let text = text.trim_end_matches(['\r', '\n']);
                    if !text.contains('\n') {
                        secrets.push(text.to_string());
                    }
                }
            }
        }
        Ok(Plan {
            steps,
            env: file.env.clone(),
            working_directory: file
                .working_directory
                .clone()
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| DEFAULT_WORKING_DIRECTORY.to_string()),
            secrets: tidy_secrets(secrets),
        })
    }
}

/// What a run cannot do without I/O Wharf does not have: Key Vault secrets, alias files.
fn check_runnable(file: &TaskFile) -> Result<(), TaskError> {
    if let Some(secret) = file.secrets.first() {
        return Err(TaskError::TaskFile { at: secret.at, problem: Problem::KeyVault(secret.id.clone()) });
    }
    if let Some(alias) = file.alias.as_ref().filter(|a| !a.src.is_empty() && file.has_aliases()) {
        return Err(TaskError::TaskFile { at: alias.at, problem: Problem::AliasSrc });
    }
    Ok(())
}

/// Non-empty, each once, in order.
fn tidy_secrets(secrets: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in secrets {
        if !s.is_empty() && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

fn push_list(images: &[String], registry: &str) -> Result<Vec<String>, Problem> {
    let mut out: Vec<String> = Vec::new();
    for image in images {
        let image = image.trim();
        if image.is_empty() {
            return Err(Problem::EmptyImage);
        }
        let q = qualify(image, registry);
        if !out.contains(&q) {
            out.push(q);
        }
    }
    if out.is_empty() {
        return Err(Problem::EmptyPush);
    }
    Ok(out)
}

/// `docker build` arguments (already split) as a [`BuildStep`], tags qualified.
pub fn parse_build(words: &[String], registry: &str) -> Result<BuildStep, Problem> {
    let mut build = BuildStep::default();
    let mut contexts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let word = &words[i];
        i += 1;
        if word == "--" {
            contexts.extend(words[i..].iter().cloned());
            break;
        }
        if !word.starts_with('-') || word == "-" {
            contexts.push(word.clone());
            continue;
        }
        // `--name=value`, `-n=value`, `-nvalue`, or the value in the next word.
        let (flag, inline) = match word.split_once('=') {
            Some((f, v)) => (f.to_string(), Some(v.to_string())),
            None if !word.starts_with("--") && word.len() > 2 => (word[..2].to_string(), Some(word[2..].to_string())),
            None => (word.clone(), None),
        };
        let takes_value =
            matches!(flag.as_str(), "-t" | "--tag" | "-f" | "--file" | "--build-arg" | "--target" | "--platform");
        let is_switch = matches!(flag.as_str(), "--no-cache" | "--pull");
        if !takes_value && !is_switch {
            return Err(Problem::UnknownBuildFlag(word.clone()));
        }
        if is_switch {
            let on = match inline.as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(_) => return Err(Problem::UnknownBuildFlag(word.clone())),
            };
            if flag == "--no-cache" {
                build.no_cache = on;
            } else {
                build.pull = on;
            }
            continue;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                let v = words.get(i).cloned().ok_or_else(|| Problem::MissingFlagValue(flag.clone()))?;
                i += 1;
                v
            }
        };
        match flag.as_str() {
            "-t" | "--tag" => build.tags.push(qualify(&value, registry)),
            "-f" | "--file" => build.dockerfile = Some(value),
            "--build-arg" => build.build_args.push(match value.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (value, None),
            }),
            "--target" => build.target = Some(value),
            _ => build.platform = Some(value),
        }
    }
    match contexts.len() {
        1 => build.context = contexts.remove(0),
        0 => return Err(Problem::NoBuildContext),
        _ => return Err(Problem::ManyBuildContexts(contexts)),
    }
    Ok(build)
}

fn plan_docker(source: &TaskSource, vars: &RunVars, values: &Values, missing: Missing) -> Result<Plan, TaskError> {
    let TaskSource::Docker { image_names, dockerfile, context, arguments, target, push, no_cache, platform } = source
    else {
        unreachable!("plan_docker takes Docker sources");
    };
    let mut tags: Vec<String> = Vec::new();
    for (i, name) in image_names.iter().enumerate() {
        let field = || format!("imageNames[{i}]");
        let rendered = template::render(name, vars, values, missing)
            .map(|(out, _)| out)
            .map_err(|(_, problem)| TaskError::Request { field: field(), problem })?;
        let rendered = rendered.trim();
        if rendered.is_empty() {
            return Err(TaskError::Request { field: field(), problem: Problem::EmptyImage });
        }
        let q = qualify(rendered, &vars.registry);
        if !tags.contains(&q) {
            tags.push(q);
        }
    }
    let build = BuildStep {
        tags: tags.clone(),
        dockerfile: Some(dockerfile.clone()).filter(|d| !d.is_empty()),
        context: if context.is_empty() { ".".to_string() } else { context.clone() },
        build_args: arguments.iter().map(|a| (a.name.clone(), Some(a.value.clone()))).collect(),
        target: target.clone().filter(|t| !t.is_empty()),
        no_cache: *no_cache,
        pull: false,
        platform: platform.clone().filter(|p| !p.is_empty()),
    };
    let step = |id: &str, action: StepAction, depends_on: Vec<usize>| PlannedStep {
        id: id.to_string(),
        action,
        depends_on,
        detach: false,
        entry_point: None,
        env: Vec::new(),
        ignore_errors: false,
        retries: 0,
        retry_delay: DEFAULT_RETRY_DELAY,
        timeout: DOCKER_STEP_TIMEOUT,
        working_directory: None,
        keep: false,
        start_delay: Duration::ZERO,
        disable_working_directory_override: false,
    };
    let mut steps = vec![step("build", StepAction::Build(build), Vec::new())];
    if *push && !tags.is_empty() {
        steps.push(step("push", StepAction::Push(tags), vec![0]));
    }
    let mut secrets = values.secrets();
    secrets.extend(arguments.iter().filter(|a| a.is_secret).map(|a| a.value.clone()));
    Ok(Plan {
        steps,
        env: Vec::new(),
        working_directory: DEFAULT_WORKING_DIRECTORY.to_string(),
        secrets: tidy_secrets(secrets),
    })
}
