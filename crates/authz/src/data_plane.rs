//! The data-plane vocabulary of a registry and how it maps onto Azure actions.
//!
//! Owns: Docker token scope actions, ACR data actions, legacy registry actions,
//! and the per-operation table. These tables are data: the server parses each
//! request into a [`DataPlaneOperation`] (`Endpoint::operation` in the data
//! plane) and asks this module which scope actions admit it.
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
//! Operation → the token scope actions that admit it (one table,
//! [`DataPlaneOperation::accepted_scope_actions`]; the data actions follow from the table above):
//!
//! | Operation                                   | Scope actions (any of)       |
//! |---------------------------------------------|------------------------------|
//! | `PullBlob`, `PullManifest`, `MountSource`   | pull                         |
//! | `ListTags`, `ListReferrers`                 | pull, metadata_read          |
//! | `PushBlob`, `PushManifest`                  | push                         |
//! | `DeleteBlob`, `DeleteManifest`, `DeleteTag`, `DeleteRepository` | delete   |
//! | `ReadMetadata`                              | metadata_read                |
//! | `WriteMetadata`                             | metadata_write               |
//! | `Catalog`                                   | registry:catalog:*           |
//!
//! Must never: decide who may do what; `engine` does.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use wharf_vocab::RoleAssignmentMode;

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

/// A Docker scope action a token can carry: on a repository, or the registry's catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScopeAction {
    /// `repository:<name>:<action>`.
    Repository(DockerAction),
    /// `registry:catalog:*`.
    Catalog,
}

impl ScopeAction {
    /// `(resource type, action)` as a scope string spells them (`repository`, `pull`).
    pub fn parts(self) -> (&'static str, &'static str) {
        match self {
            ScopeAction::Repository(a) => ("repository", a.as_str()),
            ScopeAction::Catalog => ("registry", "*"),
        }
    }

    /// The data actions this scope action needs in ABAC mode (all of them).
    pub fn data_actions(self) -> &'static [DataAction] {
        match self {
            ScopeAction::Repository(a) => a.data_actions(),
            ScopeAction::Catalog => &[DataAction::CatalogRead],
        }
    }

    /// The legacy action this scope action needs in legacy mode.
    pub fn legacy_action(self) -> Option<LegacyAction> {
        match self {
            ScopeAction::Repository(a) => a.legacy_action(),
            ScopeAction::Catalog => Some(LegacyAction::PullRead),
        }
    }
}

/// What a data-plane request does, as far as authorization is concerned: the server parses
/// each request into one of these (`Endpoint::operation`), and this table alone says which
/// token scope actions admit it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataPlaneOperation {
    PullBlob,
    PullManifest,
    /// Upload sessions: start, status, chunks, finish, cancel.
    PushBlob,
    PushManifest,
    DeleteBlob,
    /// A manifest deleted by digest (with the tags that point at it).
    DeleteManifest,
    /// A tag deleted (`DELETE /v2/…/manifests/{tag}`, `DELETE /acr/v1/…/_tags/{tag}`).
    DeleteTag,
    DeleteRepository,
    ListTags,
    ListReferrers,
    Catalog,
    /// ACR's `/acr/v1` reads: repository, tag and manifest attributes and listings.
    ReadMetadata,
    /// ACR's `/acr/v1` changes of changeable attributes.
    WriteMetadata,
    /// The source side of a cross-repository blob mount.
    MountSource,
}

impl DataPlaneOperation {
    /// Every operation, for table tests and docs.
    pub const ALL: [DataPlaneOperation; 14] = [
        DataPlaneOperation::PullBlob,
        DataPlaneOperation::PullManifest,
        DataPlaneOperation::PushBlob,
        DataPlaneOperation::PushManifest,
        DataPlaneOperation::DeleteBlob,
        DataPlaneOperation::DeleteManifest,
        DataPlaneOperation::DeleteTag,
        DataPlaneOperation::DeleteRepository,
        DataPlaneOperation::ListTags,
        DataPlaneOperation::ListReferrers,
        DataPlaneOperation::Catalog,
        DataPlaneOperation::ReadMetadata,
        DataPlaneOperation::WriteMetadata,
        DataPlaneOperation::MountSource,
    ];

    /// The token scope actions that admit the operation: any one of them suffices. The first
    /// is the one a `401` challenge asks for.
    pub fn accepted_scope_actions(self) -> &'static [ScopeAction] {
        use DataPlaneOperation as Op;
        use DockerAction as A;
        use ScopeAction::Repository as R;
        match self {
            Op::PullBlob | Op::PullManifest | Op::MountSource => &[R(A::Pull)],
            // Docker clients ask for `pull` before listing tags, ACR's own for `metadata_read`
            // (docs/decisions.md, "Tag listing accepts pull or metadata_read").
            Op::ListTags | Op::ListReferrers => &[R(A::Pull), R(A::MetadataRead)],
            Op::PushBlob | Op::PushManifest => &[R(A::Push)],
            Op::DeleteBlob | Op::DeleteManifest | Op::DeleteTag | Op::DeleteRepository => &[R(A::Delete)],
            Op::ReadMetadata => &[R(A::MetadataRead)],
            Op::WriteMetadata => &[R(A::MetadataWrite)],
            Op::Catalog => &[ScopeAction::Catalog],
        }
    }

    /// The scope action a challenge names.
    pub fn challenge_scope_action(self) -> ScopeAction {
        self.accepted_scope_actions()[0]
    }

    /// Whether the operation acts on the catalog rather than on one repository.
    pub fn is_catalog(self) -> bool {
        self == DataPlaneOperation::Catalog
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
            let accepted = op.accepted_scope_actions();
            assert!(!accepted.is_empty(), "{op:?} admits no scope action");
            assert_eq!(op.challenge_scope_action(), accepted[0]);
            for a in accepted {
                assert!(!a.data_actions().is_empty(), "{op:?}: {a:?} needs no data action");
                assert!(a.legacy_action().is_some(), "{op:?}: {a:?} has no legacy action");
                // Only the catalog operation is admitted by the catalog scope, and it by nothing else.
                assert_eq!(op.is_catalog(), *a == ScopeAction::Catalog, "{op:?}");
            }
        }
        // ACR's clients list tags with metadata_read, Docker's with pull.
        assert_eq!(
            DataPlaneOperation::ListTags.accepted_scope_actions(),
            &[ScopeAction::Repository(DockerAction::Pull), ScopeAction::Repository(DockerAction::MetadataRead)]
        );
        assert_eq!(ScopeAction::Catalog.parts(), ("registry", "*"));
        assert_eq!(ScopeAction::Repository(DockerAction::Push).data_actions(), DockerAction::Push.data_actions());
        assert_eq!(
            DataAction::parse("microsoft.containerregistry/registries/catalog/read"),
            Some(DataAction::CatalogRead)
        );
        assert!(DataAction::MetadataDelete.is_repository_action());
        assert!(!DataAction::CatalogRead.is_repository_action());
    }
}
