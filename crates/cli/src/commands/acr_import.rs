//! `wharf acr import`: az's flags, its resolution of the source (a registry of the subscription
//! by name, login server or resource id, else a registry URI with optional credentials), the
//! `importImage` call and the polling of the operation it starts.
//!
//! Owns az's messages for this command and the spinner shown while the import runs (with the
//! manifests and bytes the operation reports); must never
//! draw the spinner on a stderr that is not a terminal, or print the source password.

use std::io::IsTerminal;
use std::time::Duration;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use serde_json::{Value, json};

use super::acr::{registry_path, resolve_group};
use crate::client::{Client, REGISTRY_API, read_reply};
use crate::error::CliError;
use crate::output::warning;

/// `acr import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The name of the target registry.
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'g')]
    pub resource_group: Option<String>,
    /// The source image: `login-server/repo:tag`, `login-server/repo@digest`, or with
    /// --registry `repo:tag` / `repo@digest`.
    #[arg(long)]
    pub source: String,
    /// Target `repo[:tag]` (repeatable). Default: the source repository and tag.
    #[arg(long = "image", short = 't')]
    pub image: Vec<String>,
    /// Target repository to receive the manifest untagged, by digest only (repeatable).
    #[arg(long)]
    pub repository: Vec<String>,
    /// The source registry: a registry of the subscription by name or login server, or its
    /// resource id.
    #[arg(long, short = 'r')]
    pub registry: Option<String>,
    /// Username for the source registry.
    #[arg(long, short = 'u')]
    pub username: Option<String>,
    /// Password (or token) for the source registry.
    #[arg(long, short = 'p')]
    pub password: Option<String>,
    /// Overwrite existing target tags.
    #[arg(long)]
    pub force: bool,
    /// Do not wait for the import to finish.
    #[arg(long)]
    pub no_wait: bool,
}

const SOURCE_REGISTRY_NOT_FOUND: &str = "The source container registry can not be found in the current subscription. Please provide a valid address and/or credentials.";
const SOURCE_NOT_FOUND: &str =
    "Source cannot be found. Please provide a valid image and source registry or a fully qualified source.";
const LOGIN_SERVER_NOT_VALID: &str =
    "Login server of the registry is not valid because it is not a fully qualified domain name.";

/// A registry of the subscription whose login server is `login_server` or (with `name`) whose
/// name is `name`, as az looks it up; `None` unless exactly one matches.
async fn find_registry(client: &Client, login_server: &str, name: Option<&str>) -> Result<Option<Value>, CliError> {
    let sub = client.subscription()?;
    let all = client
        .get(&format!("/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries"), REGISTRY_API)
        .await?;
    let found: Vec<Value> = all["value"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| {
            let ls = r["properties"]["loginServer"].as_str().unwrap_or("");
            ls.eq_ignore_ascii_case(login_server)
                || name.is_some_and(|n| r["name"].as_str().is_some_and(|rn| rn.eq_ignore_ascii_case(n)))
        })
        .cloned()
        .collect();
    if found.len() > 1 {
        warning(&format!("More than one registries were found by {login_server}."));
    }
    Ok(if found.len() == 1 { found.into_iter().next() } else { None })
}

/// The body's `source`, and the source image as it stays after the registry is taken off.
async fn source_of(client: &Client, args: &ImportArgs) -> Result<(Value, String), CliError> {
    let mut image = args.source.clone();
    if let Some(registry) = &args.registry {
        if registry.starts_with("/subscriptions/") {
            return Ok((json!({"resourceId": registry, "sourceImage": image}), image));
        }
        let Some(found) = find_registry(client, registry, Some(registry)).await? else {
            return Err(CliError::Other(SOURCE_REGISTRY_NOT_FOUND.into()));
        };
        let login_server = found["properties"]["loginServer"].as_str().unwrap_or("");
        let prefix = format!("{login_server}/");
        if image.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase()) {
            warning(&format!(
                "The login server name of \"{login_server}\" in the \"--source\" argument will be ignored as \"--registry\" already supplies the same information"
            ));
            image = image[prefix.len()..].to_string();
        }
        return Ok((json!({"resourceId": found["id"], "sourceImage": image}), image));
    }
    let Some(slash) = image.find('/').filter(|&i| i > 0) else {
        return Err(CliError::Other(SOURCE_NOT_FOUND.into()));
    };
    let (registry_uri, rest) = (image[..slash].to_string(), image[slash + 1..].to_string());
    if !registry_uri.contains('.') {
        return Err(CliError::Other(LOGIN_SERVER_NOT_VALID.into()));
    }
    if let Some(password) = &args.password {
        let mut credentials = json!({"password": password});
        if let Some(u) = &args.username {
            credentials["username"] = json!(u);
        }
        return Ok((json!({"registryUri": registry_uri, "sourceImage": rest, "credentials": credentials}), rest));
    }
    Ok(match find_registry(client, &registry_uri, None).await? {
        Some(found) => (json!({"resourceId": found["id"], "sourceImage": rest}), rest),
        None => (json!({"registryUri": registry_uri, "sourceImage": rest}), rest),
    })
}

/// The `importImage` body az sends for these arguments.
pub async fn body(client: &Client, args: &ImportArgs) -> Result<Value, CliError> {
    let (source, image) = source_of(client, args).await?;
    let mut body = json!({"source": source, "mode": if args.force { "Force" } else { "NoForce" }});
    let mut targets = args.image.clone();
    if targets.is_empty() && args.repository.is_empty() {
        // Without targets: the source repository and tag (the repository alone for a digest).
        targets.push(image.split('@').next().unwrap_or(&image).to_string());
    }
    if !targets.is_empty() {
        body["targetTags"] = json!(targets);
    }
    if !args.repository.is_empty() {
        body["untaggedTargetRepositories"] = json!(args.repository);
    }
    Ok(body)
}

fn spinner() -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.set_message("Importing image...");
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The spinner's text for a running operation's answer (`progress`: manifests read, bytes
/// received from outside the deployment).
fn progress_message(v: &Value) -> String {
    let manifests = v["progress"]["manifests"].as_u64().unwrap_or(0);
    let bytes = v["progress"]["bytes"].as_u64().unwrap_or(0);
    match (manifests, bytes) {
        (0, 0) => "Importing image...".to_string(),
        (m, 0) => format!("Importing image... {m} manifest(s)"),
        (m, b) => format!("Importing image... {m} manifest(s), {}", crate::context::human_size(b)),
    }
}

fn retry_after(resp: &reqwest::Response) -> Duration {
    let secs = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    Duration::from_secs(secs.unwrap_or(1).clamp(1, 30))
}

pub async fn run(args: ImportArgs) -> Result<Option<Value>, CliError> {
    if args.username.is_some() && args.password.is_none() {
        return Err(CliError::Other("Authentication failed. Please provide password.".into()));
    }
    let client = Client::from_profile().await?;
    let sub = client.subscription()?.to_string();
    let rg = resolve_group(&client, &args.name, args.resource_group.clone()).await?;
    let body = body(&client, &args).await?;
    let path = format!("{}/importImage", registry_path(&sub, &rg, &args.name));
    let resp = client.send(Method::POST, &path, Some(REGISTRY_API), Some(&body)).await?;
    if resp.status().as_u16() != 202 {
        read_reply(resp).await?;
        return Ok(None);
    }
    let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_string);
    if args.no_wait {
        warning("Import has started. Due to no-wait option, failures will not be reflected.");
        return Ok(None);
    }
    let Some(location) = location else {
        return Err(CliError::Other("the server accepted the import but named no operation to follow".into()));
    };
    let bar = spinner();
    let mut wait = Duration::ZERO;
    let outcome = loop {
        tokio::time::sleep(wait).await;
        let resp = match client.send(Method::GET, &location, None, None).await {
            Ok(r) => r,
            Err(e) => break Err(e),
        };
        if resp.status().as_u16() == 202 {
            wait = retry_after(&resp);
            if let Ok(v) = resp.json::<Value>().await {
                bar.set_message(progress_message(&v));
            }
            continue;
        }
        break read_reply(resp).await.map(|_| ());
    };
    bar.finish_and_clear();
    outcome?;
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_reads_the_operation() {
        assert_eq!(progress_message(&json!({"status": "InProgress"})), "Importing image...");
        assert_eq!(
            progress_message(&json!({"progress": {"manifests": 3, "bytes": 0}})),
            "Importing image... 3 manifest(s)"
        );
        assert!(progress_message(&json!({"progress": {"manifests": 1, "bytes": 2048}})).contains("1 manifest(s), "));
    }
}
