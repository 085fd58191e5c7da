//! `wharf resource …`: hosting resources (container groups, ML workspaces, web sites) that run
//! workloads with managed identities, their identities, and the managed-identity environment
//! (`IDENTITY_ENDPOINT`, `IDENTITY_HEADER`) their workloads use.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::parse_tags;
use crate::client::{Client, RESOURCES_API};
use crate::error::CliError;
use crate::output::{Table, columns};

/// The api-version sent for hosting resources (any well-formed one is accepted).
pub const HOST_API: &str = "2024-11-01";

/// Which resource a command acts on: `--ids`, or `-g/-n/--resource-type`.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// The resource id.
    #[arg(long, conflicts_with_all = ["name", "resource_group", "resource_type"])]
    pub ids: Option<String>,
    #[arg(long, short = 'g')]
    pub resource_group: Option<String>,
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// e.g. Microsoft.ContainerInstance/containerGroups.
    #[arg(long)]
    pub resource_type: Option<String>,
}

impl Target {
    fn id(&self, sub: &str) -> Result<String, CliError> {
        match (&self.ids, &self.resource_group, &self.name, &self.resource_type) {
            (Some(id), ..) => Ok(id.trim_end_matches('/').to_string()),
            (None, Some(g), Some(n), Some(t)) => Ok(resource_path(sub, g, t, n)),
            _ => Err(CliError::Usage(
                "usage error: --ids ID | --resource-group GROUP --name NAME --resource-type NAMESPACE/TYPE".into(),
            )),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ResourceCmd {
    /// Register a hosting resource.
    Create {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long, short = 'n')]
        name: String,
        /// Microsoft.ContainerInstance/containerGroups, Microsoft.MachineLearningServices/workspaces or Microsoft.Web/sites.
        #[arg(long)]
        resource_type: String,
        /// Location; defaults to the resource group's.
        #[arg(long, short = 'l')]
        location: Option<String>,
        /// The resource's properties as a JSON object.
        #[arg(long, short = 'p')]
        properties: Option<String>,
        /// Identities to assign: [system] for a system-assigned identity and/or user-assigned
        /// identity resource ids. Without values: [system].
        #[arg(long, num_args = 0.., value_name = "IDENTITY")]
        assign_identity: Option<Vec<String>>,
        /// Space-separated tags: key[=value].
        #[arg(long, num_args = 0..)]
        tags: Option<Vec<String>>,
    },
    /// Show a resource.
    Show {
        #[command(flatten)]
        target: Target,
    },
    /// List resources.
    List {
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
        #[arg(long)]
        resource_type: Option<String>,
        #[arg(long, short = 'n')]
        name: Option<String>,
    },
    /// Delete a resource (its system-assigned identity is deleted with it).
    Delete {
        #[command(flatten)]
        target: Target,
    },
    /// Manage a resource's managed identities.
    Identity {
        #[command(subcommand)]
        cmd: IdentityCmd,
    },
    /// Print the managed-identity environment for the resource's workloads: IDENTITY_ENDPOINT
    /// and a new IDENTITY_HEADER (the previous header stops working).
    WorkloadEnv {
        /// The resource id.
        #[arg(long)]
        ids: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum IdentityCmd {
    /// Assign identities ([system] and/or user-assigned identity ids; default [system]).
    Assign {
        #[command(flatten)]
        target: Target,
        #[arg(long, num_args = 1..)]
        identities: Option<Vec<String>>,
    },
    /// Remove identities ([system] and/or user-assigned identity ids; default [system]).
    Remove {
        #[command(flatten)]
        target: Target,
        #[arg(long, num_args = 1..)]
        identities: Option<Vec<String>>,
    },
    /// Show a resource's identities.
    Show {
        #[command(flatten)]
        target: Target,
    },
}

/// `-o table`: az's columns for `resource list`, its generic table for the others.
pub fn table(cmd: &ResourceCmd) -> Table {
    match cmd {
        ResourceCmd::List { .. } => Table::Columns(|v| {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|r| {
                    columns([
                        ("Name", r["name"].clone()),
                        ("ResourceGroup", r["resourceGroup"].clone()),
                        ("Location", r["location"].clone()),
                        ("Type", r["type"].clone()),
                        // Null when the resource has none: az then shows no Status column.
                        ("Status", r["provisioningState"].clone()),
                    ])
                })
                .collect()
        }),
        ResourceCmd::Create { .. }
        | ResourceCmd::Show { .. }
        | ResourceCmd::Delete { .. }
        | ResourceCmd::Identity { .. }
        | ResourceCmd::WorkloadEnv { .. } => Table::Generic,
    }
}

fn resource_path(sub: &str, rg: &str, resource_type: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{}/{name}", resource_type.trim_matches('/'))
}

fn is_system(v: &str) -> bool {
    matches!(v.to_ascii_lowercase().as_str(), "[system]" | "system")
}

/// Splits `--assign-identity`/`--identities` values into "system?" and user-assigned ids.
fn split_identities(values: &[String]) -> (bool, Vec<String>) {
    let system = values.is_empty() || values.iter().any(|v| is_system(v));
    let user = values.iter().filter(|v| !is_system(v)).cloned().collect();
    (system, user)
}

fn identity_type(system: bool, user: bool) -> &'static str {
    match (system, user) {
        (true, true) => "SystemAssigned, UserAssigned",
        (true, false) => "SystemAssigned",
        (false, true) => "UserAssigned",
        (false, false) => "None",
    }
}

/// az adds `resourceGroup` to resources it prints.
fn with_group(mut v: Value) -> Value {
    if let Some(rg) =
        v["id"].as_str().and_then(|id| wharf_arm::ResourceId::parse(id).ok()).and_then(|id| id.resource_group)
    {
        v["resourceGroup"] = json!(rg);
    }
    v
}

/// `az … identity show` prints the identity object.
fn identity_of(v: &Value) -> Value {
    v.get("identity").cloned().unwrap_or(Value::Null)
}

pub async fn run(cmd: ResourceCmd) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    let sub = client.subscription()?.to_string();
    match cmd {
        ResourceCmd::Create { resource_group, name, resource_type, location, properties, assign_identity, tags } => {
            let location = match location {
                Some(l) => l,
                None => {
                    let rg = client
                        .get(&format!("/subscriptions/{sub}/resourcegroups/{resource_group}"), RESOURCES_API)
                        .await?;
                    rg["location"].as_str().unwrap_or("local").to_string()
                }
            };
            let properties: Value = match properties {
                Some(p) => serde_json::from_str(&p)
                    .map_err(|e| CliError::Usage(format!("argument --properties: not valid JSON ({e})")))?,
                None => json!({}),
            };
            if !properties.is_object() {
                return Err(CliError::Usage("argument --properties: must be a JSON object".into()));
            }
            let mut body = json!({"location": location, "properties": properties});
            if let Some(values) = &assign_identity {
                let (system, user) = split_identities(values);
                let mut identity = json!({"type": identity_type(system, !user.is_empty())});
                if !user.is_empty() {
                    identity["userAssignedIdentities"] =
                        Value::Object(user.into_iter().map(|id| (id, json!({}))).collect());
                }
                body["identity"] = identity;
            }
            if let Some(t) = &tags {
                body["tags"] = parse_tags(t)?;
            }
            let v = client
                .arm(Method::PUT, &resource_path(&sub, &resource_group, &resource_type, &name), HOST_API, Some(&body))
                .await?;
            Ok(Some(with_group(v)))
        }
        ResourceCmd::Show { target } => Ok(Some(with_group(client.get(&target.id(&sub)?, HOST_API).await?))),
        ResourceCmd::List { resource_group, resource_type, name } => {
            let mut clauses = vec![];
            if let Some(t) = &resource_type {
                clauses.push(format!("resourceType eq '{t}'"));
            }
            if let Some(n) = &name {
                clauses.push(format!("name eq '{}'", n.replace('\'', "''")));
            }
            let base = match &resource_group {
                Some(rg) => format!("/subscriptions/{sub}/resourceGroups/{rg}/resources"),
                None => format!("/subscriptions/{sub}/resources"),
            };
            let path = if clauses.is_empty() {
                base
            } else {
                let f: String = url::form_urlencoded::byte_serialize(clauses.join(" and ").as_bytes()).collect();
                format!("{base}?$filter={f}")
            };
            let v = client.get(&path, RESOURCES_API).await?;
            Ok(Some(Value::Array(v["value"].as_array().into_iter().flatten().cloned().map(with_group).collect())))
        }
        ResourceCmd::Delete { target } => {
            client.arm(Method::DELETE, &target.id(&sub)?, HOST_API, None).await?;
            Ok(None)
        }
        ResourceCmd::Identity { cmd } => identity(&client, &sub, cmd).await,
        ResourceCmd::WorkloadEnv { ids } => {
            let v = client
                .arm(Method::POST, &format!("{}/workloadEnvironment", ids.trim_end_matches('/')), HOST_API, None)
                .await?;
            Ok(Some(v))
        }
    }
}

async fn identity(client: &Client, sub: &str, cmd: IdentityCmd) -> Result<Option<Value>, CliError> {
    let (target, values, assign) = match cmd {
        IdentityCmd::Show { target } => return Ok(Some(identity_of(&client.get(&target.id(sub)?, HOST_API).await?))),
        IdentityCmd::Assign { target, identities } => (target, identities.unwrap_or_default(), true),
        IdentityCmd::Remove { target, identities } => (target, identities.unwrap_or_default(), false),
    };
    let id = target.id(sub)?;
    let current = client.get(&id, HOST_API).await?;
    let current_type = current["identity"]["type"].as_str().unwrap_or("None").to_ascii_lowercase();
    let had_system = current_type.contains("systemassigned");
    let current_user: Vec<String> = current["identity"]["userAssignedIdentities"]
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let (system, user) = split_identities(&values);
    let mut entries = Map::new();
    let (new_system, remaining_user) = if assign {
        for u in &user {
            entries.insert(u.clone(), json!({}));
        }
        let mut all = current_user.clone();
        all.extend(user.iter().filter(|u| !current_user.iter().any(|c| c.eq_ignore_ascii_case(u))).cloned());
        (had_system || system, all.len())
    } else {
        for u in &user {
            if !current_user.iter().any(|c| c.eq_ignore_ascii_case(u)) {
                return Err(CliError::Usage(format!("the identity '{u}' is not assigned to the resource")));
            }
            entries.insert(u.clone(), Value::Null);
        }
        let left = current_user.iter().filter(|c| !user.iter().any(|u| u.eq_ignore_ascii_case(c))).count();
        let remove_system = values.is_empty() || values.iter().any(|v| is_system(v));
        (had_system && !remove_system, left)
    };
    let mut identity = json!({"type": identity_type(new_system, remaining_user > 0)});
    if remaining_user > 0 && !entries.is_empty() {
        identity["userAssignedIdentities"] = Value::Object(entries);
    }
    let v = client.arm(Method::PATCH, &id, HOST_API, Some(&json!({"identity": identity}))).await?;
    Ok(Some(identity_of(&v)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_values() {
        assert_eq!(split_identities(&[]), (true, vec![]));
        assert_eq!(split_identities(&["[system]".into(), "/x".into()]), (true, vec!["/x".to_string()]));
        assert_eq!(split_identities(&["/x".into()]), (false, vec!["/x".to_string()]));
        assert_eq!(identity_type(true, true), "SystemAssigned, UserAssigned");
    }
}
