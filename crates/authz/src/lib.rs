//! wharf-authz: Azure RBAC as Azure Container Registry applies it.
//!
//! Owns: role definitions (built-in and custom), role assignments, Azure's
//! role-assignment condition language (version 2.0) and the decision engine
//! that answers "may these principals do this action here?" for the control
//! plane and for a registry's data plane in either role-assignment mode.
//!
//! Must never: perform I/O, read a clock, keep global mutable state, or know
//! about HTTP. Every input (time, network origin, group membership) arrives as
//! a value and every answer is a value ([`engine::Decision`]) that logs,
//! `check-access` and deny messages all render.
//!
//! Reading order: [`scope`] → [`actions`] → [`roles`] → [`condition`] →
//! [`assignment`] → [`engine`] → [`data_plane`].

#![forbid(unsafe_code)]

pub mod actions;
pub mod assignment;
pub mod condition;
pub mod data_plane;
pub mod engine;
pub mod error;
pub mod roles;
pub mod scope;

pub use actions::{Permission, action_matches};
pub use assignment::{
    AssignmentLimits, AssignmentPrincipalType, ExistingAssignments, PrincipalId, RoleAssignment, check_new_assignment,
};
pub use condition::{Condition, EnvironmentAttributes, ParseError, RequestContext};
pub use data_plane::{DataAction, DataPlaneOperation, DataPlaneTarget, DockerAction, RoleAssignmentMode, ScopeAction};
pub use engine::{
    AssignmentIndex, DataPlaneDecision, DataPlaneRequest, Decision, DenyReason, DockerActionDecision, Outcome,
};
pub use error::{AssignmentError, RoleDefinitionError, ScopeError};
pub use roles::{RoleDefinition, RoleType};
pub use scope::Scope;
