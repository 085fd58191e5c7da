//! Owns reading a Dockerfile for the base images a build uses: the `FROM` lines, with the
//! global `ARG`s substituted (build arguments over defaults), stage names told apart from
//! images, and the final stage's base marked as the runtime one. Base-image triggers are built
//! on this: `Runtime` fires for the runtime base only, `All` for every base.
//!
//! It reads what Docker's parser reads for these lines (line continuations, comments, the
//! `escape` parser directive, `--platform` flags, `AS name`) and nothing else; `COPY --from`
//! of an image is not a base. Must never: report a stage name as an image, or `scratch`.

/// One base image of a build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The image as written after substitution (`myreg.localhost:5000/base:1`, `alpine`).
    pub reference: String,
    /// The base of the final stage (the `--target` stage, else the last one), followed through
    /// stages built `FROM` other stages: what the built image runs on.
    pub runtime: bool,
}

struct Stage {
    name: Option<String>,
    /// The stage's image, or the index of the earlier stage it builds on.
    from: From,
}

enum From {
    Image(String),
    Stage(usize),
    Scratch,
}

/// The base images of `dockerfile` built with `build_args` (later ones win) up to `target`, in
/// the order their `FROM` lines appear, each once. An error names the line that cannot be read.
pub fn base_images(
    dockerfile: &str,
    build_args: &[(String, String)],
    target: Option<&str>,
) -> Result<Vec<BaseImage>, String> {
    let mut globals: Vec<(String, String)> = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for (line_no, instruction) in instructions(dockerfile) {
        let mut words = instruction.split_whitespace();
        let Some(keyword) = words.next() else { continue };
        if keyword.eq_ignore_ascii_case("ARG") && stages.is_empty() {
            for decl in words {
                let (name, default) = match decl.split_once('=') {
                    Some((n, d)) => (n, unquote(d)),
                    None => (decl, String::new()),
                };
                let value = build_args.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or(default);
                globals.retain(|(k, _)| k != name);
                globals.push((name.to_string(), value));
            }
        } else if keyword.eq_ignore_ascii_case("FROM") {
            let rest: Vec<&str> = words.filter(|w| !w.starts_with("--")).collect();
            let (image, name) = match rest.as_slice() {
                [image] => (*image, None),
                [image, as_kw, name] if as_kw.eq_ignore_ascii_case("AS") => (*image, Some(name.to_ascii_lowercase())),
                _ => return Err(format!("Dockerfile line {line_no}: FROM needs an image, optionally 'AS name'")),
            };
            let image = substitute(image, &globals);
            if image.is_empty() {
                return Err(format!(
                    "Dockerfile line {line_no}: FROM names no image after its arguments are substituted"
                ));
            }
            let lower = image.to_ascii_lowercase();
            let from = match stages.iter().position(|s| s.name.as_deref() == Some(lower.as_str())) {
                Some(i) => From::Stage(i),
                None if lower == "scratch" => From::Scratch,
                None => From::Image(image),
            };
            stages.push(Stage { name, from });
        }
    }
    if stages.is_empty() {
        return Err("the Dockerfile has no FROM line".into());
    }
    let last = match target {
        None => stages.len() - 1,
        Some(t) => stages
            .iter()
            .position(|s| s.name.as_deref() == Some(t.to_ascii_lowercase().as_str()))
            .ok_or_else(|| format!("the target stage '{t}' is not in the Dockerfile"))?,
    };
    let mut runtime_stage = last;
    while let From::Stage(i) = stages[runtime_stage].from {
        runtime_stage = i;
    }
    let mut out: Vec<BaseImage> = Vec::new();
    for (i, stage) in stages.iter().enumerate().take(last + 1) {
        if let From::Image(reference) = &stage.from {
            let runtime = i == runtime_stage;
            match out.iter_mut().find(|b| &b.reference == reference) {
                Some(b) => b.runtime |= runtime,
                None => out.push(BaseImage { reference: reference.clone(), runtime }),
            }
        }
    }
    Ok(out)
}

/// The file's instructions with their first line number: continuations joined, comments and
/// blank lines dropped, the `escape` directive honoured.
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut escape = '\\';
    let mut directives = true;
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if directives {
            if let Some(d) = line.strip_prefix('#') {
                if let Some((k, v)) = d.split_once('=')
                    && k.trim().eq_ignore_ascii_case("escape")
                {
                    escape = if v.trim() == "`" { '`' } else { '\\' };
                }
                continue;
            }
            directives = false;
        }
        if line.starts_with('#') || (line.is_empty() && pending.is_none()) {
            continue;
        }
        let (continued, body) = match line.strip_suffix(escape) {
            Some(b) => (true, b),
            None => (false, line),
        };
        let entry = pending.get_or_insert_with(|| (i + 1, String::new()));
        if !entry.1.is_empty() {
            entry.1.push(' ');
        }
        entry.1.push_str(body.trim());
        if !continued {
            out.extend(pending.take());
        }
    }
    out.extend(pending);
    out
}

fn unquote(v: &str) -> String {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(inner) = v.strip_prefix(q).and_then(|s| s.strip_suffix(q)) {
            return inner.to_string();
        }
    }
    v.to_string()
}

/// `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alternative}` from `vars`; unknown names
/// are empty, as Docker makes them.
fn substitute(word: &str, vars: &[(String, String)]) -> String {
    let lookup = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()).unwrap_or("");
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '$' || i + 1 == chars.len() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        if chars[i + 1] == '{' {
            let Some(close) = chars[i + 2..].iter().position(|c| *c == '}') else {
                out.extend(&chars[i..]);
                break;
            };
            let inner: String = chars[i + 2..i + 2 + close].iter().collect();
            let value = if let Some((name, default)) = inner.split_once(":-") {
                let v = lookup(name);
                if v.is_empty() { default.to_string() } else { v.to_string() }
            } else if let Some((name, alt)) = inner.split_once(":+") {
                if lookup(name).is_empty() { String::new() } else { alt.to_string() }
            } else {
                lookup(&inner).to_string()
            };
            out.push_str(&value);
            i += close + 3;
        } else {
            let len = chars[i + 1..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == '_').count();
            if len == 0 {
                out.push('$');
                i += 1;
                continue;
            }
            let name: String = chars[i + 1..i + 1 + len].iter().collect();
            out.push_str(lookup(&name));
            i += len + 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bases(file: &str, args: &[(&str, &str)], target: Option<&str>) -> Vec<(String, bool)> {
        let args: Vec<(String, String)> = args.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        base_images(file, &args, target).unwrap().into_iter().map(|b| (b.reference, b.runtime)).collect()
    }

    #[test]
    fn one_stage_has_one_runtime_base() {
        assert_eq!(
            bases("FROM myreg.localhost:5000/base:1\nRUN true\n", &[], None),
            [("myreg.localhost:5000/base:1".to_string(), true)]
        );
    }

    #[test]
    fn build_stages_are_build_time_bases_and_stage_names_are_not_images() {
        let file =
            "FROM golang:1.22 AS build\nRUN go build\nFROM build AS test\nFROM alpine:3\nCOPY --from=build /app /app\n";
        assert_eq!(bases(file, &[], None), [("golang:1.22".to_string(), false), ("alpine:3".to_string(), true)]);
        // The target stage is built on a stage: its runtime base is that stage's.
        assert_eq!(bases(file, &[], Some("test")), [("golang:1.22".to_string(), true)]);
        assert!(base_images(file, &[], Some("nope")).unwrap_err().contains("'nope'"));
    }

    #[test]
    fn global_args_substitute_with_build_args_over_defaults() {
        let file = "# escape=\\\nARG REG=myreg.localhost:5000 \\\n    TAG\nFROM ${REG}/base:${TAG:-1}\nFROM $REG/run:2 AS final\n";
        assert_eq!(
            bases(file, &[], None),
            [("myreg.localhost:5000/base:1".to_string(), false), ("myreg.localhost:5000/run:2".to_string(), true)]
        );
        assert_eq!(
            bases(file, &[("TAG", "7"), ("REG", "other.test")], None),
            [("other.test/base:7".to_string(), false), ("other.test/run:2".to_string(), true)]
        );
    }

    #[test]
    fn platform_flags_scratch_comments_and_the_backtick_escape() {
        let file = "# escape=`\n# a comment\nFROM --platform=$BUILDPLATFORM `\n  busybox AS b\nFROM scratch\nCOPY --from=b /bin/sh /sh\n";
        assert_eq!(bases(file, &[], None), [("busybox".to_string(), false)]);
        assert_eq!(bases("FROM a\nFROM a\n", &[], None), [("a".to_string(), true)]);
    }

    #[test]
    fn unreadable_files_say_where() {
        assert!(base_images("RUN true\n", &[], None).unwrap_err().contains("no FROM"));
        assert!(base_images("FROM\n", &[], None).unwrap_err().contains("line 1"));
        assert!(base_images("\n\nFROM a b c d\n", &[], None).unwrap_err().contains("line 3"));
        assert!(base_images("FROM $NOTHING\n", &[], None).unwrap_err().contains("no image"));
    }
}
