//! ACR's locks: a repository's, a manifest's or a tag's `changeableAttributes` restrict what
//! even a fully authorized caller may do. `readEnabled: false` blocks pulls, `writeEnabled:
//! false` blocks overwrites and deletes, `deleteEnabled: false` blocks deletes, `listEnabled:
//! false` hides a tag from listings. Changing the attributes themselves is always possible.

use axum::http::StatusCode;
use wharf_oci::{Reference, Tag};
use wharf_storage::ChangeableAttributes;

use super::Ctx;
use super::error::{Code, OciError, OciResult};
use super::target::Target;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Read,
    Write,
    Delete,
}

fn refused(what: &str, attribute: &str, flag: &str, t: &Target) -> OciError {
    OciError::new(
        StatusCode::FORBIDDEN,
        Code::Denied,
        format!(
            "the operation is disallowed: {what} has {attribute} set to false; change it with 'wharf acr repository update -n <registry> {} {flag} true'",
            if what.starts_with("repository") { format!("--repository {}", t.repo) } else { format!("--image {}:<tag>", t.repo) }
        ),
    )
}

/// Refuses `op` if `attrs` (of `what`) forbid it.
fn check(attrs: &ChangeableAttributes, op: Op, what: &str, t: &Target) -> OciResult<()> {
    match op {
        Op::Read if !attrs.read_enabled => Err(refused(what, "readEnabled", "--read-enabled", t)),
        Op::Write if !attrs.write_enabled => Err(refused(what, "writeEnabled", "--write-enabled", t)),
        Op::Delete if !attrs.write_enabled => Err(refused(what, "writeEnabled", "--write-enabled", t)),
        Op::Delete if !attrs.delete_enabled => Err(refused(what, "deleteEnabled", "--delete-enabled", t)),
        _ => Ok(()),
    }
}

/// The repository's own lock (absent repositories have none).
pub async fn repository(ctx: &Ctx, t: &Target, op: Op) -> OciResult<()> {
    let repo = ctx.state.meta.repository_get(&t.registry.key, &t.repo).await.map_err(|e| OciError::internal("reading a repository", e))?;
    match repo {
        Some(r) => check(&r.attributes, op, &format!("repository '{}'", t.repo), t),
        None => Ok(()),
    }
}

/// The locks of a manifest reference: the repository's, the tag's (for a tag), the manifest's.
pub async fn reference(ctx: &Ctx, t: &Target, reference: &Reference, op: Op) -> OciResult<()> {
    repository(ctx, t, op).await?;
    let meta = &ctx.state.meta;
    if let Reference::Tag(tag) = reference {
        self::tag(ctx, t, tag, op).await?;
    }
    if op != Op::Write
        && let Some(m) = meta.manifest_head(&t.registry.key, &t.repo, reference).await.map_err(|e| OciError::internal("reading a manifest", e))? {
            check(&m.attributes, op, &format!("manifest '{}'", m.digest), t)?;
        }
    Ok(())
}

/// A tag's lock (absent tags have none). Overwriting a tag counts as a write to it.
pub async fn tag(ctx: &Ctx, t: &Target, tag: &Tag, op: Op) -> OciResult<()> {
    let rec = ctx.state.meta.tag_get(&t.registry.key, &t.repo, tag).await.map_err(|e| OciError::internal("reading a tag", e))?;
    match rec {
        Some(r) => check(&r.attributes, op, &format!("tag '{tag}'"), t),
        None => Ok(()),
    }
}
