//! The contract of [`BlobStore`] and [`MetadataStore`], as executable checks.
//!
//! Every backend runs these (see `tests/`): the embedded ones today, PostgreSQL and object
//! storage later. Each check works on names, registry keys and contents of its own, so checks can
//! share one store; they panic (like `assert!`) on the first broken promise.
//!
//! This module owns no state and must never depend on a particular backend: it only calls the
//! traits.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, TimeDelta, Utc};
use futures::StreamExt;
use serde_json::json;
use wharf_oci::{Digest, DigestAlgorithm, Reference, RepositoryName, Tag};

use crate::{
    BlobReferences, BlobStore, ByteStream, ChangeableAttributes, ManifestPutOutcome, ManifestRead, MetadataStore,
    NewManifest, NewRun, Order, Page, RegistryKey, ResourceFilter, ResourceRecord, RunFilter, RunRecord, StorageError,
    TaskImage, TaskImageRole, TimerTick, UploadId, UploadLimitScope, UploadLimits, UploadRecord, UploadState,
    run_status,
};

// ---- helpers ----

/// Deterministic pseudo-random bytes (xorshift), distinct for distinct seeds.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Content no other check (or earlier run against a persistent store) uses.
fn unique_content(len: usize) -> Vec<u8> {
    let seed = uuid::Uuid::new_v4().as_u64_pair().0;
    pseudo_random_bytes(seed, len)
}

/// A stream yielding `data` in chunks of `chunk` bytes.
pub fn chunked_stream(data: &[u8], chunk: usize) -> ByteStream {
    let data = Bytes::copy_from_slice(data);
    let chunks: Vec<std::io::Result<Bytes>> =
        (0..data.len()).step_by(chunk.max(1)).map(|i| Ok(data.slice(i..(i + chunk).min(data.len())))).collect();
    Box::pin(futures::stream::iter(chunks))
}

/// A stream yielding `data` in chunks, then failing as a dropped client connection would.
pub fn failing_stream(data: &[u8], chunk: usize) -> ByteStream {
    let ok = chunked_stream(data, chunk);
    let err = futures::stream::once(async {
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away"))
    });
    Box::pin(ok.chain(err))
}

pub async fn read_all(mut stream: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.expect("blob stream failed"));
    }
    out
}

async fn read_blob(store: &dyn BlobStore, digest: &Digest, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
    read_all(store.read(digest, range).await.expect("read")).await
}

fn repo(name: &str) -> RepositoryName {
    RepositoryName::parse(name).expect("repository name")
}

fn tag(name: &str) -> Tag {
    Tag::parse(name).expect("tag")
}

fn fresh_registry() -> RegistryKey {
    RegistryKey(uuid::Uuid::new_v4().to_string())
}

fn fresh_digest() -> Digest {
    Digest::sha256_of(uuid::Uuid::new_v4().as_bytes())
}

/// An upload session record of `registry`, opened by `principal`, last active now.
fn upload_record(registry: &RegistryKey, repository: &str, principal: Option<&str>) -> UploadRecord {
    let now = Utc::now();
    UploadRecord {
        id: UploadId::new(),
        registry: registry.clone(),
        repository: repository.into(),
        algorithm: "sha256".into(),
        created_at: now,
        principal: principal.map(str::to_string),
        last_activity: now,
    }
}

/// Lets time-ordered backends with coarse clocks see distinct timestamps.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

// ---- blob store ----

/// Every blob store check, in sequence.
pub async fn blob_store_suite(store: &dyn BlobStore) {
    blob_put_stat_read_delete(store).await;
    blob_read_ranges(store).await;
    upload_monolithic(store).await;
    upload_chunked_with_offsets(store).await;
    upload_empty_blob(store).await;
    upload_digest_mismatch_keeps_session(store).await;
    upload_deduplicates(store).await;
    upload_max_len(store).await;
    upload_client_stream_error(store).await;
    upload_abort_and_unknown(store).await;
    upload_sha512(store).await;
    upload_concurrent_appends(store).await;
    upload_finish_commits_in_one_step(store).await;
    upload_finish_refused_leaves_the_session_as_it_was(store).await;
    upload_inventory_states(store).await;
    blob_listing_and_info(store).await;
    blob_quarantine(store).await;
}

pub async fn blob_put_stat_read_delete(store: &dyn BlobStore) {
    let data = unique_content(5000);
    let digest = Digest::sha256_of(&data);
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    assert!(matches!(store.read(&digest, None).await, Err(StorageError::NotFound)));

    // A wrong digest is refused and stores nothing.
    let wrong = fresh_digest();
    match store.put_bytes(&wrong, Bytes::from(data.clone())).await {
        Err(StorageError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, digest);
        }
        other => panic!("put_bytes with a wrong digest: {other:?}"),
    }
    assert_eq!(store.stat(&wrong).await.unwrap(), None);
    assert_eq!(store.stat(&digest).await.unwrap(), None);

    store.put_bytes(&digest, Bytes::from(data.clone())).await.unwrap();
    store.put_bytes(&digest, Bytes::from(data.clone())).await.expect("put_bytes is idempotent");
    assert!(
        matches!(
            store.put_bytes(&digest, Bytes::from_static(b"other")).await,
            Err(StorageError::DigestMismatch { .. })
        ),
        "wrong bytes for a stored digest are still refused"
    );
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));
    assert_eq!(read_blob(store, &digest, None).await, data);

    store.delete(&digest).await.unwrap();
    assert_eq!(store.stat(&digest).await.unwrap(), None);
    assert!(matches!(store.read(&digest, None).await, Err(StorageError::NotFound)));
    store.delete(&digest).await.expect("deleting an absent blob is not an error");
}

pub async fn blob_read_ranges(store: &dyn BlobStore) {
    // Larger than common read buffers, so ranges cross buffer boundaries.
    let data = unique_content(700 * 1024 + 13);
    let digest = Digest::sha256_of(&data);
    store.put_bytes(&digest, Bytes::from(data.clone())).await.unwrap();
    let len = data.len() as u64;
    for (start, end) in [(0, 1), (10, 20), (0, len), (len - 1, len), (5, 5), (262_140, 600_001), (1, len)] {
        let got = read_blob(store, &digest, Some(start..end)).await;
        assert_eq!(got, data[start as usize..end as usize], "range {start}..{end}");
    }
    assert_eq!(read_blob(store, &digest, None).await, data);
}

async fn upload(store: &dyn BlobStore, algorithm: DigestAlgorithm) -> UploadId {
    let id = UploadId::new();
    store.upload_create(&id, algorithm).await.expect("upload_create");
    id
}

pub async fn upload_monolithic(store: &dyn BlobStore) {
    let data = unique_content(3 * 1024 * 1024 + 7);
    let digest = Digest::sha256_of(&data);
    let id = upload(store, DigestAlgorithm::Sha256).await;
    assert_eq!(store.upload_size(&id).await.unwrap(), 0);
    assert!(store.upload_ids().await.unwrap().contains(&id));
    let n = store.upload_append(&id, 0, chunked_stream(&data, 64 * 1024), None).await.unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(store.upload_size(&id).await.unwrap(), n);
    assert_eq!(store.stat(&digest).await.unwrap(), None, "not visible before the commit");
    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), n);
    assert_eq!(store.stat(&digest).await.unwrap(), Some(n));
    assert_eq!(read_blob(store, &digest, None).await, data);
    // The session is gone once committed.
    assert!(matches!(store.upload_size(&id).await, Err(StorageError::UploadUnknown)));
    assert!(!store.upload_ids().await.unwrap().contains(&id));
    assert!(matches!(store.upload_commit(&id, &digest).await, Err(StorageError::UploadUnknown)));
}

pub async fn upload_chunked_with_offsets(store: &dyn BlobStore) {
    let data = unique_content(1_500_000);
    let digest = Digest::sha256_of(&data);
    let id = upload(store, DigestAlgorithm::Sha256).await;
    let cuts = [0usize, 1, 1000, 65_536, 1_048_577, data.len()];
    for w in cuts.windows(2) {
        let (from, to) = (w[0], w[1]);
        // A wrong offset is refused with the current size, and nothing is written.
        for bad in [from as u64 + 1, from.saturating_sub(1) as u64] {
            if bad == from as u64 {
                continue;
            }
            match store.upload_append(&id, bad, chunked_stream(&data[from..to], 4096), None).await {
                Err(StorageError::UploadOffsetMismatch { current }) => assert_eq!(current, from as u64),
                other => panic!("append at {bad} while at {from}: {other:?}"),
            }
            assert_eq!(store.upload_size(&id).await.unwrap(), from as u64);
        }
        let n = store.upload_append(&id, from as u64, chunked_stream(&data[from..to], 7777), None).await.unwrap();
        assert_eq!(n, to as u64);
    }
    // An empty append changes nothing.
    let len = data.len() as u64;
    assert_eq!(store.upload_append(&id, len, chunked_stream(&[], 1), None).await.unwrap(), len);
    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), len);
    assert_eq!(read_blob(store, &digest, None).await, data);
}

pub async fn upload_empty_blob(store: &dyn BlobStore) {
    let digest = Digest::sha256_of(b"");
    let id = upload(store, DigestAlgorithm::Sha256).await;
    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), 0);
    assert_eq!(store.stat(&digest).await.unwrap(), Some(0));
    assert!(read_blob(store, &digest, None).await.is_empty());
}

pub async fn upload_digest_mismatch_keeps_session(store: &dyn BlobStore) {
    let data = unique_content(200_000);
    let id = upload(store, DigestAlgorithm::Sha256).await;
    store.upload_append(&id, 0, chunked_stream(&data[..100_000], 10_000), None).await.unwrap();
    let wrong = Digest::sha256_of(&data);
    match store.upload_commit(&id, &wrong).await {
        Err(StorageError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, Digest::sha256_of(&data[..100_000]));
        }
        other => panic!("commit with the wrong digest: {other:?}"),
    }
    assert_eq!(store.stat(&wrong).await.unwrap(), None);
    // The session is as it was: the rest can be appended and the right digest committed.
    assert_eq!(store.upload_size(&id).await.unwrap(), 100_000);
    store.upload_append(&id, 100_000, chunked_stream(&data[100_000..], 30_000), None).await.unwrap();
    assert_eq!(store.upload_commit(&id, &wrong).await.unwrap(), 200_000);
    assert_eq!(read_blob(store, &wrong, None).await, data);
}

pub async fn upload_deduplicates(store: &dyn BlobStore) {
    let data = unique_content(50_000);
    let digest = Digest::sha256_of(&data);
    store.put_bytes(&digest, Bytes::from(data.clone())).await.unwrap();
    // A second upload of the same content commits and is discarded in favour of the stored copy.
    for _ in 0..2 {
        let id = upload(store, DigestAlgorithm::Sha256).await;
        store.upload_append(&id, 0, chunked_stream(&data, 8192), None).await.unwrap();
        assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), data.len() as u64);
        assert!(matches!(store.upload_size(&id).await, Err(StorageError::UploadUnknown)));
    }
    assert_eq!(read_blob(store, &digest, None).await, data);
}

pub async fn upload_max_len(store: &dyn BlobStore) {
    let data = unique_content(10_000);
    let digest = Digest::sha256_of(&data);
    let id = upload(store, DigestAlgorithm::Sha256).await;
    store.upload_append(&id, 0, chunked_stream(&data[..4000], 1000), Some(4000)).await.expect("exactly max_len");
    assert!(matches!(
        store.upload_append(&id, 4000, chunked_stream(&data[4000..], 1000), Some(5999)).await,
        Err(StorageError::UploadTooLarge)
    ));
    assert_eq!(store.upload_size(&id).await.unwrap(), 4000, "a refused append leaves the session as it was");
    store.upload_append(&id, 4000, chunked_stream(&data[4000..], 1000), Some(6000)).await.unwrap();
    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), 10_000);
    assert_eq!(read_blob(store, &digest, None).await, data);
}

pub async fn upload_client_stream_error(store: &dyn BlobStore) {
    let data = unique_content(3_000_000);
    let digest = Digest::sha256_of(&data);
    let id = upload(store, DigestAlgorithm::Sha256).await;
    store.upload_append(&id, 0, chunked_stream(&data[..1000], 100), None).await.unwrap();
    // The client sends part of the rest, then its connection fails.
    match store.upload_append(&id, 1000, failing_stream(&data[1000..2_500_000], 65_536), None).await {
        Err(StorageError::ClientStream(_)) => {}
        other => panic!("append from a failing client: {other:?}"),
    }
    // The session is at a size the status reports, and resuming from there works.
    let at = store.upload_size(&id).await.unwrap();
    assert!((1000..=2_500_000).contains(&at), "size after a failed append: {at}");
    store.upload_append(&id, at, chunked_stream(&data[at as usize..], 100_000), None).await.unwrap();
    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), data.len() as u64);
    assert_eq!(read_blob(store, &digest, None).await, data);
}

pub async fn upload_abort_and_unknown(store: &dyn BlobStore) {
    let id = upload(store, DigestAlgorithm::Sha256).await;
    store.upload_append(&id, 0, chunked_stream(b"some bytes", 3), None).await.unwrap();
    store.upload_abort(&id).await.unwrap();
    store.upload_abort(&id).await.expect("aborting an absent session is not an error");
    assert!(!store.upload_ids().await.unwrap().contains(&id));

    let never = UploadId::new();
    for probe in [&id, &never] {
        assert!(matches!(store.upload_size(probe).await, Err(StorageError::UploadUnknown)));
        assert!(matches!(
            store.upload_append(probe, 0, chunked_stream(b"x", 1), None).await,
            Err(StorageError::UploadUnknown)
        ));
        assert!(matches!(store.upload_commit(probe, &Digest::sha256_of(b"x")).await, Err(StorageError::UploadUnknown)));
    }
}

pub async fn upload_sha512(store: &dyn BlobStore) {
    let data = unique_content(300_000);
    let digest = Digest::of(DigestAlgorithm::Sha512, &data);
    let id = upload(store, DigestAlgorithm::Sha512).await;
    store.upload_append(&id, 0, chunked_stream(&data, 50_000), None).await.unwrap();
    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), 300_000);
    assert_eq!(store.stat(&digest).await.unwrap(), Some(300_000));
    assert_eq!(read_blob(store, &digest, None).await, data);
}

pub async fn upload_concurrent_appends(store: &dyn BlobStore) {
    let data = unique_content(400_000);
    let id = upload(store, DigestAlgorithm::Sha256).await;
    // Two clients race to append at offset 0: exactly one wins, the other sees the new size.
    let (a, b) = futures::join!(
        store.upload_append(&id, 0, chunked_stream(&data, 10_000), None),
        store.upload_append(&id, 0, chunked_stream(&data, 10_000), None),
    );
    let outcomes = [a, b];
    let won = outcomes.iter().filter(|r| matches!(r, Ok(400_000))).count();
    let lost =
        outcomes.iter().filter(|r| matches!(r, Err(StorageError::UploadOffsetMismatch { current: 400_000 }))).count();
    assert_eq!((won, lost), (1, 1), "{outcomes:?}");
    let digest = Digest::sha256_of(&data);
    assert_eq!(store.upload_commit(&id, &digest).await.unwrap(), 400_000);
}

/// The last bytes and the commit in one call; the committed session is listed as such until
/// it is released, and takes no more requests.
pub async fn upload_finish_commits_in_one_step(store: &dyn BlobStore) {
    let data = unique_content(2_500_000);
    let digest = Digest::sha256_of(&data);
    let id = upload(store, DigestAlgorithm::Sha256).await;
    store.upload_append(&id, 0, chunked_stream(&data[..1_000_000], 65_536), None).await.unwrap();
    let n = store.upload_finish(&id, 1_000_000, chunked_stream(&data[1_000_000..], 100_000), None, &digest).await;
    assert_eq!(n.unwrap(), data.len() as u64);
    assert_eq!(read_blob(store, &digest, None).await, data);
    assert!(!store.upload_ids().await.unwrap().contains(&id), "a committed session is not open");
    let entry = store.upload_inventory().await.unwrap().into_iter().find(|u| u.id == id).expect("still held");
    assert_eq!(entry.state, UploadState::Committed { digest: digest.clone(), size: data.len() as u64 });
    assert!(matches!(store.upload_size(&id).await, Err(StorageError::UploadUnknown)));
    assert!(matches!(
        store.upload_append(&id, data.len() as u64, chunked_stream(b"x", 1), None).await,
        Err(StorageError::UploadUnknown)
    ));
    assert!(matches!(store.upload_commit(&id, &digest).await, Err(StorageError::UploadUnknown)));
    // Released: gone from the inventory, the content stays.
    store.upload_abort(&id).await.unwrap();
    assert!(!store.upload_inventory().await.unwrap().iter().any(|u| u.id == id));
    assert_eq!(store.stat(&digest).await.unwrap(), Some(data.len() as u64));

    // The same content again (the store holds it): committed and deduplicated.
    let again = upload(store, DigestAlgorithm::Sha256).await;
    assert_eq!(
        store.upload_finish(&again, 0, chunked_stream(&data, 1 << 20), None, &digest).await.unwrap(),
        data.len() as u64
    );
    store.upload_abort(&again).await.unwrap();
    assert_eq!(read_blob(store, &digest, None).await, data);
}

/// Issue 10 item 8: a final request that is refused — wrong digest, wrong offset, a body too
/// large or broken — leaves the session exactly as it was: same size, same bytes, still
/// resumable, its incremental hashing intact.
pub async fn upload_finish_refused_leaves_the_session_as_it_was(store: &dyn BlobStore) {
    let data = unique_content(400_000);
    let digest = Digest::sha256_of(&data);
    let id = upload(store, DigestAlgorithm::Sha256).await;
    store.upload_append(&id, 0, chunked_stream(&data[..100_000], 10_000), None).await.unwrap();

    let wrong = Digest::sha256_of(b"not the content");
    match store.upload_finish(&id, 100_000, chunked_stream(&data[100_000..250_000], 30_000), None, &wrong).await {
        Err(StorageError::DigestMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, Digest::sha256_of(&data[..250_000]));
        }
        other => panic!("finish with a wrong digest: {other:?}"),
    }
    assert_eq!(store.upload_size(&id).await.unwrap(), 100_000, "the refused body was not kept");
    assert_eq!(store.stat(&wrong).await.unwrap(), None);
    assert_eq!(store.stat(&Digest::sha256_of(&data[..250_000])).await.unwrap(), None);
    // A digest of another algorithm than the session's: still verified, still refused.
    let wrong512 = Digest::of(DigestAlgorithm::Sha512, b"not the content");
    assert!(matches!(
        store.upload_finish(&id, 100_000, chunked_stream(&data[100_000..], 50_000), None, &wrong512).await,
        Err(StorageError::DigestMismatch { .. })
    ));
    match store.upload_finish(&id, 99_999, chunked_stream(&data[99_999..], 50_000), None, &digest).await {
        Err(StorageError::UploadOffsetMismatch { current }) => assert_eq!(current, 100_000),
        other => panic!("finish at a wrong offset: {other:?}"),
    }
    assert!(matches!(
        store.upload_finish(&id, 100_000, chunked_stream(&data[100_000..], 50_000), Some(1000), &digest).await,
        Err(StorageError::UploadTooLarge)
    ));
    assert!(matches!(
        store.upload_finish(&id, 100_000, failing_stream(&data[100_000..300_000], 50_000), None, &digest).await,
        Err(StorageError::ClientStream(_))
    ));
    assert!(matches!(store.upload_commit(&id, &digest).await, Err(StorageError::DigestMismatch { .. })));
    assert_eq!(store.upload_size(&id).await.unwrap(), 100_000);
    assert!(store.upload_ids().await.unwrap().contains(&id), "still an open session");
    // The session resumes where it was, and the right content commits (so its bytes are the
    // first 100 000 and nothing else).
    store.upload_append(&id, 100_000, chunked_stream(&data[100_000..200_000], 25_000), None).await.unwrap();
    let n = store.upload_finish(&id, 200_000, chunked_stream(&data[200_000..], 25_000), None, &digest).await.unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(read_blob(store, &digest, None).await, data);
    store.upload_abort(&id).await.unwrap();
}

pub async fn upload_inventory_states(store: &dyn BlobStore) {
    let before = Utc::now() - chrono::Duration::seconds(5);
    let id = upload(store, DigestAlgorithm::Sha256).await;
    store.upload_append(&id, 0, chunked_stream(b"inventory", 3), None).await.unwrap();
    let entry = store.upload_inventory().await.unwrap().into_iter().find(|u| u.id == id).expect("listed");
    assert_eq!(entry.state, UploadState::Open);
    assert!(entry.modified >= before, "{} is before {before}", entry.modified);
    assert!(store.upload_ids().await.unwrap().contains(&id));
    store.upload_abort(&id).await.unwrap();
    assert!(!store.upload_inventory().await.unwrap().iter().any(|u| u.id == id));
}

pub async fn blob_listing_and_info(store: &dyn BlobStore) {
    let before = Utc::now() - chrono::Duration::seconds(5);
    let mut mine = Vec::new();
    for len in [0usize, 10, 70_000] {
        let data = unique_content(len);
        let d = Digest::sha256_of(&data);
        store.put_bytes(&d, Bytes::from(data)).await.unwrap();
        mine.push((d, len as u64));
    }
    let listed: Vec<crate::StoredBlob> =
        store.blob_list().await.unwrap().map(|b| b.expect("listing")).collect::<Vec<_>>().await;
    let digests: Vec<&Digest> = listed.iter().map(|b| &b.digest).collect();
    let mut sorted = digests.clone();
    sorted.sort();
    assert_eq!(digests, sorted, "listed in digest order");
    for (d, len) in &mine {
        let b = listed.iter().find(|b| &b.digest == d).unwrap_or_else(|| panic!("{d} is listed"));
        assert_eq!(b.size, *len);
        assert!(b.modified >= before);
        assert_eq!(store.blob_info(d).await.unwrap().as_ref(), Some(b));
    }
    store.delete(&mine[1].0).await.unwrap();
    assert_eq!(store.blob_info(&mine[1].0).await.unwrap(), None);
    let listed: Vec<Digest> = store.blob_list().await.unwrap().map(|b| b.unwrap().digest).collect::<Vec<_>>().await;
    assert!(!listed.contains(&mine[1].0));
    assert!(listed.contains(&mine[2].0));
}

pub async fn blob_quarantine(store: &dyn BlobStore) {
    let data = unique_content(1000);
    let d = Digest::sha256_of(&data);
    store.put_bytes(&d, Bytes::from(data.clone())).await.unwrap();
    store.quarantine(&d).await.unwrap();
    assert_eq!(store.stat(&d).await.unwrap(), None, "out of the content store");
    store.quarantine(&d).await.expect("quarantining an absent blob is not an error");
    store.put_bytes(&d, Bytes::from(data.clone())).await.unwrap();
    assert_eq!(read_blob(store, &d, None).await, data, "and it can be stored again");
}

// ---- metadata store ----

/// Every metadata store check, in sequence (the run queue's last: some spawn tasks sharing the
/// store).
pub async fn metadata_store_suite(store: Arc<dyn MetadataStore>) {
    metadata_checks(&*store).await;
    run_queue_suite(store).await;
}

async fn metadata_checks(store: &dyn MetadataStore) {
    settings(store).await;
    resources(store).await;
    resource_unique_names(store).await;
    resource_delete_tree(store).await;
    blob_visibility(store).await;
    manifest_missing_references(store).await;
    manifest_put_get_and_tags(store).await;
    manifest_index_and_child_delete(store).await;
    manifest_delete(store).await;
    manifest_list_order_and_paging(store).await;
    tag_list_order_and_paging(store).await;
    attributes(store).await;
    manifest_read_with_its_locks(store).await;
    referrers(store).await;
    repositories(store).await;
    repository_delete(store).await;
    registry_purge(store).await;
    registry_size(store).await;
    garbage_collection(store).await;
    blob_records_and_forgetting(store).await;
    registry_keys_with_content(store).await;
    uploads(store).await;
    upload_limits(store).await;
    upload_activity_and_expiry(store).await;
    upload_complete(store).await;
    timestamps_keep_sub_second_precision(store).await;
}

pub async fn settings(store: &dyn MetadataStore) {
    let key = format!("conformance.{}", uuid::Uuid::new_v4());
    assert_eq!(store.setting_get(&key).await.unwrap(), None);
    store.setting_put(&key, "one").await.unwrap();
    assert_eq!(store.setting_get(&key).await.unwrap().as_deref(), Some("one"));
    store.setting_put(&key, "two").await.unwrap();
    assert_eq!(store.setting_get(&key).await.unwrap().as_deref(), Some("two"));
}

const RG_TYPE: &str = "Microsoft.Resources/resourceGroups";
const REGISTRY_TYPE: &str = "Microsoft.ContainerRegistry/registries";

fn resource_group_record(name: &str) -> ResourceRecord {
    let now = Utc::now();
    ResourceRecord {
        id: format!("/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/{name}"),
        resource_type: RG_TYPE.into(),
        name: name.into(),
        resource_group: None,
        key: uuid::Uuid::new_v4().to_string(),
        body: serde_json::json!({ "name": name, "location": "westeurope" }),
        created_at: now,
        updated_at: now,
    }
}

fn registry_record(group: &ResourceRecord, name: &str) -> ResourceRecord {
    let now = Utc::now();
    ResourceRecord {
        id: format!("{}/providers/Microsoft.ContainerRegistry/registries/{name}", group.id),
        resource_type: REGISTRY_TYPE.into(),
        name: name.into(),
        resource_group: Some(group.name.clone()),
        key: uuid::Uuid::new_v4().to_string(),
        body: serde_json::json!({ "name": name, "sku": { "name": "Standard" }, "tags": { "a": "b" } }),
        created_at: now,
        updated_at: now,
    }
}

fn unique_name(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

pub async fn resources(store: &dyn MetadataStore) {
    let group = resource_group_record(&unique_name("Group-"));
    assert!(store.resource_put(&group).await.unwrap(), "created");
    let mut changed = group.clone();
    changed.body = serde_json::json!({ "changed": true });
    changed.updated_at = Utc::now();
    assert!(!store.resource_put(&changed).await.unwrap(), "replaced");

    // Ids are case-insensitive; the record comes back exactly, with sub-second times.
    let got = store.resource_get(&group.id.to_uppercase()).await.unwrap().expect("by id");
    assert_eq!(got, changed);
    assert_eq!(store.resource_get(&format!("{}x", group.id)).await.unwrap(), None);

    let a = registry_record(&group, &unique_name("RegA"));
    let b = registry_record(&group, &unique_name("regb"));
    store.resource_put(&a).await.unwrap();
    store.resource_put(&b).await.unwrap();
    let found = store.resource_find_by_name(&REGISTRY_TYPE.to_lowercase(), &a.name.to_uppercase()).await.unwrap();
    assert_eq!(found, Some(a.clone()));
    assert_eq!(store.resource_find_by_name(RG_TYPE, &a.name).await.unwrap(), None, "type matters");

    let in_group = store
        .resource_list(&ResourceFilter {
            resource_type: Some(REGISTRY_TYPE.into()),
            resource_group: Some(group.name.to_uppercase()),
        })
        .await
        .unwrap();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort_by_key(|r| r.id.to_lowercase());
    assert_eq!(in_group, expected);
    let groups = store
        .resource_list(&ResourceFilter { resource_type: Some(RG_TYPE.into()), resource_group: None })
        .await
        .unwrap();
    assert!(groups.iter().any(|g| g.id == group.id));
    assert!(groups.iter().all(|g| g.resource_type == RG_TYPE));
    let all = store.resource_list(&ResourceFilter::default()).await.unwrap();
    for r in [&group.id, &a.id, &b.id] {
        assert!(all.iter().any(|x| &x.id == r));
    }
}

pub async fn resource_unique_names(store: &dyn MetadataStore) {
    let g1 = resource_group_record(&unique_name("g"));
    let g2 = resource_group_record(&unique_name("g"));
    let name = unique_name("Unique");
    let first = registry_record(&g1, &name);
    store.resource_insert_unique_name(&first).await.unwrap();
    // Registry names are global: same name in another group, differently cased, is refused.
    let clash = registry_record(&g2, &name.to_uppercase());
    assert!(matches!(store.resource_insert_unique_name(&clash).await, Err(StorageError::Conflict(_))));
    assert_eq!(store.resource_get(&clash.id).await.unwrap(), None);
    // A resource of another type may carry the name.
    let mut other = resource_group_record(&name);
    other.id = format!("{}-rg", other.id);
    store.resource_insert_unique_name(&other).await.unwrap();
    assert_eq!(store.resource_get(&first.id).await.unwrap(), Some(first));
}

pub async fn resource_delete_tree(store: &dyn MetadataStore) {
    let group = resource_group_record(&unique_name("tree"));
    let sibling = ResourceRecord { id: format!("{}_sibling", group.id), ..resource_group_record("sibling") };
    let reg = registry_record(&group, "reg");
    let reg_prefix = registry_record(&group, "reg2");
    let child = ResourceRecord {
        id: format!("{}/replications/westus", reg.id),
        resource_type: "Microsoft.ContainerRegistry/registries/replications".into(),
        name: "westus".into(),
        ..reg.clone()
    };
    for r in [&group, &sibling, &reg, &reg_prefix, &child] {
        store.resource_put(r).await.unwrap();
    }
    // Deleting the registry takes its children, not a registry whose name extends it.
    let deleted = store.resource_delete_tree(&reg.id.to_uppercase()).await.unwrap();
    let mut ids: Vec<&str> = deleted.iter().map(|r| r.id.as_str()).collect();
    ids.sort_by_key(|id| id.to_lowercase());
    assert_eq!(ids, vec![reg.id.as_str(), child.id.as_str()]);
    assert_eq!(store.resource_get(&child.id).await.unwrap(), None);
    assert!(store.resource_get(&reg_prefix.id).await.unwrap().is_some());

    let deleted = store.resource_delete_tree(&group.id).await.unwrap();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert_eq!(store.resource_get(&reg_prefix.id).await.unwrap(), None);
    assert!(store.resource_get(&sibling.id).await.unwrap().is_some(), "a sibling sharing a prefix stays");
    assert!(store.resource_delete_tree(&group.id).await.unwrap().is_empty());
}

/// Links fresh blobs into `repo` and returns their digests.
async fn linked_blobs(store: &dyn MetadataStore, reg: &RegistryKey, repo: &RepositoryName, n: usize) -> Vec<Digest> {
    let mut out = Vec::new();
    for i in 0..n {
        let d = fresh_digest();
        store.blob_record(&d, 100 + i as u64).await.unwrap();
        store.blob_link(reg, repo, &d, 100 + i as u64).await.unwrap();
        out.push(d);
    }
    out
}

/// An image manifest over `blobs`, with bytes unique to this call.
fn image(blobs: &[Digest], tag_name: Option<&str>) -> NewManifest {
    let body = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "layers": blobs.iter().map(|d| d.to_string()).collect::<Vec<_>>(),
        "nonce": uuid::Uuid::new_v4().to_string(),
    });
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap());
    NewManifest {
        digest: Digest::sha256_of(&bytes),
        media_type: "application/vnd.oci.image.manifest.v1+json".into(),
        bytes,
        artifact_type: None,
        subject: None,
        annotations: None,
        blob_refs: blobs.to_vec(),
        manifest_refs: Vec::new(),
        architecture: Some("amd64".into()),
        os: Some("linux".into()),
        tag: tag_name.map(tag),
    }
}

fn index(children: &[Digest], tag_name: Option<&str>) -> NewManifest {
    let mut m = image(&[], tag_name);
    m.media_type = "application/vnd.oci.image.index.v1+json".into();
    m.manifest_refs = children.to_vec();
    m.architecture = None;
    m.os = None;
    m
}

pub async fn blob_visibility(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let (a, b) = (repo("vis/a"), repo("vis/b"));
    let d = fresh_digest();
    store.blob_record(&d, 42).await.unwrap();
    assert_eq!(store.blob_visible(&reg, &a, &d).await.unwrap(), None, "recorded is not visible");
    store.blob_link(&reg, &a, &d, 42).await.unwrap();
    store.blob_link(&reg, &a, &d, 42).await.expect("linking twice is fine");
    assert_eq!(store.blob_visible(&reg, &a, &d).await.unwrap(), Some(42));
    assert_eq!(store.blob_visible(&reg, &b, &d).await.unwrap(), None, "visibility is per repository");
    assert_eq!(store.blob_visible(&fresh_registry(), &a, &d).await.unwrap(), None, "and per registry");
    // The link created the repository.
    assert_eq!(store.repository_list(&reg, None, 10).await.unwrap(), vec!["vis/a".to_string()]);
    assert!(store.blob_unlink(&reg, &a, &d).await.unwrap());
    assert!(!store.blob_unlink(&reg, &a, &d).await.unwrap());
    assert!(!store.blob_unlink(&reg, &b, &d).await.unwrap());
    assert_eq!(store.blob_visible(&reg, &a, &d).await.unwrap(), None);
    // With nothing left in it, the repository no longer exists.
    assert!(store.repository_list(&reg, None, 10).await.unwrap().is_empty());
    assert_eq!(store.repository_get(&reg, &a).await.unwrap(), None);
}

pub async fn manifest_missing_references(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let (r, other) = (repo("missing/refs"), repo("missing/other"));
    let present = linked_blobs(store, &reg, &r, 1).await;
    // Blobs visible only in another repository do not count.
    let elsewhere = linked_blobs(store, &reg, &other, 1).await;
    let absent = fresh_digest();
    let child_elsewhere = image(&elsewhere, None);
    store.manifest_put(&reg, &other, &child_elsewhere).await.unwrap();
    let absent_child = fresh_digest();

    let mut m = image(&[present[0].clone(), elsewhere[0].clone(), absent.clone()], Some("v1"));
    m.manifest_refs = vec![child_elsewhere.digest.clone(), absent_child.clone()];
    match store.manifest_put(&reg, &r, &m).await {
        Err(StorageError::MissingReferences { mut blobs, mut manifests }) => {
            blobs.sort();
            manifests.sort();
            let mut want_blobs = vec![elsewhere[0].clone(), absent];
            want_blobs.sort();
            let mut want_children = vec![child_elsewhere.digest.clone(), absent_child];
            want_children.sort();
            assert_eq!(blobs, want_blobs);
            assert_eq!(manifests, want_children);
        }
        other => panic!("manifest with missing references: {other:?}"),
    }
    // Nothing was written.
    assert_eq!(store.manifest_get(&reg, &r, &Reference::Digest(m.digest.clone())).await.unwrap(), None);
    assert_eq!(store.tag_get(&reg, &r, &tag("v1")).await.unwrap(), None);
    assert_eq!(store.repository_get(&reg, &r).await.unwrap().unwrap().manifest_count, 0);

    // In a repository that does not exist yet, everything is missing and nothing is created.
    let fresh = repo("missing/none");
    let m = image(&present, None);
    assert!(matches!(store.manifest_put(&reg, &fresh, &m).await, Err(StorageError::MissingReferences { .. })));
    assert_eq!(store.repository_get(&reg, &fresh).await.unwrap(), None);
}

pub async fn manifest_put_get_and_tags(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("put/app");
    let blobs = linked_blobs(store, &reg, &r, 2).await;
    let before = store.repository_get(&reg, &r).await.unwrap().unwrap();
    tick().await;

    let mut m1 = image(&blobs, Some("v1"));
    m1.annotations = Some(serde_json::json!({ "org.opencontainers.image.title": "one" }));
    let out = store.manifest_put(&reg, &r, &m1).await.unwrap();
    assert_eq!(out, ManifestPutOutcome { created: true, previous_tag_target: None });
    let after = store.repository_get(&reg, &r).await.unwrap().unwrap();
    assert!(after.updated_at > before.updated_at, "a manifest put bumps the repository");
    assert_eq!(after.created_at, before.created_at);
    assert_eq!((after.manifest_count, after.tag_count), (1, 1));

    for reference in [Reference::Tag(tag("v1")), Reference::Digest(m1.digest.clone())] {
        let got = store.manifest_get(&reg, &r, &reference).await.unwrap().expect("manifest");
        assert_eq!(got.bytes, m1.bytes);
        assert_eq!(got.meta.digest, m1.digest);
        assert_eq!(got.meta.media_type, m1.media_type);
        assert_eq!(got.meta.size, m1.bytes.len() as u64);
        assert_eq!(got.meta.annotations, m1.annotations);
        assert_eq!(got.meta.architecture.as_deref(), Some("amd64"));
        assert_eq!(got.meta.os.as_deref(), Some("linux"));
        assert_eq!(got.meta.tags, vec!["v1".to_string()]);
        assert_eq!(got.meta.attributes, ChangeableAttributes::default());
        let head = store.manifest_head(&reg, &r, &reference).await.unwrap().expect("head");
        assert_eq!(head, got.meta);
    }
    assert_eq!(store.manifest_get(&reg, &r, &Reference::Tag(tag("nope"))).await.unwrap(), None);
    assert_eq!(store.manifest_head(&reg, &repo("put/other"), &Reference::Tag(tag("v1"))).await.unwrap(), None);
    assert_eq!(store.manifest_head(&fresh_registry(), &r, &Reference::Tag(tag("v1"))).await.unwrap(), None);

    // Same content again: nothing new, and the tag stays.
    let again = store.manifest_put(&reg, &r, &m1).await.unwrap();
    assert_eq!(again, ManifestPutOutcome { created: false, previous_tag_target: None });
    // Same content under another tag.
    let mut m1_latest = m1.clone();
    m1_latest.tag = Some(tag("latest"));
    assert!(!store.manifest_put(&reg, &r, &m1_latest).await.unwrap().created);
    let meta = store.manifest_head(&reg, &r, &Reference::Digest(m1.digest.clone())).await.unwrap().unwrap();
    assert_eq!(meta.tags, vec!["latest".to_string(), "v1".to_string()], "tags sorted");

    // Moving the tag reports where it pointed.
    let v1_before = store.tag_get(&reg, &r, &tag("v1")).await.unwrap().unwrap();
    tick().await;
    let m2 = image(&blobs[..1], Some("v1"));
    let out = store.manifest_put(&reg, &r, &m2).await.unwrap();
    assert_eq!(out, ManifestPutOutcome { created: true, previous_tag_target: Some(m1.digest.clone()) });
    let v1 = store.tag_get(&reg, &r, &tag("v1")).await.unwrap().unwrap();
    assert_eq!(v1.digest, m2.digest);
    assert_eq!(v1.created_at, v1_before.created_at);
    assert!(v1.updated_at > v1_before.updated_at);
    let got = store.manifest_get(&reg, &r, &Reference::Tag(tag("v1"))).await.unwrap().unwrap();
    assert_eq!(got.bytes, m2.bytes);
    let old = store.manifest_head(&reg, &r, &Reference::Digest(m1.digest.clone())).await.unwrap().unwrap();
    assert_eq!(old.tags, vec!["latest".to_string()]);

    // Untagged put.
    let m3 = image(&blobs, None);
    assert!(store.manifest_put(&reg, &r, &m3).await.unwrap().created);
    assert!(
        store.manifest_head(&reg, &r, &Reference::Digest(m3.digest.clone())).await.unwrap().unwrap().tags.is_empty()
    );

    // Tag delete removes the tag only.
    assert!(store.tag_delete(&reg, &r, &tag("latest")).await.unwrap());
    assert!(!store.tag_delete(&reg, &r, &tag("latest")).await.unwrap());
    assert!(store.manifest_head(&reg, &r, &Reference::Digest(m1.digest.clone())).await.unwrap().is_some());
    let rec = store.repository_get(&reg, &r).await.unwrap().unwrap();
    assert_eq!((rec.manifest_count, rec.tag_count), (3, 1));
}

pub async fn manifest_index_and_child_delete(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("index/app");
    let blobs = linked_blobs(store, &reg, &r, 1).await;
    let amd = image(&blobs, None);
    let arm = image(&blobs, None);
    store.manifest_put(&reg, &r, &amd).await.unwrap();
    let idx = index(&[amd.digest.clone(), arm.digest.clone()], Some("multi"));
    match store.manifest_put(&reg, &r, &idx).await {
        Err(StorageError::MissingReferences { blobs, manifests }) => {
            assert!(blobs.is_empty());
            assert_eq!(manifests, vec![arm.digest.clone()]);
        }
        other => panic!("index with a missing child: {other:?}"),
    }
    store.manifest_put(&reg, &r, &arm).await.unwrap();
    assert!(store.manifest_put(&reg, &r, &idx).await.unwrap().created);
    // OCI lets a child be deleted while an index still lists it; the index stays.
    assert_eq!(store.manifest_delete(&reg, &r, &arm.digest).await.unwrap(), Some(vec![]));
    let got = store.manifest_get(&reg, &r, &Reference::Tag(tag("multi"))).await.unwrap().unwrap();
    assert_eq!(got.meta.digest, idx.digest);
}

pub async fn manifest_delete(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("delete/app");
    let blobs = linked_blobs(store, &reg, &r, 1).await;
    let m = image(&blobs, Some("b"));
    store.manifest_put(&reg, &r, &m).await.unwrap();
    let mut also = m.clone();
    also.tag = Some(tag("a"));
    store.manifest_put(&reg, &r, &also).await.unwrap();
    let keep = image(&blobs, Some("keep"));
    store.manifest_put(&reg, &r, &keep).await.unwrap();

    assert_eq!(store.manifest_delete(&reg, &r, &m.digest).await.unwrap(), Some(vec!["a".into(), "b".into()]));
    assert_eq!(store.manifest_delete(&reg, &r, &m.digest).await.unwrap(), None);
    assert_eq!(store.manifest_delete(&reg, &repo("delete/none"), &m.digest).await.unwrap(), None);
    assert_eq!(store.manifest_get(&reg, &r, &Reference::Digest(m.digest.clone())).await.unwrap(), None);
    assert_eq!(store.tag_get(&reg, &r, &tag("a")).await.unwrap(), None);
    assert_eq!(store.manifest_get(&reg, &r, &Reference::Tag(tag("b"))).await.unwrap(), None);
    let tags = store.tag_list(&reg, &r, &Page::default()).await.unwrap();
    assert_eq!(tags.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), vec!["keep"]);
    // The blobs stay visible: they belong to the repository, not the manifest.
    assert_eq!(store.blob_visible(&reg, &r, &blobs[0]).await.unwrap(), Some(100));
    // A deleted manifest can be pushed again.
    assert!(store.manifest_put(&reg, &r, &m).await.unwrap().created);
}

pub async fn manifest_list_order_and_paging(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("list/manifests");
    let blobs = linked_blobs(store, &reg, &r, 1).await;
    let mut pushed = Vec::new();
    for i in 0..5 {
        let m = image(&blobs, Some(&format!("t{i}")));
        store.manifest_put(&reg, &r, &m).await.unwrap();
        pushed.push(m.digest.clone());
        tick().await;
    }
    let digests = |v: Vec<crate::ManifestMeta>| v.into_iter().map(|m| m.digest).collect::<Vec<_>>();
    let mut by_name = pushed.clone();
    by_name.sort_by_key(|d| d.to_string());

    let all = digests(store.manifest_list(&reg, &r, &Page::default()).await.unwrap());
    assert_eq!(all, by_name);
    let page = Page { last: Some(by_name[1].to_string()), n: Some(2), ..Page::default() };
    assert_eq!(digests(store.manifest_list(&reg, &r, &page).await.unwrap()), by_name[2..4].to_vec());
    let page = Page { n: Some(0), ..Page::default() };
    assert!(store.manifest_list(&reg, &r, &page).await.unwrap().is_empty());

    let asc = Page { order: Order::TimeAsc, ..Page::default() };
    assert_eq!(digests(store.manifest_list(&reg, &r, &asc).await.unwrap()), pushed);
    let desc = Page { order: Order::TimeDesc, ..Page::default() };
    let mut newest_first = pushed.clone();
    newest_first.reverse();
    assert_eq!(digests(store.manifest_list(&reg, &r, &desc).await.unwrap()), newest_first);
    let desc_page = Page { order: Order::TimeDesc, last: Some(pushed[3].to_string()), n: Some(2), ..Page::default() };
    assert_eq!(
        digests(store.manifest_list(&reg, &r, &desc_page).await.unwrap()),
        vec![pushed[2].clone(), pushed[1].clone()]
    );
    let asc_page = Page { order: Order::TimeAsc, last: Some(pushed[3].to_string()), n: None, ..Page::default() };
    assert_eq!(digests(store.manifest_list(&reg, &r, &asc_page).await.unwrap()), vec![pushed[4].clone()]);

    // Listing shows the tags of each manifest.
    let metas = store.manifest_list(&reg, &r, &asc).await.unwrap();
    for (i, m) in metas.iter().enumerate() {
        assert_eq!(m.tags, vec![format!("t{i}")]);
    }
    assert!(store.manifest_list(&reg, &repo("list/none"), &Page::default()).await.unwrap().is_empty());
}

pub async fn tag_list_order_and_paging(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("list/tags");
    let blobs = linked_blobs(store, &reg, &r, 1).await;
    let a = image(&blobs, None);
    let b = image(&blobs, None);
    store.manifest_put(&reg, &r, &a).await.unwrap();
    store.manifest_put(&reg, &r, &b).await.unwrap();
    // Pushed in this order; names deliberately not in time order.
    let order = ["delta", "alpha", "Charlie", "bravo", "echo"];
    for (i, name) in order.iter().enumerate() {
        let mut m = if i % 2 == 0 { a.clone() } else { b.clone() };
        m.tag = Some(tag(name));
        store.manifest_put(&reg, &r, &m).await.unwrap();
        tick().await;
    }
    let names = |v: Vec<crate::TagRecord>| v.into_iter().map(|t| t.name).collect::<Vec<_>>();
    let mut lexical: Vec<String> = order.iter().map(|s| s.to_string()).collect();
    lexical.sort();
    assert_eq!(lexical[0], "Charlie", "byte order: upper case first");
    assert_eq!(names(store.tag_list(&reg, &r, &Page::default()).await.unwrap()), lexical);
    let page = Page { last: Some("alpha".into()), n: Some(2), ..Page::default() };
    assert_eq!(names(store.tag_list(&reg, &r, &page).await.unwrap()), vec!["bravo", "delta"]);
    let page = Page { last: Some("b".into()), ..Page::default() };
    assert_eq!(
        names(store.tag_list(&reg, &r, &page).await.unwrap()),
        vec!["bravo", "delta", "echo"],
        "last need not exist"
    );
    let page = Page { last: Some("echo".into()), ..Page::default() };
    assert!(store.tag_list(&reg, &r, &page).await.unwrap().is_empty());

    let asc = Page { order: Order::TimeAsc, ..Page::default() };
    assert_eq!(names(store.tag_list(&reg, &r, &asc).await.unwrap()), order.to_vec());
    let desc = Page { order: Order::TimeDesc, n: Some(2), ..Page::default() };
    assert_eq!(names(store.tag_list(&reg, &r, &desc).await.unwrap()), vec!["echo", "bravo"]);
    let desc = Page { order: Order::TimeDesc, last: Some("bravo".into()), n: Some(2), ..Page::default() };
    assert_eq!(names(store.tag_list(&reg, &r, &desc).await.unwrap()), vec!["Charlie", "alpha"]);

    let only_b = Page { digest: Some(b.digest.clone()), ..Page::default() };
    let got = store.tag_list(&reg, &r, &only_b).await.unwrap();
    assert_eq!(names(got.clone()), vec!["alpha", "bravo"]);
    assert!(got.iter().all(|t| t.digest == b.digest));

    // Moving a tag makes it the most recently updated.
    let mut m = a.clone();
    m.tag = Some(tag("alpha"));
    store.manifest_put(&reg, &r, &m).await.unwrap();
    let newest =
        store.tag_list(&reg, &r, &Page { order: Order::TimeDesc, n: Some(1), ..Page::default() }).await.unwrap();
    assert_eq!(newest[0].name, "alpha");
    assert_eq!(newest[0].digest, a.digest);
    assert!(store.tag_list(&reg, &repo("list/none"), &Page::default()).await.unwrap().is_empty());
}

pub async fn attributes(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("attrs/app");
    let blobs = linked_blobs(store, &reg, &r, 1).await;
    let m = image(&blobs, Some("v1"));
    store.manifest_put(&reg, &r, &m).await.unwrap();
    let locked =
        ChangeableAttributes { delete_enabled: false, write_enabled: false, read_enabled: true, list_enabled: false };

    assert!(store.repository_set_attributes(&reg, &r, &locked).await.unwrap());
    assert_eq!(store.repository_get(&reg, &r).await.unwrap().unwrap().attributes, locked);
    assert!(!store.repository_set_attributes(&reg, &repo("attrs/none"), &locked).await.unwrap());

    assert!(store.manifest_set_attributes(&reg, &r, &m.digest, &locked).await.unwrap());
    let meta = store.manifest_head(&reg, &r, &Reference::Digest(m.digest.clone())).await.unwrap().unwrap();
    assert_eq!(meta.attributes, locked);
    assert!(!store.manifest_set_attributes(&reg, &r, &fresh_digest(), &locked).await.unwrap());

    let read_only = ChangeableAttributes { write_enabled: false, ..ChangeableAttributes::default() };
    assert!(store.tag_set_attributes(&reg, &r, &tag("v1"), &read_only).await.unwrap());
    assert_eq!(store.tag_get(&reg, &r, &tag("v1")).await.unwrap().unwrap().attributes, read_only);
    assert!(!store.tag_set_attributes(&reg, &r, &tag("v2"), &read_only).await.unwrap());
    // Tag and manifest attributes are independent.
    assert_eq!(
        store.manifest_head(&reg, &r, &Reference::Digest(m.digest.clone())).await.unwrap().unwrap().attributes,
        locked
    );
}

/// One read gives a manifest reference's manifest, its bytes when asked, and the attributes of
/// the repository and the tag on the way; each part is absent when its thing is.
pub async fn manifest_read_with_its_locks(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("read/team/app");
    let by_tag = Reference::Tag(tag("v1"));
    assert_eq!(store.manifest_read(&reg, &r, &by_tag, true).await.unwrap(), ManifestRead::default());

    let blobs = linked_blobs(store, &reg, &r, 1).await;
    let m = image(&blobs, Some("v1"));
    store.manifest_put(&reg, &r, &m).await.unwrap();
    let repo_locked = ChangeableAttributes { read_enabled: false, ..ChangeableAttributes::default() };
    let tag_locked = ChangeableAttributes { write_enabled: false, ..ChangeableAttributes::default() };
    let manifest_locked = ChangeableAttributes { delete_enabled: false, ..ChangeableAttributes::default() };
    assert!(store.repository_set_attributes(&reg, &r, &repo_locked).await.unwrap());
    assert!(store.tag_set_attributes(&reg, &r, &tag("v1"), &tag_locked).await.unwrap());
    assert!(store.manifest_set_attributes(&reg, &r, &m.digest, &manifest_locked).await.unwrap());

    let full = store.manifest_read(&reg, &r, &by_tag, true).await.unwrap();
    assert_eq!(full.repository, Some(repo_locked));
    assert_eq!(full.tag, Some(tag_locked));
    let meta = full.manifest.expect("the tag resolves");
    assert_eq!(
        (meta.digest.clone(), meta.attributes, meta.tags.clone()),
        (m.digest.clone(), manifest_locked, vec!["v1".to_string()])
    );
    assert_eq!(full.bytes.as_deref(), Some(&m.bytes[..]));
    assert_eq!(store.manifest_head(&reg, &r, &by_tag).await.unwrap(), Some(meta.clone()));

    let head = store.manifest_read(&reg, &r, &by_tag, false).await.unwrap();
    assert_eq!((head.manifest.as_ref(), head.bytes.as_ref()), (Some(&meta), None));

    let by_digest = store.manifest_read(&reg, &r, &Reference::Digest(m.digest.clone()), true).await.unwrap();
    assert_eq!((by_digest.repository, by_digest.tag), (Some(repo_locked), None), "no tag on a digest read");
    assert_eq!(by_digest.manifest, Some(meta));
    assert_eq!(by_digest.bytes.as_deref(), Some(&m.bytes[..]));

    // The repository exists; the tag or the digest does not.
    let no_tag = store.manifest_read(&reg, &r, &Reference::Tag(tag("v2")), true).await.unwrap();
    assert_eq!(no_tag, ManifestRead { repository: Some(repo_locked), ..ManifestRead::default() });
    let no_digest = store.manifest_read(&reg, &r, &Reference::Digest(fresh_digest()), true).await.unwrap();
    assert_eq!(no_digest, ManifestRead { repository: Some(repo_locked), ..ManifestRead::default() });
    // Another registry with the same repository name sees nothing.
    assert_eq!(store.manifest_read(&fresh_registry(), &r, &by_tag, true).await.unwrap(), ManifestRead::default());
}

pub async fn referrers(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("refs/app");
    let blobs = linked_blobs(store, &reg, &r, 1).await;
    let subject = image(&blobs, Some("v1"));
    store.manifest_put(&reg, &r, &subject).await.unwrap();

    let mut made = Vec::new();
    for (i, kind) in ["application/vnd.example.sbom", "application/vnd.example.sig", "application/vnd.example.sbom"]
        .into_iter()
        .enumerate()
    {
        let mut m = image(&blobs, None);
        m.artifact_type = Some(kind.into());
        m.subject = Some(subject.digest.clone());
        m.annotations = Some(serde_json::json!({ "n": i }));
        store.manifest_put(&reg, &r, &m).await.unwrap();
        made.push(m);
    }
    // A referrer may be pushed before its subject exists.
    let orphan_subject = fresh_digest();
    let mut orphan = image(&blobs, None);
    orphan.subject = Some(orphan_subject.clone());
    store.manifest_put(&reg, &r, &orphan).await.unwrap();
    // Same subject in another repository is not a referrer here.
    let other = repo("refs/other");
    let other_blobs = linked_blobs(store, &reg, &other, 1).await;
    let mut elsewhere = image(&other_blobs, None);
    elsewhere.subject = Some(subject.digest.clone());
    store.manifest_put(&reg, &other, &elsewhere).await.unwrap();

    let all = store.referrers(&reg, &r, &subject.digest, None).await.unwrap();
    let mut want: Vec<Digest> = made.iter().map(|m| m.digest.clone()).collect();
    want.sort();
    assert_eq!(all.iter().map(|m| m.digest.clone()).collect::<Vec<_>>(), want);
    for meta in &all {
        let src = made.iter().find(|m| m.digest == meta.digest).unwrap();
        assert_eq!(meta.artifact_type, src.artifact_type);
        assert_eq!(meta.annotations, src.annotations);
        assert_eq!(meta.subject.as_ref(), Some(&subject.digest));
        assert_eq!(meta.size, src.bytes.len() as u64);
    }
    let sboms = store.referrers(&reg, &r, &subject.digest, Some("application/vnd.example.sbom")).await.unwrap();
    assert_eq!(sboms.len(), 2);
    assert!(sboms.iter().all(|m| m.artifact_type.as_deref() == Some("application/vnd.example.sbom")));
    assert!(sboms.windows(2).all(|w| w[0].digest < w[1].digest));
    assert!(store.referrers(&reg, &r, &subject.digest, Some("application/none")).await.unwrap().is_empty());
    assert_eq!(store.referrers(&reg, &r, &orphan_subject, None).await.unwrap().len(), 1);
    assert!(store.referrers(&reg, &repo("refs/none"), &subject.digest, None).await.unwrap().is_empty());
    // Deleting a referrer removes it from the list.
    store.manifest_delete(&reg, &r, &made[1].digest).await.unwrap();
    assert_eq!(store.referrers(&reg, &r, &subject.digest, None).await.unwrap().len(), 2);
}

pub async fn repositories(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let names = ["zeta", "alpha/one", "alpha", "beta/x/y", "alpha-two"];
    for name in names {
        let r = repo(name);
        linked_blobs(store, &reg, &r, 1).await;
    }
    // Another registry's repositories are not listed.
    linked_blobs(store, &fresh_registry(), &repo("alpha0"), 1).await;
    let mut lexical: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    lexical.sort();
    assert_eq!(store.repository_list(&reg, None, 100).await.unwrap(), lexical);
    assert_eq!(store.repository_list(&reg, None, 2).await.unwrap(), lexical[..2].to_vec());
    assert_eq!(store.repository_list(&reg, Some(&lexical[1]), 2).await.unwrap(), lexical[2..4].to_vec());
    assert_eq!(store.repository_list(&reg, Some("b"), 100).await.unwrap(), vec!["beta/x/y", "zeta"]);
    assert!(store.repository_list(&reg, Some("zeta"), 100).await.unwrap().is_empty());
    assert!(store.repository_list(&reg, None, 0).await.unwrap().is_empty());

    let rec = store.repository_get(&reg, &repo("alpha")).await.unwrap().unwrap();
    assert_eq!(rec.name, "alpha");
    assert_eq!((rec.manifest_count, rec.tag_count), (0, 0));
    assert_eq!(rec.attributes, ChangeableAttributes::default());
    assert!(rec.updated_at >= rec.created_at);
    assert!(rec.created_at <= Utc::now() && rec.created_at > Utc::now() - chrono::Duration::minutes(5));

    // A repository holding only a manifest (its blobs unlinked afterwards) still exists.
    let r = repo("theta");
    let blobs = linked_blobs(store, &reg, &r, 2).await;
    store.manifest_put(&reg, &r, &image(&blobs, None)).await.unwrap();
    let rec = store.repository_get(&reg, &r).await.unwrap().unwrap();
    for b in &blobs {
        assert!(store.blob_unlink(&reg, &r, b).await.unwrap());
    }
    let still = store.repository_get(&reg, &r).await.unwrap().expect("a manifest keeps the repository");
    assert_eq!(still.created_at, rec.created_at);
    assert_eq!(still.manifest_count, 1);
    assert!(store.repository_list(&reg, Some("t"), 10).await.unwrap().contains(&"theta".to_string()));
}

pub async fn repository_delete(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let (r, keep) = (repo("gone/app"), repo("gone/keep"));
    let blobs = linked_blobs(store, &reg, &r, 2).await;
    let keep_blobs = linked_blobs(store, &reg, &keep, 1).await;
    store.manifest_put(&reg, &r, &image(&blobs, Some("v1"))).await.unwrap();
    store.manifest_put(&reg, &keep, &image(&keep_blobs, Some("v1"))).await.unwrap();

    assert!(store.repository_delete(&reg, &r).await.unwrap());
    assert!(!store.repository_delete(&reg, &r).await.unwrap());
    assert_eq!(store.repository_get(&reg, &r).await.unwrap(), None);
    assert_eq!(store.manifest_get(&reg, &r, &Reference::Tag(tag("v1"))).await.unwrap(), None);
    assert_eq!(store.blob_visible(&reg, &r, &blobs[0]).await.unwrap(), None);
    assert!(store.tag_list(&reg, &r, &Page::default()).await.unwrap().is_empty());
    assert_eq!(store.repository_list(&reg, None, 10).await.unwrap(), vec!["gone/keep".to_string()]);
    assert!(store.manifest_get(&reg, &keep, &Reference::Tag(tag("v1"))).await.unwrap().is_some());

    // Recreated from scratch, it starts empty with fresh times.
    linked_blobs(store, &reg, &r, 1).await;
    let rec = store.repository_get(&reg, &r).await.unwrap().unwrap();
    assert_eq!((rec.manifest_count, rec.tag_count), (0, 0));
}

pub async fn registry_purge(store: &dyn MetadataStore) {
    let (doomed, other) = (fresh_registry(), fresh_registry());
    let mut doomed_uploads = Vec::new();
    for reg in [&doomed, &other] {
        for name in ["a", "b/c"] {
            let r = repo(name);
            let blobs = linked_blobs(store, reg, &r, 1).await;
            store.manifest_put(reg, &r, &image(&blobs, Some("v1"))).await.unwrap();
            let upload = upload_record(reg, name, Some("someone"));
            store.upload_put(&upload, &UploadLimits::default()).await.unwrap();
            if reg == &doomed {
                doomed_uploads.push(upload.id);
            }
        }
    }
    let mut purged = store.registry_purge(&doomed).await.unwrap();
    purged.sort();
    doomed_uploads.sort();
    assert_eq!(purged, doomed_uploads, "the purge names the upload sessions it deleted");
    assert!(store.repository_list(&doomed, None, 10).await.unwrap().is_empty());
    assert_eq!(store.manifest_get(&doomed, &repo("a"), &Reference::Tag(tag("v1"))).await.unwrap(), None);
    let uploads = store.upload_list().await.unwrap();
    assert!(uploads.iter().all(|u| u.registry != doomed));
    assert!(uploads.iter().any(|u| u.registry == other));
    assert_eq!(store.repository_list(&other, None, 10).await.unwrap(), vec!["a".to_string(), "b/c".to_string()]);
    assert!(store.manifest_get(&other, &repo("b/c"), &Reference::Tag(tag("v1"))).await.unwrap().is_some());
    assert!(store.registry_purge(&doomed).await.expect("purging an empty registry is fine").is_empty());
}

pub async fn registry_size(store: &dyn MetadataStore) {
    let (reg, other) = (fresh_registry(), fresh_registry());
    assert_eq!(store.registry_size(&reg).await.unwrap(), 0);
    // Two blobs (100 and 101 bytes) in one repository, the first also linked into another.
    let blobs = linked_blobs(store, &reg, &repo("a"), 2).await;
    store.blob_link(&reg, &repo("b"), &blobs[0], 100).await.unwrap();
    assert_eq!(store.registry_size(&reg).await.unwrap(), 201, "a shared blob counts once");
    let m = image(&blobs, Some("v1"));
    let manifest_size = m.bytes.len() as u64;
    store.manifest_put(&reg, &repo("a"), &m).await.unwrap();
    // The same manifest pushed into the second repository counts once too.
    store.blob_link(&reg, &repo("b"), &blobs[1], 101).await.unwrap();
    store.manifest_put(&reg, &repo("b"), &m).await.unwrap();
    assert_eq!(store.registry_size(&reg).await.unwrap(), 201 + manifest_size);
    // Other registries are not counted.
    linked_blobs(store, &other, &repo("a"), 1).await;
    assert_eq!(store.registry_size(&other).await.unwrap(), 100);
    assert_eq!(store.registry_size(&reg).await.unwrap(), 201 + manifest_size);
    // Deleting both repositories leaves nothing.
    store.repository_delete(&reg, &repo("a")).await.unwrap();
    assert_eq!(
        store.registry_size(&reg).await.unwrap(),
        201 + manifest_size,
        "repository b still holds both blobs and the manifest"
    );
    store.repository_delete(&reg, &repo("b")).await.unwrap();
    assert_eq!(store.registry_size(&reg).await.unwrap(), 0);
}

pub async fn garbage_collection(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("gc/app");
    let future = Utc::now().timestamp() + 3600;
    let past = Utc::now().timestamp() - 3600;

    let orphan = fresh_digest();
    store.blob_record(&orphan, 1).await.unwrap();
    let linked = linked_blobs(store, &reg, &r, 1).await.remove(0);
    // Referenced by a manifest only: the link is gone, the manifest still needs it.
    let referenced = linked_blobs(store, &reg, &r, 1).await.remove(0);
    store.manifest_put(&reg, &r, &image(std::slice::from_ref(&referenced), Some("v1"))).await.unwrap();
    assert!(store.blob_unlink(&reg, &r, &referenced).await.unwrap());
    // Linked in another registry only.
    let elsewhere = linked_blobs(store, &fresh_registry(), &r, 1).await.remove(0);
    // Linked without being recorded first: the link records it (an upload only links).
    let link_only = fresh_digest();
    store.blob_link(&reg, &repo("gc/link-only"), &link_only, 3).await.unwrap();
    assert!(store.blob_unlink(&reg, &repo("gc/link-only"), &link_only).await.unwrap());

    let none = store.blob_collect_unreferenced(past).await.unwrap();
    assert!(!none.contains(&orphan), "younger than older_than");
    let collected = store.blob_collect_unreferenced(future).await.unwrap();
    assert!(collected.contains(&orphan));
    assert!(collected.contains(&link_only), "a blob recorded by its link is collected once unlinked");
    for kept in [&linked, &referenced, &elsewhere] {
        assert!(!collected.contains(kept), "{kept} is still in use");
    }
    // Its record is gone: it is not reported twice.
    assert!(!store.blob_collect_unreferenced(future).await.unwrap().contains(&orphan));

    // Once nothing uses them, the others are collected too.
    store.repository_delete(&reg, &r).await.unwrap();
    let collected = store.blob_collect_unreferenced(future).await.unwrap();
    assert!(collected.contains(&linked));
    assert!(collected.contains(&referenced));
    assert!(!collected.contains(&elsewhere));
}

pub async fn uploads(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let first = upload_record(&reg, "up/app", Some("principal-1"));
    tick().await;
    let mut second = upload_record(&reg, "up/app", None);
    second.algorithm = "sha512".into();
    assert_eq!(store.upload_get(&first.id).await.unwrap(), None);
    store.upload_put(&first, &UploadLimits::default()).await.unwrap();
    store.upload_put(&second, &UploadLimits::default()).await.unwrap();
    assert_eq!(store.upload_get(&first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(store.upload_get(&second.id).await.unwrap().unwrap().algorithm(), DigestAlgorithm::Sha512);
    assert_eq!(store.upload_get(&second.id).await.unwrap().unwrap().principal, None);
    let listed: Vec<UploadRecord> =
        store.upload_list().await.unwrap().into_iter().filter(|u| u.registry == reg).collect();
    assert_eq!(listed, vec![first.clone(), second.clone()]);
    store.upload_delete(&first.id).await.unwrap();
    store.upload_delete(&first.id).await.expect("deleting an absent upload is fine");
    assert_eq!(store.upload_get(&first.id).await.unwrap(), None);
    assert!(store.upload_get(&second.id).await.unwrap().is_some());
}

/// Caps on open sessions, per registry and per principal, counted and enforced atomically.
pub async fn upload_limits(store: &dyn MetadataStore) {
    let (reg, other) = (fresh_registry(), fresh_registry());
    let (alice, bob) = (unique_name("alice"), unique_name("bob"));
    let limits = UploadLimits { per_registry: Some(3), per_principal: Some(2) };
    let a1 = upload_record(&reg, "app", Some(&alice));
    store.upload_put(&a1, &limits).await.unwrap();
    store.upload_put(&upload_record(&reg, "app", Some(&alice)), &limits).await.unwrap();
    match store.upload_put(&upload_record(&other, "app", Some(&alice)), &limits).await {
        Err(StorageError::UploadLimit { scope: UploadLimitScope::Principal, limit: 2 }) => {}
        other => panic!("a principal's third session (in another registry): {other:?}"),
    }
    store.upload_put(&upload_record(&reg, "app", Some(&bob)), &limits).await.unwrap();
    let refused = upload_record(&reg, "other", Some(&bob));
    match store.upload_put(&refused, &limits).await {
        Err(StorageError::UploadLimit { scope: UploadLimitScope::Registry, limit: 3 }) => {}
        other => panic!("a registry's fourth session: {other:?}"),
    }
    assert_eq!(store.upload_get(&refused.id).await.unwrap(), None, "a refused session is not recorded");
    // Sessions without a principal count for their registry only.
    store.upload_put(&upload_record(&other, "app", None), &limits).await.unwrap();
    // Room again once a session ends.
    store.upload_delete(&a1.id).await.unwrap();
    store.upload_put(&upload_record(&reg, "app", Some(&alice)), &limits).await.unwrap();
    // No caps, no refusal.
    for _ in 0..3 {
        store.upload_put(&upload_record(&reg, "app", Some(&alice)), &UploadLimits::default()).await.unwrap();
    }
}

/// Last activity moves forward only; idle sessions are listed and deleted only while idle.
pub async fn upload_activity_and_expiry(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let long_ago = Utc::now() - chrono::Duration::hours(48);
    let mut idle = upload_record(&reg, "app", Some("p"));
    idle.created_at = long_ago;
    idle.last_activity = long_ago;
    let mut revived = upload_record(&reg, "app", Some("p"));
    revived.last_activity = long_ago;
    let fresh = upload_record(&reg, "app", Some("p"));
    for u in [&idle, &revived, &fresh] {
        store.upload_put(u, &UploadLimits::default()).await.unwrap();
    }
    let cutoff = Utc::now() - chrono::Duration::hours(24);
    let listed: Vec<UploadId> =
        store.upload_list_idle(cutoff).await.unwrap().into_iter().filter(|u| u.registry == reg).map(|u| u.id).collect();
    assert_eq!(listed.len(), 2);
    assert!(listed.contains(&idle.id) && listed.contains(&revived.id));
    // Activity after the listing keeps the session.
    let now = Utc::now();
    store.upload_touch(&revived.id, now).await.unwrap();
    store.upload_touch(&revived.id, long_ago).await.unwrap();
    let got = store.upload_get(&revived.id).await.unwrap().unwrap();
    assert!(got.last_activity >= now - chrono::Duration::milliseconds(1), "activity never moves back");
    assert!(!store.upload_delete_if_idle(&revived.id, cutoff).await.unwrap());
    assert!(store.upload_get(&revived.id).await.unwrap().is_some());
    assert!(store.upload_delete_if_idle(&idle.id, cutoff).await.unwrap());
    assert!(!store.upload_delete_if_idle(&idle.id, cutoff).await.unwrap(), "deleted once");
    assert_eq!(store.upload_get(&idle.id).await.unwrap(), None);
    assert!(!store.upload_delete_if_idle(&fresh.id, cutoff).await.unwrap());
    store.upload_touch(&UploadId::new(), now).await.expect("touching an absent session is fine");
}

/// The end of an upload: the blob is linked where the session was going and the record is gone,
/// together; a session that vanished meanwhile links nothing.
pub async fn upload_complete(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let session = upload_record(&reg, "done/app", Some("p"));
    store.upload_put(&session, &UploadLimits::default()).await.unwrap();
    let d = fresh_digest();
    assert!(store.upload_complete(&session, &d, 77).await.unwrap());
    assert_eq!(store.blob_visible(&reg, &repo("done/app"), &d).await.unwrap(), Some(77));
    assert_eq!(store.upload_get(&session.id).await.unwrap(), None);
    assert!(!store.blob_collect_unreferenced(Utc::now().timestamp() + 3600).await.unwrap().contains(&d));

    // Purged with its registry before the commit was recorded: no link, no repository.
    let gone = fresh_registry();
    let late = upload_record(&gone, "late/app", None);
    store.upload_put(&late, &UploadLimits::default()).await.unwrap();
    store.registry_purge(&gone).await.unwrap();
    let d2 = fresh_digest();
    assert!(!store.upload_complete(&late, &d2, 5).await.unwrap());
    assert_eq!(store.blob_visible(&gone, &repo("late/app"), &d2).await.unwrap(), None);
    assert!(store.repository_list(&gone, None, 10).await.unwrap().is_empty());
}

/// Walking the blob records, looking them up in batches, what uses them, and forgetting the
/// unused ones only.
pub async fn blob_records_and_forgetting(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let r = repo("forget/app");
    let unused = fresh_digest();
    store.blob_record(&unused, 11).await.unwrap();
    let linked = linked_blobs(store, &reg, &r, 1).await.remove(0);
    let referenced = linked_blobs(store, &reg, &r, 1).await.remove(0);
    store.manifest_put(&reg, &r, &image(std::slice::from_ref(&referenced), None)).await.unwrap();
    assert!(store.blob_unlink(&reg, &r, &referenced).await.unwrap());

    // Paging visits every record once, in digest order.
    let mut seen = Vec::new();
    let mut after: Option<Digest> = None;
    loop {
        let page = store.blob_records(after.as_ref(), 2).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 2);
        after = Some(last.digest.clone());
        seen.extend(page.into_iter().map(|b| b.digest));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted);
    for d in [&unused, &linked, &referenced] {
        assert!(seen.contains(d), "{d} is walked");
    }
    let absent = fresh_digest();
    let mut found: Vec<(Digest, u64)> = store
        .blob_records_of(&[unused.clone(), absent.clone(), linked.clone()])
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.digest, b.size))
        .collect();
    found.sort();
    let mut expected = vec![(unused.clone(), 11), (linked.clone(), 100)];
    expected.sort();
    assert_eq!(found, expected);

    assert_eq!(store.blob_references(&unused).await.unwrap(), BlobReferences::default());
    assert_eq!(store.blob_references(&linked).await.unwrap(), BlobReferences { links: 1, manifests: 0 });
    assert_eq!(store.blob_references(&referenced).await.unwrap(), BlobReferences { links: 0, manifests: 1 });
    assert!(!store.blob_forget(&linked).await.unwrap(), "a linked blob is kept");
    assert!(!store.blob_forget(&referenced).await.unwrap(), "a referenced blob is kept");
    assert!(store.blob_forget(&unused).await.unwrap());
    assert!(!store.blob_forget(&unused).await.unwrap());
    assert!(store.blob_records_of(&[unused]).await.unwrap().is_empty());
    assert_eq!(store.blob_records_of(std::slice::from_ref(&linked)).await.unwrap().len(), 1);
    assert!(store.blob_references_unrecorded().await.unwrap().iter().all(|u| u.registry != reg));
}

pub async fn registry_keys_with_content(store: &dyn MetadataStore) {
    let (with_repo, with_upload, empty) = (fresh_registry(), fresh_registry(), fresh_registry());
    linked_blobs(store, &with_repo, &repo("keys/app"), 1).await;
    store.upload_put(&upload_record(&with_upload, "keys/app", None), &UploadLimits::default()).await.unwrap();
    let keys = store.registry_keys_with_content().await.unwrap();
    assert!(keys.contains(&with_repo) && keys.contains(&with_upload));
    assert!(!keys.contains(&empty));
    store.registry_purge(&with_upload).await.unwrap();
    assert!(!store.registry_keys_with_content().await.unwrap().contains(&with_upload));
}

/// Times survive a round trip with (at least) microsecond precision.
pub async fn timestamps_keep_sub_second_precision(store: &dyn MetadataStore) {
    let at: DateTime<Utc> = DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap();
    let mut rg = resource_group_record(&unique_name("time"));
    rg.created_at = at;
    rg.updated_at = at;
    store.resource_put(&rg).await.unwrap();
    let got = store.resource_get(&rg.id).await.unwrap().unwrap();
    assert_eq!(got.created_at, at);
}

// ---- task runs ----

/// Now, to the microsecond (what every backend keeps, see
/// [`timestamps_keep_sub_second_precision`]), so that times read back compare equal.
fn now_micros() -> DateTime<Utc> {
    DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("a time in range")
}

fn secs(t: DateTime<Utc>, n: i64) -> DateTime<Utc> {
    t + TimeDelta::seconds(n)
}

fn new_run(registry: &RegistryKey, prefix: &str, task: Option<&str>, status: &str) -> NewRun {
    NewRun {
        registry: registry.clone(),
        id_prefix: prefix.into(),
        task: task.map(str::to_string),
        status: status.into(),
        body: json!({ "properties": { "status": status, "task": task } }),
    }
}

async fn create_run(store: &dyn MetadataStore, registry: &RegistryKey, status: &str, at: DateTime<Utc>) -> RunRecord {
    store.run_create(&new_run(registry, "ca", None, status), at).await.expect("run_create")
}

/// Moves a run to `status` held by `agent` until `lease` (a compare-and-set that must succeed).
async fn set_run(
    store: &dyn MetadataStore,
    run: &RunRecord,
    status: &str,
    agent: Option<&str>,
    lease: Option<DateTime<Utc>>,
) -> RunRecord {
    let mut next = run.clone();
    next.status = status.into();
    next.agent = agent.map(str::to_string);
    next.lease_until = lease;
    assert!(store.run_update(&next, &run.status, run.updated_at).await.unwrap(), "run_update from {}", run.status);
    store.run_get(&run.registry, &run.run_id).await.unwrap().expect("the run")
}

/// Two fresh registries, the one whose key sorts first first (the queue order's tie-break).
fn two_registries() -> (RegistryKey, RegistryKey) {
    let (a, b) = (fresh_registry(), fresh_registry());
    if a < b { (a, b) } else { (b, a) }
}

/// Claims every queued run the store holds (other checks leave some), so that a check of the
/// deployment-wide queue sees only its own runs. The drained runs are left `Started`.
async fn drain_run_queue(store: &dyn MetadataStore) {
    let now = now_micros();
    while store.run_claim("conformance-drain", secs(now, 3600), now).await.unwrap().is_some() {}
}

/// Every run check, in sequence; the concurrent ones spawn tasks sharing `store`.
pub async fn run_queue_suite(store: Arc<dyn MetadataStore>) {
    let s = &*store;
    runs_numbered_per_registry(s).await;
    run_ids_conflict_case_insensitively(s).await;
    run_get_is_case_insensitive(s).await;
    run_list_order_filters_and_top(s).await;
    run_update_compare_and_set(s).await;
    run_body_round_trips(s).await;
    run_claim_takes_the_oldest_queued_run(s).await;
    run_claims_race(store.clone()).await;
    run_claims_share_out_a_queue(store.clone()).await;
    run_renew_only_by_the_holder(s).await;
    run_expired_leases_and_in_progress(s).await;
    run_queue_positions(s).await;
    runs_purged_with_their_registry(s).await;
    runs_finished_before_and_deleted(s).await;
    timer_ticks_queue_once(s).await;
    timer_tick_claims_race(store.clone()).await;
    timer_ticks_sweep_old_claims(s).await;
    task_images_replace_and_find(s).await;
    image_update_runs_coalesce_while_queued(s).await;
    image_update_runs_race(store.clone()).await;
}

/// The retention sweep's two calls: finished runs last changed before a time, in
/// (`updated_at`, registry, number) order and paged by the last one read; a delete that happens
/// only if the run did not change since it was read.
pub async fn runs_finished_before_and_deleted(store: &dyn MetadataStore) {
    // Long before anything the other checks create, so that only these runs are that old.
    let t0 = DateTime::from_timestamp(315_532_800, 0).expect("1980"); // 1980-01-01
    let (a, b) = two_registries();
    let mut made = vec![];
    for (reg, status, at) in [
        (&a, "Succeeded", 10),
        (&b, "Failed", 10),
        (&a, run_status::QUEUED, 5),
        (&a, run_status::RUNNING, 6),
        (&b, "Canceled", 20),
        (&a, "Succeeded", 1000),
    ] {
        made.push(store.run_create(&new_run(reg, "ra", None, status), secs(t0, at)).await.unwrap());
    }
    let before = secs(t0, 500);
    let found = store.runs_finished_before(before, None, 100).await.unwrap();
    let ids = |runs: &[RunRecord]| runs.iter().map(|r| (r.registry.clone(), r.number)).collect::<Vec<_>>();
    assert_eq!(
        ids(&found),
        vec![(a.clone(), 1), (b.clone(), 1), (b.clone(), 2)],
        "finished runs only, oldest change first, ties by registry and number; in progress and newer ones are not listed"
    );
    assert_eq!(found[0], made[0], "whole records");
    let page = store.runs_finished_before(before, None, 2).await.unwrap();
    assert_eq!(ids(&page), ids(&found[..2]));
    let rest = store.runs_finished_before(before, page.last(), 2).await.unwrap();
    assert_eq!(ids(&rest), ids(&found[2..]), "the next page starts after the last run read");
    assert!(store.runs_finished_before(before, rest.last(), 2).await.unwrap().is_empty());

    // A run that changed since it was read is kept; an unchanged one goes, once.
    let mut changed = made[1].clone();
    changed.body = json!({"properties": {"isArchiveEnabled": true}});
    assert!(store.run_update(&changed, "Failed", secs(t0, 11)).await.unwrap());
    assert!(!store.run_delete(&made[1]).await.unwrap(), "changed after it was read");
    assert!(store.run_get(&b, &made[1].run_id).await.unwrap().is_some());
    let mut upper = made[0].clone();
    upper.run_id = upper.run_id.to_uppercase();
    assert!(store.run_delete(&upper).await.unwrap(), "ids compare case-insensitively");
    assert!(!store.run_delete(&made[0]).await.unwrap(), "already gone");
    assert_eq!(store.run_get(&a, &made[0].run_id).await.unwrap(), None);
    // Numbers are never reused after a delete.
    let next = store.run_create(&new_run(&a, "ra", None, run_status::QUEUED), secs(t0, 2000)).await.unwrap();
    assert_eq!(next.number, 5);
    // Leave nothing queued or in progress for the checks that follow.
    for r in [&made[2], &made[3], &next] {
        let mut done = r.clone();
        done.status = "Canceled".into();
        assert!(store.run_update(&done, &r.status, secs(t0, 3000)).await.unwrap());
    }
    for r in store.runs_finished_before(secs(t0, 5000), None, 100).await.unwrap() {
        store.run_delete(&r).await.unwrap();
    }
}

pub async fn runs_numbered_per_registry(store: &dyn MetadataStore) {
    let (a, b) = (fresh_registry(), fresh_registry());
    let now = now_micros();
    let mut got = Vec::new();
    for (reg, prefix) in [(&a, "ca"), (&b, "cb"), (&a, "ca"), (&b, "cb"), (&a, "ca")] {
        let new = new_run(reg, prefix, Some("build"), run_status::QUEUED);
        let run = store.run_create(&new, now).await.unwrap();
        assert_eq!((&run.registry, &run.task, &run.status, &run.body), (reg, &new.task, &new.status, &new.body));
        assert_eq!((run.agent.as_deref(), run.lease_until), (None, None), "a new run has no agent");
        assert_eq!((run.created_at, run.updated_at), (now, now));
        assert_eq!(store.run_get(reg, &run.run_id).await.unwrap().as_ref(), Some(&run), "stored as returned");
        got.push((run.number, run.run_id));
    }
    let expected = [(1, "ca1"), (1, "cb1"), (2, "ca2"), (2, "cb2"), (3, "ca3")];
    assert_eq!(got, expected.map(|(n, id)| (n, id.to_string())), "each registry counts 1, 2, …");
    // The number is the registry's, whatever the prefix.
    let run = store.run_create(&new_run(&a, "cc", None, run_status::QUEUED), now).await.unwrap();
    assert_eq!((run.number, run.run_id.as_str()), (4, "cc4"));
}

pub async fn run_ids_conflict_case_insensitively(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let now = now_micros();
    let first = store.run_create(&new_run(&reg, "A1", None, run_status::QUEUED), now).await.unwrap();
    assert_eq!(first.run_id, "A11");
    for n in 2..=10 {
        assert_eq!(store.run_create(&new_run(&reg, "b", None, run_status::QUEUED), now).await.unwrap().number, n);
    }
    // Number 11 with prefix `a` would be `a11`, which `A11` already is.
    match store.run_create(&new_run(&reg, "a", None, run_status::QUEUED), now).await {
        Err(StorageError::Conflict(_)) => {}
        other => panic!("a run id taken case-insensitively: {other:?}"),
    }
    let runs = store.run_list(&reg, &RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 10, "the refused run was not recorded");
    assert_eq!(store.run_get(&reg, "a11").await.unwrap(), Some(first));
    let next = store.run_create(&new_run(&reg, "c", None, run_status::QUEUED), now).await.unwrap();
    assert!(next.number >= 11 && next.run_id == format!("c{}", next.number), "{next:?}");
}

pub async fn run_get_is_case_insensitive(store: &dyn MetadataStore) {
    let (reg, other) = (fresh_registry(), fresh_registry());
    let run = store.run_create(&new_run(&reg, "Ca", Some("Build"), run_status::QUEUED), now_micros()).await.unwrap();
    assert_eq!(run.run_id, "Ca1", "the id keeps its case");
    for id in ["Ca1", "ca1", "CA1", "cA1"] {
        assert_eq!(store.run_get(&reg, id).await.unwrap().as_ref(), Some(&run), "{id}");
    }
    assert_eq!(store.run_get(&reg, "ca2").await.unwrap(), None);
    assert_eq!(store.run_get(&reg, "ca").await.unwrap(), None);
    assert_eq!(store.run_get(&other, "ca1").await.unwrap(), None, "runs are the registry's");
}

pub async fn run_list_order_filters_and_top(store: &dyn MetadataStore) {
    let (reg, other) = (fresh_registry(), fresh_registry());
    let t = now_micros();
    let specs = [
        (Some("Build"), run_status::QUEUED),
        (Some("build"), "Succeeded"),
        (None, "Succeeded"),
        (Some("other"), run_status::QUEUED),
        (Some("BUILD"), "Failed"),
    ];
    let mut created = Vec::new();
    // Creation times disagree with numbers: the listing orders by number.
    for (i, (task, status)) in specs.into_iter().enumerate() {
        created.push(store.run_create(&new_run(&reg, "ca", task, status), secs(t, -(i as i64))).await.unwrap());
    }
    store.run_create(&new_run(&other, "ca", Some("build"), run_status::QUEUED), t).await.unwrap();
    let mine = &reg;
    let list = |filter: RunFilter| async move {
        let runs = store.run_list(mine, &filter).await.unwrap();
        assert!(runs.iter().all(|r| &r.registry == mine));
        runs.into_iter().map(|r| r.number).collect::<Vec<_>>()
    };
    let all = store.run_list(&reg, &RunFilter::default()).await.unwrap();
    assert_eq!(all, created.iter().rev().cloned().collect::<Vec<_>>(), "newest first, whole records");
    let filter = |task: Option<&str>, status: Option<&str>, top: Option<usize>| RunFilter {
        task: task.map(str::to_string),
        status: status.map(str::to_string),
        top,
    };
    assert_eq!(list(filter(Some("build"), None, None)).await, vec![5, 2, 1], "tasks compare case-insensitively");
    assert_eq!(list(filter(Some("BUILD"), None, None)).await, vec![5, 2, 1]);
    assert_eq!(list(filter(Some("buil"), None, None)).await, Vec::<u64>::new(), "whole names only");
    assert_eq!(list(filter(None, Some("Succeeded"), None)).await, vec![3, 2]);
    assert_eq!(list(filter(None, Some("succeeded"), None)).await, Vec::<u64>::new(), "statuses compare exactly");
    assert_eq!(list(filter(Some("build"), Some(run_status::QUEUED), None)).await, vec![1]);
    assert_eq!(list(filter(None, None, Some(2))).await, vec![5, 4]);
    assert_eq!(list(filter(Some("build"), None, Some(2))).await, vec![5, 2], "top applies after the filters");
    assert_eq!(list(filter(None, None, Some(0))).await, Vec::<u64>::new());
    assert_eq!(list(filter(None, None, Some(100))).await, vec![5, 4, 3, 2, 1]);
    assert!(store.run_list(&fresh_registry(), &RunFilter::default()).await.unwrap().is_empty());
}

pub async fn run_update_compare_and_set(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let t = now_micros();
    let queued = store.run_create(&new_run(&reg, "ca", Some("build"), run_status::QUEUED), t).await.unwrap();

    let mut running = queued.clone();
    running.status = run_status::RUNNING.into();
    running.body = json!({ "properties": { "status": "Running", "startTime": "2026-12-04T10:00:00Z" } });
    running.agent = Some("agent-1".into());
    running.lease_until = Some(secs(t, 60));
    running.run_id = queued.run_id.to_uppercase();
    assert!(store.run_update(&running, run_status::QUEUED, secs(t, 1)).await.unwrap());
    let stored = store.run_get(&reg, &queued.run_id).await.unwrap().unwrap();
    let expected = RunRecord { run_id: queued.run_id.clone(), updated_at: secs(t, 1), ..running.clone() };
    assert_eq!(stored, expected, "status, body, agent, lease and update time written");

    // A writer that read the run while it was queued has lost.
    let mut stale = queued.clone();
    stale.status = "Succeeded".into();
    stale.body = json!({ "stale": true });
    stale.agent = None;
    assert!(!store.run_update(&stale, run_status::QUEUED, secs(t, 2)).await.unwrap());
    assert_eq!(store.run_get(&reg, &queued.run_id).await.unwrap().unwrap(), stored, "nothing changed");

    // Canceled while running: the agent's verdict, expecting Running, is refused.
    let mut canceled = stored.clone();
    canceled.status = "Canceled".into();
    assert!(store.run_update(&canceled, run_status::RUNNING, secs(t, 3)).await.unwrap());
    let mut verdict = stored.clone();
    verdict.status = "Succeeded".into();
    assert!(!store.run_update(&verdict, run_status::RUNNING, secs(t, 4)).await.unwrap());
    let now_stored = store.run_get(&reg, &queued.run_id).await.unwrap().unwrap();
    assert_eq!((now_stored.status.as_str(), now_stored.updated_at), ("Canceled", secs(t, 3)));

    // Agent and lease can be cleared; number, task and creation time never change.
    let mut cleared = now_stored.clone();
    cleared.agent = None;
    cleared.lease_until = None;
    cleared.number = 99;
    cleared.task = Some("another".into());
    cleared.created_at = secs(t, 100);
    assert!(store.run_update(&cleared, "Canceled", secs(t, 5)).await.unwrap());
    let after = store.run_get(&reg, &queued.run_id).await.unwrap().unwrap();
    assert_eq!((after.agent, after.lease_until), (None, None));
    assert_eq!((after.number, &after.task, after.created_at), (queued.number, &queued.task, queued.created_at));

    let mut missing = queued.clone();
    missing.run_id = "ca999".into();
    assert!(matches!(store.run_update(&missing, run_status::QUEUED, t).await, Err(StorageError::NotFound)));
    missing.run_id = queued.run_id.clone();
    missing.registry = fresh_registry();
    assert!(matches!(store.run_update(&missing, run_status::QUEUED, t).await, Err(StorageError::NotFound)));
}

pub async fn run_body_round_trips(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let body = json!({
        "properties": {
            "status": "Queued",
            "platform": { "os": "linux", "architecture": "amd64", "variant": null },
            "outputImages": [{ "registry": "r.azurecr.io", "repository": "app", "tag": "v1" }, []],
            "values": { "big": u64::MAX, "small": i64::MIN, "ratio": 0.1, "huge": 1e300, "zero": 0, "no": false },
        },
        "text": "quote \" backslash \\ newline \n tab \t nul \u{0} snowman \u{2603} emoji \u{1F433}",
        "empty": {},
    });
    let mut new = new_run(&reg, "ca", Some("build"), run_status::QUEUED);
    new.body = body.clone();
    let created = store.run_create(&new, now_micros()).await.unwrap();
    assert_eq!(created.body, body);
    assert_eq!(store.run_get(&reg, &created.run_id).await.unwrap().unwrap().body, body);
    assert_eq!(store.run_list(&reg, &RunFilter::default()).await.unwrap()[0].body, body);
    // Numbers keep their kind: an integer does not come back as a float.
    assert!(created.body["properties"]["values"]["big"].is_u64());
    assert!(created.body["properties"]["values"]["zero"].is_u64());
    assert!(created.body["properties"]["values"]["ratio"].is_f64());

    let mut next = created.clone();
    next.body = json!([1, "two", { "three": [3.5] }]);
    assert!(store.run_update(&next, run_status::QUEUED, now_micros()).await.unwrap());
    assert_eq!(store.run_get(&reg, &created.run_id).await.unwrap().unwrap().body, next.body);
}

pub async fn run_claim_takes_the_oldest_queued_run(store: &dyn MetadataStore) {
    drain_run_queue(store).await;
    let now = now_micros();
    assert_eq!(store.run_claim("agent-1", secs(now, 60), now).await.unwrap(), None, "nothing queued");

    let (lo, hi) = two_registries();
    let t0 = secs(now, -600);
    let hi1 = create_run(store, &hi, run_status::QUEUED, secs(t0, 1)).await;
    let _lo1 = create_run(store, &lo, "Succeeded", secs(t0, -5)).await;
    let lo2 = create_run(store, &lo, run_status::QUEUED, secs(t0, 1)).await;
    let hi2 = create_run(store, &hi, run_status::QUEUED, secs(t0, 1)).await;
    let lo3 = create_run(store, &lo, run_status::QUEUED, t0).await;
    let hi3 = create_run(store, &hi, run_status::QUEUED, secs(t0, 3)).await;
    // In progress with a lease long over: not the claim's (see `run_expired_leases`).
    let lo4 = create_run(store, &lo, run_status::QUEUED, secs(t0, -10)).await;
    set_run(store, &lo4, run_status::RUNNING, Some("gone"), Some(secs(t0, -5))).await;
    let lo5 = create_run(store, &lo, run_status::QUEUED, secs(t0, -9)).await;
    set_run(store, &lo5, run_status::STARTED, Some("gone"), Some(secs(t0, -5))).await;

    // Creation time, then registry key, then number.
    for (i, expected) in [&lo3, &lo2, &hi1, &hi2, &hi3].into_iter().enumerate() {
        let (lease, at) = (secs(now, 60 + i as i64), secs(now, i as i64));
        let claimed = store.run_claim("agent-1", lease, at).await.unwrap().expect("a queued run");
        let want = RunRecord {
            status: run_status::STARTED.into(),
            agent: Some("agent-1".into()),
            lease_until: Some(lease),
            updated_at: at,
            ..expected.clone()
        };
        assert_eq!(claimed, want, "claim {i}");
        assert_eq!(store.run_get(&claimed.registry, &claimed.run_id).await.unwrap(), Some(want));
    }
    assert_eq!(store.run_claim("agent-1", secs(now, 60), now).await.unwrap(), None, "only queued runs");
    assert_eq!(store.run_get(&lo, &lo4.run_id).await.unwrap().unwrap().agent.as_deref(), Some("gone"));
}

/// Two claimers started together for one queued run: exactly one gets it, the other nothing.
pub async fn run_claims_race(store: Arc<dyn MetadataStore>) {
    drain_run_queue(&*store).await;
    let reg = fresh_registry();
    for round in 0..10 {
        let now = now_micros();
        let run = create_run(&*store, &reg, run_status::QUEUED, now).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(2));
        let racers: Vec<_> = (0..2)
            .map(|i| {
                let (store, barrier) = (store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.run_claim(&format!("racer-{i}"), secs(now, 60), now).await.unwrap()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            winners.extend(racer.await.expect("claimer task"));
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(winners[0].run_id, run.run_id);
        let stored = store.run_get(&reg, &run.run_id).await.unwrap().unwrap();
        assert_eq!(stored.agent, winners[0].agent, "the stored holder is the one that got it");
    }
}

/// Four claimers emptying a queue of 20 runs take each exactly once.
pub async fn run_claims_share_out_a_queue(store: Arc<dyn MetadataStore>) {
    drain_run_queue(&*store).await;
    let reg = fresh_registry();
    let now = now_micros();
    let mut queued = BTreeSet::new();
    for _ in 0..20 {
        queued.insert(create_run(&*store, &reg, run_status::QUEUED, now).await.run_id);
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(4));
    let claimers: Vec<_> = (0..4)
        .map(|i| {
            let (store, barrier) = (store.clone(), barrier.clone());
            tokio::spawn(async move {
                let agent = format!("agent-{i}");
                barrier.wait().await;
                let mut got = Vec::new();
                while let Some(run) = store.run_claim(&agent, secs(now, 60), now).await.unwrap() {
                    assert_eq!(run.agent.as_deref(), Some(agent.as_str()));
                    got.push(run);
                    tokio::task::yield_now().await;
                }
                got
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for claimer in claimers {
        claimed.extend(claimer.await.expect("claimer task"));
    }
    assert_eq!(claimed.len(), 20, "every run claimed once");
    let ids: BTreeSet<String> = claimed.iter().map(|r| r.run_id.clone()).collect();
    assert_eq!(ids, queued, "each run exactly once");
    for run in &claimed {
        let stored = store.run_get(&reg, &run.run_id).await.unwrap().unwrap();
        assert_eq!((stored.status.as_str(), &stored.agent), (run_status::STARTED, &run.agent));
    }
    assert!(
        store
            .run_list(&reg, &RunFilter { status: Some(run_status::QUEUED.into()), ..Default::default() })
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn run_renew_only_by_the_holder(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let t = now_micros();
    let queued = create_run(store, &reg, run_status::QUEUED, t).await;
    assert!(!store.run_renew(&reg, &queued.run_id, "holder", secs(t, 60)).await.unwrap(), "nobody holds it");
    let started = set_run(store, &queued, run_status::STARTED, Some("holder"), Some(secs(t, 30))).await;

    assert!(!store.run_renew(&reg, &started.run_id, "intruder", secs(t, 600)).await.unwrap());
    assert_eq!(store.run_get(&reg, &started.run_id).await.unwrap().unwrap(), started, "unchanged");

    assert!(store.run_renew(&reg, &started.run_id.to_uppercase(), "holder", secs(t, 90)).await.unwrap());
    let renewed = store.run_get(&reg, &started.run_id).await.unwrap().unwrap();
    assert_eq!(renewed, RunRecord { lease_until: Some(secs(t, 90)), ..started.clone() }, "only the lease moved");

    let running = set_run(store, &renewed, run_status::RUNNING, Some("holder"), Some(secs(t, 90))).await;
    assert!(store.run_renew(&reg, &running.run_id, "holder", secs(t, 120)).await.unwrap());
    assert!(!store.run_renew(&fresh_registry(), &running.run_id, "holder", secs(t, 120)).await.unwrap());
    assert!(!store.run_renew(&reg, "ca999", "holder", secs(t, 120)).await.unwrap(), "no such run");

    // Finished (or canceled), the run is nobody's any more.
    let running = store.run_get(&reg, &running.run_id).await.unwrap().unwrap();
    let done = set_run(store, &running, "Succeeded", Some("holder"), running.lease_until).await;
    assert!(!store.run_renew(&reg, &done.run_id, "holder", secs(t, 999)).await.unwrap());
    assert_eq!(store.run_get(&reg, &done.run_id).await.unwrap().unwrap().lease_until, Some(secs(t, 120)));
}

pub async fn run_expired_leases_and_in_progress(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let now = now_micros();
    let t0 = secs(now, -3600);
    let mut runs = Vec::new();
    // (status, agent, lease, creation offset): the creation times set the queue order.
    let specs: [(&str, Option<&str>, Option<i64>, i64); 7] = [
        (run_status::RUNNING, Some("a"), Some(-1), 1),   // expired
        (run_status::STARTED, Some("b"), Some(-2), 0),   // expired
        (run_status::RUNNING, Some("c"), Some(3600), 2), // held
        (run_status::STARTED, Some("d"), Some(0), 3),    // ends exactly now: not before now
        ("Succeeded", Some("e"), Some(-3600), 4),        // finished
        (run_status::QUEUED, None, None, 5),             // waiting
        (run_status::RUNNING, Some("g"), None, 6),       // no lease: never expires
    ];
    for (status, agent, lease, created) in specs {
        let run = create_run(store, &reg, run_status::QUEUED, secs(t0, created)).await;
        runs.push(if status == run_status::QUEUED {
            run
        } else {
            set_run(store, &run, status, agent, lease.map(|s| secs(now, s))).await
        });
    }
    let mine = |list: Vec<RunRecord>| list.into_iter().filter(|r| r.registry == reg).collect::<Vec<_>>();

    let expired = mine(store.run_expired_leases(now).await.unwrap());
    assert_eq!(expired, vec![runs[1].clone(), runs[0].clone()], "expired leases, in queue order");
    let in_progress = mine(store.runs_in_progress().await.unwrap());
    let expected: Vec<RunRecord> = [1, 0, 2, 3, 6].into_iter().map(|i| runs[i].clone()).collect();
    assert_eq!(in_progress, expected, "Started and Running runs, in queue order");
    let later = mine(store.run_expired_leases(secs(now, 1)).await.unwrap());
    assert_eq!(later.iter().map(|r| r.number).collect::<Vec<_>>(), vec![2, 1, 4]);

    // A sweeper ends an expired run by compare-and-set; a second sweeper with the same read loses.
    let mut error = expired[1].clone();
    error.status = "Error".into();
    assert!(store.run_update(&error, run_status::RUNNING, now).await.unwrap());
    assert!(!store.run_update(&error, run_status::RUNNING, now).await.unwrap());
    let expired = mine(store.run_expired_leases(now).await.unwrap());
    assert_eq!(expired, vec![runs[1].clone()]);
    assert!(!mine(store.runs_in_progress().await.unwrap()).iter().any(|r| r.number == error.number));
}

pub async fn run_queue_positions(store: &dyn MetadataStore) {
    drain_run_queue(store).await;
    let (lo, hi) = two_registries();
    let t0 = secs(now_micros(), -600);
    let lo1 = create_run(store, &lo, run_status::QUEUED, t0).await;
    let hi1 = create_run(store, &hi, run_status::QUEUED, t0).await;
    let lo2 = create_run(store, &lo, run_status::QUEUED, secs(t0, 1)).await;
    let hi2 = create_run(store, &hi, run_status::QUEUED, secs(t0, 1)).await;
    let hi2 = set_run(store, &hi2, run_status::RUNNING, Some("a"), Some(secs(t0, 60))).await;
    let lo3 = create_run(store, &lo, run_status::QUEUED, secs(t0, 2)).await;
    let hi3 = create_run(store, &hi, "Succeeded", secs(t0, -1)).await;
    let ahead = |run: RunRecord| async move { store.run_count_queued_before(&run).await.unwrap() };
    assert_eq!(ahead(lo1.clone()).await, 0);
    assert_eq!(ahead(hi1.clone()).await, 1, "same time: the registry key decides");
    assert_eq!(ahead(lo2.clone()).await, 2);
    assert_eq!(ahead(lo3.clone()).await, 3, "a run in progress is not waiting");
    assert_eq!(ahead(hi2.clone()).await, 3, "counted for any run, queued or not");
    assert_eq!(ahead(hi3.clone()).await, 0);

    let claimed = store.run_claim("agent-1", secs(t0, 600), t0).await.unwrap().unwrap();
    assert_eq!(claimed.run_id, lo1.run_id);
    assert_eq!((ahead(hi1).await, ahead(lo2).await, ahead(lo3).await), (0, 1, 2));
}

pub async fn runs_purged_with_their_registry(store: &dyn MetadataStore) {
    let (doomed, other) = (fresh_registry(), fresh_registry());
    let now = now_micros();
    let d1 = create_run(store, &doomed, run_status::QUEUED, now).await;
    let d2 = create_run(store, &doomed, run_status::QUEUED, now).await;
    set_run(store, &d2, run_status::RUNNING, Some("agent-1"), Some(secs(now, 60))).await;
    let kept = create_run(store, &other, run_status::QUEUED, now).await;
    let before = store.counts().await.unwrap().runs;
    assert!(before >= 3, "counts() counts runs");

    assert!(store.registry_purge(&doomed).await.unwrap().is_empty(), "runs are not upload sessions");
    assert_eq!(store.run_get(&doomed, &d1.run_id).await.unwrap(), None);
    assert_eq!(store.run_get(&doomed, &d2.run_id).await.unwrap(), None);
    assert!(store.run_list(&doomed, &RunFilter::default()).await.unwrap().is_empty());
    assert!(store.runs_in_progress().await.unwrap().iter().all(|r| r.registry != doomed));
    assert_eq!(store.counts().await.unwrap().runs, before - 2);
    assert_eq!(store.run_get(&other, &kept.run_id).await.unwrap(), Some(kept), "other registries keep theirs");
    while let Some(run) = store.run_claim("agent-1", secs(now, 60), now).await.unwrap() {
        assert_ne!(run.registry, doomed, "a purged run is never claimed");
    }

    // The key's numbering goes on; a new registry starts at 1.
    assert_eq!(create_run(store, &doomed, run_status::QUEUED, now).await.number, 3, "numbers are never reused");
    let fresh = create_run(store, &fresh_registry(), run_status::QUEUED, now).await;
    assert_eq!((fresh.number, fresh.run_id.as_str()), (1, "ca1"));
}

/// What [`runs_before_restart`] wrote, for [`runs_after_restart`] to find in the reopened store.
#[derive(Debug, Clone)]
pub struct RunsWritten {
    pub registry: RegistryKey,
    pub runs: Vec<RunRecord>,
}

/// Writes runs that a backend must still hold once reopened (a restart of the process).
pub async fn runs_before_restart(store: &dyn MetadataStore) -> RunsWritten {
    let registry = fresh_registry();
    let now = now_micros();
    let first = create_run(store, &registry, run_status::QUEUED, now).await;
    let second = store.run_create(&new_run(&registry, "ca", Some("nightly"), run_status::QUEUED), now).await.unwrap();
    let second = set_run(store, &second, run_status::RUNNING, Some("agent-1"), Some(secs(now, 600))).await;
    let third = create_run(store, &registry, "Succeeded", secs(now, 1)).await;
    RunsWritten { registry, runs: vec![first, second, third] }
}

/// Checks, in the reopened store, what [`runs_before_restart`] wrote.
pub async fn runs_after_restart(store: &dyn MetadataStore, written: &RunsWritten) {
    let reg = &written.registry;
    let listed = store.run_list(reg, &RunFilter::default()).await.unwrap();
    assert_eq!(listed, written.runs.iter().rev().cloned().collect::<Vec<_>>(), "every run, as it was");
    for run in &written.runs {
        assert_eq!(store.run_get(reg, &run.run_id).await.unwrap().as_ref(), Some(run));
    }
    assert!(store.runs_in_progress().await.unwrap().contains(&written.runs[1]));
    let next = create_run(store, reg, run_status::QUEUED, now_micros()).await;
    assert_eq!(next.number, 4, "the numbering survives too");
}

// ---- timer triggers ----

fn tick_of(task: &str, trigger: &str, tick: DateTime<Utc>) -> TimerTick {
    TimerTick { task: task.to_string(), trigger: trigger.to_string(), tick }
}

/// A tick queues its run once: the second claim of the same (task, trigger, tick) creates
/// nothing, even with the task id in another case; another tick, trigger or task is another claim.
pub async fn timer_ticks_queue_once(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let task = format!(
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/r/tasks/{}",
        reg.0
    );
    let now = now_micros();
    let tick = DateTime::from_timestamp(now.timestamp() - now.timestamp() % 60, 0).unwrap();
    let new = new_run(&reg, "ca", Some("nightly"), run_status::QUEUED);
    let first = store
        .run_create_for_tick(&new, &tick_of(&task, "t1", tick), now)
        .await
        .unwrap()
        .expect("the first claim queues");
    assert_eq!((first.run_id.as_str(), &first.task, &first.body), ("ca1", &new.task, &new.body));
    assert_eq!(store.run_get(&reg, "ca1").await.unwrap().as_ref(), Some(&first), "stored as returned");
    for again in [tick_of(&task, "t1", tick), tick_of(&task.to_uppercase(), "t1", tick)] {
        assert_eq!(store.run_create_for_tick(&new, &again, secs(now, 30)).await.unwrap(), None, "{again:?}");
    }
    let runs = store.run_list(&reg, &RunFilter::default()).await.unwrap();
    assert_eq!(runs.len(), 1, "a claimed tick created no run: {runs:?}");
    let others = [
        tick_of(&task, "t1", secs(tick, 60)),
        tick_of(&task, "T1", tick),
        tick_of(&task, "t2", tick),
        tick_of(&format!("{task}-other"), "t1", tick),
    ];
    for (i, other) in others.iter().enumerate() {
        let run = store.run_create_for_tick(&new, other, now).await.unwrap().expect("another claim");
        assert_eq!(run.number, i as u64 + 2, "{other:?}");
    }
    // A claim outlives its run.
    store.registry_purge(&reg).await.unwrap();
    assert_eq!(store.run_create_for_tick(&new, &tick_of(&task, "t1", tick), now).await.unwrap(), None);
    drain_run_queue(store).await;
}

/// Eight replicas seeing the same tick at once: one run.
pub async fn timer_tick_claims_race(store: Arc<dyn MetadataStore>) {
    let reg = fresh_registry();
    let task = format!("tasks/{}", reg.0);
    for round in 0..5 {
        let now = now_micros();
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let racers: Vec<_> = (0..8)
            .map(|_| {
                let (store, barrier, reg, task) = (store.clone(), barrier.clone(), reg.clone(), task.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let new = new_run(&reg, "ca", Some("t"), run_status::QUEUED);
                    store.run_create_for_tick(&new, &tick_of(&task, "t1", secs(now, round)), now).await.unwrap()
                })
            })
            .collect();
        let mut winners = Vec::new();
        for racer in racers {
            winners.extend(racer.await.expect("racer"));
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
    }
    assert_eq!(store.run_list(&reg, &RunFilter::default()).await.unwrap().len(), 5);
    drain_run_queue(&*store).await;
}

/// Sweeping removes the claims of ticks before the cut-off only, and a swept tick can be
/// claimed again.
pub async fn timer_ticks_sweep_old_claims(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let task = format!("tasks/{}", reg.0);
    let old = DateTime::from_timestamp(978_307_200, 0).unwrap(); // 2001-01-01, before any other check's ticks
    let new = new_run(&reg, "ca", Some("t"), run_status::QUEUED);
    let now = now_micros();
    for t in [old, secs(old, 60), secs(old, 120)] {
        assert!(store.run_create_for_tick(&new, &tick_of(&task, "t1", t), now).await.unwrap().is_some());
    }
    let swept = store.timer_ticks_sweep(secs(old, 120)).await.unwrap();
    assert!(swept >= 2, "the two older claims were swept: {swept}");
    assert!(
        store.run_create_for_tick(&new, &tick_of(&task, "t1", old), now).await.unwrap().is_some(),
        "swept: claimable again"
    );
    assert_eq!(
        store.run_create_for_tick(&new, &tick_of(&task, "t1", secs(old, 120)), now).await.unwrap(),
        None,
        "kept"
    );
    drain_run_queue(store).await;
}

// ---- base-image triggers ----

fn task_image(
    registry: &RegistryKey,
    repository: &str,
    tag: &str,
    role: TaskImageRole,
    digest: Option<&str>,
) -> TaskImage {
    TaskImage {
        registry: registry.clone(),
        repository: repository.into(),
        tag: tag.into(),
        role,
        digest: digest.map(str::to_string),
    }
}

/// A task's images are replaced as a whole, found by image whatever the task id's case, and
/// forgotten with an empty list or with either registry.
pub async fn task_images_replace_and_find(store: &dyn MetadataStore) {
    let (home, other) = (fresh_registry(), fresh_registry());
    let task = format!("/subscriptions/s/registries/r/tasks/App-{}", home.0);
    let now = now_micros();
    let first = [
        task_image(&other, "team/base", "1", TaskImageRole::Runtime, Some("sha256:aa")),
        task_image(&home, "team/tools", "2", TaskImageRole::BuildTime, None),
        task_image(&home, "team/app", "1", TaskImageRole::Output, None),
    ];
    store.task_images_set(&task, &home, &first, now).await.unwrap();
    let using = store.task_images_using(&other, "team/base", "1").await.unwrap();
    assert_eq!(using.len(), 1, "{using:?}");
    assert_eq!(
        (using[0].task.as_str(), &using[0].task_registry, &using[0].image),
        (task.to_lowercase().as_str(), &home, &first[0])
    );
    assert!(store.task_images_using(&other, "team/base", "2").await.unwrap().is_empty(), "tags differ");
    assert!(store.task_images_using(&home, "team/base", "1").await.unwrap().is_empty(), "registries differ");
    assert_eq!(store.task_images_of(&task.to_uppercase()).await.unwrap().len(), 3);

    // The next run replaces everything.
    let second = [task_image(&other, "team/base", "2", TaskImageRole::Runtime, Some("sha256:bb"))];
    store.task_images_set(&task.to_uppercase(), &home, &second, now).await.unwrap();
    assert!(store.task_images_using(&other, "team/base", "1").await.unwrap().is_empty());
    let of: Vec<TaskImage> = store.task_images_of(&task).await.unwrap().into_iter().map(|r| r.image).collect();
    assert_eq!(of, second);

    store.task_images_set(&task, &home, &[], now).await.unwrap();
    assert!(store.task_images_of(&task).await.unwrap().is_empty(), "an empty list forgets the task");

    store.task_images_set(&task, &home, &first, now).await.unwrap();
    store.registry_purge(&other).await.unwrap();
    assert!(
        store.task_images_using(&other, "team/base", "1").await.unwrap().is_empty(),
        "purged with the image's registry"
    );
    assert_eq!(store.task_images_of(&task).await.unwrap().len(), 2);
    store.registry_purge(&home).await.unwrap();
    assert!(store.task_images_of(&task).await.unwrap().is_empty(), "purged with the task's registry");
}

fn image_update_run(registry: &RegistryKey, task: &str) -> NewRun {
    NewRun {
        registry: registry.clone(),
        id_prefix: "ca".into(),
        task: Some(task.into()),
        status: run_status::QUEUED.into(),
        body: json!({"properties": {"status": "Queued", "imageUpdateTrigger": {"id": "x"}}}),
    }
}

/// While a task's image-update run is queued, another is not; once it started, the next one
/// is. Other runs of the task (by hand, by a timer) do not hold one back.
pub async fn image_update_runs_coalesce_while_queued(store: &dyn MetadataStore) {
    let reg = fresh_registry();
    let now = now_micros();
    let manual = store.run_create(&new_run(&reg, "ca", Some("app"), run_status::QUEUED), now).await.unwrap();
    let first = store.run_create_for_image_update(&image_update_run(&reg, "app"), now).await.unwrap();
    let first = first.expect("a manual run does not hold back an image-update run");
    assert_eq!(store.run_create_for_image_update(&image_update_run(&reg, "APP"), now).await.unwrap(), None);
    assert!(
        store.run_create_for_image_update(&image_update_run(&reg, "other"), now).await.unwrap().is_some(),
        "another task"
    );
    set_run(store, &first, run_status::RUNNING, Some("agent"), Some(secs(now, 60))).await;
    let next = store.run_create_for_image_update(&image_update_run(&reg, "app"), now).await.unwrap();
    assert!(next.is_some(), "the queued one started: a new push queues again");
    assert_eq!(manual.number, 1);
    let no_task = NewRun { task: None, ..image_update_run(&reg, "app") };
    assert!(store.run_create_for_image_update(&no_task, now).await.is_err(), "a quick run cannot be an image update");
    drain_run_queue(store).await;
}

/// Eight replicas seeing the same push at once: one run.
pub async fn image_update_runs_race(store: Arc<dyn MetadataStore>) {
    let reg = fresh_registry();
    let now = now_micros();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let (store, barrier, reg) = (store.clone(), barrier.clone(), reg.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.run_create_for_image_update(&image_update_run(&reg, "app"), now).await.unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        winners.extend(racer.await.expect("racer"));
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    drain_run_queue(&*store).await;
}
