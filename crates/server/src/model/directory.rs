//! The directory: users, service principals and security groups (Graph objects), kept as
//! records in the metadata store, with secrets only as argon2id hashes.
//!
//! Users are stored under `/directory/users/{objectId}` (unique by lowercase UPN), service
//! principals under `/directory/servicePrincipals/{objectId}` (unique by appId), groups under
//! `/directory/groups/{objectId}` and each direct membership as its own record below its group,
//! `/directory/groups/{groupId}/members/{memberId}`: adding or removing one member never rewrites
//! the group, so concurrent changes to one group cannot lose each other. Managed identities are
//! ARM resources (`model::identities`).
//!
//! Must never: decide who may change the directory (that is the Graph plane), or expand nested groups
//! (that is `authz`, so that authorization and Graph's membership checks share one expansion).
//!
//! An application and its service principal share one record: Graph's `POST /applications`
//! creates it with `servicePrincipalCreated = false` (an app registration that cannot sign in),
//! `POST /servicePrincipals {appId}` sets the flag. `find_sp_by_app_id`, `get_sp` and `list_sps`
//! only see records whose service principal exists; the `*_app_*` functions see every record.

use serde::{Deserialize, Serialize};
use wharf_identity::{HashParams, PlainSecret, SecretHash, hash_secret, verify_secret};
use wharf_storage::{MetadataStore, ResourceRecord, StorageError};

pub const USER_TYPE: &str = "Microsoft.Graph/users";
pub const SP_TYPE: &str = "Microsoft.Graph/servicePrincipals";
pub const GROUP_TYPE: &str = "Microsoft.Graph/groups";
pub const MEMBERSHIP_TYPE: &str = "Microsoft.Graph/groups/members";
pub const OWNERSHIP_TYPE: &str = "Microsoft.Graph/groups/owners";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub user_principal_name: String,
    pub display_name: String,
    pub password_hash: String,
    #[serde(default = "enabled")]
    pub account_enabled: bool,
}

fn enabled() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PasswordCredential {
    pub key_id: String,
    pub display_name: Option<String>,
    pub hint: String,
    pub secret_hash: String,
    pub start_date_time: String,
    pub end_date_time: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePrincipal {
    /// Object id of the service principal.
    pub id: String,
    pub app_id: String,
    /// Object id of the application object.
    pub app_object_id: String,
    pub display_name: String,
    #[serde(default)]
    pub password_credentials: Vec<PasswordCredential>,
    /// Set for Wharf's built-in principals (`defender-scanner`, `acr-import`).
    #[serde(default)]
    pub builtin: Option<String>,
    #[serde(default = "enabled")]
    pub account_enabled: bool,
    /// False while only the application exists (see the module comment).
    #[serde(default = "enabled")]
    pub service_principal_created: bool,
}

/// Argon2id parameters for stored secrets. Tests may lower them through `WHARF_TEST_FAST_HASH`.
pub fn hash_params() -> HashParams {
    if std::env::var("WHARF_TEST_FAST_HASH").is_ok_and(|v| v == "1") {
        HashParams::FAST_INSECURE_FOR_TESTS
    } else {
        HashParams::PRODUCTION
    }
}

pub fn hash(secret: &str) -> Result<String, StorageError> {
    hash_secret(secret, &hash_params())
        .map(|h| h.as_str().to_string())
        .map_err(|e| StorageError::Corrupt(e.to_string()))
}

pub fn verify(secret: &str, stored: &str) -> bool {
    SecretHash::parse(stored).is_ok_and(|h| verify_secret(secret, &h))
}

fn record(id: String, resource_type: &str, name: &str, body: serde_json::Value) -> ResourceRecord {
    let now = chrono::Utc::now();
    ResourceRecord {
        id,
        resource_type: resource_type.to_string(),
        name: name.to_string(),
        resource_group: None,
        key: uuid::Uuid::new_v4().to_string(),
        body,
        created_at: now,
        updated_at: now,
    }
}

pub fn user_id(object_id: &str) -> String {
    format!("/directory/users/{object_id}")
}

pub fn sp_id(object_id: &str) -> String {
    format!("/directory/servicePrincipals/{object_id}")
}

pub async fn create_user(
    meta: &dyn MetadataStore,
    upn: &str,
    display_name: &str,
    password: &str,
) -> Result<User, StorageError> {
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        user_principal_name: upn.to_string(),
        display_name: display_name.to_string(),
        password_hash: hash(password)?,
        account_enabled: true,
    };
    let body = serde_json::to_value(&user).expect("user serializes");
    meta.resource_insert_unique_name(&record(user_id(&user.id), USER_TYPE, &upn.to_ascii_lowercase(), body)).await?;
    Ok(user)
}

/// Stores a changed user (its record keeps its id, name and creation time).
pub async fn save_user(meta: &dyn MetadataStore, user: &User) -> Result<(), StorageError> {
    let Some(mut r) = meta.resource_get(&user_id(&user.id)).await? else {
        return Err(StorageError::NotFound);
    };
    r.body = serde_json::to_value(user).expect("user serializes");
    r.updated_at = chrono::Utc::now();
    meta.resource_put(&r).await.map(|_| ())
}

pub async fn find_user_by_upn(meta: &dyn MetadataStore, upn: &str) -> Result<Option<User>, StorageError> {
    let r = meta.resource_find_by_name(USER_TYPE, &upn.to_ascii_lowercase()).await?;
    Ok(r.and_then(|r| serde_json::from_value(r.body).ok()))
}

pub async fn get_user(meta: &dyn MetadataStore, object_id: &str) -> Result<Option<User>, StorageError> {
    let r = meta.resource_get(&user_id(object_id)).await?;
    Ok(r.and_then(|r| serde_json::from_value(r.body).ok()))
}

pub async fn list_users(meta: &dyn MetadataStore) -> Result<Vec<User>, StorageError> {
    let filter = wharf_storage::ResourceFilter { resource_type: Some(USER_TYPE.into()), resource_group: None };
    Ok(meta.resource_list(&filter).await?.into_iter().filter_map(|r| serde_json::from_value(r.body).ok()).collect())
}

pub async fn delete_user(meta: &dyn MetadataStore, object_id: &str) -> Result<bool, StorageError> {
    Ok(!meta.resource_delete_tree(&user_id(object_id)).await?.is_empty())
}

/// A new password credential: the plain secret (shown once) and what is stored.
pub fn new_password_credential(
    display_name: Option<String>,
    years: i64,
) -> Result<(PlainSecret, PasswordCredential), StorageError> {
    let secret = wharf_identity::secret::generate_client_secret();
    let now = chrono::Utc::now();
    let cred = PasswordCredential {
        key_id: uuid::Uuid::new_v4().to_string(),
        display_name,
        hint: secret.expose().chars().take(3).collect(),
        secret_hash: hash(secret.expose())?,
        start_date_time: now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        end_date_time: (now + chrono::Duration::days(365 * years)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    Ok((secret, cred))
}

pub async fn create_sp(
    meta: &dyn MetadataStore,
    display_name: &str,
    builtin: Option<&str>,
) -> Result<ServicePrincipal, StorageError> {
    let sp = ServicePrincipal {
        id: uuid::Uuid::new_v4().to_string(),
        app_id: uuid::Uuid::new_v4().to_string(),
        app_object_id: uuid::Uuid::new_v4().to_string(),
        display_name: display_name.to_string(),
        password_credentials: vec![],
        builtin: builtin.map(str::to_string),
        account_enabled: true,
        service_principal_created: true,
    };
    save_sp(meta, &sp, true).await?;
    Ok(sp)
}

/// An application registration without its service principal yet (Graph's `POST /applications`).
pub async fn create_application(
    meta: &dyn MetadataStore,
    display_name: &str,
) -> Result<ServicePrincipal, StorageError> {
    let app = ServicePrincipal {
        id: uuid::Uuid::new_v4().to_string(),
        app_id: uuid::Uuid::new_v4().to_string(),
        app_object_id: uuid::Uuid::new_v4().to_string(),
        display_name: display_name.to_string(),
        password_credentials: vec![],
        builtin: None,
        account_enabled: true,
        service_principal_created: false,
    };
    save_sp(meta, &app, true).await?;
    Ok(app)
}

/// The application record of an app id, whether or not its service principal exists.
pub async fn find_app_by_app_id(
    meta: &dyn MetadataStore,
    app_id: &str,
) -> Result<Option<ServicePrincipal>, StorageError> {
    let r = meta.resource_find_by_name(SP_TYPE, &app_id.to_ascii_lowercase()).await?;
    Ok(r.and_then(|r| serde_json::from_value(r.body).ok()))
}

/// The application record whose application object id is `app_object_id`.
pub async fn find_app_by_object_id(
    meta: &dyn MetadataStore,
    app_object_id: &str,
) -> Result<Option<ServicePrincipal>, StorageError> {
    Ok(list_apps(meta).await?.into_iter().find(|a| a.app_object_id.eq_ignore_ascii_case(app_object_id)))
}

/// Every application record (with or without a service principal).
pub async fn list_apps(meta: &dyn MetadataStore) -> Result<Vec<ServicePrincipal>, StorageError> {
    let filter = wharf_storage::ResourceFilter { resource_type: Some(SP_TYPE.into()), resource_group: None };
    Ok(meta.resource_list(&filter).await?.into_iter().filter_map(|r| serde_json::from_value(r.body).ok()).collect())
}

pub async fn save_sp(meta: &dyn MetadataStore, sp: &ServicePrincipal, new: bool) -> Result<(), StorageError> {
    let body = serde_json::to_value(sp).expect("sp serializes");
    let rec = record(sp_id(&sp.id), SP_TYPE, &sp.app_id, body);
    if new { meta.resource_insert_unique_name(&rec).await } else { meta.resource_put(&rec).await.map(|_| ()) }
}

/// The service principal of an app id (`None` while only the application exists).
pub async fn find_sp_by_app_id(
    meta: &dyn MetadataStore,
    app_id: &str,
) -> Result<Option<ServicePrincipal>, StorageError> {
    Ok(find_app_by_app_id(meta, app_id).await?.filter(|a| a.service_principal_created))
}

pub async fn get_sp(meta: &dyn MetadataStore, object_id: &str) -> Result<Option<ServicePrincipal>, StorageError> {
    let r = meta.resource_get(&sp_id(object_id)).await?;
    Ok(r.and_then(|r| serde_json::from_value::<ServicePrincipal>(r.body).ok()).filter(|a| a.service_principal_created))
}

pub async fn list_sps(meta: &dyn MetadataStore) -> Result<Vec<ServicePrincipal>, StorageError> {
    Ok(list_apps(meta).await?.into_iter().filter(|a| a.service_principal_created).collect())
}

pub async fn delete_sp(meta: &dyn MetadataStore, object_id: &str) -> Result<bool, StorageError> {
    Ok(!meta.resource_delete_tree(&sp_id(object_id)).await?.is_empty())
}

/// Verifies a service principal's secret against its unexpired credentials.
pub fn sp_secret_matches(sp: &ServicePrincipal, secret: &str) -> bool {
    let now = chrono::Utc::now();
    sp.password_credentials.iter().any(|c| {
        let unexpired = chrono::DateTime::parse_from_rfc3339(&c.end_date_time).is_ok_and(|end| end > now);
        unexpired && verify(secret, &c.secret_hash)
    })
}

// ---- groups ----

/// A security group. Its members are separate [`Membership`] records.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    pub id: String,
    pub display_name: String,
    pub mail_nickname: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default = "enabled")]
    pub security_enabled: bool,
    #[serde(default)]
    pub mail_enabled: bool,
    /// RFC 3339, whole seconds.
    #[serde(default)]
    pub created_date_time: String,
}

/// What kind of directory object a member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MemberKind {
    User,
    ServicePrincipal,
    Group,
}

/// One relation of an object to a group: `member_id` is a direct member (or, stored as an
/// owner record, an owner) of `group_id`. Ids are stored lowercase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Membership {
    pub group_id: String,
    pub member_id: String,
    pub member_kind: MemberKind,
}

pub fn group_id(object_id: &str) -> String {
    format!("/directory/groups/{}", object_id.to_ascii_lowercase())
}

/// Creates a security group. Display names need not be unique (as in Entra).
pub async fn create_group(
    meta: &dyn MetadataStore,
    display_name: &str,
    mail_nickname: &str,
    description: Option<String>,
) -> Result<Group, StorageError> {
    let group = Group {
        id: uuid::Uuid::new_v4().to_string(),
        display_name: display_name.to_string(),
        mail_nickname: mail_nickname.to_string(),
        description,
        security_enabled: true,
        mail_enabled: false,
        created_date_time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    };
    let body = serde_json::to_value(&group).expect("group serializes");
    meta.resource_put(&record(group_id(&group.id), GROUP_TYPE, &group.id, body)).await?;
    Ok(group)
}

pub async fn get_group(meta: &dyn MetadataStore, object_id: &str) -> Result<Option<Group>, StorageError> {
    let r = meta.resource_get(&group_id(object_id)).await?;
    Ok(r.and_then(|r| serde_json::from_value(r.body).ok()))
}

pub async fn list_groups(meta: &dyn MetadataStore) -> Result<Vec<Group>, StorageError> {
    let filter = wharf_storage::ResourceFilter { resource_type: Some(GROUP_TYPE.into()), resource_group: None };
    Ok(meta.resource_list(&filter).await?.into_iter().filter_map(|r| serde_json::from_value(r.body).ok()).collect())
}

/// Deletes a group with its own memberships, and removes it from the groups it belonged to.
pub async fn delete_group(meta: &dyn MetadataStore, object_id: &str) -> Result<bool, StorageError> {
    let deleted = !meta.resource_delete_tree(&group_id(object_id)).await?.is_empty();
    remove_from_all_groups(meta, object_id).await?;
    Ok(deleted)
}

/// How an object relates to a group: a member (it gets the group's role assignments) or an
/// owner (it may change the group's members and owners, and delete it, without directory
/// rights). Each relation is a record of its own (`{group record}/members/{id}` or
/// `…/owners/{id}`), so concurrent changes to one group do not overwrite each other, and
/// deleting the group's record tree deletes its relations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupRelation {
    Member,
    Owner,
}

impl GroupRelation {
    fn record_type(self) -> &'static str {
        match self {
            GroupRelation::Member => MEMBERSHIP_TYPE,
            GroupRelation::Owner => OWNERSHIP_TYPE,
        }
    }

    /// The path segment of the relation, in Graph's URLs and in record ids.
    pub fn segment(self) -> &'static str {
        match self {
            GroupRelation::Member => "members",
            GroupRelation::Owner => "owners",
        }
    }
}

fn relation_id(relation: GroupRelation, group_object_id: &str, object_id: &str) -> String {
    format!("{}/{}/{}", group_id(group_object_id), relation.segment(), object_id.to_ascii_lowercase())
}

/// Every relation of one kind in the directory (for members: every direct membership).
pub async fn relations(meta: &dyn MetadataStore, relation: GroupRelation) -> Result<Vec<Membership>, StorageError> {
    let filter =
        wharf_storage::ResourceFilter { resource_type: Some(relation.record_type().into()), resource_group: None };
    Ok(meta.resource_list(&filter).await?.into_iter().filter_map(|r| serde_json::from_value(r.body).ok()).collect())
}

/// Every direct membership of the directory.
pub async fn memberships(meta: &dyn MetadataStore) -> Result<Vec<Membership>, StorageError> {
    relations(meta, GroupRelation::Member).await
}

/// A group's direct members, or its owners.
pub async fn related(
    meta: &dyn MetadataStore,
    relation: GroupRelation,
    group_object_id: &str,
) -> Result<Vec<Membership>, StorageError> {
    let gid = group_object_id.to_ascii_lowercase();
    Ok(relations(meta, relation).await?.into_iter().filter(|m| m.group_id == gid).collect())
}

/// Whether `object_id` has `relation` to the group (for owners: whether it owns it).
pub async fn is_related(
    meta: &dyn MetadataStore,
    relation: GroupRelation,
    group_object_id: &str,
    object_id: &str,
) -> Result<bool, StorageError> {
    Ok(meta.resource_get(&relation_id(relation, group_object_id, object_id)).await?.is_some())
}

/// Adds a member or an owner. `Conflict` if it already is one.
pub async fn relate(
    meta: &dyn MetadataStore,
    relation: GroupRelation,
    group_object_id: &str,
    object_id: &str,
    kind: MemberKind,
) -> Result<(), StorageError> {
    let m = Membership {
        group_id: group_object_id.to_ascii_lowercase(),
        member_id: object_id.to_ascii_lowercase(),
        member_kind: kind,
    };
    let id = relation_id(relation, &m.group_id, &m.member_id);
    let body = serde_json::to_value(&m).expect("relation serializes");
    // The name is the record id, so the unique-name insert refuses a second identical relation.
    meta.resource_insert_unique_name(&record(id.clone(), relation.record_type(), &id, body)).await
}

/// Removes a member or an owner; false if it was not one.
pub async fn unrelate(
    meta: &dyn MetadataStore,
    relation: GroupRelation,
    group_object_id: &str,
    object_id: &str,
) -> Result<bool, StorageError> {
    Ok(!meta.resource_delete_tree(&relation_id(relation, group_object_id, object_id)).await?.is_empty())
}

/// Removes an object from every group it is a direct member or an owner of (when it is deleted).
pub async fn remove_from_all_groups(meta: &dyn MetadataStore, object_id: &str) -> Result<(), StorageError> {
    let oid = object_id.to_ascii_lowercase();
    for relation in [GroupRelation::Member, GroupRelation::Owner] {
        for m in relations(meta, relation).await?.into_iter().filter(|m| m.member_id == oid) {
            unrelate(meta, relation, &m.group_id, &m.member_id).await?;
        }
    }
    Ok(())
}
