//! `wharf acr login|credential|repository|manifest`: commands that use a registry's data plane
//! or its credentials.

use clap::Subcommand;
use serde_json::Value;

use crate::error::CliError;

#[derive(Debug, Subcommand)]
pub enum AcrDataCmd {}

pub async fn run(cmd: AcrDataCmd) -> Result<Option<Value>, CliError> {
    match cmd {}
}
