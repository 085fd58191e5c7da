//! The CLI's profile: which server to talk to, kept in `~/.wharf/config.json`
//! (or `$WHARF_CONFIG_DIR/config.json`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::CliError;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    pub server: String,
    #[serde(default)]
    pub subscription: Option<String>,
    #[serde(default)]
    pub tenant: Option<String>,
    /// Who is signed in and how the CLI gets new tokens.
    #[serde(default)]
    pub account: Option<Account>,
    /// The last management token and its expiry (unix seconds).
    #[serde(default)]
    pub access_token: Option<String>,
    #[serde(default)]
    pub expires_on: Option<i64>,
}

/// The signed-in account. Like az, the CLI keeps what it needs to get new tokens: a user's
/// refresh token, or a service principal's secret, in a file only its owner can read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Account {
    User { username: String, refresh_token: String },
    ServicePrincipal { app_id: String, secret: String },
}

pub fn config_dir() -> Result<PathBuf, CliError> {
    if let Ok(d) = std::env::var("WHARF_CONFIG_DIR")
        && !d.is_empty()
    {
        return Ok(PathBuf::from(d));
    }
    let home = std::env::var("HOME").map_err(|_| CliError::Other("HOME is not set; set WHARF_CONFIG_DIR".into()))?;
    Ok(PathBuf::from(home).join(".wharf"))
}

fn path() -> Result<PathBuf, CliError> {
    Ok(config_dir()?.join("config.json"))
}

pub fn load() -> Result<Profile, CliError> {
    let p = path()?;
    let text = std::fs::read_to_string(&p).map_err(|_| {
        CliError::Other("not logged in to a Wharf server. Run 'wharf login --server URL' first.".into())
    })?;
    serde_json::from_str(&text)
        .map_err(|e| CliError::Other(format!("the profile {} is corrupt ({e}); run 'wharf login' again", p.display())))
}

pub fn save(profile: &Profile) -> Result<(), CliError> {
    let dir = config_dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let p = dir.join("config.json");
    let tmp = dir.join("config.json.tmp");
    let text = serde_json::to_string_pretty(profile).expect("profile serializes");
    write_private(&tmp, &text)
        .and_then(|_| std::fs::rename(&tmp, &p))
        .map_err(|e| CliError::Other(format!("cannot write {}: {e}", p.display())))
}

fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)?.write_all(text.as_bytes())
}

pub fn remove() -> Result<bool, CliError> {
    let p = path()?;
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::Other(format!("cannot remove {}: {e}", p.display()))),
    }
}
