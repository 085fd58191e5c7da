//! Management calls whose answers carry `wharf-warning` headers (lint warnings of role
//! assignment conditions), shown by the CLI on stderr.

use reqwest::Method;
use serde_json::Value;

use crate::client::{Client, read_reply};
use crate::error::CliError;

/// A management call that also returns the server's `wharf-warning` headers.
pub async fn arm_with_warnings(
    client: &Client,
    method: Method,
    path: &str,
    api_version: &str,
    body: Option<&Value>,
) -> Result<(Value, Vec<String>), CliError> {
    let url = format!("{}{}", client.profile.server.trim_end_matches('/'), path);
    let mut req = client.http().request(method, url).query(&[("api-version", api_version)]);
    if let Some(t) = &client.profile.access_token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    read_reply(req.send().await?).await
}
