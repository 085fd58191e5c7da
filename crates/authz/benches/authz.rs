//! Benchmarks of the hot paths:
//! * parsing the portal's two-prefix condition;
//! * evaluating it (target: < 500 ns);
//! * a full data-plane token decision (`repository:<r>:*`, ABAC mode) for one
//!   principal in an index of 10,000 role assignments (5,000 conditional)
//!   spread over 500 registries (target: p99 < 1 ms). The p50/p99 of that
//!   decision are also measured directly and printed, since criterion reports
//!   means.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use wharf_authz::assignment::{AssignmentPrincipalType, PrincipalId, RoleAssignment};
use wharf_authz::condition::{Condition, EnvironmentAttributes, RequestContext};
use wharf_authz::data_plane::{DataPlaneTarget, DockerAction, RoleAssignmentMode};
use wharf_authz::engine::{AssignmentIndex, DataPlaneRequest};
use wharf_authz::roles::built_in_role_by_name;
use wharf_authz::scope::Scope;

const TWO_PREFIXES: &str = "(
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

const SUB: &str = "00000000-0000-0000-0000-000000000001";
const PRINCIPALS: usize = 1000;
const REGISTRIES: usize = 500;
const ASSIGNMENTS: usize = 10_000;

/// (principal, registry, role) of assignment `i`: a fixed pseudo-random spread.
fn layout(i: usize) -> (usize, usize, usize) {
    let h = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 16) as usize % PRINCIPALS, (h >> 32) as usize % REGISTRIES, (h >> 48) as usize % 4)
}

fn build_index() -> AssignmentIndex {
    let roles = [
        built_in_role_by_name("Container Registry Repository Reader").unwrap().id,
        built_in_role_by_name("Container Registry Repository Writer").unwrap().id,
        built_in_role_by_name("Container Registry Repository Contributor").unwrap().id,
        built_in_role_by_name("AcrPull").unwrap().id,
    ];
    let condition = Condition::parse(TWO_PREFIXES).unwrap();
    let assignments = (0..ASSIGNMENTS).map(|i| {
        let (principal, registry, role) = layout(i);
        let registry = Scope::registry(SUB, "rg", &format!("reg{registry}")).unwrap();
        let principal = PrincipalId::new(&format!("principal-{principal}")).unwrap();
        let id = format!("aaaaaaaa-0000-0000-0000-{i:012}");
        let a = RoleAssignment::new(&id, registry, &roles[role], principal, AssignmentPrincipalType::User).unwrap();
        if i % 2 == 0 { a.with_condition(condition.clone()) } else { a }
    });
    AssignmentIndex::with_built_in_roles([], assignments)
}

fn benches(c: &mut Criterion) {
    c.bench_function("parse two-prefix condition", |b| b.iter(|| Condition::parse(black_box(TWO_PREFIXES)).unwrap()));

    let condition = Condition::parse(TWO_PREFIXES).unwrap();
    let ctx = RequestContext::new("Microsoft.ContainerRegistry/registries/repositories/content/read")
        .with_repository("frontend/js/react");
    c.bench_function("evaluate two-prefix condition", |b| b.iter(|| black_box(&condition).allows(black_box(&ctx))));

    let index = build_index();
    // A principal with ~10 assignments; ask about a registry where it holds a Repository role.
    let (principal, registry, _) = (0..ASSIGNMENTS).map(layout).find(|&(_, _, role)| role < 3).unwrap();
    let mine = (0..ASSIGNMENTS).filter(|&i| layout(i).0 == principal).count();
    println!("principal-{principal} holds {mine} of {ASSIGNMENTS} assignments");
    let principals = vec![
        PrincipalId::new(&format!("principal-{principal}")).unwrap(),
        PrincipalId::new("group-without-assignments").unwrap(),
    ];
    let registry = Scope::registry(SUB, "rg", &format!("reg{registry}")).unwrap();
    let environment = EnvironmentAttributes::default();
    let request = DataPlaneRequest {
        principals: &principals,
        registry: &registry,
        mode: RoleAssignmentMode::AbacRepositoryPermissions,
        target: DataPlaneTarget::Repository("backend/api".into()),
        actions: &[DockerAction::All],
        environment: &environment,
    };
    assert!(!index.authorize_data_plane(&request).granted.is_empty());
    c.bench_function("token decision, 10k assignments", |b| b.iter(|| index.authorize_data_plane(black_box(&request))));

    let mut samples: Vec<u128> = (0..20_000)
        .map(|_| {
            let start = Instant::now();
            black_box(index.authorize_data_plane(black_box(&request)));
            start.elapsed().as_nanos()
        })
        .collect();
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64) * q) as usize];
    println!(
        "token decision, 10k assignments: p50 {} ns, p99 {} ns, max {} ns",
        at(0.50),
        at(0.99),
        samples[samples.len() - 1]
    );
}

criterion_group!(authz, benches);
criterion_main!(authz);
