//! Owns the command lines the engine runs (`buildah bud`, `buildah push`, `podman run`,
//! `podman rm`, …) and the parsing of image references, as pure functions. Must never spawn
//! anything: [`crate::process`] does that.

use std::path::Path;

/// An image reference split as Docker does (`docker.io/library/` for bare names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageRef {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

pub(crate) fn parse_ref(reference: &str) -> ImageRef {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d.to_string())),
        None => (reference, None),
    };
    let (registry, rest) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        _ => ("docker.io".to_string(), name.to_string()),
    };
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (mut repository, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (rest[..last_slash + i].to_string(), Some(rest[last_slash + i + 1..].to_string())),
        None => (rest.clone(), None),
    };
    if registry == "docker.io" && !repository.contains('/') {
        repository = format!("library/{repository}");
    }
    ImageRef { registry, repository, tag, digest }
}

/// What every command of one run shares.
pub(crate) struct Common<'a> {
    /// `--root R --runroot RR` for a private store; empty for the system one.
    pub global: Vec<String>,
    /// `host`, `none`, or a network name / `ns:PATH`.
    pub network: &'a str,
    pub authfile: &'a Path,
    pub cert_dir: Option<&'a Path>,
    /// `host:port` reached over plain http.
    pub insecure: &'a [String],
}

impl Common<'_> {
    fn is_insecure(&self, image: &str) -> bool {
        let registry = parse_ref(image).registry;
        self.insecure.iter().any(|r| r.eq_ignore_ascii_case(&registry))
    }

    fn registry_flags(&self, image: Option<&str>, cert_dir: bool, out: &mut Vec<String>) {
        out.push("--authfile".into());
        out.push(path(self.authfile));
        if image.is_some_and(|i| self.is_insecure(i)) {
            out.push("--tls-verify=false".into());
        }
        if cert_dir && let Some(d) = self.cert_dir {
            out.push("--cert-dir".into());
            out.push(path(d));
        }
    }
}

pub(crate) fn path(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// `buildah bud`. It gets no `--tls-verify=false`: the base images a Dockerfile pulls are not
/// known in advance, and that flag would switch verification off for every registry of the
/// build, TLS ones included. Plain-http registries are marked `insecure` in the private
/// `registries.conf` instead, which covers exactly them.
pub(crate) struct Bud<'a> {
    pub tags: &'a [String],
    pub dockerfile: &'a Path,
    pub context: &'a Path,
    pub build_args: &'a [(String, String)],
    pub target: Option<&'a str>,
    pub no_cache: bool,
    pub pull_always: bool,
    pub platform: Option<&'a str>,
    /// `--cgroup-parent` of the RUN containers.
    pub cgroup_parent: &'a str,
}

pub(crate) fn bud(c: &Common, b: &Bud) -> Vec<String> {
    let mut a = c.global.clone();
    // `--force-rm`: the build's containers go even when it fails or is ended by a signal
    // (without it, a killed build leaves a mounted working container in the store).
    a.extend(
        ["bud", "--isolation", "oci", "--network", c.network, "--layers", "--force-rm", "--retry", "0"]
            .map(String::from),
    );
    a.push("--cgroup-parent".into());
    a.push(b.cgroup_parent.into());
    c.registry_flags(None, true, &mut a);
    a.push("-f".into());
    a.push(path(b.dockerfile));
    for t in b.tags {
        a.push("-t".into());
        a.push(t.clone());
    }
    for (k, v) in b.build_args {
        a.push("--build-arg".into());
        a.push(format!("{k}={v}"));
    }
    if let Some(t) = b.target {
        a.push("--target".into());
        a.push(t.into());
    }
    if b.no_cache {
        a.push("--no-cache".into());
    }
    if b.pull_always {
        a.push("--pull-always".into());
    }
    if let Some(p) = b.platform {
        a.push("--platform".into());
        a.push(p.into());
    }
    a.push(path(b.context));
    a
}

/// `buildah push --digestfile F … <image>`.
pub(crate) fn push(c: &Common, image: &str, digestfile: &Path) -> Vec<String> {
    let mut a = c.global.clone();
    a.extend(["push", "--retry", "0", "--digestfile"].map(String::from));
    a.push(path(digestfile));
    c.registry_flags(Some(image), true, &mut a);
    a.push(image.into());
    a
}

/// `podman pull` (only when a CA directory is configured: podman 4.3's `run` has no
/// `--cert-dir`, so the image is pulled first).
pub(crate) fn pull(c: &Common, image: &str) -> Vec<String> {
    let mut a = c.global.clone();
    a.push("pull".into());
    c.registry_flags(Some(image), true, &mut a);
    a.push(image.into());
    a
}

/// `podman run`.
pub(crate) struct Run<'a> {
    pub name: &'a str,
    /// `--rm`: the container goes when it exits (not for `keep` steps).
    pub remove: bool,
    /// `-d`.
    pub detach: bool,
    /// `--env-file` (the values stay out of the process table).
    pub env_file: Option<&'a Path>,
    /// `-e K=V`, for values an env file cannot hold (a line break).
    pub env: &'a [(String, String)],
    pub entrypoint: Option<&'a str>,
    /// `-w`; `None` keeps the image's own.
    pub workdir: Option<&'a str>,
    /// Mounted at `/workspace`.
    pub workspace: &'a Path,
    pub image: &'a str,
    pub args: &'a [String],
    /// `--pull=always`: the image is fetched with the run's credentials even if stored.
    pub pull_always: bool,
}

pub(crate) fn run(c: &Common, r: &Run) -> Vec<String> {
    let mut a = c.global.clone();
    a.push("run".into());
    if r.remove {
        a.push("--rm".into());
    }
    if r.detach {
        a.push("-d".into());
    }
    a.extend(["--name", r.name, "--network", c.network].map(String::from));
    if r.pull_always {
        a.push("--pull=always".into());
    }
    c.registry_flags(Some(r.image), false, &mut a);
    if let Some(f) = r.env_file {
        a.push("--env-file".into());
        a.push(path(f));
    }
    for (k, v) in r.env {
        a.push("-e".into());
        a.push(format!("{k}={v}"));
    }
    if let Some(e) = r.entrypoint {
        a.push("--entrypoint".into());
        a.push(e.into());
    }
    if let Some(w) = r.workdir {
        a.push("-w".into());
        a.push(w.into());
    }
    a.push("-v".into());
    a.push(format!("{}:/workspace", path(r.workspace)));
    a.push(r.image.into());
    a.extend(r.args.iter().cloned());
    a
}

/// `podman image exists <image>`: exit 0 when the store has it.
pub(crate) fn image_exists(global: &[String], image: &str) -> Vec<String> {
    let mut a = global.to_vec();
    a.extend(["image", "exists", image].map(String::from));
    a
}

/// `podman rm -f -t 0 <names>…`: stops (at once) and removes.
pub(crate) fn rm_force(global: &[String], names: &[String]) -> Vec<String> {
    let mut a = global.to_vec();
    a.extend(["rm", "-f", "-t", "0", "--ignore"].map(String::from));
    a.extend(names.iter().cloned());
    a
}

/// `podman kill <names>…` (for kept containers: stopped, not removed).
pub(crate) fn kill(global: &[String], names: &[String]) -> Vec<String> {
    let mut a = global.to_vec();
    a.push("kill".into());
    a.extend(names.iter().cloned());
    a
}

/// `podman logs -f <name>` (the output of a detached step).
pub(crate) fn logs_follow(global: &[String], name: &str) -> Vec<String> {
    let mut a = global.to_vec();
    a.extend(["logs", "-f", name].map(String::from));
    a
}

/// The container name of a step: `wharf-<run>-<step>`, with anything podman refuses in a name
/// replaced by `-`.
pub(crate) fn container_name(run_id: &str, step_id: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars().map(|c| if c.is_ascii_alphanumeric() || "_.-".contains(c) { c } else { '-' }).collect()
    };
    format!("wharf-{}-{}", clean(run_id), clean(step_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_as_docker_does() {
        let r = parse_ref("127.0.0.1:5000/app/hello:1");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "app/hello", Some("1"))
        );
        let r = parse_ref("busybox");
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag), ("docker.io", "library/busybox", None));
        let r = parse_ref("localhost/a/b@sha256:abc");
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.digest.as_deref()),
            ("localhost", "a/b", Some("sha256:abc"))
        );
        let r = parse_ref("reg.io:443/x");
        assert_eq!((r.repository.as_str(), r.tag), ("x", None));
    }

    fn common<'a>(auth: &'a Path, insecure: &'a [String]) -> Common<'a> {
        Common { global: vec!["--root".into(), "/s".into()], network: "host", authfile: auth, cert_dir: None, insecure }
    }

    #[test]
    fn bud_and_push_command_lines() {
        let insecure = vec!["127.0.0.1:5000".to_string()];
        let c = common(Path::new("/r/auth.json"), &insecure);
        let tags = vec!["127.0.0.1:5000/a:1".to_string()];
        let args = vec![("V".to_string(), "1".to_string())];
        let b = Bud {
            tags: &tags,
            dockerfile: Path::new("/w/Dockerfile"),
            context: Path::new("/w"),
            build_args: &args,
            target: Some("final"),
            no_cache: true,
            pull_always: true,
            platform: None,
            cgroup_parent: "/wharf-agent/r/0",
        };
        assert_eq!(
            bud(&c, &b).join(" "),
            "--root /s bud --isolation oci --network host --layers --force-rm --retry 0 --cgroup-parent /wharf-agent/r/0 --authfile /r/auth.json \
             -f /w/Dockerfile -t 127.0.0.1:5000/a:1 --build-arg V=1 --target final \
             --no-cache --pull-always /w"
        );
        assert_eq!(
            push(&c, "reg.io/a:1", Path::new("/r/d")).join(" "),
            "--root /s push --retry 0 --digestfile /r/d --authfile /r/auth.json reg.io/a:1"
        );
    }

    #[test]
    fn run_command_line() {
        let insecure = vec!["127.0.0.1:5000".to_string()];
        let c = common(Path::new("/r/auth.json"), &insecure);
        let args = vec!["-c".to_string(), "echo hi".to_string()];
        let r = Run {
            name: "wharf-r1-s1",
            remove: true,
            detach: false,
            env_file: Some(Path::new("/r/s1.env")),
            env: &[],
            entrypoint: Some("/bin/sh"),
            workdir: Some("/workspace"),
            workspace: Path::new("/r/workspace"),
            image: "127.0.0.1:5000/a:1",
            args: &args,
            pull_always: true,
        };
        assert_eq!(
            run(&c, &r),
            "--root /s run --rm --name wharf-r1-s1 --network host --pull=always --authfile /r/auth.json --tls-verify=false \
             --env-file /r/s1.env --entrypoint /bin/sh -w /workspace -v /r/workspace:/workspace 127.0.0.1:5000/a:1 -c"
                .split(' ')
                .map(String::from)
                .chain(["echo hi".to_string()])
                .collect::<Vec<_>>()
        );
        assert_eq!(container_name("cf1", "my step/1"), "wharf-cf1-my-step-1");
    }
}
