//! Owns the rendering of ACR's Go templates over a whole task file, before any YAML is
//! read: `{{.Run.ID}}`, the other `.Run` variables, `{{.Values.name}}` (whitespace inside
//! the braces allowed), comments `{{/* … */}}` and string literals `{{"{{"}}`. Anything else
//! is refused with its position; it must never guess a value (a missing value is an error,
//! or a placeholder when validating at `task create`).

use crate::error::{Problem, TaskError};
use crate::plan::RunVars;
use crate::source_map::{MapBuilder, OffsetMap, position};
use crate::values::Values;

/// What `{{.Values.x}}` becomes when `x` has no value and the caller asked for
/// placeholders (validation at create time, when `--set` may still come with the run).
pub const PLACEHOLDER_VALUE: &str = "0";

/// What to do about a value the template uses and nobody gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Missing {
    Error,
    Placeholder,
}

/// Renders `text` with the run's variables and values. Errors carry the line and column in
/// `text`.
pub fn render_template(text: &str, vars: &RunVars, values: &Values) -> Result<String, TaskError> {
    render(text, vars, values, Missing::Error)
        .map(|(out, _)| out)
        .map_err(|(at, problem)| TaskError::TaskFile { at: position(text, at), problem })
}

/// Renders `text`; on error, the character offset of the action at fault.
pub(crate) fn render(
    text: &str,
    vars: &RunVars,
    values: &Values,
    missing: Missing,
) -> Result<(String, OffsetMap), (usize, Problem)> {
    let mut out = MapBuilder::default();
    let mut rest = text;
    let mut at = 0; // character offset of `rest` in `text`
    while let Some(open) = rest.find("{{") {
        let literal = &rest[..open];
        out.copy(literal, at);
        at += literal.chars().count();
        let after = &rest[open + 2..];
        let Some(close) = find_close(after) else {
            return Err((at, Problem::UnclosedTemplate));
        };
        let inner = &after[..close];
        let value = evaluate(inner, vars, values, missing).map_err(|p| (at, p))?;
        out.substitute(&value, at);
        at += 4 + inner.chars().count();
        rest = &after[close + 2..];
    }
    out.copy(rest, at);
    at += rest.chars().count();
    Ok(out.finish(at))
}

fn evaluate(inner: &str, vars: &RunVars, values: &Values, missing: Missing) -> Result<String, Problem> {
    let expr = inner.trim();
    if let Some(comment) = expr.strip_prefix("/*")
        && comment.ends_with("*/")
    {
        return Ok(String::new());
    }
    if let Some(raw) = expr.strip_prefix('`').and_then(|e| e.strip_suffix('`'))
        && !raw.contains('`')
    {
        return Ok(raw.to_string());
    }
    if let Some(quoted) = expr.strip_prefix('"').and_then(|e| e.strip_suffix('"'))
        && let Some(s) = unquote(quoted)
    {
        return Ok(s);
    }
    let is_path = expr.starts_with('.')
        && expr[1..]
            .split('.')
            .all(|seg| !seg.is_empty() && seg.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !is_path {
        return Err(Problem::UnsupportedTemplate(inner.to_string()));
    }
    let mut segments = expr[1..].splitn(2, '.');
    let root = segments.next().unwrap_or_default();
    let rest = segments.next();
    match (root, rest) {
        ("Run", Some(field)) => run_var(vars, field).ok_or_else(|| Problem::UnknownVariable(expr.to_string())),
        ("Values", Some(name)) => match values.get(name) {
            Some(v) => Ok(v.value.clone()),
            None if missing == Missing::Placeholder => Ok(PLACEHOLDER_VALUE.to_string()),
            None => Err(Problem::MissingValue(name.to_string())),
        },
        ("Build", _) => Err(Problem::BuildId),
        ("Secrets", Some(_)) if missing == Missing::Placeholder => Ok(PLACEHOLDER_VALUE.to_string()),
        ("Secrets", Some(id)) => Err(Problem::KeyVault(id.to_string())),
        _ => Err(Problem::UnknownVariable(expr.to_string())),
    }
}

/// The byte offset of the `}}` that closes an action, skipping string literals in it.
fn find_close(s: &str) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut quote: Option<u8> = None;
    let mut i = 0;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (None, b'"' | b'`') => quote = Some(bytes[i]),
            (None, b'}') if bytes.get(i + 1) == Some(&b'}') => return Some(i),
            (Some(b'"'), b'\\') => i += 1,
            (Some(q), b) if q == b => quote = None,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The value of `.Run.<field>`, if there is such a variable.
pub(crate) fn run_var(vars: &RunVars, field: &str) -> Option<String> {
    let v = match field {
        "ID" => &vars.id,
        "Registry" => &vars.registry,
        "RegistryName" => &vars.registry_name,
        "Date" => &vars.date,
        "OS" => &vars.os,
        "Architecture" => &vars.architecture,
        "Commit" => &vars.commit,
        "Branch" => &vars.branch,
        "TaskName" => &vars.task_name,
        "SharedVolume" => &vars.shared_volume,
        _ => return None,
    };
    Some(v.clone())
}

/// A Go double-quoted string's content, for the escapes `\"`, `\\`, `\n`, `\t`.
fn unquote(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return None,
            '\\' => out.push(match chars.next()? {
                '"' => '"',
                '\\' => '\\',
                'n' => '\n',
                't' => '\t',
                _ => return None,
            }),
            c => out.push(c),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Position;

    pub(crate) fn vars() -> RunVars {
        RunVars {
            id: "cf1".into(),
            registry: "myreg.localhost:5000".into(),
            registry_name: "myreg".into(),
            date: "20261204-183000z".into(),
            os: "linux".into(),
            architecture: "amd64".into(),
            task_name: "t1".into(),
            commit: "abc123".into(),
            branch: "main".into(),
            shared_volume: "/workspace".into(),
        }
    }

    fn render_ok(text: &str, values: &Values) -> String {
        render_template(text, &vars(), values).unwrap()
    }

    #[test]
    fn every_run_variable() {
        let text = "{{.Run.ID}} {{.Run.Registry}} {{.Run.RegistryName}} {{.Run.Date}} {{.Run.OS}} \
                    {{.Run.Architecture}} {{.Run.Commit}} {{.Run.Branch}} {{.Run.TaskName}} {{.Run.SharedVolume}}";
        assert_eq!(
            render_ok(text, &Values::new()),
            "cf1 myreg.localhost:5000 myreg 20261204-183000z linux amd64 abc123 main t1 /workspace"
        );
    }

    #[test]
    fn whitespace_inside_the_braces() {
        let mut values = Values::new();
        values.insert("x", "42", false);
        assert_eq!(render_ok("a {{ .Values.x }} b {{  .Run.ID\t}}", &values), "a 42 b cf1");
    }

    #[test]
    fn comments_and_string_literals() {
        assert_eq!(render_ok("a{{/* note */}}b {{\"{{\"}}.Id{{\"}}\"}} {{`x`}}", &Values::new()), "ab {{.Id}} x");
    }

    #[test]
    fn a_missing_value_is_an_error_naming_it_with_its_position() {
        let err = render_template("steps:\n  - cmd: {{ .Values.image }}\n", &vars(), &Values::new()).unwrap_err();
        assert_eq!(err.position(), Some(Position { line: 2, column: 10 }));
        assert_eq!(err.problem(), &Problem::MissingValue("image".into()));
        assert!(err.to_string().starts_with("task file line 2, column 10: the template uses '.Values.image'"));
    }

    #[test]
    fn a_missing_value_is_a_placeholder_when_asked() {
        let (out, _) = render("x: {{.Values.nope}}", &vars(), &Values::new(), Missing::Placeholder).unwrap();
        assert_eq!(out, "x: 0");
    }

    #[test]
    fn unknown_variables_and_build_id_are_refused() {
        let err = render_template("a\n b {{.Run.Nope}}", &vars(), &Values::new()).unwrap_err();
        assert_eq!(err.problem(), &Problem::UnknownVariable(".Run.Nope".into()));
        assert_eq!(err.position(), Some(Position { line: 2, column: 4 }));
        let err = render_template("{{.Build.ID}}", &vars(), &Values::new()).unwrap_err();
        assert_eq!(err.problem(), &Problem::BuildId);
        assert!(err.to_string().contains("use .Run.ID instead"));
        let err = render_template("{{.Foo}}", &vars(), &Values::new()).unwrap_err();
        assert_eq!(err.problem(), &Problem::UnknownVariable(".Foo".into()));
        let err = render_template("{{.Run}}", &vars(), &Values::new()).unwrap_err();
        assert_eq!(err.problem(), &Problem::UnknownVariable(".Run".into()));
    }

    #[test]
    fn other_actions_and_open_braces_are_refused() {
        let err = render_template("{{ .Values.x | quote }}", &vars(), &Values::new()).unwrap_err();
        assert_eq!(err.problem(), &Problem::UnsupportedTemplate(" .Values.x | quote ".into()));
        let err = render_template("ok\n  {{ if .Run.ID }}", &vars(), &Values::new()).unwrap_err();
        assert!(matches!(err.problem(), Problem::UnsupportedTemplate(_)));
        let err = render_template("a {{.Run.ID", &vars(), &Values::new()).unwrap_err();
        assert_eq!(err.problem(), &Problem::UnclosedTemplate);
        assert_eq!(err.position(), Some(Position { line: 1, column: 3 }));
    }

    #[test]
    fn secrets_need_key_vault() {
        let err = render_template("{{.Secrets.pw}}", &vars(), &Values::new()).unwrap_err();
        assert_eq!(err.problem(), &Problem::KeyVault("pw".into()));
    }

    #[test]
    fn nested_values_use_dotted_names() {
        let values = Values::from_values_file("image:\n  name: busybox\n").unwrap();
        assert_eq!(render_ok("{{.Values.image.name}}", &values), "busybox");
    }

    #[test]
    fn the_map_points_back_past_substitutions() {
        let (out, map) = render("{{.Run.Registry}}/x: y", &vars(), &Values::new(), Missing::Error).unwrap();
        let colon = out.find(':').unwrap();
        // the first ':' is inside the registry, which maps to the action's start
        assert_eq!(map.map(colon), 0);
        let x = out.find("/x").unwrap() + 1;
        assert_eq!(map.map(x), "{{.Run.Registry}}/".len());
    }
}
