//! `wharf resource …`: hosting resources that carry managed identities.

use clap::Subcommand;
use serde_json::Value;

use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum ResourceCmd {}

pub async fn run(cmd: ResourceCmd) -> Result<Option<Value>, CliError> {
    match cmd {}
}
