//! Decision-engine tests: every registry-mode rule, scope inheritance, group
//! membership, notActions, conditions and the mode-change impact report.

use wharf_authz::assignment::{AssignmentPrincipalType, PrincipalId, RoleAssignment};
use wharf_authz::condition::{AttributeSource, Condition, EnvironmentAttributes, RequestContext};
use wharf_authz::data_plane::{DataAction, DataPlaneTarget, DockerAction, RoleAssignmentMode};
use wharf_authz::engine::{AccessChange, AssignmentIndex, AssignmentOutcome, DataPlaneRequest, DenyReason, Outcome};
use wharf_authz::roles::{RoleDefinition, built_in_role_by_name, parse_custom_role};
use wharf_authz::scope::Scope;

use DockerAction::{Delete, MetadataRead, MetadataWrite, Pull, Push};
use RoleAssignmentMode::{AbacRepositoryPermissions as Abac, LegacyRegistryPermissions as Legacy};

const SUB: &str = "00000000-0000-0000-0000-0000000000aa";
const USER: &str = "u0000000-0000-0000-0000-000000000001";
const GROUP: &str = "g0000000-0000-0000-0000-000000000001";
const OTHER: &str = "o0000000-0000-0000-0000-000000000001";
const ALL: [DockerAction; 1] = [DockerAction::All];

const BACKEND_WRITER: &str = "(
 (
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})
  AND
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})
  AND
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/write'})
  AND
  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/write'})
 )
 OR
 (
  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'backend/'
 )
)";

fn registry() -> Scope {
    Scope::registry(SUB, "rg", "reg").unwrap()
}

fn other_registry() -> Scope {
    Scope::registry(SUB, "rg", "reg2").unwrap()
}

fn pid(s: &str) -> PrincipalId {
    PrincipalId::new(s).unwrap()
}

struct Fixture {
    assignments: Vec<RoleAssignment>,
    custom: Vec<RoleDefinition>,
    next: u32,
}

impl Fixture {
    fn new() -> Fixture {
        Fixture { assignments: Vec::new(), custom: Vec::new(), next: 0 }
    }

    fn assign(&mut self, principal: &str, role: &str, scope: Scope, condition: Option<&str>) -> String {
        self.next += 1;
        let id = format!("aaaaaaaa-0000-0000-0000-{:012}", self.next);
        let role_id = built_in_role_by_name(role)
            .map(|r| r.id)
            .or_else(|| self.custom.iter().find(|r| r.role_name() == role).map(|r| r.id.clone()))
            .unwrap_or_else(|| role.to_string());
        let mut a = RoleAssignment::new(&id, scope, &role_id, pid(principal), AssignmentPrincipalType::User).unwrap();
        if let Some(c) = condition {
            a = a.with_condition(Condition::parse(c).unwrap());
        }
        self.assignments.push(a);
        id
    }

    fn custom(&mut self, json: &str, guid: &str) {
        self.custom.push(parse_custom_role(json).unwrap().into_definition(guid).unwrap());
    }

    fn index(&self) -> AssignmentIndex {
        AssignmentIndex::with_built_in_roles(self.custom.clone(), self.assignments.clone())
    }
}

fn granted(index: &AssignmentIndex, principals: &[&str], mode: RoleAssignmentMode, repo: &str) -> Vec<DockerAction> {
    grant_on(index, principals, &registry(), mode, DataPlaneTarget::Repository(repo.into()))
}

fn catalog(index: &AssignmentIndex, principals: &[&str], mode: RoleAssignmentMode) -> bool {
    !grant_on(index, principals, &registry(), mode, DataPlaneTarget::Catalog).is_empty()
}

fn grant_on(
    index: &AssignmentIndex,
    principals: &[&str],
    scope: &Scope,
    mode: RoleAssignmentMode,
    target: DataPlaneTarget,
) -> Vec<DockerAction> {
    let principals: Vec<PrincipalId> = principals.iter().map(|p| pid(p)).collect();
    let environment = EnvironmentAttributes::default();
    let request = DataPlaneRequest {
        principals: &principals,
        registry: scope,
        mode,
        target,
        actions: &ALL,
        environment: &environment,
    };
    index.authorize_data_plane(&request).granted
}

#[test]
fn legacy_roles_in_legacy_mode() {
    let cases: &[(&str, &[DockerAction], bool)] = &[
        ("AcrPull", &[Pull, MetadataRead], true),
        ("AcrPush", &[Pull, Push, MetadataRead, MetadataWrite], true),
        ("AcrDelete", &[Delete], false),
        ("Owner", &[Pull, Push, Delete, MetadataRead, MetadataWrite], true),
        ("Contributor", &[Pull, Push, Delete, MetadataRead, MetadataWrite], true),
        ("Reader", &[Pull, MetadataRead], true),
        ("Container Registry Data Importer and Data Reader", &[Pull, MetadataRead], true),
        ("AcrImageSigner", &[], false),
        ("Container Registry Contributor and Data Access Configuration Administrator", &[], false),
        ("Container Registry Tasks Contributor", &[], false),
    ];
    for (role, expected, lists) in cases {
        let mut f = Fixture::new();
        f.assign(USER, role, registry(), None);
        let index = f.index();
        assert_eq!(granted(&index, &[USER], Legacy, "any/repo"), expected.to_vec(), "{role}");
        assert_eq!(catalog(&index, &[USER], Legacy), *lists, "{role} catalog");
    }
}

#[test]
fn legacy_roles_are_not_honoured_in_abac_mode() {
    for role in ["AcrPull", "AcrPush", "AcrDelete", "Owner", "Contributor", "Reader", "AcrImageSigner"] {
        let mut f = Fixture::new();
        let id = f.assign(USER, role, registry(), None);
        let index = f.index();
        assert!(granted(&index, &[USER], Abac, "any/repo").is_empty(), "{role}");
        assert!(!catalog(&index, &[USER], Abac), "{role}");
        let d = index.authorize_data_action(
            &[pid(USER)],
            &registry(),
            Abac,
            DataAction::ContentRead,
            &DataPlaneTarget::Repository("any/repo".into()),
            &EnvironmentAttributes::default(),
        );
        assert_eq!(
            d.outcome,
            Outcome::Denied(DenyReason::RoleNotHonouredInMode {
                assignment_id: id.clone(),
                role_name: role.into(),
                mode: Abac
            }),
            "{role}"
        );
        assert!(d.explain().contains("not honoured for data access in AbacRepositoryPermissions mode"));
    }
}

#[test]
fn owner_keeps_the_control_plane_in_abac_mode() {
    let mut f = Fixture::new();
    f.assign(USER, "Owner", Scope::subscription(SUB).unwrap(), None);
    let index = f.index();
    let d = index.authorize_action(&[pid(USER)], &registry(), "Microsoft.ContainerRegistry/registries/write");
    assert!(d.is_allowed());
    assert!(granted(&index, &[USER], Abac, "x").is_empty());
}

#[test]
fn repository_roles_in_abac_mode() {
    let cases: &[(&str, &[DockerAction])] = &[
        ("Container Registry Repository Reader", &[Pull, MetadataRead]),
        ("Container Registry Repository Writer", &[Pull, Push, MetadataRead, MetadataWrite]),
        ("Container Registry Repository Contributor", &[Pull, Push, Delete, MetadataRead, MetadataWrite]),
        ("Container Registry Repository Catalog Lister", &[]),
        ("Container Registry Data Importer and Data Reader", &[Pull, MetadataRead]),
    ];
    for (role, expected) in cases {
        let mut f = Fixture::new();
        f.assign(USER, role, registry(), None);
        let index = f.index();
        // Without a condition: every repository.
        for repo in ["a", "backend/api", "deep/ly/nested/x"] {
            assert_eq!(granted(&index, &[USER], Abac, repo), expected.to_vec(), "{role} {repo}");
        }
        let lists = role.contains("Catalog Lister") || role.contains("Data Importer");
        assert_eq!(catalog(&index, &[USER], Abac), lists, "{role}");
    }
}

#[test]
fn repository_roles_have_no_effect_in_legacy_mode() {
    for role in [
        "Container Registry Repository Reader",
        "Container Registry Repository Writer",
        "Container Registry Repository Contributor",
        "Container Registry Repository Catalog Lister",
    ] {
        let mut f = Fixture::new();
        f.assign(USER, role, registry(), None);
        let index = f.index();
        assert!(granted(&index, &[USER], Legacy, "a").is_empty(), "{role}");
        assert!(!catalog(&index, &[USER], Legacy), "{role}");
    }
}

#[test]
fn data_importer_and_quarantine_count_in_both_modes() {
    let mut f = Fixture::new();
    f.assign(USER, "Container Registry Data Importer and Data Reader", registry(), None);
    f.assign(USER, "AcrQuarantineWriter", registry(), None);
    let index = f.index();
    for mode in [Legacy, Abac] {
        assert_eq!(granted(&index, &[USER], mode, "a"), vec![Pull, MetadataRead], "{mode}");
        assert!(catalog(&index, &[USER], mode), "{mode}");
        for action in [DataAction::QuarantinedArtifactsRead, DataAction::QuarantinedArtifactsWrite] {
            let d = index.authorize_data_action(
                &[pid(USER)],
                &registry(),
                mode,
                action,
                &DataPlaneTarget::Repository("a".into()),
                &EnvironmentAttributes::default(),
            );
            assert!(d.is_allowed(), "{mode} {action}");
        }
    }
}

#[test]
fn conditional_writer_limits_push_to_a_prefix() {
    let mut f = Fixture::new();
    let id = f.assign(USER, "Container Registry Repository Writer", registry(), Some(BACKEND_WRITER));
    let index = f.index();
    assert_eq!(granted(&index, &[USER], Abac, "backend/api"), vec![Pull, Push, MetadataRead, MetadataWrite]);
    assert_eq!(granted(&index, &[USER], Abac, "BACKEND/web"), vec![Pull, Push, MetadataRead, MetadataWrite]);
    assert!(granted(&index, &[USER], Abac, "frontend/web").is_empty());
    assert!(granted(&index, &[USER], Abac, "backend-infra/k8s").is_empty());

    let principals = [pid(USER)];
    let environment = EnvironmentAttributes::default();
    let registry_scope = registry();
    let request = DataPlaneRequest {
        principals: &principals,
        registry: &registry_scope,
        mode: Abac,
        target: DataPlaneTarget::Repository("frontend/web".into()),
        actions: &[Pull, Push],
        environment: &environment,
    };
    let decision = index.authorize_data_plane(&request);
    assert!(decision.granted.is_empty());
    let pull = &decision.decisions[0].requirements[0];
    match &pull.outcome {
        Outcome::Denied(DenyReason::ConditionNotMet { assignment_id, role_name, trace }) => {
            assert_eq!(assignment_id, &id);
            assert_eq!(role_name, "Container Registry Repository Writer");
            assert!(trace.render().contains("is 'frontend/web'"), "{}", trace.render());
        }
        other => panic!("{other:?}"),
    }
    let text = decision.explain();
    assert!(text.contains("pull: denied") && text.contains("push: denied"), "{text}");

    // Granted decisions carry the trace of the deciding condition.
    let allowed = index.authorize_data_action(
        &principals,
        &registry_scope,
        Abac,
        DataAction::ContentWrite,
        &DataPlaneTarget::Repository("backend/x".into()),
        &environment,
    );
    match &allowed.outcome {
        Outcome::Allowed { assignment_id, condition_trace: Some(trace), .. } => {
            assert_eq!(assignment_id, &id);
            assert!(trace.outcome.is_true());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(allowed.decisive_assignment(), Some(id.as_str()));
}

#[test]
fn group_membership_counts() {
    let mut f = Fixture::new();
    f.assign(GROUP, "Container Registry Repository Reader", registry(), None);
    let index = f.index();
    assert!(granted(&index, &[USER], Abac, "a").is_empty());
    assert_eq!(granted(&index, &[USER, GROUP], Abac, "a"), vec![Pull, MetadataRead]);
    // Case of the ids does not matter.
    assert_eq!(granted(&index, &[&USER.to_uppercase(), &GROUP.to_uppercase()], Abac, "a"), vec![Pull, MetadataRead]);
}

#[test]
fn scope_inheritance() {
    let mut f = Fixture::new();
    f.assign(USER, "AcrPull", Scope::subscription(SUB).unwrap(), None);
    f.assign(GROUP, "AcrPush", Scope::resource_group(SUB, "RG").unwrap(), None);
    f.assign(OTHER, "AcrPull", other_registry(), None);
    f.assign(OTHER, "AcrDelete", Scope::registry(SUB, "rg", "reg").unwrap(), None);
    let index = f.index();
    assert_eq!(granted(&index, &[USER], Legacy, "a"), vec![Pull, MetadataRead]);
    assert_eq!(
        granted(&index, &[GROUP], Legacy, "a"),
        vec![Pull, Push, MetadataRead, MetadataWrite],
        "RG scope, case-insensitive"
    );
    assert_eq!(granted(&index, &[OTHER], Legacy, "a"), vec![Delete], "reg2's assignment does not reach reg");
    let elsewhere = Scope::registry("00000000-0000-0000-0000-0000000000bb", "rg", "reg").unwrap();
    let principals = [USER];
    assert!(grant_on(&index, &principals, &elsewhere, Legacy, DataPlaneTarget::Repository("a".into())).is_empty());
}

#[test]
fn not_actions_and_not_data_actions() {
    let mut f = Fixture::new();
    f.custom(
        &format!(
            r#"{{"Name":"No push","Actions":["Microsoft.ContainerRegistry/*"],"NotActions":["Microsoft.ContainerRegistry/registries/push/write"],
               "DataActions":["Microsoft.ContainerRegistry/registries/repositories/*"],
               "NotDataActions":["Microsoft.ContainerRegistry/registries/repositories/*/delete"],
               "AssignableScopes":["/subscriptions/{SUB}"]}}"#
        ),
        "cccccccc-0000-0000-0000-000000000001",
    );
    f.assign(USER, "No push", registry(), None);
    f.assign(GROUP, "Contributor", registry(), None);
    let index = f.index();
    assert_eq!(granted(&index, &[USER], Legacy, "a"), vec![Pull, Delete, MetadataRead]);
    let d = index.authorize_data_action(
        &[pid(USER)],
        &registry(),
        Legacy,
        DataAction::ContentWrite,
        &DataPlaneTarget::Repository("a".into()),
        &EnvironmentAttributes::default(),
    );
    assert!(matches!(
        &d.outcome,
        Outcome::Denied(DenyReason::ExcludedByNotActions { pattern, .. }) if pattern == "Microsoft.ContainerRegistry/registries/push/write"
    ));
    // ABAC mode uses dataActions minus notDataActions.
    assert_eq!(granted(&index, &[USER], Abac, "a"), vec![Pull, Push, MetadataRead, MetadataWrite]);
    // Contributor cannot write role assignments.
    let d = index.authorize_action(&[pid(GROUP)], &registry(), "Microsoft.Authorization/roleAssignments/write");
    assert!(matches!(
        &d.outcome,
        Outcome::Denied(DenyReason::ExcludedByNotActions { pattern, .. }) if pattern == "Microsoft.Authorization/*/Write"
    ));
    assert!(
        index.authorize_action(&[pid(GROUP)], &registry(), "Microsoft.ContainerRegistry/registries/write").is_allowed()
    );
}

#[test]
fn push_needs_both_content_and_metadata_write() {
    let mut f = Fixture::new();
    f.custom(
        &format!(
            r#"{{"Name":"Content writer","DataActions":["Microsoft.ContainerRegistry/registries/repositories/content/*"],
               "AssignableScopes":["/subscriptions/{SUB}"]}}"#
        ),
        "cccccccc-0000-0000-0000-000000000002",
    );
    f.assign(USER, "Content writer", registry(), None);
    let index = f.index();
    let principals = [pid(USER)];
    let environment = EnvironmentAttributes::default();
    let scope = registry();
    let request = DataPlaneRequest {
        principals: &principals,
        registry: &scope,
        mode: Abac,
        target: DataPlaneTarget::Repository("a".into()),
        actions: &[Push],
        environment: &environment,
    };
    let d = index.authorize_data_plane(&request);
    assert!(d.granted.is_empty());
    let reqs = &d.decisions[0].requirements;
    assert_eq!(reqs.len(), 2);
    assert!(reqs[0].is_allowed(), "content/write");
    assert_eq!(reqs[1].outcome, Outcome::Denied(DenyReason::ActionNotInAnyRole), "metadata/write");
}

#[test]
fn custom_roles_per_mode() {
    let mut f = Fixture::new();
    f.custom(
        &format!(
            r#"{{"Name":"Legacy puller","Actions":["Microsoft.ContainerRegistry/registries/pull/read"],"AssignableScopes":["/subscriptions/{SUB}"]}}"#
        ),
        "cccccccc-0000-0000-0000-000000000003",
    );
    f.custom(
        &format!(
            r#"{{"Name":"Repo reader","DataActions":["Microsoft.ContainerRegistry/registries/repositories/*/read","Microsoft.ContainerRegistry/registries/catalog/read"],"AssignableScopes":["/subscriptions/{SUB}"]}}"#
        ),
        "cccccccc-0000-0000-0000-000000000004",
    );
    f.assign(USER, "Legacy puller", registry(), None);
    f.assign(GROUP, "Repo reader", registry(), Some(&BACKEND_WRITER.replace("'backend/'", "'team/'")));
    let index = f.index();
    assert_eq!(granted(&index, &[USER], Legacy, "a"), vec![Pull, MetadataRead]);
    assert!(granted(&index, &[USER], Abac, "a").is_empty(), "a custom role's actions give no ABAC data access");
    assert_eq!(granted(&index, &[GROUP], Abac, "team/a"), vec![Pull, MetadataRead]);
    assert!(granted(&index, &[GROUP], Abac, "other").is_empty());
    assert!(catalog(&index, &[GROUP], Abac), "catalog/read is not guarded by the condition");
    assert!(
        granted(&index, &[GROUP], Legacy, "team/a").is_empty(),
        "repository data actions do not count in legacy mode"
    );
}

#[test]
fn legacy_mode_conditions_see_no_repository() {
    // A custom legacy role with a repository condition never grants in legacy
    // mode (legacy ACR supplies no repository attribute) — fail closed.
    let mut f = Fixture::new();
    f.custom(
        &format!(
            r#"{{"Name":"Legacy puller","Actions":["Microsoft.ContainerRegistry/registries/pull/read"],"DataActions":["Microsoft.ContainerRegistry/registries/repositories/content/read"],"AssignableScopes":["/subscriptions/{SUB}"]}}"#
        ),
        "cccccccc-0000-0000-0000-000000000005",
    );
    f.assign(
        USER,
        "Legacy puller",
        registry(),
        Some("@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'a'"),
    );
    // A guard that only targets another action lets legacy pull through.
    f.assign(GROUP, "Legacy puller", registry(), Some("!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) OR @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'a'"));
    let index = f.index();
    assert!(granted(&index, &[USER], Legacy, "a").is_empty());
    assert_eq!(granted(&index, &[USER], Abac, "a"), vec![Pull]);
    assert_eq!(granted(&index, &[GROUP], Legacy, "zzz"), vec![Pull, MetadataRead]);
}

#[test]
fn environment_conditions() {
    let private_only = "!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) OR @Environment[isPrivateLink] BoolEquals true";
    let mut f = Fixture::new();
    f.assign(USER, "Container Registry Repository Reader", registry(), Some(private_only));
    let index = f.index();
    let principals = [pid(USER)];
    let scope = registry();
    let check = |env: EnvironmentAttributes| {
        index
            .authorize_data_action(
                &principals,
                &scope,
                Abac,
                DataAction::ContentRead,
                &DataPlaneTarget::Repository("a".into()),
                &env,
            )
            .is_allowed()
    };
    assert!(check(EnvironmentAttributes { is_private_link: Some(true), ..Default::default() }));
    assert!(!check(EnvironmentAttributes { is_private_link: Some(false), ..Default::default() }));
    assert!(!check(EnvironmentAttributes::default()), "unknown origin fails closed");
}

#[test]
fn delegation_condition_on_the_control_plane() {
    let acr_pull = "7f951dda-4ed3-4680-a7ca-43fe172d538d";
    let condition = format!(
        "(!(ActionMatches{{'Microsoft.Authorization/roleAssignments/write'}})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{acr_pull}}})"
    )
    .replace(&format!("{{{acr_pull}}}"), &format!("{{'{acr_pull}'}}"));
    let mut f = Fixture::new();
    f.assign(USER, "Role Based Access Control Administrator", registry(), Some(&condition));
    let index = f.index();
    let principals = [pid(USER)];
    let ctx = |role: &str| {
        RequestContext::new("Microsoft.Authorization/roleAssignments/write").with_attribute(
            AttributeSource::Request,
            "Microsoft.Authorization/roleAssignments:RoleDefinitionId",
            role,
        )
    };
    assert!(index.authorize_action_with(&principals, &registry(), &ctx(acr_pull)).is_allowed());
    let owner = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635";
    let denied = index.authorize_action_with(&principals, &registry(), &ctx(owner));
    assert!(matches!(denied.outcome, Outcome::Denied(DenyReason::ConditionNotMet { .. })));
    // Other actions pass the guard.
    assert!(
        index.authorize_action(&principals, &registry(), "Microsoft.Authorization/roleAssignments/delete").is_allowed()
    );
    assert!(
        index.authorize_action(&principals, &registry(), "Microsoft.ContainerRegistry/registries/read").is_allowed()
    );
}

#[test]
fn deny_reasons() {
    let mut f = Fixture::new();
    f.assign(USER, "00000000-dead-beef-0000-000000000000", registry(), None);
    f.assign(GROUP, "Container Registry Repository Reader", registry(), None);
    let index = f.index();
    let d = index.authorize_action(&[pid(OTHER)], &registry(), "Microsoft.ContainerRegistry/registries/read");
    assert_eq!(d.outcome, Outcome::Denied(DenyReason::NoAssignment));
    assert!(d.considered.is_empty());
    let d = index.authorize_data_action(
        &[pid(USER)],
        &registry(),
        Abac,
        DataAction::ContentRead,
        &DataPlaneTarget::Repository("a".into()),
        &EnvironmentAttributes::default(),
    );
    assert_eq!(d.outcome, Outcome::Denied(DenyReason::ActionNotInAnyRole));
    assert_eq!(d.considered[0].outcome, AssignmentOutcome::RoleDefinitionMissing);
    let d = index.authorize_data_action(
        &[pid(GROUP)],
        &registry(),
        Abac,
        DataAction::ContentDelete,
        &DataPlaneTarget::Repository("a".into()),
        &EnvironmentAttributes::default(),
    );
    assert_eq!(d.outcome, Outcome::Denied(DenyReason::ActionNotInAnyRole));
    assert_eq!(d.considered[0].outcome, AssignmentOutcome::ActionNotInRole);
    assert!(d.explain().starts_with("DENIED Microsoft.ContainerRegistry/registries/repositories/content/delete"));
}

#[test]
fn decisions_only_touch_the_principals_assignments() {
    let mut f = Fixture::new();
    for i in 0..200 {
        f.assign(&format!("noise-{i}"), "AcrPush", registry(), None);
    }
    f.assign(USER, "AcrPull", registry(), None);
    let index = f.index();
    let d = index.authorize_data_action(
        &[pid(USER)],
        &registry(),
        Legacy,
        DataAction::ContentWrite,
        &DataPlaneTarget::Repository("a".into()),
        &EnvironmentAttributes::default(),
    );
    assert_eq!(d.considered.len(), 1);
}

#[test]
fn token_actions() {
    let mut f = Fixture::new();
    f.assign(USER, "Container Registry Repository Contributor", registry(), None);
    f.assign(GROUP, "Container Registry Repository Reader", registry(), None);
    let index = f.index();
    let scope = registry();
    let environment = EnvironmentAttributes::default();
    let ask = |who: &str, target: DataPlaneTarget, actions: &[DockerAction]| {
        let principals = [pid(who)];
        let request = DataPlaneRequest {
            principals: &principals,
            registry: &scope,
            mode: Abac,
            target,
            actions,
            environment: &environment,
        };
        index.authorize_data_plane(&request).token_actions()
    };
    assert_eq!(ask(USER, DataPlaneTarget::Repository("a".into()), &ALL), vec!["*"]);
    assert_eq!(ask(GROUP, DataPlaneTarget::Repository("a".into()), &ALL), vec!["pull", "metadata_read"]);
    assert_eq!(ask(GROUP, DataPlaneTarget::Repository("a".into()), &[Pull, Push]), vec!["pull"]);
    assert!(ask(GROUP, DataPlaneTarget::Catalog, &ALL).is_empty());
}

#[test]
fn what_if_mode_change_reports_gains_and_losses() {
    let mut f = Fixture::new();
    f.assign(USER, "AcrPull", registry(), None);
    f.assign(GROUP, "Container Registry Repository Writer", registry(), Some(BACKEND_WRITER));
    f.assign(OTHER, "Container Registry Data Importer and Data Reader", registry(), None);
    let index = f.index();
    let sets = vec![vec![pid(USER)], vec![pid(GROUP)], vec![pid(OTHER)], vec![pid("nobody")]];
    let impacts = index.what_if_mode_change(&sets, &registry(), &["backend/api", "frontend/web"], Legacy, Abac);
    assert_eq!(impacts.len(), 3, "principals without assignments are skipped");
    let repo = |r: &str| DataPlaneTarget::Repository(r.into());
    assert_eq!(
        impacts[0].changes,
        vec![
            AccessChange { target: repo("backend/api"), gained: vec![], lost: vec![Pull, MetadataRead] },
            AccessChange { target: repo("frontend/web"), gained: vec![], lost: vec![Pull, MetadataRead] },
            AccessChange { target: DataPlaneTarget::Catalog, gained: vec![], lost: vec![DockerAction::All] },
        ]
    );
    assert_eq!(
        impacts[1].changes,
        vec![AccessChange {
            target: repo("backend/api"),
            gained: vec![Pull, Push, MetadataRead, MetadataWrite],
            lost: vec![]
        }]
    );
    assert!(impacts[2].changes.is_empty(), "Data Importer works the same in both modes");
    // And back.
    let back = index.what_if_mode_change(&sets, &registry(), &["backend/api"], Abac, Legacy);
    assert_eq!(back[1].changes[0].lost, vec![Pull, Push, MetadataRead, MetadataWrite]);
}
