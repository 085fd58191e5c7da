//! `wharf identity create|show|list|delete`: user-assigned managed identities
//! (`Microsoft.ManagedIdentity/userAssignedIdentities`), printed flattened as az prints them.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::parse_tags;
use crate::client::{Client, RESOURCES_API};
use crate::error::CliError;

/// The api-version az 2.91 sends for identities.
pub const IDENTITY_API: &str = "2025-05-31-preview";
pub const IDENTITY_TYPE: &str = "Microsoft.ManagedIdentity/userAssignedIdentities";

#[derive(Debug, Subcommand)]
pub enum IdentityCmd {
    /// Create a user-assigned managed identity.
    Create {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: String,
        /// Location; defaults to the resource group's.
        #[arg(long, short = 'l')]
        location: Option<String>,
        /// Space-separated tags: key[=value].
        #[arg(long, num_args = 0..)]
        tags: Option<Vec<String>>,
    },
    /// Show a user-assigned managed identity.
    Show {
        #[arg(long, short = 'n', required_unless_present = "ids")]
        name: Option<String>,
        #[arg(long, short = 'g', required_unless_present = "ids")]
        resource_group: Option<String>,
        /// The identity's resource id.
        #[arg(long, conflicts_with_all = ["name", "resource_group"])]
        ids: Option<String>,
    },
    /// List user-assigned managed identities.
    List {
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Delete a user-assigned managed identity.
    Delete {
        #[arg(long, short = 'n', required_unless_present = "ids")]
        name: Option<String>,
        #[arg(long, short = 'g', required_unless_present = "ids")]
        resource_group: Option<String>,
        #[arg(long, conflicts_with_all = ["name", "resource_group"])]
        ids: Option<String>,
    },
}

fn identity_path(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{IDENTITY_TYPE}/{name}")
}

/// az's flattened identity: `properties` merged into the top level, plus `resourceGroup`.
pub fn flatten_identity(v: &Value) -> Value {
    let mut out = match super::acr_task::view::flatten(v) {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    if let Some(rg) = v
        .get("id")
        .and_then(Value::as_str)
        .and_then(|id| wharf_arm::ResourceId::parse(id).ok())
        .and_then(|id| id.resource_group)
    {
        out.insert("resourceGroup".into(), json!(rg));
    }
    let mut sorted: Vec<(String, Value)> = out.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(sorted.into_iter().collect())
}

fn target(sub: &str, name: Option<String>, rg: Option<String>, ids: Option<String>) -> Result<String, CliError> {
    match (ids, name, rg) {
        (Some(id), _, _) => Ok(id),
        (None, Some(n), Some(g)) => Ok(identity_path(sub, &g, &n)),
        _ => Err(CliError::Usage("usage error: --ids | --name NAME --resource-group GROUP".into())),
    }
}

pub async fn run(cmd: IdentityCmd) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    let sub = client.subscription()?.to_string();
    match cmd {
        IdentityCmd::Create { name, resource_group, location, tags } => {
            let location = match location {
                Some(l) => l,
                None => {
                    let rg = client
                        .get(&format!("/subscriptions/{sub}/resourcegroups/{resource_group}"), RESOURCES_API)
                        .await?;
                    rg["location"].as_str().unwrap_or("local").to_string()
                }
            };
            let mut body = json!({"location": location});
            if let Some(t) = &tags {
                body["tags"] = parse_tags(t)?;
            }
            let v = client
                .arm(Method::PUT, &identity_path(&sub, &resource_group, &name), IDENTITY_API, Some(&body))
                .await?;
            Ok(Some(flatten_identity(&v)))
        }
        IdentityCmd::Show { name, resource_group, ids } => {
            let v = client.get(&target(&sub, name, resource_group, ids)?, IDENTITY_API).await?;
            Ok(Some(flatten_identity(&v)))
        }
        IdentityCmd::List { resource_group } => {
            let ids: Vec<String> = match &resource_group {
                Some(rg) => {
                    let v = client
                        .get(
                            &format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{IDENTITY_TYPE}"),
                            IDENTITY_API,
                        )
                        .await?;
                    return Ok(Some(Value::Array(
                        v["value"].as_array().into_iter().flatten().map(flatten_identity).collect(),
                    )));
                }
                None => {
                    let filter: String =
                        url::form_urlencoded::byte_serialize(format!("resourceType eq '{IDENTITY_TYPE}'").as_bytes())
                            .collect();
                    let v =
                        client.get(&format!("/subscriptions/{sub}/resources?$filter={filter}"), RESOURCES_API).await?;
                    v["value"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r["id"].as_str().map(str::to_string))
                        .collect()
                }
            };
            let mut out = vec![];
            for id in ids {
                out.push(flatten_identity(&client.get(&id, IDENTITY_API).await?));
            }
            Ok(Some(Value::Array(out)))
        }
        IdentityCmd::Delete { name, resource_group, ids } => {
            client.arm(Method::DELETE, &target(&sub, name, resource_group, ids)?, IDENTITY_API, None).await?;
            Ok(None)
        }
    }
}
