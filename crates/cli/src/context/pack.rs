//! Packing a local context directory into the gzip tar that `acr build` and `acr run` upload,
//! as az's `_pack_source_code` packs it. Owns the walk, the member names and the extra copy
//! of the Dockerfile; must never follow a symlink (a link is stored as a link, so nothing
//! outside the context is read through one), never write an absolute or `..` member name, and
//! never leave the temporary archive behind ([`TempArchive`] deletes it when dropped).
//!
//! - Members are named relative to the context root (`app.py`, `src/lib/x.rs`), sorted, with
//!   no root entry (az writes the root as `/`, which servers must then sanitise).
//! - At the top level, az's version-control names are left out with its warning:
//!   [`VCS_NAMES`].
//! - `.dockerignore` decides the rest ([`super::dockerignore`]). An excluded directory is not
//!   written; it is still walked when the file has `!` exceptions, so that what they take back
//!   is sent.
//! - With a Dockerfile, its content is added last as the top-level member the caller names
//!   (`<32 hex>_Dockerfile`), so that a Dockerfile outside the context, or excluded by
//!   `.dockerignore`, still reaches the build.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::dockerignore::DockerIgnore;
use crate::error::CliError;

/// Top-level names az never sends (`common_vcs_ignore_list`).
pub const VCS_NAMES: [&str; 7] = [".git", ".gitignore", ".bzr", "bzrignore", ".hg", ".hgignore", ".svn"];

/// The rules for a context: `<context>/<Dockerfile name>.dockerignore` when the Dockerfile is
/// not named `Dockerfile` and that file exists (then `.dockerignore` itself is excluded too,
/// as az does), else `<context>/.dockerignore`, else none. Also returns the override's path,
/// for az's `Overriding .dockerignore with …` warning.
pub fn load_dockerignore(
    context: &Path,
    dockerfile_name: Option<&str>,
) -> Result<(DockerIgnore, Option<PathBuf>), CliError> {
    let parse = |path: &Path| -> Result<DockerIgnore, CliError> {
        let bytes = fs::read(path).map_err(|e| CliError::Other(format!("cannot read {}: {e}", path.display())))?;
        DockerIgnore::parse(&String::from_utf8_lossy(&bytes))
            .map_err(|e| CliError::Other(format!("{}: {e}", path.display())))
    };
    if let Some(name) = dockerfile_name.filter(|n| *n != "Dockerfile") {
        let custom = context.join(format!("{name}.dockerignore"));
        if custom.is_file() {
            let mut rules = parse(&custom)?;
            // az puts `.dockerignore` below every rule of the file.
            rules.insert_first(".dockerignore");
            return Ok((rules, Some(custom)));
        }
    }
    let default = context.join(".dockerignore");
    if default.is_file() { Ok((parse(&default)?, None)) } else { Ok((DockerIgnore::default(), None)) }
}

/// What packing did besides writing the archive.
#[derive(Debug, Default)]
pub struct Packed {
    /// Top-level version-control entries left out (az warns about each).
    pub vcs_excluded: Vec<String>,
    /// Entries that are neither files, directories nor symlinks (sockets, FIFOs, devices).
    pub skipped: Vec<String>,
    /// The archive's size in bytes.
    pub size: u64,
}

/// A file in the temporary directory that is removed when this is dropped.
#[derive(Debug)]
pub struct TempArchive {
    path: PathBuf,
}

impl TempArchive {
    /// `<tmp>/<prefix>_<32 hex>.tar.gz` (az: `build_archive_…`, `run_archive_…`), created empty.
    pub fn create(prefix: &str) -> Result<TempArchive, CliError> {
        let path = std::env::temp_dir().join(format!("{prefix}_{}.tar.gz", uuid::Uuid::new_v4().simple()));
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| CliError::Other(format!("cannot create {}: {e}", path.display())))?;
        Ok(TempArchive { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempArchive {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The extra member that carries the Dockerfile: its local path and its name in the archive.
#[derive(Debug, Clone)]
pub struct ExtraDockerfile {
    pub path: PathBuf,
    pub name_in_tar: String,
}

/// Writes the gzip tar of `context` to `out`.
pub fn pack(
    context: &Path,
    ignore: &DockerIgnore,
    dockerfile: Option<&ExtraDockerfile>,
    out: &Path,
) -> Result<Packed, CliError> {
    let io = |what: &Path, e: std::io::Error| CliError::Other(format!("cannot pack {}: {e}", what.display()));
    let file = File::create(out).map_err(|e| io(out, e))?;
    let mut tar = tar::Builder::new(GzEncoder::new(BufWriter::new(file), Compression::default()));
    tar.follow_symlinks(false);
    let mut packed = Packed::default();
    let mut walk = Walk { root: context, ignore, out, tar: &mut tar, packed: &mut packed };
    walk.dir(Path::new(""))?;
    if let Some(d) = dockerfile {
        let mut f = File::open(&d.path).map_err(|e| io(&d.path, e))?;
        tar.append_file(&d.name_in_tar, &mut f).map_err(|e| io(&d.path, e))?;
    }
    let gz = tar.into_inner().map_err(|e| io(out, e))?;
    let mut writer = gz.finish().map_err(|e| io(out, e))?;
    writer.flush().map_err(|e| io(out, e))?;
    drop(writer);
    packed.size = fs::metadata(out).map_err(|e| io(out, e))?.len();
    Ok(packed)
}

struct Walk<'a, W: Write> {
    root: &'a Path,
    ignore: &'a DockerIgnore,
    /// The archive being written (never packed into itself).
    out: &'a Path,
    tar: &'a mut tar::Builder<W>,
    packed: &'a mut Packed,
}

impl<W: Write> Walk<'_, W> {
    /// Adds the entries of the directory `rel` (relative to the root; `""` is the root).
    fn dir(&mut self, rel: &Path) -> Result<(), CliError> {
        let abs_dir = self.root.join(rel);
        let io = |what: &Path, e: std::io::Error| CliError::Other(format!("cannot pack {}: {e}", what.display()));
        let mut names: Vec<_> = fs::read_dir(&abs_dir)
            .map_err(|e| io(&abs_dir, e))?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(|e| io(&abs_dir, e))?;
        names.sort();
        for name in names {
            let member = rel.join(&name);
            let abs = abs_dir.join(&name);
            // `/`-separated on every platform, for the matcher and the messages.
            let key = member.to_string_lossy().replace('\\', "/");
            if rel.as_os_str().is_empty() && VCS_NAMES.contains(&key.as_str()) {
                self.packed.vcs_excluded.push(key);
                continue;
            }
            if abs == self.out {
                continue;
            }
            let meta = fs::symlink_metadata(&abs).map_err(|e| io(&abs, e))?;
            let excluded = self.ignore.excludes(&key);
            let kind = meta.file_type();
            if kind.is_dir() {
                if !excluded {
                    self.tar.append_dir(&member, &abs).map_err(|e| io(&abs, e))?;
                }
                if !excluded || self.ignore.has_exceptions() {
                    self.dir(&member)?;
                }
            } else if excluded {
                continue;
            } else if kind.is_file() || kind.is_symlink() {
                // With follow_symlinks(false) a link is written as a link, its target as text.
                self.tar.append_path_with_name(&abs, &member).map_err(|e| io(&abs, e))?;
            } else {
                self.packed.skipped.push(key);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Every member of a gzip tar: (name, entry type, content or link target).
    fn members(archive: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
        let mut a = tar::Archive::new(flate2::read::GzDecoder::new(archive));
        a.entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
                let kind = e.header().entry_type();
                let mut body = Vec::new();
                if kind.is_symlink() {
                    body = e.link_name_bytes().unwrap().to_vec();
                } else {
                    e.read_to_end(&mut body).unwrap();
                }
                (name, kind, body)
            })
            .collect()
    }

    fn write(root: &Path, rel: &str, content: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    #[test]
    fn the_archive_has_the_context_minus_ignored_and_vcs_plus_the_dockerfile_copy() {
        let ctx = tempfile::tempdir().unwrap();
        let root = ctx.path();
        write(root, "Dockerfile", "FROM busybox\nCOPY . /ctx\n");
        write(root, "app.txt", "app");
        write(root, "secret.txt", "do not send");
        write(root, "src/main.rs", "fn main() {}");
        write(root, "src/gen/big.o", "object");
        write(root, "src/gen/keep.txt", "kept");
        write(root, "sub/.git/config", "a nested .git is not az's to drop");
        write(root, ".git/HEAD", "ref: refs/heads/main");
        write(root, ".gitignore", "target");
        write(root, ".dockerignore", "# secrets stay home\nsecret.txt\nsrc/gen\n!src/gen/keep.txt\n");
        std::os::unix::fs::symlink("/etc/passwd", root.join("passwd-link")).unwrap();
        std::os::unix::fs::symlink("app.txt", root.join("app-link")).unwrap();

        let (ignore, custom) = load_dockerignore(root, Some("Dockerfile")).unwrap();
        assert!(custom.is_none());
        let out = TempArchive::create("build_archive").unwrap();
        let extra = ExtraDockerfile {
            path: root.join("Dockerfile"),
            name_in_tar: "0123456789abcdef0123456789abcdef_Dockerfile".into(),
        };
        let packed = pack(root, &ignore, Some(&extra), out.path()).unwrap();
        assert_eq!(packed.vcs_excluded, [".git", ".gitignore"]);
        let bytes = fs::read(out.path()).unwrap();
        assert_eq!(packed.size, bytes.len() as u64);
        let m = members(&bytes);
        let names: Vec<&str> = m.iter().map(|(n, _, _)| n.trim_end_matches('/')).collect();
        assert_eq!(
            names,
            [
                ".dockerignore",
                "Dockerfile",
                "app-link",
                "app.txt",
                "passwd-link",
                "src",
                "src/gen/keep.txt",
                "src/main.rs",
                "sub",
                "sub/.git",
                "sub/.git/config",
                "0123456789abcdef0123456789abcdef_Dockerfile",
            ]
        );
        assert!(names.iter().all(|n| !n.starts_with('/') && !n.split('/').any(|p| p == "..")));
        let get = |name: &str| m.iter().find(|(n, _, _)| n == name).unwrap();
        // Links stay links: nothing outside the context is read through one.
        assert!(get("passwd-link").1.is_symlink());
        assert_eq!(get("passwd-link").2, b"/etc/passwd");
        assert_eq!(get("app-link").2, b"app.txt");
        assert_eq!(get("src/gen/keep.txt").2, b"kept");
        assert_eq!(get("0123456789abcdef0123456789abcdef_Dockerfile").2, b"FROM busybox\nCOPY . /ctx\n");
        assert!(get("0123456789abcdef0123456789abcdef_Dockerfile").1.is_file());
        let path = out.path().to_path_buf();
        drop(out);
        assert!(!path.exists(), "the temporary archive is deleted");
    }

    #[test]
    fn a_dockerfile_outside_the_context_and_an_excluded_one_still_travel() {
        let ctx = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        write(ctx.path(), "a.txt", "a");
        write(ctx.path(), ".dockerignore", "*\n");
        write(elsewhere.path(), "Dockerfile.prod", "FROM scratch\n");
        let (ignore, _) = load_dockerignore(ctx.path(), Some("Dockerfile.prod")).unwrap();
        let out = TempArchive::create("build_archive").unwrap();
        let extra =
            ExtraDockerfile { path: elsewhere.path().join("Dockerfile.prod"), name_in_tar: "x_Dockerfile.prod".into() };
        pack(ctx.path(), &ignore, Some(&extra), out.path()).unwrap();
        let m = members(&fs::read(out.path()).unwrap());
        assert_eq!(m.len(), 1, "{:?}", m.iter().map(|x| &x.0).collect::<Vec<_>>());
        assert_eq!(m[0].0, "x_Dockerfile.prod");
        assert_eq!(m[0].2, b"FROM scratch\n");
    }

    #[test]
    fn a_named_dockerfile_takes_its_own_dockerignore() {
        let ctx = tempfile::tempdir().unwrap();
        write(ctx.path(), ".dockerignore", "a.txt\n");
        write(ctx.path(), "Dockerfile.prod.dockerignore", "b.txt\n");
        write(ctx.path(), "a.txt", "a");
        write(ctx.path(), "b.txt", "b");
        let (ignore, custom) = load_dockerignore(ctx.path(), Some("Dockerfile.prod")).unwrap();
        assert_eq!(custom.unwrap(), ctx.path().join("Dockerfile.prod.dockerignore"));
        assert!(ignore.excludes("b.txt"));
        assert!(!ignore.excludes("a.txt"));
        assert!(ignore.excludes(".dockerignore"), "az leaves the default file out then");
        // With the plain name, the plain file.
        let (ignore, custom) = load_dockerignore(ctx.path(), Some("Dockerfile")).unwrap();
        assert!(custom.is_none());
        assert!(ignore.excludes("a.txt") && !ignore.excludes("b.txt"));
        // No file at all: nothing is excluded.
        let empty = tempfile::tempdir().unwrap();
        assert!(!load_dockerignore(empty.path(), None).unwrap().0.excludes("x"));
    }

    #[test]
    fn an_excluded_directory_without_exceptions_is_not_walked() {
        let ctx = tempfile::tempdir().unwrap();
        write(ctx.path(), "node_modules/a/b.js", "x");
        write(ctx.path(), "index.js", "x");
        write(ctx.path(), ".dockerignore", "node_modules\n");
        // A socket is neither file, directory nor link: walking past it records it.
        let _deep = std::os::unix::net::UnixListener::bind(ctx.path().join("node_modules/a/sock")).unwrap();
        let _top = std::os::unix::net::UnixListener::bind(ctx.path().join("top.sock")).unwrap();
        let (ignore, _) = load_dockerignore(ctx.path(), None).unwrap();
        let out = TempArchive::create("run_archive").unwrap();
        let packed = pack(ctx.path(), &ignore, None, out.path()).unwrap();
        assert_eq!(packed.skipped, ["top.sock"], "node_modules was not walked");
        let m = members(&fs::read(out.path()).unwrap());
        let names: Vec<&str> = m.iter().map(|(n, _, _)| n.as_str()).collect();
        assert_eq!(names, [".dockerignore", "index.js"]);
    }
}
