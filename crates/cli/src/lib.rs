//! `wharf`'s client commands, shaped after `az`: the same command groups, flags, output
//! formats (`--output json|jsonc|tsv|table|yaml|none`), `--query` (JMESPath), error style and
//! exit codes, so that scripts written for `az` work with `az` replaced by `wharf`.
//!
//! The commands talk to a Wharf server's HTTP APIs only; they never open its data directory.
#![forbid(unsafe_code)]

pub mod blob_upload;
pub mod client;
pub mod commands;
pub mod context;
pub mod error;
pub mod logstream;
pub mod output;
pub mod profile;
pub mod rest;

pub use commands::Commands;
pub use error::CliError;
pub use output::OutputArgs;

/// Runs one client command and returns the process exit code (az's conventions: 0 success,
/// 1 error, 2 usage error, 3 resource not found).
pub async fn run(cmd: Commands, out: OutputArgs) -> i32 {
    let table = commands::table(&cmd);
    match commands::execute(cmd, &out).await {
        Ok(Some(value)) => match output::render(&value, &out, table) {
            Ok(text) => {
                print!("{text}");
                0
            }
            Err(e) => e.report(),
        },
        Ok(None) => 0,
        Err(e) => e.report(),
    }
}
