//! The command tree. Each group module owns its flags and what it sends.

pub mod acr;
pub mod acr_data;
pub mod ad;
pub mod group;
pub mod identity;
pub mod login;
pub mod resource;
pub mod role;

use clap::Subcommand;
use serde_json::Value;

use crate::error::CliError;
use crate::output::OutputArgs;

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
    /// Manage the directory: users and service principals.
    Ad {
        #[command(subcommand)]
        cmd: ad::AdCmd,
    },
    /// Manage user-assigned managed identities.
    Identity {
        #[command(subcommand)]
        cmd: identity::IdentityCmd,
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
