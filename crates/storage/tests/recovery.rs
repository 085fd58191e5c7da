//! Recovery and upkeep across the two stores (`wharf_storage::maintenance`) on the embedded
//! backends: what start-up does after a crash inside a commit (issue 10 item 7), the garbage
//! collection of blob files no record knows, and the expiry of idle upload sessions (item 6).

use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use wharf_oci::{Digest, DigestAlgorithm, RepositoryName};
use wharf_storage::conformance::{chunked_stream, pseudo_random_bytes, read_all};
use wharf_storage::fs::FsBlobStore;
use wharf_storage::maintenance::{self, Reconciled};
use wharf_storage::sqlite::SqliteMetadataStore;
use wharf_storage::{BlobStore, MetadataStore, RegistryKey, UploadId, UploadLimits, UploadRecord, UploadState};

struct Stores {
    meta: SqliteMetadataStore,
    blobs: FsBlobStore,
}

/// The two stores of a data directory, as `wharf serve` opens them.
fn open(dir: &Path) -> Stores {
    Stores {
        meta: SqliteMetadataStore::open(&dir.join("metadata.db")).unwrap(),
        blobs: FsBlobStore::open(dir.join("blobs")).unwrap(),
    }
}

fn record(id: &UploadId, repository: &str) -> UploadRecord {
    let now = Utc::now();
    UploadRecord {
        id: id.clone(),
        registry: RegistryKey("reg".into()),
        repository: repository.into(),
        algorithm: "sha256".into(),
        created_at: now,
        principal: Some("someone".into()),
        last_activity: now,
    }
}

/// An open session with `acked` bytes acknowledged, recorded in both stores.
async fn session(s: &Stores, repository: &str, data: &[u8]) -> UploadId {
    let id = UploadId::new();
    s.blobs.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
    s.meta.upload_put(&record(&id, repository), &UploadLimits::default()).await.unwrap();
    s.blobs.upload_append(&id, 0, chunked_stream(data, 65_536), None).await.unwrap();
    id
}

fn set_modified(path: &Path, ago: Duration) {
    std::fs::File::options().write(true).open(path).unwrap().set_modified(SystemTime::now() - ago).unwrap();
}

fn blob_file(dir: &Path, d: &Digest) -> std::path::PathBuf {
    dir.join("blobs/blobs/sha256").join(&d.hex()[..2]).join(d.hex())
}

/// The process dies after the commit's rename and before the metadata write: the next start
/// links the blob where the upload was going, and the session is gone, as if the request had
/// finished. Without the commit record the session would be lost and its bytes known to no one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_interrupted_after_its_rename_is_completed_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random_bytes(101, 3_000_000);
    let digest = Digest::sha256_of(&data);
    let id;
    {
        let s = open(dir.path());
        id = session(&s, "team/app", &data[..1_000_000]).await;
        s.blobs.upload_finish(&id, 1_000_000, chunked_stream(&data[1_000_000..], 65_536), None, &digest).await.unwrap();
        // Crash: neither `upload_complete` nor the release happens.
    }
    let s = open(dir.path());
    let committed = s.blobs.upload_inventory().await.unwrap();
    assert_eq!(committed.len(), 1);
    assert_eq!(committed[0].state, UploadState::Committed { digest: digest.clone(), size: data.len() as u64 });

    let done = maintenance::reconcile_uploads(&s.meta, &s.blobs).await.unwrap();
    assert_eq!(done, Reconciled { completed: vec![(id.clone(), digest.clone())], ..Default::default() });
    let repo = RepositoryName::parse("team/app").unwrap();
    assert_eq!(s.meta.blob_visible(&RegistryKey("reg".into()), &repo, &digest).await.unwrap(), Some(3_000_000));
    assert_eq!(s.meta.upload_get(&id).await.unwrap(), None, "the session is gone");
    assert!(s.blobs.upload_inventory().await.unwrap().is_empty(), "and released");
    assert_eq!(read_all(s.blobs.read(&digest, None).await.unwrap()).await, data);
    // Nothing is left for garbage collection to find.
    let future = Utc::now() + chrono::Duration::hours(1);
    assert!(maintenance::orphan_blob_candidates(&s.meta, &s.blobs, future).await.unwrap().is_empty());
    // A second start changes nothing.
    assert_eq!(maintenance::reconcile_uploads(&s.meta, &s.blobs).await.unwrap(), Reconciled::default());
}

/// The same with content the store already held (the commit drops its copy instead of renaming
/// it), and with a session that was cancelled (its record gone) before the crash: the first is
/// linked, the second only released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_commits_of_held_content_and_of_cancelled_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random_bytes(103, 200_000);
    let digest = Digest::sha256_of(&data);
    let (dedup, cancelled);
    {
        let s = open(dir.path());
        s.blobs.put_bytes(&digest, data.clone().into()).await.unwrap();
        dedup = session(&s, "a", &data[..1000]).await;
        s.blobs.upload_finish(&dedup, 1000, chunked_stream(&data[1000..], 4096), None, &digest).await.unwrap();
        cancelled = session(&s, "b", &data).await;
        s.blobs.upload_commit(&cancelled, &digest).await.unwrap();
        s.meta.upload_delete(&cancelled).await.unwrap();
    }
    let s = open(dir.path());
    let done = maintenance::reconcile_uploads(&s.meta, &s.blobs).await.unwrap();
    assert_eq!(done.completed, vec![(dedup.clone(), digest.clone())]);
    assert!(done.dropped_records.is_empty() && done.discarded.is_empty(), "{done:?}");
    let reg = RegistryKey("reg".into());
    assert!(s.meta.blob_visible(&reg, &RepositoryName::parse("a").unwrap(), &digest).await.unwrap().is_some());
    assert!(s.meta.blob_visible(&reg, &RepositoryName::parse("b").unwrap(), &digest).await.unwrap().is_none());
    assert!(s.blobs.upload_inventory().await.unwrap().is_empty());
}

/// Records without sessions, sessions without records and empty session directories (what a
/// crash while creating or removing one leaves) are all cleared at start-up; open sessions with
/// their records stay.
#[tokio::test]
async fn start_up_makes_records_and_sessions_agree() {
    let dir = tempfile::tempdir().unwrap();
    let (kept, lost, unrecorded, empty);
    {
        let s = open(dir.path());
        kept = session(&s, "a", b"kept").await;
        lost = session(&s, "a", b"lost").await;
        unrecorded = session(&s, "a", b"unrecorded").await;
        s.meta.upload_delete(&unrecorded).await.unwrap();
        empty = UploadId::new();
        std::fs::create_dir(dir.path().join("blobs/uploads").join(empty.as_str())).unwrap();
        s.meta.upload_put(&record(&empty, "a"), &UploadLimits::default()).await.unwrap();
    }
    std::fs::remove_dir_all(dir.path().join("blobs/uploads").join(lost.as_str())).unwrap();
    let s = open(dir.path());
    let mut done = maintenance::reconcile_uploads(&s.meta, &s.blobs).await.unwrap();
    done.dropped_records.sort();
    let mut dropped = vec![lost.clone(), empty.clone()];
    dropped.sort();
    assert_eq!(done, Reconciled { kept: 1, completed: vec![], dropped_records: dropped, discarded: vec![unrecorded] });
    assert_eq!(s.blobs.upload_ids().await.unwrap(), vec![kept.clone()]);
    assert_eq!(s.meta.upload_list().await.unwrap().into_iter().map(|r| r.id).collect::<Vec<_>>(), vec![kept.clone()]);
    assert_eq!(s.blobs.upload_size(&kept).await.unwrap(), 4);
}

/// Garbage collection finds blob files that no record knows, and deletes them only once they
/// are older than the grace period, and never the content of a commit still to be recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_files_no_record_knows_are_collected_after_the_grace_period() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let put = |seed: u64| {
        let data = pseudo_random_bytes(seed, 5000);
        (Digest::sha256_of(&data), data)
    };
    let (old_orphan, a) = put(1);
    let (young_orphan, b) = put(2);
    let (recorded, c) = put(3);
    let (pending, d) = put(4);
    for (digest, data) in [(&old_orphan, &a), (&young_orphan, &b), (&recorded, &c)] {
        s.blobs.put_bytes(digest, data.clone().into()).await.unwrap();
    }
    s.meta.blob_record(&recorded, 5000).await.unwrap();
    // Committed by an upload whose metadata write has not happened yet.
    let id = session(&s, "app", &d).await;
    s.blobs.upload_commit(&id, &pending).await.unwrap();
    for digest in [&old_orphan, &recorded, &pending] {
        set_modified(&blob_file(dir.path(), digest), Duration::from_secs(3600));
    }

    let cutoff = Utc::now() - chrono::Duration::seconds(60);
    let candidates = maintenance::orphan_blob_candidates(&s.meta, &s.blobs, cutoff).await.unwrap();
    assert_eq!(candidates.iter().map(|b| &b.digest).collect::<Vec<_>>(), vec![&old_orphan]);
    assert_eq!(candidates[0].size, 5000);

    // Between the listing and the removal, a commit of the same content touches the file: it
    // stays.
    let (again, e) = put(5);
    s.blobs.put_bytes(&again, e.clone().into()).await.unwrap();
    set_modified(&blob_file(dir.path(), &again), Duration::from_secs(3600));
    let mut listed = maintenance::orphan_blob_candidates(&s.meta, &s.blobs, cutoff).await.unwrap();
    assert_eq!(listed.len(), 2);
    s.blobs.put_bytes(&again, e.into()).await.unwrap();
    listed.sort_by(|x, y| x.digest.cmp(&y.digest));
    let removed = maintenance::remove_orphan_blobs(&s.meta, &s.blobs, &listed, cutoff).await.unwrap();
    assert_eq!(removed, vec![old_orphan.clone()]);
    assert_eq!(s.blobs.stat(&old_orphan).await.unwrap(), None);
    for kept in [&young_orphan, &recorded, &pending, &again] {
        assert!(s.blobs.stat(kept).await.unwrap().is_some(), "{kept} was kept");
    }
}

/// Issue 10 item 6: sessions idle past the cut-off expire with their bytes; a session whose bytes
/// are still arriving (one long request) is active, whatever its recorded activity says; bytes
/// on disk that no record knows expire as well once idle.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_sessions_expire_with_their_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let s = open(dir.path());
    let long_ago = Utc::now() - chrono::Duration::hours(30);
    let mut ids = Vec::new();
    for _ in 0..3 {
        let id = session(&s, "app", b"some bytes").await;
        let mut r = s.meta.upload_get(&id).await.unwrap().unwrap();
        r.last_activity = long_ago;
        s.meta.upload_put(&r, &UploadLimits::default()).await.unwrap();
        ids.push(id);
    }
    let (idle, streaming, fresh) = (ids[0].clone(), ids[1].clone(), session(&s, "app", b"fresh").await);
    let uploads = dir.path().join("blobs/uploads");
    set_modified(&uploads.join(idle.as_str()).join("data"), Duration::from_secs(30 * 3600));
    set_modified(&uploads.join(ids[2].as_str()).join("data"), Duration::from_secs(30 * 3600));
    // `streaming`'s bytes were written just now. An unrecorded, idle session and a fresh one:
    let stale = UploadId::new();
    s.blobs.upload_create(&stale, DigestAlgorithm::Sha256).await.unwrap();
    set_modified(&uploads.join(stale.as_str()).join("data"), Duration::from_secs(30 * 3600));
    let inflight = UploadId::new();
    s.blobs.upload_create(&inflight, DigestAlgorithm::Sha256).await.unwrap();

    let cutoff = Utc::now() - chrono::Duration::hours(24);
    let mut expired = maintenance::expire_uploads(&s.meta, &s.blobs, cutoff).await.unwrap();
    expired.sessions.sort();
    let mut want = vec![idle.clone(), ids[2].clone()];
    want.sort();
    assert_eq!(expired.sessions, want);
    assert_eq!(expired.unrecorded, vec![stale.clone()]);
    for gone in [&idle, &ids[2], &stale] {
        assert!(!uploads.join(gone.as_str()).exists(), "{gone}'s bytes are gone");
        assert_eq!(s.meta.upload_get(gone).await.unwrap(), None);
    }
    for kept in [&streaming, &fresh, &inflight] {
        assert!(uploads.join(kept.as_str()).join("data").exists(), "{kept} is kept");
    }
    let touched = s.meta.upload_get(&streaming).await.unwrap().unwrap();
    assert!(touched.last_activity > cutoff, "the streaming session's activity moved forward");
}
