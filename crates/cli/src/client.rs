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

/// The scope the CLI asks management tokens for (az's, with its double slash).
pub const MANAGEMENT_SCOPE: &str = "https://management.core.windows.net//.default";

/// An HTTP client builder with the CLI's user agent and the extra trust anchors named by
/// `WHARF_CA_BUNDLE`, `REQUESTS_CA_BUNDLE` or `SSL_CERT_FILE` (the CA of a
/// `--tls-self-signed` server), the variables az and the Python SDKs read.
pub fn http_builder() -> reqwest::ClientBuilder {
    let mut builder = reqwest::Client::builder().user_agent(concat!("wharf-cli/", env!("CARGO_PKG_VERSION")));
    let roots = ["WHARF_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .filter(|p| !p.is_empty())
        .filter_map(|p| std::fs::read(p).ok())
        .flat_map(|pem| reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default());
    for root in roots {
        builder = builder.add_root_certificate(root);
    }
    builder
}

impl Client {
    pub fn new(profile: Profile) -> Result<Client, CliError> {
        let http = http_builder().build().map_err(|e| CliError::Other(format!("cannot build an HTTP client: {e}")))?;
        Ok(Client { http, profile })
    }

    /// A client for the stored profile, with a valid management token.
    pub async fn from_profile() -> Result<Client, CliError> {
        let mut c = Client::new(crate::profile::load()?)?;
        c.management_token().await?;
        Ok(c)
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub fn subscription(&self) -> Result<&str, CliError> {
        self.profile
            .subscription
            .as_deref()
            .ok_or_else(|| CliError::Other("the profile has no subscription; run 'wharf login' again".into()))
    }

    /// Sends a management request; `path` starts with `/`. Returns the JSON body (Null when empty).
    /// Requests a token from the server's Entra-like endpoint.
    pub async fn request_token(&self, tenant: &str, form: &[(&str, &str)]) -> Result<Value, CliError> {
        let url = format!("{}/{tenant}/oauth2/v2.0/token", self.profile.server.trim_end_matches('/'));
        let resp = self.http.post(&url).form(form).send().await?;
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status >= 400 {
            let desc = v["error_description"].as_str().unwrap_or("sign-in failed").to_string();
            return Err(CliError::Other(format!("{desc} ({})", v["error"].as_str().unwrap_or("error"))));
        }
        Ok(v)
    }

    /// A valid management token: the cached one, or a new one from the stored account.
    pub async fn management_token(&mut self) -> Result<String, CliError> {
        let now = now_secs();
        if let (Some(t), Some(exp)) = (&self.profile.access_token, self.profile.expires_on)
            && exp > now + 60
        {
            return Ok(t.clone());
        }
        let v = self.account_reply(MANAGEMENT_SCOPE).await?;
        self.store_token(&v);
        if let (Some(rt), Some(crate::profile::Account::User { refresh_token, .. })) =
            (v["refresh_token"].as_str(), self.profile.account.as_mut())
        {
            *refresh_token = rt.to_string();
        }
        crate::profile::save(&self.profile)?;
        self.profile.access_token.clone().ok_or_else(|| CliError::Other("the server returned no access token".into()))
    }

    pub fn store_token(&mut self, v: &Value) {
        self.profile.access_token = v["access_token"].as_str().map(str::to_string);
        self.profile.expires_on = Some(now_secs() + v["expires_in"].as_i64().unwrap_or(300));
    }

    pub async fn arm(
        &self,
        method: Method,
        path: &str,
        api_version: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}{}", self.profile.server.trim_end_matches('/'), path);
        let mut req = self.http.request(method, &url).query(&[("api-version", api_version)]);
        if let Some(t) = &self.profile.access_token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(read_reply(req.send().await?).await?.0)
    }

    /// A management request whose reply the caller reads itself (status and headers, as a
    /// long-running operation needs): `target` is a path on the server or a whole URL the
    /// server handed out (an operation's `Location`, which carries its own api-version).
    pub async fn send(
        &self,
        method: Method,
        target: &str,
        api_version: Option<&str>,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, CliError> {
        let url = if target.starts_with("http://") || target.starts_with("https://") {
            target.to_string()
        } else {
            format!("{}{}", self.profile.server.trim_end_matches('/'), target)
        };
        let mut req = self.http.request(method, &url);
        if let Some(v) = api_version {
            req = req.query(&[("api-version", v)]);
        }
        if let Some(t) = &self.profile.access_token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(req.send().await?)
    }

    pub async fn get(&self, path: &str, api: &str) -> Result<Value, CliError> {
        self.arm(Method::GET, path, api, None).await
    }
}

/// The JSON body of a management or Graph reply (`Null` when empty) and its `wharf-warning`
/// headers; error bodies (`{"error":{"code","message"}}`) become [`CliError::Service`].
pub async fn read_reply(resp: reqwest::Response) -> Result<(Value, Vec<String>), CliError> {
    let status = resp.status().as_u16();
    let warnings: Vec<String> =
        resp.headers().get_all("wharf-warning").iter().filter_map(|v| v.to_str().ok().map(str::to_string)).collect();
    let text = resp.text().await?;
    let json: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
    };
    if status >= 400 {
        let code = json["error"]["code"].as_str().unwrap_or("HttpError").to_string();
        let message = json["error"]["message"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| format!("the server answered HTTP {status}: {text}"));
        return Err(CliError::Service { status, code, message });
    }
    Ok((json, warnings))
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

// ---- directory tokens for other audiences, Graph calls, the data plane ----

/// The scope the CLI asks Graph tokens for. Wharf answers Microsoft Graph's well-known resource
/// id as well as its own base URL (az's `microsoftGraphResourceId`), and the former does not
/// depend on how the profile spells the server's address.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The scope of directory tokens that registries exchange at `/oauth2/exchange`.
pub const CONTAINER_REGISTRY_SCOPE: &str = "https://containerregistry.azure.net/.default";

impl Client {
    /// A directory access token for `scope`, from the stored account (a user's refresh token or
    /// a service principal's secret), as az gets tokens for Graph and for registries.
    pub async fn directory_token(&self, scope: &str) -> Result<String, CliError> {
        let v = self.account_reply(scope).await?;
        v["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError::Other("the server returned no access token".into()))
    }

    /// The token endpoint's reply for `scope`, from the stored account: a user's refresh token
    /// or a service principal's secret.
    async fn account_reply(&self, scope: &str) -> Result<Value, CliError> {
        let tenant = self.profile.tenant.clone().unwrap_or_else(|| "organizations".into());
        match &self.profile.account {
            Some(crate::profile::Account::User { refresh_token, .. }) => self
                .request_token(
                    &tenant,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", refresh_token),
                        ("scope", scope),
                        ("client_id", "wharf-cli"),
                    ],
                )
                .await
                .map_err(|e| CliError::Other(format!("{e}. Run 'wharf login' again."))),
            Some(crate::profile::Account::ServicePrincipal { app_id, secret }) => {
                self.request_token(
                    &tenant,
                    &[
                        ("grant_type", "client_credentials"),
                        ("client_id", app_id),
                        ("client_secret", secret),
                        ("scope", scope),
                    ],
                )
                .await
            }
            None => Err(CliError::Other(
                "not signed in. Run 'wharf login --server URL --username U --password P' first.".into(),
            )),
        }
    }

    /// A client for the server's Graph subset (`/v1.0/…`), with a Graph token.
    pub async fn graph_client(&self) -> Result<GraphClient<'_>, CliError> {
        Ok(GraphClient { client: self, token: self.directory_token(GRAPH_SCOPE).await? })
    }
}

/// Graph calls with a Graph-audience token.
pub struct GraphClient<'a> {
    client: &'a Client,
    token: String,
}

impl GraphClient<'_> {
    /// The server's base URL, which is also its Graph endpoint (`{base}/v1.0/…`).
    pub fn base_url(&self) -> &str {
        self.client.profile.server.trim_end_matches('/')
    }

    /// Sends a Graph request; `path` is under `/v1.0/` (e.g. `users`), `query` its parameters.
    /// Returns the JSON body (`Null` when empty); Graph errors become [`CliError::Service`].
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let url = format!("{}/v1.0/{}", self.client.profile.server.trim_end_matches('/'), path.trim_start_matches('/'));
        let mut req = self.client.http.request(method, &url).bearer_auth(&self.token);
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        Ok(read_reply(req.send().await?).await?.0)
    }

    /// The `value` list of a Graph collection query.
    pub async fn list(&self, path: &str, filter: Option<&str>) -> Result<Vec<Value>, CliError> {
        let q: Vec<(&str, &str)> = filter.map(|f| vec![("$filter", f)]).unwrap_or_default();
        let v = self.call(Method::GET, path, &q, None).await?;
        Ok(v["value"].as_array().cloned().unwrap_or_default())
    }
}

/// A Graph `$filter` string literal: single quotes doubled.
pub fn odata_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}
