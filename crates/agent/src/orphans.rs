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
//!
//! The listing before a build costs a `buildah containers` (tens of milliseconds) on every
//! build's critical path, so a store's listing is kept from the moment it last became idle (no
//! build in flight: what existed then, less what was swept) and a build that starts on an idle
//! store uses it; a build starting beside others lists afresh. Under the same assumption, the
//! kept listing is exact: builds that end normally remove their own containers (`--force-rm`),
//! and those of killed builds are swept when the store becomes idle.

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
    /// The builder containers of the idle store, when it last became idle after a listing.
    idle_listing: Option<HashSet<String>>,
}

/// One build in flight; [`BuildGuard::finish`] ends it (dropping it unfinished still counts
/// the build out, without a sweep).
pub(crate) struct BuildGuard<'a> {
    inner: &'a Inner,
    before: HashSet<String>,
    /// `before` is a real listing (buildah answered, or an idle store's kept listing).
    listed: bool,
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
        let kept = with_state(inner, |st| {
            let kept = if st.in_flight == 0 { st.idle_listing.clone() } else { None };
            st.in_flight += 1;
            kept
        });
        let mut guard = BuildGuard { inner, before: HashSet::new(), listed: false, counted: true };
        let listing = match kept {
            Some(k) => Some(k),
            None => builder_containers(inner).await,
        };
        guard.listed = listing.is_some();
        guard.before = listing.unwrap_or_default();
        guard
    }
}

impl BuildGuard<'_> {
    /// After a build; `killed` when the engine ended it. Removes the candidates when this was
    /// the last build in flight. Returns how many containers it removed.
    pub(crate) async fn finish(mut self, killed: bool) -> usize {
        let inner = self.inner;
        let (after, new): (Option<HashSet<String>>, Vec<String>) = if killed {
            match builder_containers(inner).await {
                Some(now) => {
                    let new = now.difference(&self.before).cloned().collect();
                    (Some(now), new)
                }
                None => (None, Vec::new()),
            }
        } else {
            (self.listed.then(|| self.before.clone()), Vec::new())
        };
        self.counted = false;
        let (sweep, idle): (Vec<String>, bool) = with_state(inner, |st| {
            st.in_flight -= 1;
            st.candidates.extend(new);
            // Forget the kept listing while builds run: the next idle moment sets it again.
            st.idle_listing = None;
            if st.in_flight == 0 { (st.candidates.drain().collect(), true) } else { (Vec::new(), false) }
        });
        let mut args = inner.global.clone();
        args.push("rm".into());
        let mut removed = HashSet::new();
        // One at a time: `buildah rm a b` stops at the first that is already gone.
        for id in sweep {
            let mut a = args.clone();
            a.push(id.clone());
            if matches!(process::quiet(&inner.cfg.buildah, &a, &inner.env, LIMIT).await, Ok((0, _))) {
                removed.insert(id);
            }
        }
        if idle && let Some(after) = after {
            let listing: HashSet<String> = after.difference(&removed).cloned().collect();
            with_state(inner, |st| {
                if st.in_flight == 0 {
                    st.idle_listing = Some(listing);
                }
            });
        }
        removed.len()
    }
}
