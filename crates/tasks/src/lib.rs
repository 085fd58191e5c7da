//! ACR Tasks' task language, as pure functions: a task (a multi-step YAML file, a Dockerfile
//! build or a single `--cmd`) plus the run's variables and values become a [`Plan`] — typed
//! steps with their images, arguments, dependencies and timeouts — that an agent executes.
//! Also the run ids, run statuses, the masking of secret values in logs and the base images a
//! Dockerfile builds on ([`base_images`]). No I/O, no clock:
//! the run's date comes in with its [`RunVars`].
//!
//! The way through, as ACR does it: Go templates ([`render_template`]) over the whole file,
//! then aliases (`$ID`, `$Registry`, …, for version v1.1.0 files), then YAML
//! ([`parse_task_file`] reads a file as it is), then [`plan`]. [`validate`] is the
//! create-time check. Every error is a [`TaskError`] with the line and column in the file
//! as written (`task file line 4, column 7: unknown step key 'bogus' (expected one of …)`).
//! [`Masker`] hides secrets in output; [`run_id_prefix`] and [`run_id`] make `ca1`-style ids.
//!
//! ```
//! use wharf_tasks::{RunVars, StepAction, TaskSource, Values, plan};
//!
//! let vars = RunVars {
//!     id: "cf1".into(),
//!     registry: "myreg.localhost:5000".into(),
//!     registry_name: "myreg".into(),
//!     date: "20261204-183000z".into(),
//!     os: "linux".into(),
//!     architecture: "amd64".into(),
//!     task_name: "t1".into(),
//!     commit: String::new(),
//!     branch: String::new(),
//!     shared_volume: "/workspace".into(),
//! };
//! let file = "version: v1.1.0\nsteps:\n  - build: -t app:$ID .\n  - push: [app:$ID]\n";
//! let plan = plan(&TaskSource::Yaml(file.into()), &vars, &Values::new()).unwrap();
//! assert_eq!(plan.steps[1].action, StepAction::Push(vec!["myreg.localhost:5000/app:cf1".into()]));
//! assert_eq!(plan.steps[1].depends_on, [0]);
//!
//! let err = plan_error("steps:\n  - cmd: x\n    bogus: 1\n", &vars);
//! assert!(err.starts_with("task file line 3, column 5: unknown step key 'bogus'"));
//! # fn plan_error(file: &str, vars: &RunVars) -> String {
//! #     wharf_tasks::plan(&TaskSource::Yaml(file.into()), vars, &Values::new()).unwrap_err().to_string()
//! # }
//! ```

mod alias;
mod dockerfile;
mod error;
mod git_location;
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
pub use dockerfile::{BaseImage, base_images};
pub use error::{Position, Problem, TaskError};
pub use git_location::GitLocation;
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
