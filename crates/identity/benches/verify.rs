//! Cost of validating a registry access token (signature, header rules, claims, binding):
//! the work the data plane does on every request that carries a Bearer token.

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use wharf_identity::{
    AccessEntry, KeySet, NoRevocations, PrincipalType, RegistryContext, RegistrySubject, RegistryTokenIssuer,
    RoleAssignmentMode,
};

fn verify_access_token(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let keys = KeySet::generate(now);
    let issuer = RegistryTokenIssuer::default();
    let ctx = RegistryContext {
        login_server: "myregistry.localhost:5000".into(),
        registry_id: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry"
            .into(),
        mode: RoleAssignmentMode::AbacRepositoryPermissions,
        epoch: "0b6a2c1e-0000-4000-8000-000000000003".into(),
    };
    let subject = RegistrySubject {
        principal_id: "2d3c1b0a-0000-4000-8000-000000000001".into(),
        principal_type: PrincipalType::ServicePrincipal,
        subject: "6a1f0c2d-0000-4000-8000-000000000002".into(),
        tenant_id: Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into()),
        mi_kind: None,
        host: None,
        builtin: None,
    };
    let access = vec![
        AccessEntry::new("repository", "backend/nginx", ["pull", "push"]),
        AccessEntry::new("registry", "catalog", ["*"]),
    ];
    let token = issuer.issue_access(&keys, &subject, &ctx, access, now).expect("issue").token;
    c.bench_function("validate_access_token", |b| {
        b.iter(|| {
            let claims = issuer.validate_access(&keys, black_box(&token), &ctx, now, &NoRevocations).expect("valid");
            black_box(claims.allows("repository", "backend/nginx", "pull"))
        })
    });
}

criterion_group!(benches, verify_access_token);
criterion_main!(benches);
