//! `wharf group create|show|list|delete|exists`.

use clap::Subcommand;
use reqwest::Method;
use serde_json::{Value, json};

use super::{confirm, parse_tags};
use crate::client::{Client, RESOURCES_API};
use crate::error::CliError;
use crate::output::{Table, columns};

#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Create a resource group (or update its tags).
    Create {
        #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
        name: String,
        #[arg(long, short = 'l')]
        location: String,
        /// Space-separated tags: key[=value].
        #[arg(long, num_args = 0..)]
        tags: Vec<String>,
    },
    /// Show a resource group.
    Show {
        #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
        name: String,
    },
    /// List resource groups.
    List,
    /// Check whether a resource group exists.
    Exists {
        #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
        name: String,
    },
    /// Delete a resource group and everything in it.
    Delete {
        #[arg(long, short = 'n', visible_alias = "resource-group", short_alias = 'g')]
        name: String,
        /// Do not prompt for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
        /// Accepted for az compatibility; deletion completes before the command returns.
        #[arg(long)]
        no_wait: bool,
    },
}

/// `-o table`: az's columns for `group list`, its generic table for the others.
pub fn table(cmd: &GroupCmd) -> Table {
    match cmd {
        GroupCmd::List => Table::Columns(|v| {
            v.as_array()
                .into_iter()
                .flatten()
                .map(|g| {
                    columns([
                        ("Name", g["name"].clone()),
                        ("Location", g["location"].clone()),
                        ("Status", g["properties"]["provisioningState"].clone()),
                    ])
                })
                .collect()
        }),
        GroupCmd::Create { .. } | GroupCmd::Show { .. } | GroupCmd::Exists { .. } | GroupCmd::Delete { .. } => {
            Table::Generic
        }
    }
}

fn path(client: &Client, name: &str) -> Result<String, CliError> {
    Ok(format!("/subscriptions/{}/resourcegroups/{name}", client.subscription()?))
}

pub async fn run(cmd: GroupCmd) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    match cmd {
        GroupCmd::Create { name, location, tags } => {
            let body = json!({"location": location, "tags": parse_tags(&tags)?});
            Ok(Some(client.arm(Method::PUT, &path(&client, &name)?, RESOURCES_API, Some(&body)).await?))
        }
        GroupCmd::Show { name } => Ok(Some(client.get(&path(&client, &name)?, RESOURCES_API).await?)),
        GroupCmd::List => {
            let v =
                client.get(&format!("/subscriptions/{}/resourcegroups", client.subscription()?), RESOURCES_API).await?;
            Ok(Some(v["value"].clone()))
        }
        GroupCmd::Exists { name } => match client.get(&path(&client, &name)?, RESOURCES_API).await {
            Ok(_) => Ok(Some(json!(true))),
            Err(CliError::Service { status: 404, .. }) => Ok(Some(json!(false))),
            Err(e) => Err(e),
        },
        GroupCmd::Delete { name, yes, no_wait: _ } => {
            confirm(
                &format!(
                    "Are you sure you want to perform this operation on resource group '{name}' and everything in it?"
                ),
                yes,
            )?;
            client.arm(Method::DELETE, &path(&client, &name)?, RESOURCES_API, None).await?;
            Ok(None)
        }
    }
}
