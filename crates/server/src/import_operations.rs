//! The table of import operations: what `importImage` started, for the status URL az polls.
//!
//! Owns: each operation's state (running, succeeded, failed with its error), the registry and
//! caller it belongs to, and forgetting finished operations once nobody needs them
//! ([`KEEP_FINISHED`] after they end).
//! Must never: run an import or decide who may see an operation (the management plane's
//! permission table does, from the registry in the status URL).
//!
//! The table lives in memory: with a single process serving a data directory that is enough,
//! and an operation's only reader is the client polling it within seconds. A restart forgets
//! operations (their status URLs then answer 404, and a copy cut off by the restart leaves
//! what it had linked or stored, each step being complete on its own; see docs/decisions.md).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a finished operation stays readable.
pub const KEEP_FINISHED: Duration = Duration::from_secs(3600);

/// Where an import stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationStatus {
    Running(Progress),
    Succeeded,
    /// The import stopped; `code` and `message` are ARM's error fields.
    Failed {
        code: String,
        message: String,
    },
}

/// How far a running import got: manifests read of the image, and blob bytes received from
/// outside the deployment (an import within it moves none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    pub manifests: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Lowercase resource id of the target registry.
    registry_id: String,
    status: OperationStatus,
    finished_at: Option<Instant>,
}

/// Import operations by id.
#[derive(Default)]
pub struct ImportOperations {
    entries: Mutex<HashMap<String, Entry>>,
}

impl ImportOperations {
    /// Records a new running operation of the registry `registry_id`; returns its id.
    pub fn start(&self, registry_id: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let mut entries = self.entries.lock().expect("import operations lock");
        let now = Instant::now();
        entries.retain(|_, e| e.finished_at.is_none_or(|t| now.duration_since(t) < KEEP_FINISHED));
        entries.insert(
            id.clone(),
            Entry {
                registry_id: registry_id.to_ascii_lowercase(),
                status: OperationStatus::Running(Progress::default()),
                finished_at: None,
            },
        );
        id
    }

    /// Marks an operation finished (`Succeeded` or `Failed`).
    pub fn finish(&self, id: &str, status: OperationStatus) {
        let mut entries = self.entries.lock().expect("import operations lock");
        if let Some(e) = entries.get_mut(id) {
            e.status = status;
            e.finished_at = Some(Instant::now());
        }
    }

    /// Records the progress of a running operation (ignored once it finished).
    pub fn progress(&self, id: &str, update: impl FnOnce(&mut Progress)) {
        let mut entries = self.entries.lock().expect("import operations lock");
        if let Some(Entry { status: OperationStatus::Running(p), .. }) = entries.get_mut(id) {
            update(p);
        }
    }

    /// The status of operation `id` of registry `registry_id`; `None` for an unknown id, an
    /// operation of another registry, or one finished longer ago than [`KEEP_FINISHED`].
    pub fn status(&self, registry_id: &str, id: &str) -> Option<OperationStatus> {
        let entries = self.entries.lock().expect("import operations lock");
        let e = entries.get(id)?;
        let fresh = e.finished_at.is_none_or(|t| t.elapsed() < KEEP_FINISHED);
        (fresh && e.registry_id == registry_id.to_ascii_lowercase()).then(|| e.status.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_operation_belongs_to_its_registry() {
        let ops = ImportOperations::default();
        let id = ops.start("/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/A");
        let reg = "/subscriptions/s/resourcegroups/g/providers/microsoft.containerregistry/registries/a";
        ops.progress(&id, |p| p.manifests += 2);
        assert_eq!(ops.status(reg, &id), Some(OperationStatus::Running(Progress { manifests: 2, bytes: 0 })));
        assert_eq!(ops.status("/subscriptions/s/resourcegroups/g/providers/x/registries/b", &id), None);
        ops.finish(&id, OperationStatus::Succeeded);
        assert_eq!(ops.status(reg, &id), Some(OperationStatus::Succeeded));
        assert_eq!(ops.status(reg, "nope"), None);
    }
}
