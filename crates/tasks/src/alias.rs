//! Owns ACR's aliases (task files of version v1.1.0 and later): `$ID`, `$Registry` and the
//! other run aliases, the file's own `alias: values`, `$$` for a literal `$`, and the image
//! aliases a `cmd` step may name without the `$` (`acr purge …`). Expansion is textual and
//! happens after templates and before YAML, but never inside what a template rendered (a
//! value `pa$$w` stays `pa$$w`): the result ACR gets by expanding aliases first. An alias
//! nobody defined is left as written (`$HOME` in a shell command stays `$HOME`); it must
//! never fail on one.

use std::ops::Range;

use crate::plan::RunVars;
use crate::source_map::{MapBuilder, OffsetMap};

/// The image the default image alias `acr` names, as in ACR (the ACR CLI, used as
/// `cmd: acr purge …`). Wharf makes it configurable: [`crate::Planner::acr_image`].
pub const DEFAULT_ACR_IMAGE: &str = "mcr.microsoft.com/acr/acr-cli:0.1";

/// The run aliases, by name, for `vars`.
pub fn run_aliases(vars: &RunVars) -> Vec<(String, String)> {
    [
        ("ID", &vars.id),
        ("SharedVolume", &vars.shared_volume),
        ("Registry", &vars.registry),
        ("RegistryName", &vars.registry_name),
        ("Date", &vars.date),
        ("OS", &vars.os),
        ("Architecture", &vars.architecture),
        ("Commit", &vars.commit),
        ("Branch", &vars.branch),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.clone()))
    .collect()
}

/// Whether `name` may be an alias (ASCII letters and digits, at least one).
pub fn is_alias_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// Replaces every `<directive>name` of `text` whose name `aliases` defines (the first
/// definition of a name wins), and `<directive><directive>` with one directive. The
/// characters in `skip` (the `alias` section itself, and what templates rendered: values
/// are never alias-expanded, as in ACR where aliases expand before templates) are copied
/// as they are.
pub(crate) fn expand(
    text: &str,
    aliases: &[(String, String)],
    directive: char,
    skip: &[Range<usize>],
) -> (String, OffsetMap) {
    let chars: Vec<char> = text.chars().collect();
    let lookup = |name: &str| aliases.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut out = MapBuilder::default();
    let mut literal = String::new();
    let mut literal_at = 0;
    let mut i = 0;
    while i < chars.len() {
        let skipped = skip.iter().any(|r| r.contains(&i));
        if chars[i] != directive || skipped {
            if literal.is_empty() {
                literal_at = i;
            }
            literal.push(chars[i]);
            i += 1;
            continue;
        }
        out.copy(&literal, literal_at);
        literal.clear();
        if chars.get(i + 1) == Some(&directive) {
            out.substitute(&directive.to_string(), i);
            i += 2;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < chars.len() && chars[end].is_ascii_alphanumeric() {
            end += 1;
        }
        let name: String = chars[start..end].iter().collect();
        match lookup(&name) {
            Some(value) if !name.is_empty() => {
                out.substitute(value, i);
                i = end;
            }
            _ => {
                // Not an alias: keep the directive, and go on from the next character.
                literal_at = i;
                literal.push(directive);
                i += 1;
            }
        }
    }
    out.copy(&literal, literal_at);
    out.finish(chars.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aliases() -> Vec<(String, String)> {
        vec![("Registry".into(), "r.io".into()), ("ID".into(), "cf1".into()), ("img".into(), "busybox".into())]
    }

    fn run(text: &str) -> String {
        expand(text, &aliases(), '$', &[]).0
    }

    #[test]
    fn aliases_expand_and_unknown_ones_stay() {
        assert_eq!(run("$Registry/app:$ID"), "r.io/app:cf1");
        assert_eq!(run("$img $HOME ${x} $"), "busybox $HOME ${x} $");
        assert_eq!(run("$ID$ID"), "cf1cf1");
        assert_eq!(run("a$IDb"), "a$IDb");
    }

    #[test]
    fn a_double_directive_is_a_literal_one() {
        assert_eq!(run("pa$$word $$ID $$$ID"), "pa$word $ID $cf1");
    }

    #[test]
    fn the_skipped_range_is_copied() {
        let text = "alias: $ID\nx: $ID";
        let skip = [0..11, 30..31];
        let (out, _) = expand(text, &aliases(), '$', &skip);
        assert_eq!(out, "alias: $ID\nx: cf1");
    }

    #[test]
    fn another_directive() {
        assert_eq!(expand("&ID $ID &&", &aliases(), '&', &[]).0, "cf1 $ID &");
    }

    #[test]
    fn offsets_map_back() {
        let (out, map) = expand("$Registry/x $y", &aliases(), '$', &[]);
        assert_eq!(out, "r.io/x $y");
        assert_eq!(map.map(2), 0);
        assert_eq!(map.map(4), 9);
        assert_eq!(map.map(7), 12);
    }

    #[test]
    fn names() {
        assert!(is_alias_name("abc1"));
        assert!(!is_alias_name("a-b"));
        assert!(!is_alias_name(""));
    }
}
