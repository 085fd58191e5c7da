//! The handle the planes and the run executor share (held by the state): a wake-up for the
//! executor when a run is queued, the cancel switches of the runs executing in this process,
//! the engine (or why there is none), where run logs live, and the webhook deliveries that
//! queued a run lately (so that a redelivery does not queue it twice).
//!
//! Owns: nothing stored. The queue itself is in the metadata store (`run_create`,
//! `run_claim`), so that another replica or a remote agent can claim runs; this is only the
//! local doorbell. Must never: import the state or a plane.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

/// Whether runs can execute here.
#[derive(Clone)]
pub enum EngineState {
    Ready(Arc<wharf_agent::Engine>),
    /// No engine: every run fails at once with this reason.
    Unavailable(String),
}

pub struct RunQueue {
    wake: tokio::sync::Notify,
    cancels: Mutex<HashMap<String, CancellationToken>>,
    pub engine: EngineState,
    /// Runs executing at once in this process.
    pub max_parallel: usize,
    logs_dir: PathBuf,
    /// This process's name as an agent (run leases carry it).
    pub agent_id: String,
    deliveries: Mutex<RecentDeliveries>,
}

/// How many webhook deliveries are remembered (the oldest are forgotten first).
pub const REMEMBERED_DELIVERIES: usize = 10_000;

/// Delivery keys seen lately, at most [`REMEMBERED_DELIVERIES`], in arrival order.
#[derive(Default)]
struct RecentDeliveries {
    order: std::collections::VecDeque<String>,
    seen: std::collections::HashSet<String>,
}

impl RunQueue {
    pub fn new(engine: EngineState, max_parallel: usize, logs_dir: PathBuf) -> RunQueue {
        RunQueue {
            wake: tokio::sync::Notify::new(),
            cancels: Mutex::new(HashMap::new()),
            engine,
            max_parallel: max_parallel.max(1),
            logs_dir,
            agent_id: format!("wharf-{}", uuid::Uuid::new_v4()),
            deliveries: Mutex::new(RecentDeliveries::default()),
        }
    }

    /// A run was queued (or finished, freeing a slot): the executor looks at the queue again.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    pub async fn woken(&self) {
        self.wake.notified().await
    }

    fn key(registry: &str, run_id: &str) -> String {
        format!("{registry}/{}", run_id.to_ascii_lowercase())
    }

    /// The cancel switch of a run this process executes (created on first use).
    pub fn cancel_switch(&self, registry: &str, run_id: &str) -> CancellationToken {
        self.cancels.lock().expect("cancels lock").entry(Self::key(registry, run_id)).or_default().clone()
    }

    /// Cancels a run executing here; false when this process does not execute it.
    pub fn cancel(&self, registry: &str, run_id: &str) -> bool {
        match self.cancels.lock().expect("cancels lock").get(&Self::key(registry, run_id)) {
            Some(c) => {
                c.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every run of a registry executing here (the registry was deleted).
    pub fn cancel_registry(&self, registry: &str) {
        let prefix = format!("{registry}/");
        for (k, c) in self.cancels.lock().expect("cancels lock").iter() {
            if k.starts_with(&prefix) {
                c.cancel();
            }
        }
    }

    pub fn finished(&self, registry: &str, run_id: &str) {
        self.cancels.lock().expect("cancels lock").remove(&Self::key(registry, run_id));
    }

    /// The log file of a run: `{data-dir}/runs/{registry key}/{run id}.log`.
    pub fn log_path(&self, registry: &str, run_id: &str) -> PathBuf {
        self.logs_dir.join(registry).join(format!("{}.log", run_id.to_ascii_lowercase()))
    }

    /// The directory of a registry's run logs (removed with the registry).
    pub fn registry_logs(&self, registry: &str) -> PathBuf {
        self.logs_dir.join(registry)
    }

    /// Claims a webhook delivery: true the first time `key` is seen (among the last
    /// [`REMEMBERED_DELIVERIES`]), false for a repeat.
    pub fn first_delivery(&self, key: &str) -> bool {
        let mut d = self.deliveries.lock().expect("deliveries lock");
        if !d.seen.insert(key.to_string()) {
            return false;
        }
        d.order.push_back(key.to_string());
        while d.order.len() > REMEMBERED_DELIVERIES {
            if let Some(old) = d.order.pop_front() {
                d.seen.remove(&old);
            }
        }
        true
    }

    /// Gives a claimed delivery back (its run could not be queued: a retry may queue it).
    pub fn forget_delivery(&self, key: &str) {
        let mut d = self.deliveries.lock().expect("deliveries lock");
        if d.seen.remove(key) {
            d.order.retain(|k| k != key);
        }
    }

    pub fn logs_dir(&self) -> &Path {
        &self.logs_dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_are_claimed_once_and_the_oldest_forgotten() {
        let q = RunQueue::new(EngineState::Unavailable("test".into()), 1, PathBuf::from("/nonexistent"));
        assert!(q.first_delivery("a"));
        assert!(!q.first_delivery("a"), "a redelivery");
        q.forget_delivery("a");
        assert!(q.first_delivery("a"), "given back, it can be claimed again");
        for i in 0..REMEMBERED_DELIVERIES {
            assert!(q.first_delivery(&format!("k{i}")));
        }
        assert!(q.first_delivery("a"), "pushed out by newer deliveries: memory stays bounded");
        assert!(!q.first_delivery(&format!("k{}", REMEMBERED_DELIVERIES - 1)));
    }
}
