//! What a subject is granted on a registry for the scopes it asks for: the one place that
//! decides what goes into a registry token's `access` claim and what a Basic credential may do
//! on a request.
//!
//! - Anonymous callers get `pull` on repositories of registries with anonymous pull.
//! - The registry's admin user gets everything on its own registry.
//! - A task run's own token (legacy mode) gets pull and push on its own registry.
//! - Directory principals get what the decision engine grants under the registry's
//!   role-assignment mode; in ABAC mode a wildcard repository (`repository:*:*`) is refused.
//! - Without a registry (a deployment-level token, path style), only the catalog scope is kept;
//!   path-style listings then show only registries whose catalog the engine grants the caller.
//! - A repository name the data plane can never accept (not a valid OCI name: `..`, upper case,
//!   encoded separators, too long) is granted nothing, so no token names it.
//!
//! Must never: grant without the engine for a directory principal, or grant on a registry the
//! subject's credential is not bound to.

use wharf_authz::{DataPlaneTarget, DockerAction, EnvironmentAttributes};
use wharf_identity::{AccessEntry, RegistrySubject, TokenScope};
use wharf_vocab::PrincipalType;

use crate::state::{AppState, RegistryInfo};

/// Whether a repository scope's name could ever be served: a valid repository name, or the
/// `*` wildcard (legacy mode only; see below).
fn servable_repository(name: &str) -> bool {
    name == "*" || wharf_oci::RepositoryName::parse(name).is_ok()
}

/// The access entries `subject` is granted on `registry` for `requested`, judged with the ABAC
/// environment attributes of the request's network path (without them, conditions on
/// `@Environment` fail closed).
pub fn grant(
    state: &AppState,
    subject: &RegistrySubject,
    registry: Option<&RegistryInfo>,
    requested: &[TokenScope],
    environment: &EnvironmentAttributes,
) -> Vec<AccessEntry> {
    let anonymous_pull = registry.is_some_and(|r| r.properties.anonymous_pull_enabled);
    requested
        .iter()
        .filter_map(|s| {
            let is_repo = s.resource_type == "repository";
            let is_catalog = s.resource_type == "registry" && s.name == "catalog";
            if !is_repo && !is_catalog {
                return None;
            }
            if is_repo && !servable_repository(&s.name) {
                tracing::info!(scope = %s, "registry token: a repository name the registry can never serve is granted nothing");
                return None;
            }
            let actions: Vec<String> = match subject.principal_type {
                PrincipalType::Anonymous => {
                    if !anonymous_pull || !is_repo {
                        return None;
                    }
                    s.actions.iter().filter(|a| *a == "pull").cloned().collect()
                }
                PrincipalType::RegistryAdmin => {
                    let own = registry.is_some_and(|r| {
                        r.properties.admin_user_enabled
                            && subject.principal_id == crate::auth::credentials::admin_principal_id(r)
                    });
                    if !own {
                        return None;
                    }
                    s.actions.clone()
                }
                PrincipalType::RepositoryToken => return None,
                // A run's own token: pull and push on its registry, in the legacy mode only (in
                // ABAC mode tasks reach their registry only through an identity).
                PrincipalType::TaskRun => {
                    let own = registry.is_some_and(|r| {
                        !r.properties.role_assignment_mode.is_abac()
                            && subject.principal_id.starts_with(&crate::auth::credentials::task_run_prefix(r))
                    });
                    if !own || !is_repo {
                        return None;
                    }
                    s.actions.iter().filter(|a| *a == "pull" || *a == "push").cloned().collect()
                }
                PrincipalType::User | PrincipalType::ServicePrincipal | PrincipalType::ManagedIdentity => {
                    let Some(reg) = registry else {
                        return is_catalog.then(|| AccessEntry::new("registry", "catalog", ["*"]));
                    };
                    let mode = reg.properties.role_assignment_mode;
                    if is_repo && mode.is_abac() && s.name.contains('*') {
                        tracing::info!(scope = %s, "wildcard repository scopes are refused in ABAC mode");
                        return None;
                    }
                    let (target, wanted) = if is_catalog {
                        (DataPlaneTarget::Catalog, vec![DockerAction::All])
                    } else {
                        (
                            DataPlaneTarget::Repository(s.name.clone()),
                            s.actions.iter().filter_map(|a| DockerAction::parse(a)).collect(),
                        )
                    };
                    if wanted.is_empty() {
                        return None;
                    }
                    let decision =
                        state.authz.data_plane(&subject.principal_id, &reg.scope, mode, target, &wanted, environment);
                    if decision.granted.is_empty() {
                        tracing::info!(principal = %subject.principal_id, scope = %s, explanation = %decision.explain(), "registry token: nothing granted");
                    }
                    decision.token_actions().into_iter().map(str::to_string).collect()
                }
            };
            (!actions.is_empty()).then(|| AccessEntry::new(&s.resource_type, &s.name, actions))
        })
        .collect()
}

/// Whether `subject` may `action` `resource_type:name` on `registry` (Basic credentials and
/// anonymous callers, whose rights are decided per request).
pub fn allows(
    state: &AppState,
    subject: &RegistrySubject,
    registry: Option<&RegistryInfo>,
    environment: &EnvironmentAttributes,
    resource_type: &str,
    name: &str,
    action: &str,
) -> bool {
    let scope = TokenScope { resource_type: resource_type.into(), name: name.into(), actions: vec![action.into()] };
    let granted = grant(state, subject, registry, &[scope], environment);
    wharf_identity::allows(&granted, resource_type, name, action)
}
