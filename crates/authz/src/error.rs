//! Error enums for scopes, role definitions and role assignments, each with
//! the ARM error code it maps to (`code()`), so the HTTP layer maps them in
//! one place. Condition parse errors live in `condition::error` because they
//! carry source spans.
//!
//! Must never: format wire bodies; that belongs to the server.

use thiserror::Error;

use crate::condition::ParseError;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScopeError {
    #[error("the scope '{0}' must start with '/'")]
    NotAbsolute(String),
    #[error("the scope '{scope}' contains the invalid character {found:?}")]
    InvalidCharacter { scope: String, found: char },
    #[error("the scope '{0}' has an empty or padded segment")]
    EmptySegment(String),
    #[error("the scope '{0}' has a '.' or '..' segment")]
    RelativeSegment(String),
    #[error(
        "the scope '{0}' is not a valid ARM scope (expected /subscriptions/{{id}}[/resourceGroups/{{rg}}[/providers/{{namespace}}/{{type}}/{{name}}]])"
    )]
    Malformed(String),
}

impl ScopeError {
    pub fn code(&self) -> &'static str {
        "InvalidScope"
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RoleDefinitionError {
    #[error("the role definition is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("the role definition has an unknown property '{0}'")]
    UnknownProperty(String),
    #[error("the role definition gives the property '{0}' twice")]
    DuplicateProperty(String),
    #[error("the property '{key}' must be {expected}")]
    WrongType { key: String, expected: &'static str },
    #[error("the role definition needs a name")]
    MissingName,
    #[error("the role name is {length} characters long; the limit is {limit}")]
    NameTooLong { length: usize, limit: usize },
    #[error("the role description is {length} characters long; the limit is {limit}")]
    DescriptionTooLong { length: usize, limit: usize },
    #[error("the role definition must grant at least one action or data action")]
    NoPermissions,
    #[error("the action '{action}' is invalid: {reason}")]
    InvalidAction { action: String, reason: String },
    #[error("the role definition needs at least one assignable scope")]
    NoAssignableScopes,
    #[error("invalid assignable scope: {0}")]
    InvalidScope(String),
    #[error("the root scope '/' is reserved for built-in roles")]
    RootScopeNotAllowed,
    #[error("'{0}' is not a valid role definition id")]
    InvalidId(String),
    #[error("a role definition named '{0}' already exists")]
    NameExists(String),
}

impl RoleDefinitionError {
    pub fn code(&self) -> &'static str {
        match self {
            RoleDefinitionError::InvalidAction { .. } => "InvalidActionOrNotAction",
            RoleDefinitionError::NoAssignableScopes
            | RoleDefinitionError::InvalidScope(_)
            | RoleDefinitionError::RootScopeNotAllowed => "InvalidAssignableScopes",
            RoleDefinitionError::NameExists(_) => "RoleDefinitionWithSameNameExists",
            _ => "InvalidRoleDefinition",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum AssignmentError {
    #[error("the condition is invalid: {0}")]
    InvalidCondition(Box<ParseError>),
    #[error("conditionVersion '{0}' is not supported; the only supported version is 2.0")]
    InvalidConditionVersion(String),
    #[error("conditionVersion is set but the role assignment has no condition")]
    ConditionVersionWithoutCondition,
    #[error("the role '{role_name}' does not support conditions")]
    ConditionNotSupported { role_name: String },
    #[error("the role assignment's description is {length} characters long; the limit is {limit}")]
    DescriptionTooLong { length: usize, limit: usize },
    #[error("the role definition '{0}' does not exist")]
    RoleDefinitionNotFound(String),
    #[error("the role '{role_name}' cannot be assigned at scope '{scope}'")]
    ScopeNotAssignable { role_name: String, scope: String },
    #[error("the role assignment already exists (id {existing_id})")]
    AlreadyExists { existing_id: String },
    #[error(
        "a role assignment for the same principal, role and scope already exists {} a condition (id {existing_id}); the same assignment cannot exist both with and without a condition",
        if *.existing_has_condition { "with" } else { "without" }
    )]
    ConditionConflict { existing_id: String, existing_has_condition: bool },
    #[error(
        "role assignment {existing_id} already exists for another principal, role or scope; those cannot be changed"
    )]
    UpdateNotPermitted { existing_id: String },
    #[error("the subscription already has {count} role assignments; the limit is {limit}")]
    LimitExceeded { count: usize, limit: usize },
    #[error("'{0}' is not a valid GUID")]
    InvalidGuid(String),
    #[error("invalid role assignment: {0}")]
    Invalid(String),
    #[error(transparent)]
    Scope(#[from] ScopeError),
}

impl AssignmentError {
    /// The ARM error code.
    pub fn code(&self) -> &'static str {
        match self {
            AssignmentError::InvalidCondition(_) => "InvalidCondition",
            AssignmentError::InvalidConditionVersion(_) | AssignmentError::ConditionVersionWithoutCondition => {
                "InvalidConditionVersion"
            }
            AssignmentError::ConditionNotSupported { .. } => "ConditionNotSupported",
            AssignmentError::DescriptionTooLong { .. } => "InvalidDescription",
            AssignmentError::RoleDefinitionNotFound(_) => "RoleDefinitionDoesNotExist",
            AssignmentError::ScopeNotAssignable { .. } => "InvalidRoleAssignmentScope",
            AssignmentError::AlreadyExists { .. } => "RoleAssignmentExists",
            AssignmentError::ConditionConflict { .. } => "RoleAssignmentConditionConflict",
            AssignmentError::LimitExceeded { .. } => "RoleAssignmentLimitExceeded",
            AssignmentError::UpdateNotPermitted { .. } => "RoleAssignmentUpdateNotPermitted",
            AssignmentError::InvalidGuid(_) => "InvalidRoleAssignmentId",
            AssignmentError::Invalid(_) => "InvalidRoleAssignmentRequest",
            AssignmentError::Scope(e) => e.code(),
        }
    }
}
