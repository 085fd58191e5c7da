//! Requests beyond the management API's basics: tokens for other audiences (the directory's
//! Graph subset), Graph calls, and management calls whose answers carry `wharf-warning` headers.

use reqwest::Method;
use serde_json::Value;

use crate::client::Client;
use crate::error::CliError;
use crate::profile::Account;

/// A token for `scope`, obtained with the signed-in account.
pub async fn token_for(client: &Client, scope: &str) -> Result<String, CliError> {
    let tenant = client.profile.tenant.clone().unwrap_or_else(|| "organizations".into());
    let v = match client.profile.account.clone() {
        Some(Account::User { refresh_token, .. }) => {
            client.request_token(&tenant, &[("grant_type", "refresh_token"), ("refresh_token", &refresh_token), ("scope", scope), ("client_id", "wharf-cli")]).await?
        }
        Some(Account::ServicePrincipal { app_id, secret }) => {
            client.request_token(&tenant, &[("grant_type", "client_credentials"), ("client_id", &app_id), ("client_secret", &secret), ("scope", scope)]).await?
        }
        None => return Err(CliError::Other("not signed in. Run 'wharf login' first.".into())),
    };
    v["access_token"].as_str().map(str::to_string).ok_or_else(|| CliError::Other("the server returned no access token".into()))
}

/// The Graph resource of a Wharf deployment is the server's own base URL (as az's custom
/// cloud registration names it).
pub fn graph_scope(client: &Client) -> String {
    format!("{}//.default", client.profile.server.trim_end_matches('/'))
}

async fn send(req: reqwest::RequestBuilder) -> Result<(Value, Vec<String>), CliError> {
    let resp = req.send().await?;
    let status = resp.status().as_u16();
    let warnings: Vec<String> = resp.headers().get_all("wharf-warning").iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
    let text = resp.text().await?;
    let json: Value = if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text.clone())) };
    if status >= 400 {
        let code = json["error"]["code"].as_str().unwrap_or("HttpError").to_string();
        let message = json["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| format!("the server answered HTTP {status}: {text}"));
        return Err(CliError::Service { status, code, message });
    }
    Ok((json, warnings))
}

pub async fn graph(client: &Client, token: &str, method: Method, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
    let url = format!("{}{}", client.profile.server.trim_end_matches('/'), path);
    let mut req = client.http().request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    Ok(send(req).await?.0)
}

/// A management call that also returns the server's `wharf-warning` headers.
pub async fn arm_with_warnings(client: &Client, method: Method, path: &str, api_version: &str, body: Option<&Value>) -> Result<(Value, Vec<String>), CliError> {
    let url = format!("{}{}", client.profile.server.trim_end_matches('/'), path);
    let mut req = client.http().request(method, url).query(&[("api-version", api_version)]);
    if let Some(t) = &client.profile.access_token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    send(req).await
}
