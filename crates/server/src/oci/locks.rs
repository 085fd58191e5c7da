//! ACR's locks: a repository's, a manifest's or a tag's `changeableAttributes` restrict what
//! even a fully authorized caller may do. `readEnabled: false` blocks pulls, `writeEnabled:
//! false` blocks overwrites and deletes, `deleteEnabled: false` blocks deletes, `listEnabled:
//! false` hides a tag from listings. Changing the attributes themselves is always possible.
//! A delete that would take locked things with it (a manifest's tags, a repository's manifests
//! and tags) is refused as a whole.

use wharf_oci::{Reference, Tag};
use wharf_storage::{ChangeableAttributes, ManifestMeta, ManifestRead, Page};

use super::Ctx;
use super::target::Target;
use crate::http::oci::{Code, OciError, OciResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Delete,
}

/// What carries a lock.
enum Locked<'a> {
    Repository,
    Tag(&'a str),
    Manifest(&'a str),
}

fn refused(locked: &Locked, attribute: &str, flag: &str, t: &Target) -> OciError {
    let (what, image) = match locked {
        Locked::Repository => (format!("repository '{}'", t.repo), format!("--repository {}", t.repo)),
        Locked::Tag(tag) => (format!("tag '{tag}'"), format!("--image {}:{tag}", t.repo)),
        Locked::Manifest(digest) => (format!("manifest '{digest}'"), format!("--image {}@{digest}", t.repo)),
    };
    OciError::new(
        Code::Denied,
        format!(
            "the operation is disallowed: {what} has {attribute} set to false; change it with 'wharf acr repository update -n <registry> {image} {flag} true'"
        ),
    )
}

/// Refuses `op` if `attrs` (of `locked`) forbid it.
fn check(attrs: &ChangeableAttributes, op: Op, locked: Locked, t: &Target) -> OciResult<()> {
    match op {
        Op::Read if !attrs.read_enabled => Err(refused(&locked, "readEnabled", "--read-enabled", t)),
        Op::Write if !attrs.write_enabled => Err(refused(&locked, "writeEnabled", "--write-enabled", t)),
        Op::Delete if !attrs.write_enabled => Err(refused(&locked, "writeEnabled", "--write-enabled", t)),
        Op::Delete if !attrs.delete_enabled => Err(refused(&locked, "deleteEnabled", "--delete-enabled", t)),
        _ => Ok(()),
    }
}

/// The repository's own lock (absent repositories have none).
pub async fn repository(ctx: &Ctx, t: &Target, op: Op) -> OciResult<()> {
    let repo = ctx
        .state
        .meta
        .repository_get(&t.registry.key, &t.repo)
        .await
        .map_err(|e| OciError::from_storage("reading a repository", e))?;
    match repo {
        Some(r) => check(&r.attributes, op, Locked::Repository, t),
        None => Ok(()),
    }
}

/// The locks of a manifest reference, from what one read found
/// ([`MetadataStore::manifest_read`](wharf_storage::MetadataStore::manifest_read)): the
/// repository's, the tag's (for a tag) and, except for a push, the manifest's.
pub fn check_reference(found: &ManifestRead, reference: &Reference, op: Op, t: &Target) -> OciResult<()> {
    if let Some(attrs) = &found.repository {
        check(attrs, op, Locked::Repository, t)?;
    }
    if let (Some(attrs), Reference::Tag(tag)) = (&found.tag, reference) {
        check(attrs, op, Locked::Tag(tag.as_str()), t)?;
    }
    if op != Op::Write
        && let Some(m) = &found.manifest
    {
        check(&m.attributes, op, Locked::Manifest(&m.digest.to_string()), t)?;
    }
    Ok(())
}

/// Reads a manifest reference once and checks its locks ([`check_reference`]). Deleting by
/// digest also needs every tag that points at the manifest to allow it, as the deletion takes
/// them along (otherwise `az acr repository delete --image repo:tag`, which deletes by digest,
/// would get round the tag's lock).
pub async fn reference(ctx: &Ctx, t: &Target, reference: &Reference, op: Op) -> OciResult<()> {
    let meta = &ctx.state.meta;
    let found = meta
        .manifest_read(&t.registry.key, &t.repo, reference, false)
        .await
        .map_err(|e| OciError::from_storage("reading a manifest", e))?;
    check_reference(&found, reference, op, t)?;
    if op == Op::Delete
        && let Reference::Digest(digest) = reference
    {
        let page = Page { digest: Some(digest.clone()), ..Page::default() };
        let tags = meta
            .tag_list(&t.registry.key, &t.repo, &page)
            .await
            .map_err(|e| OciError::from_storage("listing tags", e))?;
        for tag in &tags {
            check(&tag.attributes, op, Locked::Tag(&tag.name), t)?;
        }
    }
    Ok(())
}

/// Deleting a repository deletes every manifest and tag in it: the repository and each of them
/// must allow it. Refuses, naming the first lock found, rather than deleting around it.
/// Returns the repository's manifests (what the deletion will remove).
pub async fn whole_repository(ctx: &Ctx, t: &Target) -> OciResult<Vec<ManifestMeta>> {
    repository(ctx, t, Op::Delete).await?;
    let meta = &ctx.state.meta;
    let manifests = meta
        .manifest_list(&t.registry.key, &t.repo, &Page::default())
        .await
        .map_err(|e| OciError::from_storage("listing manifests", e))?;
    for m in &manifests {
        check(&m.attributes, Op::Delete, Locked::Manifest(&m.digest.to_string()), t)?;
    }
    let tags = meta
        .tag_list(&t.registry.key, &t.repo, &Page::default())
        .await
        .map_err(|e| OciError::from_storage("listing tags", e))?;
    for tag in &tags {
        check(&tag.attributes, Op::Delete, Locked::Tag(&tag.name), t)?;
    }
    Ok(manifests)
}

/// A tag's lock (absent tags have none). Overwriting a tag counts as a write to it.
pub async fn tag(ctx: &Ctx, t: &Target, tag: &Tag, op: Op) -> OciResult<()> {
    let rec = ctx
        .state
        .meta
        .tag_get(&t.registry.key, &t.repo, tag)
        .await
        .map_err(|e| OciError::from_storage("reading a tag", e))?;
    match rec {
        Some(r) => check(&r.attributes, op, Locked::Tag(tag.as_str()), t),
        None => Ok(()),
    }
}
