//! Graph's security groups: `/groups`, members and owners (`$ref`), and the transitive
//! membership questions (`checkMemberGroups`, `getMemberGroups`), answered with the expansion
//! authorization uses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::applications::{mi_json, sp_json};
use super::endpoint::ObjectCollection;
use super::error::{GraphError, GraphResult};
use super::users::{find_user, user_json};
use super::{GraphCtx, display_name, respond, with_context};
use crate::model::directory::{self, Group, GroupRelation, MemberKind};
use crate::model::principals::{DirectoryObject, Lookup};
use crate::state::AppState;

/// The object's Graph shape with its `@odata.type`, as collections of directory objects
/// (`getByIds`, `members`) show it.
pub(super) fn typed_json(o: &DirectoryObject, state: &AppState) -> Value {
    let (mut v, t) = match o {
        DirectoryObject::User(u) => (user_json(u), "#microsoft.graph.user"),
        DirectoryObject::ServicePrincipal(sp) => (sp_json(state, sp), "#microsoft.graph.servicePrincipal"),
        DirectoryObject::ManagedIdentity(mi) => (mi_json(state, mi), "#microsoft.graph.servicePrincipal"),
        DirectoryObject::Group(g) => (group_json(g), "#microsoft.graph.group"),
    };
    if let Value::Object(m) = &mut v {
        m.insert("@odata.type".into(), json!(t));
    }
    v
}

/// Finds directory objects by object id, with managed identities listed once per request.
pub(super) async fn lookup(ctx: &GraphCtx) -> GraphResult<Lookup> {
    Lookup::load(&*ctx.state.meta).await.map_err(|e| GraphError::storage("listing managed identities", e))
}

pub(super) async fn find(ctx: &GraphCtx, lookup: &Lookup, id: &str) -> GraphResult<Option<DirectoryObject>> {
    lookup.find(&*ctx.state.meta, id).await.map_err(|e| GraphError::storage("reading the directory", e))
}

/// Entra's `securityIdentifier` of an object id: `S-1-12-1-` and the GUID's 16 bytes (in
/// Microsoft's mixed-endian order) read as four little-endian 32-bit numbers.
pub fn security_identifier(object_id: &str) -> Option<String> {
    let bytes = uuid::Uuid::parse_str(object_id).ok()?.to_bytes_le();
    let parts: Vec<String> =
        bytes.chunks(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]).to_string()).collect();
    Some(format!("S-1-12-1-{}", parts.join("-")))
}

pub(super) fn group_json(g: &Group) -> Value {
    json!({
        "id": g.id,
        "deletedDateTime": Value::Null,
        "classification": Value::Null,
        "createdDateTime": g.created_date_time,
        "creationOptions": [],
        "description": g.description,
        "displayName": g.display_name,
        "expirationDateTime": Value::Null,
        "groupTypes": [],
        "isAssignableToRole": Value::Null,
        "mail": Value::Null,
        "mailEnabled": g.mail_enabled,
        "mailNickname": g.mail_nickname,
        "membershipRule": Value::Null,
        "membershipRuleProcessingState": Value::Null,
        "onPremisesSyncEnabled": Value::Null,
        "preferredDataLocation": Value::Null,
        "preferredLanguage": Value::Null,
        "proxyAddresses": [],
        "renewedDateTime": g.created_date_time,
        "resourceBehaviorOptions": [],
        "resourceProvisioningOptions": [],
        "securityEnabled": g.security_enabled,
        "securityIdentifier": security_identifier(&g.id),
        "theme": Value::Null,
        "visibility": Value::Null,
        "onPremisesProvisioningErrors": [],
        "serviceProvisioningErrors": [],
    })
}

/// Object ids in paths must be GUIDs, as in Graph (which answers 400 before looking).
pub(super) fn object_id_param(id: &str) -> GraphResult<String> {
    uuid::Uuid::parse_str(id)
        .map(|u| u.to_string())
        .map_err(|_| GraphError::bad_request(format!("Invalid object identifier '{id}'.")))
}

pub(super) async fn find_group(ctx: &GraphCtx, id: &str) -> GraphResult<Group> {
    let oid = object_id_param(id)?;
    directory::get_group(&*ctx.state.meta, &oid)
        .await
        .map_err(|e| GraphError::storage("reading a group", e))?
        .ok_or_else(|| GraphError::not_found(id))
}

pub(super) async fn reload_authz(ctx: &GraphCtx) -> GraphResult<()> {
    ctx.state.authz.reload(&*ctx.state.meta).await.map_err(|e| GraphError::storage("reloading group memberships", e))
}

/// A deleted principal leaves every group it was in (as in Entra), and authorization forgets it.
pub(super) async fn leave_all_groups(ctx: &GraphCtx, object_id: &str) -> GraphResult<()> {
    directory::remove_from_all_groups(&*ctx.state.meta, object_id)
        .await
        .map_err(|e| GraphError::storage("removing group memberships", e))?;
    reload_authz(ctx).await
}

/// Graph's `mailNickname` rule: 1-64 ASCII characters, none of `@ ( ) \ [ ] " ; : < > ,` or space.
pub(super) fn valid_mail_nickname(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.chars().all(|c| c.is_ascii() && !c.is_ascii_control() && !"@()\\[]\";:<>, ".contains(c))
}

pub(super) async fn create_group(ctx: &GraphCtx) -> GraphResult<Response> {
    let body = ctx.json()?;
    let name = display_name(&body)?;
    let nickname = body["mailNickname"].as_str().unwrap_or_default();
    if !valid_mail_nickname(nickname) {
        return Err(GraphError::bad_request(format!(
            "Invalid value specified for property 'mailNickname' of resource 'Group': '{nickname}' must be 1-64 ASCII characters without spaces or any of @()\\[]\";:<>,."
        )));
    }
    let unified = body["groupTypes"].as_array().is_some_and(|t| !t.is_empty());
    if body["mailEnabled"] == json!(true) || body["securityEnabled"] == json!(false) || unified {
        return Err(GraphError::bad_request(
            "Wharf's directory has security groups only: use mailEnabled false, securityEnabled true and no groupTypes.",
        ));
    }
    let description = match &body["description"] {
        Value::Null => None,
        Value::String(d) if d.chars().count() <= 1024 => Some(d.clone()),
        _ => {
            return Err(GraphError::bad_request("Property 'description' must be a string of at most 1024 characters."));
        }
    };
    let group = directory::create_group(&*ctx.state.meta, &name, nickname, description)
        .await
        .map_err(|e| GraphError::storage("creating a group", e))?;
    tracing::info!(group = %group.id, name = %group.display_name, by = %ctx.caller.object_id(), "created a group");
    Ok(respond(StatusCode::CREATED, &with_context(ctx.context("groups/$entity"), group_json(&group))))
}

/// A group's direct members, or its owners, each as its typed directory object.
pub(super) async fn list_related(ctx: &GraphCtx, relation: GroupRelation, id: &str) -> GraphResult<Response> {
    let g = find_group(ctx, id).await?;
    let related = directory::related(&*ctx.state.meta, relation, &g.id)
        .await
        .map_err(|e| GraphError::storage("listing a group's members or owners", e))?;
    let lookup = lookup(ctx).await?;
    let mut items = vec![];
    for m in &related {
        // An object that is gone (a managed identity deleted with its resource) is not shown.
        if let Some(o) = find(ctx, &lookup, &m.member_id).await? {
            items.push(typed_json(&o, &ctx.state));
        }
    }
    ctx.list("directoryObjects", items)
}

/// The object id at the end of an `@odata.id` reference (`…/directoryObjects/{id}`, or the
/// `users`, `servicePrincipals` and `groups` forms).
pub(super) fn referenced_id(body: &Value) -> GraphResult<String> {
    let Some(url) = body["@odata.id"].as_str() else {
        return Err(GraphError::bad_request(
            "The request body must reference the new member with '@odata.id', e.g. https://graph.microsoft.com/v1.0/directoryObjects/{id}.",
        ));
    };
    let last = url.trim_end_matches('/').rsplit('/').next().unwrap_or_default();
    object_id_param(last)
}

/// `POST /groups/{id}/members/$ref` or `…/owners/$ref`. Members are users, service principals
/// (managed identities included) or other groups, never the group itself; owners are users or
/// service principals (Entra's rule: groups cannot own groups).
pub(super) async fn add_related(ctx: &GraphCtx, relation: GroupRelation, id: &str) -> GraphResult<Response> {
    let g = find_group(ctx, id).await?;
    let object_id = referenced_id(&ctx.json()?)?;
    let Some(object) = find(ctx, &lookup(ctx).await?, &object_id).await? else {
        return Err(GraphError::not_found(&object_id));
    };
    match relation {
        GroupRelation::Member if object.id().eq_ignore_ascii_case(&g.id) => {
            return Err(GraphError::bad_request("A group cannot be a member of itself."));
        }
        GroupRelation::Owner if object.member_kind() == MemberKind::Group => {
            return Err(GraphError::bad_request("A group cannot own a group: owners are users or service principals."));
        }
        _ => {}
    }
    match directory::relate(&*ctx.state.meta, relation, &g.id, object.id(), object.member_kind()).await {
        Ok(()) => {}
        Err(wharf_storage::StorageError::Conflict(_)) => {
            return Err(GraphError::bad_request(format!(
                "One or more added object references already exist for the following modified properties: '{}'.",
                relation.segment()
            )));
        }
        Err(e) => return Err(GraphError::storage("adding a group member or owner", e)),
    }
    reload_authz(ctx).await?;
    tracing::info!(group = %g.id, object = %object.id(), kind = ?object.member_kind(), relation = relation.segment(), by = %ctx.caller.object_id(), "added to a group");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `DELETE /groups/{id}/members/{objectId}/$ref` or `…/owners/{objectId}/$ref`.
pub(super) async fn remove_related(
    ctx: &GraphCtx,
    relation: GroupRelation,
    id: &str,
    object: &str,
) -> GraphResult<Response> {
    let g = find_group(ctx, id).await?;
    let object_id = object_id_param(object)?;
    let removed = directory::unrelate(&*ctx.state.meta, relation, &g.id, &object_id)
        .await
        .map_err(|e| GraphError::storage("removing a group member or owner", e))?;
    if !removed {
        return Err(GraphError::not_found(object));
    }
    reload_authz(ctx).await?;
    tracing::info!(group = %g.id, object = %object_id, relation = relation.segment(), by = %ctx.caller.object_id(), "removed from a group");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Whether the caller owns `group` (false when there is no group in question or it does not
/// exist; the handler then answers for the missing group).
pub(super) async fn caller_owns(ctx: &GraphCtx, group: Option<&str>) -> GraphResult<bool> {
    let Some(group) = group else { return Ok(false) };
    let Ok(gid) = object_id_param(group) else { return Ok(false) };
    directory::is_related(&*ctx.state.meta, GroupRelation::Owner, &gid, ctx.caller.object_id())
        .await
        .map_err(|e| GraphError::storage("reading group owners", e))
}

/// The object that `checkMemberGroups`/`getMemberGroups` ask about, through its collection
/// (`/users/` also takes a user principal name).
pub(super) async fn member_object(
    ctx: &GraphCtx,
    collection: ObjectCollection,
    id: &str,
) -> GraphResult<DirectoryObject> {
    if collection == ObjectCollection::Users && id.contains('@') {
        return Ok(DirectoryObject::User(find_user(ctx, id).await?));
    }
    let oid = object_id_param(id)?;
    match find(ctx, &lookup(ctx).await?, &oid).await? {
        Some(o) if collection.admits(o.member_kind()) => Ok(o),
        _ => Err(GraphError::not_found(id)),
    }
}

pub(super) const STRING_COLLECTION: &str = "Collection(Edm.String)";

pub(super) async fn check_member_groups(
    ctx: &GraphCtx,
    collection: ObjectCollection,
    id: &str,
) -> GraphResult<Response> {
    let object = member_object(ctx, collection, id).await?;
    let body = ctx.json()?;
    let Some(asked) = body["groupIds"].as_array().filter(|a| (1..=20).contains(&a.len())) else {
        return Err(GraphError::bad_request("'groupIds' must list 1 to 20 group ids."));
    };
    let asked: Vec<&str> = asked
        .iter()
        .map(|v| v.as_str().ok_or_else(|| GraphError::bad_request("'groupIds' must be strings.")))
        .collect::<GraphResult<_>>()?;
    let groups = ctx.state.authz.transitive_groups(object.id());
    let value: Vec<&str> = asked.into_iter().filter(|a| groups.iter().any(|g| g.eq_ignore_ascii_case(a))).collect();
    Ok(respond(StatusCode::OK, &json!({"@odata.context": ctx.context(STRING_COLLECTION), "value": value})))
}

/// Every group the object belongs to, transitively. Wharf's groups are all security groups, so
/// `securityEnabledOnly` does not change the answer.
pub(super) async fn get_member_groups(ctx: &GraphCtx, collection: ObjectCollection, id: &str) -> GraphResult<Response> {
    let object = member_object(ctx, collection, id).await?;
    let body = ctx.json()?;
    if !matches!(body["securityEnabledOnly"], Value::Bool(_) | Value::Null) {
        return Err(GraphError::bad_request("'securityEnabledOnly' must be true or false."));
    }
    let value = ctx.state.authz.transitive_groups(object.id());
    Ok(respond(StatusCode::OK, &json!({"@odata.context": ctx.context(STRING_COLLECTION), "value": value})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_identifiers_read_the_guid_as_four_little_endian_words() {
        // Data1 = 1, Data2 = 2, Data3 = 3, Data4 = 04 00 00 00 05 00 00 00.
        assert_eq!(
            security_identifier("00000001-0002-0003-0400-000005000000").as_deref(),
            Some("S-1-12-1-1-196610-4-5")
        );
        assert_eq!(security_identifier("not-a-guid"), None);
    }

    #[test]
    fn mail_nicknames() {
        for ok in ["devs", "team-a_b.c", &"x".repeat(64)] {
            assert!(valid_mail_nickname(ok), "{ok}");
        }
        for bad in ["", "a b", "a@b", "a(b", "a;b", "ä", &"x".repeat(65)] {
            assert!(!valid_mail_nickname(bad), "{bad}");
        }
    }

    #[test]
    fn member_references() {
        for (url, want) in [
            (
                "https://graph.microsoft.com/v1.0/directoryObjects/6A1B3C8E-0000-4000-8000-000000000001",
                Some("6a1b3c8e-0000-4000-8000-000000000001"),
            ),
            (
                "https://wharf.test/v1.0/users/6a1b3c8e-0000-4000-8000-000000000001/",
                Some("6a1b3c8e-0000-4000-8000-000000000001"),
            ),
            ("https://graph.microsoft.com/v1.0/directoryObjects/nope", None),
        ] {
            assert_eq!(referenced_id(&json!({"@odata.id": url})).ok().as_deref(), want, "{url}");
        }
        assert_eq!(referenced_id(&json!({})).unwrap_err().code, crate::graph::error::GraphCode::BadRequest);
    }
}
