//! `acr build` and `acr run <context>` against the fake ACR: the requests in order, the
//! uploaded archive's members, the Put Blob and block uploads as the blob SDK sends them,
//! and the scheduleRun bodies key for key, in az's order.

use std::io::Read;
use std::path::Path;

use clap::Parser;
use serde_json::{Value, json};

use super::fake_acr::*;
use super::*;
use crate::blob_upload::Limits;

#[derive(Parser)]
struct BuildCli {
    #[command(flatten)]
    args: AcrBuildArgs,
}

fn build_args(argv: &[&str]) -> AcrBuildArgs {
    BuildCli::try_parse_from(std::iter::once("build").chain(argv.iter().copied())).unwrap().args
}

fn run_args(argv: &[&str]) -> AcrRunArgs {
    RunCli::try_parse_from(std::iter::once("run").chain(argv.iter().copied())).unwrap().args
}

const UPLOAD_URL_PATH: &str = "/acct/source/202612/upload-1.tar.gz?sv=2026-04-06&sig=s%2Fig";

fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, content).unwrap();
}

/// A context with a Dockerfile, an app file, a `.dockerignore`d secret and a `.git`.
fn context() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "Dockerfile", "FROM busybox\nCOPY . /ctx\n");
    write(dir.path(), "app.txt", "app");
    write(dir.path(), "secret.txt", "hunter2");
    write(dir.path(), "task.yaml", "version: v1.1.0\nsteps:\n  - cmd: busybox ls\n");
    write(dir.path(), ".dockerignore", "secret.txt\n");
    write(dir.path(), ".git/HEAD", "ref: refs/heads/main\n");
    dir
}

/// The names and contents of the members of the uploaded gzip tar.
fn uploaded_members(acr: &Shared) -> Vec<(String, Vec<u8>)> {
    let bytes = acr.lock().unwrap().uploaded.clone().expect("nothing was uploaded");
    let mut a = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
            let mut body = Vec::new();
            e.read_to_end(&mut body).unwrap();
            (name, body)
        })
        .collect()
}

fn request(acr: &Shared, line: &str) -> Req {
    let a = acr.lock().unwrap();
    a.requests.iter().find(|r| r.line() == line).cloned().unwrap_or_else(|| panic!("{line} was not sent"))
}

fn schedule_run(acr: &Shared) -> Value {
    sent(acr, &format!("POST {REG}/scheduleRun?api-version=2025-03-01-preview"))
}

fn is_hex_dockerfile(name: &str, suffix: &str) -> bool {
    name.strip_suffix(suffix)
        .and_then(|h| h.strip_suffix('_'))
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
}

#[tokio::test]
async fn build_packs_uploads_and_queues_the_docker_build_request() {
    let ctx = context();
    let (acr, client) =
        fake(Acr { log: b"Step 1/2 : FROM busybox\r\n".to_vec(), complete: Some("successful"), ..Default::default() })
            .await;
    let args = build_args(&["-r", "myregistry", "-t", "app:{{.Run.ID}}", ctx.path().to_str().unwrap()]);
    assert!(build::acr_build_with(&client, args).await.unwrap().is_none());

    let l = lines(&acr);
    assert_eq!(
        l[..5],
        with_lookup(&[
            "POST REG/listBuildSourceUploadUrl?api-version=2025-03-01-preview",
            &format!("PUT {UPLOAD_URL_PATH}"),
            "POST REG/scheduleRun?api-version=2025-03-01-preview",
        ])[..]
    );
    assert_eq!(l[5], format!("POST {REG}/runs/ca1/listLogSasUrl?api-version=2025-03-01-preview"));
    assert!(l.iter().any(|x| x.starts_with("GET /acct/logs/ca1/")));

    // The Put Blob, as the SDK sends it: no token, the blob type, the service version.
    let put = request(&acr, &format!("PUT {UPLOAD_URL_PATH}"));
    assert!(!put.authorized, "the management token never goes to the blob endpoint");
    assert_eq!(put.header("x-ms-blob-type"), Some("BlockBlob"));
    assert_eq!(put.header("x-ms-version"), Some("2026-04-06"));
    assert_eq!(put.header("content-type"), Some("application/octet-stream"));
    assert_eq!(put.header("content-length"), Some(put.raw.len().to_string().as_str()));

    // The archive: the context without the ignored secret and .git, plus the Dockerfile copy.
    let members = uploaded_members(&acr);
    let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..5], [".dockerignore", "Dockerfile", "app.txt", "task.yaml", names[4]]);
    assert_eq!(names.len(), 5, "{names:?}");
    assert!(is_hex_dockerfile(names[4], "Dockerfile"), "{names:?}");
    assert_eq!(members[4].1, b"FROM busybox\nCOPY . /ctx\n");
    assert!(!names.iter().any(|n| n.contains("secret") || n.contains(".git") || n.starts_with('/')));

    // The body, key for key in az's order.
    let body = schedule_run(&acr);
    let expected = format!(
        r#"{{"type":"DockerBuildRequest","imageNames":["app:{{{{.Run.ID}}}}"],"isPushEnabled":true,"sourceLocation":"{RELATIVE_PATH}","platform":{{"os":"linux","architecture":"amd64"}},"dockerFilePath":"{}","arguments":[],"credentials":{{}}}}"#,
        names[4]
    );
    assert_eq!(body.to_string(), expected);
}

#[tokio::test]
async fn build_flag_variants() {
    let ctx = context();
    let dir = ctx.path().to_str().unwrap();

    // --no-push without -t: no image names, no push; --no-wait stops after scheduleRun.
    let (acr, client) = fake(Acr::default()).await;
    build::acr_build_with(&client, build_args(&["-r", "myregistry", "--no-push", "--no-wait", dir])).await.unwrap();
    let b = schedule_run(&acr);
    assert_eq!(b["isPushEnabled"], json!(false));
    assert!(b.get("imageNames").is_none());
    assert!(lines(&acr).last().unwrap().contains("/scheduleRun?"), "--no-wait: {:?}", lines(&acr));

    // No -t and no --no-push: az warns and does not push either.
    let (acr, client) = fake(Acr::default()).await;
    build::acr_build_with(&client, build_args(&["-r", "myregistry", "--no-wait", dir])).await.unwrap();
    assert_eq!(schedule_run(&acr)["isPushEnabled"], json!(false));
    let a = build_args(&["-r", "myregistry", dir]);
    assert_eq!(body::push_enabled(&a).1, ["'--image or -t' is not provided. Skipping image push after build."]);
    assert!(body::push_enabled(&build_args(&["-r", "r", "--no-push", dir])).1.is_empty());

    // Everything at once.
    let (acr, client) = fake(Acr::default()).await;
    let args = build_args(&[
        "-r",
        "myregistry",
        "-t",
        "a",
        "-t",
        "b",
        "--platform",
        "linux/arm64/v8",
        "--build-arg",
        "A=1",
        "--secret-build-arg",
        "S=2",
        "--target",
        "final",
        "--timeout",
        "600",
        "--no-wait",
        dir,
    ]);
    build::acr_build_with(&client, args).await.unwrap();
    let b = schedule_run(&acr);
    let file = b["dockerFilePath"].as_str().unwrap().to_string();
    assert_eq!(
        b.to_string(),
        json!({"type": "DockerBuildRequest", "imageNames": ["a", "b"], "isPushEnabled": true,
               "sourceLocation": RELATIVE_PATH,
               "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
               "dockerFilePath": file, "timeout": 600,
               "arguments": [{"type": "Argument", "name": "A", "value": "1", "isSecret": false},
                             {"type": "Argument", "name": "S", "value": "2", "isSecret": true}],
               "target": "final", "credentials": {}})
        .to_string()
    );

    // The source registry's identity and login mode.
    let (acr, client) = fake(Acr::default()).await;
    build::acr_build_with(&client, build_args(&["-r", "myregistry", "--source-acr-auth-id", "--no-wait", dir]))
        .await
        .unwrap();
    assert_eq!(schedule_run(&acr)["credentials"], json!({"sourceRegistry": {"identity": "[caller]"}}));
    let (acr, client) = fake(Acr::default()).await;
    build::acr_build_with(&client, build_args(&["-r", "myregistry", "--auth-mode", "Default", "--no-wait", dir]))
        .await
        .unwrap();
    assert_eq!(schedule_run(&acr)["credentials"], json!({"sourceRegistry": {"loginMode": "Default"}}));

    // --no-logs: the run is polled and printed.
    let (acr, client) = fake(Acr { run_statuses: vec!["Running", "Succeeded"], ..Default::default() }).await;
    let out = build::acr_build_with(&client, build_args(&["-r", "myregistry", "-t", "a", "--no-logs", dir]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out["status"], json!("Succeeded"));
    let polls = lines(&acr).iter().filter(|l| l.starts_with(&format!("GET {REG}/runs/ca1?"))).count();
    assert_eq!(polls, 2);
}

#[tokio::test]
async fn build_with_a_dockerfile_from_elsewhere_a_remote_context_and_a_local_tarball() {
    let ctx = context();
    let elsewhere = tempfile::tempdir().unwrap();
    write(elsewhere.path(), "Dockerfile.prod", "FROM scratch\n");
    let prod = elsewhere.path().join("Dockerfile.prod");
    let (acr, client) = fake(Acr::default()).await;
    let args =
        build_args(&["-r", "myregistry", "-f", prod.to_str().unwrap(), "--no-wait", ctx.path().to_str().unwrap()]);
    build::acr_build_with(&client, args).await.unwrap();
    let file = schedule_run(&acr)["dockerFilePath"].as_str().unwrap().to_string();
    assert!(is_hex_dockerfile(&file, "Dockerfile.prod"), "{file}");
    let members = uploaded_members(&acr);
    assert_eq!(members.last().unwrap(), &(file, b"FROM scratch\n".to_vec()));

    // A git URL is sent as it is: nothing is packed or uploaded.
    let (acr, client) = fake(Acr::default()).await;
    let url = "https://github.com/x/y.git#main:src";
    build::acr_build_with(&client, build_args(&["-r", "myregistry", "-t", "a", "--no-wait", url])).await.unwrap();
    assert_eq!(lines(&acr), with_lookup(&["POST REG/scheduleRun?api-version=2025-03-01-preview"]));
    let b = schedule_run(&acr);
    assert_eq!((b["sourceLocation"].as_str(), b["dockerFilePath"].as_str()), (Some(url), Some("Dockerfile")));

    // A local .tar.gz is uploaded byte for byte; -f names the Dockerfile inside it.
    let tarball = elsewhere.path().join("ctx.tar.gz");
    std::fs::write(&tarball, b"not really gzip, and that is the server's business").unwrap();
    let (acr, client) = fake(Acr::default()).await;
    let args = build_args(&["-r", "myregistry", "-f", "docker/Dockerfile", "--no-wait", tarball.to_str().unwrap()]);
    build::acr_build_with(&client, args).await.unwrap();
    assert_eq!(
        acr.lock().unwrap().uploaded.as_deref(),
        Some(&b"not really gzip, and that is the server's business"[..])
    );
    let b = schedule_run(&acr);
    assert_eq!(
        (b["sourceLocation"].as_str(), b["dockerFilePath"].as_str()),
        (Some(RELATIVE_PATH), Some("docker/Dockerfile"))
    );
}

#[tokio::test]
async fn build_refusals_come_before_any_upload() {
    let ctx = context();
    // /dev/null is a local file, not a context, for build.
    let (acr, client) = fake(Acr::default()).await;
    let err = build::acr_build_with(&client, build_args(&["-r", "myregistry", "/dev/null"])).await.unwrap_err();
    assert_eq!(err.to_string(), "Source location should be a local directory path or remote URL.");
    assert_eq!(err.exit_code(), 1);
    assert_eq!(lines(&acr), with_lookup(&[]));

    let empty = tempfile::tempdir().unwrap();
    let (acr, client) = fake(Acr::default()).await;
    let err = build::acr_build_with(&client, build_args(&["-r", "myregistry", empty.path().to_str().unwrap()]))
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), format!("Unable to find '{}'.", empty.path().join("Dockerfile").display()));
    assert_eq!(lines(&acr), with_lookup(&[]));

    let (acr, client) = fake(Acr::default()).await;
    let args = build_args(&["-r", "myregistry", "--platform", "plan9/amd64", ctx.path().to_str().unwrap()]);
    let err = build::acr_build_with(&client, args).await.unwrap_err();
    assert!(err.to_string().contains("'plan9' is not a valid value for OS"), "{err}");
    assert_eq!(lines(&acr), with_lookup(&[]));

    let (acr, client) = fake(Acr::default()).await;
    let err = build::acr_build_with(&client, build_args(&["-r", "myregistry", "./no/such/dir"])).await.unwrap_err();
    assert_eq!(err.to_string(), "'./no/such/dir' doesn't exist.");
    assert_eq!(lines(&acr), with_lookup(&[]));
}

#[tokio::test]
async fn a_refused_upload_shows_the_storage_message_and_queues_nothing() {
    let ctx = context();
    let (acr, client) = fake(Acr {
        upload_error: Some((413, "RequestBodyTooLarge", "The source archive is larger than the limit of 1 MiB.")),
        ..Default::default()
    })
    .await;
    let args = build_args(&["-r", "myregistry", "-t", "a", ctx.path().to_str().unwrap()]);
    let err = build::acr_build_with(&client, args).await.unwrap_err();
    assert_eq!(err.to_string(), "The source archive is larger than the limit of 1 MiB.\nErrorCode:RequestBodyTooLarge");
    assert_eq!(err.exit_code(), 1);
    assert!(!lines(&acr).iter().any(|l| l.contains("scheduleRun")));
}

#[tokio::test]
async fn big_archives_go_up_in_blocks_then_a_block_list() {
    let (acr, client) = fake(Acr::default()).await;
    let reg = registry(&client, &RegistryRef { registry: "myregistry".into(), resource_group: None }).await.unwrap();
    let file = tempfile::NamedTempFile::new().unwrap();
    let bytes: Vec<u8> = (0..10_240u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(file.path(), &bytes).unwrap();
    let limits = Limits { single_put_max: 4096, block_size: 3000 };
    let relative = source::upload_with(&client, &reg, file.path(), limits).await.unwrap();
    assert_eq!(relative, RELATIVE_PATH);
    assert_eq!(acr.lock().unwrap().uploaded.as_deref(), Some(&bytes[..]), "the blocks add up to the file");

    let puts: Vec<Req> = acr.lock().unwrap().requests.iter().filter(|r| r.method == "PUT").cloned().collect();
    assert_eq!(puts.len(), 5, "4 blocks (3000, 3000, 3000, 1240 bytes) and the list");
    let mut ids = vec![];
    for (put, (offset, len)) in puts[..4].iter().zip([(0u64, 3000usize), (3000, 3000), (6000, 3000), (9000, 1240)]) {
        let query = put.target.split_once('?').unwrap().1;
        let (op, sas) = query.split_once("&sv=").unwrap();
        assert_eq!(sas, "2026-04-06&sig=s%2Fig", "the SAS query comes after the operation");
        let id = op.strip_prefix("comp=block&blockid=").unwrap();
        let decoded = percent_encoding::percent_decode_str(id).decode_utf8().unwrap().to_string();
        assert_eq!(decoded, crate::blob_upload::block_id(offset));
        assert_eq!(put.raw.len(), len);
        assert_eq!(put.header("x-ms-blob-type"), None);
        assert!(!put.authorized);
        ids.push(decoded);
    }
    assert_eq!(puts[4].target, format!("/acct/source/202612/upload-1.tar.gz?comp=blocklist&sv=2026-04-06&sig=s%2Fig"));
    assert_eq!(puts[4].header("content-type"), Some("application/xml"));
    let xml: String = ids.iter().map(|id| format!("<Latest>{id}</Latest>")).collect();
    assert_eq!(
        String::from_utf8(puts[4].raw.clone()).unwrap(),
        format!("<?xml version='1.0' encoding='utf-8'?>\n<BlockList>{xml}</BlockList>")
    );

    // At the threshold exactly, one Put Blob.
    let (acr, client) = fake(Acr::default()).await;
    let limits = Limits { single_put_max: bytes.len() as u64, block_size: 3000 };
    source::upload_with(&client, &reg, file.path(), limits).await.unwrap();
    let puts: Vec<String> = lines(&acr).into_iter().filter(|l| l.starts_with("PUT")).collect();
    assert_eq!(puts, [format!("PUT {UPLOAD_URL_PATH}")]);
}

#[tokio::test]
async fn run_with_a_context_directory_sends_the_file_task_run_request() {
    let ctx = context();
    let dir = ctx.path().to_str().unwrap();
    let (acr, client) = fake(Acr { log: b"ok\r\n".to_vec(), complete: Some("successful"), ..Default::default() }).await;
    acr_run_with(&client, run_args(&["-r", "myregistry", "-f", "task.yaml", dir])).await.unwrap();
    let l = lines(&acr);
    assert_eq!(
        l[..5],
        with_lookup(&[
            "POST REG/listBuildSourceUploadUrl?api-version=2025-03-01-preview",
            &format!("PUT {UPLOAD_URL_PATH}"),
            "POST REG/scheduleRun?api-version=2025-03-01-preview",
        ])[..]
    );
    assert_eq!(
        schedule_run(&acr).to_string(),
        format!(
            r#"{{"type":"FileTaskRunRequest","taskFilePath":"task.yaml","values":[],"sourceLocation":"{RELATIVE_PATH}","platform":{{"os":"linux","architecture":"amd64"}},"credentials":{{}}}}"#
        )
    );
    // The task file travels only inside the archive; no Dockerfile copy is added for a run.
    let names: Vec<String> = uploaded_members(&acr).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, [".dockerignore", "Dockerfile", "app.txt", "task.yaml"]);

    // Without -f, acb.yaml; values, the timeout and the values file in their places.
    let (acr, client) = fake(Acr::default()).await;
    let args =
        run_args(&["-r", "myregistry", "--set", "a=1", "--values", "v.yaml", "--timeout", "60", "--no-wait", dir]);
    acr_run_with(&client, args).await.unwrap();
    assert_eq!(
        schedule_run(&acr).to_string(),
        json!({"type": "FileTaskRunRequest", "taskFilePath": "acb.yaml", "valuesFilePath": "v.yaml",
               "values": [{"type": "SetValue", "name": "a", "value": "1", "isSecret": false}],
               "sourceLocation": RELATIVE_PATH, "timeout": 60,
               "platform": {"os": "linux", "architecture": "amd64"}, "credentials": {}})
        .to_string()
    );

    // A git URL: no upload.
    let (acr, client) = fake(Acr::default()).await;
    let url = "https://github.com/x/y.git#main";
    acr_run_with(&client, run_args(&["-r", "myregistry", "-f", "ci/task.yaml", "--no-wait", url])).await.unwrap();
    assert_eq!(lines(&acr), with_lookup(&["POST REG/scheduleRun?api-version=2025-03-01-preview"]));
    assert_eq!(schedule_run(&acr)["sourceLocation"], json!(url));
    assert_eq!(schedule_run(&acr)["taskFilePath"], json!("ci/task.yaml"));
}

#[tokio::test]
async fn run_refuses_cmd_with_a_context_and_cmd_with_a_file() {
    let ctx = context();
    let (acr, client) = fake(Acr::default()).await;
    let err =
        acr_run_with(&client, run_args(&["-r", "myregistry", "--cmd", "busybox ls", ctx.path().to_str().unwrap()]))
            .await
            .unwrap_err();
    assert!(err.to_string().starts_with("--cmd runs with the context /dev/null"), "{err}");
    assert_eq!(err.exit_code(), 1);
    let err = acr_run_with(&client, run_args(&["-r", "myregistry", "--cmd", "x", "-f", "task.yaml", "/dev/null"]))
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Azure Container Registry can run with either --cmd myCommand /dev/null or -f myFile mySourceLocation, but not both."
    );
    assert!(lines(&acr).is_empty(), "{:?}", lines(&acr));
}

#[tokio::test]
async fn task_run_with_a_local_context_uploads_it_and_names_it_in_the_override() {
    let ctx = context();
    let dir = ctx.path().to_str().unwrap();
    let task_json = json!({"id": format!("{REG}/tasks/t1"), "name": "t1", "properties": {
        "timeout": 600, "status": "Enabled", "platform": {"os": "linux"},
        "step": {"type": "Docker", "imageNames": ["app:1"], "dockerFilePath": "Dockerfile", "contextPath": "https://x/y.git"}}});
    let (acr, client) = fake(Acr { task: Some(task_json.clone()), ..Default::default() }).await;
    dispatch(&client, task(&["run", "-n", "t1", "-r", "myregistry", "-c", dir, "-f", "Dockerfile", "--no-wait"]))
        .await
        .unwrap();
    assert_eq!(
        lines(&acr),
        with_lookup(&[
            "POST REG/tasks/t1/listDetails?api-version=2025-03-01-preview",
            "POST REG/listBuildSourceUploadUrl?api-version=2025-03-01-preview",
            &format!("PUT {UPLOAD_URL_PATH}"),
            "POST REG/scheduleRun?api-version=2025-03-01-preview",
        ])
    );
    assert_eq!(
        schedule_run(&acr),
        json!({"type": "TaskRunRequest", "taskId": format!("{REG}/tasks/t1"),
               "overrideTaskStepProperties": {"contextPath": RELATIVE_PATH, "file": "Dockerfile", "arguments": [], "values": []}})
    );
    let names: Vec<String> = uploaded_members(&acr).into_iter().map(|(n, _)| n).collect();
    assert!(!names.iter().any(|n| n.contains("secret")), "the .dockerignore'd file stays behind: {names:?}");

    // A remote context is sent as it is, with nothing uploaded.
    let (acr, client) = fake(Acr { task: Some(task_json), ..Default::default() }).await;
    let url = "https://github.com/x/y.git#main";
    dispatch(&client, task(&["run", "-n", "t1", "-r", "myregistry", "-c", url, "--no-wait"])).await.unwrap();
    assert!(!lines(&acr).iter().any(|l| l.contains("listBuildSourceUploadUrl")), "{:?}", lines(&acr));
    assert_eq!(schedule_run(&acr)["overrideTaskStepProperties"]["contextPath"], json!(url));
}
