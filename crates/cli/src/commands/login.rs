//! `wharf login`, `wharf logout`, `wharf account show`.

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use crate::client::{Client, MANAGEMENT_SCOPE, RESOURCES_API};
use crate::error::CliError;
use crate::profile::{self, Account, Profile};

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// URL of the Wharf server, e.g. http://127.0.0.1:5000 [default: the current profile's].
    #[arg(long)]
    pub server: Option<String>,
    /// User name (a user principal name), or a service principal's app id with --service-principal.
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Password or client secret.
    #[arg(long, short = 'p')]
    pub password: Option<String>,
    /// Read the password from standard input.
    #[arg(long, conflicts_with = "password")]
    pub password_stdin: bool,
    /// Sign in as a service principal.
    #[arg(long)]
    pub service_principal: bool,
    /// Tenant id (required with --service-principal, as for az).
    #[arg(long, short = 't')]
    pub tenant: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccountCmd {
    /// Show the current subscription.
    Show,
    /// Print a management access token (as az account get-access-token).
    GetAccessToken,
}

pub async fn login(a: LoginArgs) -> Result<Option<Value>, CliError> {
    let existing = profile::load().ok();
    let server = match a.server.or_else(|| existing.as_ref().map(|p| p.server.clone())) {
        Some(s) => s.trim_end_matches('/').to_string(),
        None => return Err(CliError::Usage("the following arguments are required: --server".into())),
    };
    url::Url::parse(&server)
        .map_err(|e| CliError::Usage(format!("argument --server: '{server}' is not a URL ({e})")))?;
    let username =
        a.username.ok_or_else(|| CliError::Usage("the following arguments are required: --username/-u".into()))?;
    let password = match (a.password, a.password_stdin) {
        (Some(p), _) => p,
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_line(&mut s)
                .map_err(|e| CliError::Other(format!("cannot read the password from stdin: {e}")))?;
            s.trim_end_matches(['\r', '\n']).to_string()
        }
        (None, false) => {
            return Err(CliError::Usage("a password is required: pass --password or --password-stdin".into()));
        }
    };
    let mut client = Client::new(Profile { server: server.clone(), ..Profile::default() })?;
    let (tenant, account, token) = if a.service_principal {
        let tenant = a.tenant.ok_or_else(|| CliError::Usage("--tenant is required with --service-principal".into()))?;
        let v = client
            .request_token(
                &tenant,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", &username),
                    ("client_secret", &password),
                    ("scope", MANAGEMENT_SCOPE),
                ],
            )
            .await?;
        (tenant, Account::ServicePrincipal { app_id: username.clone(), secret: password }, v)
    } else {
        let tenant = a.tenant.unwrap_or_else(|| "organizations".into());
        let v = client
            .request_token(
                &tenant,
                &[
                    ("grant_type", "password"),
                    ("username", &username),
                    ("password", &password),
                    ("scope", &format!("{MANAGEMENT_SCOPE} offline_access")),
                    ("client_id", "wharf-cli"),
                ],
            )
            .await?;
        let rt = v["refresh_token"].as_str().unwrap_or_default().to_string();
        (tenant, Account::User { username: username.clone(), refresh_token: rt }, v)
    };
    client.store_token(&token);
    let subs = client.get("/subscriptions", RESOURCES_API).await?;
    let sub = subs["value"][0].clone();
    let tenant = sub["tenantId"].as_str().map(str::to_string).unwrap_or(tenant);
    client.profile.subscription = sub["subscriptionId"].as_str().map(str::to_string);
    client.profile.tenant = Some(tenant);
    client.profile.account = Some(account);
    profile::save(&client.profile)?;
    Ok(Some(json!([account_json(&client.profile, &sub)])))
}

fn account_json(p: &Profile, sub: &Value) -> Value {
    let user = match &p.account {
        Some(Account::User { username, .. }) => json!({"name": username, "type": "user"}),
        Some(Account::ServicePrincipal { app_id, .. }) => json!({"name": app_id, "type": "servicePrincipal"}),
        None => Value::Null,
    };
    json!({
        "cloudName": "Wharf",
        "environmentName": "Wharf",
        "homeTenantId": p.tenant,
        "id": p.subscription,
        "isDefault": true,
        "name": sub["displayName"],
        "state": sub["state"],
        "tenantId": p.tenant,
        "user": user,
        "server": p.server,
    })
}

pub fn logout() -> Result<Option<Value>, CliError> {
    profile::remove()?;
    Ok(None)
}

pub async fn account(cmd: AccountCmd) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    match cmd {
        AccountCmd::Show => {
            let sub = client.get(&format!("/subscriptions/{}", client.subscription()?), RESOURCES_API).await?;
            Ok(Some(account_json(&client.profile, &sub)))
        }
        AccountCmd::GetAccessToken => Ok(Some(json!({
            "accessToken": client.profile.access_token,
            "expiresOn": client.profile.expires_on,
            "subscription": client.profile.subscription,
            "tenant": client.profile.tenant,
            "tokenType": "Bearer",
        }))),
    }
}
