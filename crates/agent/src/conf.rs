//! Owns the two private configuration files every buildah and podman child reads: the
//! `containers.conf` (selected by `CONTAINERS_CONF`) and the `registries.conf` (selected by
//! `CONTAINERS_REGISTRIES_CONF`). Must never edit anything under `/etc`.
//!
//! Why they exist (see `shared/research/task-engine-probe.md`): crun cannot start containers on
//! hosts with a hybrid cgroup setup, so the runtime is `runc`; and podman's default container
//! ulimits can exceed the hard limits of the process, which even root cannot raise, so the
//! defaults are capped at this process's own hard limits. The cgroup manager is cgroupfs (as
//! on these hosts), which the path form of the builds' `--cgroup-parent` needs.

use std::path::Path;

use rustix::process::{Resource, getrlimit};

/// podman's own default `nproc` for containers; the cap never goes above it (conmon ran with
/// this limit in the probe).
const NPROC_CEILING: u64 = 32768;
/// A container never needs more open files than this.
const NOFILE_CEILING: u64 = 1 << 20;

/// The ulimits every container gets: `(nofile, nproc)`, each at most this process's hard limit.
pub(crate) fn ulimit_caps() -> (u64, u64) {
    let hard = |r: Resource| getrlimit(r).maximum;
    let nofile = hard(Resource::Nofile).map_or(NOFILE_CEILING, |h| h.min(NOFILE_CEILING));
    let nproc = hard(Resource::Nproc).map_or(NPROC_CEILING, |h| h.min(NPROC_CEILING));
    (nofile, nproc)
}

/// The text of the private `containers.conf`. `tmp_dir` is libpod's state directory; it is set
/// only for a private store, so that two stores never share one libpod state.
pub(crate) fn containers_conf(nofile: u64, nproc: u64, tmp_dir: Option<&Path>) -> String {
    let mut s = format!(
        "# Written by wharf-agent: runc (crun fails on hybrid cgroups) and ulimits capped at\n\
         # the agent's hard limits.\n\
         [containers]\n\
         default_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
         \n\
         [engine]\n\
         runtime = \"runc\"\n\
         cgroup_manager = \"cgroupfs\"\n"
    );
    if let Some(dir) = tmp_dir {
        s.push_str(&format!("tmp_dir = {}\n", toml_string(&dir.to_string_lossy())));
    }
    s
}

/// The text of the private `registries.conf`: short names resolve on Docker Hub (as ACR's
/// `cmd: busybox` does), and every insecure registry is reached over plain http. That covers
/// the base images a Dockerfile pulls, which no command line names in advance.
pub(crate) fn registries_conf(insecure: &[String]) -> String {
    let mut s = String::from(
        "# Written by wharf-agent.\n\
         unqualified-search-registries = [\"docker.io\"]\n\
         short-name-mode = \"permissive\"\n",
    );
    for r in insecure {
        s.push_str(&format!("\n[[registry]]\nlocation = {}\ninsecure = true\n", toml_string(r)));
    }
    s
}

/// A TOML basic string.
fn toml_string(v: &str) -> String {
    let mut s = String::from('"');
    for c in v.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            c if (c as u32) < 0x20 => s.push_str(&format!("\\u{:04x}", c as u32)),
            c => s.push(c),
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_never_exceed_the_hard_limits() {
        let (nofile, nproc) = ulimit_caps();
        if let Some(h) = getrlimit(Resource::Nofile).maximum {
            assert!(nofile <= h);
        }
        if let Some(h) = getrlimit(Resource::Nproc).maximum {
            assert!(nproc <= h);
        }
        assert!(nofile > 0 && nproc > 0 && nproc <= NPROC_CEILING);
    }

    #[test]
    fn containers_conf_selects_runc_and_the_caps() {
        let s = containers_conf(20000, 32768, Some(Path::new("/tmp/x\"y")));
        assert!(s.contains("default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]"));
        assert!(s.contains("runtime = \"runc\"\ncgroup_manager = \"cgroupfs\"\n"));
        assert!(s.contains("tmp_dir = \"/tmp/x\\\"y\""));
        assert!(!containers_conf(1, 2, None).contains("tmp_dir"));
    }

    #[test]
    fn registries_conf_marks_insecure_registries() {
        let s = registries_conf(&["127.0.0.1:5000".into()]);
        assert!(s.contains("[[registry]]\nlocation = \"127.0.0.1:5000\"\ninsecure = true\n"));
    }
}
