//! ACR Tasks' task language, as pure functions: a task (a multi-step YAML file, a Dockerfile
//! build or a single `--cmd`) plus the run's variables and values become a [`Plan`] — typed
//! steps with their images, arguments, dependencies and timeouts — that an agent executes.
//! Also the run ids, run statuses and the masking of secret values in logs. No I/O, no clock:
//! the run's date comes in with its [`RunVars`].
//!
//! The way through, as ACR does it: Go templates ([`render_template`]) over the whole file,
//! then aliases (`$ID`, `$Registry`, …, for version v1.1.0 files), then YAML
//! ([`parse_task_file`] reads a file as it is), then [`plan`]. [`validate`] is the
//! create-time check. Every error is a [`TaskError`] with the line and column in the file
//! as written (`task file line 4, column 7: unknown step key 'bogus' (expected one of …)`).
//! [`Masker`] hides secrets in output; [`run_id_prefix`] and [`run_id`] make `ca1`-style ids.

mod alias;
mod error;
mod image;
mod mask;
pub mod plan;
mod planner;
mod prepare;
mod run_id;
mod shell;
mod source_map;
mod taskfile;
mod template;
mod values;
mod yaml;

pub use alias::{DEFAULT_ACR_IMAGE, is_alias_name, run_aliases};
pub use error::{Position, Problem, TaskError};
pub use image::{has_registry, qualify};
pub use mask::{MASK, Masker};
pub use plan::{BuildStep, CmdStep, Plan, PlannedStep, RunStatus, RunVars, StepAction};
pub use planner::{
    Argument, CMD_TASK_TIMEOUT, DEFAULT_RETRY_DELAY, DEFAULT_STEP_TIMEOUT, DEFAULT_WORKING_DIRECTORY,
    DOCKER_STEP_TIMEOUT, PlannedTask, Planner, TaskSource, cmd_task_content, parse_build, placeholder_run_vars, plan,
    validate,
};
pub use run_id::{run_id, run_id_prefix};
pub use shell::split as split_words;
pub use taskfile::{
    AliasSection, DEFAULT_VERSION, Network, Secret, Step, StepKind, TASK_VERSIONS, TaskFile, Volume, VolumeMount,
    default_step_id, parse_task_file, version_has_aliases,
};
pub use template::{PLACEHOLDER_VALUE, render_template};
pub use values::{SetValue, Values};
