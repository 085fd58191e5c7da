//! Storage engine benchmarks: a 256 MiB upload streamed through `upload_append` + `upload_commit`
//! at once and in 16 MiB acknowledged appends (with the two limits it is measured against:
//! hashing alone and a durable write alone), reading it back, and
//! `manifest_get` by tag on SQLite, one at a time and 32 concurrent on two worker threads.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-storage cargo bench -p wharf-storage`.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use wharf_oci::{Digest, DigestAlgorithm, Hasher, Reference, RepositoryName, Tag};
use wharf_storage::conformance::pseudo_random_bytes;
use wharf_storage::fs::FsBlobStore;
use wharf_storage::sqlite::{SqliteMetadataStore, SqliteOptions, Synchronous};
use wharf_storage::{BlobStore, ByteStream, MetadataStore, NewManifest, RegistryKey, UploadId};

const UPLOAD_BYTES: usize = 256 << 20;
/// Roughly what hyper hands over per body frame.
const CLIENT_CHUNK: usize = 64 << 10;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn body(data: &Bytes) -> ByteStream {
    let chunks: Vec<std::io::Result<Bytes>> =
        (0..data.len()).step_by(CLIENT_CHUNK).map(|i| Ok(data.slice(i..(i + CLIENT_CHUNK).min(data.len())))).collect();
    Box::pin(futures::stream::iter(chunks))
}

fn upload(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir_in(std::env::var("WHARF_BENCH_DIR").unwrap_or_else(|_| "/tmp".into())).unwrap();
    let store = FsBlobStore::open(dir.path().join("blobs")).unwrap();
    let data = Bytes::from(pseudo_random_bytes(1, UPLOAD_BYTES));
    let digest = Digest::sha256_of(&data);

    let mut g = c.benchmark_group("upload_256MiB");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Bytes(UPLOAD_BYTES as u64));
    g.bench_function("append_commit", |b| {
        b.iter(|| {
            rt.block_on(async {
                let id = UploadId::new();
                store.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
                store.upload_append(&id, 0, body(&data), None).await.unwrap();
                store.upload_commit(&id, &digest).await.unwrap();
                store.upload_abort(&id).await.unwrap();
                store.delete(&digest).await.unwrap();
            })
        })
    });
    // A chunked push: one acknowledged (durable) append per 16 MiB PATCH, then a final PUT
    // without a body (`upload_finish` with an empty body), as the server does for `PATCH`…`PUT`.
    g.bench_function("append_16MiB_chunks_commit", |b| {
        b.iter(|| {
            rt.block_on(async {
                let id = UploadId::new();
                store.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
                let mut at = 0usize;
                for part in data.chunks(16 << 20) {
                    let part = data.slice_ref(part);
                    at = store.upload_append(&id, at as u64, body(&part), Some(part.len() as u64)).await.unwrap()
                        as usize;
                }
                store.upload_finish(&id, at as u64, body(&Bytes::new()), None, &digest).await.unwrap();
                store.upload_abort(&id).await.unwrap();
                store.delete(&digest).await.unwrap();
            })
        })
    });
    g.bench_function("append_only", |b| {
        b.iter(|| {
            rt.block_on(async {
                let id = UploadId::new();
                store.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
                store.upload_append(&id, 0, body(&data), None).await.unwrap();
                store.upload_abort(&id).await.unwrap();
            })
        })
    });
    g.bench_function("baseline_write_only", |b| {
        let path = dir.path().join("baseline");
        b.iter(|| {
            let mut f = std::fs::File::create(&path).unwrap();
            for chunk in data.chunks(1 << 20) {
                f.write_all(chunk).unwrap();
            }
            drop(f);
            std::fs::remove_file(&path).unwrap();
        })
    });
    g.bench_function("read_back", |b| {
        rt.block_on(store.put_bytes(&digest, data.clone())).unwrap();
        b.iter(|| {
            rt.block_on(async {
                let mut s = store.read(&digest, None).await.unwrap();
                let mut n = 0;
                while let Some(chunk) = s.next().await {
                    n += chunk.unwrap().len();
                }
                assert_eq!(n, UPLOAD_BYTES);
            })
        });
        rt.block_on(store.delete(&digest)).unwrap();
    });
    g.bench_function("baseline_sha256_only", |b| {
        b.iter(|| {
            let mut h = Hasher::new(DigestAlgorithm::Sha256);
            for chunk in data.chunks(1 << 20) {
                h.update(chunk);
            }
            assert_eq!(h.finish(), digest);
        })
    });
    g.bench_function("baseline_write_fsync_only", |b| {
        let path = dir.path().join("baseline");
        b.iter(|| {
            let mut f = std::fs::File::create(&path).unwrap();
            for chunk in data.chunks(1 << 20) {
                f.write_all(chunk).unwrap();
            }
            f.sync_data().unwrap();
            drop(f);
            std::fs::remove_file(&path).unwrap();
        })
    });
    g.finish();
}

fn manifest_get(c: &mut Criterion) {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteMetadataStore::open(&dir.path().join("meta.db")).unwrap());
    let reg = RegistryKey("bench".into());
    let repo = RepositoryName::parse("library/app").unwrap();
    rt.block_on(async {
        // A realistic neighbourhood: several repositories, many tags.
        for r in 0..20 {
            let repo = RepositoryName::parse(&format!("library/app{}", if r == 0 { String::new() } else { r.to_string() })).unwrap();
            let layer = Digest::sha256_of(format!("layer{r}").as_bytes());
            store.blob_record(&layer, 1000).await.unwrap();
            store.blob_link(&reg, &repo, &layer, 1000).await.unwrap();
            for t in 0..50 {
                let bytes = Bytes::from(format!(
                    r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[{{"digest":"{layer}","size":1000}}],"n":{t}{}}}"#,
                    " ".repeat(1500)
                ));
                let m = NewManifest {
                    digest: Digest::sha256_of(&bytes),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    bytes,
                    artifact_type: None,
                    subject: None,
                    annotations: None,
                    blob_refs: vec![layer.clone()],
                    manifest_refs: vec![],
                    architecture: Some("amd64".into()),
                    os: Some("linux".into()),
                    tag: Some(Tag::parse(&format!("v{t}")).unwrap()),
                };
                store.manifest_put(&reg, &repo, &m).await.unwrap();
            }
        }
    });
    let reference = Reference::Tag(Tag::parse("v25").unwrap());

    let mut g = c.benchmark_group("manifest_get_by_tag");
    g.throughput(Throughput::Elements(1));
    g.bench_function("sequential", |b| {
        b.iter(|| rt.block_on(store.manifest_get(&reg, &repo, &reference)).unwrap().unwrap())
    });
    const BATCH: usize = 2000;
    for concurrency in [8usize, 32] {
        g.throughput(Throughput::Elements(BATCH as u64));
        g.bench_with_input(BenchmarkId::new("concurrent", concurrency), &concurrency, |b, &concurrency| {
            b.iter(|| {
                rt.block_on(async {
                    let n = futures::stream::iter(0..BATCH)
                        .map(|_| {
                            let (store, reg, repo, reference) =
                                (store.clone(), reg.clone(), repo.clone(), reference.clone());
                            tokio::spawn(
                                async move { store.manifest_get(&reg, &repo, &reference).await.unwrap().unwrap() },
                            )
                        })
                        .buffer_unordered(concurrency)
                        .count()
                        .await;
                    assert_eq!(n, BATCH);
                })
            })
        });
    }
    g.finish();
}

/// One manifest PUT (new content, moving a tag): the write path, with each durability setting.
fn manifest_put(c: &mut Criterion) {
    let rt = runtime();
    let mut g = c.benchmark_group("manifest_put");
    g.throughput(Throughput::Elements(1));
    for (label, synchronous) in [("sync_full", Synchronous::Full), ("sync_normal", Synchronous::Normal)] {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions { synchronous, ..SqliteOptions::default() };
        let store = SqliteMetadataStore::open_with(&dir.path().join("meta.db"), options).unwrap();
        let reg = RegistryKey("bench".into());
        let repo = RepositoryName::parse("library/app").unwrap();
        let layer = Digest::sha256_of(b"layer");
        rt.block_on(store.blob_link(&reg, &repo, &layer, 1000)).unwrap();
        let mut n = 0u64;
        g.bench_function(label, |b| {
            b.iter(|| {
                n += 1;
                let bytes = Bytes::from(format!(r#"{{"schemaVersion":2,"layers":["{layer}"],"n":{n}}}"#));
                let m = NewManifest {
                    digest: Digest::sha256_of(&bytes),
                    media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                    bytes,
                    artifact_type: None,
                    subject: None,
                    annotations: None,
                    blob_refs: vec![layer.clone()],
                    manifest_refs: vec![],
                    architecture: None,
                    os: None,
                    tag: Some(Tag::parse("latest").unwrap()),
                };
                rt.block_on(store.manifest_put(&reg, &repo, &m)).unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, upload, manifest_get, manifest_put);
criterion_main!(benches);
