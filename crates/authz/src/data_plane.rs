//! The data-plane vocabulary of a registry and how it maps onto Azure actions.
//!
//! Owns: the registry's role-assignment mode, Docker token scope actions, ACR
//! data actions, legacy registry actions, and the per-endpoint table. These
//! tables are data: the server parses a request into a [`DataPlaneOperation`]
//! and asks this module what it needs.
//!
//! Docker scope action → what must be permitted (one table):
//!
//! | Docker action (`repository:<r>:…`) | ABAC mode: data actions (all required)            | Legacy mode: action                                  |
//! |------------------------------------|---------------------------------------------------|------------------------------------------------------|
//! | `pull`                             | `repositories/content/read`                       | `registries/pull/read`                               |
//! | `metadata_read`                    | `repositories/metadata/read`                      | `registries/pull/read`                               |
//! | `push`                             | `repositories/content/write` + `repositories/metadata/write` | `registries/push/write`                   |
//! | `metadata_write`                   | `repositories/metadata/write`                     | `registries/push/write`                              |
//! | `delete`                           | `repositories/content/delete` + `repositories/metadata/delete` | `registries/artifacts/delete`           |
//! | `*`                                | each of the five above, separately                | each of the five above, separately                   |
//! | `registry:catalog:*`               | `registries/catalog/read`                         | `registries/pull/read`                               |
//!
//! (`repositories/…` is `Microsoft.ContainerRegistry/registries/repositories/…`.)
//! Owner/Contributor (`*`) and Reader (`*/read`) reach the legacy actions
//! through their wildcards; that is the only way control-plane roles reach the
//! data plane, and only in legacy mode.
//!
//! Endpoint → required data actions and Docker scope action (one table,
//! [`DataPlaneOperation::requirements`]):
//!
//! | Operation                          | Data actions (ABAC)                        | Docker scope action |
//! |------------------------------------|--------------------------------------------|---------------------|
//! | `PullBlob`, `PullManifest`         | content/read                               | pull                |
//! | `MountSource` (source repository)  | content/read                               | pull                |
//! | `ListTags`, `ListReferrers`        | metadata/read                              | pull                |
//! | `PushBlob`                         | content/write                              | push                |
//! | `PushManifest{creates_or_moves_tag: false}` | content/write                     | push                |
//! | `PushManifest{creates_or_moves_tag: true}`  | content/write + metadata/write    | push                |
//! | `DeleteManifest`, `DeleteBlob`     | content/delete                             | delete              |
//! | `DeleteTag`                        | metadata/delete                            | delete              |
//! | `DeleteRepository`                 | content/delete + metadata/delete           | delete              |
//! | `AcrMetadataRead`                  | metadata/read                              | metadata_read       |
//! | `AcrMetadataWrite`                 | metadata/write                             | metadata_write      |
//! | `Catalog`                          | catalog/read                               | registry:catalog:*  |
//!
//! Must never: decide who may do what; `engine` does.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `properties.roleAssignmentMode` of a registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum RegistryMode {
    /// "RBAC Registry Permissions" (`az … --role-assignment-mode rbac`). The default.
    #[default]
    LegacyRegistryPermissions,
    /// "RBAC Registry + ABAC Repository Permissions" (`--role-assignment-mode rbac-abac`).
    AbacRepositoryPermissions,
}

impl RegistryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistryMode::LegacyRegistryPermissions => "LegacyRegistryPermissions",
            RegistryMode::AbacRepositoryPermissions => "AbacRepositoryPermissions",
        }
    }

    /// The az CLI spelling: `rbac` or `rbac-abac`.
    pub fn from_cli(value: &str) -> Option<RegistryMode> {
        match value {
            "rbac" => Some(RegistryMode::LegacyRegistryPermissions),
            "rbac-abac" => Some(RegistryMode::AbacRepositoryPermissions),
            _ => None,
        }
    }
}

impl fmt::Display for RegistryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ACR data action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DataAction {
    ContentRead,
    ContentWrite,
    ContentDelete,
    MetadataRead,
    MetadataWrite,
    MetadataDelete,
    CatalogRead,
    QuarantinedArtifactsRead,
    QuarantinedArtifactsWrite,
    TrustedCollectionsWrite,
}

impl DataAction {
    pub const ALL: [DataAction; 10] = [
        DataAction::ContentRead,
        DataAction::ContentWrite,
        DataAction::ContentDelete,
        DataAction::MetadataRead,
        DataAction::MetadataWrite,
        DataAction::MetadataDelete,
        DataAction::CatalogRead,
        DataAction::QuarantinedArtifactsRead,
        DataAction::QuarantinedArtifactsWrite,
        DataAction::TrustedCollectionsWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DataAction::ContentRead => "Microsoft.ContainerRegistry/registries/repositories/content/read",
            DataAction::ContentWrite => "Microsoft.ContainerRegistry/registries/repositories/content/write",
            DataAction::ContentDelete => "Microsoft.ContainerRegistry/registries/repositories/content/delete",
            DataAction::MetadataRead => "Microsoft.ContainerRegistry/registries/repositories/metadata/read",
            DataAction::MetadataWrite => "Microsoft.ContainerRegistry/registries/repositories/metadata/write",
            DataAction::MetadataDelete => "Microsoft.ContainerRegistry/registries/repositories/metadata/delete",
            DataAction::CatalogRead => "Microsoft.ContainerRegistry/registries/catalog/read",
            DataAction::QuarantinedArtifactsRead => "Microsoft.ContainerRegistry/registries/quarantinedArtifacts/read",
            DataAction::QuarantinedArtifactsWrite => {
                "Microsoft.ContainerRegistry/registries/quarantinedArtifacts/write"
            }
            DataAction::TrustedCollectionsWrite => "Microsoft.ContainerRegistry/registries/trustedCollections/write",
        }
    }

    pub fn parse(text: &str) -> Option<DataAction> {
        DataAction::ALL.into_iter().find(|a| a.as_str().eq_ignore_ascii_case(text))
    }

    /// The ABAC repository family (`registries/repositories/*`): the actions
    /// whose conditions see the repository name.
    pub fn is_repository_action(self) -> bool {
        self.as_str().starts_with("Microsoft.ContainerRegistry/registries/repositories/")
    }

    /// Bit for compact sets.
    pub(crate) fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The legacy action that carries the same permission in legacy mode, if
    /// the data action is checked through one there.
    pub fn legacy_equivalent(self) -> Option<LegacyAction> {
        match self {
            DataAction::ContentRead | DataAction::MetadataRead | DataAction::CatalogRead => {
                Some(LegacyAction::PullRead)
            }
            DataAction::ContentWrite | DataAction::MetadataWrite => Some(LegacyAction::PushWrite),
            DataAction::ContentDelete | DataAction::MetadataDelete => Some(LegacyAction::ArtifactsDelete),
            _ => None,
        }
    }
}

impl fmt::Display for DataAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The control-plane actions legacy mode checks for data-plane access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegacyAction {
    PullRead,
    PushWrite,
    ArtifactsDelete,
}

impl LegacyAction {
    pub const ALL: [LegacyAction; 3] = [LegacyAction::PullRead, LegacyAction::PushWrite, LegacyAction::ArtifactsDelete];

    pub fn as_str(self) -> &'static str {
        match self {
            LegacyAction::PullRead => "Microsoft.ContainerRegistry/registries/pull/read",
            LegacyAction::PushWrite => "Microsoft.ContainerRegistry/registries/push/write",
            LegacyAction::ArtifactsDelete => "Microsoft.ContainerRegistry/registries/artifacts/delete",
        }
    }
}

/// A Docker token scope action (`repository:<name>:<action>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DockerAction {
    #[serde(rename = "pull")]
    Pull,
    #[serde(rename = "push")]
    Push,
    #[serde(rename = "delete")]
    Delete,
    #[serde(rename = "metadata_read")]
    MetadataRead,
    #[serde(rename = "metadata_write")]
    MetadataWrite,
    #[serde(rename = "*")]
    All,
}

impl DockerAction {
    /// The five concrete actions `*` stands for.
    pub const CONCRETE: [DockerAction; 5] = [
        DockerAction::Pull,
        DockerAction::Push,
        DockerAction::Delete,
        DockerAction::MetadataRead,
        DockerAction::MetadataWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DockerAction::Pull => "pull",
            DockerAction::Push => "push",
            DockerAction::Delete => "delete",
            DockerAction::MetadataRead => "metadata_read",
            DockerAction::MetadataWrite => "metadata_write",
            DockerAction::All => "*",
        }
    }

    pub fn parse(text: &str) -> Option<DockerAction> {
        DockerAction::CONCRETE.into_iter().chain([DockerAction::All]).find(|a| a.as_str() == text)
    }

    /// The data actions this Docker action needs in ABAC mode (all of them).
    /// `*` is not a single requirement; expand it with [`DockerAction::CONCRETE`].
    pub fn data_actions(self) -> &'static [DataAction] {
        match self {
            DockerAction::Pull => &[DataAction::ContentRead],
            DockerAction::MetadataRead => &[DataAction::MetadataRead],
            DockerAction::Push => &[DataAction::ContentWrite, DataAction::MetadataWrite],
            DockerAction::MetadataWrite => &[DataAction::MetadataWrite],
            DockerAction::Delete => &[DataAction::ContentDelete, DataAction::MetadataDelete],
            DockerAction::All => &[],
        }
    }

    /// The legacy action this Docker action needs in legacy mode.
    pub fn legacy_action(self) -> Option<LegacyAction> {
        match self {
            DockerAction::Pull | DockerAction::MetadataRead => Some(LegacyAction::PullRead),
            DockerAction::Push | DockerAction::MetadataWrite => Some(LegacyAction::PushWrite),
            DockerAction::Delete => Some(LegacyAction::ArtifactsDelete),
            DockerAction::All => None,
        }
    }
}

impl fmt::Display for DockerAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a data-plane request is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DataPlaneTarget {
    /// A repository, by its full name (`backend/api`).
    Repository(String),
    /// The registry's catalog (`registry:catalog:*`).
    Catalog,
}

impl fmt::Display for DataPlaneTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataPlaneTarget::Repository(r) => write!(f, "repository '{r}'"),
            DataPlaneTarget::Catalog => f.write_str("the catalog"),
        }
    }
}

/// The Docker scope action an endpoint requires in its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeAction {
    /// `repository:<name>:<action>`.
    Repository(DockerAction),
    /// `registry:catalog:*`.
    Catalog,
}

/// A parsed data-plane endpoint, as far as authorization is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataPlaneOperation {
    PullBlob,
    PullManifest,
    PushBlob,
    PushManifest {
        creates_or_moves_tag: bool,
    },
    DeleteManifest,
    DeleteTag,
    DeleteBlob,
    ListTags,
    ListReferrers,
    Catalog,
    AcrMetadataRead,
    AcrMetadataWrite,
    DeleteRepository,
    /// The source side of a cross-repository blob mount.
    MountSource,
}

impl DataPlaneOperation {
    /// Every operation (both `PushManifest` variants), for table tests and docs.
    pub const ALL: [DataPlaneOperation; 15] = [
        DataPlaneOperation::PullBlob,
        DataPlaneOperation::PullManifest,
        DataPlaneOperation::PushBlob,
        DataPlaneOperation::PushManifest { creates_or_moves_tag: false },
        DataPlaneOperation::PushManifest { creates_or_moves_tag: true },
        DataPlaneOperation::DeleteManifest,
        DataPlaneOperation::DeleteTag,
        DataPlaneOperation::DeleteBlob,
        DataPlaneOperation::ListTags,
        DataPlaneOperation::ListReferrers,
        DataPlaneOperation::Catalog,
        DataPlaneOperation::AcrMetadataRead,
        DataPlaneOperation::AcrMetadataWrite,
        DataPlaneOperation::DeleteRepository,
        DataPlaneOperation::MountSource,
    ];

    /// (data actions required in ABAC mode, Docker scope action required in the token).
    pub fn requirements(self) -> (&'static [DataAction], ScopeAction) {
        use DataAction as D;
        use DataPlaneOperation as Op;
        use DockerAction as A;
        match self {
            Op::PullBlob | Op::PullManifest | Op::MountSource => (&[D::ContentRead], ScopeAction::Repository(A::Pull)),
            Op::ListTags | Op::ListReferrers => (&[D::MetadataRead], ScopeAction::Repository(A::Pull)),
            Op::PushBlob | Op::PushManifest { creates_or_moves_tag: false } => {
                (&[D::ContentWrite], ScopeAction::Repository(A::Push))
            }
            Op::PushManifest { creates_or_moves_tag: true } => {
                (&[D::ContentWrite, D::MetadataWrite], ScopeAction::Repository(A::Push))
            }
            Op::DeleteManifest | Op::DeleteBlob => (&[D::ContentDelete], ScopeAction::Repository(A::Delete)),
            Op::DeleteTag => (&[D::MetadataDelete], ScopeAction::Repository(A::Delete)),
            Op::DeleteRepository => (&[D::ContentDelete, D::MetadataDelete], ScopeAction::Repository(A::Delete)),
            Op::AcrMetadataRead => (&[D::MetadataRead], ScopeAction::Repository(A::MetadataRead)),
            Op::AcrMetadataWrite => (&[D::MetadataWrite], ScopeAction::Repository(A::MetadataWrite)),
            Op::Catalog => (&[D::CatalogRead], ScopeAction::Catalog),
        }
    }

    pub fn required_data_actions(self) -> &'static [DataAction] {
        self.requirements().0
    }

    pub fn scope_action(self) -> ScopeAction {
        self.requirements().1
    }

    /// The legacy-mode action (each data action maps to one; all agree).
    pub fn legacy_action(self) -> LegacyAction {
        self.required_data_actions()[0].legacy_equivalent().unwrap_or(LegacyAction::PullRead)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_actions_parse_and_map() {
        for a in DockerAction::CONCRETE {
            assert_eq!(DockerAction::parse(a.as_str()), Some(a));
            assert!(!a.data_actions().is_empty());
            assert!(a.legacy_action().is_some());
        }
        assert_eq!(DockerAction::parse("*"), Some(DockerAction::All));
        assert_eq!(DockerAction::parse("PULL"), None);
        assert_eq!(DockerAction::Push.data_actions(), &[DataAction::ContentWrite, DataAction::MetadataWrite]);
        assert_eq!(serde_json::to_string(&DockerAction::MetadataRead).unwrap(), "\"metadata_read\"");
    }

    #[test]
    fn operation_table_is_consistent() {
        for op in DataPlaneOperation::ALL {
            let (data, scope) = op.requirements();
            assert!(!data.is_empty());
            // All data actions of one operation need the same legacy action.
            let legacy: Vec<_> = data.iter().map(|d| d.legacy_equivalent()).collect();
            assert!(legacy.windows(2).all(|w| w[0] == w[1]), "{op:?}");
            match scope {
                ScopeAction::Catalog => assert_eq!(op, DataPlaneOperation::Catalog),
                ScopeAction::Repository(a) => assert_eq!(
                    a.legacy_action(),
                    Some(op.legacy_action()),
                    "{op:?}: scope action and data actions disagree in legacy mode"
                ),
            }
        }
        assert_eq!(
            DataAction::parse("microsoft.containerregistry/registries/catalog/read"),
            Some(DataAction::CatalogRead)
        );
        assert!(DataAction::MetadataDelete.is_repository_action());
        assert!(!DataAction::CatalogRead.is_repository_action());
    }

    #[test]
    fn modes() {
        assert_eq!(RegistryMode::default(), RegistryMode::LegacyRegistryPermissions);
        assert_eq!(RegistryMode::from_cli("rbac-abac"), Some(RegistryMode::AbacRepositoryPermissions));
        assert_eq!(
            serde_json::to_string(&RegistryMode::AbacRepositoryPermissions).unwrap(),
            "\"AbacRepositoryPermissions\""
        );
    }
}
