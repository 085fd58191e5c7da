//! `wharf admin …`: offline maintenance of a data directory whose server is stopped. Today one
//! command, `fsck`.
//!
//! This file is the thin entry: it takes the data directory's lock (so it refuses a directory
//! that a running server holds), opens the stores as they are, runs `wharf_storage::fsck` and
//! renders its report and progress. It must never create a data directory, migrate its
//! database, or change anything without `--repair`; the checks themselves live in the storage
//! crate.

use std::collections::HashSet;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use wharf_storage::fs::FsBlobStore;
use wharf_storage::fsck::{self, Progress, Report};
use wharf_storage::lock::DataDirLock;
use wharf_storage::sqlite::SqliteMetadataStore;
use wharf_storage::{MetadataStore, RegistryKey, ResourceFilter};

/// `wharf admin`: offline maintenance of a stopped server's data directory.
#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Check a data directory while its server is stopped: database integrity, every blob's
    /// bytes (present, right size, right digest), references to blobs, upload sessions, and
    /// files no record knows. Exit code 0 when nothing remains wrong, 1 when problems remain,
    /// 2 when the check could not run (e.g. a server holds the directory).
    Fsck(FsckArgs),
}

#[derive(Debug, Args)]
pub struct FsckArgs {
    /// Data directory to check [default: ./wharf-data].
    #[arg(long, env = "WHARF_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Repair what can be repaired without losing anything a client could still reach, and say
    /// what was done.
    #[arg(long)]
    pub repair: bool,

    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs an admin command; returns the process exit code.
pub async fn run(args: AdminArgs) -> i32 {
    match args.command {
        AdminCommand::Fsck(args) => match fsck_data_dir(&args).await {
            Ok(report) => {
                if args.json {
                    out(&format!("{}\n", serde_json::to_string_pretty(&report).expect("a report serializes")));
                } else {
                    out(&report.to_string());
                }
                if report.is_clean() { 0 } else { 1 }
            }
            Err(e) => {
                eprintln!("ERROR: {e:#}");
                2
            }
        },
    }
}

async fn fsck_data_dir(args: &FsckArgs) -> anyhow::Result<Report> {
    let dir = args.data_dir.clone().unwrap_or_else(|| PathBuf::from("wharf-data"));
    let db = dir.join("metadata.db");
    if !db.is_file() {
        anyhow::bail!("{} is not a Wharf data directory (it has no metadata.db)", dir.display());
    }
    let _lock = DataDirLock::acquire(&dir)?;
    let meta = SqliteMetadataStore::open_existing(&db)
        .with_context(|| format!("cannot open the metadata database {}", db.display()))?;
    let blobs = FsBlobStore::open_existing(dir.join("blobs"))
        .with_context(|| format!("cannot open the blob store in {}", dir.display()))?;
    let registries = ResourceFilter { resource_type: Some(wharf_arm::types::REGISTRY.into()), resource_group: None };
    let live: HashSet<RegistryKey> =
        meta.resource_list(&registries).await?.into_iter().map(|r| RegistryKey(r.key)).collect();
    let options = fsck::Options {
        repair: args.repair,
        now: chrono::Utc::now(),
        grace_seconds: crate::gc::GRACE_SECONDS,
        live_registries: Some(live),
    };
    if !args.json {
        let mode = if args.repair { "repairing what can be repaired safely" } else { "read-only" };
        out(&format!("Checking {} ({mode})\n\n", dir.display()));
    }
    let progress = TerminalProgress::new();
    Ok(fsck::run(&meta, &blobs, &options, &progress).await?)
}

/// Writes to stdout; a reader that went away (`| head`) is not an error worth a panic.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// One line of progress on stderr, redrawn at most a few times a second, when stderr is a
/// terminal; nothing otherwise.
struct TerminalProgress {
    enabled: bool,
    last: Mutex<Option<Instant>>,
}

impl TerminalProgress {
    fn new() -> TerminalProgress {
        TerminalProgress { enabled: std::io::stderr().is_terminal(), last: Mutex::new(None) }
    }
}

impl Progress for TerminalProgress {
    fn update(&self, step: &'static str, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|t| t.elapsed() < Duration::from_millis(200)) {
            return;
        }
        *last = Some(Instant::now());
        let amount = if step.contains("digest") {
            format!("{} of {}", fsck::human_bytes(done), fsck::human_bytes(total))
        } else {
            format!("{done} of about {total}")
        };
        let mut err = std::io::stderr();
        let _ = write!(err, "\r\x1b[2K{step}: {amount}");
        let _ = err.flush();
    }

    fn finish(&self) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if self.enabled && last.take().is_some() {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }
}
