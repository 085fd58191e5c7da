//! What an agent executes: a [`Plan`] of steps, every template already rendered.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The variables of one run (`{{.Run.ID}}`, `$Registry`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunVars {
    /// `{{.Run.ID}}` / `$ID`, e.g. `cf1`.
    pub id: String,
    /// `{{.Run.Registry}}` / `$Registry`: the registry's login server (`myreg.localhost:5000`).
    pub registry: String,
    /// `{{.Run.RegistryName}}` / `$RegistryName`.
    pub registry_name: String,
    /// `{{.Run.Date}}` / `$Date`: the run's creation time, UTC, as ACR writes it
    /// (`20261204-183000z`).
    pub date: String,
    /// `{{.Run.OS}}` / `$OS` (`linux`).
    pub os: String,
    /// `{{.Run.Architecture}}` / `$Architecture` (`amd64`).
    pub architecture: String,
    /// `{{.Run.TaskName}}`; empty for quick runs.
    pub task_name: String,
    /// `{{.Run.Commit}}` / `$Commit`, `{{.Run.Branch}}` / `$Branch`: empty without a git
    /// context.
    pub commit: String,
    pub branch: String,
    /// `{{.Run.SharedVolume}}` / `$SharedVolume`: the path every step sees its shared volume at.
    pub shared_volume: String,
}

/// The steps of one run, in the order the task file lists them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub steps: Vec<PlannedStep>,
    /// Environment of every step (`env` at the top of the task file), before each step's own.
    pub env: Vec<(String, String)>,
    /// The working directory steps start in unless they say otherwise (`/workspace`).
    pub working_directory: String,
    /// Every secret value of the run (`--set-secret`, `--secret-arg`, secret `values`,
    /// credentials): masked wherever the run's output is shown.
    pub secrets: Vec<String>,
}

/// One step, rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// The step's `id`, or `acb_step_<index>` when the file gives none (ACR's default).
    pub id: String,
    pub action: StepAction,
    /// Indices (into [`Plan::steps`]) of the steps that must have finished before this one
    /// starts. Empty: starts at once (`when: ["-"]`, or the first step).
    pub depends_on: Vec<usize>,
    /// Runs in the background; the run does not wait for it to exit (`detach`).
    pub detach: bool,
    pub entry_point: Option<String>,
    /// The step's own environment, after the plan's.
    pub env: Vec<(String, String)>,
    /// A failure of this step does not fail the run (`ignoreErrors`).
    pub ignore_errors: bool,
    /// Further attempts after a failure, `retry_delay` apart.
    pub retries: u32,
    pub retry_delay: Duration,
    /// Killed after this long (`timeout`, else the file's `stepTimeout`, else 600 s).
    pub timeout: Duration,
    /// Overrides the plan's working directory.
    pub working_directory: Option<String>,
    /// Keep the step's container after it exits (`keep`).
    pub keep: bool,
    /// Wait this long before starting (`startDelay`).
    pub start_delay: Duration,
    /// Run in the image's own working directory, not the run's (`disableWorkingDirectoryOverride`).
    pub disable_working_directory_override: bool,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepAction {
    /// `build: -t img -f Dockerfile --build-arg K=V --target T <context>`.
    Build(BuildStep),
    /// `push: [img, …]`: fully qualified references.
    Push(Vec<String>),
    /// `cmd: <image> [args…]`.
    Cmd(CmdStep),
}

/// A Dockerfile build.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct BuildStep {
    /// `-t`/`--tag`, fully qualified after rendering.
    pub tags: Vec<String>,
    /// `-f`/`--file`, relative to the context; `None` means `Dockerfile`.
    pub dockerfile: Option<String>,
    /// The build context, relative to the run's working directory (`.`).
    pub context: String,
    /// `--build-arg K=V`, in order (a bare `K` takes the value from the step's environment).
    pub build_args: Vec<(String, Option<String>)>,
    /// `--target`.
    pub target: Option<String>,
    /// `--no-cache`.
    pub no_cache: bool,
    /// `--pull`: always pull the base images.
    pub pull: bool,
    /// `--platform`, if given.
    pub platform: Option<String>,
}

/// A container run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmdStep {
    /// The image reference as rendered (`busybox`, `$Registry/app:$ID`, …).
    pub image: String,
    /// The arguments after the image (split as a shell would, without expansion).
    pub args: Vec<String>,
}

/// A run's status, as ACR names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunStatus {
    Queued,
    Started,
    Running,
    Succeeded,
    Failed,
    Canceled,
    Error,
    Timeout,
}

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Started,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Canceled,
        RunStatus::Error,
        RunStatus::Timeout,
    ];

    /// The name on the wire (`Succeeded`).
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "Queued",
            RunStatus::Started => "Started",
            RunStatus::Running => "Running",
            RunStatus::Succeeded => "Succeeded",
            RunStatus::Failed => "Failed",
            RunStatus::Canceled => "Canceled",
            RunStatus::Error => "Error",
            RunStatus::Timeout => "Timeout",
        }
    }

    /// Case-insensitive, as `$filter` values arrive.
    pub fn parse(s: &str) -> Option<RunStatus> {
        Self::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s))
    }

    /// Whether the run is over (nothing moves it again).
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Canceled | RunStatus::Error | RunStatus::Timeout
        )
    }
}
