//! The vocabulary several Wharf crates share, defined once: a registry's role-assignment mode,
//! the kind of principal behind a credential, and the kind of a managed identity.
//!
//! Owns: these three enums, their wire spellings (ARM's and the tokens' PascalCase names through
//! serde; the camelCase words of decisions and logs through `as_str`) and az's CLI spellings.
//! Must never: depend on another Wharf crate or carry behaviour beyond naming; the crates that
//! decide (`wharf-authz`, `wharf-netrules`) and the one that mints tokens (`wharf-identity`) all
//! speak these words without depending on each other.
#![forbid(unsafe_code)]

use std::fmt;

use serde::{Deserialize, Serialize};

/// A registry's `properties.roleAssignmentMode`: which roles grant data-plane access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum RoleAssignmentMode {
    /// "RBAC Registry Permissions" (`az … --role-assignment-mode rbac`). The default.
    #[default]
    LegacyRegistryPermissions,
    /// "RBAC Registry + ABAC Repository Permissions" (`--role-assignment-mode rbac-abac`).
    AbacRepositoryPermissions,
}

impl RoleAssignmentMode {
    pub const ALL: [RoleAssignmentMode; 2] =
        [RoleAssignmentMode::LegacyRegistryPermissions, RoleAssignmentMode::AbacRepositoryPermissions];

    /// ARM's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RoleAssignmentMode::LegacyRegistryPermissions => "LegacyRegistryPermissions",
            RoleAssignmentMode::AbacRepositoryPermissions => "AbacRepositoryPermissions",
        }
    }

    /// ARM's spelling, read back (exact, as ARM's enum values are).
    pub fn parse(value: &str) -> Option<RoleAssignmentMode> {
        RoleAssignmentMode::ALL.into_iter().find(|m| m.as_str() == value)
    }

    /// The az CLI spelling: `rbac` or `rbac-abac`.
    pub fn from_cli(value: &str) -> Option<RoleAssignmentMode> {
        match value {
            "rbac" => Some(RoleAssignmentMode::LegacyRegistryPermissions),
            "rbac-abac" => Some(RoleAssignmentMode::AbacRepositoryPermissions),
            _ => None,
        }
    }

    pub fn is_abac(self) -> bool {
        self == RoleAssignmentMode::AbacRepositoryPermissions
    }
}

impl fmt::Display for RoleAssignmentMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of principal behind a credential: the directory's kinds plus the registry-local
/// credentials that only registry tokens carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PrincipalType {
    User,
    ServicePrincipal,
    ManagedIdentity,
    /// The registry's admin user (username = registry name).
    RegistryAdmin,
    /// A repository-scoped token (scope map).
    RepositoryToken,
    /// An unauthenticated caller of a registry with anonymous pull.
    Anonymous,
    /// A task run's own token for its registry (`loginMode: Default` in the legacy mode).
    TaskRun,
}

impl PrincipalType {
    /// The word decisions, explanations and audit events use (`servicePrincipal`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalType::User => "user",
            PrincipalType::ServicePrincipal => "servicePrincipal",
            PrincipalType::ManagedIdentity => "managedIdentity",
            PrincipalType::RegistryAdmin => "registryAdmin",
            PrincipalType::RepositoryToken => "repositoryToken",
            PrincipalType::Anonymous => "anonymous",
            PrincipalType::TaskRun => "taskRun",
        }
    }

    /// True for the kinds a directory (Entra-like) token can describe.
    pub fn is_directory_principal(self) -> bool {
        matches!(self, PrincipalType::User | PrincipalType::ServicePrincipal | PrincipalType::ManagedIdentity)
    }
}

/// System-assigned (bound to one hosting resource, gone with it) or user-assigned (a resource of
/// its own, attachable to several hosting resources).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ManagedIdentityKind {
    SystemAssigned,
    UserAssigned,
}

impl ManagedIdentityKind {
    pub fn describe(self) -> &'static str {
        match self {
            ManagedIdentityKind::SystemAssigned => "system-assigned identity",
            ManagedIdentityKind::UserAssigned => "user-assigned identity",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_spellings() {
        for m in RoleAssignmentMode::ALL {
            assert_eq!(RoleAssignmentMode::parse(m.as_str()), Some(m));
            assert_eq!(serde_json::to_value(m).unwrap(), m.as_str());
        }
        assert_eq!(RoleAssignmentMode::from_cli("rbac-abac"), Some(RoleAssignmentMode::AbacRepositoryPermissions));
        assert_eq!(RoleAssignmentMode::parse("abac"), None);
        assert_eq!(serde_json::to_value(PrincipalType::ServicePrincipal).unwrap(), "ServicePrincipal");
        assert_eq!(PrincipalType::ServicePrincipal.as_str(), "servicePrincipal");
        assert!(!PrincipalType::RegistryAdmin.is_directory_principal());
        assert_eq!(serde_json::to_value(ManagedIdentityKind::UserAssigned).unwrap(), "UserAssigned");
    }
}
