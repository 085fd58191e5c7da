//! `wharf login`, `wharf logout`, `wharf account show`.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::client::{Client, RESOURCES_API};
use crate::error::CliError;
use crate::profile::{self, Profile};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// URL of the Wharf server, e.g. http://127.0.0.1:5000.
    #[arg(long)]
    pub server: String,
}

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Show the current subscription.
    Show,
}

pub async fn login(a: LoginArgs) -> Result<Option<Value>, CliError> {
    let server = a.server.trim_end_matches('/').to_string();
    url::Url::parse(&server).map_err(|e| CliError::Usage(format!("argument --server: '{server}' is not a URL ({e})")))?;
    let client = Client::new(Profile { server: server.clone(), subscription: None, tenant: None })?;
    let subs = client.get("/subscriptions", RESOURCES_API).await?;
    let sub = subs["value"][0].clone();
    let profile = Profile {
        server,
        subscription: sub["subscriptionId"].as_str().map(str::to_string),
        tenant: sub["tenantId"].as_str().map(str::to_string),
    };
    profile::save(&profile)?;
    Ok(Some(json!([account_json(&profile, &sub)])))
}

fn account_json(p: &Profile, sub: &Value) -> Value {
    json!({
        "cloudName": "Wharf",
        "homeTenantId": p.tenant,
        "id": p.subscription,
        "isDefault": true,
        "name": sub["displayName"],
        "state": sub["state"],
        "tenantId": p.tenant,
        "server": p.server,
    })
}

pub fn logout() -> Result<Option<Value>, CliError> {
    profile::remove()?;
    Ok(None)
}

pub async fn account(cmd: AccountCmd) -> Result<Option<Value>, CliError> {
    match cmd {
        AccountCmd::Show => {
            let client = Client::from_profile()?;
            let sub = client.get(&format!("/subscriptions/{}", client.subscription()?), RESOURCES_API).await?;
            Ok(Some(account_json(&client.profile, &sub)))
        }
    }
}
