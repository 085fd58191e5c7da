//! HTTP access to the management API, with ARM errors turned into [`CliError`]s.

use reqwest::Method;
use serde_json::Value;

use crate::error::CliError;
use crate::profile::Profile;

/// api-versions the CLI sends (the server accepts any well-formed one).
pub const RESOURCES_API: &str = "2024-11-01";
pub const REGISTRY_API: &str = "2025-11-01";

pub struct Client {
    http: reqwest::Client,
    pub profile: Profile,
}

impl Client {
    pub fn new(profile: Profile) -> Result<Client, CliError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("wharf-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| CliError::Other(format!("cannot build an HTTP client: {e}")))?;
        Ok(Client { http, profile })
    }

    pub fn from_profile() -> Result<Client, CliError> {
        Client::new(crate::profile::load()?)
    }

    pub fn subscription(&self) -> Result<&str, CliError> {
        self.profile
            .subscription
            .as_deref()
            .ok_or_else(|| CliError::Other("the profile has no subscription; run 'wharf login' again".into()))
    }

    /// Sends a management request; `path` starts with `/`. Returns the JSON body (Null when empty).
    pub async fn arm(&self, method: Method, path: &str, api_version: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let url = format!("{}{}", self.profile.server.trim_end_matches('/'), path);
        let mut req = self.http.request(method, &url).query(&[("api-version", api_version)]);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json: Value = if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text.clone())) };
        if status >= 400 {
            let code = json["error"]["code"].as_str().unwrap_or("HttpError").to_string();
            let message = json["error"]["message"].as_str().map(str::to_string).unwrap_or_else(|| format!("the server answered HTTP {status}: {text}"));
            return Err(CliError::Service { status, code, message });
        }
        Ok(json)
    }

    pub async fn get(&self, path: &str, api: &str) -> Result<Value, CliError> {
        self.arm(Method::GET, path, api, None).await
    }
}
