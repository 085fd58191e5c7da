//! Builds and runs from a source context, end to end on a server as a user starts it: the
//! upload link `listBuildSourceUploadUrl` hands out, the upload in the shape Azure's blob client
//! sends (Put Blob; Put Block and Put Block List), `DockerBuildRequest` and
//! `FileTaskRunRequest` runs of it, the size limit, and git contexts served on loopback.
//!
//! Needs buildah, podman and runc, and git for the git contexts (`.ci/run` installs them); in
//! CI a missing one fails.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Digest as _;

const API: &str = "api-version=2025-03-01-preview";

async fn registry(s: &TestServer, name: &str) -> String {
    s.create_group("rg").await;
    let (st, body) = s.create_registry("rg", name, "Premium").await;
    assert!(st.is_success(), "{body}");
    s.registry_path("rg", name)
}

/// `listBuildSourceUploadUrl`: the upload URL and the relative path.
async fn upload_link(s: &TestServer, reg: &str) -> (String, String) {
    let (st, body) = s.mgmt(Method::POST, &format!("{reg}/listBuildSourceUploadUrl?{API}"), None).await;
    assert_eq!(st, 200, "{body}");
    let url = body["uploadUrl"].as_str().expect("uploadUrl").to_string();
    let relative = body["relativePath"].as_str().expect("relativePath").to_string();
    (url, relative)
}

/// A gzip-compressed tar of `dir`, made by GNU tar.
fn pack(dir: &Path) -> Vec<u8> {
    let out = Command::new("tar").arg("czf").arg("-").arg("-C").arg(dir).arg(".").output().expect("tar");
    assert!(out.status.success(), "tar: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Put Blob as the Azure SDK sends it: no Authorization header, only the link's signature.
async fn put_blob(url: &str, bytes: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .put(url)
        .header("x-ms-blob-type", "BlockBlob")
        .header("x-ms-version", "2026-04-06")
        .header("content-type", "application/octet-stream")
        .body(bytes)
        .send()
        .await
        .unwrap()
}

async fn schedule(s: &TestServer, reg: &str, body: Value) -> (reqwest::StatusCode, Value) {
    s.mgmt(Method::POST, &format!("{reg}/scheduleRun?{API}"), Some(body)).await
}

fn docker_build(images: &[&str], location: &str, dockerfile: &str) -> Value {
    json!({"type": "DockerBuildRequest", "imageNames": images, "isPushEnabled": true, "sourceLocation": location,
        "platform": {"os": "linux", "architecture": "amd64"}, "dockerFilePath": dockerfile,
        "arguments": [{"type": "Argument", "name": "GREETING", "value": "hi-from-arg", "isSecret": false},
                      {"type": "Argument", "name": "TOKEN", "value": "s3cret-build-arg", "isSecret": true}],
        "credentials": {}})
}

/// Files below the server's build-source directory.
fn stored_sources(s: &TestServer) -> Vec<String> {
    fn walk(dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path().display().to_string());
            }
        }
    }
    let mut out = vec![];
    walk(&s.data_dir.join("tasks/sources"), &mut out);
    out
}

#[tokio::test]
async fn an_uploaded_context_is_built_pushed_and_released() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, "srcbuild").await;
    let base = push_busybox(&s, "srcbuild");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ctx.path().join("app")).unwrap();
    std::fs::write(ctx.path().join("app/msg.txt"), "hello from the uploaded context\n").unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!(
            "FROM {base}\nARG GREETING\nCOPY app/msg.txt /msg.txt\nRUN echo \"$GREETING\" >> /msg.txt && cat /msg.txt\nCMD [\"cat\", \"/msg.txt\"]\n"
        ),
    )
    .unwrap();

    let (url, relative) = upload_link(&s, &reg).await;
    let parsed = url::Url::parse(&url).unwrap();
    assert!(parsed.path_segments().unwrap().count() >= 3, "the Azure SDK keeps URLs of three segments or more: {url}");
    assert!(relative.starts_with("source/") && relative.ends_with(".tar.gz"), "{relative}");
    // A link is bound to its upload: a forged signature or another permission is refused.
    for forged in [url.replace("sig=", "sig=0"), url.replace("sp=cw", "sp=r")] {
        let r = put_blob(&forged, b"x".to_vec()).await;
        assert_eq!(r.status(), 403, "{forged}");
        assert_eq!(r.headers()["x-ms-error-code"], "AuthenticationFailed");
    }
    let r = put_blob(&url, pack(ctx.path())).await;
    assert_eq!(r.status(), 201, "az needs 201 for Put Blob: {}", r.text().await.unwrap());

    let (st, run) = schedule(&s, &reg, docker_build(&["team/app/web:{{.Run.ID}}"], &relative, "Dockerfile")).await;
    assert_eq!(st, 200, "{run}");
    let id = run["properties"]["runId"].as_str().unwrap().to_string();
    // One upload serves one run.
    let (st, again) = schedule(&s, &reg, docker_build(&["x:1"], &relative, "Dockerfile")).await;
    assert_eq!((st.as_u16(), again["error"]["code"].as_str()), (400, Some("SourceNotFound")), "{again}");

    let r = run_finished(&s, &reg, &id).await;
    let log = run_log(&s, &reg, &id).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    assert!(log.contains("hello from the uploaded context"), "{log}");
    assert!(log.contains("hi-from-arg"), "build arguments reach the build: {log}");
    assert!(!log.contains("s3cret-build-arg"), "a secret build argument is masked: {log}");
    let images = r["properties"]["outputImages"].as_array().expect("outputImages");
    let image = images.iter().find(|i| i["repository"] == "team/app/web").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(image["tag"], id.as_str());
    let reply = send(
        s.with_creds(s.http_host("srcbuild", Method::HEAD, &format!("/v2/team/app/web/manifests/{id}")))
            .header("accept", format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}")),
    )
    .await;
    assert_eq!(reply.header("docker-content-digest"), image["digest"].as_str(), "{}", reply.text());
    // The run is over: its source is gone from the server.
    let left: Vec<String> = stored_sources(&s).into_iter().filter(|p| p.ends_with(".tar.gz")).collect();
    assert!(left.is_empty(), "the run's source was released: {left:?}");

    // A source that was never uploaded, and a location that is no context, are refused clearly.
    let (st, e) =
        schedule(&s, &reg, docker_build(&["x:1"], "source/0123456789abcdef0123456789abcdef.tar.gz", "Dockerfile"))
            .await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (400, Some("SourceNotFound")), "{e}");
    let (st, e) = schedule(&s, &reg, docker_build(&["x:1"], "ftp://host/x", "Dockerfile")).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (400, Some("InvalidSourceLocation")), "{e}");
    let mut no_context = docker_build(&["x:1"], "", "Dockerfile");
    no_context.as_object_mut().unwrap().remove("sourceLocation");
    let (st, e) = schedule(&s, &reg, no_context).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (400, Some("InvalidRunRequest")), "{e}");
}

#[tokio::test]
async fn a_block_upload_runs_a_task_file_of_the_context() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, "srcblocks").await;
    let base = push_busybox(&s, "srcblocks");
    let ctx = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(ctx.path().join("ci")).unwrap();
    std::fs::write(ctx.path().join("data.txt"), "data travelled in blocks\n").unwrap();
    // Incompressible filler, so that the archive spans several blocks.
    let filler: Vec<u8> = (0..10_000u32).flat_map(|i| sha2::Sha256::digest(i.to_le_bytes())).collect();
    std::fs::write(ctx.path().join("filler.bin"), &filler).unwrap();
    std::fs::write(
        ctx.path().join("ci/task.yaml"),
        format!("version: v1.1.0\nsteps:\n  - cmd: {base} cat data.txt\n  - cmd: {base} sh -c 'echo value is {{{{.Values.word}}}}'\n"),
    )
    .unwrap();
    let archive = pack(ctx.path());
    assert!(archive.len() > 200_000);
    let (url, relative) = upload_link(&s, &reg).await;
    let c = reqwest::Client::new();
    let mut ids = vec![];
    for (i, chunk) in archive.chunks(100_000).enumerate() {
        let id = base64::engine::general_purpose::STANDARD.encode(format!("{:032}", i * 100_000));
        let block_url = format!(
            "{url}&comp=block&blockid={}",
            url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
        );
        let r = c.put(&block_url).header("x-ms-version", "2026-04-06").body(chunk.to_vec()).send().await.unwrap();
        assert_eq!(r.status(), 201, "Put Block: {}", r.text().await.unwrap());
        ids.push(id);
    }
    // A list naming a block that was never sent is refused, and the upload stays uncommitted.
    let bad = "<?xml version='1.0' encoding='utf-8'?>\n<BlockList><Latest>bm9wZQ==</Latest></BlockList>";
    let r = c.put(format!("{url}&comp=blocklist")).body(bad).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-ms-error-code"], "InvalidBlockList");
    let list: String = ids.iter().map(|i| format!("<Latest>{i}</Latest>")).collect();
    let body = format!("<?xml version='1.0' encoding='utf-8'?>\n<BlockList>{list}</BlockList>");
    let r = c
        .put(format!("{url}&comp=blocklist"))
        .header("content-type", "application/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "Put Block List: {}", r.text().await.unwrap());

    let (st, run) = schedule(
        &s,
        &reg,
        json!({"type": "FileTaskRunRequest", "taskFilePath": "ci/task.yaml", "sourceLocation": relative,
            "values": [{"name": "word", "value": "forty-two", "isSecret": false}],
            "platform": {"os": "linux", "architecture": "amd64"}, "credentials": {}}),
    )
    .await;
    assert_eq!(st, 200, "{run}");
    let id = run["properties"]["runId"].as_str().unwrap().to_string();
    let r = run_finished(&s, &reg, &id).await;
    let log = run_log(&s, &reg, &id).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    assert!(log.contains("data travelled in blocks"), "the blocks joined in order: {log}");
    assert!(log.contains("value is forty-two"), "{log}");

    // A task file the context does not have fails the run, saying which.
    let (url, relative) = upload_link(&s, &reg).await;
    assert_eq!(put_blob(&url, pack(ctx.path())).await.status(), 201);
    let (st, run) = schedule(
        &s,
        &reg,
        json!({"type": "FileTaskRunRequest", "sourceLocation": relative, "platform": {"os": "linux", "architecture": "amd64"}}),
    )
    .await;
    assert_eq!(st, 200, "{run}");
    let id = run["properties"]["runId"].as_str().unwrap().to_string();
    let r = run_finished(&s, &reg, &id).await;
    assert_eq!(r["properties"]["status"], "Error", "{r}");
    assert!(r["properties"]["runErrorMessage"].as_str().unwrap().contains("acb.yaml"), "{r}");
}

#[tokio::test]
async fn a_source_over_the_limit_is_refused_before_it_is_stored() {
    let s = TestServer::builder().flags(&["--max-build-source-size", "4096"]).start().await;
    let reg = registry(&s, "srclimit").await;
    // A refused upload closes its connection without reading the body: no pooled connection
    // may be reused after one (it could be closed under the next request).
    let c = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();

    // A declared length over the limit: refused before a byte is read.
    let (url, _) = upload_link(&s, &reg).await;
    let r = put_blob(&url, vec![7u8; 8192]).await;
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["x-ms-error-code"], "RequestBodyTooLarge");
    assert!(r.text().await.unwrap().contains("4096 bytes"), "the error names the limit");
    assert!(stored_sources(&s).is_empty(), "{:?}", stored_sources(&s));

    // No declared length (chunked): cut off at the limit, nothing kept.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..4).map(|_| Ok(vec![1u8; 2048])).collect();
    let r = c
        .put(&url)
        .header("x-ms-blob-type", "BlockBlob")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(stored_sources(&s).is_empty(), "{:?}", stored_sources(&s));

    // Blocks count together.
    let block = |n: u8| format!("{url}&comp=block&blockid=QkxPQ0s{n}");
    assert_eq!(c.put(block(1)).body(vec![0u8; 3000]).send().await.unwrap().status(), 201);
    let r = c.put(block(2)).body(vec![0u8; 3000]).send().await.unwrap();
    assert_eq!(r.status(), 413);
    // An upload within the limit is taken.
    let (url, _) = upload_link(&s, &reg).await;
    assert_eq!(put_blob(&url, vec![1u8; 4096]).await.status(), 201);
}

/// A child process killed when dropped (also when an assertion fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A git repository with `web/Dockerfile` on branch `main`, in `dir/app.git` (bare).
fn git_repo(dir: &Path, dockerfile: &str) -> std::path::PathBuf {
    let work = dir.join("work");
    std::fs::create_dir_all(work.join("web")).unwrap();
    std::fs::write(work.join("web/Dockerfile"), dockerfile).unwrap();
    std::fs::write(work.join("web/msg.txt"), "cloned from git\n").unwrap();
    let git = |args: &[&str], cwd: &Path| {
        let out = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(cwd)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    git(&["init", "-q"], &work);
    git(&["add", "."], &work);
    git(&["commit", "-q", "-m", "first"], &work);
    let bare = dir.join("app.git");
    git(&["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()], dir);
    bare
}

#[tokio::test]
async fn git_contexts_are_cloned_and_local_ones_need_the_operators_leave() {
    if !require_task_engine() || !require_tool("git") {
        return;
    }
    let repos = tempfile::tempdir().unwrap();
    let s = TestServer::builder()
        .flags(&["--task-git-file-root", repos.path().join("allowed").to_str().unwrap()])
        .start()
        .await;
    let reg = registry(&s, "srcgit").await;
    let base = push_busybox(&s, "srcgit");
    let dockerfile = format!("FROM {base}\nCOPY msg.txt /msg.txt\nRUN cat /msg.txt\n");
    std::fs::create_dir_all(repos.path().join("allowed")).unwrap();
    std::fs::create_dir_all(repos.path().join("other")).unwrap();
    let allowed = git_repo(&repos.path().join("allowed"), &dockerfile);
    let other = git_repo(&repos.path().join("other"), &dockerfile);

    // git daemon on loopback: the git:// protocol, as a remote repository.
    let port = free_port();
    let _daemon = Killed(
        Command::new("git")
            .args(["daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", repos.path().join("other").display()))
            .arg(repos.path().join("other"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("git daemon"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let remote = format!("git://127.0.0.1:{port}/app.git#main:web");
    let (st, run) = schedule(
        &s,
        &reg,
        docker_build(&["team/app/git:{{.Run.ID}}", "team/app/git:{{.Run.Commit}}"], &remote, "Dockerfile"),
    )
    .await;
    assert_eq!(st, 200, "{run}");
    let id = run["properties"]["runId"].as_str().unwrap().to_string();
    let r = run_finished(&s, &reg, &id).await;
    let log = run_log(&s, &reg, &id).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    assert!(log.contains("cloned from git"), "{log}");
    // {{.Run.Commit}} is the commit the clone checked out (main's head).
    let head = String::from_utf8(
        Command::new("git").arg("-C").arg(&other).args(["rev-parse", "main"]).output().unwrap().stdout,
    )
    .unwrap();
    let tags: Vec<&str> =
        r["properties"]["outputImages"].as_array().unwrap().iter().filter_map(|i| i["tag"].as_str()).collect();
    assert!(tags.contains(&head.trim()), "{tags:?} has {head}");
    assert!(log.contains(&format!("The source code is at commit {}", head.trim())), "{log}");
    assert!(log.contains(&format!("Cloning the source code from 'git://127.0.0.1:{port}/app.git' at 'main'")), "{log}");

    // file:// below the allowed root runs; elsewhere it is refused, pointing at the setting.
    let local = format!("file://{}#main:web", allowed.display());
    let (st, run) = schedule(&s, &reg, docker_build(&["team/app/local:1"], &local, "Dockerfile")).await;
    assert_eq!(st, 200, "{run}");
    let id = run["properties"]["runId"].as_str().unwrap().to_string();
    let r = run_finished(&s, &reg, &id).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}");
    let refused = format!("file://{}#main:web", other.display());
    let (st, e) = schedule(&s, &reg, docker_build(&["team/app/local:2"], &refused, "Dockerfile")).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (400, Some("InvalidSourceLocation")), "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("--task-git-file-root"), "{e}");

    // A folder the repository lacks fails the run with the reason.
    let missing = format!("file://{}#main:nowhere", allowed.display());
    let (_, run) = schedule(&s, &reg, docker_build(&["team/app/local:3"], &missing, "Dockerfile")).await;
    let r = run_finished(&s, &reg, run["properties"]["runId"].as_str().unwrap()).await;
    assert_eq!(r["properties"]["status"], "Error", "{r}");
    assert!(r["properties"]["runErrorMessage"].as_str().unwrap().contains("no folder 'nowhere'"), "{r}");
}

/// A git repository over HTTP that needs a token (`git http-backend` behind Basic
/// authentication, tests/fixtures/git_http_server.py): a task with the token
/// (`contextAccessToken`, as `--git-access-token` sets it) clones and builds, the token never
/// shown in its log; a run without it fails to clone.
#[tokio::test]
async fn a_git_context_over_http_is_cloned_with_the_tasks_token() {
    if !require_task_engine() || !require_tool("git") || !require_tool("python3") {
        return;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, "srcgittoken").await;
    let base = push_busybox(&s, "srcgittoken");
    let repos = tempfile::tempdir().unwrap();
    git_repo(repos.path(), &format!("FROM {base}\nCOPY msg.txt /msg.txt\nRUN cat /msg.txt\n"));
    let token = "ghp-wharf-test-token-7c1d";
    let port = free_port();
    let mut child = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/git_http_server.py"))
        .arg(repos.path())
        .arg(port.to_string())
        .arg(token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("python3");
    let mut ready = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut ready).unwrap();
    assert_eq!(ready.trim(), "ready");
    let _server = Killed(child);
    let url = format!("http://127.0.0.1:{port}/app.git#main:web");

    let task = json!({"location": "westus", "properties": {
        "platform": {"os": "linux", "architecture": "amd64"}, "credentials": {},
        "step": {"type": "Docker", "imageNames": ["team/app/private:{{.Run.ID}}"], "isPushEnabled": true,
                 "dockerFilePath": "Dockerfile", "contextPath": url, "contextAccessToken": token}}});
    let (st, t) = s.mgmt(Method::PUT, &format!("{reg}/tasks/privatebuild?{API}"), Some(task)).await;
    assert!(st.is_success(), "{t}");
    assert!(!t.to_string().contains(token), "the token is shown only by listDetails: {t}");
    let (st, run) = schedule(
        &s,
        &reg,
        json!({"type": "TaskRunRequest", "taskId": format!("{reg}/tasks/privatebuild"),
               "overrideTaskStepProperties": {"arguments": [], "values": []}}),
    )
    .await;
    assert_eq!(st, 200, "{run}");
    let id = run["properties"]["runId"].as_str().unwrap().to_string();
    let r = run_finished(&s, &reg, &id).await;
    let log = run_log(&s, &reg, &id).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    assert!(log.contains("cloned from git"), "{log}");
    assert!(!log.contains(token), "{log}");
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{token}"));
    assert!(!log.contains(&encoded), "{log}");

    // Without the token the clone is refused.
    let (_, run) = schedule(&s, &reg, docker_build(&["team/app/private:x"], &url, "Dockerfile")).await;
    let r = run_finished(&s, &reg, run["properties"]["runId"].as_str().unwrap()).await;
    assert_eq!(r["properties"]["status"], "Error", "{r}");
}
