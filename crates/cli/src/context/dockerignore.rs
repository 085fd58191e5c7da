//! `.dockerignore` rules as Docker applies them (moby's `patternmatcher` and its
//! `ignorefile.ReadAll`). Owns parsing a file's text and deciding whether one context path is
//! excluded; must never touch the file system (the packer walks, this answers).
//!
//! - A line starting with `#` is a comment; lines are trimmed; blank lines are skipped; a UTF-8
//!   BOM on the first line is dropped.
//! - `!` makes an exception. The pattern is cleaned as Go's `filepath.Clean` cleans it and one
//!   leading `/` is dropped, so `/foo`, `./foo` and `foo/` all mean `foo`.
//! - The glob is Go's `filepath.Match` plus `**`: `*` and `?` stop at `/`, `[…]` is a class
//!   (negated by `^`), `\` escapes the next character, `**/` matches any number of directories
//!   (none included) and a trailing `**` matches anything.
//! - A pattern matches a path when it matches the path itself or one of its parent directories
//!   (so `node_modules` excludes everything below it); the last matching line decides, so a
//!   later `!` line re-includes.
//!
//! az's own matcher (`_archive_utils.py`) differs in small ways (it keeps a leading `/` on
//! ordinary patterns, and its `**/foo` does not match a top-level `foo`); Docker's rules are
//! the ones users write `.dockerignore` files for, so Wharf follows Docker
//! (docs/decisions.md).

use regex::Regex;

/// One line of a `.dockerignore` file.
#[derive(Debug, Clone)]
struct Rule {
    /// The cleaned pattern, without its `!`.
    pattern: String,
    /// `!pattern`: re-include what matches.
    exception: bool,
    regex: Regex,
}

/// The rules of one `.dockerignore` file, in file order.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    rules: Vec<Rule>,
}

/// A line Docker would refuse too.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(".dockerignore line {line}: {reason}")]
pub struct PatternError {
    pub line: usize,
    pub reason: String,
}

impl DockerIgnore {
    /// Parses a `.dockerignore` file's text.
    pub fn parse(text: &str) -> Result<DockerIgnore, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut rules = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            if raw.starts_with('#') {
                continue;
            }
            let mut pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            let exception = pattern.starts_with('!');
            if exception {
                pattern = pattern[1..].trim();
                if pattern.is_empty() {
                    return Err(PatternError { line, reason: "illegal exclusion pattern: \"!\"".into() });
                }
            }
            let mut cleaned = clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let regex = compile(&cleaned).map_err(|reason| PatternError { line, reason })?;
            rules.push(Rule { pattern: cleaned, exception, regex });
        }
        Ok(DockerIgnore { rules })
    }

    /// Adds an exclusion before the other rules (any of them overrides it). `pattern` is a
    /// plain name; one that does not compile is not added.
    pub fn insert_first(&mut self, pattern: &str) {
        let pattern = clean(pattern);
        if let Ok(regex) = compile(&pattern) {
            self.rules.insert(0, Rule { pattern, exception: false, regex });
        }
    }

    /// Whether any rule is an exception (`!…`): then an excluded directory must still be
    /// walked, since something below it may be included again.
    pub fn has_exceptions(&self) -> bool {
        self.rules.iter().any(|r| r.exception)
    }

    /// Whether `path` (relative to the context root, `/`-separated, no leading `/`) is
    /// excluded: the last rule that matches the path or one of its parent directories decides.
    pub fn excludes(&self, path: &str) -> bool {
        let parents: Vec<&str> = path.match_indices('/').map(|(i, _)| &path[..i]).collect();
        let mut excluded = false;
        for rule in &self.rules {
            // A rule can only change the answer: an exception when excluded, else a pattern.
            if rule.exception != excluded {
                continue;
            }
            if rule.regex.is_match(path) || parents.iter().any(|p| rule.regex.is_match(p)) {
                excluded = !rule.exception;
            }
        }
        excluded
    }

    /// The patterns, for messages (`!` kept).
    pub fn patterns(&self) -> Vec<String> {
        self.rules.iter().map(|r| if r.exception { format!("!{}", r.pattern) } else { r.pattern.clone() }).collect()
    }
}

/// Go's `filepath.Clean` for `/`-separated paths: no empty or `.` elements, `..` removes the
/// element before it (and is dropped at the root), no trailing `/`; `""` becomes `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(&last) if last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// The regex moby's `Pattern.compile` builds for a cleaned pattern.
fn compile(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                // `**/` is treated as `**`: eat the slash.
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    re.push_str(".*");
                } else {
                    re.push_str("(.*/)?");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => match chars.get(i) {
                Some(next) => {
                    re.push_str(&regex::escape(&next.to_string()));
                    i += 1;
                }
                None => re.push_str(r"\\"),
            },
            '[' => {
                // A class, as Go's regexp reads it (`^` negates); `\` escapes inside it too.
                let mut class = String::from("[");
                if chars.get(i) == Some(&'^') {
                    class.push('^');
                    i += 1;
                }
                let body = class.len();
                let mut closed = false;
                while i < chars.len() {
                    let d = chars[i];
                    i += 1;
                    match d {
                        ']' => {
                            closed = true;
                            break;
                        }
                        '\\' if i < chars.len() => {
                            class.push_str(&regex::escape(&chars[i].to_string()));
                            i += 1;
                        }
                        // Characters the regex crate gives a meaning inside a class.
                        '[' | '&' | '~' => {
                            class.push('\\');
                            class.push(d);
                        }
                        d => class.push(d),
                    }
                }
                if !closed || class.len() == body {
                    return Err(format!("syntax error in pattern '{pattern}': unterminated or empty character class"));
                }
                class.push(']');
                re.push_str(&class);
            }
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).map_err(|e| format!("syntax error in pattern '{pattern}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn clean_is_go_filepath_clean() {
        assert_eq!(clean("./foo/"), "foo");
        assert_eq!(clean("/foo//bar/./baz/"), "/foo/bar/baz");
        assert_eq!(clean("a/../b"), "b");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("./"), ".");
    }

    #[test]
    fn comments_blanks_and_leading_slashes() {
        let r = rules("\u{feff}# secret.txt\n\n   \n/secret.txt\n./build/\n  spaced.txt  \n");
        assert_eq!(r.patterns(), ["secret.txt", "build", "spaced.txt"]);
        assert!(r.excludes("secret.txt"));
        assert!(!r.excludes("sub/secret.txt"), "a pattern is anchored at the context root");
        assert!(r.excludes("build"));
        assert!(r.excludes("spaced.txt"));
        // `#` only starts a comment at the very beginning of the line.
        assert!(rules(" #x\n").excludes("#x"));
    }

    #[test]
    fn a_directory_pattern_excludes_everything_under_it() {
        let r = rules("node_modules\nlogs/\n");
        assert!(r.excludes("node_modules"));
        assert!(r.excludes("node_modules/a/b/c.js"));
        assert!(r.excludes("logs/today/1.log"));
        assert!(!r.excludes("node_modules2"));
        assert!(!r.excludes("src/node_modules"));
    }

    #[test]
    fn star_and_question_mark_stop_at_slashes() {
        let r = rules("*.log\ndocs/?.md\n");
        assert!(r.excludes("a.log"));
        assert!(!r.excludes("sub/a.log"), "* does not cross a directory");
        assert!(r.excludes("docs/a.md"));
        assert!(!r.excludes("docs/ab.md"));
        let r = rules("*/temp*\n");
        assert!(r.excludes("somedir/temporary.txt"));
        assert!(r.excludes("somedir/temp"));
        assert!(!r.excludes("a/b/temp"));
        assert!(!r.excludes("temp"));
    }

    #[test]
    fn double_star_matches_any_number_of_directories() {
        let r = rules("**/*.go\n");
        assert!(r.excludes("main.go"), "**/ matches zero directories too");
        assert!(r.excludes("a/b/c/main.go"));
        assert!(!r.excludes("main.rs"));
        let r = rules("a/**/z\n");
        assert!(r.excludes("a/z"));
        assert!(r.excludes("a/b/c/z"));
        assert!(!r.excludes("b/z"));
        let r = rules("cache/**\n");
        assert!(r.excludes("cache/x"));
        assert!(r.excludes("cache/x/y"));
        assert!(!r.excludes("cachex"));
        let r = rules("**\n!keep\n");
        assert!(r.excludes("anything/at/all"));
        assert!(!r.excludes("keep"));
    }

    #[test]
    fn exceptions_re_include_and_the_last_matching_line_wins() {
        let r = rules("*.md\n!README.md\n");
        assert!(r.excludes("CHANGELOG.md"));
        assert!(!r.excludes("README.md"));
        assert!(r.has_exceptions());
        // The exception comes first, so the later pattern wins again.
        let r = rules("!README.md\n*.md\n");
        assert!(r.excludes("README.md"));
        // An excluded directory with one file taken back.
        let r = rules("build\n!build/keep.txt\n");
        assert!(r.excludes("build/out.o"));
        assert!(!r.excludes("build/keep.txt"));
        assert!(r.excludes("build"));
        // An exception names a directory: everything below it comes back.
        let r = rules("vendor\n!vendor/ours\nvendor/ours/tmp\n");
        assert!(r.excludes("vendor/theirs/x"));
        assert!(!r.excludes("vendor/ours/a/b"));
        assert!(r.excludes("vendor/ours/tmp/x"));
        assert!(!rules("x\n").has_exceptions());
    }

    #[test]
    fn classes_and_escapes() {
        let r = rules("file[0-9].txt\n[^a]*.bin\nlit\\*eral\n");
        assert!(r.excludes("file7.txt"));
        assert!(!r.excludes("filex.txt"));
        assert!(r.excludes("b.bin"));
        assert!(!r.excludes("a.bin"));
        assert!(r.excludes("lit*eral"));
        assert!(!r.excludes("litXeral"));
        // Regex characters in a pattern are literal.
        let r = rules("a.b\n(x)+$\n");
        assert!(r.excludes("a.b"));
        assert!(!r.excludes("aXb"));
        assert!(r.excludes("(x)+$"));
    }

    #[test]
    fn lines_docker_refuses() {
        assert_eq!(DockerIgnore::parse("a\n!\n").unwrap_err().line, 2);
        assert!(DockerIgnore::parse("[abc\n").is_err());
        assert!(DockerIgnore::parse("[]\n").is_err());
    }

    #[test]
    fn a_rule_inserted_first_loses_to_the_file() {
        let mut r = rules("a.txt\n");
        r.insert_first(".dockerignore");
        assert!(r.excludes(".dockerignore") && r.excludes("a.txt"));
        let mut r = rules("!.dockerignore\n");
        r.insert_first(".dockerignore");
        assert!(!r.excludes(".dockerignore"));
    }
}
