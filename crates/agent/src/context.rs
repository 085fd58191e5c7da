//! Owns filling a run's working directory from its [`Context`]: copying a directory, extracting
//! an uploaded archive, cloning a git repository. Must never write outside the working
//! directory (archive members are checked one by one, and the `tar` crate refuses to unpack
//! through a symbolic link that leads out), and never put a git token in an argument or a URL.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::log::RunLog;
use crate::process::{self, Exit};
use crate::{Context, GitContext};

/// Fills the new `workspace` (which must not exist yet) from `context`; `scratch` is an
/// existing directory of the caller's for a git checkout. Returns the commit a git context
/// checked out.
pub(crate) async fn fill(
    scratch: &Path,
    workspace: &Path,
    context: &Context,
    log: &RunLog,
    deadline: Instant,
    stop: &CancellationToken,
) -> Result<Option<String>, String> {
    match context {
        Context::Git(g) => clone(g, scratch, workspace, log, deadline, stop).await.map(Some),
        other => fill_files(workspace, other).await.map(|()| None),
    }
}

/// [`fill`] for the contexts that are files (none, a directory, an archive, a staged one).
async fn fill_files(workspace: &Path, context: &Context) -> Result<(), String> {
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    match context {
        Context::Empty => std::fs::create_dir(workspace).map_err(|e| io("creating the workspace", e)),
        Context::Staged(src) => std::fs::rename(src, workspace).map_err(|e| io("moving the staged context in", e)),
        Context::Git(_) => Err("internal: a git context is cloned, not copied".into()),
        Context::Dir(src) => {
            let (src, dst) = (src.clone(), workspace.to_path_buf());
            blocking(move || copy_tree(&src, &dst).map_err(|e| format!("copying the context {}: {e}", src.display())))
                .await
        }
        Context::Archive { path, max_bytes } => {
            let (path, dst, max) = (path.clone(), workspace.to_path_buf(), *max_bytes);
            blocking(move || {
                std::fs::create_dir(&dst).map_err(|e| format!("creating the workspace: {e}"))?;
                let file = std::fs::File::open(&path).map_err(|e| format!("opening the source archive: {e}"))?;
                extract(file, &dst, max)
            })
            .await
        }
    }
}

async fn blocking(f: impl FnOnce() -> Result<(), String> + Send + 'static) -> Result<(), String> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(format!("preparing the workspace: {e}")))
}

/// Copies a directory tree; symbolic links are copied as links, never followed.
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    std::fs::create_dir(dst)?;
    for entry in std::fs::read_dir(src)? {
        let entry = entry?;
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&from, &to)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&from)?, &to)?;
        } else if kind.is_file() {
            std::fs::copy(&from, &to)?;
        }
    }
    Ok(())
}

/// A member's name relative to the workspace: a leading `/` and `./` are dropped (az's archives
/// start with a member named `/`); `None` for the root itself; an error for `..`.
fn member_path(name: &Path) -> Result<Option<PathBuf>, String> {
    let mut out = PathBuf::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => {
                return Err(format!(
                    "the source archive's member '{}' points outside the context ('..')",
                    name.display()
                ));
            }
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// Extracts a gzip-compressed tar archive into `dst`.
pub(crate) fn extract(archive: impl Read, dst: &Path, max_bytes: u64) -> Result<(), String> {
    use tar::EntryType as T;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(archive));
    archive.set_preserve_ownerships(false);
    archive.set_overwrite(true);
    let bad = |e: std::io::Error| format!("the source archive could not be read: {e}");
    let mut total: u64 = 0;
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let name = entry.path().map_err(bad)?.into_owned();
        let kind = entry.header().entry_type();
        match kind {
            T::Regular | T::Continuous | T::Directory | T::Symlink | T::Link | T::GNUSparse => {}
            T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink => continue,
            _ => {
                return Err(format!(
                    "the source archive's member '{}' is a device, FIFO or other special file, which a context may not hold",
                    name.display()
                ));
            }
        }
        let Some(relative) = member_path(&name)? else { continue };
        if kind == T::Link
            && let Some(target) = entry.link_name().map_err(bad)?
        {
            member_path(&target)?;
        }
        total = total.saturating_add(entry.size());
        if total > max_bytes {
            return Err(format!(
                "the source archive holds more than {max_bytes} bytes once extracted, the limit of this server"
            ));
        }
        // `unpack_in` creates the member's parents and refuses a member whose path leads out
        // of `dst`, through `..` or a symbolic link extracted earlier.
        match entry.unpack_in(dst) {
            Ok(true) => {}
            Ok(false) => {
                return Err(format!("the source archive's member '{}' points outside the context", name.display()));
            }
            Err(e) if e.to_string().contains("outside of") => {
                return Err(format!(
                    "the source archive's member '{}' points outside the context (through a symbolic link)",
                    name.display()
                ));
            }
            Err(e) => return Err(format!("extracting '{}': {e}", relative.display())),
        }
    }
    Ok(())
}

/// A repository folder, checked: relative, without `..`.
fn folder_path(folder: &str) -> Result<PathBuf, String> {
    let p = Path::new(folder.trim_matches('/'));
    if p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
        return Err(format!("the git context's folder '{folder}' must be a relative folder of the repository"));
    }
    Ok(p.to_path_buf())
}

/// Whether `r` is a full commit id (git's `--branch` takes only branches and tags).
fn is_commit(r: &str) -> bool {
    (r.len() == 40 || r.len() == 64) && r.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The environment that gives git the token (`http.extraHeader`) without a prompt.
fn git_env(token: Option<&str>) -> Vec<(String, String)> {
    let mut env = vec![("GIT_TERMINAL_PROMPT".to_string(), "0".to_string())];
    if let Some(t) = token {
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{t}"));
        env.extend([
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
            ("GIT_CONFIG_VALUE_0".into(), format!("Authorization: Basic {basic}")),
        ]);
    }
    env
}

async fn git(
    args: &[String],
    env: &[(String, String)],
    log: &RunLog,
    deadline: Instant,
    stop: &CancellationToken,
) -> Result<(), String> {
    match process::stream(Path::new("git"), args, env, log, deadline, stop, async {}).await {
        Exit::Code(0) => Ok(()),
        Exit::Code(c) => Err(format!("git {} failed, exit status {c}", args.first().map_or("", |a| a.as_str()))),
        Exit::TimedOut => Err("cloning the git context timed out".into()),
        Exit::Stopped => Err("the run was canceled while its git context was cloned".into()),
        Exit::Spawn(e) => Err(format!("git could not be started ({e}): install git on the server")),
    }
}

/// A quiet git command's output, or why it failed.
async fn git_output(args: &[String], env: &[(String, String)], deadline: Instant) -> Result<String, String> {
    let limit = deadline.saturating_duration_since(Instant::now()).max(std::time::Duration::from_secs(1));
    match process::quiet(Path::new("git"), args, env, limit).await {
        Ok((0, out)) => Ok(out),
        Ok((c, out)) => Err(format!("git {} failed, exit status {c}: {}", args.join(" "), out.trim())),
        Err(e) => Err(format!("git could not be run ({e})")),
    }
}

/// Clones `g` into `scratch/git` and makes its folder the `workspace` (which must not exist).
/// Returns the commit checked out.
async fn clone(
    g: &GitContext,
    scratch: &Path,
    workspace: &Path,
    log: &RunLog,
    deadline: Instant,
    stop: &CancellationToken,
) -> Result<String, String> {
    let folder = g.folder.as_deref().map(folder_path).transpose()?;
    let checkout = scratch.join("git");
    let target = checkout.to_string_lossy().into_owned();
    let env = git_env(g.token.as_deref());
    log.event(&format!(
        "Cloning the source code from '{}'{}",
        g.url,
        g.reference.as_deref().map(|r| format!(" at '{r}'")).unwrap_or_default()
    ));
    let s = |x: &str| x.to_string();
    match g.reference.as_deref() {
        Some(r) if is_commit(r) => {
            git(&[s("clone"), s("--no-checkout"), s("--"), g.url.clone(), target.clone()], &env, log, deadline, stop)
                .await?;
            // A commit no branch or tag reaches (a pull request's head) is not in the clone:
            // ask the remote for it by id (GitHub and Azure Repos serve reachable commits).
            let present = git_output(
                &[s("-C"), target.clone(), s("cat-file"), s("-e"), format!("{r}^{{commit}}")],
                &env,
                deadline,
            )
            .await
            .is_ok();
            if !present {
                git(&[s("-C"), target.clone(), s("fetch"), s("--quiet"), s("origin"), s(r)], &env, log, deadline, stop)
                    .await?;
            }
            git(&[s("-C"), target.clone(), s("checkout"), s("--quiet"), s(r)], &env, log, deadline, stop).await?;
        }
        reference => {
            let mut args = vec![s("clone"), s("--depth"), s("1"), s("--single-branch")];
            if let Some(r) = reference {
                args.extend([s("--branch"), s(r)]);
            }
            args.extend([s("--"), g.url.clone(), target.clone()]);
            git(&args, &env, log, deadline, stop).await?;
        }
    }
    let head = git_output(&[s("-C"), target.clone(), s("rev-parse"), s("HEAD")], &env, deadline).await?;
    let commit = head.trim().to_string();
    if !is_commit(&commit) {
        return Err(format!("git rev-parse HEAD answered '{commit}', not a commit id"));
    }
    log.event(&format!("The source code is at commit {commit}"));
    let source = match &folder {
        Some(f) => checkout.join(f),
        None => checkout.clone(),
    };
    let meta = std::fs::symlink_metadata(&source)
        .map_err(|_| format!("the git context has no folder '{}'", g.folder.as_deref().unwrap_or_default()))?;
    if !meta.is_dir() {
        return Err(format!("the git context's '{}' is not a folder", g.folder.as_deref().unwrap_or_default()));
    }
    std::fs::rename(&source, workspace).map_err(|e| format!("moving the git context into the workspace: {e}"))?;
    let _ = std::fs::remove_dir_all(&checkout);
    Ok(commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(members: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, kind, data, link) in members {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            // Raw names: `set_path` refuses `..` and `/`, which is what these tests send.
            let raw = &mut h.as_old_mut().name;
            raw[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                let raw = &mut h.as_old_mut().linkname;
                raw[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn extracts_az_style_archives_with_a_root_member() {
        use tar::EntryType as T;
        let dir = tempfile::tempdir().unwrap();
        let bytes = archive(&[
            ("/", T::Directory, b"", None),
            ("Dockerfile", T::Regular, b"FROM busybox\n", None),
            ("src/main.sh", T::Regular, b"echo hi\n", None),
            ("0123_Dockerfile", T::Regular, b"FROM busybox\n", None),
            ("Dockerfile", T::Regular, b"FROM scratch\n", None),
        ]);
        extract(&bytes[..], dir.path(), 1 << 20).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("src/main.sh")).unwrap(), "echo hi\n");
        // A duplicate member replaces the first, as tar does.
        assert_eq!(std::fs::read_to_string(dir.path().join("Dockerfile")).unwrap(), "FROM scratch\n");
        assert!(dir.path().join("0123_Dockerfile").is_file());
    }

    #[test]
    fn refuses_members_outside_the_context() {
        use tar::EntryType as T;
        let outside = tempfile::tempdir().unwrap();
        let escape = outside.path().to_string_lossy().into_owned();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (archive(&[("../evil", T::Regular, b"x", None)]), "outside the context"),
            (archive(&[("a/../../evil", T::Regular, b"x", None)]), "outside the context"),
            (
                archive(&[("link", T::Symlink, b"", Some(&escape)), ("link/evil", T::Regular, b"x", None)]),
                "outside the context",
            ),
            (archive(&[("hard", T::Link, b"", Some("../../etc/passwd"))]), "outside the context"),
            (archive(&[("dev", T::Char, b"", None)]), "special file"),
            (archive(&[("big", T::Regular, &[0u8; 2048], None)]), "more than 1024 bytes"),
        ];
        for (bytes, want) in cases {
            let dir = tempfile::tempdir().unwrap();
            let err = extract(&bytes[..], dir.path(), 1024).unwrap_err();
            assert!(err.contains(want), "{err}");
            assert!(!outside.path().join("evil").exists());
        }
        let dir = tempfile::tempdir().unwrap();
        let err = extract(&b"not gzip"[..], dir.path(), 1024).unwrap_err();
        assert!(err.contains("could not be read"), "{err}");
    }

    #[test]
    fn folders_and_commits() {
        assert_eq!(folder_path("/docker/app/").unwrap(), PathBuf::from("docker/app"));
        assert!(folder_path("../x").is_err());
        assert!(folder_path("a/../../x").is_err());
        assert!(is_commit(&"a".repeat(40)));
        assert!(!is_commit("main"));
        let env = git_env(Some("tok"));
        assert!(env.iter().any(|(k, v)| k == "GIT_CONFIG_VALUE_0" && v.starts_with("Authorization: Basic ")));
        assert!(!env.iter().any(|(_, v)| v.contains("tok")), "the token travels encoded only");
    }
}
