//! `wharf_storage::fsck` on the embedded backends: every kind of problem it knows, planted in a
//! data directory, is found without changing anything, repaired only as far as is safe, and a
//! second check after the repair finds nothing left but what cannot be repaired.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime};

use chrono::Utc;
use wharf_oci::{Digest, DigestAlgorithm, RepositoryName};
use wharf_storage::conformance::{chunked_stream, pseudo_random_bytes};
use wharf_storage::fs::FsBlobStore;
use wharf_storage::fsck::{self, Options, Problem, Report, Resolution, Silent};
use wharf_storage::sqlite::SqliteMetadataStore;
use wharf_storage::{BlobStore, MetadataStore, NewManifest, RegistryKey, UploadId, UploadLimits, UploadRecord};

fn options(repair: bool, live: &[&RegistryKey]) -> Options {
    Options {
        repair,
        now: Utc::now(),
        grace_seconds: 60,
        live_registries: Some(live.iter().map(|k| (*k).clone()).collect::<HashSet<_>>()),
    }
}

async fn check(meta: &SqliteMetadataStore, blobs: &FsBlobStore, repair: bool, live: &[&RegistryKey]) -> Report {
    fsck::run(meta, blobs, &options(repair, live), &Silent).await.unwrap()
}

fn kinds(report: &Report) -> Vec<String> {
    let mut k: Vec<String> = report
        .findings
        .iter()
        .map(|f| serde_json::to_value(&f.problem).unwrap()["kind"].as_str().unwrap().to_string())
        .collect();
    k.sort();
    k
}

fn blob_file(dir: &Path, d: &Digest) -> std::path::PathBuf {
    dir.join("blobs/blobs").join(d.algorithm().as_str()).join(&d.hex()[..2]).join(d.hex())
}

fn age(path: &Path) {
    let f = std::fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();
}

fn manifest(blob: &Digest) -> NewManifest {
    let bytes = bytes::Bytes::from(format!(r#"{{"schemaVersion":2,"layers":["{blob}"]}}"#));
    NewManifest {
        digest: Digest::sha256_of(&bytes),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        bytes,
        artifact_type: None,
        subject: None,
        annotations: None,
        blob_refs: vec![blob.clone()],
        manifest_refs: vec![],
        architecture: None,
        os: None,
        tag: None,
    }
}

fn upload(registry: &RegistryKey, repository: &str) -> UploadRecord {
    let now = Utc::now();
    UploadRecord {
        id: UploadId::new(),
        registry: registry.clone(),
        repository: repository.into(),
        algorithm: "sha256".into(),
        created_at: now,
        principal: None,
        last_activity: now,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_directory_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let meta = SqliteMetadataStore::open(&dir.path().join("metadata.db")).unwrap();
    let blobs = FsBlobStore::open(dir.path().join("blobs")).unwrap();
    let reg = RegistryKey("live".into());
    let repo = RepositoryName::parse("app").unwrap();
    let data = pseudo_random_bytes(1, 700_000);
    let d = Digest::sha256_of(&data);
    blobs.put_bytes(&d, data.into()).await.unwrap();
    meta.blob_link(&reg, &repo, &d, 700_000).await.unwrap();
    meta.manifest_put(&reg, &repo, &manifest(&d)).await.unwrap();
    let open = upload(&reg, "app");
    blobs.upload_create(&open.id, DigestAlgorithm::Sha256).await.unwrap();
    meta.upload_put(&open, &UploadLimits::default()).await.unwrap();

    let report = check(&meta, &blobs, false, &[&reg]).await;
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.counts.metadata.blobs, 1);
    assert_eq!(report.counts.rehashed_bytes, 700_000);
    assert_eq!(report.counts.blob_files, 1);
    assert_eq!(report.counts.upload_sessions, 1);
    assert!(report.to_string().contains("No problems found."), "{report}");
}

/// Every problem fsck knows, planted at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn problems_are_found_then_repaired_as_far_as_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metadata.db");
    let meta = SqliteMetadataStore::open(&db).unwrap();
    let blobs = FsBlobStore::open(dir.path().join("blobs")).unwrap();
    let reg = RegistryKey("live".into());
    let gone = RegistryKey("deleted".into());
    let repo = RepositoryName::parse("app").unwrap();
    let put = |seed: u64| {
        let data = pseudo_random_bytes(seed, 10_000 + seed as usize);
        (Digest::sha256_of(&data), data)
    };

    // 1. Recorded, unused, bytes missing: the record goes.
    let (missing_unused, _) = put(1);
    meta.blob_record(&missing_unused, 10_001).await.unwrap();
    // 2. Recorded, linked and referenced, bytes missing: cannot be repaired here.
    let (missing_used, _) = put(2);
    meta.blob_link(&reg, &repo, &missing_used, 10_002).await.unwrap();
    meta.manifest_put(&reg, &repo, &manifest(&missing_used)).await.unwrap();
    // 3. Linked, bytes corrupt: quarantined, the link stays (push again).
    let (corrupt, data) = put(3);
    blobs.put_bytes(&corrupt, data.into()).await.unwrap();
    meta.blob_link(&reg, &repo, &corrupt, 10_003).await.unwrap();
    let path = blob_file(dir.path(), &corrupt);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[5] ^= 0xff;
    std::fs::write(&path, bytes).unwrap();
    // 4. Recorded, unused, wrong size: quarantined and forgotten.
    let (short, data) = put(4);
    blobs.put_bytes(&short, data.into()).await.unwrap();
    meta.blob_record(&short, 10_004).await.unwrap();
    std::fs::OpenOptions::new().write(true).open(blob_file(dir.path(), &short)).unwrap().set_len(100).unwrap();
    // 5. An old file no record knows: deleted. 6. A young one: left alone.
    let (old_orphan, data) = put(5);
    blobs.put_bytes(&old_orphan, data.into()).await.unwrap();
    age(&blob_file(dir.path(), &old_orphan));
    let (young_orphan, data) = put(6);
    blobs.put_bytes(&young_orphan, data.into()).await.unwrap();
    // 7. A link whose blob record vanished, bytes intact: recorded again.
    let (unrecorded, data) = put(7);
    blobs.put_bytes(&unrecorded, data.into()).await.unwrap();
    meta.blob_link(&reg, &repo, &unrecorded, 10_007).await.unwrap();
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.execute("DELETE FROM blobs WHERE digest = ?1", [unrecorded.to_string()]).unwrap();
    // 8. A record without its session, 9. a session without its record, 10. an empty directory.
    let no_bytes = upload(&reg, "app");
    meta.upload_put(&no_bytes, &UploadLimits::default()).await.unwrap();
    let no_record = UploadId::new();
    blobs.upload_create(&no_record, DigestAlgorithm::Sha256).await.unwrap();
    let empty = UploadId::new();
    std::fs::create_dir(dir.path().join("blobs/uploads").join(empty.as_str())).unwrap();
    // 11. A commit whose metadata write never happened.
    let (committed, data) = put(11);
    let interrupted = upload(&reg, "app");
    blobs.upload_create(&interrupted.id, DigestAlgorithm::Sha256).await.unwrap();
    meta.upload_put(&interrupted, &UploadLimits::default()).await.unwrap();
    blobs.upload_finish(&interrupted.id, 0, chunked_stream(&data, 4096), None, &committed).await.unwrap();
    // 12. Content of a registry whose resource is gone.
    let (leftover, data) = put(12);
    blobs.put_bytes(&leftover, data.into()).await.unwrap();
    meta.blob_link(&gone, &repo, &leftover, 10_012).await.unwrap();
    let gone_upload = upload(&gone, "app");
    blobs.upload_create(&gone_upload.id, DigestAlgorithm::Sha256).await.unwrap();
    meta.upload_put(&gone_upload, &UploadLimits::default()).await.unwrap();

    let expected = vec![
        "blob-corrupt",
        "blob-missing",
        "blob-missing",
        "blob-wrong-size",
        "deleted-registry-content",
        "orphan-blob",
        "orphan-blob",
        "unrecorded-reference",
        "upload-commit-interrupted",
        "upload-empty",
        "upload-without-bytes",
        "upload-without-record",
    ];
    // A check changes nothing: twice the same report.
    for _ in 0..2 {
        let report = check(&meta, &blobs, false, &[&reg]).await;
        assert_eq!(kinds(&report), expected, "{report}");
        assert_eq!(report.remaining(), expected.len());
        let unrepairable: Vec<&Problem> = report
            .findings
            .iter()
            .filter(|f| matches!(f.resolution, Resolution::Unrepairable(_)))
            .map(|f| &f.problem)
            .collect();
        assert_eq!(unrepairable.len(), 3, "{report}");
        assert!(
            unrepairable.iter().any(|p| matches!(p, Problem::BlobMissing { digest, .. } if digest == &missing_used))
        );
        assert!(
            unrepairable.iter().any(|p| matches!(p, Problem::OrphanBlob { digest, .. } if digest == &young_orphan))
        );
        let text = report.to_string();
        assert!(text.contains("12 problems found; --repair fixes 9 of them."), "{text}");
        assert!(text.contains("push the blob again"), "{text}");
    }
    assert!(blobs.stat(&old_orphan).await.unwrap().is_some(), "a check deletes nothing");

    let report = check(&meta, &blobs, true, &[&reg]).await;
    assert_eq!(kinds(&report), expected, "{report}");
    let left: Vec<String> = report
        .findings
        .iter()
        .filter(|f| !matches!(f.resolution, Resolution::Repaired(_)))
        .map(|f| f.problem.to_string())
        .collect();
    // The referenced blob without bytes, the young orphan, and the corrupt linked blob (moved
    // to quarantine, but still linked: it must be pushed again).
    assert_eq!(left.len(), 3, "{report}");
    assert!(report.to_string().contains("Repaired 9 problems; 3 remain."), "{report}");

    // What the repair did.
    assert!(meta.blob_records_of(std::slice::from_ref(&missing_unused)).await.unwrap().is_empty());
    assert_eq!(blobs.stat(&corrupt).await.unwrap(), None, "corrupt bytes left the content store");
    let quarantined = std::fs::read_dir(dir.path().join("blobs/quarantine")).unwrap().count();
    assert_eq!(quarantined, 2, "kept for inspection");
    assert!(meta.blob_records_of(std::slice::from_ref(&short)).await.unwrap().is_empty());
    assert_eq!(blobs.stat(&old_orphan).await.unwrap(), None);
    assert!(blobs.stat(&young_orphan).await.unwrap().is_some());
    assert_eq!(meta.blob_records_of(std::slice::from_ref(&unrecorded)).await.unwrap().len(), 1);
    assert!(meta.blob_references_unrecorded().await.unwrap().is_empty());
    assert!(meta.upload_get(&no_bytes.id).await.unwrap().is_none());
    assert!(blobs.upload_inventory().await.unwrap().is_empty(), "every session directory was cleared");
    assert_eq!(meta.blob_visible(&reg, &repo, &committed).await.unwrap(), Some(10_011), "the commit was completed");
    assert!(!meta.registry_keys_with_content().await.unwrap().contains(&gone));

    // Checked again: only what cannot be repaired here remains (the corrupt blob is now
    // missing its bytes).
    let again = check(&meta, &blobs, false, &[&reg]).await;
    assert_eq!(kinds(&again), vec!["blob-missing", "blob-missing", "orphan-blob"], "{again}");
    assert!(!again.is_clean());
}

#[tokio::test]
async fn nothing_is_repaired_on_a_damaged_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("metadata.db");
    let meta = SqliteMetadataStore::open(&db).unwrap();
    let blobs = FsBlobStore::open(dir.path().join("blobs")).unwrap();
    let reg = RegistryKey("live".into());
    let d = Digest::sha256_of(b"x");
    meta.blob_record(&d, 1).await.unwrap();
    // A tag pointing at a manifest that does not exist (what a broken database can hold).
    let raw = rusqlite::Connection::open(&db).unwrap();
    raw.execute_batch(
        "PRAGMA foreign_keys = OFF; INSERT INTO repositories (id, registry, name, created_at, updated_at) \
         VALUES (99, 'live', 'app', 0, 0); INSERT INTO tags (repo_id, name, digest, created_at, updated_at) \
         VALUES (99, 'v1', 'sha256:0000000000000000000000000000000000000000000000000000000000000000', 0, 0);",
    )
    .unwrap();
    let report = check(&meta, &blobs, true, &[&reg]).await;
    assert!(report.repair_refused);
    assert!(report.findings.iter().any(|f| matches!(f.problem, Problem::Database { .. })), "{report}");
    assert!(report.findings.iter().all(|f| !matches!(f.resolution, Resolution::Repaired(_))), "{report}");
    assert_eq!(meta.blob_records_of(&[d]).await.unwrap().len(), 1, "the missing blob's record was kept");
    assert!(report.to_string().contains("Nothing was repaired: the database is damaged"), "{report}");
}
