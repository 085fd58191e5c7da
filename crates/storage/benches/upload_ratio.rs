//! The upload path against its two limits, measured interleaved so that a shared, noisy machine
//! affects all three alike: a durable write alone (write 1 MiB chunks + fdatasync), SHA-256
//! alone, and `upload_append` + `upload_commit` of the same bytes. Prints medians and the ratio
//! the target is stated in: upload / min(sha256, durable write) ≥ 0.9.
//!
//! Run: `CARGO_TARGET_DIR=/work/target-storage cargo bench -p wharf-storage --bench upload_ratio`
//! (`WHARF_BENCH_MIB`, default 256; `WHARF_BENCH_ROUNDS`, default 7; `WHARF_BENCH_DIR`, default /tmp).

use std::io::Write;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wharf_oci::{Digest, DigestAlgorithm, Hasher};
use wharf_storage::conformance::pseudo_random_bytes;
use wharf_storage::fs::FsBlobStore;
use wharf_storage::{BlobStore, ByteStream, UploadId};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let size = env("WHARF_BENCH_MIB", 256) << 20;
    let rounds = env("WHARF_BENCH_ROUNDS", 7);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir_in(std::env::var("WHARF_BENCH_DIR").unwrap_or_else(|_| "/tmp".into())).unwrap();
    let store = FsBlobStore::open(dir.path().join("store")).unwrap();
    let data = Bytes::from(pseudo_random_bytes(3, size));
    let digest = Digest::sha256_of(&data);

    let (mut hash, mut durable, mut upload) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        let mut h = Hasher::new(DigestAlgorithm::Sha256);
        for chunk in data.chunks(1 << 20) {
            h.update(chunk);
        }
        assert_eq!(h.finish(), digest);
        hash.push(t.elapsed());

        let path = dir.path().join("baseline");
        let t = Instant::now();
        let mut f = std::fs::File::create(&path).unwrap();
        for chunk in data.chunks(1 << 20) {
            f.write_all(chunk).unwrap();
        }
        f.sync_data().unwrap();
        durable.push(t.elapsed());
        drop(f);
        std::fs::remove_file(&path).unwrap();

        let t = Instant::now();
        rt.block_on(async {
            let id = UploadId::new();
            store.upload_create(&id, DigestAlgorithm::Sha256).await.unwrap();
            let chunks: Vec<std::io::Result<Bytes>> =
                (0..size).step_by(64 << 10).map(|i| Ok(data.slice(i..(i + (64 << 10)).min(size)))).collect();
            let body: ByteStream = Box::pin(futures::stream::iter(chunks));
            store.upload_append(&id, 0, body, None).await.unwrap();
            store.upload_commit(&id, &digest).await.unwrap();
            store.upload_abort(&id).await.unwrap();
        });
        upload.push(t.elapsed());
        rt.block_on(store.delete(&digest)).unwrap();
    }
    let mbps = |d: Duration| size as f64 / d.as_secs_f64() / 1e6;
    let (h, d, u) = (median(hash), median(durable), median(upload));
    println!("size {} MiB, {rounds} rounds, medians:", size >> 20);
    println!("  sha256 only            {:>8.1} ms  {:>7.0} MB/s", h.as_secs_f64() * 1e3, mbps(h));
    println!("  write + fdatasync only {:>8.1} ms  {:>7.0} MB/s", d.as_secs_f64() * 1e3, mbps(d));
    println!("  upload_append + commit {:>8.1} ms  {:>7.0} MB/s", u.as_secs_f64() * 1e3, mbps(u));
    println!("  ratio to min(limits)   {:>8.2}", mbps(u) / mbps(h).min(mbps(d)));
}
