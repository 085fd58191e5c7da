//! The condition language against Azure's documented forms: every operator,
//! every syntactic form, the portal's exact texts, and rejected inputs with
//! their line and column.

use chrono::{TimeZone, Utc};
use wharf_authz::condition::ast::{Expr, Function, Quantifier};
use wharf_authz::condition::context::REPOSITORY_NAME;
use wharf_authz::condition::{
    AttributeSource, AttributeValue, Condition, EnvironmentAttributes, ParseErrorKind, RequestContext, Truth,
};

const READ: &str = "Microsoft.ContainerRegistry/registries/repositories/content/read";
const META_READ: &str = "Microsoft.ContainerRegistry/registries/repositories/metadata/read";
const WRITE: &str = "Microsoft.ContainerRegistry/registries/repositories/content/write";

/// The portal's "one repository" condition, as displayed.
const PORTAL_ONE_REPO: &str = "(
 (
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})
  AND
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})
 )
 OR 
 (
  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'hello-world'
 )
)";

/// The same after `tr -d '\n'`, verbatim with its double spaces, as the
/// role assignment's `condition` field shows it.
const PORTAL_ONE_REPO_STORED: &str = "( (  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})  AND  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'}) ) OR  (  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'hello-world' ))";

const PORTAL_PREFIX: &str = "(
 (
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})
  AND
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})
 )
 OR 
 (
  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'backend/'
 )
)";

const PORTAL_TWO_PREFIXES: &str = "(
 (
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})
  AND
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})
 )
 OR 
 (
  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'backend/'
  OR
  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'frontend/js/'
 )
)";

fn repo_request(action: &str, repository: &str) -> RequestContext {
    RequestContext::new(action).with_repository(repository)
}

fn allows(condition: &str, ctx: &RequestContext) -> bool {
    Condition::parse(condition).unwrap_or_else(|e| panic!("{}", e.render())).allows(ctx)
}

#[test]
fn portal_one_repository() {
    for text in [PORTAL_ONE_REPO, PORTAL_ONE_REPO_STORED] {
        let c = Condition::parse(text).unwrap();
        assert!(c.allows(&repo_request(READ, "hello-world")));
        assert!(c.allows(&repo_request(META_READ, "Hello-World")), "IgnoreCase");
        assert!(!c.allows(&repo_request(READ, "hello-world2")));
        assert!(!c.allows(&repo_request(META_READ, "other")));
        // Actions the condition does not target pass the guard.
        assert!(c.allows(&repo_request(WRITE, "other")));
    }
    // Both spellings are the same AST.
    assert_eq!(
        Condition::parse(PORTAL_ONE_REPO).unwrap().expr(),
        Condition::parse(PORTAL_ONE_REPO_STORED).unwrap().expr()
    );
}

#[test]
fn portal_prefix_and_two_prefixes() {
    let prefix = Condition::parse(PORTAL_PREFIX).unwrap();
    assert!(prefix.allows(&repo_request(READ, "backend/nginx")));
    assert!(prefix.allows(&repo_request(READ, "BACKEND/redis")));
    assert!(!prefix.allows(&repo_request(READ, "backend-infra/k8s")));
    assert!(!prefix.allows(&repo_request(READ, "backend")));

    let two = Condition::parse(PORTAL_TWO_PREFIXES).unwrap();
    let stored = PORTAL_TWO_PREFIXES.replace('\n', "");
    let two_stored = Condition::parse(&stored).unwrap();
    assert_eq!(two.expr(), two_stored.expr());
    for (repo, expected) in [
        ("backend/nginx", true),
        ("frontend/js/react", true),
        ("frontend/js/vue", true),
        ("frontend/css/x", false),
        ("frontend/js", false),
        ("backendsvc/containers", false),
    ] {
        assert_eq!(two.allows(&repo_request(READ, repo)), expected, "{repo}");
        assert_eq!(two_stored.allows(&repo_request(META_READ, repo)), expected, "{repo}");
    }
}

#[test]
fn trailing_slash_pitfall_reproduced() {
    let c = PORTAL_PREFIX.replace("'backend/'", "'backend'");
    for repo in [
        "backend/nginx",
        "backend/redis",
        "backend-infra/k8s",
        "backend-backup/store",
        "backend",
        "backendsvc/containers",
    ] {
        assert!(allows(&c, &repo_request(READ, repo)), "{repo} should match the slash-less prefix");
    }
    assert!(!allows(&c, &repo_request(READ, "frontend/backend")));
}

#[test]
fn preview_multi_block_condition() {
    // The private preview's Repository Contributor example: @Resource for reads,
    // @Request for push, an exception with NOT, and three AND-ed blocks.
    let text = "(
 (
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})
  AND
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})
 )
 OR
 (
  @Resource[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWith 'application/frontend/'
 )
)
AND
(
 (
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/write'})
 )
 OR
 (
  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWith 'application/frontend/'
  AND NOT
  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'application/frontend/readonly'
 )
)";
    let c = Condition::parse(text).unwrap_or_else(|e| panic!("{}", e.render()));
    assert!(c.allows(&repo_request(READ, "application/frontend/web")));
    assert!(c.allows(&repo_request(READ, "application/frontend/readonly")));
    assert!(!c.allows(&repo_request(READ, "application/backend/api")));
    assert!(c.allows(&repo_request(WRITE, "application/frontend/web")));
    assert!(!c.allows(&repo_request(WRITE, "application/frontend/readonly")));
    assert!(!c.allows(&repo_request(WRITE, "Application/Frontend/web")), "StringStartsWith is case-sensitive");
}

/// Every operator Azure documents, each with a true and a false case.
#[test]
fn every_operator() {
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    let ctx = RequestContext::new(READ)
        .with_sub_operation("Blob.List")
        .with_repository("backend/api")
        .with_attribute(AttributeSource::Request, "Microsoft.X/things:count", 10)
        .with_attribute(
            AttributeSource::Request,
            "Microsoft.X/things:id",
            AttributeValue::Guid(uuid::Uuid::parse_str("0b2c5e4f-0000-4000-8000-000000000001").unwrap()),
        )
        .with_attribute(
            AttributeSource::Principal,
            "Microsoft.Directory/CustomSecurityAttributes/Id:Project",
            AttributeValue::List(vec!["red".into(), "blue".into()]),
        )
        .with_attribute(
            AttributeSource::Request,
            "Microsoft.Network/clientIp",
            AttributeValue::Ip("10.1.2.3".parse().unwrap()),
        )
        .with_environment(&EnvironmentAttributes {
            is_private_link: Some(true),
            private_endpoint: Some(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe1".into(),
            ),
            subnet: Some(
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v/subnets/default"
                    .into(),
            ),
            utc_now: Some(t),
        });
    let repo = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";
    let count = "@Request[Microsoft.X/things:count]";
    let guid = "@Request[Microsoft.X/things:id]";
    let now = "@Environment[UtcNow]";
    let ip = "@Request[Microsoft.Network/clientIp]";
    let proj = "@Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Project]";
    let cases: Vec<(String, bool)> = vec![
        (format!("{repo} StringEquals 'backend/api'"), true),
        (format!("{repo} StringEquals 'Backend/api'"), false),
        (format!("{repo} StringEqualsIgnoreCase 'BACKEND/API'"), true),
        (format!("{repo} StringNotEquals 'x'"), true),
        (format!("{repo} StringNotEquals 'backend/api'"), false),
        (format!("{repo} StringNotEqualsIgnoreCase 'BACKEND/API'"), false),
        (format!("{repo} StringStartsWith 'backend/'"), true),
        (format!("{repo} StringStartsWith 'Backend/'"), false),
        (format!("{repo} StringStartsWithIgnoreCase 'BACKEND/'"), true),
        (format!("{repo} StringNotStartsWith 'front'"), true),
        (format!("{repo} StringNotStartsWithIgnoreCase 'BACK'"), false),
        (format!("{repo} StringLike 'back*/a?i'"), true),
        (format!("{repo} StringLike 'back*'"), true),
        (format!("{repo} StringLike 'back'"), false),
        (format!("{repo} StringLikeIgnoreCase 'BACK*'"), true),
        (format!("{repo} StringNotLike '*/api'"), false),
        (format!("{repo} StringNotLikeIgnoreCase '*/WEB'"), true),
        (format!("{count} NumericEquals 10"), true),
        (format!("{count} NumericNotEquals 10"), false),
        (format!("{count} NumericGreaterThan 9"), true),
        (format!("{count} NumericGreaterThanEquals 11"), false),
        (format!("{count} NumericLessThan 11"), true),
        (format!("{count} NumericLessThanEquals -1"), false),
        (format!("{now} DateTimeEquals '2024-03-01T12:00:00.0Z'"), true),
        (format!("{now} DateTimeNotEquals '2024-03-01T12:00:00Z'"), false),
        (format!("{now} DateTimeGreaterThan '2022-06-01T00:00:00.0Z'"), true),
        (format!("{now} DateTimeGreaterThanEquals '2024-03-01T12:00:00.0000001Z'"), false),
        (format!("{now} DateTimeLessThan '2025-01-01T00:00:00.0Z'"), true),
        (format!("{now} DateTimeLessThanEquals '2024-03-01T11:59:59.9Z'"), false),
        (format!("{guid} GuidEquals '0B2C5E4F-0000-4000-8000-000000000001'"), true),
        (format!("{guid} GuidNotEquals '0b2c5e4f-0000-4000-8000-000000000001'"), false),
        ("@Environment[isPrivateLink] BoolEquals true".into(), true),
        ("@Environment[isPrivateLink] BoolNotEquals true".into(), false),
        ("@Environment[Microsoft.Network/privateEndpoints] StringLikeIgnoreCase '*/privateendpoints/pe1'".into(), true),
        (
            "@Environment[Microsoft.Network/virtualNetworks/subnets] StringEndsWith 'x'"
                .replace("StringEndsWith 'x'", "StringLike '*/subnets/default'"),
            true,
        ),
        (format!("{ip} IpMatch '10.1.0.0/16'"), true),
        (format!("{ip} IpMatch '10.1.2.4'"), false),
        (format!("{ip} IpNotMatch '192.168.0.0/16'"), true),
        (format!("{ip} IpInRange '10.1.2.0-10.1.2.255'"), true),
        (format!("{ip} IpNotInRange '10.0.0.0/8'"), false),
        (format!("{proj} ForAnyOfAnyValues:StringEquals {{'blue', 'green'}}"), true),
        (format!("{proj} ForAllOfAnyValues:StringEquals {{'red', 'green'}}"), false),
        (format!("{proj} ForAllOfAnyValues:StringEqualsIgnoreCase {{'RED', 'BLUE'}}"), true),
        (format!("{proj} ForAnyOfAllValues:StringNotEquals {{'red', 'green'}}"), true),
        (format!("{proj} ForAllOfAllValues:StringNotEquals {{'red', 'green'}}"), false),
        (format!("{proj} ForAnyOfAnyValues:StringLike 'bl*'"), true),
        (format!("{count} ForAnyOfAnyValues:NumericEquals {{5, 10}}"), true),
        (format!("{guid} ForAnyOfAnyValues:GuidEquals {{'0b2c5e4f-0000-4000-8000-000000000001'}}"), true),
        (format!("{guid} ForAllOfAllValues:GuidNotEquals {{'0b2c5e4f-0000-4000-8000-000000000002'}}"), true),
        ("ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/*'}".into(), true),
        ("ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/write'}".into(), false),
        ("SubOperationMatches{'Blob.List'}".into(), true),
        ("SubOperationMatches{'Blob.*'}".into(), true),
        ("SubOperationMatches{'Tag.List'}".into(), false),
        (format!("Exists {count}"), true),
        ("Exists @Request[Microsoft.X/things:missing]".into(), false),
        ("NOT Exists @Request[Microsoft.X/things:missing]".into(), true),
        (format!("{count} NumericEquals 10 && {repo} StringEquals 'backend/api'"), true),
        (format!("{count} NumericEquals 11 || {repo} StringEquals 'backend/api'"), true),
        (format!("!({count} NumericEquals 10)"), false),
        (format!("NOT {count} NumericEquals 11"), true),
        (format!("{count} NumericEquals 10 AND NOT SubOperationMatches{{'Blob.List'}}"), false),
        ("ActionMatches{'*/read'} AND (SubOperationMatches{'x'} OR NOT SubOperationMatches{'y'})".into(), true),
    ];
    for (text, expected) in cases {
        let condition = Condition::parse(&text).unwrap_or_else(|e| panic!("{text}\n{}", e.render()));
        assert_eq!(condition.allows(&ctx), expected, "{text}\n{}", condition.trace(&ctx).render());
        // Canonical text parses back to the same AST and the same answer.
        let again = Condition::parse(&condition.canonical()).unwrap();
        assert_eq!(again.expr(), condition.expr(), "{text}");
        let pretty = Condition::parse(&condition.pretty()).unwrap();
        assert_eq!(pretty.expr(), condition.expr(), "{}", condition.pretty());
    }
}

#[test]
fn cross_product_examples_from_the_docs() {
    // Literal-on-the-left examples need an attribute somewhere; use one that
    // holds the same values.
    let ctx = RequestContext::new(READ)
        .with_attribute(
            AttributeSource::Request,
            "Microsoft.X/x:colors",
            AttributeValue::List(vec!["red".into(), "blue".into()]),
        )
        .with_attribute(
            AttributeSource::Request,
            "Microsoft.X/x:numbers",
            AttributeValue::List(vec![10.into(), 20.into()]),
        );
    let colors = "@Request[Microsoft.X/x:colors]";
    let numbers = "@Request[Microsoft.X/x:numbers]";
    assert!(allows(&format!("{colors} ForAnyOfAnyValues:StringEquals {{'blue', 'green'}}"), &ctx));
    assert!(!allows(&format!("{colors} ForAllOfAnyValues:StringEquals {{'red', 'green'}}"), &ctx));
    assert!(allows(&format!("{numbers} ForAnyOfAllValues:NumericLessThan {{15, 18}}"), &ctx));
    assert!(allows(&format!("{numbers} ForAllOfAllValues:NumericLessThan {{25, 30}}"), &ctx));
    assert!(!allows(&format!("{numbers} ForAllOfAllValues:NumericLessThan {{15, 30}}"), &ctx));
    // Literal on the left, attribute on the right.
    assert!(allows(&format!("{{'red', 'blue'}} ForAnyOfAnyValues:StringEquals {colors}"), &ctx));
    // Like examples: 'a*c?' matches "abcd", 'A*C?' does not, 'a*c' does not (whole string).
    let s = RequestContext::new(READ).with_attribute(AttributeSource::Request, "Microsoft.X/x:s", "abcd");
    assert!(allows("@Request[Microsoft.X/x:s] StringLike 'a*c?'", &s));
    assert!(!allows("@Request[Microsoft.X/x:s] StringLike 'A*C?'", &s));
    assert!(!allows("@Request[Microsoft.X/x:s] StringLike 'a*c'", &s));
    // Escapes: \* and \? are literal.
    let star = RequestContext::new(READ).with_attribute(AttributeSource::Request, "Microsoft.X/x:s", "a*b?");
    assert!(allows(r"@Request[Microsoft.X/x:s] StringLike 'a\*b\?'", &star));
    assert!(!allows(r"@Request[Microsoft.X/x:s] StringLike 'a\*b\?'", &s));
    let plain = RequestContext::new(READ).with_attribute(AttributeSource::Request, "Microsoft.X/x:s", "aXYb!");
    assert!(!allows(r"@Request[Microsoft.X/x:s] StringLike 'a\*b\?'", &plain));
}

#[test]
fn tags_with_case_sensitive_keys() {
    let tag = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/tags:Project";
    let ctx = RequestContext::new(READ).with_attribute(AttributeSource::Resource, tag, "Cascade");
    assert!(allows(&format!("@Resource[{tag}<$key_case_sensitive$>] StringEquals 'Cascade'"), &ctx));
    // A different key case does not find the tag when the key is case-sensitive …
    let lower = tag.replace("Project", "project");
    assert!(!allows(&format!("@Resource[{lower}<$key_case_sensitive$>] StringEquals 'Cascade'"), &ctx));
    // … but does without the marker.
    assert!(allows(&format!("@Resource[{lower}] StringEquals 'Cascade'"), &ctx));
    let c = Condition::parse(&format!("@Resource[{tag}<$key_case_sensitive$>] StringEquals 'Cascade'")).unwrap();
    assert!(c.canonical().contains("<$key_case_sensitive$>"));
}

#[test]
fn attribute_compared_with_attribute() {
    let ctx = RequestContext::new(READ)
        .with_attribute(AttributeSource::Resource, "Microsoft.X/x/tags:Project", "Cascade")
        .with_attribute(
            AttributeSource::Principal,
            "Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project",
            "Cascade",
        );
    assert!(allows(
        "@Resource[Microsoft.X/x/tags:Project] StringEquals @Principal[Microsoft.Directory/CustomSecurityAttributes/Id:Engineering_Project]",
        &ctx
    ));
}

#[test]
fn missing_attributes_fail_closed() {
    let ctx = RequestContext::new(READ);
    let repo = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";
    for op in [
        "StringEquals",
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotStartsWith",
        "StringNotLike",
        "StringNotLikeIgnoreCase",
    ] {
        let c = Condition::parse(&format!("{repo} {op} 'x'")).unwrap();
        assert_eq!(c.truth(&ctx), Truth::Unknown, "{op}");
        assert!(!c.allows(&ctx), "{op}");
        let negated = Condition::parse(&format!("NOT {repo} {op} 'x'")).unwrap();
        assert!(!negated.allows(&ctx), "NOT {op} must not turn a missing attribute into true");
    }
    assert!(allows(&format!("NOT Exists {repo}"), &ctx));
    assert!(allows(&format!("{repo} StringEquals 'x' OR NOT Exists {repo}"), &ctx));
    assert!(!allows(&format!("{repo} StringEquals 'x' AND NOT Exists {repo}"), &ctx));
    let c = Condition::parse(&format!("{repo} StringNotEquals 'x'")).unwrap();
    let trace = c.trace(&ctx).render();
    assert!(trace.contains("is not present"), "{trace}");
}

#[test]
fn type_errors_are_false_and_traced() {
    let ctx = RequestContext::new(READ).with_attribute(AttributeSource::Request, REPOSITORY_NAME, 5);
    let c = Condition::parse("@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringNotEquals 'x'")
        .unwrap();
    assert!(!c.allows(&ctx));
    let trace = c.trace(&ctx);
    assert_eq!(trace.outcome, Truth::Unknown);
    assert_eq!(trace.type_errors().len(), 1);
    assert!(trace.render().contains("type error"));
    // A multi-valued attribute under a plain operator is not decidable either.
    let multi = RequestContext::new(READ).with_attribute(
        AttributeSource::Request,
        REPOSITORY_NAME,
        AttributeValue::List(vec!["a".into(), "b".into()]),
    );
    assert!(!c.allows(&multi));
    // Empty multi-valued attribute: unknown for every quantifier.
    let empty = RequestContext::new(READ).with_attribute(
        AttributeSource::Request,
        "Microsoft.X/x:l",
        AttributeValue::List(vec![]),
    );
    for q in Quantifier::ALL {
        let c =
            Condition::parse(&format!("@Request[Microsoft.X/x:l] {}:StringNotEquals {{'a'}}", q.keyword())).unwrap();
        assert!(!c.allows(&empty), "{q:?}");
    }
}

#[test]
fn trace_explains_each_step() {
    let c = Condition::parse(PORTAL_ONE_REPO).unwrap();
    let trace = c.trace(&repo_request(READ, "other"));
    assert_eq!(trace.outcome, Truth::False);
    let text = trace.render();
    assert!(text.starts_with("OR → false"), "{text}");
    assert!(text.contains("action is 'Microsoft.ContainerRegistry/registries/repositories/content/read'"), "{text}");
    assert!(text.contains("StringEqualsIgnoreCase 'hello-world' → false (@Request[Microsoft.ContainerRegistry/registries/repositories:name] is 'other')"), "{text}");
}

/// Invalid conditions: the error kind and where it points (line, column).
#[test]
fn rejected_conditions_point_at_the_problem() {
    let repo = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";
    let a = format!("{repo} StringEquals 'a'");
    /// (condition, expected error kind, line, column)
    type Case = (String, fn(&ParseErrorKind) -> bool, usize, usize);
    let cases: Vec<Case> = vec![
        (String::new(), |k| matches!(k, ParseErrorKind::Empty), 1, 1),
        ("   \n  ".into(), |k| matches!(k, ParseErrorKind::Empty), 1, 1),
        (
            format!("{a} AND {a} OR {a}"),
            |k| matches!(k, ParseErrorKind::MixedAndOr { first: "AND", second: "OR" }),
            1,
            2 * a.len() + 7,
        ),
        (
            format!("{a}\nOR\n{a}\n&&\n{a}"),
            |k| matches!(k, ParseErrorKind::MixedAndOr { first: "OR", second: "AND" }),
            4,
            1,
        ),
        (format!("{a} and {a}"), |k| matches!(k, ParseErrorKind::KeywordCase { .. }), 1, a.len() + 2),
        (format!("not {a}"), |k| matches!(k, ParseErrorKind::KeywordCase { .. }), 1, 1),
        (format!("{repo} stringequals 'a'"), |k| matches!(k, ParseErrorKind::KeywordCase { .. }), 1, repo.len() + 2),
        (format!("{repo} StringEqual 'a'"), |k| matches!(k, ParseErrorKind::UnknownOperator { .. }), 1, repo.len() + 2),
        (
            format!("{repo} NumericEquals 'x'"),
            |k| matches!(k, ParseErrorKind::LiteralTypeMismatch { .. }),
            1,
            repo.len() + 16,
        ),
        (
            format!("{repo} StringEquals 5"),
            |k| matches!(k, ParseErrorKind::LiteralTypeMismatch { .. }),
            1,
            repo.len() + 15,
        ),
        (
            format!("{repo} BoolEquals 'true'"),
            |k| matches!(k, ParseErrorKind::LiteralTypeMismatch { .. }),
            1,
            repo.len() + 13,
        ),
        (
            format!("{repo} NumericEquals 1.5"),
            |k| matches!(k, ParseErrorKind::InvalidNumber { .. }),
            1,
            repo.len() + 16,
        ),
        (
            format!("{repo} DateTimeEquals '2022-13-01T00:00:00.0Z'"),
            |k| matches!(k, ParseErrorKind::InvalidLiteral { .. }),
            1,
            repo.len() + 17,
        ),
        (
            format!("{repo} DateTimeEquals '2022-06-01'"),
            |k| matches!(k, ParseErrorKind::InvalidLiteral { .. }),
            1,
            repo.len() + 17,
        ),
        (
            format!("{repo} GuidEquals 'not-a-guid'"),
            |k| matches!(k, ParseErrorKind::InvalidLiteral { .. }),
            1,
            repo.len() + 13,
        ),
        (
            format!("{repo} IpMatch '10.0.0.0/33'"),
            |k| matches!(k, ParseErrorKind::InvalidLiteral { .. }),
            1,
            repo.len() + 10,
        ),
        (
            format!("{repo} IpInRange '10.0.0.9-10.0.0.1'"),
            |k| matches!(k, ParseErrorKind::InvalidLiteral { .. }),
            1,
            repo.len() + 12,
        ),
        (
            format!("{repo} ForAnyOfAnyValues:StringStartsWith {{'a'}}"),
            |k| matches!(k, ParseErrorKind::NotCrossProductOperator { .. }),
            1,
            repo.len() + 20,
        ),
        (
            format!("{repo} ForAnyOfAnyValues:DateTimeEquals {{'2022-06-01T00:00:00Z'}}"),
            |k| matches!(k, ParseErrorKind::NotCrossProductOperator { .. }),
            1,
            repo.len() + 20,
        ),
        (
            format!("{repo} StringEquals {{'a', 'b'}}"),
            |k| matches!(k, ParseErrorKind::MultiValueNeedsCrossProduct),
            1,
            repo.len() + 15,
        ),
        (
            format!("{repo} ForAnyOfAnyValues:StringEquals {{}}"),
            |k| matches!(k, ParseErrorKind::Expected { .. }),
            1,
            repo.len() + 34,
        ),
        (
            format!("{repo} ForAnyOfAnyValues StringEquals 'a'"),
            |k| matches!(k, ParseErrorKind::Expected { .. }),
            1,
            repo.len() + 20,
        ),
        ("'a' StringEquals 'b'".into(), |k| matches!(k, ParseErrorKind::NoAttributeOperand), 1, 1),
        (
            format!("({a}"),
            |k| matches!(k, ParseErrorKind::Expected { expected, .. } if expected == "')'"),
            1,
            a.len() + 2,
        ),
        (format!("{a})"), |k| matches!(k, ParseErrorKind::Expected { .. }), 1, a.len() + 1),
        (format!("{a} AND"), |k| matches!(k, ParseErrorKind::Expected { .. }), 1, a.len() + 5),
        (format!("(\n {a}\n AND\n)"), |k| matches!(k, ParseErrorKind::Expected { .. }), 4, 1),
        (
            format!("{repo} StringEquals 'unterminated"),
            |k| matches!(k, ParseErrorKind::UnterminatedString),
            1,
            repo.len() + 15,
        ),
        ("ActionMatches{Microsoft}".into(), |k| matches!(k, ParseErrorKind::Expected { .. }), 1, 15),
        (
            "ActionMatches{Microsoft.ContainerRegistry/x}".into(),
            |k| matches!(k, ParseErrorKind::UnexpectedCharacter { found: '/' }),
            1,
            42,
        ),
        ("ActionMatches 'x'".into(), |k| matches!(k, ParseErrorKind::Expected { .. }), 1, 15),
        ("Exists 'x'".into(), |k| matches!(k, ParseErrorKind::Expected { .. }), 1, 8),
        ("@Foo[x] StringEquals 'a'".into(), |k| matches!(k, ParseErrorKind::UnknownAttributeSource { .. }), 1, 1),
        ("@Request[a b] StringEquals 'a'".into(), |k| matches!(k, ParseErrorKind::MalformedAttribute { .. }), 1, 11),
        (format!("{a} # comment"), |k| matches!(k, ParseErrorKind::UnexpectedCharacter { found: '#' }), 1, a.len() + 2),
        (format!("{a} & {a}"), |k| matches!(k, ParseErrorKind::UnexpectedCharacter { found: '&' }), 1, a.len() + 2),
        (format!("{}{a}", "(".repeat(70)), |k| matches!(k, ParseErrorKind::NestingTooDeep { .. }), 1, 65),
    ];
    for (text, check, line, column) in cases {
        let err = Condition::parse(&text).expect_err(&text);
        assert!(check(&err.kind), "{text}: got {:?}", err.kind);
        assert_eq!((err.line(), err.column()), (line, column), "{text}\n{}", err.render());
    }
}

#[test]
fn and_chains_are_fine_without_parentheses() {
    let a = "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'a'";
    let c = Condition::parse(&format!("{a} AND {a} && {a} AND {a}")).unwrap();
    assert!(matches!(c.expr(), Expr::And(items) if items.len() == 4));
    let c = Condition::parse(&format!("({a} AND {a}) OR {a}")).unwrap();
    assert!(matches!(c.expr(), Expr::Or(items) if matches!(items[0], Expr::And(_))));
    let c = Condition::parse(&format!("{a} AND ({a} OR {a})")).unwrap();
    assert!(matches!(c.expr(), Expr::And(items) if matches!(items[1], Expr::Or(_))));
}

#[test]
fn size_limit_is_8_kib() {
    let a = "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'a'";
    let mut text = a.to_string();
    while text.len() + a.len() + 5 <= 8192 {
        text.push_str(" AND ");
        text.push_str(a);
    }
    let pad = 8192 - text.len();
    text.push_str(&" ".repeat(pad));
    assert_eq!(text.len(), 8192);
    assert!(Condition::parse(&text).is_ok());
    text.push(' ');
    let err = Condition::parse(&text).unwrap_err();
    assert!(matches!(err.kind, ParseErrorKind::TooLong { length: 8193, limit: 8192 }));
}

#[test]
fn errors_render_like_a_compiler() {
    let text = "(\n @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'a'\n AND\n @Request[Microsoft.ContainerRegistry/registries/repositories:name] NumericEquals 'b'\n)";
    let err = Condition::parse(text).unwrap_err();
    assert_eq!((err.line(), err.column()), (4, 83));
    let rendered = err.render();
    let expected_caret_line = format!("  | {}^^^ here", " ".repeat(82));
    assert!(rendered.starts_with("error: 'NumericEquals' expects an integer, found the string 'b'\n"), "{rendered}");
    assert!(rendered.contains(" --> condition:4:83\n"), "{rendered}");
    assert!(rendered.contains(&expected_caret_line), "{rendered}");
    // It is a miette diagnostic with a labelled span.
    let diagnostic: &dyn miette::Diagnostic = &err;
    let labels: Vec<_> = diagnostic.labels().unwrap().collect();
    assert_eq!(labels[0].offset(), text.find("'b'").unwrap());
    assert_eq!(labels[0].len(), 3);
}

#[test]
fn functions_catalogue_matches_the_docs() {
    assert_eq!(Function::ALL.len(), 32);
    let cross: Vec<&str> = Function::ALL.iter().filter(|f| f.allows_cross_product()).map(|f| f.keyword()).collect();
    assert_eq!(
        cross,
        [
            "StringEquals",
            "StringEqualsIgnoreCase",
            "StringNotEquals",
            "StringNotEqualsIgnoreCase",
            "StringLike",
            "StringLikeIgnoreCase",
            "StringNotLike",
            "StringNotLikeIgnoreCase",
            "NumericEquals",
            "NumericNotEquals",
            "NumericGreaterThan",
            "NumericGreaterThanEquals",
            "NumericLessThan",
            "NumericLessThanEquals",
            "GuidEquals",
            "GuidNotEquals"
        ]
    );
}
