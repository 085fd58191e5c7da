//! Owns ACR's multi-step task file as data: [`TaskFile`] and its [`Step`]s, read from YAML
//! with every key and type checked (an unknown key is an error, as is a `when` naming no
//! step, two steps with one id, or a dependency cycle), each error at its line and column.
//! It reads text as it is: templates and aliases are expanded before (see `prepare`), and
//! it must never qualify image names or split commands (planning does that). The reading
//! itself, key by key, is in `read`.

use serde::Serialize;

use crate::error::{Position, TaskError};
use crate::source_map::{OffsetMap, position};

mod read;

pub(crate) use read::{parse_tree, read_header};

/// The versions ACR accepts; aliases need v1.1.0.
pub const TASK_VERSIONS: [&str; 3] = ["v1.0.0", "v1.1.0", "1.0-preview-1"];
/// The version of a file that names none.
pub const DEFAULT_VERSION: &str = "v1.0.0";

/// A parsed task file. Positions are in the file as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskFile {
    /// `version`, as written, or [`DEFAULT_VERSION`].
    pub version: String,
    /// `stepTimeout`, seconds: the timeout of steps that set none (0 or absent: 600).
    pub step_timeout: Option<u64>,
    pub working_directory: Option<String>,
    /// `env: [K=V, …]`.
    pub env: Vec<(String, String)>,
    pub secrets: Vec<Secret>,
    pub volumes: Vec<Volume>,
    pub alias: Option<AliasSection>,
    pub networks: Vec<Network>,
    pub steps: Vec<Step>,
}

/// A `secrets` entry: a secret that lives in Azure Key Vault (`{{.Secrets.<id>}}`).
/// Wharf keeps it but cannot fetch it: a run of a file declaring one fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Secret {
    pub id: String,
    pub keyvault: Option<String>,
    /// `clientID`: the managed identity that reads the vault.
    pub client_id: Option<String>,
    pub at: Position,
}

/// A `volumes` entry: files made from base64 values, mounted by `volumeMounts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Volume {
    pub name: String,
    /// File name → content, decoded from the file's base64.
    pub secret: Vec<(String, Vec<u8>)>,
    pub at: Position,
}

/// A step's `volumeMounts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeMount {
    pub name: String,
    pub mount_path: String,
}

/// A `networks` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Network {
    pub name: String,
    pub driver: Option<String>,
    pub ipv6: bool,
    pub skip_creation: bool,
    pub is_default: bool,
}

/// The `alias` section (honoured from version v1.1.0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AliasSection {
    /// `src`: alias files to load. Wharf cannot load them; a run of a file with one fails.
    pub src: Vec<String>,
    /// `values`: name → replacement, in the order written.
    pub values: Vec<(String, String)>,
    /// `directive`: the character that starts an alias (`$` unless set).
    pub directive: Option<char>,
    pub at: Position,
}

/// What a step does, as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum StepKind {
    /// `build: <docker build arguments>`.
    Build(String),
    /// `push: [image, …]`.
    Push(Vec<String>),
    /// `cmd: <image> [arguments]`.
    Cmd(String),
}

/// One `steps` entry, as written (defaults are applied when planning).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// Where the step starts.
    pub at: Position,
    pub id: Option<String>,
    pub kind: StepKind,
    /// Where the `build`/`push`/`cmd` value starts.
    pub kind_at: Position,
    /// `when`: `["-"]`, step ids, or empty (after the previous step).
    pub when: Vec<String>,
    pub when_at: Vec<Position>,
    pub detach: bool,
    pub entry_point: Option<String>,
    pub env: Vec<(String, String)>,
    pub ignore_errors: bool,
    pub retries: u32,
    /// `retryDelay`, seconds.
    pub retry_delay: Option<u64>,
    /// `timeout`, seconds.
    pub timeout: Option<u64>,
    pub working_directory: Option<String>,
    pub keep: bool,
    /// `startDelay`, seconds.
    pub start_delay: u64,
    pub disable_working_directory_override: bool,
    pub isolation: Option<String>,
    pub network: Option<String>,
    pub privileged: bool,
    pub user: Option<String>,
    pub pull: bool,
    pub repeat: u32,
    pub expose: Vec<String>,
    pub ports: Vec<String>,
    pub volume_mounts: Vec<VolumeMount>,
    /// `secret`, kept as written (its shape is not documented).
    pub secret: Option<serde_json::Value>,
    /// `cache` (`enabled`/`disabled`, buildx caching).
    pub cache: Option<String>,
    pub cpus: Option<String>,
    pub exited_with: Vec<i64>,
    pub exited_without: Vec<i64>,
    pub retry_on_errors: Vec<String>,
}

impl TaskFile {
    /// Whether aliases apply (version v1.1.0 or later).
    pub fn has_aliases(&self) -> bool {
        version_has_aliases(&self.version)
    }

    /// Every step's id: its own, or `acb_step_<index>`.
    pub fn step_ids(&self) -> Vec<String> {
        self.steps.iter().enumerate().map(|(i, s)| s.id.clone().unwrap_or_else(|| default_step_id(i))).collect()
    }

    /// For each step, the indices of the steps it waits for: none for `when: ["-"]` and for
    /// the first step, the previous step when `when` is absent, else the steps `when` names.
    pub fn dependencies(&self) -> Vec<Vec<usize>> {
        let ids = self.step_ids();
        self.steps
            .iter()
            .enumerate()
            .map(|(i, step)| {
                if step.when.is_empty() {
                    return i.checked_sub(1).into_iter().collect();
                }
                let mut deps: Vec<usize> = step.when.iter().filter_map(|w| ids.iter().position(|id| id == w)).collect();
                deps.sort_unstable();
                deps.dedup();
                deps
            })
            .collect()
    }
}

/// ACR's id for a step that gives none.
pub fn default_step_id(index: usize) -> String {
    format!("acb_step_{index}")
}

/// Whether a version (as written in a file) enables aliases: `v1.1.0` or any later `vX.Y.Z`.
pub fn version_has_aliases(version: &str) -> bool {
    let v = version.trim().trim_start_matches(['v', 'V']);
    let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor) >= (1, 1),
        _ => false,
    }
}

/// Parses a task file's YAML as it is (no templates, no aliases). Errors carry the line and
/// column in `yaml`.
pub fn parse_task_file(yaml: &str) -> Result<TaskFile, TaskError> {
    let root = parse_tree(yaml, &OffsetMap::identity(), yaml)?;
    TaskFile::from_tree(root.as_ref(), &|at| position(yaml, at))
}
