//! `wharf identity create|show|list|delete`: user-assigned managed identities.

use clap::Subcommand;
use serde_json::Value;

use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum IdentityCmd {}

pub async fn run(cmd: IdentityCmd) -> Result<Option<Value>, CliError> {
    match cmd {}
}
