//! The command tree. Each group module owns its flags and what it sends.

pub mod acr;
pub mod acr_data;
pub mod acr_import;
pub mod acr_task;
pub mod ad;
pub mod group;
pub mod identity;
pub mod login;
pub mod network;
pub mod resource;
pub mod role;

use clap::Subcommand;
use serde_json::Value;

use crate::error::CliError;
use crate::output::{OutputArgs, Table};

#[derive(Debug, Subcommand)]
pub enum Commands {
    /// Point the CLI at a Wharf server.
    Login(login::LoginArgs),
    /// Forget the server the CLI points at.
    Logout,
    /// Show the subscription (deployment) the CLI uses.
    Account {
        #[command(subcommand)]
        cmd: login::AccountCmd,
    },
    /// Manage resource groups.
    Group {
        #[command(subcommand)]
        cmd: group::GroupCmd,
    },
    /// Manage container registries.
    Acr {
        #[command(subcommand)]
        cmd: acr::AcrCmd,
    },
    /// Manage the directory: users, groups and service principals.
    Ad {
        #[command(subcommand)]
        cmd: ad::AdCmd,
    },
    /// Manage user-assigned managed identities.
    Identity {
        #[command(subcommand)]
        cmd: identity::IdentityCmd,
    },
    /// Manage virtual networks and private endpoints (emulated with address ranges).
    Network {
        #[command(subcommand)]
        cmd: network::NetworkCmd,
    },
    /// Print the lines that point a real Azure CLI (`az`) at this Wharf as a custom cloud.
    AzCloud {
        /// Wharf's URL (https; az refuses plain http) [default: the profile's server].
        #[arg(long)]
        server: Option<String>,
        /// CA bundle that signs Wharf's certificate (e.g. {data-dir}/tls/ca.crt).
        #[arg(long)]
        ca_bundle: Option<String>,
        /// Name of the cloud registration.
        #[arg(long, default_value = "wharf")]
        name: String,
    },
    /// Manage role assignments and role definitions.
    Role {
        #[command(subcommand)]
        cmd: role::RoleCmd,
    },
    /// Manage hosting resources (container groups, ML workspaces, web sites) and their identities.
    Resource {
        #[command(subcommand)]
        cmd: resource::ResourceCmd,
    },
}

/// How `-o table` shows the command's result without `--query`: az's table transformer for the
/// same command where az has one, az's generic table where it has none.
pub fn table(cmd: &Commands) -> Table {
    match cmd {
        Commands::Group { cmd } => group::table(cmd),
        Commands::Acr { cmd } => acr::table(cmd),
        Commands::Ad { cmd } => ad::table(cmd),
        Commands::Network { cmd } => network::table(cmd),
        Commands::Role { cmd } => role::table(cmd),
        Commands::Resource { cmd } => resource::table(cmd),
        Commands::Login(_) | Commands::Logout | Commands::Account { .. } | Commands::Identity { .. } => Table::Generic,
        Commands::AzCloud { .. } => Table::Generic,
    }
}

/// Runs a command; `Some(value)` is printed in the chosen output format.
pub async fn execute(cmd: Commands, _out: &OutputArgs) -> Result<Option<Value>, CliError> {
    match cmd {
        Commands::Login(a) => login::login(a).await,
        Commands::Logout => login::logout(),
        Commands::Account { cmd } => login::account(cmd).await,
        Commands::Group { cmd } => group::run(cmd).await,
        Commands::Acr { cmd } => acr::run(cmd).await,
        Commands::Ad { cmd } => ad::run(cmd).await,
        Commands::Identity { cmd } => identity::run(cmd).await,
        Commands::Resource { cmd } => resource::run(cmd).await,
        Commands::Role { cmd } => role::run(cmd).await,
        Commands::AzCloud { server, ca_bundle, name } => az_cloud(server, ca_bundle, &name),
        Commands::Network { cmd } => network::run(cmd).await,
    }
}

/// Asks for confirmation like az: on a terminal a y/n prompt; without one, an error that
/// points to `--yes`.
pub fn confirm(question: &str, yes: bool) -> Result<(), CliError> {
    use std::io::{BufRead, IsTerminal, Write};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::Usage(format!(
            "{question} Unable to prompt for confirmation as no tty is available. Pass --yes to confirm."
        )));
    }
    eprint!("{question} (y/n): ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| CliError::Other(e.to_string()))?;
    if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(CliError::Other("Operation cancelled.".into()))
    }
}

/// Parses az-style `true|false` flag values.
pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" | "on" => Ok(true),
        "false" | "no" | "0" | "off" => Ok(false),
        _ => Err(format!("'{s}' is not a boolean; use true or false")),
    }
}

/// `key=value` tags as az takes them.
pub fn parse_tags(tags: &[String]) -> Result<Value, CliError> {
    let mut m = serde_json::Map::new();
    for t in tags {
        let (k, v) = t.split_once('=').unwrap_or((t.as_str(), ""));
        if k.is_empty() {
            return Err(CliError::Usage(format!("invalid tag '{t}': use key=value")));
        }
        m.insert(k.to_string(), Value::String(v.to_string()));
    }
    Ok(Value::Object(m))
}

/// The `az` configuration for a Wharf deployment (docs/azure-cli.md explains each line).
fn az_cloud(server: Option<String>, ca_bundle: Option<String>, name: &str) -> Result<Option<Value>, CliError> {
    let profile = crate::profile::load().ok();
    let server = server.or_else(|| profile.as_ref().map(|p| p.server.clone())).ok_or_else(|| {
        CliError::Usage("the following arguments are required: --server (or sign in with 'wharf login' first)".into())
    })?;
    let server = server.trim_end_matches('/');
    if !server.starts_with("https://") {
        return Err(CliError::Usage(format!(
            "'{server}' is not https: az and the Azure SDKs refuse bearer tokens over plain http. Serve Wharf with --tls-self-signed (or --tls-cert/--tls-key) and pass its https URL."
        )));
    }
    let ca = ca_bundle.unwrap_or_else(|| "<wharf data dir>/tls/ca.crt".into());
    let tenant = profile
        .as_ref()
        .and_then(|p| p.tenant.clone())
        .unwrap_or_else(|| "<tenant id: wharf account show --query tenantId>".into());
    println!("# Trust Wharf's CA (az and the Azure SDKs read REQUESTS_CA_BUNDLE, not SSL_CERT_FILE):");
    println!("export REQUESTS_CA_BUNDLE={ca}");
    println!("export AZURE_CORE_COLLECT_TELEMETRY=false");
    println!("# Keep MSAL from asking login.microsoftonline.com about an unknown authority:");
    println!("az config set core.collect_telemetry=false core.instance_discovery=false");
    println!("az cloud register -n {name} --endpoint-resource-manager {server}/");
    println!("az cloud set -n {name}");
    println!("az login --service-principal -u <appId> -p <secret> --tenant {tenant}");
    // MSAL looks a user's realm up at https://{host}/common/userrealm/… with the port dropped.
    if reqwest::Url::parse(server).ok().and_then(|u| u.port_or_known_default()) == Some(443) {
        println!("# or, as a user: az login -u <user principal name> -p <password>");
    } else {
        println!(
            "# Users ('az login -u <name> -p <password>') need Wharf on port 443: MSAL drops the port when it looks up the user's realm."
        );
    }
    Ok(None)
}
