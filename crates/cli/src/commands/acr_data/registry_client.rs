//! A registry's data plane as az reaches it: a directory token for
//! `https://containerregistry.azure.net`, exchanged at `/oauth2/exchange` for a registry
//! refresh token, turned into access tokens per scope at `/oauth2/token`.
//!
//! Requests go to the registry's login server (`{name}.{domain}:{port}`), connected to the
//! address of the profile's server: `*.localhost` may resolve to an address the server does not
//! listen on, and a deployment's registries all live on that one listener anyway.

use reqwest::Method;
use serde_json::Value;

use crate::client::{CONTAINER_REGISTRY_SCOPE, Client};
use crate::error::CliError;

pub struct RegistryClient {
    http: reqwest::Client,
    /// `scheme://loginServer`.
    pub base: String,
    pub login_server: String,
    pub refresh_token: String,
}

impl RegistryClient {
    /// Signs in to the registry whose login server is `login_server` with the CLI's account.
    pub async fn connect(client: &Client, login_server: &str) -> Result<RegistryClient, CliError> {
        let server = url::Url::parse(&client.profile.server)
            .map_err(|e| CliError::Other(format!("the profile's server URL is invalid: {e}")))?;
        let scheme = server.scheme().to_string();
        let host = server
            .host_str()
            .ok_or_else(|| CliError::Other("the profile's server URL has no host".into()))?
            .trim_matches(['[', ']'])
            .to_string();
        let port = server.port_or_known_default().unwrap_or(443);
        let addr = tokio::net::lookup_host((host.as_str(), port))
            .await
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| CliError::Other(format!("cannot resolve the server address {host}")))?;
        let login_host = login_server
            .rsplit_once(':')
            .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
            .map(|(h, _)| h)
            .unwrap_or(login_server);
        let http = crate::client::http_builder()
            .resolve(login_host, addr)
            .build()
            .map_err(|e| CliError::Other(format!("cannot build an HTTP client: {e}")))?;
        let base = format!("{scheme}://{login_server}");
        let aad = client.directory_token(CONTAINER_REGISTRY_SCOPE).await?;
        let tenant = client.profile.tenant.clone().unwrap_or_default();
        let resp = http
            .post(format!("{base}/oauth2/exchange"))
            .form(&[
                ("grant_type", "access_token"),
                ("service", login_server),
                ("tenant", tenant.as_str()),
                ("access_token", aad.as_str()),
            ])
            .send()
            .await
            .map_err(|e| {
                CliError::Other(format!("Could not connect to the registry login server '{login_server}': {e}"))
            })?;
        let v = json_or_error(resp).await?;
        let refresh_token = v["refresh_token"]
            .as_str()
            .ok_or_else(|| CliError::Other("the registry returned no refresh token".into()))?
            .to_string();
        Ok(RegistryClient { http, base, login_server: login_server.to_string(), refresh_token })
    }

    /// An access token for `scope` (e.g. `repository:hello:pull`).
    pub async fn access_token(&self, scope: &str) -> Result<String, CliError> {
        let resp = self
            .http
            .post(format!("{}/oauth2/token", self.base))
            .form(&[
                ("grant_type", "refresh_token"),
                ("service", self.login_server.as_str()),
                ("scope", scope),
                ("refresh_token", self.refresh_token.as_str()),
            ])
            .send()
            .await?;
        let v = json_or_error(resp).await?;
        v["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| CliError::Other("the registry returned no access token".into()))
    }

    /// One request with an access token for `scope`; returns the body and the `Link` next page.
    pub async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        scope: &str,
        body: Option<&Value>,
    ) -> Result<(Value, Option<String>), CliError> {
        let token = self.access_token(scope).await?;
        let mut req = self.http.request(method, format!("{}{path_and_query}", self.base)).bearer_auth(token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let next = resp
            .headers()
            .get(reqwest::header::LINK)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| l.split_once('<').and_then(|(_, r)| r.split_once('>')).map(|(u, _)| u.to_string()));
        Ok((json_or_error(resp).await?, next))
    }

    /// The digest `tag` of `repo` points at: a `HEAD` of the manifest with the media types az
    /// accepts, read from `Docker-Content-Digest` (az's `get_image_digest`).
    pub async fn manifest_digest(&self, repo: &str, tag: &str, path: &str) -> Result<String, CliError> {
        let token = self.access_token(&format!("repository:{repo}:pull")).await?;
        let accept = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, \
                      application/vnd.docker.distribution.manifest.v2+json, \
                      application/vnd.docker.distribution.manifest.list.v2+json";
        let resp = self
            .http
            .head(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await?;
        if resp.status() == reqwest::StatusCode::NOT_FOUND {
            return Err(CliError::NotFound(format!(
                "The image '{repo}:{tag}' could not be found in registry '{}'.",
                self.login_server
            )));
        }
        if !resp.status().is_success() {
            return Err(CliError::Other(format!(
                "Reading the digest of '{repo}:{tag}' from '{}' failed: HTTP {}",
                self.login_server,
                resp.status()
            )));
        }
        resp.headers()
            .get("docker-content-digest")
            .and_then(|d| d.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| CliError::Other(format!("the registry returned no digest for '{repo}:{tag}'")))
    }

    /// Follows `Link` pages of a listing, collecting the `key` arrays, up to `top` items.
    pub async fn list(&self, first: &str, scope: &str, key: &str, top: Option<usize>) -> Result<Vec<Value>, CliError> {
        let mut out = vec![];
        let mut next = Some(first.to_string());
        while let Some(path) = next.take() {
            let (v, link) = self.call(Method::GET, &path, scope, None).await?;
            out.extend(v[key].as_array().cloned().unwrap_or_default());
            if top.is_some_and(|t| out.len() >= t) {
                break;
            }
            next = link.map(|l| {
                if l.starts_with('/') {
                    l
                } else {
                    url::Url::parse(&l).map(|u| format!("{}?{}", u.path(), u.query().unwrap_or(""))).unwrap_or(l)
                }
            });
        }
        if let Some(t) = top {
            out.truncate(t);
        }
        Ok(out)
    }
}

/// The JSON body of a success, or the registry's error as a [`CliError`] (`{errors:[…]}` or an
/// OAuth error shape).
async fn json_or_error(resp: reqwest::Response) -> Result<Value, CliError> {
    let status = resp.status().as_u16();
    let text = resp.text().await?;
    let v: Value = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
    };
    if status < 400 {
        return Ok(v);
    }
    let first = &v["errors"][0];
    let code = first["code"].as_str().unwrap_or(match status {
        401 => "UNAUTHORIZED",
        403 => "DENIED",
        404 => "NOT_FOUND",
        _ => "HttpError",
    });
    let message = first["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("the registry answered HTTP {status}: {text}"));
    Err(CliError::Service { status, code: code.to_string(), message })
}
