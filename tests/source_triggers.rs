//! Source triggers end to end, on a server as a user starts it: a task whose git context is
//! served by `git daemon` on loopback gets a webhook address and secret from `listDetails`
//! (and `wharf acr task show-webhook`); deliveries in GitHub's and Azure DevOps' shapes queue a
//! run that builds exactly the delivered commit, with ACR's `sourceTrigger` metadata; wrong
//! signatures, unknown tasks, other branches, redeliveries and oversized bodies queue nothing.
//! Also `wharf acr task list-runs --image/--top/--run-status` against the runs it made.
//!
//! Needs buildah, podman, runc and git (`.ci/run` installs them); in CI a missing one fails.

mod common;

use std::io::Read as _;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};

const API: &str = "api-version=2025-03-01-preview";

/// A child process killed when dropped (also when an assertion fails).
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn git(args: &[&str], cwd: &Path) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The commits of `app.git` (bare, in `dir`): `old` and `new` on `main` (`new` its head), and
/// `feature` on branch `feature`. Each writes its own `msg.txt`.
struct Repo {
    old: String,
    new: String,
    feature: String,
}

fn repo(dir: &Path, base: &str) -> Repo {
    let work = dir.join("work");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("Dockerfile"), format!("FROM {base}\nCOPY msg.txt /msg.txt\nRUN cat /msg.txt\n")).unwrap();
    let commit = |msg: &str| {
        std::fs::write(work.join("msg.txt"), format!("{msg}\n")).unwrap();
        git(&["add", "."], &work);
        git(&["commit", "-q", "-m", msg], &work);
        git(&["rev-parse", "HEAD"], &work)
    };
    git(&["init", "-q"], &work);
    let old = commit("content of the old commit");
    let new = commit("content of the new commit");
    git(&["checkout", "-q", "-b", "feature"], &work);
    let feature = commit("content of the feature commit");
    git(&["checkout", "-q", "main"], &work);
    git(&["clone", "-q", "--bare", work.to_str().unwrap(), dir.join("app.git").to_str().unwrap()], dir);
    Repo { old, new, feature }
}

/// `git daemon` serving `dir` on a free loopback port.
fn daemon(dir: &Path) -> (Killed, u16) {
    let port = free_port();
    let child = Command::new("git")
        .args(["daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1"])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", dir.display()))
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("git daemon");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    (Killed(child), port)
}

async fn registry(s: &TestServer, name: &str) -> String {
    s.create_group("rg").await;
    let (st, body) = s.create_registry("rg", name, "Premium").await;
    assert!(st.is_success(), "{body}");
    s.registry_path("rg", name)
}

async fn runs(s: &TestServer, reg: &str) -> Vec<Value> {
    let (st, v) = s.mgmt(Method::GET, &format!("{reg}/runs?{API}"), None).await;
    assert_eq!(st, 200, "{v}");
    v["value"].as_array().unwrap().clone()
}

fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A delivery as GitHub sends it: the event and delivery id in headers, the body signed.
async fn github(url: &str, secret: &str, event: &str, delivery: &str, body: &Value) -> (u16, Value) {
    let bytes = body.to_string().into_bytes();
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", "GitHub-Hookshot/044aadd")
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", signature(secret, &bytes))
        .body(bytes)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn push_body(branch: &str, after: &str, clone_url: &str) -> Value {
    json!({"ref": format!("refs/heads/{branch}"), "before": "0".repeat(40), "after": after,
           "repository": {"clone_url": clone_url, "full_name": "o/app"}, "pusher": {"name": "t"}})
}

/// The content of `path` in the image `repo:tag` of `registry` (searched in every layer).
async fn file_in_image(s: &TestServer, registry: &str, repo: &str, tag: &str, path: &str) -> Option<String> {
    let m = send(
        s.http_host(registry, Method::GET, &format!("/v2/{repo}/manifests/{tag}"))
            .header("accept", format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}")),
    )
    .await;
    assert_eq!(m.status, 200, "{}", m.text());
    let mut found = None;
    for layer in m.json()["layers"].as_array().unwrap() {
        let digest = layer["digest"].as_str().unwrap();
        let blob = send(s.http_host(registry, Method::GET, &format!("/v2/{repo}/blobs/{digest}"))).await;
        assert_eq!(blob.status, 200);
        let mut raw = vec![];
        let tar_bytes = if flate2::read::GzDecoder::new(&blob.body[..]).read_to_end(&mut raw).is_ok() {
            raw
        } else {
            blob.body.to_vec()
        };
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let name = entry.path().unwrap().to_string_lossy().trim_start_matches("./").to_string();
            if name == path {
                let mut text = String::new();
                entry.read_to_string(&mut text).unwrap();
                found = Some(text);
            }
        }
    }
    found
}

fn task_body(context: &str, events: &[&str]) -> Value {
    json!({"location": "westus", "properties": {
        "status": "Enabled", "platform": {"os": "linux", "architecture": "amd64"},
        "step": {"type": "Docker", "dockerFilePath": "Dockerfile", "contextPath": context, "isPushEnabled": true,
                 "imageNames": ["hooks/app:{{.Run.ID}}", "hooks/app:{{.Run.Commit}}"], "contextAccessToken": "ghp_not_needed"},
        "trigger": {"sourceTriggers": [{
            "name": "defaultSourceTriggerName", "status": "Enabled", "sourceTriggerEvents": events,
            "sourceRepository": {"sourceControlType": "Github", "repositoryUrl": context, "branch": "main",
                "sourceControlAuthProperties": {"tokenType": "PAT", "token": "ghp_not_needed"}}}]}}})
}

/// The test's pieces: a server with a registry and a base image, and a repository on loopback.
struct Setup {
    s: TestServer,
    reg: String,
    repo: Repo,
    _repos: tempfile::TempDir,
    _daemon: Killed,
    port: u16,
}

async fn setup(name: &str) -> Option<Setup> {
    if !require_task_engine() || !require_tool("git") {
        return None;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, name).await;
    let base = push_busybox(&s, name);
    let repos = tempfile::tempdir().unwrap();
    let repo = repo(repos.path(), &base);
    let (daemon, port) = daemon(repos.path());
    Some(Setup { s, reg, repo, _repos: repos, _daemon: daemon, port })
}

#[tokio::test]
async fn a_signed_github_push_builds_the_pushed_commit_and_nothing_else_queues() {
    let Some(Setup { s, reg, repo, port, _repos, _daemon }) = setup("hookgh").await else { return };
    let clone_url = format!("git://127.0.0.1:{port}/app.git");
    let context = format!("{clone_url}#main");
    let (st, t) = s
        .mgmt(Method::PUT, &format!("{reg}/tasks/ghtask?{API}"), Some(task_body(&context, &["commit", "pullrequest"])))
        .await;
    assert_eq!(st, 200, "{t}");
    assert!(!t.to_string().contains("webhook"), "GET answers never carry the webhook's secret: {t}");
    let (st, d) = s.mgmt(Method::POST, &format!("{reg}/tasks/ghtask/listDetails?{API}"), None).await;
    assert_eq!(st, 200, "{d}");
    let hook = &d["properties"]["trigger"]["sourceTriggers"][0]["webhook"];
    let url = hook["url"].as_str().unwrap_or_else(|| panic!("listDetails gives the webhook: {d}")).to_string();
    let secret = hook["secret"].as_str().unwrap().to_string();
    assert_eq!(url, format!("{}/wharf-hooks/hookgh/ghtask/defaultSourceTriggerName", s.base()));
    assert_eq!(secret.len(), 64, "{secret}");

    // GitHub's ping when the webhook is added.
    let (st, v) = github(&url, &secret, "ping", "ping-1", &json!({"zen": "Design for failure.", "hook_id": 1})).await;
    assert_eq!(st, 200, "{v}");

    // A wrong signature, a missing one and an unknown task: one answer, nothing queued.
    let push = push_body("main", &repo.old, &clone_url);
    let (st, wrong) = github(&url, "not-the-secret", "push", "d-wrong", &push).await;
    assert_eq!(st, 401, "{wrong}");
    assert_eq!(wrong["error"]["code"], "Unauthorized", "{wrong}");
    let r =
        reqwest::Client::new().post(&url).header("x-github-event", "push").body(push.to_string()).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap(), wrong, "a missing signature gets the same answer");
    let other = url.replace("/ghtask/", "/nosuchtask/");
    let (st, unknown) = github(&other, &secret, "push", "d-unknown", &push).await;
    assert_eq!((st, &unknown), (401, &wrong), "an unknown task answers as a wrong signature does");
    let (st, unknown) = github(&url.replace("/hookgh/", "/noregistry/"), &secret, "push", "d-unknown2", &push).await;
    assert_eq!((st, &unknown), (401, &wrong));
    assert!(runs(&s, &reg).await.is_empty(), "refused deliveries queue nothing");

    // Another branch, a deleted branch and a body over the cap queue nothing either.
    let (st, v) = github(&url, &secret, "push", "d-dev", &push_body("dev", &repo.new, &clone_url)).await;
    assert_eq!((st, v["queued"].as_bool()), (200, Some(false)), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("'dev'"), "{v}");
    let mut deleted = push_body("main", &"0".repeat(40), &clone_url);
    deleted["deleted"] = json!(true);
    let (st, v) = github(&url, &secret, "push", "d-del", &deleted).await;
    assert_eq!((st, v["queued"].as_bool()), (200, Some(false)), "{v}");
    let big = json!({"ref": "refs/heads/main", "after": repo.old, "padding": "x".repeat(2 << 20)});
    let (st, v) = github(&url, &secret, "push", "d-big", &big).await;
    assert_eq!(st, 413, "{v}");
    assert!(runs(&s, &reg).await.is_empty());

    // The signed push of the older commit of main (main's head is newer): its run builds it.
    let (st, v) = github(&url, &secret, "push", "d-main-1", &push).await;
    assert_eq!((st, v["queued"].as_bool()), (202, Some(true)), "{v}");
    let id = v["runId"].as_str().unwrap().to_string();
    // GitHub redelivers with the same delivery id: queued once.
    let (st, again) = github(&url, &secret, "push", "d-main-1", &push).await;
    assert_eq!((st, again["queued"].as_bool()), (200, Some(false)), "{again}");
    assert_eq!(runs(&s, &reg).await.len(), 1);

    let r = run_finished(&s, &reg, &id).await;
    let log = run_log(&s, &reg, &id).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    let p = &r["properties"];
    assert_eq!(p["runType"], "AutoRun");
    assert_eq!(
        p["sourceTrigger"],
        json!({"id": "d-main-1", "eventType": "commit", "commitId": repo.old, "pullRequestId": null,
               "repositoryUrl": clone_url, "branchName": "main", "providerType": "Github"}),
        "{r}"
    );
    assert!(log.contains("content of the old commit") && !log.contains("content of the new commit"), "{log}");
    assert!(!log.contains("ghp_not_needed"), "the token is masked: {log}");
    // {{.Run.Commit}} is the commit built, and the image holds that commit's file.
    let tags: Vec<&str> = p["outputImages"].as_array().unwrap().iter().filter_map(|i| i["tag"].as_str()).collect();
    assert!(tags.contains(&repo.old.as_str()) && tags.contains(&id.as_str()), "{tags:?}");
    assert_eq!(
        file_in_image(&s, "hookgh", "hooks/app", &repo.old, "msg.txt").await.as_deref(),
        Some("content of the old commit\n")
    );

    // A pull request into main builds its head commit (on another branch).
    let pr = json!({"action": "opened", "number": 7, "pull_request": {"number": 7,
        "head": {"sha": repo.feature, "ref": "feature"}, "base": {"ref": "main"}},
        "repository": {"clone_url": clone_url}});
    let (st, v) = github(&url, &secret, "pull_request", "d-pr-7", &pr).await;
    assert_eq!((st, v["queued"].as_bool()), (202, Some(true)), "{v}");
    let pr_run = v["runId"].as_str().unwrap().to_string();
    let r = run_finished(&s, &reg, &pr_run).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{}", run_log(&s, &reg, &pr_run).await);
    let t = &r["properties"]["sourceTrigger"];
    assert_eq!((t["eventType"].as_str(), t["pullRequestId"].as_str()), (Some("pullrequest"), Some("7")), "{r}");
    assert_eq!(t["commitId"], repo.feature.as_str());
    assert!(run_log(&s, &reg, &pr_run).await.contains("content of the feature commit"));

    // A disabled trigger answers why and queues nothing.
    let patch = json!({"properties": {"trigger": {"sourceTriggers": [{"name": "defaultSourceTriggerName", "status": "Disabled"}]}}});
    let (st, v) = s.mgmt(Method::PATCH, &format!("{reg}/tasks/ghtask?{API}"), Some(patch)).await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = github(&url, &secret, "push", "d-main-2", &push_body("main", &repo.new, &clone_url)).await;
    assert_eq!((st, v["queued"].as_bool()), (200, Some(false)), "{v}");
    assert!(v["reason"].as_str().unwrap().contains("disabled"), "{v}");
    assert_eq!(runs(&s, &reg).await.len(), 2);

    // Run history through the CLI: --image (a tag resolved to its digest), --top, --run-status.
    let cli = Cli::login(&s);
    let list = |extra: &[&str]| {
        let mut args = vec!["acr", "task", "list-runs", "-r", "hookgh"];
        args.extend(extra);
        let out = cli.run(&args).ok().json();
        out.as_array().unwrap().iter().map(|r| r["runId"].as_str().unwrap().to_string()).collect::<Vec<_>>()
    };
    let image = format!("hooks/app:{}", repo.old);
    assert_eq!(list(&["--image", &image]), [id.as_str()], "only the run that pushed that image");
    let digest = p["outputImages"].as_array().unwrap()[0]["digest"].as_str().unwrap().to_string();
    assert_eq!(list(&["--image", &format!("hooks/app@{digest}")]), [id.as_str()]);
    assert_eq!(list(&["--top", "1"]), [pr_run.as_str()], "newest first");
    assert_eq!(list(&["--run-status", "Succeeded"]).len(), 2);
    assert!(list(&["--run-status", "Failed"]).is_empty());
    assert_eq!(list(&["--image", &image, "--top", "1", "-n", "ghtask"]), [id.as_str()], "--top counts matches");
    let missing = cli.run(&["acr", "task", "list-runs", "-r", "hookgh", "--image", "hooks/app:nope"]);
    assert_eq!(missing.code, 3, "{missing:?}");
}

#[tokio::test]
async fn an_azure_devops_push_runs_a_task_the_cli_made() {
    let Some(Setup { s, reg, repo, port, _repos, _daemon }) = setup("hookado").await else { return };
    let context = format!("git://127.0.0.1:{port}/app.git#main");
    let cli = Cli::login(&s);
    cli.run(&[
        "acr",
        "task",
        "create",
        "-n",
        "adotask",
        "-r",
        "hookado",
        "--context",
        &context,
        "-f",
        "Dockerfile",
        "-t",
        "hooks/ado:{{.Run.ID}}",
        "--commit-trigger-enabled",
        "true",
        "--git-access-token",
        "pat-secret-1",
    ])
    .ok();
    // What the CLI stored, read back: the trigger (az's shape; not github.com, so Azure DevOps),
    // its token only with --with-secure-properties.
    let shown = cli.run(&["acr", "task", "show", "-n", "adotask", "-r", "hookado"]).ok().json();
    let t = &shown["trigger"]["sourceTriggers"][0];
    assert_eq!(t["sourceRepository"]["sourceControlType"], "VisualStudioTeamService", "{shown}");
    assert_eq!(t["sourceRepository"]["branch"], "main");
    assert_eq!(t["sourceTriggerEvents"], json!(["commit"]));
    assert!(!shown.to_string().contains("pat-secret-1"), "{shown}");
    let secure =
        cli.run(&["acr", "task", "show", "-n", "adotask", "-r", "hookado", "--with-secure-properties"]).ok().json();
    assert_eq!(
        secure["trigger"]["sourceTriggers"][0]["sourceRepository"]["sourceControlAuthProperties"]["token"],
        "pat-secret-1"
    );
    let hooks = cli.run(&["acr", "task", "show-webhook", "-n", "adotask", "-r", "hookado"]).ok().json();
    let hook = &hooks[0];
    assert_eq!(hook["name"], "defaultSourceTriggerName", "{hooks}");
    let (url, secret) = (hook["url"].as_str().unwrap().to_string(), hook["secret"].as_str().unwrap().to_string());
    assert_eq!(secure["trigger"]["sourceTriggers"][0]["webhook"]["secret"], secret.as_str());
    let table = cli.run(&["acr", "task", "show-webhook", "-n", "adotask", "-r", "hookado", "-o", "table"]).ok();
    assert!(table.stdout.contains("SECRET") && table.stdout.contains(&url), "{}", table.stdout);

    let delivery = |id: &str, commit: &str| {
        json!({"subscriptionId": "00000000-0000-0000-0000-000000000000", "notificationId": 1, "id": id,
               "eventType": "git.push", "publisherId": "tfs",
               "resource": {"refUpdates": [{"name": "refs/heads/main", "oldObjectId": repo.old, "newObjectId": commit}],
                            "repository": {"remoteUrl": context.split('#').next().unwrap()}}})
    };
    let post = |password: &str, body: Value| {
        let url = url.clone();
        let password = password.to_string();
        async move {
            let r = reqwest::Client::new()
                .post(&url)
                .basic_auth("azure-devops", Some(password))
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (st, v) = post("wrong", delivery("e-1", &repo.new)).await;
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("Unauthorized")), "{v}");
    assert!(runs(&s, &reg).await.is_empty());
    let (st, v) = post(&secret, delivery("e-1", &repo.new)).await;
    assert_eq!((st, v["queued"].as_bool()), (202, Some(true)), "{v}");
    let id = v["runId"].as_str().unwrap().to_string();
    let r = run_finished(&s, &reg, &id).await;
    let log = run_log(&s, &reg, &id).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    let t = &r["properties"]["sourceTrigger"];
    assert_eq!(
        (t["providerType"].as_str(), t["commitId"].as_str()),
        (Some("VisualStudioTeamService"), Some(repo.new.as_str()))
    );
    assert!(log.contains("content of the new commit"), "{log}");
    // The CLI's table says what started the run.
    let table = cli.run(&["acr", "task", "list-runs", "-r", "hookado", "-o", "table"]).ok();
    assert!(table.stdout.contains("commit"), "{}", table.stdout);
}
