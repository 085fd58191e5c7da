//! `wharf admin fsck` as an operator runs it (issue 10 item 7): it refuses a data directory that
//! a running server holds (and so does a second server), reports a planted problem with what
//! `--repair` does, repairs it, and then reports the directory clean. The checks themselves are
//! tested in `crates/storage/tests/fsck.rs`; the crash test runs fsck after its kills.
mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::*;

fn wharf(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wharf")).args(args).arg("--data-dir").arg(data_dir).output().expect("run wharf")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

#[tokio::test]
async fn fsck_refuses_a_directory_a_server_holds_and_so_does_a_second_server() {
    let s = TestServer::start().await;
    let out = wharf(&["admin", "fsck"], &s.data_dir);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is in use by another Wharf process"), "{}", text(&out));
    let out = wharf(&["admin", "fsck", "--repair"], &s.data_dir);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let second = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&s.data_dir)
        .output()
        .expect("run a second wharf serve");
    assert!(!second.status.success(), "a second server started on a held directory");
    assert!(text(&second).contains("is in use by another Wharf process"), "{}", text(&second));

    // Once the server is gone (even killed), the directory is free.
    s.kill9();
    let out = wharf(&["admin", "fsck"], &s.data_dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("No problems found."), "{}", text(&out));
}

#[tokio::test]
async fn fsck_reports_repairs_and_then_finds_the_directory_clean() {
    let s = TestServer::start().await;
    let reg = s.registry("fsckreg").await;
    reg.push_image("app", "v1", "fsck").await;
    s.kill9();
    // A blob file that no record knows, written an hour ago.
    let orphan = b"bytes nobody recorded";
    let d = sha256(orphan);
    let hex = d.strip_prefix("sha256:").unwrap();
    let dir = s.data_dir.join("blobs/blobs/sha256").join(&hex[..2]);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(hex), orphan).unwrap();
    let f = std::fs::File::options().write(true).open(dir.join(hex)).unwrap();
    f.set_modified(SystemTime::now() - Duration::from_secs(3600)).unwrap();

    let out = wharf(&["admin", "fsck"], &s.data_dir);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report = text(&out);
    assert!(report.contains("read-only"), "{report}");
    assert!(report.contains(&format!("blob file {d}")) && report.contains("is known to no record"), "{report}");
    assert!(report.contains("--repair: delete it"), "{report}");
    assert!(report.contains("1 problem found; --repair fixes 1 of them."), "{report}");
    assert!(dir.join(hex).exists(), "a check changes nothing");

    let out = wharf(&["admin", "fsck", "--repair"], &s.data_dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("repaired: deleted it"), "{}", text(&out));
    assert!(text(&out).contains("Repaired 1 problem; none remain."), "{}", text(&out));
    assert!(!dir.join(hex).exists());

    let out = wharf(&["admin", "fsck"], &s.data_dir);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("No problems found."), "{}", text(&out));
    // The image pushed before is still whole after the repair.
    let s = TestServer::builder().data_dir(&s.data_dir).start().await;
    let r = send(s.http(reqwest::Method::GET, "/v2/fsckreg/app/manifests/v1").header("accept", OCI_MANIFEST)).await;
    assert_eq!(r.status, reqwest::StatusCode::OK);
}

#[test]
fn fsck_refuses_what_is_not_a_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out = wharf(&["admin", "fsck"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not a Wharf data directory"), "{}", text(&out));
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "fsck created nothing");
}
