//! Owns the order in which a task file's text becomes a [`TaskFile`], as ACR does it:
//! Go templates over the whole text, then (version v1.1.0 and later) aliases, then YAML.
//! Each rewrite keeps a map back to the text as written, so that every error points into
//! the user's file. It must never read a file twice in a different way.

use crate::alias;
use crate::error::TaskError;
use crate::plan::RunVars;
use crate::source_map::position;
use crate::taskfile::{TaskFile, parse_tree, read_header, version_has_aliases};
use crate::template::{self, Missing};
use crate::values::Values;

/// Renders, expands and parses `text`.
pub(crate) fn read_task_file(
    text: &str,
    vars: &RunVars,
    values: &Values,
    missing: Missing,
) -> Result<TaskFile, TaskError> {
    let (rendered, rendered_map) = template::render(text, vars, values, missing)
        .map_err(|(at, problem)| TaskError::TaskFile { at: position(text, at), problem })?;
    let tree = parse_tree(&rendered, &rendered_map, text)?;
    let locate = |at: usize| position(text, rendered_map.map(at));
    let header = read_header(tree.as_ref(), &locate, rendered.chars().count())?;
    if !version_has_aliases(&header.version) {
        return TaskFile::from_tree(tree.as_ref(), &locate);
    }
    let mut aliases: Vec<(String, String)> = header.alias.as_ref().map(|a| a.values.clone()).unwrap_or_default();
    aliases.extend(alias::run_aliases(vars));
    let directive = header.alias.as_ref().and_then(|a| a.directive).unwrap_or('$');
    let mut skip = rendered_map.substituted();
    skip.extend(header.alias_range);
    let (expanded, expanded_map) = alias::expand(&rendered, &aliases, directive, &skip);
    let composed = |at: usize| rendered_map.map(expanded_map.map(at));
    let tree = crate::yaml::parse(&expanded).map_err(|e| TaskError::TaskFile {
        at: position(text, composed(e.at)),
        problem: crate::error::Problem::Syntax(e.message),
    })?;
    TaskFile::from_tree(tree.as_ref(), &|at| position(text, composed(at)))
}
