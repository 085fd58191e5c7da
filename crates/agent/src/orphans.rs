//! Owns the cleanup of the working containers a killed `buildah bud` leaves in the store.
//!
//! With `--force-rm`, buildah removes its containers when a build fails, and when it is
//! ended during a `RUN` (it forwards the signal to the RUN's container and cleans up). Ended
//! in any other phase — pulling, creating the FROM container, `COPY`, committing — it exits
//! at once and leaves a mounted `…-working-container`. buildah gives those containers no
//! name, label or argument of the build, so they are found by elimination: the builder
//! containers that exist after a killed build and did not exist before it started are
//! *candidates*; they are removed once no build of this process is in flight on that store,
//! because by then every other build has removed its own. The count is per store and
//! process-wide, so that several engines on one store (as the tests have) coordinate. Must
//! never remove a container while a build of this process could still own it. Assumes the
//! store is this process's own: buildah containers made by another process during a killed
//! build would count as candidates too.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::Inner;
use crate::process;

const LIMIT: Duration = Duration::from_secs(30);

/// The builds of one store.
pub(crate) struct Builds;

#[derive(Default)]
struct State {
    in_flight: usize,
    candidates: HashSet<String>,
}

/// One build in flight; [`BuildGuard::finish`] ends it (dropping it unfinished still counts
/// the build out, without a sweep).
pub(crate) struct BuildGuard<'a> {
    inner: &'a Inner,
    before: HashSet<String>,
    counted: bool,
}

impl Drop for BuildGuard<'_> {
    fn drop(&mut self) {
        if self.counted {
            with_state(self.inner, |st| st.in_flight -= 1);
        }
    }
}

/// The state of the engine's store (keyed by its `--root`; the system store by `None`).
fn with_state<T>(inner: &Inner, f: impl FnOnce(&mut State) -> T) -> T {
    static STORES: OnceLock<Mutex<HashMap<Option<PathBuf>, State>>> = OnceLock::new();
    let key = inner.cfg.storage.as_ref().map(|s| s.root.clone());
    let mut stores = STORES.get_or_init(Default::default).lock().unwrap();
    f(stores.entry(key).or_default())
}

/// The IDs of the store's builder containers, or `None` if buildah could not say.
async fn builder_containers(inner: &Inner) -> Option<HashSet<String>> {
    let mut args = inner.global.clone();
    args.extend(["containers", "--quiet", "--notruncate"].map(String::from));
    match process::quiet(&inner.cfg.buildah, &args, &inner.env, LIMIT).await {
        Ok((0, out)) => Some(out.lines().map(str::trim).filter(|l| !l.is_empty()).map(String::from).collect()),
        _ => None,
    }
}

impl Builds {
    /// Before a build: notes the containers that exist.
    pub(crate) async fn start(inner: &Inner) -> BuildGuard<'_> {
        with_state(inner, |st| st.in_flight += 1);
        let mut guard = BuildGuard { inner, before: HashSet::new(), counted: true };
        guard.before = builder_containers(inner).await.unwrap_or_default();
        guard
    }
}

impl BuildGuard<'_> {
    /// After a build; `killed` when the engine ended it. Removes the candidates when this was
    /// the last build in flight. Returns how many containers it removed.
    pub(crate) async fn finish(mut self, killed: bool) -> usize {
        let inner = self.inner;
        let new: Vec<String> = if killed {
            builder_containers(inner).await.map_or_else(Vec::new, |now| now.difference(&self.before).cloned().collect())
        } else {
            Vec::new()
        };
        self.counted = false;
        let sweep: Vec<String> = with_state(inner, |st| {
            st.in_flight -= 1;
            st.candidates.extend(new);
            if st.in_flight == 0 { st.candidates.drain().collect() } else { Vec::new() }
        });
        if sweep.is_empty() {
            return 0;
        }
        let mut args = inner.global.clone();
        args.push("rm".into());
        let mut removed = 0;
        // One at a time: `buildah rm a b` stops at the first that is already gone.
        for id in sweep {
            let mut a = args.clone();
            a.push(id);
            if matches!(process::quiet(&inner.cfg.buildah, &a, &inner.env, LIMIT).await, Ok((0, _))) {
                removed += 1;
            }
        }
        removed
    }
}
