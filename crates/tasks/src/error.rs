//! Owns the task language's errors: one [`TaskError`] enum saying where (a [`Position`] in
//! the task or values file, or the request field) and one [`Problem`] enum saying what. The
//! rendering is a compiler's: `task file line 4, column 7: unknown step key 'bogus' (…)`.
//! It must never lose the position of an error that has one.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A place in a file: line and column, both counted from 1, the column in characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a task could not be read, rendered or planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TaskError {
    /// Something in the task file (its YAML, a template in it, a step), at `at` in the file
    /// as written (before templates and aliases were expanded).
    #[error("task file {at}: {problem}")]
    TaskFile { at: Position, problem: Problem },
    /// Something in the `--values` file.
    #[error("values file {at}: {problem}")]
    ValuesFile { at: Position, problem: Problem },
    /// Something in a request field that is not a file (a `Docker` step's image names,
    /// arguments, platform): `field` names it as the request does (`imageNames[0]`).
    #[error("{field}: {problem}")]
    Request { field: String, problem: Problem },
}

impl TaskError {
    /// Where in the file, if the error is in one.
    pub fn position(&self) -> Option<Position> {
        match self {
            TaskError::TaskFile { at, .. } | TaskError::ValuesFile { at, .. } => Some(*at),
            TaskError::Request { .. } => None,
        }
    }

    /// The error as a compiler shows it: the message, then the file's line with a caret
    /// under the column. `source` is the file the position is in (the task file as
    /// written, or the values file); an error without a position is just its message.
    ///
    /// ```text
    /// task file line 4, column 5: unknown step key 'bogus' (expected one of …)
    ///   4 |     bogus: 1
    ///     |     ^
    /// ```
    pub fn snippet(&self, source: &str) -> String {
        let mut out = self.to_string();
        let Some(at) = self.position() else { return out };
        let Some(line) = source.lines().nth(at.line.saturating_sub(1)) else { return out };
        let number = at.line.to_string();
        let pad = " ".repeat(number.len());
        // Tabs stay tabs so the caret lines up under them.
        let lead: String =
            line.chars().take(at.column.saturating_sub(1)).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        out.push_str(&format!("\n  {number} | {line}\n  {pad} | {lead}^"));
        out
    }

    /// What went wrong, without the where.
    pub fn problem(&self) -> &Problem {
        match self {
            TaskError::TaskFile { problem, .. }
            | TaskError::ValuesFile { problem, .. }
            | TaskError::Request { problem, .. } => problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_point_at_the_column() {
        let source = "steps:\n  - cmd: x\n    bogus: 1\n";
        let err =
            TaskError::TaskFile { at: Position { line: 3, column: 5 }, problem: Problem::DuplicateKey("bogus".into()) };
        assert_eq!(
            err.snippet(source),
            "task file line 3, column 5: the key 'bogus' is given twice\n  3 |     bogus: 1\n    |     ^"
        );
        let err = TaskError::Request { field: "imageNames[0]".into(), problem: Problem::EmptyImage };
        assert_eq!(err.snippet(source), "imageNames[0]: an image name is empty");
    }
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The YAML itself does not parse.
    #[error("{0}")]
    Syntax(String),
    #[error("the task file is empty")]
    Empty,
    #[error("the task file has no steps")]
    NoSteps,
    /// `context` says where (`the task file`, `a step`, `a volume`); `expected` lists the keys.
    #[error("unknown {context} key '{key}' (expected one of {expected})")]
    UnknownKey { context: &'static str, key: String, expected: String },
    #[error("the key '{0}' is given twice")]
    DuplicateKey(String),
    /// A value of the wrong type: `'timeout' must be an integer, found 'abc'`.
    #[error("'{key}' must be {expected}, found {found}")]
    BadType { key: String, expected: &'static str, found: String },
    #[error("'{key}' is required in {context}")]
    MissingKey { key: &'static str, context: &'static str },
    #[error("invalid version '{0}' (supported: v1.0.0, v1.1.0)")]
    BadVersion(String),
    #[error("the environment variable '{0}' must be written NAME=value")]
    BadEnv(String),
    /// A step with none, or more than one, of `build`, `push` and `cmd`.
    #[error("a step must have exactly one of 'build', 'push' or 'cmd' (found {0})")]
    StepKind(String),
    #[error("the step id '{0}' is used by two steps")]
    DuplicateStepId(String),
    #[error("the step id '{0}' contains whitespace")]
    StepIdSpace(String),
    #[error("'when' names the step '{0}', and no step has that id")]
    UnknownWhen(String),
    #[error("'when' lists '-' (start at once) together with other steps")]
    WhenDashWithOthers,
    #[error("the step '{0}' waits for itself in 'when'")]
    SelfDependency(String),
    /// The ids around a dependency cycle, first one repeated at the end.
    #[error("the steps wait for each other in a cycle: {}", .0.join(" -> "))]
    Cycle(Vec<String>),
    #[error("'{0}' must not be negative")]
    Negative(String),
    #[error("the volume '{0}' is declared twice")]
    DuplicateVolume(String),
    #[error("the secret '{0}' is declared twice")]
    DuplicateSecret(String),
    #[error("the value of '{key}' in volume '{volume}' is not valid base64")]
    BadBase64 { volume: String, key: String },
    #[error("the volume mount '{0}' names no volume in 'volumes'")]
    UnknownVolume(String),
    #[error("'volumeMounts' is only allowed on cmd steps")]
    MountsOnNonCmd,
    #[error("two volume mounts use the container path '{0}'")]
    DuplicateMountPath(String),
    /// A template action that is not one Wharf renders (`{{ .Values.x | quote }}`).
    #[error("unsupported template action '{{{{{0}}}}}'")]
    UnsupportedTemplate(String),
    #[error("a template action '{{{{' is not closed with '}}}}'")]
    UnclosedTemplate,
    #[error("unknown template variable '{0}'")]
    UnknownVariable(String),
    /// `{{.Values.x}}` with no value for `x`.
    #[error("the template uses '.Values.{0}', and no value named '{0}' was given (--set, --set-secret or --values)")]
    MissingValue(String),
    #[error("'.Build.ID' is no longer supported: use .Run.ID instead")]
    BuildId,
    /// `{{.Secrets.x}}` or a `secrets` entry, which need Azure Key Vault.
    #[error("the secret '{0}' lives in Azure Key Vault, and Wharf cannot fetch Key Vault secrets")]
    KeyVault(String),
    #[error("alias names must be alphanumeric, found '{0}'")]
    BadAliasName(String),
    #[error("the alias directive must be one character that is not a letter or digit, found '{0}'")]
    BadAliasDirective(String),
    #[error("alias files ('alias: src') cannot be loaded; list the aliases under 'alias: values'")]
    AliasSrc,
    #[error(
        "unknown build flag '{0}' (supported: -t/--tag, -f/--file, --build-arg, --target, --no-cache, --pull, --platform)"
    )]
    UnknownBuildFlag(String),
    #[error("the build flag '{0}' needs a value")]
    MissingFlagValue(String),
    #[error("the build has no context (the last argument, e.g. '.')")]
    NoBuildContext,
    #[error("the build has more than one context: {}", .0.join(", "))]
    ManyBuildContexts(Vec<String>),
    #[error("unterminated quote in '{0}'")]
    UnterminatedQuote(String),
    #[error("the command is empty")]
    EmptyCmd,
    #[error("'push' lists no images")]
    EmptyPush,
    #[error("an image name is empty")]
    EmptyImage,
    /// A values file that is not a mapping of names to values.
    #[error("{0}")]
    BadValues(String),
}
