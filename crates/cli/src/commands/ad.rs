//! `wharf ad user …` and `wharf ad sp …`: the directory, through the server's Graph subset.

use clap::Subcommand;
use serde_json::Value;

use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum AdCmd {}

pub async fn run(cmd: AdCmd) -> Result<Option<Value>, CliError> {
    match cmd {}
}
