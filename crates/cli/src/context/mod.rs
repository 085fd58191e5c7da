//! Build contexts: what the `SOURCE_LOCATION` of `acr build` and `acr run` names, and the
//! archive a local directory becomes. Owns az's rules for telling a local directory from a
//! remote URL ([`Source::parse`]), the `.dockerignore` matcher ([`dockerignore`]) and the
//! packer ([`pack`]); must never talk to a server (uploading is [`crate::blob_upload`]'s).

pub mod dockerignore;
pub mod pack;

use std::path::PathBuf;

use crate::error::CliError;

/// az's `/dev/null` context: nothing is uploaded (`acr run` only).
pub const NULL_CONTEXT: &str = "/dev/null";

/// Hosts whose git URLs need no `.git` suffix (az's `TASK_VALID_VSTS_URLS`).
const VSTS_HOSTS: [&str; 2] = ["visualstudio.com", "dev.azure.com"];

/// What a `SOURCE_LOCATION` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `/dev/null` (any case): no context.
    Null,
    /// A local directory: packed (honouring `.dockerignore`) and uploaded.
    Directory(PathBuf),
    /// A local `.tar.gz` or `.tgz` file: uploaded as it is (Wharf's addition; az refuses
    /// local files).
    Tarball(PathBuf),
    /// A git URL (`https://…/x.git#branch:dir`, `git@…`, Azure DevOps), an `oci://` artifact
    /// or a remote tarball: sent as `sourceLocation` as it is.
    Remote(String),
}

/// Whether az would HEAD this remote URL first (a remote tarball, not a git URL).
pub fn is_remote_tarball(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://")) && !is_git_url(&lower)
}

fn is_git_url(lower: &str) -> bool {
    VSTS_HOSTS.iter().any(|h| lower.contains(h)) || {
        // `\.git(?:#.+)?$`
        let before_fragment = match lower.split_once('#') {
            Some((url, fragment)) if !fragment.is_empty() => url,
            _ => lower,
        };
        before_fragment.ends_with(".git")
    }
}

impl Source {
    /// az's `prepare_source_location` and `check_remote_source_code`, with their messages.
    /// `null_allowed`: `/dev/null` means "no context" (`acr run`), else it is the local file it
    /// is and refused (`acr build`).
    pub fn parse(location: &str, null_allowed: bool) -> Result<Source, CliError> {
        if null_allowed && location.eq_ignore_ascii_case(NULL_CONTEXT) {
            return Ok(Source::Null);
        }
        let path = PathBuf::from(location);
        if let Ok(meta) = std::fs::metadata(&path) {
            if meta.is_dir() {
                return Ok(Source::Directory(path));
            }
            let lower = location.to_ascii_lowercase();
            if meta.is_file() && (lower.ends_with(".tar.gz") || lower.ends_with(".tgz")) {
                return Ok(Source::Tarball(path));
            }
            return Err(CliError::Other("Source location should be a local directory path or remote URL.".into()));
        }
        let lower = location.to_ascii_lowercase();
        // Any http(s) URL: a git one as it is, a remote tarball after az's HEAD (the caller's).
        let remote = ["git@", "git://", "oci://", "https://", "http://"].iter().any(|p| lower.starts_with(p))
            || (lower.starts_with("github.com/") && is_git_url(&lower));
        if remote {
            Ok(Source::Remote(location.to_string()))
        } else {
            Err(CliError::Other(format!("'{location}' doesn't exist.")))
        }
    }
}

/// az's size in the `Sending context (…)` line: `610.000 Bytes`, `1.234 MiB`.
pub fn human_size(bytes: u64) -> String {
    let mut size = bytes as f64;
    for unit in ["Bytes", "KiB", "MiB", "GiB"] {
        if size < 1024.0 || unit == "GiB" {
            return format!("{size:.3} {unit}");
        }
        size /= 1024.0;
    }
    unreachable!("the loop returns at GiB")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_printed_as_az_prints_them() {
        assert_eq!(human_size(610), "610.000 Bytes");
        assert_eq!(human_size(1023), "1023.000 Bytes");
        assert_eq!(human_size(1024), "1.000 KiB");
        assert_eq!(human_size(1_293_942), "1.234 MiB");
        assert_eq!(human_size(5 * 1024 * 1024 * 1024 * 1024), "5120.000 GiB");
    }

    #[test]
    fn locations_as_az_tells_them_apart() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_str().unwrap();
        assert_eq!(Source::parse(d, false).unwrap(), Source::Directory(dir.path().into()));
        assert_eq!(Source::parse("/dev/null", true).unwrap(), Source::Null);
        assert_eq!(Source::parse("/DEV/NULL", true).unwrap(), Source::Null);
        // For build, /dev/null is a local file like any other.
        assert_eq!(
            Source::parse("/dev/null", false).unwrap_err().to_string(),
            "Source location should be a local directory path or remote URL."
        );
        std::fs::write(dir.path().join("ctx.tar.gz"), b"x").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"x").unwrap();
        let tarball = dir.path().join("ctx.tar.gz");
        assert_eq!(Source::parse(tarball.to_str().unwrap(), false).unwrap(), Source::Tarball(tarball.clone()));
        assert!(Source::parse(dir.path().join("notes.txt").to_str().unwrap(), false).is_err());
        for remote in [
            "https://github.com/x/y.git#main:src",
            "git@github.com:x/y.git",
            "https://dev.azure.com/org/proj/_git/repo",
            "oci://myregistry.azurecr.io/ctx:v1",
            "http://server/context.tar.gz",
        ] {
            assert_eq!(Source::parse(remote, false).unwrap(), Source::Remote(remote.into()), "{remote}");
        }
        assert!(is_remote_tarball("http://server/context.tar.gz"));
        assert!(!is_remote_tarball("https://github.com/x/y.git#main"));
        assert!(!is_remote_tarball("https://dev.azure.com/org/proj/_git/repo"));
        assert_eq!(Source::parse("./no-such-dir", false).unwrap_err().to_string(), "'./no-such-dir' doesn't exist.");
        assert!(Source::parse("github.com/x/y", false).is_err(), "no scheme and no .git");
    }
}
