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
}

pub fn config_dir() -> Result<PathBuf, CliError> {
    if let Ok(d) = std::env::var("WHARF_CONFIG_DIR") {
        if !d.is_empty() {
            return Ok(PathBuf::from(d));
        }
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
    serde_json::from_str(&text).map_err(|e| CliError::Other(format!("the profile {} is corrupt ({e}); run 'wharf login' again", p.display())))
}

pub fn save(profile: &Profile) -> Result<(), CliError> {
    let dir = config_dir()?;
    std::fs::create_dir_all(&dir).map_err(|e| CliError::Other(format!("cannot create {}: {e}", dir.display())))?;
    let p = dir.join("config.json");
    let tmp = dir.join("config.json.tmp");
    let text = serde_json::to_string_pretty(profile).expect("profile serializes");
    std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, &p)).map_err(|e| CliError::Other(format!("cannot write {}: {e}", p.display())))
}

pub fn remove() -> Result<bool, CliError> {
    let p = path()?;
    match std::fs::remove_file(&p) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(CliError::Other(format!("cannot remove {}: {e}", p.display()))),
    }
}
