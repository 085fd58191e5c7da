//! The filesystem blob store: the shared conformance suite, plus what only a filesystem can
//! show — restarts, interrupted appends, abandoned requests and the on-disk layout.

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use wharf_oci::{Digest, DigestAlgorithm};
use wharf_storage::conformance::{self, chunked_stream, failing_stream, pseudo_random_bytes, read_all};
use wharf_storage::fs::FsBlobStore;
use wharf_storage::{BlobStore, ByteStream, StorageError, UploadId};

fn store(dir: &tempfile::TempDir) -> FsBlobStore {
    FsBlobStore::open(dir.path().to_path_buf()).expect("open blob store")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::blob_store_suite(&store(&dir)).await;
}

#[tokio::test]
async fn conformance_suite_on_a_current_thread_runtime() {
    let dir = tempfile::tempdir().unwrap();
    conformance::blob_store_suite(&store(&dir)).await;
}

#[tokio::test]
async fn layout_is_content_addressed() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let data = Bytes::from_static(b"layout");
    let d = Digest::sha256_of(&data);
    s.put_bytes(&d, data).await.unwrap();
    let path = dir.path().join("blobs/sha256").join(&d.hex()[..2]).join(d.hex());
    assert_eq!(std::fs::read(path).unwrap(), b"layout");
    assert!(std::fs::read_dir(dir.path().join("tmp")).unwrap().next().is_none(), "no temp file left");
}

#[tokio::test]
async fn upload_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random_bytes(7, 2_000_000);
    let digest = Digest::sha256_of(&data);
    let id = UploadId::new();
    {
        let s = store(&dir);
        s.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
        s.upload_append(&id, 0, chunked_stream(&data[..1_234_567], 65_536), None).await.unwrap();
    }
    // A new process: no in-memory hashing state, only what is on disk.
    let s = store(&dir);
    assert_eq!(s.upload_ids().await.unwrap(), vec![id.clone()]);
    assert_eq!(s.upload_size(&id).await.unwrap(), 1_234_567);
    match s.upload_append(&id, 0, chunked_stream(&data, 1000), None).await {
        Err(StorageError::UploadOffsetMismatch { current }) => assert_eq!(current, 1_234_567),
        other => panic!("{other:?}"),
    }
    s.upload_append(&id, 1_234_567, chunked_stream(&data[1_234_567..], 65_536), None).await.unwrap();
    // The commit re-hashes the file: a wrong digest is still caught, the right one accepted.
    assert!(matches!(
        s.upload_commit(&id, &Digest::sha256_of(b"other")).await,
        Err(StorageError::DigestMismatch { .. })
    ));
    assert_eq!(s.upload_commit(&id, &digest).await.unwrap(), data.len() as u64);
    assert_eq!(read_all(s.read(&digest, None).await.unwrap()).await, data);
    assert!(s.upload_ids().await.unwrap().is_empty());
}

#[tokio::test]
async fn empty_session_survives_a_restart_with_its_algorithm() {
    let dir = tempfile::tempdir().unwrap();
    let id = UploadId::new();
    store(&dir).upload_create(&id, DigestAlgorithm::Sha512).await.unwrap();
    let s = store(&dir);
    assert_eq!(s.upload_size(&id).await.unwrap(), 0);
    let data = pseudo_random_bytes(9, 100_000);
    s.upload_append(&id, 0, chunked_stream(&data, 4096), None).await.unwrap();
    let digest = Digest::of(DigestAlgorithm::Sha512, &data);
    assert_eq!(s.upload_commit(&id, &digest).await.unwrap(), 100_000);
}

#[tokio::test]
async fn interrupted_append_then_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random_bytes(11, 3_000_000);
    let digest = Digest::sha256_of(&data);
    let id = UploadId::new();
    {
        let s = store(&dir);
        s.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
        s.upload_append(&id, 0, chunked_stream(&data[..500_000], 65_536), None).await.unwrap();
        let r = s.upload_append(&id, 500_000, failing_stream(&data[500_000..2_900_000], 65_536), None).await;
        assert!(matches!(r, Err(StorageError::ClientStream(_))), "{r:?}");
        // Truncated back to where the failed append started.
        assert_eq!(s.upload_size(&id).await.unwrap(), 500_000);
        let on_disk = std::fs::metadata(dir.path().join("uploads").join(id.as_str()).join("data")).unwrap().len();
        assert_eq!(on_disk, 500_000);
    }
    let s = store(&dir);
    s.upload_append(&id, 500_000, chunked_stream(&data[500_000..], 1 << 20), None).await.unwrap();
    assert_eq!(s.upload_commit(&id, &digest).await.unwrap(), data.len() as u64);
}

/// A request future dropped halfway (the HTTP layer cancels it when the client disconnects)
/// must not leave a half-written append or a stuck session: the append finishes in the
/// background when the body reports the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_append_is_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let data = pseudo_random_bytes(13, 4_000_000);
    let id = UploadId::new();
    s.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
    s.upload_append(&id, 0, chunked_stream(&data[..1000], 1000), None).await.unwrap();

    let (tx, rx) = futures::channel::mpsc::unbounded::<std::io::Result<Bytes>>();
    for chunk in data[1000..3_000_000].chunks(100_000) {
        tx.unbounded_send(Ok(Bytes::copy_from_slice(chunk))).unwrap();
    }
    let body: ByteStream = Box::pin(rx);
    // The caller gives up while the body is still open.
    let r = tokio::time::timeout(Duration::from_millis(200), s.upload_append(&id, 1000, body, None)).await;
    assert!(r.is_err(), "the append cannot finish while the body is open");
    // The connection then fails, as hyper reports a reset.
    tx.unbounded_send(Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"))).unwrap();
    drop(tx);

    // The next request sees the session as before the abandoned append, and completes it.
    // (It waits for the background append to finish rolling back: the session is locked.)
    let size = match s.upload_append(&id, 1000, chunked_stream(&data[1000..], 1 << 20), None).await {
        Ok(n) => n,
        Err(StorageError::UploadOffsetMismatch { current }) => panic!("abandoned append left the session at {current}"),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(size, data.len() as u64);
    assert_eq!(s.upload_commit(&id, &Digest::sha256_of(&data)).await.unwrap(), data.len() as u64);
}

#[tokio::test]
async fn open_removes_temp_leftovers_and_ignores_foreign_upload_entries() {
    let dir = tempfile::tempdir().unwrap();
    drop(store(&dir));
    std::fs::write(dir.path().join("tmp/leftover"), b"partial").unwrap();
    std::fs::create_dir(dir.path().join("uploads/not-a-uuid")).unwrap();
    std::fs::write(dir.path().join("uploads/not-a-uuid/data"), b"x").unwrap();
    let s = store(&dir);
    assert!(!dir.path().join("tmp/leftover").exists());
    assert!(s.upload_ids().await.unwrap().is_empty());
}

#[tokio::test]
async fn reads_stream_in_large_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let data = pseudo_random_bytes(17, 3 << 20);
    let d = Digest::sha256_of(&data);
    s.put_bytes(&d, Bytes::from(data.clone())).await.unwrap();
    let mut stream = s.read(&d, None).await.unwrap();
    let first = stream.next().await.unwrap().unwrap();
    assert!(first.len() >= 64 * 1024, "first chunk only {} bytes", first.len());
}

fn session_file(dir: &tempfile::TempDir, id: &UploadId, name: &str) -> std::path::PathBuf {
    dir.path().join("uploads").join(id.as_str()).join(name)
}

/// The process dies in the middle of an append: its bytes reach the data file but the append
/// is never acknowledged. The next process resumes at the acknowledged size.
#[tokio::test]
async fn bytes_of_an_unacknowledged_append_are_dropped_at_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random_bytes(19, 900_000);
    let id = UploadId::new();
    {
        let s = store(&dir);
        s.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
        s.upload_append(&id, 0, chunked_stream(&data[..300_000], 65_536), None).await.unwrap();
    }
    // What a killed append leaves behind: more bytes, no new record.
    let mut f = std::fs::OpenOptions::new().append(true).open(session_file(&dir, &id, "data")).unwrap();
    std::io::Write::write_all(&mut f, &data[300_000..700_000]).unwrap();
    drop(f);

    let s = store(&dir);
    assert_eq!(s.upload_size(&id).await.unwrap(), 300_000);
    assert_eq!(std::fs::metadata(session_file(&dir, &id, "data")).unwrap().len(), 300_000);
    s.upload_append(&id, 300_000, chunked_stream(&data[300_000..], 100_000), None).await.unwrap();
    assert_eq!(s.upload_commit(&id, &Digest::sha256_of(&data)).await.unwrap(), data.len() as u64);
}

/// A session created before the acknowledged-size record existed kept its size in a `size`
/// file; it is honoured.
#[tokio::test]
async fn a_session_of_the_previous_layout_resumes_at_its_recorded_size() {
    let dir = tempfile::tempdir().unwrap();
    drop(store(&dir));
    let data = pseudo_random_bytes(23, 50_000);
    let id = UploadId::new();
    std::fs::create_dir(dir.path().join("uploads").join(id.as_str())).unwrap();
    std::fs::write(session_file(&dir, &id, "algorithm"), "sha256").unwrap();
    std::fs::write(session_file(&dir, &id, "data"), &data[..30_000]).unwrap();
    std::fs::write(session_file(&dir, &id, "size"), "20000").unwrap();

    let s = store(&dir);
    assert_eq!(s.upload_size(&id).await.unwrap(), 20_000);
    s.upload_append(&id, 20_000, chunked_stream(&data[20_000..], 7_000), None).await.unwrap();
    assert_eq!(s.upload_commit(&id, &Digest::sha256_of(&data)).await.unwrap(), 50_000);
}

/// A record with no valid slot (torn at creation) means nothing was acknowledged.
#[tokio::test]
async fn a_session_whose_record_is_unreadable_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let id = UploadId::new();
    store(&dir).upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
    std::fs::write(session_file(&dir, &id, "data"), b"bytes nobody acknowledged").unwrap();
    std::fs::write(session_file(&dir, &id, "acked"), [0u8; 128]).unwrap();
    let s = store(&dir);
    assert_eq!(s.upload_size(&id).await.unwrap(), 0);
    assert_eq!(s.upload_commit(&id, &Digest::sha256_of(b"")).await.unwrap(), 0);
}

/// Issue 10 item 8, on disk: the last bytes of an upload whose digest is wrong are not kept —
/// not in the session's size, not in its file, not after a restart — and the session resumes
/// from where it was.
#[tokio::test]
async fn a_refused_final_request_leaves_the_session_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random_bytes(29, 2_500_000);
    let digest = Digest::sha256_of(&data);
    let id = UploadId::new();
    {
        let s = store(&dir);
        s.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
        s.upload_append(&id, 0, chunked_stream(&data[..1_000_000], 65_536), None).await.unwrap();
        let wrong = Digest::sha256_of(b"wrong");
        let r =
            s.upload_finish(&id, 1_000_000, chunked_stream(&data[1_000_000..2_000_000], 65_536), None, &wrong).await;
        assert!(matches!(r, Err(StorageError::DigestMismatch { .. })), "{r:?}");
        assert_eq!(s.upload_size(&id).await.unwrap(), 1_000_000);
        assert_eq!(std::fs::read(session_file(&dir, &id, "data")).unwrap(), &data[..1_000_000]);
    }
    let s = store(&dir);
    assert_eq!(s.upload_size(&id).await.unwrap(), 1_000_000);
    let n = s.upload_finish(&id, 1_000_000, chunked_stream(&data[1_000_000..], 65_536), None, &digest).await.unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(read_all(s.read(&digest, None).await.unwrap()).await, data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_across_read_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let chunk = wharf_storage::fs::READ_CHUNK_BYTES as u64;
    let data = pseudo_random_bytes(31, (3 * chunk + 4321) as usize);
    let d = Digest::sha256_of(&data);
    s.put_bytes(&d, Bytes::from(data.clone())).await.unwrap();
    let len = data.len() as u64;
    for (start, end) in [
        (0, len),
        (1, len),
        (chunk - 1, chunk + 1),
        (chunk, 2 * chunk),
        (chunk + 7, 3 * chunk + 9),
        (len - 1, len),
        (0, 0),
    ] {
        let got = read_all(s.read(&d, Some(start..end)).await.unwrap()).await;
        assert_eq!(got, data[start as usize..end as usize], "range {start}..{end}");
    }
    // Every chunk but the last is full size.
    let mut stream = s.read(&d, None).await.unwrap();
    let mut sizes = Vec::new();
    while let Some(c) = stream.next().await {
        sizes.push(c.unwrap().len() as u64);
    }
    assert_eq!(sizes, vec![chunk, chunk, chunk, 4321]);
}

#[tokio::test]
async fn a_blob_file_shorter_than_the_range_asked_fails_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let data = pseudo_random_bytes(37, 100_000);
    let d = Digest::sha256_of(&data);
    s.put_bytes(&d, Bytes::from(data.clone())).await.unwrap();
    let path = dir.path().join("blobs/sha256").join(&d.hex()[..2]).join(d.hex());
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(60_000).unwrap();
    // Either the read fails at once (the first chunk comes with the opening) or the stream does.
    for range in [0..100_000, 1..100_000] {
        let failed = match s.read(&d, Some(range.clone())).await {
            Err(_) => true,
            Ok(mut stream) => {
                let mut failed = false;
                while let Some(c) = stream.next().await {
                    failed |= c.is_err();
                }
                failed
            }
        };
        assert!(failed, "a short file must not end the body of {range:?} quietly");
    }
}

/// Two requests racing to be the first to touch a session after a restart: it is recovered
/// once, exactly one append wins, and the content is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_requests_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = pseudo_random_bytes(41, 3_000_000);
    let id = UploadId::new();
    {
        let s = store(&dir);
        s.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
        s.upload_append(&id, 0, chunked_stream(&data[..1_000_000], 65_536), None).await.unwrap();
    }
    let s = store(&dir);
    let (a, b) = futures::join!(
        s.upload_append(&id, 1_000_000, chunked_stream(&data[1_000_000..], 4096), None),
        s.upload_append(&id, 1_000_000, chunked_stream(&data[1_000_000..], 4096), None),
    );
    let outcomes = [a, b];
    let won = outcomes.iter().filter(|r| matches!(r, Ok(3_000_000))).count();
    let lost =
        outcomes.iter().filter(|r| matches!(r, Err(StorageError::UploadOffsetMismatch { current: 3_000_000 }))).count();
    assert_eq!((won, lost), (1, 1), "{outcomes:?}");
    assert_eq!(s.upload_commit(&id, &Digest::sha256_of(&data)).await.unwrap(), 3_000_000);
}
