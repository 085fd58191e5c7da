//! The `wharf` binary: `wharf serve` runs the server, `wharf admin` maintains a stopped server's
//! data directory; every other command is a client command shaped after `az`. This file only
//! wires them together.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "wharf", version, about = "A self-hosted OCI registry with Azure Container Registry's security model")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    output: wharf_cli::OutputArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the Wharf server (data plane and management API) on its embedded storage.
    Serve(Box<wharf_server::ServeArgs>),
    /// Maintain a data directory while its server is stopped (`wharf admin fsck`).
    Admin(wharf_server::admin::AdminArgs),
    #[command(flatten)]
    Client(wharf_cli::Commands),
}

fn main() {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let code = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => match wharf_server::serve(*args).await {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("ERROR: {e:#}");
                    1
                }
            },
            Command::Admin(args) => wharf_server::admin::run(args).await,
            Command::Client(cmd) => wharf_cli::run(cmd, cli.output).await,
        }
    });
    std::process::exit(code);
}
