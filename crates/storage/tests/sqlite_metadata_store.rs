//! The SQLite metadata store: the shared conformance suite on a file and in memory, plus what
//! only SQLite can show — migrations, persistence across reopening, pragmas, concurrency.

use std::sync::Arc;

use bytes::Bytes;
use chrono::Utc;
use wharf_oci::{Digest, Reference, RepositoryName, Tag};
use wharf_storage::conformance;
use wharf_storage::sqlite::{MIGRATIONS, SqliteMetadataStore, SqliteOptions, Synchronous};
use wharf_storage::{MetadataStore, NewManifest, NewRun, RegistryKey, RunFilter, TimerTick, run_status};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_on_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMetadataStore::open(&dir.path().join("meta.db")).unwrap();
    conformance::metadata_store_suite(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite_on_a_file_with_normal_sync_and_no_readers() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions { readers: 0, synchronous: Synchronous::Normal };
    let store = SqliteMetadataStore::open_with(&dir.path().join("meta.db"), options).unwrap();
    conformance::metadata_store_suite(Arc::new(store)).await;
}

#[tokio::test]
async fn conformance_suite_in_memory() {
    let store = SqliteMetadataStore::open_in_memory().unwrap();
    conformance::metadata_store_suite(Arc::new(store)).await;
}

fn manifest(blob: &Digest, tag: &str) -> NewManifest {
    let bytes = Bytes::from(format!(r#"{{"schemaVersion":2,"layers":["{blob}"]}}"#));
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
        tag: Some(Tag::parse(tag).unwrap()),
    }
}

#[tokio::test]
async fn data_survives_reopening_and_migrations_run_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let reg = RegistryKey("r".into());
    let repo = RepositoryName::parse("app").unwrap();
    let blob = Digest::sha256_of(b"layer");
    let m = manifest(&blob, "v1");
    {
        let store = SqliteMetadataStore::open(&path).unwrap();
        assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
        store.blob_record(&blob, 5).await.unwrap();
        store.blob_link(&reg, &repo, &blob, 5).await.unwrap();
        store.manifest_put(&reg, &repo, &m).await.unwrap();
    }
    let store = SqliteMetadataStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
    let got = store.manifest_get(&reg, &repo, &Reference::Tag(Tag::parse("v1").unwrap())).await.unwrap().unwrap();
    assert_eq!(got.bytes, m.bytes);
    assert_eq!(store.blob_visible(&reg, &repo, &blob).await.unwrap(), Some(5));
}

#[tokio::test]
async fn pragmas_are_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let _store = SqliteMetadataStore::open(&path).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mode: String = raw.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = raw.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, MIGRATIONS.len() as i64);
    // Foreign keys are declared so that deletes cascade.
    let fks: i64 = raw.query_row("SELECT count(*) FROM pragma_foreign_key_list('tags')", [], |r| r.get(0)).unwrap();
    assert!(fks >= 1);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    drop(SqliteMetadataStore::open(&path).unwrap());
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.pragma_update(None, "user_version", 999).unwrap();
    drop(raw);
    match SqliteMetadataStore::open(&path) {
        Err(e) => assert!(e.to_string().contains("newer"), "{e}"),
        Ok(_) => panic!("opened a database from the future"),
    }
}

/// Readers see committed states only while a writer keeps moving a tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_during_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteMetadataStore::open(&dir.path().join("meta.db")).unwrap());
    let reg = RegistryKey("r".into());
    let repo = RepositoryName::parse("busy").unwrap();
    let blob = Digest::sha256_of(b"layer");
    store.blob_link(&reg, &repo, &blob, 5).await.unwrap();
    let mut manifests = Vec::new();
    for i in 0..10 {
        let mut m = manifest(&blob, "live");
        m.bytes = Bytes::from(format!(r#"{{"schemaVersion":2,"layers":["{blob}"],"n":{i}}}"#));
        m.digest = Digest::sha256_of(&m.bytes);
        manifests.push(m);
    }
    store.manifest_put(&reg, &repo, &manifests[0]).await.unwrap();
    let writer = {
        let (store, reg, repo, manifests) = (store.clone(), reg.clone(), repo.clone(), manifests.clone());
        tokio::spawn(async move {
            for round in 0..20 {
                store.manifest_put(&reg, &repo, &manifests[round % manifests.len()]).await.unwrap();
            }
        })
    };
    let mut readers = Vec::new();
    for _ in 0..8 {
        let (store, reg, repo, manifests) = (store.clone(), reg.clone(), repo.clone(), manifests.clone());
        readers.push(tokio::spawn(async move {
            for _ in 0..100 {
                let got = store
                    .manifest_get(&reg, &repo, &Reference::Tag(Tag::parse("live").unwrap()))
                    .await
                    .unwrap()
                    .expect("the tag always points somewhere");
                let m = manifests.iter().find(|m| m.digest == got.meta.digest).expect("a known manifest");
                assert_eq!(got.bytes, m.bytes);
                assert_eq!(Digest::sha256_of(&got.bytes), got.meta.digest);
            }
        }));
    }
    writer.await.unwrap();
    for r in readers {
        r.await.unwrap();
    }
}

/// Migration 2 (issue 10 item 6) keeps the upload sessions of a version-1 database: they have no
/// principal and count as last used when they were created.
#[tokio::test]
async fn upload_sessions_survive_the_migration_to_version_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let id = wharf_storage::UploadId::new();
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(MIGRATIONS[0]).unwrap();
        raw.pragma_update(None, "user_version", 1).unwrap();
        raw.execute(
            "INSERT INTO uploads (id, registry, repository, algorithm, created_at) VALUES (?1, 'r', 'app', 'sha256', ?2)",
            rusqlite::params![id.as_str(), 1_700_000_000_123_456_000i64],
        )
        .unwrap();
    }
    // Offline checks refuse an old schema rather than migrating it.
    match SqliteMetadataStore::open_existing(&path) {
        Err(e) => assert!(e.to_string().contains("schema version 1"), "{e}"),
        Ok(_) => panic!("fsck's open migrated or accepted an old schema"),
    }
    let store = SqliteMetadataStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
    let got = store.upload_get(&id).await.unwrap().unwrap();
    assert_eq!(got.principal, None);
    assert_eq!(got.last_activity, got.created_at);
    assert_eq!(got.created_at.timestamp_nanos_opt(), Some(1_700_000_000_123_456_000));
    drop(store);
    SqliteMetadataStore::open_existing(&path).expect("the current schema opens for checks");
}

#[tokio::test]
async fn counts_and_integrity_of_a_sound_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteMetadataStore::open(&dir.path().join("meta.db")).unwrap();
    let reg = RegistryKey("r".into());
    let repo = RepositoryName::parse("app").unwrap();
    let blob = Digest::sha256_of(b"layer");
    store.blob_link(&reg, &repo, &blob, 5).await.unwrap();
    store.manifest_put(&reg, &repo, &manifest(&blob, "v1")).await.unwrap();
    let c = store.counts().await.unwrap();
    assert_eq!(
        (c.repositories, c.manifests, c.tags, c.blobs, c.blob_bytes, c.blob_links, c.uploads, c.runs),
        (1, 1, 1, 1, 5, 1, 0, 0)
    );
    let run = NewRun {
        registry: reg.clone(),
        id_prefix: "ca".into(),
        task: None,
        status: run_status::QUEUED.into(),
        body: serde_json::json!({}),
    };
    store.run_create(&run, Utc::now()).await.unwrap();
    store.run_create(&run, Utc::now()).await.unwrap();
    store.run_claim("agent-1", Utc::now(), Utc::now()).await.unwrap().expect("a queued run");
    assert_eq!(store.counts().await.unwrap().runs, 2);
    assert!(store.integrity_check().await.unwrap().is_empty());
}

/// Runs, their leases and the per-registry numbering survive closing and reopening the database.
#[tokio::test]
async fn runs_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let written = {
        let store = SqliteMetadataStore::open(&path).unwrap();
        conformance::runs_before_restart(&store).await
    };
    let store = SqliteMetadataStore::open(&path).unwrap();
    conformance::runs_after_restart(&store, &written).await;
}

/// Migration 3 adds the run queue to a version-2 database and keeps what it held.
#[tokio::test]
async fn a_version_2_database_migrates_to_version_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let reg = RegistryKey("r".into());
    let repo = RepositoryName::parse("app").unwrap();
    let blob = Digest::sha256_of(b"layer");
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute_batch(MIGRATIONS[0]).unwrap();
        raw.execute_batch(MIGRATIONS[1]).unwrap();
        raw.pragma_update(None, "user_version", 2).unwrap();
        raw.execute("INSERT INTO blobs (digest, size, recorded_at) VALUES (?1, 5, 0)", [blob.to_string()]).unwrap();
        raw.execute("INSERT INTO repositories (registry, name, created_at, updated_at) VALUES ('r', 'app', 0, 0)", [])
            .unwrap();
        raw.execute(
            "INSERT INTO blob_links (repo_id, digest, size, linked_at) VALUES (1, ?1, 5, 0)",
            [blob.to_string()],
        )
        .unwrap();
    }
    let store = SqliteMetadataStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
    assert_eq!(store.blob_visible(&reg, &repo, &blob).await.unwrap(), Some(5), "version-2 content kept");
    assert!(store.run_list(&reg, &RunFilter::default()).await.unwrap().is_empty());
    let run = NewRun {
        registry: reg.clone(),
        id_prefix: "ca".into(),
        task: Some("build".into()),
        status: run_status::QUEUED.into(),
        body: serde_json::json!({ "n": 1 }),
    };
    assert_eq!(store.run_create(&run, Utc::now()).await.unwrap().run_id, "ca1");
    assert!(store.integrity_check().await.unwrap().is_empty());
}

/// Migration 4 adds the claimed timer ticks to a version-3 database and keeps its runs (and
/// their numbering); the later migrations follow.
#[tokio::test]
async fn a_version_3_database_migrates_to_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let reg = RegistryKey("r".into());
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..3] {
            raw.execute_batch(m).unwrap();
        }
        raw.pragma_update(None, "user_version", 3).unwrap();
        raw.execute("INSERT INTO run_counters (registry, last_number) VALUES ('r', 1)", []).unwrap();
        raw.execute(
            "INSERT INTO runs (registry, number, run_id, run_id_lower, status, body, created_at, updated_at) \
             VALUES ('r', 1, 'ca1', 'ca1', 'Succeeded', '{}', 0, 0)",
            [],
        )
        .unwrap();
    }
    let store = SqliteMetadataStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), MIGRATIONS.len() as i64);
    assert!(store.run_get(&reg, "ca1").await.unwrap().is_some(), "version-3 runs kept");
    let run = NewRun {
        registry: reg.clone(),
        id_prefix: "ca".into(),
        task: Some("nightly".into()),
        status: run_status::QUEUED.into(),
        body: serde_json::json!({}),
    };
    let tick = TimerTick { task: "tasks/nightly".into(), trigger: "t1".into(), tick: Utc::now() };
    assert_eq!(store.run_create_for_tick(&run, &tick, Utc::now()).await.unwrap().unwrap().run_id, "ca2");
    assert_eq!(store.run_create_for_tick(&run, &tick, Utc::now()).await.unwrap(), None);
    assert!(store.integrity_check().await.unwrap().is_empty());
}

/// Migration 5 adds the images of tasks' runs to a version-4 database, keeping its runs.
#[tokio::test]
async fn a_version_4_database_migrates_to_version_5() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("meta.db");
    let reg = RegistryKey("r".into());
    {
        let raw = rusqlite::Connection::open(&path).unwrap();
        for m in &MIGRATIONS[..4] {
            raw.execute_batch(m).unwrap();
        }
        raw.pragma_update(None, "user_version", 4).unwrap();
        raw.execute(
            "INSERT INTO runs (registry, number, run_id, run_id_lower, status, body, created_at, updated_at) \
             VALUES ('r', 1, 'ca1', 'ca1', 'Succeeded', '{}', 0, 0)",
            [],
        )
        .unwrap();
    }
    let store = SqliteMetadataStore::open(&path).unwrap();
    assert_eq!(store.schema_version().await.unwrap(), 5);
    assert!(store.run_get(&reg, "ca1").await.unwrap().is_some(), "version-4 runs kept");
    let image = wharf_storage::TaskImage {
        registry: reg.clone(),
        repository: "team/base".into(),
        tag: "1".into(),
        role: wharf_storage::TaskImageRole::Runtime,
        digest: None,
    };
    store.task_images_set("tasks/app", &reg, std::slice::from_ref(&image), Utc::now()).await.unwrap();
    assert_eq!(store.task_images_using(&reg, "team/base", "1").await.unwrap()[0].image, image);
    assert!(store.integrity_check().await.unwrap().is_empty());
}
