//! Role assignments: the ARM JSON shape and the rules ARM applies before it
//! stores one.
//!
//! Owns: `RoleAssignment` (scope, role, principal, optional condition), the
//! condition/conditionVersion rules (a condition needs version "2.0", which is
//! the default when a condition is given; a version without a condition is an
//! error), per-role condition support (Catalog Lister and the legacy Acr* roles
//! reject conditions), the "same (principal, role, scope) with and without a
//! condition" conflict, and the per-subscription count limit
//! (`RoleAssignmentLimitExceeded`, default 4000).
//!
//! Must never: store anything or pick ids/timestamps itself; the caller passes
//! the existing assignments, the new GUID and the time.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::condition::{CONDITION_VERSION, Condition};
use crate::error::AssignmentError;
use crate::roles::{RoleDefinition, role_guid_from_id};
use crate::scope::Scope;

/// ARM resource type of role assignments.
pub const ROLE_ASSIGNMENT_TYPE: &str = "Microsoft.Authorization/roleAssignments";
/// Azure's default limit of role assignments per subscription.
pub const DEFAULT_MAX_ASSIGNMENTS_PER_SUBSCRIPTION: usize = 4000;
/// "A description can be up to 2 KB long."
pub const MAX_ASSIGNMENT_DESCRIPTION_CHARS: usize = 2048;

/// A principal's object id, compared case-insensitively (stored lower-cased).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PrincipalId(String);

impl PrincipalId {
    pub fn new(id: &str) -> Result<PrincipalId, AssignmentError> {
        let trimmed = id.trim();
        if trimmed.is_empty() || trimmed.len() != id.len() || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AssignmentError::Invalid(format!("'{id}' is not a valid principal id")));
        }
        Ok(PrincipalId(id.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PrincipalId {
    type Error = AssignmentError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PrincipalId::new(&value)
    }
}

impl From<PrincipalId> for String {
    fn from(p: PrincipalId) -> String {
        p.0
    }
}

impl fmt::Display for PrincipalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ARM's `principalType` of a role assignment (not the kind of a credential, which is
/// `wharf_vocab::PrincipalType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AssignmentPrincipalType {
    User,
    ServicePrincipal,
    Group,
}

/// A role assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RoleAssignmentJson", into = "RoleAssignmentJson")]
pub struct RoleAssignment {
    /// The assignment's GUID (its ARM `name`), lower-cased.
    pub id: String,
    pub scope: Scope,
    /// Full role definition id (`…/providers/Microsoft.Authorization/roleDefinitions/{guid}`).
    pub role_definition_id: String,
    pub principal_id: PrincipalId,
    pub principal_type: AssignmentPrincipalType,
    pub condition: Option<Condition>,
    /// "2.0" whenever `condition` is set, `None` otherwise.
    pub condition_version: Option<String>,
    pub description: Option<String>,
    pub created_on: Option<DateTime<Utc>>,
    pub updated_on: Option<DateTime<Utc>>,
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
}

impl RoleAssignment {
    /// A new unconditional assignment. `id` must be a GUID.
    pub fn new(
        id: &str,
        scope: Scope,
        role_definition_id: &str,
        principal_id: PrincipalId,
        principal_type: AssignmentPrincipalType,
    ) -> Result<RoleAssignment, AssignmentError> {
        let id = role_guid_from_id(id).ok_or_else(|| AssignmentError::InvalidGuid(id.to_string()))?;
        let role_guid = role_guid_from_id(role_definition_id)
            .ok_or_else(|| AssignmentError::RoleDefinitionNotFound(role_definition_id.to_string()))?;
        let role_definition_id = if role_definition_id.contains('/') {
            role_definition_id.to_string()
        } else {
            format!("/providers/Microsoft.Authorization/roleDefinitions/{role_guid}")
        };
        Ok(RoleAssignment {
            id,
            scope,
            role_definition_id,
            principal_id,
            principal_type,
            condition: None,
            condition_version: None,
            description: None,
            created_on: None,
            updated_on: None,
            created_by: None,
            updated_by: None,
        })
    }

    /// Attaches a condition (version 2.0).
    pub fn with_condition(mut self, condition: Condition) -> RoleAssignment {
        self.condition = Some(condition);
        self.condition_version = Some(CONDITION_VERSION.to_string());
        self
    }

    pub fn with_description(mut self, description: &str) -> RoleAssignment {
        self.description = Some(description.to_string());
        self
    }

    /// The lower-cased GUID of the assigned role.
    pub fn role_guid(&self) -> String {
        role_guid_from_id(&self.role_definition_id).unwrap_or_default()
    }

    /// The ARM id: `{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}`.
    pub fn arm_id(&self) -> String {
        let scope = if self.scope.as_str() == "/" { "" } else { self.scope.as_str() };
        format!("{scope}/providers/{ROLE_ASSIGNMENT_TYPE}/{}", self.id)
    }

    fn same_tuple(&self, other: &RoleAssignment) -> bool {
        self.principal_id == other.principal_id && self.role_guid() == other.role_guid() && self.scope == other.scope
    }
}

/// Applies az/ARM's rules to the `condition` and `conditionVersion` of a
/// request: parses the condition, defaults the version to "2.0", rejects any
/// other version and a version without a condition.
pub fn condition_from_request(
    condition: Option<&str>,
    condition_version: Option<&str>,
) -> Result<(Option<Condition>, Option<String>), AssignmentError> {
    let condition = condition.filter(|c| !c.trim().is_empty());
    match (condition, condition_version) {
        (None, None) => Ok((None, None)),
        (None, Some(_)) => Err(AssignmentError::ConditionVersionWithoutCondition),
        (Some(text), version) => {
            let version = version.unwrap_or(CONDITION_VERSION);
            if version != CONDITION_VERSION {
                return Err(AssignmentError::InvalidConditionVersion(version.to_string()));
            }
            let parsed = Condition::parse(text).map_err(|e| AssignmentError::InvalidCondition(Box::new(e)))?;
            Ok((Some(parsed), Some(CONDITION_VERSION.to_string())))
        }
    }
}

/// Rules that concern one assignment and its role.
pub fn validate_assignment(assignment: &RoleAssignment, role: &RoleDefinition) -> Result<(), AssignmentError> {
    if role.guid() != assignment.role_guid() {
        return Err(AssignmentError::RoleDefinitionNotFound(assignment.role_definition_id.clone()));
    }
    match (&assignment.condition, assignment.condition_version.as_deref()) {
        (None, Some(_)) => return Err(AssignmentError::ConditionVersionWithoutCondition),
        (Some(_), Some(v)) if v != CONDITION_VERSION => {
            return Err(AssignmentError::InvalidConditionVersion(v.to_string()));
        }
        _ => {}
    }
    if assignment.condition.is_some() && !role.profile().conditions.accepts_conditions() {
        return Err(AssignmentError::ConditionNotSupported { role_name: role.role_name().to_string() });
    }
    if let Some(description) = &assignment.description {
        let length = description.chars().count();
        if length > MAX_ASSIGNMENT_DESCRIPTION_CHARS {
            return Err(AssignmentError::DescriptionTooLong { length, limit: MAX_ASSIGNMENT_DESCRIPTION_CHARS });
        }
    }
    let assignable = role
        .properties
        .assignable_scopes
        .iter()
        .filter_map(|s| Scope::parse(s).ok())
        .any(|s| s.is_at_or_above(&assignment.scope));
    if !assignable {
        return Err(AssignmentError::ScopeNotAssignable {
            role_name: role.role_name().to_string(),
            scope: assignment.scope.to_string(),
        });
    }
    Ok(())
}

/// Limits on role assignments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssignmentLimits {
    /// Maximum assignments in one subscription (Azure: 4000).
    pub max_per_subscription: usize,
}

impl Default for AssignmentLimits {
    fn default() -> Self {
        AssignmentLimits { max_per_subscription: DEFAULT_MAX_ASSIGNMENTS_PER_SUBSCRIPTION }
    }
}

/// The existing assignments a new one is checked against: a slice, or the engine's index
/// (which answers without scanning every assignment).
pub trait ExistingAssignments {
    /// The assignment whose GUID is `guid` (any case), at whatever scope.
    fn by_guid(&self, guid: &str) -> Option<&RoleAssignment>;
    /// The assignments of `principal` (not of its groups).
    fn of_principal<'a>(&'a self, principal: &'a PrincipalId) -> Box<dyn Iterator<Item = &'a RoleAssignment> + 'a>;
    /// How many assignments have a scope in `subscription`.
    fn count_in_subscription(&self, subscription: &str) -> usize;
}

impl ExistingAssignments for [RoleAssignment] {
    fn by_guid(&self, guid: &str) -> Option<&RoleAssignment> {
        self.iter().find(|e| e.id.eq_ignore_ascii_case(guid))
    }

    fn of_principal<'a>(&'a self, principal: &'a PrincipalId) -> Box<dyn Iterator<Item = &'a RoleAssignment> + 'a> {
        Box::new(self.iter().filter(move |e| &e.principal_id == principal))
    }

    fn count_in_subscription(&self, subscription: &str) -> usize {
        self.iter().filter(|e| e.scope.subscription_id().is_some_and(|s| s.eq_ignore_ascii_case(subscription))).count()
    }
}

/// Everything ARM checks before creating (or updating, same id) `new`.
pub fn check_new_assignment<E: ExistingAssignments + ?Sized>(
    new: &RoleAssignment,
    role: &RoleDefinition,
    existing: &E,
    limits: AssignmentLimits,
) -> Result<(), AssignmentError> {
    validate_assignment(new, role)?;
    let previous = existing.by_guid(&new.id);
    if let Some(previous) = previous
        && !previous.same_tuple(new)
    {
        return Err(AssignmentError::UpdateNotPermitted { existing_id: previous.id.clone() });
    }
    for other in existing.of_principal(&new.principal_id).filter(|e| e.id != new.id && e.same_tuple(new)) {
        match (&other.condition, &new.condition) {
            (None, None) => {
                return Err(AssignmentError::AlreadyExists { existing_id: other.id.clone() });
            }
            (Some(a), Some(b)) if a.expr() == b.expr() => {
                return Err(AssignmentError::AlreadyExists { existing_id: other.id.clone() });
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(AssignmentError::ConditionConflict {
                    existing_id: other.id.clone(),
                    existing_has_condition: other.condition.is_some(),
                });
            }
            (Some(_), Some(_)) => {}
        }
    }
    if let Some(subscription) = new.scope.subscription_id() {
        let in_subscription =
            |a: &RoleAssignment| a.scope.subscription_id().is_some_and(|s| s.eq_ignore_ascii_case(subscription));
        // An update does not add one.
        let count = existing.count_in_subscription(subscription) - usize::from(previous.is_some_and(in_subscription));
        if count >= limits.max_per_subscription {
            return Err(AssignmentError::LimitExceeded { count, limit: limits.max_per_subscription });
        }
    }
    Ok(())
}

/// ARM wire shape.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RoleAssignmentJson {
    id: String,
    name: String,
    #[serde(rename = "type")]
    resource_type: String,
    properties: RoleAssignmentPropertiesJson,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoleAssignmentPropertiesJson {
    role_definition_id: String,
    principal_id: String,
    principal_type: AssignmentPrincipalType,
    scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    condition: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    condition_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_on: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_on: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated_by: Option<String>,
}

impl From<RoleAssignment> for RoleAssignmentJson {
    fn from(a: RoleAssignment) -> Self {
        RoleAssignmentJson {
            id: a.arm_id(),
            name: a.id.clone(),
            resource_type: ROLE_ASSIGNMENT_TYPE.to_string(),
            properties: RoleAssignmentPropertiesJson {
                role_definition_id: a.role_definition_id,
                principal_id: a.principal_id.0,
                principal_type: a.principal_type,
                scope: a.scope.to_string(),
                condition: a.condition.map(|c| c.text().to_string()),
                condition_version: a.condition_version,
                description: a.description,
                created_on: a.created_on,
                updated_on: a.updated_on,
                created_by: a.created_by,
                updated_by: a.updated_by,
            },
        }
    }
}

impl TryFrom<RoleAssignmentJson> for RoleAssignment {
    type Error = AssignmentError;
    fn try_from(j: RoleAssignmentJson) -> Result<Self, Self::Error> {
        let p = j.properties;
        let scope = Scope::parse(&p.scope)?;
        let (condition, condition_version) =
            condition_from_request(p.condition.as_deref(), p.condition_version.as_deref())?;
        let mut a = RoleAssignment::new(
            &j.name,
            scope,
            &p.role_definition_id,
            PrincipalId::new(&p.principal_id)?,
            p.principal_type,
        )?;
        a.condition = condition;
        a.condition_version = condition_version;
        a.description = p.description;
        a.created_on = p.created_on;
        a.updated_on = p.updated_on;
        a.created_by = p.created_by;
        a.updated_by = p.updated_by;
        Ok(a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::roles::built_in_role_by_name;

    const SUB: &str = "00000000-0000-0000-0000-00000000000a";
    const P1: &str = "11111111-1111-1111-1111-111111111111";
    const REPO_COND: &str =
        "@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase 'hello-world'";

    fn registry() -> Scope {
        Scope::registry(SUB, "rg", "reg").unwrap()
    }

    fn assignment(id_suffix: u32, role: &str, condition: Option<&str>) -> (RoleAssignment, RoleDefinition) {
        let role = built_in_role_by_name(role).unwrap();
        let id = format!("aaaaaaaa-0000-0000-0000-{id_suffix:012}");
        let mut a = RoleAssignment::new(
            &id,
            registry(),
            &role.id,
            PrincipalId::new(P1).unwrap(),
            AssignmentPrincipalType::User,
        )
        .unwrap();
        if let Some(c) = condition {
            a = a.with_condition(Condition::parse(c).unwrap());
        }
        (a, role)
    }

    #[test]
    fn condition_version_rules() {
        assert_eq!(condition_from_request(None, None).unwrap(), (None, None));
        let (c, v) = condition_from_request(Some(REPO_COND), None).unwrap();
        assert!(c.is_some());
        assert_eq!(v.as_deref(), Some("2.0"));
        assert!(matches!(
            condition_from_request(Some(REPO_COND), Some("1.0")),
            Err(AssignmentError::InvalidConditionVersion(v)) if v == "1.0"
        ));
        assert_eq!(condition_from_request(None, Some("2.0")).unwrap_err().code(), "InvalidConditionVersion");
        let err = condition_from_request(Some("a AND"), None).unwrap_err();
        assert_eq!(err.code(), "InvalidCondition");
    }

    #[test]
    fn catalog_lister_rejects_conditions() {
        let (a, role) = assignment(1, "Container Registry Repository Catalog Lister", Some(REPO_COND));
        let err = validate_assignment(&a, &role).unwrap_err();
        assert_eq!(err.code(), "ConditionNotSupported");
        let (a, role) = assignment(1, "Container Registry Repository Catalog Lister", None);
        assert!(validate_assignment(&a, &role).is_ok());
        let (a, role) = assignment(1, "AcrPull", Some(REPO_COND));
        assert!(validate_assignment(&a, &role).is_err());
        let (a, role) = assignment(1, "Container Registry Repository Reader", Some(REPO_COND));
        assert!(validate_assignment(&a, &role).is_ok());
    }

    #[test]
    fn with_and_without_condition_conflict() {
        let (with, role) = assignment(1, "Container Registry Repository Reader", Some(REPO_COND));
        let (without, _) = assignment(2, "Container Registry Repository Reader", None);
        let err = check_new_assignment(&without, &role, std::slice::from_ref(&with), AssignmentLimits::default())
            .unwrap_err();
        assert!(matches!(err, AssignmentError::ConditionConflict { existing_has_condition: true, .. }));
        let err = check_new_assignment(&with, &role, std::slice::from_ref(&without), AssignmentLimits::default())
            .unwrap_err();
        assert!(matches!(err, AssignmentError::ConditionConflict { existing_has_condition: false, .. }));
        // Two different conditions on the same tuple are fine; the same one twice is a duplicate.
        let (other_cond, _) =
            assignment(3, "Container Registry Repository Reader", Some(&REPO_COND.replace("hello-world", "x")));
        assert!(
            check_new_assignment(&other_cond, &role, std::slice::from_ref(&with), AssignmentLimits::default()).is_ok()
        );
        let (same_cond, _) = assignment(4, "Container Registry Repository Reader", Some(REPO_COND));
        assert_eq!(
            check_new_assignment(&same_cond, &role, std::slice::from_ref(&with), AssignmentLimits::default())
                .unwrap_err()
                .code(),
            "RoleAssignmentExists"
        );
        // Updating an assignment in place is not a conflict with itself.
        assert!(check_new_assignment(&with, &role, std::slice::from_ref(&with), AssignmentLimits::default()).is_ok());
    }

    #[test]
    fn limit_per_subscription() {
        let (new, role) = assignment(99, "AcrPull", None);
        let existing: Vec<RoleAssignment> = (0..3)
            .map(|i| {
                let (mut a, _) = assignment(i, "AcrPush", None);
                a.principal_id = PrincipalId::new(&format!("p{i}")).unwrap();
                a
            })
            .collect();
        let limits = AssignmentLimits { max_per_subscription: 3 };
        let err = check_new_assignment(&new, &role, existing.as_slice(), limits).unwrap_err();
        assert_eq!(err.code(), "RoleAssignmentLimitExceeded");
        assert!(check_new_assignment(&new, &role, &existing[..2], limits).is_ok());
    }

    #[test]
    fn update_of_tuple_is_rejected() {
        let (a, _) = assignment(1, "AcrPull", None);
        let (mut b, role_b) = assignment(1, "AcrPush", None);
        b.id = a.id.clone();
        assert_eq!(
            check_new_assignment(&b, &role_b, &[a][..], AssignmentLimits::default()).unwrap_err().code(),
            "RoleAssignmentUpdateNotPermitted"
        );
    }

    #[test]
    fn arm_json_round_trip() {
        let (mut a, _) = assignment(7, "Container Registry Repository Reader", Some(REPO_COND));
        a.description = Some("pull hello-world".into());
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["type"], "Microsoft.Authorization/roleAssignments");
        assert_eq!(v["name"], "aaaaaaaa-0000-0000-0000-000000000007");
        assert!(
            v["id"]
                .as_str()
                .unwrap()
                .ends_with("/providers/Microsoft.Authorization/roleAssignments/aaaaaaaa-0000-0000-0000-000000000007")
        );
        assert_eq!(v["properties"]["condition"], REPO_COND);
        assert_eq!(v["properties"]["conditionVersion"], "2.0");
        assert_eq!(v["properties"]["principalType"], "User");
        let back: RoleAssignment = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
        let bad = serde_json::json!({"id":"x","name":"aaaaaaaa-0000-0000-0000-000000000007","type":"t","properties":{
            "roleDefinitionId": a.role_definition_id, "principalId": P1, "principalType": "User",
            "scope": a.scope.to_string(), "condition": "a AND b OR c"}});
        assert!(serde_json::from_value::<RoleAssignment>(bad).is_err());
    }
}
