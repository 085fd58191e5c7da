//! The flags of `wharf acr task …` and `wharf acr run`, named and shortened as az names them.
//! Owns parsing only; must never build a request.

use clap::{ArgAction, Args, Subcommand, ValueEnum};

use crate::commands::parse_bool;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskStatus {
    #[value(name = "Enabled")]
    Enabled,
    #[value(name = "Disabled")]
    Disabled,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Enabled => "Enabled",
            TaskStatus::Disabled => "Disabled",
        }
    }
}

/// `SourceRegistryLoginMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    #[value(name = "Default")]
    Default,
    #[value(name = "None")]
    None,
}

impl AuthMode {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::Default => "Default",
            AuthMode::None => "None",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BaseImageTriggerType {
    #[value(name = "All")]
    All,
    #[value(name = "Runtime")]
    Runtime,
}

impl BaseImageTriggerType {
    pub fn as_str(self) -> &'static str {
        match self {
            BaseImageTriggerType::All => "All",
            BaseImageTriggerType::Runtime => "Runtime",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PayloadType {
    #[value(name = "Default")]
    Default,
    #[value(name = "Token")]
    Token,
}

impl PayloadType {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadType::Default => "Default",
            PayloadType::Token => "Token",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunStatus {
    #[value(name = "Queued")]
    Queued,
    #[value(name = "Started")]
    Started,
    #[value(name = "Running")]
    Running,
    #[value(name = "Succeeded")]
    Succeeded,
    #[value(name = "Failed")]
    Failed,
    #[value(name = "Canceled")]
    Canceled,
    #[value(name = "Error")]
    Error,
    #[value(name = "Timeout")]
    Timeout,
}

impl RunStatus {
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
}

/// The task and its registry: `-n`, `-r`, `-g`.
#[derive(Debug, Clone, Args)]
pub struct TaskRef {
    /// The name of the task.
    #[arg(long, short = 'n')]
    pub name: String,
    /// The name of the container registry.
    #[arg(long, short = 'r')]
    pub registry: String,
    /// The registry's resource group (found from the registry's name when not given).
    #[arg(long, short = 'g')]
    pub resource_group: Option<String>,
}

/// The registry alone: `-r`, `-g`.
#[derive(Debug, Clone, Args)]
pub struct RegistryRef {
    /// The name of the container registry.
    #[arg(long, short = 'r')]
    pub registry: String,
    /// The registry's resource group (found from the registry's name when not given).
    #[arg(long, short = 'g')]
    pub resource_group: Option<String>,
}

/// A run of a registry: `--run-id`, `-r`, `-g`.
#[derive(Debug, Clone, Args)]
pub struct RunRef {
    /// The unique run identifier.
    #[arg(long)]
    pub run_id: String,
    #[command(flatten)]
    pub registry: RegistryRef,
}

/// Step values and arguments shared by create, update and run.
#[derive(Debug, Clone, Default, Args)]
pub struct StepValues {
    /// Build argument for a Docker step: NAME[=VALUE] (without =VALUE, the value of the
    /// environment variable NAME).
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub arg: Vec<String>,
    /// Secret build argument for a Docker step: NAME[=VALUE].
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub secret_arg: Vec<String>,
    /// Value for the task: NAME=VALUE (used in the task file as {{.Values.NAME}}).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set_value: Vec<String>,
    /// Secret value for the task: NAME=VALUE.
    #[arg(long, value_name = "NAME=VALUE")]
    pub set_secret: Vec<String>,
}

#[derive(Debug, Subcommand)]
pub enum TaskCmd {
    /// Create a task: a multi-step task file or --cmd with context /dev/null, or a Docker build
    /// of a remote context.
    Create(Box<CreateArgs>),
    /// Update a task (only the given settings change).
    Update(Box<UpdateArgs>),
    /// Show a task.
    Show {
        #[command(flatten)]
        task: TaskRef,
        /// Include secrets (the credentials' values, the context access token).
        #[arg(long)]
        with_secure_properties: bool,
    },
    /// Show the webhook address and secret of a task's source triggers (Wharf's own: give them
    /// to GitHub or Azure DevOps, which Wharf cannot reach to register the webhook itself).
    ShowWebhook {
        #[command(flatten)]
        task: TaskRef,
        /// Only this source trigger.
        #[arg(long)]
        source_trigger_name: Option<String>,
    },
    /// List the tasks of a registry.
    List {
        #[command(flatten)]
        registry: RegistryRef,
    },
    /// Delete a task.
    Delete {
        #[command(flatten)]
        task: TaskRef,
        /// Do not prompt for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Queue a run of a task and stream its logs.
    Run(Box<TaskRunArgs>),
    /// Show the logs of a run, or of the last run of a task (or of the registry).
    Logs {
        /// The name of the task whose last run to show.
        #[arg(long, short = 'n')]
        name: Option<String>,
        /// The unique run identifier.
        #[arg(long)]
        run_id: Option<String>,
        #[command(flatten)]
        registry: RegistryRef,
    },
    /// List the runs of a registry, newest first.
    ListRuns {
        /// Only the runs of this task.
        #[arg(long, short = 'n')]
        name: Option<String>,
        /// Only runs with this status.
        #[arg(long, value_enum)]
        run_status: Option<RunStatus>,
        /// The most runs to list.
        #[arg(long, default_value_t = 15)]
        top: u32,
        /// Only runs that pushed this image (`repository:tag` or `repository@digest`; a tag is
        /// resolved to its digest on the registry first, as az does).
        #[arg(long)]
        image: Option<String>,
        #[command(flatten)]
        registry: RegistryRef,
    },
    /// Show a run.
    ShowRun(RunRef),
    /// Cancel a run.
    CancelRun(RunRef),
    /// Patch a run's properties.
    UpdateRun {
        #[command(flatten)]
        run: RunRef,
        /// Whether the run's artifacts are NOT archived (true disables archiving).
        #[arg(long, action = ArgAction::Set, value_parser = parse_bool)]
        no_archive: bool,
    },
    /// Manage the credentials a task uses for other (custom) registries.
    Credential {
        #[command(subcommand)]
        cmd: CredentialCmd,
    },
    /// Manage a task's timer triggers (cron schedules, UTC).
    Timer {
        #[command(subcommand)]
        cmd: TimerCmd,
    },
    /// Manage a task's managed identities.
    Identity {
        #[command(subcommand)]
        cmd: TaskIdentityCmd,
    },
}

/// `task create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub task: TaskRef,
    /// The context: a git URL (https://github.com/x/y.git#branch:folder) or /dev/null (the task
    /// file or --cmd travels in the request).
    #[arg(long, short = 'c', default_value = "/dev/null")]
    pub context: String,
    /// The task file (.yaml …) or Dockerfile, relative to the context; with -c /dev/null a
    /// local file ('-' for stdin) whose content is sent.
    #[arg(long, short = 'f')]
    pub file: Option<String>,
    /// The command of a one-step task, e.g. 'mcr.microsoft.com/hello-world' (with -c /dev/null).
    #[arg(long, allow_hyphen_values = true)]
    pub cmd: Option<String>,
    /// Image name to build and push (repeatable), e.g. 'app:{{.Run.ID}}'.
    #[arg(long = "image", short = 't')]
    pub image: Vec<String>,
    #[command(flatten)]
    pub values: StepValues,
    /// A values file: relative to the context, or a local file with -c /dev/null.
    #[arg(long = "values")]
    pub values_file: Option<String>,
    /// Do not push the built images.
    #[arg(long, action = ArgAction::Set, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub no_push: bool,
    /// Do not use the build cache.
    #[arg(long, action = ArgAction::Set, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true", default_value = "false")]
    pub no_cache: bool,
    /// The target build stage.
    #[arg(long)]
    pub target: Option<String>,
    /// os/architecture[/variant], e.g. linux/arm64/v8 (default linux/amd64).
    #[arg(long)]
    pub platform: Option<String>,
    /// CPUs of the agent.
    #[arg(long, default_value_t = 2)]
    pub cpu: u32,
    /// Timeout of the task in seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    /// The task's status.
    #[arg(long, value_enum, default_value = "Enabled")]
    pub status: TaskStatus,
    /// Managed identities to assign: '[system]' or user-assigned identity resource ids; no value
    /// means '[system]'.
    #[arg(long, num_args = 0..)]
    pub assign_identity: Option<Vec<String>>,
    /// How the task logs in to its own registry (deprecated for ABAC registries).
    #[arg(long, value_enum)]
    pub auth_mode: Option<AuthMode>,
    /// The identity the task uses for its own (source) registry: '[system]', a user-assigned
    /// identity's resource id, or 'none'.
    #[arg(long)]
    pub source_acr_auth_id: Option<String>,
    /// Timer trigger: a cron expression, or NAME:CRON (repeatable).
    #[arg(long)]
    pub schedule: Vec<String>,
    /// Run when a base image changes.
    #[arg(long, action = ArgAction::Set, value_parser = parse_bool, default_value = "true")]
    pub base_image_trigger_enabled: bool,
    /// Which base image changes trigger a run.
    #[arg(long, value_enum, default_value = "Runtime")]
    pub base_image_trigger_type: BaseImageTriggerType,
    /// The name of the base image trigger.
    #[arg(long, default_value = "defaultBaseimageTriggerName")]
    pub base_image_trigger_name: String,
    /// Endpoint to notify on base image trigger.
    #[arg(long)]
    pub update_trigger_endpoint: Option<String>,
    /// Payload type of the base image trigger notification.
    #[arg(long, value_enum, default_value = "Default")]
    pub update_trigger_payload_type: PayloadType,
    /// Run on commits to the context's repository (default true with a git context).
    #[arg(long, value_parser = parse_bool)]
    pub commit_trigger_enabled: Option<bool>,
    /// Run on pull requests to the context's repository.
    #[arg(long, value_parser = parse_bool)]
    pub pull_request_trigger_enabled: Option<bool>,
    /// The name of the source trigger.
    #[arg(long, default_value = "defaultSourceTriggerName")]
    pub source_trigger_name: String,
    /// The branch the source trigger watches (default: the context's #branch, else master).
    #[arg(long)]
    pub branch: Option<String>,
    /// A personal access token for the context's repository.
    #[arg(long)]
    pub git_access_token: Option<String>,
}

/// `task update`: every setting optional.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub task: TaskRef,
    #[arg(long, short = 'c')]
    pub context: Option<String>,
    /// The task file or Dockerfile; for an EncodedTask (created with -c /dev/null) a local file
    /// whose content replaces the task's.
    #[arg(long, short = 'f')]
    pub file: Option<String>,
    /// The command of a one-step task (replaces an EncodedTask's content).
    #[arg(long, allow_hyphen_values = true)]
    pub cmd: Option<String>,
    #[arg(long = "image", short = 't')]
    pub image: Vec<String>,
    #[command(flatten)]
    pub values: StepValues,
    #[arg(long = "values")]
    pub values_file: Option<String>,
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub no_push: Option<bool>,
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub no_cache: Option<bool>,
    #[arg(long)]
    pub target: Option<String>,
    #[arg(long)]
    pub platform: Option<String>,
    #[arg(long)]
    pub cpu: Option<u32>,
    #[arg(long)]
    pub timeout: Option<u64>,
    #[arg(long, value_enum)]
    pub status: Option<TaskStatus>,
    #[arg(long, value_enum)]
    pub auth_mode: Option<AuthMode>,
    /// '[system]', a user-assigned identity's resource id, or 'none' (removes the task's access
    /// to its own registry).
    #[arg(long)]
    pub source_acr_auth_id: Option<String>,
    #[arg(long, value_parser = parse_bool)]
    pub base_image_trigger_enabled: Option<bool>,
    #[arg(long, value_enum)]
    pub base_image_trigger_type: Option<BaseImageTriggerType>,
    #[arg(long)]
    pub update_trigger_endpoint: Option<String>,
    #[arg(long, value_enum)]
    pub update_trigger_payload_type: Option<PayloadType>,
    #[arg(long, value_parser = parse_bool)]
    pub commit_trigger_enabled: Option<bool>,
    #[arg(long, value_parser = parse_bool)]
    pub pull_request_trigger_enabled: Option<bool>,
    #[arg(long)]
    pub branch: Option<String>,
    #[arg(long)]
    pub git_access_token: Option<String>,
}

/// `task run`.
#[derive(Debug, Args)]
pub struct TaskRunArgs {
    #[command(flatten)]
    pub task: TaskRef,
    #[command(flatten)]
    pub values: StepValues,
    /// Override the task's file.
    #[arg(long, short = 'f')]
    pub file: Option<String>,
    /// Override the task's context: a git or tarball URL, or a local directory or .tar.gz (packed and uploaded).
    #[arg(long, short = 'c')]
    pub context: Option<String>,
    /// Override the target build stage.
    #[arg(long)]
    pub target: Option<String>,
    /// The payload for the base image trigger's notification (sent base64-encoded).
    #[arg(long)]
    pub update_trigger_token: Option<String>,
    /// Do not stream the logs; wait for the run and print it.
    #[arg(long)]
    pub no_logs: bool,
    /// Do not wait for the run: print nothing once it is queued.
    #[arg(long)]
    pub no_wait: bool,
}

/// `acr run`.
#[derive(Debug, Args)]
pub struct AcrRunArgs {
    #[command(flatten)]
    pub registry: RegistryRef,
    /// The command to run: an image and its arguments, e.g. 'mcr.microsoft.com/hello-world'.
    #[arg(long, allow_hyphen_values = true)]
    pub cmd: Option<String>,
    /// A local task file ('-' for stdin) sent with the request (with /dev/null).
    #[arg(long, short = 'f')]
    pub file: Option<String>,
    /// Value for the task: NAME=VALUE.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set_value: Vec<String>,
    /// Secret value for the task: NAME=VALUE.
    #[arg(long, value_name = "NAME=VALUE")]
    pub set_secret: Vec<String>,
    /// A local values file sent with the request.
    #[arg(long = "values")]
    pub values_file: Option<String>,
    /// Timeout of the run in seconds (also how long to wait for new log lines).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// os/architecture[/variant] (default linux/amd64).
    #[arg(long)]
    pub platform: Option<String>,
    /// The identity the run uses for the registry: '[caller]' (the default when the flag has no
    /// value) or 'none'.
    #[arg(long, num_args = 0..=1, default_missing_value = "[caller]")]
    pub source_acr_auth_id: Option<String>,
    /// How the run logs in to the registry (deprecated for ABAC registries).
    #[arg(long, value_enum)]
    pub auth_mode: Option<AuthMode>,
    /// Do not stream the logs; wait for the run and print it.
    #[arg(long)]
    pub no_logs: bool,
    /// Do not wait for the run.
    #[arg(long)]
    pub no_wait: bool,
    /// Accepted for az's sake: Wharf prints the log as the run writes it.
    #[arg(long)]
    pub no_format: bool,
    /// The source context: /dev/null (the task file or --cmd travels in the request), a local
    /// directory or .tar.gz (uploaded; -f names the task file in it, default acb.yaml), or a
    /// git URL.
    pub source_location: String,
}

/// `acr build`.
#[derive(Debug, Args)]
pub struct AcrBuildArgs {
    #[command(flatten)]
    pub registry: RegistryRef,
    /// Image name to build and push (repeatable), e.g. 'app:{{.Run.ID}}'.
    #[arg(long = "image", short = 't')]
    pub image: Vec<String>,
    /// The Dockerfile: for a local directory a local path (relative to the current directory;
    /// default <SOURCE_LOCATION>/Dockerfile), else a path in the context (default Dockerfile).
    #[arg(long, short = 'f')]
    pub file: Option<String>,
    /// Build argument NAME[=VALUE] (without =VALUE, the environment variable NAME).
    #[arg(long = "build-arg", value_name = "NAME[=VALUE]")]
    pub build_arg: Vec<String>,
    /// Secret build argument NAME[=VALUE].
    #[arg(long = "secret-build-arg", value_name = "NAME[=VALUE]")]
    pub secret_build_arg: Vec<String>,
    /// The target build stage.
    #[arg(long)]
    pub target: Option<String>,
    /// os/architecture[/variant] (default linux/amd64).
    #[arg(long)]
    pub platform: Option<String>,
    /// Build the image but do not push it.
    #[arg(long)]
    pub no_push: bool,
    /// Do not stream the logs; wait for the build and print the run.
    #[arg(long)]
    pub no_logs: bool,
    /// Do not wait for the build.
    #[arg(long)]
    pub no_wait: bool,
    /// Accepted for az's sake: Wharf prints the log as the run writes it.
    #[arg(long)]
    pub no_format: bool,
    /// Timeout of the build in seconds (also how long to wait for new log lines).
    #[arg(long)]
    pub timeout: Option<u64>,
    /// The identity the build uses for the registry: '[caller]' (the default when the flag has
    /// no value) or 'none'.
    #[arg(long, num_args = 0..=1, default_missing_value = "[caller]")]
    pub source_acr_auth_id: Option<String>,
    /// How the build logs in to the registry (deprecated for ABAC registries).
    #[arg(long, value_enum)]
    pub auth_mode: Option<AuthMode>,
    /// The context: a local directory (packed, honouring .dockerignore, and uploaded), a local
    /// .tar.gz (uploaded as it is), or a git URL or remote tarball URL (sent as it is).
    pub source_location: String,
}

/// `task timer …`, as az's: `add` and `update` PATCH the one timer (the server merges timers by
/// name), `remove` reads the task and PUTs it back without the timer, `list` reads the task.
#[derive(Debug, Subcommand)]
pub enum TimerCmd {
    /// Add a timer trigger to a task.
    Add {
        #[command(flatten)]
        task: TaskRef,
        /// The name of the timer trigger.
        #[arg(long)]
        timer_name: String,
        /// The schedule: a five-field cron expression in UTC, e.g. '0 21 * * *'.
        #[arg(long)]
        schedule: String,
        /// Whether the timer trigger is enabled.
        #[arg(long, action = ArgAction::Set, value_parser = parse_bool, default_value = "true")]
        enabled: bool,
    },
    /// Update a timer trigger of a task (only the given settings change).
    Update {
        #[command(flatten)]
        task: TaskRef,
        /// The name of the timer trigger.
        #[arg(long)]
        timer_name: String,
        /// The new schedule: a five-field cron expression in UTC.
        #[arg(long)]
        schedule: Option<String>,
        /// Whether the timer trigger is enabled.
        #[arg(long, action = ArgAction::Set, value_parser = parse_bool)]
        enabled: Option<bool>,
    },
    /// Remove a timer trigger from a task.
    Remove {
        #[command(flatten)]
        task: TaskRef,
        /// The name of the timer trigger.
        #[arg(long)]
        timer_name: String,
    },
    /// List the timer triggers of a task.
    List {
        #[command(flatten)]
        task: TaskRef,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialCmd {
    /// Add credentials for a custom registry.
    Add(CredentialArgs),
    /// Update the credentials of a custom registry.
    Update(CredentialArgs),
    /// Remove the credentials of a custom registry.
    Remove {
        #[command(flatten)]
        task: TaskRef,
        /// The login server of the custom registry, e.g. other.azurecr.io.
        #[arg(long)]
        login_server: String,
    },
    /// List the custom registries' credentials.
    List {
        #[command(flatten)]
        task: TaskRef,
    },
}

#[derive(Debug, Args)]
pub struct CredentialArgs {
    #[command(flatten)]
    pub task: TaskRef,
    /// The login server of the custom registry, e.g. other.azurecr.io.
    #[arg(long)]
    pub login_server: String,
    /// The identity to log in with: '[system]' (the default when the flag has no value) or a
    /// user-assigned identity's client id.
    #[arg(long, num_args = 0..=1, default_missing_value = "[system]")]
    pub use_identity: Option<String>,
    /// The username (plain text, or a Key Vault secret URI).
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// The password (plain text, or a Key Vault secret URI).
    #[arg(long, short = 'p')]
    pub password: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum TaskIdentityCmd {
    /// Assign managed identities to a task ('[system]' when none are given).
    Assign {
        #[command(flatten)]
        task: TaskRef,
        /// '[system]' and/or user-assigned identity resource ids.
        #[arg(long, num_args = 0..)]
        identities: Vec<String>,
    },
    /// Remove managed identities from a task ('[system]' when none are given; '[all]' for all).
    Remove {
        #[command(flatten)]
        task: TaskRef,
        #[arg(long, num_args = 0..)]
        identities: Vec<String>,
    },
    /// Show a task's managed identities.
    Show {
        #[command(flatten)]
        task: TaskRef,
    },
}
