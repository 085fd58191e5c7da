//! Owns reading a git context as ACR writes one: `https://host/org/repo.git#branch:folder`
//! (`#branch`, `#:folder` and no fragment too), also `http://`, `git://` and `file://`. A URL of a
//! tarball (`….tar.gz`, `….tgz`) is not a git context. Must never accept a folder that leaves the
//! repository (`..`) or a URL with credentials in it (those belong in the task's access token).

/// A git repository, what to check out, and the folder that becomes the run's context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitLocation {
    /// The repository URL, without the fragment.
    pub url: String,
    /// A branch, tag or commit; `None`: the remote's default branch.
    pub reference: Option<String>,
    /// A folder of the repository; `None`: its root.
    pub folder: Option<String>,
}

impl GitLocation {
    /// `None` when `location` is not a git context.
    pub fn parse(location: &str) -> Option<GitLocation> {
        let (url, fragment) = match location.split_once('#') {
            Some((u, f)) => (u, Some(f)),
            None => (location, None),
        };
        let lower = url.to_ascii_lowercase();
        let rest = ["https://", "http://", "git://", "file://"].iter().find_map(|s| lower.strip_prefix(s))?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let local = lower.starts_with("file://");
        if (!local && authority.is_empty()) || authority.contains('@') || path.trim_matches('/').is_empty() {
            return None;
        }
        if lower.ends_with(".tar.gz") || lower.ends_with(".tgz") {
            return None;
        }
        if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return None;
        }
        let (reference, folder) = match fragment {
            None => (None, None),
            Some(f) => {
                let (r, d) = match f.split_once(':') {
                    Some((r, d)) => (r, Some(d)),
                    None => (f, None),
                };
                let r = r.trim();
                if r.starts_with('-') || r.contains("..") || r.chars().any(|c| c.is_whitespace() || c.is_control()) {
                    return None;
                }
                let d = d.map(|d| d.trim().trim_matches('/')).filter(|d| !d.is_empty());
                if d.is_some_and(|d| d.split('/').any(|part| part == ".." || part.is_empty())) {
                    return None;
                }
                ((!r.is_empty()).then(|| r.to_string()), d.map(str::to_string))
            }
        };
        Some(GitLocation { url: url.to_string(), reference, folder })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(url: &str, r: Option<&str>, f: Option<&str>) -> Option<GitLocation> {
        Some(GitLocation { url: url.into(), reference: r.map(Into::into), folder: f.map(Into::into) })
    }

    #[test]
    fn acr_forms() {
        let u = "https://github.com/org/app.git";
        assert_eq!(GitLocation::parse(u), loc(u, None, None));
        assert_eq!(GitLocation::parse(&format!("{u}#main")), loc(u, Some("main"), None));
        assert_eq!(GitLocation::parse(&format!("{u}#main:docker/web")), loc(u, Some("main"), Some("docker/web")));
        assert_eq!(GitLocation::parse(&format!("{u}#:docker/")), loc(u, None, Some("docker")));
        assert_eq!(
            GitLocation::parse("http://127.0.0.1:9418/r.git#v1"),
            loc("http://127.0.0.1:9418/r.git", Some("v1"), None)
        );
        assert_eq!(GitLocation::parse("file:///srv/git/app.git"), loc("file:///srv/git/app.git", None, None));
    }

    #[test]
    fn not_git() {
        for bad in [
            "/dev/null",
            "source/0123.tar.gz",
            "https://example.com/ctx.tar.gz",
            "https://user:pw@github.com/org/app.git",
            "https:///x.git",
            "https://github.com/",
            "https://github.com/org/app.git#main:../etc",
            "https://github.com/org/app.git#--upload-pack=x",
            "ssh://github.com/org/app.git",
        ] {
            assert_eq!(GitLocation::parse(bad), None, "{bad}");
        }
    }
}
