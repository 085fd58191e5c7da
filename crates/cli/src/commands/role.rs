//! `wharf role assignment …` and `wharf role definition …`, as az has them.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::client::Client;
use crate::error::CliError;
use crate::output::{Table, columns};

/// api-versions az sends for Microsoft.Authorization.
pub const ASSIGNMENTS_API: &str = "2022-04-01";
pub const DEFINITIONS_API: &str = "2022-05-01-preview";

#[derive(Debug, Subcommand)]
pub enum RoleCmd {
    /// Manage role assignments.
    Assignment {
        #[command(subcommand)]
        cmd: AssignmentCmd,
    },
    /// Manage role definitions.
    Definition {
        #[command(subcommand)]
        cmd: DefinitionCmd,
    },
}

#[derive(Debug, Args)]
pub struct AssigneeArgs {
    /// Assignee: a user principal name, a service principal's app id, or an object id.
    #[arg(long)]
    pub assignee: Option<String>,
    /// Object id of the assignee (skips the directory lookup).
    #[arg(long)]
    pub assignee_object_id: Option<String>,
    /// Type of the assignee given with --assignee-object-id.
    #[arg(long, value_parser = ["User", "ServicePrincipal", "Group", "ForeignGroup"])]
    pub assignee_principal_type: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AssignmentCmd {
    /// Create a role assignment.
    Create {
        #[command(flatten)]
        who: AssigneeArgs,
        /// Role name or id.
        #[arg(long)]
        role: String,
        /// Scope: a subscription, resource group or registry id.
        #[arg(long)]
        scope: Option<String>,
        /// Resource group, when --scope is not given.
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
        /// Condition (Azure's condition language, version 2.0).
        #[arg(long)]
        condition: Option<String>,
        /// Condition version (only 2.0).
        #[arg(long)]
        condition_version: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List role assignments.
    List {
        #[arg(long)]
        assignee: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        scope: Option<String>,
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
        /// Show assignments at every scope of the subscription, including system assignments.
        #[arg(long)]
        all: bool,
    },
    /// Delete role assignments.
    Delete {
        /// Assignment ids.
        #[arg(long, num_args = 1..)]
        ids: Vec<String>,
        #[arg(long)]
        assignee: Option<String>,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        scope: Option<String>,
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Update a role assignment from its JSON (e.g. to change the condition).
    Update {
        /// The assignment as JSON (as printed by create/list), or @file.
        #[arg(long)]
        role_assignment: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum DefinitionCmd {
    /// List role definitions.
    List {
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        scope: Option<String>,
        /// Only custom roles.
        #[arg(long)]
        custom_role_only: bool,
    },
    /// Create a custom role from JSON (Name, Description, Actions, NotActions, DataActions,
    /// NotDataActions, AssignableScopes), or @file.
    Create {
        #[arg(long)]
        role_definition: String,
    },
    /// Delete a custom role.
    Delete {
        #[arg(long)]
        name: String,
        #[arg(long)]
        scope: Option<String>,
    },
}

/// `-o table`: az's columns for `role assignment list` and `role definition list`, its generic
/// table for the others.
pub fn table(cmd: &RoleCmd) -> Table {
    match cmd {
        RoleCmd::Assignment { cmd: AssignmentCmd::List { .. } } => Table::Columns(|v| {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|a| {
                    columns([
                        ("Principal", a["principalName"].clone()),
                        ("Role", a["roleDefinitionName"].clone()),
                        ("Scope", a["scope"].clone()),
                    ])
                })
                .collect()
        }),
        RoleCmd::Definition { cmd: DefinitionCmd::List { .. } } => Table::Columns(|v| {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|d| {
                    columns([
                        ("Name", d["roleName"].clone()),
                        ("Type", d["type"].clone()),
                        ("Description", d["description"].clone()),
                    ])
                })
                .collect()
        }),
        RoleCmd::Assignment {
            cmd: AssignmentCmd::Create { .. } | AssignmentCmd::Delete { .. } | AssignmentCmd::Update { .. },
        }
        | RoleCmd::Definition { cmd: DefinitionCmd::Create { .. } | DefinitionCmd::Delete { .. } } => Table::Generic,
    }
}

fn read_arg(v: &str) -> Result<String, CliError> {
    match v.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("cannot read {path}: {e}"))),
        None => Ok(v.to_string()),
    }
}

fn is_guid(s: &str) -> bool {
    s.len() == 36
        && s.chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

/// Resolves an assignee to (object id, principal type) through the server's directory.
pub async fn resolve_assignee(client: &Client, assignee: &str) -> Result<(String, String), CliError> {
    if is_guid(assignee) {
        // An object id (or an app id): ask the directory, and fall back to the id itself, which
        // is how managed identities are named.
        if let Ok(found) = lookup(client, assignee).await {
            return Ok(found);
        }
        return Ok((assignee.to_string(), "ServicePrincipal".into()));
    }
    lookup(client, assignee).await
}

async fn lookup(client: &Client, assignee: &str) -> Result<(String, String), CliError> {
    let graph = client.graph_client().await?;
    let quoted = crate::client::odata_quote(assignee);
    if assignee.contains('@') {
        let users = graph.list("users", Some(&format!("userPrincipalName eq {quoted}"))).await?;
        if let Some(id) = users.first().and_then(|u| u["id"].as_str()) {
            return Ok((id.to_string(), "User".into()));
        }
    }
    let sps = graph.list("servicePrincipals", Some(&format!("servicePrincipalNames/any(c:c eq {quoted})"))).await?;
    if let Some(id) = sps.first().and_then(|u| u["id"].as_str()) {
        return Ok((id.to_string(), "ServicePrincipal".into()));
    }
    if is_guid(assignee) {
        let body = json!({"ids": [assignee], "types": ["user", "group", "servicePrincipal"]});
        let v = graph.call(Method::POST, "directoryObjects/getByIds", &[], Some(&body)).await?;
        if let Some(o) = v["value"].as_array().and_then(|a| a.first()) {
            let t = match o["@odata.type"].as_str().unwrap_or("") {
                "#microsoft.graph.user" => "User",
                "#microsoft.graph.group" => "Group",
                _ => "ServicePrincipal",
            };
            return Ok((o["id"].as_str().unwrap_or(assignee).to_string(), t.into()));
        }
    }
    Err(CliError::NotFound(format!(
        "Cannot find user or service principal in graph database for '{assignee}'. If the assignee is an appId, make sure the corresponding service principal is created with 'wharf ad sp create-for-rbac'."
    )))
}

async fn default_scope(client: &Client, scope: Option<String>, rg: Option<String>) -> Result<String, CliError> {
    let sub = client.subscription()?;
    Ok(match (scope, rg) {
        (Some(s), _) => s,
        (None, Some(rg)) => format!("/subscriptions/{sub}/resourceGroups/{rg}"),
        (None, None) => format!("/subscriptions/{sub}"),
    })
}

async fn role_definitions(client: &Client, scope: &str) -> Result<Vec<Value>, CliError> {
    let v = client.get(&format!("{scope}/providers/Microsoft.Authorization/roleDefinitions"), DEFINITIONS_API).await?;
    Ok(v["value"].as_array().cloned().unwrap_or_default())
}

/// Finds a role by name or id.
async fn role_id(client: &Client, scope: &str, role: &str) -> Result<String, CliError> {
    let roles = role_definitions(client, scope).await?;
    roles
        .iter()
        .find(|r| {
            r["properties"]["roleName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(role))
                || r["name"].as_str().is_some_and(|g| role.to_ascii_lowercase().ends_with(&g.to_ascii_lowercase()))
        })
        .and_then(|r| r["id"].as_str().map(str::to_string))
        .ok_or_else(|| {
            CliError::NotFound(format!("Role '{role}' doesn't exist. List roles with 'wharf role definition list'."))
        })
}

/// az's flattened assignment, with `roleDefinitionName` and `resourceGroup`.
fn flatten(a: &Value, roles: &[Value]) -> Value {
    let mut out = Map::new();
    for (k, v) in a.as_object().into_iter().flatten() {
        if k == "properties" {
            for (pk, pv) in v.as_object().into_iter().flatten() {
                out.insert(pk.clone(), pv.clone());
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    let guid = out
        .get("roleDefinitionId")
        .and_then(|v| v.as_str())
        .and_then(|s| s.rsplit('/').next())
        .unwrap_or("")
        .to_ascii_lowercase();
    let name = roles
        .iter()
        .find(|r| r["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&guid)))
        .and_then(|r| r["properties"]["roleName"].as_str());
    out.insert("roleDefinitionName".into(), json!(name));
    let rg = out
        .get("scope")
        .and_then(|s| s.as_str())
        .and_then(|s| wharf_arm::ResourceId::parse(s).ok())
        .and_then(|id| id.resource_group);
    out.insert("resourceGroup".into(), json!(rg));
    let mut sorted: Vec<(String, Value)> = out.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(sorted.into_iter().collect())
}

pub async fn run(cmd: RoleCmd) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    let sub_scope = format!("/subscriptions/{}", client.subscription()?);
    match cmd {
        RoleCmd::Assignment { cmd } => match cmd {
            AssignmentCmd::Create { who, role, scope, resource_group, condition, condition_version, description } => {
                let scope = default_scope(&client, scope, resource_group).await?;
                create_assignment(&client, &scope, who, &role, condition, condition_version, description).await
            }
            AssignmentCmd::List { assignee, role, scope, resource_group, all } => {
                list_assignments(&client, &sub_scope, assignee, role, scope, resource_group, all).await
            }
            AssignmentCmd::Delete { ids, assignee, role, scope, yes } => {
                delete_assignments(&client, &sub_scope, ids, assignee, role, scope, yes).await
            }
            AssignmentCmd::Update { role_assignment } => update_assignment(&client, &sub_scope, &role_assignment).await,
        },
        RoleCmd::Definition { cmd } => match cmd {
            DefinitionCmd::List { name, scope, custom_role_only } => {
                list_definitions(&client, scope.unwrap_or(sub_scope), name, custom_role_only).await
            }
            DefinitionCmd::Create { role_definition } => create_definition(&client, &sub_scope, &role_definition).await,
            DefinitionCmd::Delete { name, scope } => {
                delete_definition(&client, scope.unwrap_or(sub_scope), &name).await
            }
        },
    }
}

async fn create_assignment(
    client: &Client,
    scope: &str,
    who: AssigneeArgs,
    role: &str,
    condition: Option<String>,
    condition_version: Option<String>,
    description: Option<String>,
) -> Result<Option<Value>, CliError> {
    let (oid, ptype) = match (&who.assignee_object_id, &who.assignee) {
        (Some(oid), _) => {
            (oid.clone(), who.assignee_principal_type.clone().unwrap_or_else(|| "ServicePrincipal".into()))
        }
        (None, Some(a)) => resolve_assignee(client, a).await?,
        (None, None) => {
            return Err(CliError::Usage("usage error: --assignee STRING | --assignee-object-id GUID".into()));
        }
    };
    if condition_version.is_some() && condition.is_none() {
        return Err(CliError::Usage("--condition-version requires --condition".into()));
    }
    let role_id = role_id(client, scope, role).await?;
    let mut props = json!({"roleDefinitionId": role_id, "principalId": oid, "principalType": ptype});
    if let Some(c) = &condition {
        props["condition"] = json!(c);
        props["conditionVersion"] = json!(condition_version.as_deref().unwrap_or("2.0"));
    }
    if let Some(d) = &description {
        props["description"] = json!(d);
    }
    let name = uuid_v4();
    let path = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
    let (v, warnings) = crate::rest::arm_with_warnings(
        client,
        Method::PUT,
        &path,
        ASSIGNMENTS_API,
        Some(&json!({"properties": props})),
    )
    .await?;
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
    let roles = role_definitions(client, scope).await?;
    Ok(Some(flatten(&v, &roles)))
}

async fn list_assignments(
    client: &Client,
    sub_scope: &str,
    assignee: Option<String>,
    role: Option<String>,
    scope: Option<String>,
    resource_group: Option<String>,
    all: bool,
) -> Result<Option<Value>, CliError> {
    let at = default_scope(client, scope.clone(), resource_group.clone()).await?;
    let v = client.get(&format!("{at}/providers/Microsoft.Authorization/roleAssignments"), ASSIGNMENTS_API).await?;
    let roles = role_definitions(client, sub_scope).await?;
    let principal = match &assignee {
        Some(a) => Some(resolve_assignee(client, a).await?.0),
        None => None,
    };
    let explicit = scope.is_some() || resource_group.is_some();
    let list: Vec<Value> = v["value"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| flatten(a, &roles))
        .filter(|a| all || !explicit || a["scope"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&at)))
        .filter(|a| all || explicit || a["scope"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&at)))
        .filter(|a| {
            principal.as_ref().is_none_or(|p| a["principalId"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(p)))
        })
        .filter(|a| {
            role.as_ref().is_none_or(|r| {
                a["roleDefinitionName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(r))
                    || a["roleDefinitionId"]
                        .as_str()
                        .is_some_and(|i| i.to_ascii_lowercase().ends_with(&r.to_ascii_lowercase()))
            })
        })
        .collect();
    Ok(Some(Value::Array(with_principal_names(client, list).await)))
}

/// Adds `principalName` to each assignment, as az's `role assignment list` does: a user's
/// principal name, a service principal's first service principal name, a group's display name
/// (empty when the directory does not know the id). A directory the caller may not read leaves
/// the names out, as in az.
async fn with_principal_names(client: &Client, mut list: Vec<Value>) -> Vec<Value> {
    let mut ids: Vec<String> = list.iter().filter_map(|a| a["principalId"].as_str().map(str::to_string)).collect();
    ids.sort();
    ids.dedup();
    if ids.is_empty() {
        return list;
    }
    let Ok(graph) = client.graph_client().await else { return list };
    let body = json!({"ids": ids, "types": ["user", "group", "servicePrincipal", "directoryObjectPartnerReference"]});
    let Ok(found) = graph.call(Method::POST, "directoryObjects/getByIds", &[], Some(&body)).await else {
        return list;
    };
    let names: Map<String, Value> = found["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| Some((o["id"].as_str()?.to_ascii_lowercase(), json!(displayable_name(o)))))
        .collect();
    for a in &mut list {
        let id = a["principalId"].as_str().unwrap_or_default().to_ascii_lowercase();
        a["principalName"] = names.get(&id).cloned().unwrap_or(json!(""));
    }
    list
}

/// The name az shows for a directory object.
fn displayable_name(o: &Value) -> &str {
    if let Some(upn) = o.get("userPrincipalName") {
        return upn.as_str().unwrap_or_default();
    }
    if let Some(names) = o.get("servicePrincipalNames") {
        return names[0].as_str().unwrap_or_default();
    }
    o["displayName"].as_str().unwrap_or_default()
}

async fn delete_assignments(
    client: &Client,
    sub_scope: &str,
    ids: Vec<String>,
    assignee: Option<String>,
    role: Option<String>,
    scope: Option<String>,
    yes: bool,
) -> Result<Option<Value>, CliError> {
    let mut targets: Vec<String> = ids;
    if targets.is_empty() {
        if assignee.is_none() && role.is_none() && scope.is_none() {
            return Err(CliError::Usage("usage error: --ids IDS | --assignee/--role/--scope".into()));
        }
        let at = default_scope(client, scope.clone(), None).await?;
        let v = client.get(&format!("{at}/providers/Microsoft.Authorization/roleAssignments"), ASSIGNMENTS_API).await?;
        let roles = role_definitions(client, sub_scope).await?;
        let principal = match &assignee {
            Some(a) => Some(resolve_assignee(client, a).await?.0),
            None => None,
        };
        targets = v["value"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|a| flatten(a, &roles))
            .filter(|a| scope.is_none() || a["scope"].as_str().is_some_and(|s| s.eq_ignore_ascii_case(&at)))
            .filter(|a| {
                principal.as_ref().is_none_or(|p| a["principalId"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(p)))
            })
            .filter(|a| {
                role.as_ref()
                    .is_none_or(|r| a["roleDefinitionName"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(r)))
            })
            .filter_map(|a| a["id"].as_str().map(str::to_string))
            .collect();
        if targets.is_empty() {
            return Err(CliError::NotFound("No matched assignments were found to delete".into()));
        }
        if targets.len() > 1 {
            super::confirm(&format!("{} role assignments match; delete them all?", targets.len()), yes)?;
        }
    }
    for id in targets {
        client.arm(Method::DELETE, &id, ASSIGNMENTS_API, None).await?;
    }
    Ok(None)
}

async fn update_assignment(client: &Client, sub_scope: &str, role_assignment: &str) -> Result<Option<Value>, CliError> {
    let a: Value = serde_json::from_str(&read_arg(role_assignment)?)
        .map_err(|e| CliError::Usage(format!("--role-assignment is not JSON: {e}")))?;
    let id = a["id"].as_str().ok_or_else(|| CliError::Usage("the role assignment JSON needs its 'id'".into()))?;
    let props = json!({
        "roleDefinitionId": a["roleDefinitionId"], "principalId": a["principalId"], "principalType": a["principalType"],
        "condition": a["condition"], "conditionVersion": a["conditionVersion"], "description": a["description"],
    });
    let (v, warnings) =
        crate::rest::arm_with_warnings(client, Method::PUT, id, ASSIGNMENTS_API, Some(&json!({"properties": props})))
            .await?;
    for w in warnings {
        eprintln!("WARNING: {w}");
    }
    let roles = role_definitions(client, sub_scope).await?;
    Ok(Some(flatten(&v, &roles)))
}

async fn list_definitions(
    client: &Client,
    scope: String,
    name: Option<String>,
    custom_role_only: bool,
) -> Result<Option<Value>, CliError> {
    let roles = role_definitions(client, &scope).await?;
    let list: Vec<Value> = roles
        .into_iter()
        .filter(|r| {
            name.as_ref().is_none_or(|n| {
                r["properties"]["roleName"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(n))
                    || r["name"].as_str().is_some_and(|g| g.eq_ignore_ascii_case(n))
            })
        })
        .filter(|r| !custom_role_only || r["properties"]["type"] == "CustomRole")
        .map(|r| flatten_definition(&r))
        .collect();
    Ok(Some(Value::Array(list)))
}

async fn create_definition(client: &Client, sub_scope: &str, role_definition: &str) -> Result<Option<Value>, CliError> {
    let def: Value = serde_json::from_str(&read_arg(role_definition)?)
        .map_err(|e| CliError::Usage(format!("--role-definition is not JSON: {e}")))?;
    let scope = def
        .get("AssignableScopes")
        .or_else(|| def.get("assignableScopes"))
        .and_then(|s| s[0].as_str())
        .unwrap_or(sub_scope)
        .to_string();
    let name = uuid_v4();
    let v = client
        .arm(
            Method::PUT,
            &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{name}"),
            DEFINITIONS_API,
            Some(&json!({"properties": def})),
        )
        .await?;
    Ok(Some(flatten_definition(&v)))
}

async fn delete_definition(client: &Client, scope: String, name: &str) -> Result<Option<Value>, CliError> {
    let roles = role_definitions(client, &scope).await?;
    let role = roles
        .iter()
        .find(|r| {
            r["properties"]["type"] == "CustomRole"
                && (r["properties"]["roleName"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(name))
                    || r["name"].as_str().is_some_and(|g| g.eq_ignore_ascii_case(name)))
        })
        .ok_or_else(|| CliError::NotFound(format!("Custom role '{name}' doesn't exist.")))?;
    let guid = role["name"].as_str().unwrap_or_default();
    client
        .arm(
            Method::DELETE,
            &format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{guid}"),
            DEFINITIONS_API,
            None,
        )
        .await?;
    Ok(None)
}

fn flatten_definition(r: &Value) -> Value {
    let mut out = Map::new();
    for (k, v) in r.as_object().into_iter().flatten() {
        if k == "properties" {
            for (pk, pv) in v.as_object().into_iter().flatten() {
                let key = if pk == "type" { "roleType".to_string() } else { pk.clone() };
                out.insert(key, pv.clone());
            }
        } else {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}
