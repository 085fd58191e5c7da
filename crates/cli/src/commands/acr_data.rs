//! `wharf acr login|credential|repository|manifest`: commands that use a registry's data plane
//! or its credentials, with az's flags and output shapes.

mod registry_client;

use base64::Engine;
use clap::{Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{confirm, parse_bool};
use crate::client::{Client, REGISTRY_API};
use crate::error::CliError;
use crate::output::{Table, columns};
use registry_client::RegistryClient;

/// The username that tells a registry the password is an ACR refresh token.
pub const NULL_GUID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OrderBy {
    #[value(name = "time_asc")]
    TimeAsc,
    #[value(name = "time_desc")]
    TimeDesc,
}

impl OrderBy {
    fn query(self) -> &'static str {
        match self {
            OrderBy::TimeAsc => "timeasc",
            OrderBy::TimeDesc => "timedesc",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PasswordName {
    Password,
    Password2,
}

#[derive(Debug, Subcommand)]
pub enum AcrDataCmd {
    /// Log in to a registry: write a credential to the containers/docker auth file
    /// (REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else ~/.docker/config.json), or
    /// print a refresh token with --expose-token.
    Login {
        #[arg(long, short = 'n')]
        name: String,
        /// Print the token instead of writing the auth file.
        #[arg(long)]
        expose_token: bool,
        /// Username (the admin user, a service principal's app id …) instead of the CLI's account.
        #[arg(long, short = 'u')]
        username: Option<String>,
        #[arg(long, short = 'p')]
        password: Option<String>,
    },
    /// Manage the admin user's credentials.
    Credential {
        #[command(subcommand)]
        cmd: CredentialCmd,
    },
    /// Manage repositories.
    Repository {
        #[command(subcommand)]
        cmd: RepositoryCmd,
    },
    /// Manage manifests.
    Manifest {
        #[command(subcommand)]
        cmd: ManifestCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum CredentialCmd {
    /// Show the admin user's name and passwords (the admin user must be enabled).
    Show {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Regenerate one of the admin user's passwords.
    Renew {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
        #[arg(long, value_enum)]
        password_name: PasswordName,
    },
}

#[derive(Debug, Subcommand)]
pub enum RepositoryCmd {
    /// List repositories.
    List {
        #[arg(long, short = 'n')]
        name: String,
        /// Maximum number of repositories.
        #[arg(long)]
        top: Option<usize>,
    },
    /// Show a repository's (or an image's) attributes.
    Show {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, required_unless_present = "image", conflicts_with = "image")]
        repository: Option<String>,
        /// repo:tag or repo@digest.
        #[arg(long, short = 't')]
        image: Option<String>,
    },
    /// List a repository's tags.
    ShowTags {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        repository: String,
        #[arg(long)]
        top: Option<usize>,
        #[arg(long, value_enum)]
        orderby: Option<OrderBy>,
        /// Show details instead of names.
        #[arg(long)]
        detail: bool,
    },
    /// List a repository's manifests.
    ShowManifests {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        repository: String,
        #[arg(long)]
        top: Option<usize>,
        #[arg(long, value_enum)]
        orderby: Option<OrderBy>,
        /// Show details.
        #[arg(long)]
        detail: bool,
    },
    /// Delete a repository, or an image (its manifest and every tag pointing to it).
    Delete {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, required_unless_present = "image", conflicts_with = "image")]
        repository: Option<String>,
        /// repo:tag or repo@digest.
        #[arg(long, short = 't')]
        image: Option<String>,
        #[arg(long, short = 'y')]
        yes: bool,
    },
    /// Remove a tag (the manifest stays).
    Untag {
        #[arg(long, short = 'n')]
        name: String,
        /// repo:tag.
        #[arg(long, short = 't')]
        image: String,
    },
    /// Update a repository's or an image's changeable attributes.
    Update {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, required_unless_present = "image", conflicts_with = "image")]
        repository: Option<String>,
        /// repo:tag or repo@digest.
        #[arg(long, short = 't')]
        image: Option<String>,
        #[arg(long, value_parser = parse_bool)]
        write_enabled: Option<bool>,
        #[arg(long, value_parser = parse_bool)]
        delete_enabled: Option<bool>,
        #[arg(long, value_parser = parse_bool)]
        read_enabled: Option<bool>,
        #[arg(long, value_parser = parse_bool)]
        list_enabled: Option<bool>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ManifestCmd {
    /// List the manifests of a repository with their metadata.
    ListMetadata {
        /// The registry.
        #[arg(long, short = 'r')]
        registry: String,
        /// The repository.
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        top: Option<usize>,
        #[arg(long, value_enum)]
        orderby: Option<OrderBy>,
    },
}

/// `-o table` for the data-plane and credential commands: az's columns for `acr credential`,
/// az's generic table for the others (az has no transformer for them).
pub fn table(cmd: &AcrDataCmd) -> Table {
    match cmd {
        AcrDataCmd::Credential { .. } => Table::Columns(credential_columns),
        AcrDataCmd::Login { .. } | AcrDataCmd::Repository { .. } | AcrDataCmd::Manifest { .. } => Table::Generic,
    }
}

fn credential_columns(v: &Value) -> Vec<Value> {
    use super::acr::{rows, text};
    rows(v)
        .into_iter()
        .map(|c| {
            columns([
                ("USERNAME", text(&c["username"])),
                ("PASSWORD", text(&c["passwords"][0]["value"])),
                ("PASSWORD2", text(&c["passwords"][1]["value"])),
            ])
        })
        .collect()
}

/// What the commands need to know about a registry.
struct RegistryRef {
    id: String,
    login_server: String,
}

/// Finds a registry by name, as az does (through the subscription's registry list).
async fn find_registry(client: &Client, name: &str, rg: Option<&str>) -> Result<RegistryRef, CliError> {
    let sub = client.subscription()?;
    let path = match rg {
        Some(rg) => {
            format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries")
        }
        None => format!("/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries"),
    };
    let all = client.get(&path, REGISTRY_API).await?;
    let r = all["value"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .ok_or_else(|| CliError::NotFound(format!("The resource with name '{name}' and type 'Microsoft.ContainerRegistry/registries' could not be found in subscription '{sub}'.")))?;
    Ok(RegistryRef {
        id: r["id"].as_str().unwrap_or_default().to_string(),
        login_server: r["properties"]["loginServer"].as_str().unwrap_or_default().to_string(),
    })
}

/// Splits `repo:tag` / `repo@digest` into the repository and the reference.
fn split_image(image: &str) -> Result<(String, Reference), CliError> {
    if let Some((repo, digest)) = image.split_once('@') {
        return Ok((repo.to_string(), Reference::Digest(digest.to_string())));
    }
    let slash = image.rfind('/').map(|i| i + 1).unwrap_or(0);
    match image[slash..].rfind(':') {
        Some(i) => Ok((image[..slash + i].to_string(), Reference::Tag(image[slash + i + 1..].to_string()))),
        None => {
            Err(CliError::Usage(format!("argument --image: '{image}' must be repository:tag or repository@digest")))
        }
    }
}

/// `repo@digest` of `image` (`repo:tag` or `repo@digest`) in the registry at `login_server`:
/// a digest as given, a tag resolved with a `HEAD` of its manifest (`list-runs --image`).
pub async fn image_digest(client: &Client, login_server: &str, image: &str) -> Result<(String, String), CliError> {
    match split_image(image)? {
        (repo, Reference::Digest(d)) => Ok((repo, d)),
        (repo, Reference::Tag(t)) => {
            let rc = RegistryClient::connect(client, login_server).await?;
            let digest = rc.manifest_digest(&repo, &t, &format!("/v2/{}/manifests/{}", seg(&repo), seg(&t))).await?;
            Ok((repo, digest))
        }
    }
}

enum Reference {
    Tag(String),
    Digest(String),
}

fn seg(s: &str) -> String {
    s.split('/')
        .map(|p| url::form_urlencoded::byte_serialize(p.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

pub async fn run(cmd: AcrDataCmd) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    match cmd {
        AcrDataCmd::Login { name, expose_token, username, password } => {
            login(&client, &name, expose_token, username, password).await
        }
        AcrDataCmd::Credential { cmd } => credential(&client, cmd).await,
        AcrDataCmd::Repository { cmd } => repository(&client, cmd).await,
        AcrDataCmd::Manifest { cmd: ManifestCmd::ListMetadata { registry, name, top, orderby } } => {
            let reg = find_registry(&client, &registry, None).await?;
            let rc = RegistryClient::connect(&client, &reg.login_server).await?;
            Ok(Some(Value::Array(list_manifests(&rc, &name, top, orderby).await?)))
        }
    }
}

// ---- login ----

/// The containers/docker auth file: `REGISTRY_AUTH_FILE`, else `$DOCKER_CONFIG/config.json`,
/// else `~/.docker/config.json`.
pub fn auth_file() -> Result<std::path::PathBuf, CliError> {
    if let Some(p) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|p| !p.is_empty()) {
        return Ok(p.into());
    }
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|p| !p.is_empty()) {
        return Ok(std::path::PathBuf::from(d).join("config.json"));
    }
    let home =
        std::env::var_os("HOME").ok_or_else(|| CliError::Other("HOME is not set; set REGISTRY_AUTH_FILE".into()))?;
    Ok(std::path::PathBuf::from(home).join(".docker").join("config.json"))
}

/// Merges `entry` under `auths.<login server>` into the auth file, keeping everything else.
fn write_auth(login_server: &str, entry: Value) -> Result<std::path::PathBuf, CliError> {
    let path = auth_file()?;
    let mut doc: Value = match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => serde_json::from_str(&t)
            .map_err(|e| CliError::Other(format!("the auth file {} is not valid JSON ({e})", path.display())))?,
        _ => json!({}),
    };
    if !doc.is_object() {
        doc = json!({});
    }
    if !doc["auths"].is_object() {
        doc["auths"] = json!({});
    }
    doc["auths"][login_server] = entry;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| CliError::Other(format!("cannot create {}: {e}", dir.display())))?;
    }
    let text = serde_json::to_string_pretty(&doc).expect("json");
    let tmp = path.with_extension("json.tmp");
    let write = || -> std::io::Result<()> {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        opts.open(&tmp)?.write_all(text.as_bytes())?;
        std::fs::rename(&tmp, &path)
    };
    write().map_err(|e| CliError::Other(format!("cannot write {}: {e}", path.display())))?;
    Ok(path)
}

async fn login(
    client: &Client,
    name: &str,
    expose_token: bool,
    username: Option<String>,
    password: Option<String>,
) -> Result<Option<Value>, CliError> {
    let reg = find_registry(client, name, None).await?;
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    if let Some(user) = username {
        let password = password.ok_or_else(|| CliError::Usage("--password is required with --username".into()))?;
        if expose_token {
            return Err(CliError::Usage("--expose-token cannot be used with --username".into()));
        }
        write_auth(&reg.login_server, json!({"auth": b64(format!("{user}:{password}"))}))?;
        eprintln!("Login Succeeded");
        return Ok(None);
    }
    let rc = RegistryClient::connect(client, &reg.login_server).await?;
    if expose_token {
        eprintln!(
            "WARNING: You can perform manual login using the provided access token below, for example: 'docker login loginServer -u {NULL_GUID} -p accessToken'"
        );
        return Ok(Some(json!({
            "accessToken": rc.refresh_token,
            "loginServer": reg.login_server,
            "refreshToken": rc.refresh_token,
            "username": NULL_GUID,
        })));
    }
    write_auth(&reg.login_server, json!({"auth": b64(format!("{NULL_GUID}:")), "identitytoken": rc.refresh_token}))?;
    println!("Login Succeeded");
    Ok(None)
}

// ---- credentials ----

async fn credential(client: &Client, cmd: CredentialCmd) -> Result<Option<Value>, CliError> {
    match cmd {
        CredentialCmd::Show { name, resource_group } => {
            let reg = find_registry(client, &name, resource_group.as_deref()).await?;
            Ok(Some(client.arm(Method::POST, &format!("{}/listCredentials", reg.id), REGISTRY_API, None).await?))
        }
        CredentialCmd::Renew { name, resource_group, password_name } => {
            let reg = find_registry(client, &name, resource_group.as_deref()).await?;
            let which = match password_name {
                PasswordName::Password => "password",
                PasswordName::Password2 => "password2",
            };
            let body = json!({"name": which});
            Ok(Some(
                client
                    .arm(Method::POST, &format!("{}/regenerateCredential", reg.id), REGISTRY_API, Some(&body))
                    .await?,
            ))
        }
    }
}

// ---- repositories ----

fn page_query(top: Option<usize>, orderby: Option<OrderBy>) -> String {
    let mut q = vec![format!("n={}", top.unwrap_or(100).clamp(1, 1000))];
    if let Some(o) = orderby {
        q.push(format!("orderby={}", o.query()));
    }
    q.join("&")
}

async fn list_manifests(
    rc: &RegistryClient,
    repo: &str,
    top: Option<usize>,
    orderby: Option<OrderBy>,
) -> Result<Vec<Value>, CliError> {
    let path = format!("/acr/v1/{}/_manifests?{}", seg(repo), page_query(top, orderby));
    rc.list(&path, &format!("repository:{repo}:metadata_read"), "manifests", top).await
}

async fn repository(client: &Client, cmd: RepositoryCmd) -> Result<Option<Value>, CliError> {
    let name = match &cmd {
        RepositoryCmd::List { name, .. }
        | RepositoryCmd::Show { name, .. }
        | RepositoryCmd::ShowTags { name, .. }
        | RepositoryCmd::ShowManifests { name, .. }
        | RepositoryCmd::Delete { name, .. }
        | RepositoryCmd::Untag { name, .. }
        | RepositoryCmd::Update { name, .. } => name.clone(),
    };
    let reg = find_registry(client, &name, None).await?;
    let rc = RegistryClient::connect(client, &reg.login_server).await?;
    match cmd {
        RepositoryCmd::List { top, .. } => list_repositories(&rc, top).await,
        RepositoryCmd::Show { repository, image, .. } => show_repository(&rc, repository, image).await,
        RepositoryCmd::ShowTags { repository, top, orderby, detail, .. } => {
            show_tags(&rc, &repository, top, orderby, detail).await
        }
        RepositoryCmd::ShowManifests { repository, top, orderby, detail, .. } => {
            show_manifests(&rc, &repository, top, orderby, detail).await
        }
        RepositoryCmd::Delete { repository, image, yes, .. } => delete_repository(&rc, repository, image, yes).await,
        RepositoryCmd::Untag { image, .. } => untag(&rc, &image).await,
        RepositoryCmd::Update {
            repository, image, write_enabled, delete_enabled, read_enabled, list_enabled, ..
        } => {
            let attributes = [
                ("writeEnabled", write_enabled),
                ("deleteEnabled", delete_enabled),
                ("readEnabled", read_enabled),
                ("listEnabled", list_enabled),
            ];
            update_repository(&rc, repository, image, &attributes).await
        }
    }
}

/// The `/acr/v1` path of `--repository`, or of the tag or manifest `--image` names, with the
/// repository.
fn attributes_path(repository: Option<String>, image: Option<String>) -> Result<(String, String), CliError> {
    match (repository, image) {
        (Some(r), _) => Ok((format!("/acr/v1/{}", seg(&r)), r)),
        (None, Some(i)) => {
            let (repo, reference) = split_image(&i)?;
            let p = match reference {
                Reference::Tag(t) => format!("/acr/v1/{}/_tags/{}", seg(&repo), seg(&t)),
                Reference::Digest(d) => format!("/acr/v1/{}/_manifests/{}", seg(&repo), seg(&d)),
            };
            Ok((p, repo))
        }
        (None, None) => Err(CliError::Usage("usage error: --repository REPOSITORY | --image REPOSITORY:TAG".into())),
    }
}

async fn list_repositories(rc: &RegistryClient, top: Option<usize>) -> Result<Option<Value>, CliError> {
    let path = format!("/acr/v1/_catalog?{}", page_query(top, None));
    Ok(Some(Value::Array(rc.list(&path, "registry:catalog:*", "repositories", top).await?)))
}

async fn show_repository(
    rc: &RegistryClient,
    repository: Option<String>,
    image: Option<String>,
) -> Result<Option<Value>, CliError> {
    let (path, repo) = attributes_path(repository, image)?;
    let (v, _) = rc.call(Method::GET, &path, &format!("repository:{repo}:metadata_read"), None).await?;
    Ok(Some(v))
}

async fn show_tags(
    rc: &RegistryClient,
    repository: &str,
    top: Option<usize>,
    orderby: Option<OrderBy>,
    detail: bool,
) -> Result<Option<Value>, CliError> {
    let path = format!("/acr/v1/{}/_tags?{}", seg(repository), page_query(top, orderby));
    let tags = rc.list(&path, &format!("repository:{repository}:metadata_read"), "tags", top).await?;
    Ok(Some(if detail { Value::Array(tags) } else { Value::Array(tags.iter().map(|t| t["name"].clone()).collect()) }))
}

async fn show_manifests(
    rc: &RegistryClient,
    repository: &str,
    top: Option<usize>,
    orderby: Option<OrderBy>,
    detail: bool,
) -> Result<Option<Value>, CliError> {
    let manifests = list_manifests(rc, repository, top, orderby).await?;
    if detail {
        return Ok(Some(Value::Array(manifests)));
    }
    let brief = manifests
        .iter()
        .map(|m| json!({"digest": m["digest"], "tags": m.get("tags").cloned().unwrap_or(json!([])), "timestamp": m["lastUpdateTime"]}))
        .collect();
    Ok(Some(Value::Array(brief)))
}

async fn delete_repository(
    rc: &RegistryClient,
    repository: Option<String>,
    image: Option<String>,
    yes: bool,
) -> Result<Option<Value>, CliError> {
    match (repository, image) {
        (Some(repo), _) => {
            confirm(
                &format!(
                    "This operation will delete the repository '{repo}' and all the images in it. Are you sure you want to continue?"
                ),
                yes,
            )?;
            rc.call(Method::DELETE, &format!("/acr/v1/{}", seg(&repo)), &format!("repository:{repo}:delete"), None)
                .await?;
        }
        (None, Some(i)) => {
            let (repo, reference) = split_image(&i)?;
            let scope = format!("repository:{repo}:metadata_read,delete");
            let digest = match reference {
                Reference::Digest(d) => d,
                Reference::Tag(t) => {
                    let (v, _) = rc
                        .call(Method::GET, &format!("/acr/v1/{}/_tags/{}", seg(&repo), seg(&t)), &scope, None)
                        .await?;
                    v["tag"]["digest"]
                        .as_str()
                        .ok_or_else(|| CliError::Other(format!("the registry returned no digest for '{i}'")))?
                        .to_string()
                }
            };
            confirm(
                &format!(
                    "This operation will delete the manifest '{digest}' and all the tags pointing to it in '{repo}'. Are you sure you want to continue?"
                ),
                yes,
            )?;
            rc.call(Method::DELETE, &format!("/acr/v1/{}/_manifests/{}", seg(&repo), seg(&digest)), &scope, None)
                .await?;
        }
        (None, None) => {
            return Err(CliError::Usage("usage error: --repository REPOSITORY | --image REPOSITORY:TAG".into()));
        }
    }
    Ok(None)
}

async fn untag(rc: &RegistryClient, image: &str) -> Result<Option<Value>, CliError> {
    let (repo, reference) = split_image(image)?;
    let Reference::Tag(tag) = reference else {
        return Err(CliError::Usage("argument --image: untag takes repository:tag".into()));
    };
    rc.call(
        Method::DELETE,
        &format!("/acr/v1/{}/_tags/{}", seg(&repo), seg(&tag)),
        &format!("repository:{repo}:delete"),
        None,
    )
    .await?;
    Ok(None)
}

async fn update_repository(
    rc: &RegistryClient,
    repository: Option<String>,
    image: Option<String>,
    attributes: &[(&str, Option<bool>)],
) -> Result<Option<Value>, CliError> {
    let mut attrs = Map::new();
    for (k, v) in attributes {
        if let Some(v) = v {
            attrs.insert((*k).into(), json!(v));
        }
    }
    let (path, repo) = attributes_path(repository, image)?;
    let scope = format!("repository:{repo}:metadata_read,metadata_write");
    let (v, _) = rc.call(Method::PATCH, &path, &scope, Some(&Value::Object(attrs))).await?;
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_split() {
        let (r, t) = split_image("team/app:v1").unwrap();
        assert_eq!(r, "team/app");
        assert!(matches!(t, Reference::Tag(t) if t == "v1"));
        let (r, d) = split_image("app@sha256:abc").unwrap();
        assert_eq!(r, "app");
        assert!(matches!(d, Reference::Digest(d) if d == "sha256:abc"));
        assert!(split_image("app").is_err());
        assert!(split_image("host:5000/app").is_err());
    }
}
