//! The decision engine: given the principals acting (the caller's own id and
//! the ids of the groups it belongs to), a scope and an action, decide — and
//! say why.
//!
//! Owns: [`AssignmentIndex`] (assignments grouped by principal id, roles
//! pre-compiled to bit sets, so a decision only touches the assignments of
//! the principals asking) and the rules that combine scope inheritance,
//! permissions, registry mode and conditions:
//!
//! * An action is allowed iff SOME assignment of one of the principals, at or
//!   above the scope, (a) has a role whose permissions cover the action and
//!   that is honoured for it, and (b) has no condition or a condition that
//!   evaluates to TRUE for the request. Conditions never deny on their own;
//!   there are no deny assignments.
//! * Control plane: `actions` minus `notActions`; the condition sees the
//!   action and any attributes the caller supplies.
//! * Data plane, `AbacRepositoryPermissions`: only `dataActions` of roles
//!   honoured in ABAC mode count (the four Repository roles, the quarantine
//!   roles, Data Importer, custom roles). Repository conditions see
//!   `@Request`/`@Resource[…repositories:name]` = the repository; an
//!   unconditional Repository role applies to every repository.
//! * Data plane, `LegacyRegistryPermissions`: roles honoured in legacy mode
//!   count through their `actions` matched against the legacy actions
//!   (`registries/pull/read`, `push/write`, `artifacts/delete`; Owner and
//!   Contributor reach them through `*`, Reader through `*/read`), plus the
//!   quarantine / trusted-collection data actions. Repository roles have no
//!   effect. Decision where ACR is silent: a condition on such an assignment
//!   is evaluated with the legacy action and WITHOUT repository attributes
//!   (legacy ACR never supplies them), so a repository condition can never
//!   grant legacy access, while a condition guarding only other actions
//!   still lets it through.
//!
//! Must never: look anything up outside the index, or grant on an evaluation
//! error (an unknown condition outcome is a deny, and the trace says why).

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use crate::assignment::{PrincipalId, RoleAssignment};
use crate::condition::{EnvironmentAttributes, RequestContext, TraceNode, Truth};
use crate::data_plane::{DataAction, DataPlaneTarget, DockerAction, LegacyAction, RoleAssignmentMode};
use crate::roles::{RoleDefinition, RoleProfile};
use crate::scope::Scope;

/// A role with its permissions pre-matched against the ACR action catalogue.
#[derive(Debug, Clone)]
struct CompiledRole {
    definition: RoleDefinition,
    profile: RoleProfile,
    /// `DataAction::bit()` of every data action its dataActions grant.
    data_actions: u16,
    /// Bit `i` set when its actions grant `LegacyAction::ALL[i]`.
    legacy_actions: u8,
}

impl CompiledRole {
    fn new(definition: RoleDefinition) -> CompiledRole {
        let data_actions = DataAction::ALL
            .iter()
            .filter(|a| definition.allows_data_action(a.as_str()))
            .fold(0, |bits, a| bits | a.bit());
        let legacy_actions = LegacyAction::ALL
            .iter()
            .enumerate()
            .filter(|(_, a)| definition.allows_action(a.as_str()))
            .fold(0, |bits, (i, _)| bits | (1 << i));
        CompiledRole { profile: definition.profile(), definition, data_actions, legacy_actions }
    }

    fn grants_legacy(&self, action: LegacyAction) -> bool {
        let i = LegacyAction::ALL.iter().position(|a| *a == action).unwrap_or(0);
        self.legacy_actions & (1 << i) != 0
    }
}

#[derive(Debug, Clone)]
struct IndexedAssignment {
    assignment: RoleAssignment,
    role: Option<usize>,
}

/// All role assignments and role definitions, indexed by principal id.
#[derive(Debug, Clone, Default)]
pub struct AssignmentIndex {
    roles: Vec<CompiledRole>,
    role_by_guid: HashMap<String, usize>,
    /// Each principal's assignments in the order they were added. Entries are shared, so a
    /// copy of the index (copy-on-write while a reader holds the old one) copies pointers.
    by_principal: HashMap<PrincipalId, Vec<Arc<IndexedAssignment>>>,
    /// Assignment GUID (lowercase) → its principal, for updates and removals.
    by_guid: HashMap<String, PrincipalId>,
}

/// What is being checked.
#[derive(Debug, Clone, Copy)]
enum Check<'a> {
    Control(&'a str),
    Data(DataAction, RoleAssignmentMode),
}

/// The result of checking one assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AssignmentOutcome {
    /// The assignment grants the action.
    Granted { condition: Option<Truth> },
    /// The role is not honoured for the data plane in this registry mode.
    RoleNotHonouredInMode { mode: RoleAssignmentMode },
    /// The role's permissions do not include the action.
    ActionNotInRole,
    /// A `notActions` / `notDataActions` entry removes the action.
    ExcludedBy { pattern: String },
    /// The condition did not evaluate to TRUE.
    ConditionNotMet { outcome: Truth },
    /// The assignment names a role definition the index does not know.
    RoleDefinitionMissing,
}

impl std::fmt::Display for AssignmentOutcome {
    /// The outcome in words, as explanations print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssignmentOutcome::Granted { condition: None } => f.write_str("grants it (no condition)"),
            AssignmentOutcome::Granted { condition: Some(t) } => write!(f, "grants it (condition {})", t.as_str()),
            AssignmentOutcome::RoleNotHonouredInMode { mode } => {
                write!(f, "the role is not honoured for data access in {mode} mode")
            }
            AssignmentOutcome::ActionNotInRole => f.write_str("the role does not include the action"),
            AssignmentOutcome::ExcludedBy { pattern } => write!(f, "the role excludes it with '{pattern}'"),
            AssignmentOutcome::ConditionNotMet { outcome } => write!(f, "its condition is {}", outcome.as_str()),
            AssignmentOutcome::RoleDefinitionMissing => f.write_str("its role definition does not exist"),
        }
    }
}

/// One assignment that was at or above the scope, and what it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consideration {
    pub assignment_id: String,
    pub role_name: String,
    pub principal_id: PrincipalId,
    pub scope: String,
    pub outcome: AssignmentOutcome,
}

/// Why an action was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// No assignment of these principals at or above the scope.
    NoAssignment,
    /// Assignments exist, but no role includes the action.
    ActionNotInAnyRole,
    /// The closest assignment's role is not honoured in this registry mode.
    RoleNotHonouredInMode { assignment_id: String, role_name: String, mode: RoleAssignmentMode },
    /// The closest assignment's role excludes the action.
    ExcludedByNotActions { assignment_id: String, role_name: String, pattern: String },
    /// The closest assignment's condition was not TRUE.
    ConditionNotMet { assignment_id: String, role_name: String, trace: TraceNode },
}

/// Allowed or denied, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allowed { assignment_id: String, role_name: String, condition_trace: Option<TraceNode> },
    Denied(DenyReason),
}

/// A decision about one action: the value logs, `check-access` and deny
/// messages all render.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The action checked (control-plane action or data action).
    pub action: String,
    pub outcome: Outcome,
    /// Every assignment at or above the scope that was looked at, in order.
    pub considered: Vec<Consideration>,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self.outcome, Outcome::Allowed { .. })
    }

    /// The assignment that decided (the granting one, or the closest denial).
    pub fn decisive_assignment(&self) -> Option<&str> {
        match &self.outcome {
            Outcome::Allowed { assignment_id, .. } => Some(assignment_id),
            Outcome::Denied(
                DenyReason::RoleNotHonouredInMode { assignment_id, .. }
                | DenyReason::ExcludedByNotActions { assignment_id, .. }
                | DenyReason::ConditionNotMet { assignment_id, .. },
            ) => Some(assignment_id),
            Outcome::Denied(_) => None,
        }
    }

    /// A human explanation, several lines, for `check-access` and logs.
    pub fn explain(&self) -> String {
        let mut out = String::new();
        match &self.outcome {
            Outcome::Allowed { assignment_id, role_name, condition_trace } => {
                let _ = writeln!(out, "ALLOWED {}: role '{role_name}' (assignment {assignment_id})", self.action);
                if let Some(trace) = condition_trace {
                    let _ = writeln!(out, "condition:");
                    out.push_str(&indent(&trace.render()));
                }
            }
            Outcome::Denied(reason) => {
                let _ = write!(out, "DENIED {}: ", self.action);
                match reason {
                    DenyReason::NoAssignment => {
                        let _ = writeln!(out, "no role assignment at or above the scope");
                    }
                    DenyReason::ActionNotInAnyRole => {
                        let _ = writeln!(out, "no assigned role includes this action");
                    }
                    DenyReason::RoleNotHonouredInMode { assignment_id, role_name, mode } => {
                        let _ = writeln!(
                            out,
                            "role '{role_name}' (assignment {assignment_id}) is not honoured for data access in {mode} mode"
                        );
                    }
                    DenyReason::ExcludedByNotActions { assignment_id, role_name, pattern } => {
                        let _ = writeln!(
                            out,
                            "role '{role_name}' (assignment {assignment_id}) excludes it with '{pattern}'"
                        );
                    }
                    DenyReason::ConditionNotMet { assignment_id, role_name, trace } => {
                        let _ = writeln!(
                            out,
                            "the condition of role '{role_name}' (assignment {assignment_id}) is {}",
                            trace.outcome.as_str()
                        );
                        out.push_str(&indent(&trace.render()));
                    }
                }
            }
        }
        for c in &self.considered {
            let _ = writeln!(out, "  considered {} '{}' at {}: {}", c.assignment_id, c.role_name, c.scope, c.outcome);
        }
        out
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// The decision for one requested Docker action (all its data actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerActionDecision {
    pub action: DockerAction,
    pub allowed: bool,
    /// One decision per required data action (ABAC) or legacy action (legacy).
    pub requirements: Vec<Decision>,
}

/// The answer to a token request for one target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPlaneDecision {
    pub target: DataPlaneTarget,
    pub mode: RoleAssignmentMode,
    /// The granted subset, concrete actions only (`*` is expanded).
    pub granted: Vec<DockerAction>,
    pub decisions: Vec<DockerActionDecision>,
    requested_all: bool,
}

impl DataPlaneDecision {
    /// Action names for the token's `access[].actions`: the granted concrete
    /// actions, or `["*"]` when `*` was requested and everything was granted.
    /// For the catalog: `["*"]` when listing is allowed.
    pub fn token_actions(&self) -> Vec<&'static str> {
        if self.target == DataPlaneTarget::Catalog {
            return if self.granted.is_empty() { vec![] } else { vec!["*"] };
        }
        if self.requested_all && DockerAction::CONCRETE.iter().all(|a| self.granted.contains(a)) {
            return vec!["*"];
        }
        self.granted.iter().map(|a| a.as_str()).collect()
    }

    pub fn explain(&self) -> String {
        let mut out = format!("{} in {} mode:\n", self.target, self.mode);
        for d in &self.decisions {
            let _ = writeln!(out, "{}: {}", d.action, if d.allowed { "granted" } else { "denied" });
            for r in &d.requirements {
                out.push_str(&indent(&r.explain()));
            }
        }
        out
    }
}

/// A data-plane request for one target.
#[derive(Debug, Clone)]
pub struct DataPlaneRequest<'a> {
    /// The caller's own id first, then its groups.
    pub principals: &'a [PrincipalId],
    pub registry: &'a Scope,
    pub mode: RoleAssignmentMode,
    pub target: DataPlaneTarget,
    pub actions: &'a [DockerAction],
    pub environment: &'a EnvironmentAttributes,
}

/// How access of one principal changes when the registry mode changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeChangeImpact {
    pub principals: Vec<PrincipalId>,
    pub changes: Vec<AccessChange>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessChange {
    pub target: DataPlaneTarget,
    pub gained: Vec<DockerAction>,
    pub lost: Vec<DockerAction>,
}

impl crate::assignment::ExistingAssignments for AssignmentIndex {
    fn by_guid(&self, guid: &str) -> Option<&RoleAssignment> {
        let principal = self.by_guid.get(&guid.to_ascii_lowercase())?;
        self.by_principal.get(principal)?.iter().map(|e| &e.assignment).find(|a| a.id.eq_ignore_ascii_case(guid))
    }

    fn of_principal<'a>(&'a self, principal: &'a PrincipalId) -> Box<dyn Iterator<Item = &'a RoleAssignment> + 'a> {
        Box::new(self.by_principal.get(principal).into_iter().flatten().map(|e| &e.assignment))
    }

    fn count_in_subscription(&self, subscription: &str) -> usize {
        self.assignments()
            .filter(|a| a.scope.subscription_id().is_some_and(|s| s.eq_ignore_ascii_case(subscription)))
            .count()
    }
}

impl AssignmentIndex {
    /// Builds the index. Roles are looked up by GUID; an assignment whose role
    /// is unknown never grants anything.
    pub fn new(
        roles: impl IntoIterator<Item = RoleDefinition>,
        assignments: impl IntoIterator<Item = RoleAssignment>,
    ) -> AssignmentIndex {
        let mut index = AssignmentIndex::default();
        for role in roles {
            let guid = role.guid();
            let compiled = CompiledRole::new(role);
            match index.role_by_guid.get(&guid) {
                Some(&i) => index.roles[i] = compiled,
                None => {
                    index.role_by_guid.insert(guid, index.roles.len());
                    index.roles.push(compiled);
                }
            }
        }
        for assignment in assignments {
            index.insert(assignment);
        }
        index
    }

    /// The built-in roles plus `custom_roles`.
    pub fn with_built_in_roles(
        custom_roles: impl IntoIterator<Item = RoleDefinition>,
        assignments: impl IntoIterator<Item = RoleAssignment>,
    ) -> AssignmentIndex {
        AssignmentIndex::new(crate::roles::built_in_roles().into_iter().chain(custom_roles), assignments)
    }

    /// Adds one assignment, or replaces the one with the same GUID (a PUT of an existing
    /// assignment), keeping its principal's other assignments in order.
    pub fn insert(&mut self, assignment: RoleAssignment) {
        let guid = assignment.id.to_ascii_lowercase();
        self.remove(&guid);
        let role = self.role_by_guid.get(&assignment.role_guid()).copied();
        self.by_guid.insert(guid, assignment.principal_id.clone());
        let principal = assignment.principal_id.clone();
        self.by_principal.entry(principal).or_default().push(Arc::new(IndexedAssignment { assignment, role }));
    }

    /// Removes the assignment with this GUID (any case); false if the index had none.
    pub fn remove(&mut self, guid: &str) -> bool {
        let guid = guid.to_ascii_lowercase();
        let Some(principal) = self.by_guid.remove(&guid) else { return false };
        if let Some(list) = self.by_principal.get_mut(&principal) {
            list.retain(|e| !e.assignment.id.eq_ignore_ascii_case(&guid));
            if list.is_empty() {
                self.by_principal.remove(&principal);
            }
        }
        true
    }

    /// Every assignment, principal by principal.
    pub fn assignments(&self) -> impl Iterator<Item = &RoleAssignment> {
        self.by_principal.values().flatten().map(|e| &e.assignment)
    }

    pub fn len(&self) -> usize {
        self.by_guid.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_guid.is_empty()
    }

    pub fn role(&self, guid: &str) -> Option<&RoleDefinition> {
        self.role_by_guid.get(&guid.to_ascii_lowercase()).map(|&i| &self.roles[i].definition)
    }

    /// Assignments of these principals at or above `scope`.
    pub fn assignments_for<'s>(
        &'s self,
        principals: &'s [PrincipalId],
        scope: &'s Scope,
    ) -> impl Iterator<Item = &'s RoleAssignment> + 's {
        principals
            .iter()
            .filter_map(|p| self.by_principal.get(p))
            .flatten()
            .map(|e| &e.assignment)
            .filter(move |a| a.scope.is_at_or_above(scope))
    }

    /// Control plane: may `principals` perform `action` on `resource_scope`?
    pub fn authorize_action(&self, principals: &[PrincipalId], resource_scope: &Scope, action: &str) -> Decision {
        self.authorize_action_with(principals, resource_scope, &RequestContext::new(action))
    }

    /// Control plane with request attributes (e.g. the role being assigned,
    /// for delegation conditions). The action is `context.action()`.
    pub fn authorize_action_with(
        &self,
        principals: &[PrincipalId],
        resource_scope: &Scope,
        context: &RequestContext,
    ) -> Decision {
        self.decide(principals, resource_scope, Check::Control(context.action()), context, true)
    }

    /// Data plane, one data action. `target` supplies the repository name for
    /// conditions (ABAC mode only).
    pub fn authorize_data_action(
        &self,
        principals: &[PrincipalId],
        registry: &Scope,
        mode: RoleAssignmentMode,
        data_action: DataAction,
        target: &DataPlaneTarget,
        environment: &EnvironmentAttributes,
    ) -> Decision {
        let context = data_context(data_action, mode, target, environment);
        self.decide(principals, registry, Check::Data(data_action, mode), &context, true)
    }

    /// Data plane, a token request: which of the requested Docker actions on
    /// `target` are granted, with a decision for each.
    pub fn authorize_data_plane(&self, request: &DataPlaneRequest<'_>) -> DataPlaneDecision {
        self.data_plane(request, true)
    }

    fn data_plane(&self, request: &DataPlaneRequest<'_>, explain: bool) -> DataPlaneDecision {
        let requested_all = request.actions.contains(&DockerAction::All);
        let wanted: Vec<DockerAction> = if request.target == DataPlaneTarget::Catalog {
            vec![DockerAction::All]
        } else {
            let mut list: Vec<DockerAction> = request
                .actions
                .iter()
                .flat_map(|a| if *a == DockerAction::All { DockerAction::CONCRETE.to_vec() } else { vec![*a] })
                .collect();
            list.sort();
            list.dedup();
            list
        };
        let mut decisions = Vec::with_capacity(wanted.len());
        let mut granted = Vec::new();
        for action in wanted {
            let data_actions: &[DataAction] = if request.target == DataPlaneTarget::Catalog {
                &[DataAction::CatalogRead]
            } else {
                action.data_actions()
            };
            let requirements: Vec<Decision> = data_actions
                .iter()
                .map(|&d| {
                    let context = data_context(d, request.mode, &request.target, request.environment);
                    self.decide(request.principals, request.registry, Check::Data(d, request.mode), &context, explain)
                })
                .collect();
            let allowed = requirements.iter().all(Decision::is_allowed);
            if allowed {
                granted.push(action);
            }
            decisions.push(DockerActionDecision { action, allowed, requirements });
        }
        DataPlaneDecision { target: request.target.clone(), mode: request.mode, granted, decisions, requested_all }
    }

    /// For each principal set (own id first, then groups) with any assignment
    /// at or above `registry`: which Docker actions on which repositories (and
    /// the catalog) it would gain or lose if the registry switched from
    /// `from` to `to`. Conditions see no environment attributes.
    pub fn what_if_mode_change(
        &self,
        principal_sets: &[Vec<PrincipalId>],
        registry: &Scope,
        repositories: &[&str],
        from: RoleAssignmentMode,
        to: RoleAssignmentMode,
    ) -> Vec<ModeChangeImpact> {
        let environment = EnvironmentAttributes::default();
        let targets: Vec<DataPlaneTarget> = repositories
            .iter()
            .map(|r| DataPlaneTarget::Repository(r.to_string()))
            .chain([DataPlaneTarget::Catalog])
            .collect();
        let mut impacts = Vec::new();
        for principals in principal_sets {
            if self.assignments_for(principals, registry).next().is_none() {
                continue;
            }
            let mut changes = Vec::new();
            for target in &targets {
                let granted_in = |mode| {
                    let request = DataPlaneRequest {
                        principals,
                        registry,
                        mode,
                        target: target.clone(),
                        actions: &[DockerAction::All],
                        environment: &environment,
                    };
                    self.data_plane(&request, false).granted
                };
                let before = granted_in(from);
                let after = granted_in(to);
                let gained: Vec<DockerAction> = after.iter().filter(|a| !before.contains(a)).copied().collect();
                let lost: Vec<DockerAction> = before.iter().filter(|a| !after.contains(a)).copied().collect();
                if !gained.is_empty() || !lost.is_empty() {
                    changes.push(AccessChange { target: target.clone(), gained, lost });
                }
            }
            impacts.push(ModeChangeImpact { principals: principals.clone(), changes });
        }
        impacts
    }

    fn decide(
        &self,
        principals: &[PrincipalId],
        scope: &Scope,
        check: Check<'_>,
        context: &RequestContext,
        explain: bool,
    ) -> Decision {
        let action = match check {
            Check::Control(a) => a.to_string(),
            Check::Data(d, _) => d.as_str().to_string(),
        };
        let mut considered = Vec::new();
        // The entries of `considered`, so a denial can find the condition
        // without scanning the whole index.
        let mut considered_at: Vec<&IndexedAssignment> = Vec::new();
        for principal in principals {
            let Some(entries) = self.by_principal.get(principal) else {
                continue;
            };
            for entry in entries {
                if !entry.assignment.scope.is_at_or_above(scope) {
                    continue;
                }
                let outcome = self.check_assignment(entry, check, context);
                let granted = matches!(outcome, AssignmentOutcome::Granted { .. });
                considered.push(self.consideration(entry, outcome));
                considered_at.push(entry);
                if granted {
                    let condition_trace = match (&entry.assignment.condition, explain) {
                        (Some(c), true) => Some(c.trace(context)),
                        _ => None,
                    };
                    let last = considered.last().expect("just pushed");
                    let outcome = Outcome::Allowed {
                        assignment_id: last.assignment_id.clone(),
                        role_name: last.role_name.clone(),
                        condition_trace,
                    };
                    return Decision { action, outcome, considered };
                }
            }
        }
        let reason = self.deny_reason(&considered, &considered_at, context, explain);
        Decision { action, outcome: Outcome::Denied(reason), considered }
    }

    fn consideration(&self, entry: &IndexedAssignment, outcome: AssignmentOutcome) -> Consideration {
        let role_name = entry
            .role
            .map(|r| self.roles[r].definition.role_name().to_string())
            .unwrap_or_else(|| entry.assignment.role_definition_id.clone());
        Consideration {
            assignment_id: entry.assignment.id.clone(),
            role_name,
            principal_id: entry.assignment.principal_id.clone(),
            scope: entry.assignment.scope.to_string(),
            outcome,
        }
    }

    fn check_assignment(
        &self,
        entry: &IndexedAssignment,
        check: Check<'_>,
        context: &RequestContext,
    ) -> AssignmentOutcome {
        let Some(role_index) = entry.role else {
            return AssignmentOutcome::RoleDefinitionMissing;
        };
        let role = &self.roles[role_index];
        match check {
            Check::Control(action) => {
                if !role.definition.allows_action(action) {
                    return match role.definition.not_action_excluding(action) {
                        Some(pattern) => AssignmentOutcome::ExcludedBy { pattern },
                        None => AssignmentOutcome::ActionNotInRole,
                    };
                }
            }
            Check::Data(data_action, mode) => {
                if !role.profile.data_plane.honoured_in(mode) {
                    return AssignmentOutcome::RoleNotHonouredInMode { mode };
                }
                let covered = match (mode, data_action.legacy_equivalent()) {
                    (RoleAssignmentMode::LegacyRegistryPermissions, Some(legacy)) => role.grants_legacy(legacy),
                    _ => role.data_actions & data_action.bit() != 0,
                };
                if !covered {
                    let excluded = match (mode, data_action.legacy_equivalent()) {
                        (RoleAssignmentMode::LegacyRegistryPermissions, Some(legacy)) => {
                            role.definition.not_action_excluding(legacy.as_str())
                        }
                        _ => role.definition.not_data_action_excluding(data_action.as_str()),
                    };
                    return match excluded {
                        Some(pattern) => AssignmentOutcome::ExcludedBy { pattern },
                        None => AssignmentOutcome::ActionNotInRole,
                    };
                }
            }
        }
        match &entry.assignment.condition {
            None => AssignmentOutcome::Granted { condition: None },
            Some(condition) => match condition.truth(context) {
                Truth::True => AssignmentOutcome::Granted { condition: Some(Truth::True) },
                other => AssignmentOutcome::ConditionNotMet { outcome: other },
            },
        }
    }

    /// The most informative denial: a failed condition beats an exclusion,
    /// which beats a mode mismatch, which beats "not in role".
    fn deny_reason(
        &self,
        considered: &[Consideration],
        entries: &[&IndexedAssignment],
        context: &RequestContext,
        explain: bool,
    ) -> DenyReason {
        if considered.is_empty() {
            return DenyReason::NoAssignment;
        }
        let failed_condition = considered
            .iter()
            .zip(entries)
            .find(|(c, _)| matches!(c.outcome, AssignmentOutcome::ConditionNotMet { .. }));
        if let Some((c, entry)) = failed_condition {
            let trace =
                entry.assignment.condition.as_ref().filter(|_| explain).map(|cond| cond.trace(context)).unwrap_or_else(
                    || TraceNode {
                        expression: "condition".into(),
                        outcome: match c.outcome {
                            AssignmentOutcome::ConditionNotMet { outcome } => outcome,
                            _ => Truth::Unknown,
                        },
                        note: None,
                        children: Vec::new(),
                    },
                );
            return DenyReason::ConditionNotMet {
                assignment_id: c.assignment_id.clone(),
                role_name: c.role_name.clone(),
                trace,
            };
        }
        let excluded = considered.iter().find_map(|c| match &c.outcome {
            AssignmentOutcome::ExcludedBy { pattern } => Some(DenyReason::ExcludedByNotActions {
                assignment_id: c.assignment_id.clone(),
                role_name: c.role_name.clone(),
                pattern: pattern.clone(),
            }),
            _ => None,
        });
        let not_honoured = || {
            considered.iter().find_map(|c| match c.outcome {
                AssignmentOutcome::RoleNotHonouredInMode { mode } => Some(DenyReason::RoleNotHonouredInMode {
                    assignment_id: c.assignment_id.clone(),
                    role_name: c.role_name.clone(),
                    mode,
                }),
                _ => None,
            })
        };
        if let Some(reason) = excluded.or_else(not_honoured) {
            return reason;
        }
        DenyReason::ActionNotInAnyRole
    }
}

/// The condition context for a data action.
fn data_context(
    data_action: DataAction,
    mode: RoleAssignmentMode,
    target: &DataPlaneTarget,
    environment: &EnvironmentAttributes,
) -> RequestContext {
    let legacy_action = match mode {
        RoleAssignmentMode::LegacyRegistryPermissions => data_action.legacy_equivalent(),
        RoleAssignmentMode::AbacRepositoryPermissions => None,
    };
    let action = legacy_action.map_or(data_action.as_str(), LegacyAction::as_str);
    let context = RequestContext::new(action).with_environment(environment);
    match (target, mode) {
        (DataPlaneTarget::Repository(repo), RoleAssignmentMode::AbacRepositoryPermissions)
            if data_action.is_repository_action() =>
        {
            context.with_repository(repo)
        }
        _ => context,
    }
}
