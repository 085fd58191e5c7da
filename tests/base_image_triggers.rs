//! Base-image triggers end to end, on a server as a user starts it: tasks building from git
//! repositories (`file://`, below `--task-git-file-root`) record what their Dockerfiles build
//! on; pushing a new base image reruns the task built on it, whose push reruns the task built
//! on its image — two levels, in order, once each — and a disabled trigger runs nothing.
//!
//! Needs buildah, podman, runc and git (`.ci/run` installs them); in CI a missing one fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const API: &str = "api-version=2025-03-01-preview";

fn git(args: &[&str], cwd: &Path) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "-c", "init.defaultBranch=main"])
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A bare repository `dir/{name}.git` whose branch `main` holds `Dockerfile`.
fn repo(dir: &Path, name: &str, dockerfile: &str) -> PathBuf {
    let work = dir.join(format!("{name}-work"));
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("Dockerfile"), dockerfile).unwrap();
    git(&["init", "-q"], &work);
    git(&["add", "."], &work);
    git(&["commit", "-q", "-m", "first"], &work);
    let bare = dir.join(format!("{name}.git"));
    git(&["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()], dir);
    bare
}

/// A task with a Docker step building `repo` and pushing `images`, with the trigger az's
/// `task create` sends by default (base image, Runtime, enabled).
async fn docker_task(s: &TestServer, reg: &str, name: &str, repo: &Path, images: &[&str]) {
    let body = json!({"location": "westus", "properties": {
        "status": "Enabled", "platform": {"os": "linux", "architecture": "amd64"}, "timeout": 3600,
        "agentConfiguration": {"cpu": 2}, "credentials": {},
        "trigger": {"baseImageTrigger": {"baseImageTriggerType": "Runtime", "status": "Enabled",
                    "name": "defaultBaseimageTriggerName", "updateTriggerPayloadType": "Default"}},
        "step": {"type": "Docker", "imageNames": images, "isPushEnabled": true, "noCache": false,
                 "dockerFilePath": "Dockerfile", "contextPath": format!("file://{}#main", repo.display()),
                 "arguments": []}}});
    let (st, t) = s.mgmt(Method::PUT, &format!("{reg}/tasks/{name}?{API}"), Some(body)).await;
    assert!(st.is_success(), "{t}");
}

async fn runs(s: &TestServer, reg: &str) -> Vec<Value> {
    let (st, list) = s.mgmt(Method::GET, &format!("{reg}/runs?{API}"), None).await;
    assert_eq!(st, 200, "{list}");
    let mut v = list["value"].as_array().unwrap().clone();
    v.reverse(); // oldest first
    v
}

async fn run_task(s: &TestServer, reg: &str, task: &str) -> Value {
    let body = json!({"type": "TaskRunRequest", "taskId": format!("{reg}/tasks/{task}"),
                      "overrideTaskStepProperties": {"arguments": [], "values": []}});
    let (st, run) = s.mgmt(Method::POST, &format!("{reg}/scheduleRun?{API}"), Some(body)).await;
    assert_eq!(st, 200, "{run}");
    let id = run["properties"]["runId"].as_str().unwrap().to_string();
    let r = run_finished(s, reg, &id).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{}", run_log(s, reg, &id).await);
    r
}

/// The first run of `task` after the run numbered `after`, once it is there.
async fn next_run_of(s: &TestServer, reg: &str, task: &str, after: usize) -> Value {
    for _ in 0..300 {
        if let Some(r) = runs(s, reg).await.into_iter().skip(after).find(|r| r["properties"]["task"] == task) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no run of {task} was queued");
}

async fn digest_of(s: &TestServer, repo: &str, tag: &str) -> String {
    let r = Registry { server: s, name: "chain".into(), rg: "rg".into() };
    let m = r.get_manifest(repo, tag).await;
    assert_eq!(m.status, 200, "{}", m.text());
    m.header("docker-content-digest").unwrap().to_string()
}

#[tokio::test]
async fn a_new_base_image_rebuilds_its_dependants_in_order_once_each() {
    if !require_task_engine() || !require_tool("git") {
        return;
    }
    let repos = tempfile::tempdir().unwrap();
    let s = TestServer::builder().flags(&["--task-git-file-root", repos.path().to_str().unwrap()]).start().await;
    s.create_group("rg").await;
    let (st, body) = s.create_registry("rg", "chain", "Premium").await;
    assert!(st.is_success(), "{body}");
    let reg = s.registry_path("rg", "chain");
    let login = s.login_server("chain");
    let base = push_busybox(&s, "chain");

    let mid = repo(repos.path(), "midtask", &format!("FROM {base}\nRUN echo mid >> /layers.txt\n"));
    let app = repo(
        repos.path(),
        "apptask",
        &format!("FROM {base} AS tools\nRUN echo tools\nFROM {login}/team/mid:1\nRUN echo app >> /layers.txt\n"),
    );
    docker_task(&s, &reg, "midtask", &mid, &["team/mid:1"]).await;
    docker_task(&s, &reg, "apptask", &app, &["team/app/web:{{.Run.ID}}"]).await;

    // The first runs, by hand, record what each builds on.
    run_task(&s, &reg, "midtask").await;
    let first_app = run_task(&s, &reg, "apptask").await;
    let log = run_log(&s, &reg, first_app["name"].as_str().unwrap()).await;
    assert!(log.contains(&format!("{login}/team/mid:1 (runtime): sha256:")), "{log}");
    assert!(log.contains(&format!("{base} (build time): sha256:")), "{log}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(runs(&s, &reg).await.len(), 2, "the manual runs' pushes triggered nothing yet");

    // A new base image: mid runs (app builds on it only at build time, under a Runtime trigger).
    let old = digest_of(&s, "base/busybox", "1").await;
    push_busybox(&s, "chain");
    let new = digest_of(&s, "base/busybox", "1").await;
    assert_ne!(old, new, "the base image changed");
    let mid_run = next_run_of(&s, &reg, "midtask", 2).await;
    let p = &mid_run["properties"];
    assert_eq!(p["runType"], "AutoRun", "{mid_run}");
    assert_eq!(
        p["imageUpdateTrigger"]["images"][0],
        json!({"registry": login, "repository": "base/busybox", "tag": "1", "digest": new}),
        "{mid_run}"
    );
    let mid_done = run_finished(&s, &reg, mid_run["name"].as_str().unwrap()).await;
    assert_eq!(mid_done["properties"]["status"], "Succeeded", "{mid_done}");
    let mid_digest = mid_done["properties"]["outputImages"][0]["digest"].as_str().unwrap().to_string();

    // mid's push runs app, after mid.
    let app_run = next_run_of(&s, &reg, "apptask", 3).await;
    assert_eq!(
        app_run["properties"]["imageUpdateTrigger"]["images"][0],
        json!({"registry": login, "repository": "team/mid", "tag": "1", "digest": mid_digest}),
        "{app_run}"
    );
    let app_done = run_finished(&s, &reg, app_run["name"].as_str().unwrap()).await;
    assert_eq!(app_done["properties"]["status"], "Succeeded", "{app_done}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let all = runs(&s, &reg).await;
    let tasks: Vec<&str> = all.iter().map(|r| r["properties"]["task"].as_str().unwrap()).collect();
    assert_eq!(tasks, ["midtask", "apptask", "midtask", "apptask"], "once each, in order");

    // Pushing the same content again changes nothing; a disabled trigger runs nothing.
    let (st, t) = s
        .mgmt(
            Method::PATCH,
            &format!("{reg}/tasks/midtask?{API}"),
            Some(json!({"properties": {"trigger": {"baseImageTrigger": {"status": "Disabled"}}}})),
        )
        .await;
    assert!(st.is_success(), "{t}");
    push_busybox(&s, "chain");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(runs(&s, &reg).await.len(), 4, "the trigger is disabled");
}
