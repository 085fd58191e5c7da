//! ACR Tasks' task language, as pure functions: a task (a multi-step YAML file, a Dockerfile
//! build or a single `--cmd`) plus the run's variables and values become a [`Plan`] — typed
//! steps with their images, arguments, dependencies and timeouts — that an agent executes.
//! Also the run ids, run statuses and the masking of secret values in logs. No I/O, no clock:
//! the run's date comes in with its [`RunVars`].

pub mod plan;

pub use plan::{BuildStep, CmdStep, Plan, PlannedStep, RunStatus, RunVars, StepAction};
