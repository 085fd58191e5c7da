//! `wharf ad user …`, `wharf ad sp …` and `wharf ad group …`: the directory, through the
//! server's Graph subset, with az's flags and output shapes. Secrets are printed once, by the
//! command that creates them.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::{Client, GraphClient, odata_quote};
use crate::error::CliError;
use crate::output::{Table, columns};

#[derive(Debug, Subcommand)]
pub enum AdCmd {
    /// Manage users.
    User {
        #[command(subcommand)]
        cmd: UserCmd,
    },
    /// Manage service principals.
    Sp {
        #[command(subcommand)]
        cmd: SpCmd,
    },
    /// The signed-in user.
    SignedInUser {
        #[command(subcommand)]
        cmd: SignedInUserCmd,
    },
    /// Manage security groups. Role assignments to a group apply to its members, nested groups
    /// included.
    Group {
        #[command(subcommand)]
        cmd: GroupCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Create a security group. Without --force, an existing group with the same display name and
    /// mail nickname is returned instead, as az does.
    Create {
        /// The group's display name.
        #[arg(long)]
        display_name: String,
        /// Mail nickname (1-64 ASCII characters, no spaces).
        #[arg(long)]
        mail_nickname: String,
        /// Group description.
        #[arg(long)]
        description: Option<String>,
        /// Always create a new group.
        #[arg(long, value_parser = super::parse_bool, num_args = 0..=1, default_missing_value = "true")]
        force: Option<bool>,
    },
    /// Show a group.
    Show {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
    },
    /// Delete a group.
    Delete {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
    },
    /// List groups.
    List {
        /// Groups whose display name starts with this.
        #[arg(long)]
        display_name: Option<String>,
        /// An OData $filter.
        #[arg(long)]
        filter: Option<String>,
    },
    /// The object ids of the groups this group belongs to, directly or through nesting.
    GetMemberGroups {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
        /// Accepted for az compatibility: every Wharf group is a security group.
        #[arg(long, value_parser = super::parse_bool, num_args = 0..=1, default_missing_value = "true")]
        security_enabled_only: Option<bool>,
    },
    /// Manage a group's members.
    Member {
        #[command(subcommand)]
        cmd: GroupMemberCmd,
    },
    /// Manage a group's owners: users or service principals who may change its members and
    /// owners without directory rights.
    Owner {
        #[command(subcommand)]
        cmd: GroupOwnerCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupOwnerCmd {
    /// Add an owner (a user or a service principal).
    Add {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
        /// The owner's object id.
        #[arg(long)]
        owner_object_id: String,
    },
    /// Remove an owner.
    Remove {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
        /// The owner's object id.
        #[arg(long)]
        owner_object_id: String,
    },
    /// List a group's owners.
    List {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum GroupMemberCmd {
    /// Add a member: a user, a service principal (a managed identity's included) or a group.
    Add {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
        /// The member's object id.
        #[arg(long)]
        member_id: String,
    },
    /// Remove a member.
    Remove {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
        /// The member's object id.
        #[arg(long)]
        member_id: String,
    },
    /// List a group's direct members.
    List {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
    },
    /// Whether an object is a member of the group, directly or through nested groups.
    Check {
        /// The group's object id or display name (a prefix works if it matches one group).
        #[arg(long, short = 'g')]
        group: String,
        /// The object id to check.
        #[arg(long)]
        member_id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SignedInUserCmd {
    /// Show the signed-in user.
    Show,
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user.
    Create {
        /// The user's display name.
        #[arg(long)]
        display_name: String,
        /// The user's password (at least 8 characters).
        #[arg(long)]
        password: String,
        /// The user principal name, e.g. someuser@contoso.com.
        #[arg(long)]
        user_principal_name: String,
        /// Accepted for az compatibility; Wharf has no password-change flow.
        #[arg(long, value_parser = super::parse_bool, num_args = 0..=1, default_missing_value = "true")]
        force_change_password_next_sign_in: Option<bool>,
        /// Create the account disabled.
        #[arg(long, value_parser = super::parse_bool, num_args = 0..=1, default_missing_value = "true")]
        account_enabled: Option<bool>,
        /// Mail alias; defaults to the UPN's local part.
        #[arg(long)]
        mail_nickname: Option<String>,
    },
    /// Show a user (by object id or user principal name).
    Show {
        #[arg(long)]
        id: String,
    },
    /// List users.
    List {
        /// Only the user with this user principal name.
        #[arg(long)]
        upn: Option<String>,
        /// Users whose display name starts with this.
        #[arg(long)]
        display_name: Option<String>,
        /// An OData $filter.
        #[arg(long)]
        filter: Option<String>,
    },
    /// Delete a user (by object id or user principal name).
    Delete {
        #[arg(long)]
        id: String,
    },
    /// Change a user's display name, password or whether it may sign in. Disabling it or
    /// setting a password revokes the tokens it holds.
    Update {
        /// Object id or user principal name.
        #[arg(long)]
        id: String,
        #[arg(long)]
        display_name: Option<String>,
        /// A new password (at least 8 characters).
        #[arg(long)]
        password: Option<String>,
        #[arg(long, value_parser = super::parse_bool)]
        account_enabled: Option<bool>,
    },
    /// The groups a user belongs to, directly or through nesting.
    GetMemberGroups {
        /// Object id or user principal name.
        #[arg(long)]
        id: String,
        /// Accepted for az compatibility: every Wharf group is a security group.
        #[arg(long, value_parser = super::parse_bool, num_args = 0..=1, default_missing_value = "true")]
        security_enabled_only: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SpCmd {
    /// Create a service principal (and its application) with a client secret, optionally with
    /// role assignments.
    CreateForRbac {
        /// Display name; defaults to wharf-cli-<timestamp>. An existing service principal with this
        /// name gets a new secret instead, as az does.
        #[arg(long, short = 'n')]
        name: Option<String>,
        /// Role to assign at each scope (a role name or definition id).
        #[arg(long)]
        role: Option<String>,
        /// Space-separated scopes for the role assignments.
        #[arg(long, num_args = 1..)]
        scopes: Vec<String>,
        /// Years the secret is valid.
        #[arg(long, default_value_t = 1)]
        years: u32,
    },
    /// Manage a service principal's secrets.
    Credential {
        #[command(subcommand)]
        cmd: SpCredentialCmd,
    },
    /// List service principals.
    List {
        /// Service principals whose display name starts with this.
        #[arg(long)]
        display_name: Option<String>,
        /// The service principal with this name (app id, or a managed identity's resource id).
        #[arg(long)]
        spn: Option<String>,
        /// An OData $filter.
        #[arg(long)]
        filter: Option<String>,
        /// List all (accepted for az compatibility: Wharf always lists all).
        #[arg(long)]
        all: bool,
    },
    /// Show a service principal (by app id, service principal name or object id).
    Show {
        #[arg(long)]
        id: String,
    },
    /// Delete a service principal and its application (by app id or object id).
    Delete {
        #[arg(long)]
        id: String,
    },
    /// Change a service principal: `--set accountEnabled=false` stops it signing in and
    /// revokes its tokens; `--set displayName=NAME` renames it (and its application).
    Update {
        /// App id or object id.
        #[arg(long)]
        id: String,
        /// PROPERTY=VALUE (repeatable): accountEnabled, displayName.
        #[arg(long, required = true)]
        set: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SpCredentialCmd {
    /// Give a service principal a new secret. Older secrets are removed (unless --append) and
    /// tokens issued before the reset stop working.
    Reset {
        /// App id or object id of the service principal.
        #[arg(long)]
        id: String,
        /// Keep the existing secrets.
        #[arg(long)]
        append: bool,
        /// Years the secret is valid.
        #[arg(long, default_value_t = 1)]
        years: u32,
        /// Name of the secret.
        #[arg(long)]
        display_name: Option<String>,
    },
}

/// `-o table`: az's columns for `ad sp list` (sorted by display name, the object id shown),
/// its generic table for the others.
pub fn table(cmd: &AdCmd) -> Table {
    match cmd {
        AdCmd::Sp { cmd: SpCmd::List { .. } } => Table::Columns(|v| {
            let mut sps: Vec<&Value> = v.as_array().into_iter().flatten().collect();
            sps.sort_by(|a, b| a["displayName"].as_str().cmp(&b["displayName"].as_str()));
            sps.into_iter()
                .map(|sp| {
                    columns([
                        ("DisplayName", sp["displayName"].clone()),
                        ("Id", sp["id"].clone()),
                        ("AppId", sp["appId"].clone()),
                        ("CreatedDateTime", sp["createdDateTime"].clone()),
                    ])
                })
                .collect()
        }),
        AdCmd::Sp { .. } | AdCmd::User { .. } | AdCmd::SignedInUser { .. } | AdCmd::Group { .. } => Table::Generic,
    }
}

pub async fn run(cmd: AdCmd) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    let graph = client.graph_client().await?;
    match cmd {
        AdCmd::User { cmd } => user(&graph, cmd).await,
        AdCmd::Sp { cmd } => sp(&client, &graph, cmd).await,
        AdCmd::SignedInUser { cmd: SignedInUserCmd::Show } => {
            Ok(Some(strip_context(graph.call(Method::GET, "me", &[], None).await?)))
        }
        AdCmd::Group { cmd } => group(&graph, cmd).await,
    }
}

/// az prints Graph objects without their `@odata.context`.
fn strip_context(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.remove("@odata.context");
    }
    v
}

fn not_found(what: &str, id: &str) -> CliError {
    CliError::NotFound(format!("{what} '{id}' doesn't exist."))
}

async fn user(graph: &GraphClient<'_>, cmd: UserCmd) -> Result<Option<Value>, CliError> {
    match cmd {
        UserCmd::Create {
            display_name,
            password,
            user_principal_name,
            force_change_password_next_sign_in,
            account_enabled,
            mail_nickname,
        } => {
            let nickname =
                mail_nickname.unwrap_or_else(|| user_principal_name.split('@').next().unwrap_or_default().to_string());
            let body = json!({
                "accountEnabled": account_enabled.unwrap_or(true),
                "displayName": display_name,
                "mailNickname": nickname,
                "passwordProfile": {"password": password, "forceChangePasswordNextSignIn": force_change_password_next_sign_in.unwrap_or(false)},
                "userPrincipalName": user_principal_name,
            });
            Ok(Some(strip_context(graph.call(Method::POST, "users", &[], Some(&body)).await?)))
        }
        UserCmd::Show { id } => match graph.call(Method::GET, &format!("users/{}", encode(&id)), &[], None).await {
            Ok(v) => Ok(Some(strip_context(v))),
            Err(CliError::Service { status: 404, .. }) => Err(not_found("User", &id)),
            Err(e) => Err(e),
        },
        UserCmd::List { upn, display_name, filter } => {
            let f = match (upn, display_name, filter) {
                (Some(u), _, _) => Some(format!("userPrincipalName eq {}", odata_quote(&u))),
                (None, Some(d), _) => Some(format!("startswith(displayName,{})", odata_quote(&d))),
                (None, None, f) => f,
            };
            Ok(Some(Value::Array(graph.list("users", f.as_deref()).await?)))
        }
        UserCmd::Delete { id } => {
            match graph.call(Method::DELETE, &format!("users/{}", encode(&id)), &[], None).await {
                Ok(_) => Ok(None),
                Err(CliError::Service { status: 404, .. }) => Err(not_found("User", &id)),
                Err(e) => Err(e),
            }
        }
        UserCmd::Update { id, display_name, password, account_enabled } => {
            let mut body = serde_json::Map::new();
            if let Some(n) = display_name {
                body.insert("displayName".into(), json!(n));
            }
            if let Some(p) = password {
                body.insert("passwordProfile".into(), json!({"password": p, "forceChangePasswordNextSignIn": false}));
            }
            if let Some(e) = account_enabled {
                body.insert("accountEnabled".into(), json!(e));
            }
            if body.is_empty() {
                return Err(CliError::Usage(
                    "nothing to change: give --display-name, --password or --account-enabled".into(),
                ));
            }
            match graph.call(Method::PATCH, &format!("users/{}", encode(&id)), &[], Some(&Value::Object(body))).await {
                Ok(_) => Ok(None),
                Err(CliError::Service { status: 404, .. }) => Err(not_found("User", &id)),
                Err(e) => Err(e),
            }
        }
        UserCmd::GetMemberGroups { id, security_enabled_only } => {
            let ids = member_groups(graph, &format!("users/{}", encode(&id)), security_enabled_only).await?;
            // az shows each group's display name next to its id.
            let names = display_names(graph, &ids).await?;
            Ok(Some(Value::Array(
                ids.into_iter().map(|i| json!({"id": i, "displayName": names.get(&i.to_ascii_lowercase())})).collect(),
            )))
        }
    }
}

// ---- groups ----

/// Resolves `--group` as az does: an object id as given; otherwise the one group whose display
/// name equals it, else the one whose display name starts with it.
async fn resolve_group(graph: &GraphClient<'_>, group: &str) -> Result<String, CliError> {
    if uuid::Uuid::parse_str(group).is_ok() {
        return Ok(group.to_string());
    }
    for filter in
        [format!("displayName eq {}", odata_quote(group)), format!("startswith(displayName,{})", odata_quote(group))]
    {
        let found = graph.list("groups", Some(&filter)).await?;
        match found.as_slice() {
            [] => continue,
            [one] => {
                return one["id"]
                    .as_str()
                    .map(str::to_string)
                    .ok_or_else(|| CliError::Other("the server returned a group without an id".into()));
            }
            _ => return Err(CliError::Other(format!("More than one group match the name of '{group}'"))),
        }
    }
    Err(CliError::NotFound(format!("No group matches the name of '{group}'")))
}

/// `getMemberGroups` on `path` (`users/{id}` or `groups/{id}`): the transitive group ids.
async fn member_groups(
    graph: &GraphClient<'_>,
    path: &str,
    security_enabled_only: Option<bool>,
) -> Result<Vec<String>, CliError> {
    let body = json!({"securityEnabledOnly": security_enabled_only.unwrap_or(false)});
    let v = graph.call(Method::POST, &format!("{path}/getMemberGroups"), &[], Some(&body)).await?;
    Ok(v["value"].as_array().into_iter().flatten().filter_map(|i| i.as_str().map(str::to_string)).collect())
}

/// Display names of directory objects, by lowercase object id.
async fn display_names(
    graph: &GraphClient<'_>,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>, CliError> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(1000) {
        let body = json!({"ids": chunk, "types": ["user", "group", "servicePrincipal"]});
        let v = graph.call(Method::POST, "directoryObjects/getByIds", &[], Some(&body)).await?;
        for o in v["value"].as_array().into_iter().flatten() {
            if let (Some(id), Some(name)) = (o["id"].as_str(), o["displayName"].as_str()) {
                out.insert(id.to_ascii_lowercase(), name.to_string());
            }
        }
    }
    Ok(out)
}

/// A Graph 404 about the group, as az words it.
fn group_call_error(e: CliError, group: &str) -> CliError {
    match e {
        CliError::Service { status: 404, .. } => not_found("Group", group),
        e => e,
    }
}

async fn group(graph: &GraphClient<'_>, cmd: GroupCmd) -> Result<Option<Value>, CliError> {
    match cmd {
        GroupCmd::Create { display_name, mail_nickname, description, force } => {
            if !force.unwrap_or(false) {
                let filter = format!(
                    "displayName eq {} and mailNickname eq {}",
                    odata_quote(&display_name),
                    odata_quote(&mail_nickname)
                );
                let matches = graph.list("groups", Some(&filter)).await?;
                match matches.as_slice() {
                    [] => {}
                    [one] => {
                        eprintln!(
                            "WARNING: A group with the same display name and mail nickname already exists, returning."
                        );
                        return Ok(Some(one.clone()));
                    }
                    many => {
                        let ids: Vec<&str> = many.iter().filter_map(|g| g["id"].as_str()).collect();
                        return Err(CliError::Other(format!(
                            "There is more than one group with the same display and nick names: \"{}\". Please delete them first.",
                            ids.join(", ")
                        )));
                    }
                }
            }
            let mut body = json!({"displayName": display_name, "mailNickname": mail_nickname, "mailEnabled": false, "securityEnabled": true});
            if let Some(d) = description {
                body["description"] = json!(d);
            }
            Ok(Some(strip_context(graph.call(Method::POST, "groups", &[], Some(&body)).await?)))
        }
        GroupCmd::Show { group } => {
            let id = resolve_group(graph, &group).await?;
            let v = graph
                .call(Method::GET, &format!("groups/{}", encode(&id)), &[], None)
                .await
                .map_err(|e| group_call_error(e, &group))?;
            Ok(Some(strip_context(v)))
        }
        GroupCmd::Delete { group } => {
            let id = resolve_group(graph, &group).await?;
            graph
                .call(Method::DELETE, &format!("groups/{}", encode(&id)), &[], None)
                .await
                .map_err(|e| group_call_error(e, &group))?;
            Ok(None)
        }
        GroupCmd::List { display_name, filter } => {
            let mut clauses: Vec<String> = filter.into_iter().collect();
            clauses.extend(display_name.map(|d| format!("startswith(displayName,{})", odata_quote(&d))));
            let f = (!clauses.is_empty()).then(|| clauses.join(" and "));
            Ok(Some(Value::Array(graph.list("groups", f.as_deref()).await?)))
        }
        GroupCmd::GetMemberGroups { group, security_enabled_only } => {
            let id = resolve_group(graph, &group).await?;
            let ids = member_groups(graph, &format!("groups/{}", encode(&id)), security_enabled_only)
                .await
                .map_err(|e| group_call_error(e, &group))?;
            Ok(Some(json!(ids)))
        }
        GroupCmd::Member { cmd } => group_member(graph, cmd).await,
        GroupCmd::Owner { cmd } => group_owner(graph, cmd).await,
    }
}

/// Adds (`add: true`) or removes an object as a group's `members` or `owners` (Graph's `$ref`).
async fn change_related(
    graph: &GraphClient<'_>,
    relation: &str,
    group: &str,
    object_id: &str,
    add: bool,
) -> Result<Option<Value>, CliError> {
    let id = resolve_group(graph, group).await?;
    if add {
        let reference = format!("{}/v1.0/directoryObjects/{object_id}", graph.base_url());
        graph
            .call(
                Method::POST,
                &format!("groups/{}/{relation}/$ref", encode(&id)),
                &[],
                Some(&json!({"@odata.id": reference})),
            )
            .await?;
    } else {
        graph
            .call(Method::DELETE, &format!("groups/{}/{relation}/{}/$ref", encode(&id), encode(object_id)), &[], None)
            .await?;
    }
    Ok(None)
}

/// A group's `members` or `owners`.
async fn list_related(graph: &GraphClient<'_>, relation: &str, group: &str) -> Result<Option<Value>, CliError> {
    let id = resolve_group(graph, group).await?;
    let objects = graph
        .list(&format!("groups/{}/{relation}", encode(&id)), None)
        .await
        .map_err(|e| group_call_error(e, group))?;
    Ok(Some(Value::Array(objects)))
}

async fn group_owner(graph: &GraphClient<'_>, cmd: GroupOwnerCmd) -> Result<Option<Value>, CliError> {
    match cmd {
        GroupOwnerCmd::Add { group, owner_object_id } => {
            change_related(graph, "owners", &group, &owner_object_id, true).await
        }
        GroupOwnerCmd::Remove { group, owner_object_id } => {
            change_related(graph, "owners", &group, &owner_object_id, false).await
        }
        GroupOwnerCmd::List { group } => list_related(graph, "owners", &group).await,
    }
}

async fn group_member(graph: &GraphClient<'_>, cmd: GroupMemberCmd) -> Result<Option<Value>, CliError> {
    match cmd {
        GroupMemberCmd::Add { group, member_id } => change_related(graph, "members", &group, &member_id, true).await,
        GroupMemberCmd::Remove { group, member_id } => {
            change_related(graph, "members", &group, &member_id, false).await
        }
        GroupMemberCmd::List { group } => list_related(graph, "members", &group).await,
        GroupMemberCmd::Check { group, member_id } => {
            // As az: checkMemberGroups on the member, asking about this one group.
            let id = resolve_group(graph, &group).await?;
            let body = json!({"groupIds": [id]});
            let v = graph
                .call(
                    Method::POST,
                    &format!("directoryObjects/{}/checkMemberGroups", encode(&member_id)),
                    &[],
                    Some(&body),
                )
                .await?;
            let member = v["value"]
                .as_array()
                .is_some_and(|a| a.iter().any(|g| g.as_str().is_some_and(|g| g.eq_ignore_ascii_case(&id))));
            Ok(Some(json!({"value": member})))
        }
    }
}

fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Finds a service principal as az does: by service principal name (app id), then by object id.
async fn find_sp(graph: &GraphClient<'_>, id: &str) -> Result<Value, CliError> {
    let by_name = graph
        .list("servicePrincipals", Some(&format!("servicePrincipalNames/any(c:c eq {})", odata_quote(id))))
        .await?;
    if let Some(sp) = by_name.into_iter().next() {
        return Ok(sp);
    }
    match graph.call(Method::GET, &format!("servicePrincipals/{}", encode(id)), &[], None).await {
        Ok(v) => Ok(strip_context(v)),
        Err(CliError::Service { status: 404, .. }) => Err(not_found("Service principal", id)),
        Err(e) => Err(e),
    }
}

/// The application object of an app id.
async fn find_app(graph: &GraphClient<'_>, app_id: &str) -> Result<Value, CliError> {
    graph
        .list("applications", Some(&format!("appId eq {}", odata_quote(app_id))))
        .await?
        .into_iter()
        .next()
        .ok_or_else(|| not_found("Application", app_id))
}

fn end_date(years: u32) -> String {
    let secs = crate::client::now_secs() + i64::from(years.max(1)) * 365 * 86_400;
    // RFC 3339 from unix seconds, without a date library: days since the epoch to a civil date.
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Removes the application's secrets (unless `append`) and adds a new one; returns its text.
/// The server revokes the principal's earlier tokens when a secret is removed.
async fn reset_secret(
    graph: &GraphClient<'_>,
    app: &Value,
    append: bool,
    years: u32,
    display_name: Option<String>,
) -> Result<String, CliError> {
    let app_object_id = app["id"].as_str().unwrap_or_default().to_string();
    if !append {
        for c in app["passwordCredentials"].as_array().into_iter().flatten() {
            if let Some(key) = c["keyId"].as_str() {
                graph
                    .call(
                        Method::POST,
                        &format!("applications/{app_object_id}/removePassword"),
                        &[],
                        Some(&json!({"keyId": key})),
                    )
                    .await?;
            }
        }
    }
    let body = json!({"passwordCredential": {"displayName": display_name.unwrap_or_else(|| "rbac".into()), "endDateTime": end_date(years)}});
    let v = graph.call(Method::POST, &format!("applications/{app_object_id}/addPassword"), &[], Some(&body)).await?;
    v["secretText"].as_str().map(str::to_string).ok_or_else(|| CliError::Other("the server returned no secret".into()))
}

async fn sp(client: &Client, graph: &GraphClient<'_>, cmd: SpCmd) -> Result<Option<Value>, CliError> {
    let tenant = client.profile.tenant.clone().unwrap_or_default();
    match cmd {
        SpCmd::CreateForRbac { name, role, scopes, years } => {
            create_for_rbac(client, graph, &tenant, name, role, &scopes, years).await
        }
        SpCmd::Credential { cmd: SpCredentialCmd::Reset { id, append, years, display_name } } => {
            reset_credential(graph, &tenant, &id, append, years, display_name).await
        }
        SpCmd::List { display_name, spn, filter, all: _ } => list_sps(graph, display_name, spn, filter).await,
        SpCmd::Show { id } => Ok(Some(find_sp(graph, &id).await?)),
        SpCmd::Update { id, set } => update_sp(graph, &id, &set).await,
        SpCmd::Delete { id } => delete_sp(graph, &id).await,
    }
}

async fn create_for_rbac(
    client: &Client,
    graph: &GraphClient<'_>,
    tenant: &str,
    name: Option<String>,
    role: Option<String>,
    scopes: &[String],
    years: u32,
) -> Result<Option<Value>, CliError> {
    if role.is_some() == scopes.is_empty() {
        return Err(CliError::Usage(
            "usage error: to create role assignments, specify both --role and --scopes.".into(),
        ));
    }
    let name = name.unwrap_or_else(|| format!("wharf-cli-{}", crate::client::now_secs()));
    let (sp, app) = match existing_application(graph, &name).await? {
        Some(app) => {
            eprintln!(
                "WARNING: Found an existing application instance: (id) {}. We will patch it.",
                app["id"].as_str().unwrap_or_default()
            );
            let app_id = app["appId"].as_str().unwrap_or_default();
            let sp = graph
                .list("servicePrincipals", Some(&format!("servicePrincipalNames/any(c:c eq {})", odata_quote(app_id))))
                .await?
                .into_iter()
                .next();
            let sp = match sp {
                Some(sp) => sp,
                None => graph.call(Method::POST, "servicePrincipals", &[], Some(&json!({"appId": app_id}))).await?,
            };
            (sp, app)
        }
        None => {
            refuse_foreign_principal(graph, &name).await?;
            let app = graph.call(Method::POST, "applications", &[], Some(&json!({"displayName": name}))).await?;
            let sp = graph.call(Method::POST, "servicePrincipals", &[], Some(&json!({"appId": app["appId"]}))).await?;
            (sp, app)
        }
    };
    let password = reset_secret(graph, &app, false, years, None).await?;
    if let Some(role) = role {
        let sp_object_id = sp["id"].as_str().unwrap_or_default();
        for scope in scopes {
            eprintln!("Creating '{role}' role assignment under scope '{scope}'");
            assign_role(client, &role, scope, sp_object_id, "ServicePrincipal").await?;
        }
    }
    eprintln!(
        "The output includes credentials that you must protect. Be sure that you do not include these credentials in your code or check the credentials into your source control."
    );
    Ok(Some(json!({"appId": sp["appId"], "displayName": sp["displayName"], "password": password, "tenant": tenant})))
}

/// The directory's application with exactly this display name, which `create-for-rbac` patches
/// instead of registering another, as az does; two of them are an error, as in az.
async fn existing_application(graph: &GraphClient<'_>, name: &str) -> Result<Option<Value>, CliError> {
    let mut apps: Vec<Value> = graph
        .list("applications", Some(&format!("displayName eq {}", odata_quote(name))))
        .await?
        .into_iter()
        .filter(|a| a["displayName"] == name)
        .collect();
    if apps.len() > 1 {
        let ids: Vec<&str> = apps.iter().filter_map(|a| a["id"].as_str()).collect();
        return Err(CliError::Other(format!(
            "More than one application have the same display name '{name}': (id) {}, please remove them first.",
            ids.join(", ")
        )));
    }
    Ok(apps.pop())
}

/// Refuses a display name that belongs to a service principal whose application is not in the
/// directory: Wharf's built-in principals of trusted services (as Microsoft's own service
/// principals in an Entra tenant). Such a principal cannot be patched, and a new application of
/// the same name would leave two principals nobody can tell apart (az would even give the
/// built-in one the requested roles). docs/decisions.md: "create-for-rbac and built-in names".
async fn refuse_foreign_principal(graph: &GraphClient<'_>, name: &str) -> Result<(), CliError> {
    let sps = graph.list("servicePrincipals", Some(&format!("displayName eq {}", odata_quote(name)))).await?;
    let Some(sp) = sps.iter().find(|sp| sp["displayName"] == name && sp["servicePrincipalType"] == "Application")
    else {
        return Ok(());
    };
    let app_id = sp["appId"].as_str().unwrap_or_default();
    if !graph.list("applications", Some(&format!("appId eq {}", odata_quote(app_id)))).await?.is_empty() {
        return Ok(());
    }
    let builtin = sp["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find_map(|t| t.strip_prefix("WharfBuiltin:"));
    let what = match builtin {
        Some(service) => format!("Wharf's built-in service principal of the trusted service '{service}'"),
        None => "a service principal whose application is not in this directory".to_string(),
    };
    Err(CliError::Usage(format!(
        "'{name}' is the display name of {what} (appId {app_id}): it cannot be patched or given a secret. Choose another --name."
    )))
}

async fn reset_credential(
    graph: &GraphClient<'_>,
    tenant: &str,
    id: &str,
    append: bool,
    years: u32,
    display_name: Option<String>,
) -> Result<Option<Value>, CliError> {
    let sp = find_sp(graph, id).await?;
    if sp["servicePrincipalType"] != "Application" {
        return Err(CliError::Usage(format!("'{id}' is a managed identity: it has no secrets to reset.")));
    }
    let app_id = sp["appId"].as_str().unwrap_or_default().to_string();
    let app = find_app(graph, &app_id).await?;
    let password = reset_secret(graph, &app, append, years, display_name).await?;
    eprintln!(
        "The output includes credentials that you must protect. Be sure that you do not include these credentials in your code or check the credentials into your source control."
    );
    Ok(Some(json!({"appId": app_id, "password": password, "tenant": tenant})))
}

async fn list_sps(
    graph: &GraphClient<'_>,
    display_name: Option<String>,
    spn: Option<String>,
    filter: Option<String>,
) -> Result<Option<Value>, CliError> {
    let f = match (spn, display_name, filter) {
        (Some(s), _, _) => Some(format!("servicePrincipalNames/any(c:c eq {})", odata_quote(&s))),
        (None, Some(d), _) => Some(format!("startswith(displayName,{})", odata_quote(&d))),
        (None, None, f) => f,
    };
    Ok(Some(Value::Array(graph.list("servicePrincipals", f.as_deref()).await?)))
}

async fn update_sp(graph: &GraphClient<'_>, id: &str, set: &[String]) -> Result<Option<Value>, CliError> {
    let sp = find_sp(graph, id).await?;
    let (mut sp_body, mut app_body) = (serde_json::Map::new(), serde_json::Map::new());
    for item in set {
        match item.split_once('=') {
            Some(("accountEnabled", v)) => {
                let enabled = super::parse_bool(v).map_err(CliError::Usage)?;
                sp_body.insert("accountEnabled".into(), json!(enabled));
            }
            Some(("displayName", v)) if !v.trim().is_empty() => {
                app_body.insert("displayName".into(), json!(v.trim()));
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "cannot set '{item}': use accountEnabled=true|false or displayName=NAME"
                )));
            }
        }
    }
    if !app_body.is_empty() {
        if sp["servicePrincipalType"] != "Application" {
            return Err(CliError::Usage(format!(
                "'{id}' is a managed identity: it is renamed through its Azure resource."
            )));
        }
        let app = find_app(graph, sp["appId"].as_str().unwrap_or_default()).await?;
        graph
            .call(
                Method::PATCH,
                &format!("applications/{}", app["id"].as_str().unwrap_or_default()),
                &[],
                Some(&Value::Object(app_body)),
            )
            .await?;
    }
    if !sp_body.is_empty() {
        graph
            .call(
                Method::PATCH,
                &format!("servicePrincipals/{}", sp["id"].as_str().unwrap_or_default()),
                &[],
                Some(&Value::Object(sp_body)),
            )
            .await?;
    }
    Ok(None)
}

async fn delete_sp(graph: &GraphClient<'_>, id: &str) -> Result<Option<Value>, CliError> {
    let sp = find_sp(graph, id).await?;
    if sp["servicePrincipalType"] != "Application" {
        return Err(CliError::Usage(format!(
            "'{id}' is a managed identity: delete its resource or detach it instead."
        )));
    }
    // Wharf has no `ad app` commands: deleting the application removes the service
    // principal with it, so nothing is left behind.
    let app = find_app(graph, sp["appId"].as_str().unwrap_or_default()).await?;
    graph.call(Method::DELETE, &format!("applications/{}", app["id"].as_str().unwrap_or_default()), &[], None).await?;
    Ok(None)
}

/// Role-assignment api-versions az uses.
const ROLE_DEFINITIONS_API: &str = "2022-05-01-preview";
const ROLE_ASSIGNMENTS_API: &str = "2022-04-01";

/// Creates a role assignment as az does: the role definition looked up by name at the scope
/// (a definition id or GUID is used as given), then `PUT {scope}/…/roleAssignments/{new guid}`.
async fn assign_role(
    client: &Client,
    role: &str,
    scope: &str,
    principal_id: &str,
    principal_type: &str,
) -> Result<Value, CliError> {
    let scope = scope.trim_end_matches('/');
    let is_guid = uuid::Uuid::parse_str(role).is_ok();
    let definition_id = if role.to_ascii_lowercase().contains("/providers/microsoft.authorization/roledefinitions/") {
        role.to_string()
    } else if is_guid {
        format!("/subscriptions/{}/providers/Microsoft.Authorization/roleDefinitions/{role}", client.subscription()?)
    } else {
        let filter: String =
            url::form_urlencoded::byte_serialize(format!("roleName eq {}", odata_quote(role)).as_bytes()).collect();
        let defs = client
            .get(
                &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions?$filter={filter}"),
                ROLE_DEFINITIONS_API,
            )
            .await?;
        defs["value"]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|d| d["id"].as_str())
            .map(str::to_string)
            .ok_or_else(|| CliError::NotFound(format!("Role '{role}' doesn't exist.")))?
    };
    let body = json!({"properties": {"roleDefinitionId": definition_id, "principalId": principal_id, "principalType": principal_type}});
    let name = uuid::Uuid::new_v4();
    client
        .arm(
            Method::PUT,
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}"),
            ROLE_ASSIGNMENTS_API,
            Some(&body),
        )
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
    }
}
