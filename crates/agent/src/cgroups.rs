//! Owns the cgroups of the builds' `RUN` containers. Each build step runs with
//! `--cgroup-parent /wharf-agent/<run_id>/<step index>`, so that the processes of its `RUN`
//! instructions can be found — and killed — exactly, even when the buildah that started them
//! is gone (killed in the middle of starting a container, its runtime monitor can die before
//! it stops the container, which then lives on with init as its parent). The directories are
//! removed when the run ends. Must never touch a cgroup outside `/wharf-agent/<run_id>`.
//!
//! The path form of `--cgroup-parent` is the cgroupfs manager's, which the private
//! `containers.conf` selects.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process};

/// The cgroup path (relative to each hierarchy's root) of a run.
pub(crate) fn run_path(run_id: &str) -> String {
    format!("/wharf-agent/{run_id}")
}

/// The `--cgroup-parent` of a build step.
pub(crate) fn build_parent(run_id: &str, index: usize) -> String {
    format!("{}/{index}", run_path(run_id))
}

/// The mount points of the cgroup (v1) and cgroup2 hierarchies.
fn hierarchies() -> Vec<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let mount_point = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(mount_point))
        })
        .collect()
}

fn dirs_below(dir: &Path, out: &mut Vec<PathBuf>) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                dirs_below(&e.path(), out);
            }
        }
    }
    out.push(dir.to_path_buf());
}

/// Every cgroup directory at or below `rel`, deepest first.
fn cgroup_dirs(rel: &str) -> Vec<PathBuf> {
    let rel = rel.trim_start_matches('/');
    let mut out = Vec::new();
    for h in hierarchies() {
        let d = h.join(rel);
        if d.is_dir() {
            dirs_below(&d, &mut out);
        }
    }
    out
}

/// SIGKILL to every process in the cgroups at or below `rel`; how many were signalled.
pub(crate) fn kill_all(rel: &str) -> usize {
    let mut pids: Vec<i32> = cgroup_dirs(rel)
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect::<Vec<i32>>())
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids.iter().filter_map(|&p| Pid::from_raw(p)).filter(|&p| kill_process(p, Signal::KILL).is_ok()).count()
}

/// Kills what is left below `rel` and removes its directories (an empty cgroup can be
/// removed; killed processes take a moment to leave).
pub(crate) async fn remove(rel: &str) {
    for _ in 0..20 {
        kill_all(rel);
        let dirs = cgroup_dirs(rel);
        if dirs.is_empty() {
            return;
        }
        for d in dirs {
            let _ = std::fs::remove_dir(&d);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_below_the_run() {
        assert_eq!(build_parent("cf1", 2), "/wharf-agent/cf1/2");
        assert!(build_parent("cf1", 2).starts_with(&run_path("cf1")));
    }
}
