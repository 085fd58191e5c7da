//! Lint: warnings about conditions that parse but probably do not mean what
//! their author wanted.
//!
//! Owns:
//! * the trailing-slash pitfall: `StringStartsWith[IgnoreCase] 'backend'` on
//!   the repository name also matches `backend-infra/k8s`, `backendsvc/…` and
//!   `backend` itself ([`extra_prefix_matches`] names them, given the
//!   registry's repositories); the same for `StringLike 'backend*'`;
//! * action guards that leave some of the role's data actions unrestricted
//!   (e.g. a Writer whose condition guards only the read actions, so writes
//!   are allowed in every repository), or that can never grant some of them;
//! * attributes Wharf never supplies (comparisons on them are never true).
//!
//! Must never: reject a condition. Warnings are advice; `parser` decides validity.

use std::fmt;

use super::Condition;
use super::ast::*;
use super::context::{IS_PRIVATE_LINK, PRIVATE_ENDPOINT, REPOSITORY_NAME, SUBNET, UTC_NOW};
use super::eval::Truth;
use crate::actions::action_matches;
use crate::data_plane::DataAction;
use crate::roles::RoleDefinition;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// A repository-name prefix without a trailing `/`.
    PrefixWithoutTrailingSlash { operator: Function, value: String },
    /// The condition's action guards do not restrict these data actions of the role:
    /// they are allowed in every repository.
    UnrestrictedDataActions { actions: Vec<String> },
    /// The condition can never be true for these data actions of the role.
    DataActionsNeverGranted { actions: Vec<String> },
    /// An attribute Wharf never supplies; comparisons on it are never true.
    UnsuppliedAttribute { attribute: String },
}

impl Warning {
    /// Stable identifier for tooling.
    pub fn code(&self) -> &'static str {
        match self {
            Warning::PrefixWithoutTrailingSlash { .. } => "PrefixWithoutTrailingSlash",
            Warning::UnrestrictedDataActions { .. } => "UnrestrictedDataActions",
            Warning::DataActionsNeverGranted { .. } => "DataActionsNeverGranted",
            Warning::UnsuppliedAttribute { .. } => "UnsuppliedAttribute",
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::PrefixWithoutTrailingSlash { operator, value } => write!(
                f,
                "{} '{value}' does not end in '/': it also matches repositories such as '{value}-other/…' and '{value}' itself; use '{value}/' (and a separate StringEqualsIgnoreCase '{value}' if the repository itself is meant)",
                operator.keyword()
            ),
            Warning::UnrestrictedDataActions { actions } => write!(
                f,
                "the condition does not restrict {}: the role assignment allows {} in every repository",
                actions.join(", "),
                if actions.len() == 1 { "it" } else { "them" }
            ),
            Warning::DataActionsNeverGranted { actions } => write!(
                f,
                "the condition can never be true for {}; the role assignment never grants {}",
                actions.join(", "),
                if actions.len() == 1 { "it" } else { "them" }
            ),
            Warning::UnsuppliedAttribute { attribute } => {
                write!(f, "{attribute} is never supplied by Wharf; comparisons on it are never true")
            }
        }
    }
}

/// All warnings for `condition` on an assignment of `role`.
pub fn lint(condition: &Condition, role: &RoleDefinition) -> Vec<Warning> {
    let expr = condition.expr();
    let mut warnings = Vec::new();
    expr.walk(&mut |node| {
        if let Expr::Compare(c) = node
            && let Some(w) = prefix_warning(c)
            && !warnings.contains(&w)
        {
            warnings.push(w);
        }
    });
    let mut unsupplied: Vec<String> = Vec::new();
    expr.walk(&mut |node| {
        let attributes: Vec<&AttributeRef> = match node {
            Expr::Exists(a) => vec![a],
            Expr::Compare(c) => [&c.left, &c.right]
                .into_iter()
                .filter_map(|o| if let Operand::Attribute(a) = o { Some(a) } else { None })
                .collect(),
            _ => Vec::new(),
        };
        for a in attributes {
            let text = a.to_string();
            if !is_supplied(a) && !unsupplied.contains(&text) {
                unsupplied.push(text);
            }
        }
    });
    warnings.extend(unsupplied.into_iter().map(|attribute| Warning::UnsuppliedAttribute { attribute }));

    let data_actions = role_data_actions(role);
    let unrestricted: Vec<String> =
        data_actions.iter().filter(|a| guard_truth(expr, a) == Truth::True).cloned().collect();
    let never: Vec<String> = data_actions.iter().filter(|a| guard_truth(expr, a) == Truth::False).cloned().collect();
    if !unrestricted.is_empty() {
        warnings.push(Warning::UnrestrictedDataActions { actions: unrestricted });
    }
    if !never.is_empty() {
        warnings.push(Warning::DataActionsNeverGranted { actions: never });
    }
    warnings
}

/// Repositories that `StringStartsWith[IgnoreCase] prefix` matches but the
/// intended `prefix/` does not (including the repository named `prefix`).
pub fn extra_prefix_matches<'a, S: AsRef<str>>(prefix: &str, ignore_case: bool, repositories: &'a [S]) -> Vec<&'a str> {
    let fold = |s: &str| {
        if ignore_case { s.to_lowercase() } else { s.to_string() }
    };
    let base = fold(prefix);
    let intended = format!("{}/", base.trim_end_matches('/'));
    repositories
        .iter()
        .map(AsRef::as_ref)
        .filter(|repo| {
            let r = fold(repo);
            r.starts_with(&base) && !r.starts_with(&intended)
        })
        .collect()
}

fn is_repository_name(operand: &Operand) -> bool {
    matches!(operand, Operand::Attribute(a)
        if matches!(a.source, AttributeSource::Request | AttributeSource::Resource)
            && a.path.eq_ignore_ascii_case(REPOSITORY_NAME))
}

fn prefix_warning(c: &Comparison) -> Option<Warning> {
    if c.operator.quantifier.is_some() || !is_repository_name(&c.left) {
        return None;
    }
    let Operand::Literal(Literal::Single(Scalar::String(value))) = &c.right else {
        return None;
    };
    let f = c.operator.function;
    let risky = match f {
        Function::StringStartsWith | Function::StringStartsWithIgnoreCase => !value.ends_with('/'),
        Function::StringLike | Function::StringLikeIgnoreCase => {
            value.ends_with('*')
                && !value.ends_with("\\*")
                && !value.trim_end_matches('*').ends_with('/')
                && !value.trim_end_matches('*').is_empty()
        }
        _ => false,
    };
    risky.then(|| Warning::PrefixWithoutTrailingSlash { operator: f, value: value.trim_end_matches('*').to_string() })
}

fn is_supplied(a: &AttributeRef) -> bool {
    match a.source {
        AttributeSource::Request | AttributeSource::Resource => a.path.eq_ignore_ascii_case(REPOSITORY_NAME),
        AttributeSource::Environment => {
            [IS_PRIVATE_LINK, PRIVATE_ENDPOINT, SUBNET, UTC_NOW].iter().any(|k| a.path.eq_ignore_ascii_case(k))
        }
        AttributeSource::Principal => true,
    }
}

/// The concrete data actions a role grants: the ACR catalogue filtered by the
/// role, plus any wildcard-free data action outside the catalogue.
fn role_data_actions(role: &RoleDefinition) -> Vec<String> {
    let mut actions: Vec<String> =
        DataAction::ALL.iter().map(|a| a.as_str()).filter(|a| role.allows_data_action(a)).map(str::to_string).collect();
    for p in role.permissions() {
        for a in &p.data_actions {
            let known = actions.iter().any(|k| k.eq_ignore_ascii_case(a));
            if !a.contains('*') && !known && role.allows_data_action(a) {
                actions.push(a.clone());
            }
        }
    }
    actions
}

/// Evaluates with the action known and everything that depends on the request
/// (attributes, sub-operations) unknown. TRUE means the action is allowed no
/// matter what the request carries; FALSE means it is never allowed.
fn guard_truth(expr: &Expr, action: &str) -> Truth {
    match expr {
        Expr::And(items) => {
            let outcomes: Vec<Truth> = items.iter().map(|e| guard_truth(e, action)).collect();
            if outcomes.contains(&Truth::False) {
                Truth::False
            } else if outcomes.iter().all(|t| *t == Truth::True) {
                Truth::True
            } else {
                Truth::Unknown
            }
        }
        Expr::Or(items) => {
            let outcomes: Vec<Truth> = items.iter().map(|e| guard_truth(e, action)).collect();
            if outcomes.contains(&Truth::True) {
                Truth::True
            } else if outcomes.iter().all(|t| *t == Truth::False) {
                Truth::False
            } else {
                Truth::Unknown
            }
        }
        Expr::Not(inner) => guard_truth(inner, action).negate(),
        Expr::ActionMatches(p) => action_matches(p, action).into(),
        Expr::SubOperationMatches(_) | Expr::Exists(_) | Expr::Compare(_) => Truth::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::built_in_role_by_name;

    const READ_GUARD: &str = "(!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'backend/')";

    #[test]
    fn writer_with_read_only_guard_leaves_writes_open() {
        let writer = built_in_role_by_name("Container Registry Repository Writer").unwrap();
        let warnings = lint(&Condition::parse(READ_GUARD).unwrap(), &writer);
        assert_eq!(
            warnings,
            vec![Warning::UnrestrictedDataActions {
                actions: vec![
                    "Microsoft.ContainerRegistry/registries/repositories/content/write".into(),
                    "Microsoft.ContainerRegistry/registries/repositories/metadata/write".into(),
                ]
            }]
        );
        assert!(warnings[0].to_string().contains("in every repository"));
    }

    #[test]
    fn reader_with_the_same_guard_is_clean() {
        let reader = built_in_role_by_name("Container Registry Repository Reader").unwrap();
        assert!(lint(&Condition::parse(READ_GUARD).unwrap(), &reader).is_empty());
    }

    #[test]
    fn trailing_slash_and_like() {
        let reader = built_in_role_by_name("Container Registry Repository Reader").unwrap();
        let c = Condition::parse(
            "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'backend'",
        )
        .unwrap();
        assert_eq!(
            lint(&c, &reader),
            vec![Warning::PrefixWithoutTrailingSlash {
                operator: Function::StringStartsWithIgnoreCase,
                value: "backend".into()
            }]
        );
        let like =
            Condition::parse("@Resource[Microsoft.ContainerRegistry/registries/repositories:name] StringLike 'team*'")
                .unwrap();
        assert!(matches!(lint(&like, &reader)[0], Warning::PrefixWithoutTrailingSlash { .. }));
        let fine =
            Condition::parse("@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringLike 'team/*'")
                .unwrap();
        assert!(lint(&fine, &reader).is_empty());
    }

    #[test]
    fn extra_matches_named() {
        let repos = [
            "backend/nginx",
            "backend/redis",
            "backend-infra/k8s",
            "backend-backup/store",
            "backend",
            "backendsvc/containers",
            "Backend-Old/x",
            "frontend/js",
        ];
        assert_eq!(
            extra_prefix_matches("backend", true, &repos),
            vec!["backend-infra/k8s", "backend-backup/store", "backend", "backendsvc/containers", "Backend-Old/x"]
        );
        assert_eq!(extra_prefix_matches("backend", false, &repos).len(), 4);
        assert!(extra_prefix_matches("backend/", true, &repos).is_empty());
    }

    #[test]
    fn never_granted_and_unsupplied() {
        let reader = built_in_role_by_name("Container Registry Repository Reader").unwrap();
        let c = Condition::parse(
            "ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'} AND @Request[Microsoft.Storage/storageAccounts:name] StringEquals 'x'",
        )
        .unwrap();
        let w = lint(&c, &reader);
        assert!(w.contains(&Warning::UnsuppliedAttribute {
            attribute: "@Request[Microsoft.Storage/storageAccounts:name]".into()
        }));
        assert!(w.contains(&Warning::DataActionsNeverGranted {
            actions: vec!["Microsoft.ContainerRegistry/registries/repositories/metadata/read".into()]
        }));
    }
}
