//! ACR Tasks end to end on a server as a user starts it (`wharf serve` defaults): task
//! resources, quick runs and task runs executed by buildah and podman, logs read as az reads
//! them, identities and network rules as the seeds walk through them, and bad input.
//!
//! Needs buildah, podman and runc (`.ci/run` installs them); in CI a missing one fails.

mod common;

use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const API: &str = "api-version=2025-03-01-preview";

async fn registry(s: &TestServer, name: &str, properties: Option<Value>) -> String {
    s.create_group("rg").await;
    let (st, body) = s.create_registry("rg", name, "Premium").await;
    assert!(st.is_success(), "{body}");
    let path = s.registry_path("rg", name);
    if let Some(p) = properties {
        let (st, body) =
            s.mgmt(Method::PATCH, &format!("{path}?api-version=2025-11-01"), Some(json!({"properties": p}))).await;
        assert!(st.is_success(), "{body}");
    }
    path
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn schedule(s: &TestServer, reg: &str, body: Value) -> (reqwest::StatusCode, Value) {
    s.mgmt(Method::POST, &format!("{reg}/scheduleRun?{API}"), Some(body)).await
}

/// Queues a quick run of `yaml`; returns its run id.
async fn quick_run(s: &TestServer, reg: &str, yaml: &str, extra: Value) -> String {
    let mut body = json!({"type": "EncodedTaskRunRequest", "encodedTaskContent": b64(yaml), "values": [],
        "platform": {"os": "linux", "architecture": "amd64"}, "timeout": 600});
    if let Value::Object(m) = extra {
        for (k, v) in m {
            body[k] = v;
        }
    }
    let (st, run) = schedule(s, reg, body).await;
    assert_eq!(st, 200, "scheduleRun: {run}");
    assert_eq!(run["properties"]["status"], "Queued", "{run}");
    run["properties"]["runId"].as_str().unwrap().to_string()
}

/// Polls the run until it is finished.
async fn finished(s: &TestServer, reg: &str, run: &str) -> Value {
    for _ in 0..600 {
        let (st, r) = s.mgmt(Method::GET, &format!("{reg}/runs/{run}?{API}"), None).await;
        assert_eq!(st, 200, "{r}");
        if matches!(r["properties"]["status"].as_str(), Some("Succeeded" | "Failed" | "Canceled" | "Error" | "Timeout"))
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("run {run} did not finish");
}

/// The run's log read through its `logLink` as the Azure SDK reads it (HEAD, then ranged GETs
/// with `x-ms-range`); returns the text and the `x-ms-meta-Complete` value.
async fn log_of(s: &TestServer, reg: &str, run: &str) -> (String, Option<String>) {
    let (st, link) = s.mgmt(Method::POST, &format!("{reg}/runs/{run}/listLogSasUrl?{API}"), None).await;
    assert_eq!(st, 200, "{link}");
    let url = link["logLink"].as_str().expect("logLink").to_string();
    let c = reqwest::Client::new();
    let head = c.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200, "HEAD of the log");
    let size: u64 = head.headers()["content-length"].to_str().unwrap().parse().unwrap();
    let complete = head.headers().get("x-ms-meta-complete").map(|v| v.to_str().unwrap().to_string());
    let mut text = Vec::new();
    while (text.len() as u64) < size {
        let start = text.len();
        let r = c.get(&url).header("x-ms-range", format!("bytes={start}-{}", start + 4095)).send().await.unwrap();
        assert_eq!(r.status(), 206);
        let range = r.headers()["content-range"].to_str().unwrap().to_string();
        assert!(range.starts_with(&format!("bytes {start}-")) && range.ends_with(&format!("/{size}")), "{range}");
        text.extend_from_slice(&r.bytes().await.unwrap());
    }
    (String::from_utf8(text).unwrap(), complete)
}

#[tokio::test]
async fn task_resources_keep_their_shape_and_hide_their_secrets() {
    let s = TestServer::start().await;
    let reg = registry(&s, "taskshape", None).await;
    let yaml = "version: v1.1.0\nsteps: \n  - cmd: busybox echo hi\n    disableWorkingDirectoryOverride: true\n    timeout: 3600\n";
    let body = json!({"location": "westus", "properties": {
        "status": "Enabled", "platform": {"os": "linux", "architecture": "amd64"}, "timeout": 3600, "agentConfiguration": {"cpu": 2},
        "isSystemTask": false, "credentials": {},
        "trigger": {"baseImageTrigger": {"baseImageTriggerType": "Runtime", "status": "Enabled", "name": "defaultBaseimageTriggerName", "updateTriggerPayloadType": "Default"}},
        "step": {"type": "EncodedTask", "encodedTaskContent": b64(yaml), "values": [{"name": "s", "value": "hunter2", "isSecret": true}]}}});
    let (st, t) = s.mgmt(Method::PUT, &format!("{reg}/tasks/hello-task?{API}"), Some(body)).await;
    assert_eq!(st, 200, "PUT answers 200, as az needs: {t}");
    assert_eq!(t["type"], "Microsoft.ContainerRegistry/registries/tasks");
    assert_eq!(t["properties"]["provisioningState"], "Succeeded");
    assert_eq!(t["properties"]["timeout"], 3600);
    assert_eq!(t["properties"]["trigger"]["baseImageTrigger"]["name"], "defaultBaseimageTriggerName");
    assert!(!t.to_string().contains("hunter2"), "a secret value in the PUT answer: {t}");

    // credentials merge by key; passwords show only in listDetails
    let patch = json!({"properties": {"credentials": {"customRegistries": {"other.example.com": {
        "userName": {"type": "Opaque", "value": "bob"}, "password": {"type": "Opaque", "value": "s3cret-pass"}}}}}});
    let (st, t) = s.mgmt(Method::PATCH, &format!("{reg}/tasks/hello-task?{API}"), Some(patch)).await;
    assert_eq!(st, 200, "{t}");
    let patch = json!({"properties": {"credentials": {"customRegistries": {"third.example.com": {
        "userName": {"type": "Opaque", "value": "eve"}, "password": {"type": "Opaque", "value": "other-pass"}}}}}});
    let (st, _) = s.mgmt(Method::PATCH, &format!("{reg}/tasks/hello-task?{API}"), Some(patch)).await;
    assert_eq!(st, 200);
    let (_, shown) = s.mgmt(Method::GET, &format!("{reg}/tasks/hello-task?{API}"), None).await;
    let regs = &shown["properties"]["credentials"]["customRegistries"];
    assert!(regs["other.example.com"].is_object() && regs["third.example.com"].is_object(), "{shown}");
    for secret in ["s3cret-pass", "other-pass", "hunter2"] {
        assert!(!shown.to_string().contains(secret), "GET shows {secret}: {shown}");
    }
    let (st, details) = s.mgmt(Method::POST, &format!("{reg}/tasks/hello-task/listDetails?{API}"), None).await;
    assert_eq!(st, 200);
    let text = details.to_string();
    assert!(text.contains("s3cret-pass") && text.contains("hunter2"), "listDetails returns the secrets: {details}");
    // null removes a key (RFC 7396)
    let patch = json!({"properties": {"credentials": {"customRegistries": {"other.example.com": null}}}});
    let (_, t) = s.mgmt(Method::PATCH, &format!("{reg}/tasks/hello-task?{API}"), Some(patch)).await;
    assert!(t["properties"]["credentials"]["customRegistries"]["other.example.com"].is_null(), "{t}");

    let (st, list) = s.mgmt(Method::GET, &format!("{reg}/tasks?{API}"), None).await;
    assert_eq!(st, 200);
    assert_eq!(list["value"].as_array().unwrap().len(), 1);
    let (st, _) = s.mgmt(Method::DELETE, &format!("{reg}/tasks/hello-task?{API}"), None).await;
    assert_eq!(st, 200);
    let (st, gone) = s.mgmt(Method::GET, &format!("{reg}/tasks/hello-task?{API}"), None).await;
    assert_eq!(st, 404, "{gone}");
}

#[tokio::test]
async fn bad_tasks_are_refused_with_a_clear_arm_error_and_nothing_stored() {
    let s = TestServer::start().await;
    let reg = registry(&s, "taskbad", None).await;
    let put = |name: &str, properties: Value, identity: Option<Value>| {
        let mut body = json!({"location": "westus", "properties": properties});
        if let Some(i) = identity {
            body["identity"] = i;
        }
        (format!("{reg}/tasks/{name}?{API}"), body)
    };
    let encoded = |yaml: &str| json!({"type": "EncodedTask", "encodedTaskContent": b64(yaml)});
    let cases = [
        (
            put("badyaml1", json!({"step": encoded("steps:\n  - cmd: busybox\n    bogus: 1\n")}), None),
            400,
            "InvalidTaskFile",
            Some("line 3"),
        ),
        (put("badyaml2", json!({"step": encoded("steps: [\n")}), None), 400, "InvalidTaskFile", None),
        (put("t1", json!({"step": encoded("steps:\n  - cmd: busybox\n")}), None), 400, "InvalidTaskName", None),
        (
            put("badtimeout", json!({"timeout": 99999999, "step": encoded("steps:\n  - cmd: busybox\n")}), None),
            400,
            "InvalidTimeout",
            None,
        ),
        (
            put(
                "nosystem",
                json!({"step": encoded("steps:\n  - cmd: busybox\n"), "credentials": {"sourceRegistry": {"identity": "[system]"}}}),
                None,
            ),
            400,
            "InvalidTaskIdentity",
            Some("no system-assigned identity"),
        ),
        (
            put(
                "otheruai",
                json!({"step": encoded("steps:\n  - cmd: busybox\n"), "credentials": {"sourceRegistry": {"identity": "6f0e3c1a-0000-4000-8000-000000000000"}}}),
                None,
            ),
            400,
            "InvalidTaskIdentity",
            None,
        ),
        (
            put(
                "missinguai",
                json!({"step": encoded("steps:\n  - cmd: busybox\n")}),
                Some(
                    json!({"type": "UserAssigned", "userAssignedIdentities": {"/subscriptions/x/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/nope": {}}}),
                ),
            ),
            400,
            "InvalidUserAssignedIdentity",
            None,
        ),
    ];
    for ((path, body), status, code, text) in cases {
        let (st, e) = s.mgmt(Method::PUT, &path, Some(body)).await;
        assert_eq!(st.as_u16(), status, "{path}: {e}");
        assert_eq!(e["error"]["code"], code, "{path}: {e}");
        if let Some(t) = text {
            assert!(e["error"]["message"].as_str().unwrap().contains(t), "{path}: {e}");
        }
    }
    let (_, list) = s.mgmt(Method::GET, &format!("{reg}/tasks?{API}"), None).await;
    assert_eq!(list["value"], json!([]), "nothing half-stored");
    // a quick run with an invalid task file is refused before it is queued
    let (st, e) = schedule(
        &s,
        &reg,
        json!({"type": "EncodedTaskRunRequest", "encodedTaskContent": b64("steps:\n  - push: 3\n")}),
    )
    .await;
    assert_eq!(st, 400, "{e}");
    assert_eq!(e["error"]["code"], "InvalidTaskFile");
    let (_, runs) = s.mgmt(Method::GET, &format!("{reg}/runs?{API}"), None).await;
    assert_eq!(runs["value"], json!([]), "no run queued");
}

#[tokio::test]
async fn a_quick_run_pulls_from_its_registry_and_streams_its_log() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, "quickrun", None).await;
    let base = push_busybox(&s, "quickrun");
    let yaml = format!(
        "version: v1.1.0\nsteps:\n  - cmd: {base} echo hello from $ID on {{{{.Run.Registry}}}} with {{{{.Values.word}}}}\n  - cmd: {base} sh -c 'echo the secret is {{{{.Values.pw}}}}'\n"
    );
    let run = quick_run(&s, &reg, &yaml, json!({"values": [
        {"name": "word", "value": "values", "isSecret": false}, {"name": "pw", "value": "p4ssw0rd-xyz", "isSecret": true}]})).await;
    let r = finished(&s, &reg, &run).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}");
    assert!(r["properties"]["startTime"].is_string() && r["properties"]["finishTime"].is_string(), "{r}");
    let (log, complete) = log_of(&s, &reg, &run).await;
    assert_eq!(complete.as_deref(), Some("successful"));
    assert!(log.contains(&format!("hello from {run} on {} with values", s.login_server("quickrun"))), "{log}");
    assert!(log.contains("the secret is ***"), "secrets are masked in the log: {log}");
    assert!(!log.contains("p4ssw0rd-xyz"), "{log}");
    assert!(log.lines().count() > 2 && log.contains("\r\n"), "log lines end in CRLF: {log:?}");
    assert!(!r.to_string().contains("p4ssw0rd-xyz"), "the run record keeps no secret: {r}");
    // the log plane refuses a link with a wrong signature and names no existence
    let (_, link) = s.mgmt(Method::POST, &format!("{reg}/runs/{run}/listLogSasUrl?{API}"), None).await;
    let forged = link["logLink"].as_str().unwrap().replace("sig=", "sig=0");
    let resp = reqwest::Client::new().head(&forged).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(resp.headers()["x-ms-error-code"], "AuthenticationFailed");
}

#[tokio::test]
async fn a_multi_step_task_builds_pushes_and_runs_its_image() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, "buildrun", None).await;
    let base = push_busybox(&s, "buildrun");
    // The steps share the run's working directory: the first writes a Dockerfile, the second
    // builds it (multi-stage, ARG, RUN, COPY --from), the third pushes, the last runs the image.
    let dockerfile = format!(
        "ARG BASE={base}\nFROM $$BASE AS builder\nARG GREETING\nRUN echo $$GREETING > /hi.txt\nFROM {base}\nCOPY --from=builder /hi.txt /hi.txt\nCMD [\"cat\", \"/hi.txt\"]\n"
    );
    let yaml = format!(
        "version: v1.1.0\nsteps:\n  - id: write\n    cmd: {base} sh -c 'printf \"%s\" \"$$DOCKERFILE\" > Dockerfile'\n    env: [\"DOCKERFILE={}\"]\n  - id: build\n    build: -t $Registry/team/app/hello:$ID --build-arg GREETING=built-by-$ID .\n  - id: push\n    push: [\"$Registry/team/app/hello:$ID\"]\n  - id: run\n    cmd: $Registry/team/app/hello:$ID\n",
        dockerfile.replace('\n', "\\n").replace('"', "\\\"")
    );
    let run = quick_run(&s, &reg, &yaml, json!({})).await;
    let r = finished(&s, &reg, &run).await;
    let (log, _) = log_of(&s, &reg, &run).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    assert!(log.contains(&format!("built-by-{run}")), "the built image ran: {log}");
    let images = r["properties"]["outputImages"].as_array().expect("outputImages");
    let image = images.iter().find(|i| i["repository"] == "team/app/hello").unwrap_or_else(|| panic!("{r}"));
    assert_eq!(image["tag"], run.as_str());
    let digest = image["digest"].as_str().unwrap();
    // the digest is the one the registry serves for the tag
    let reply = send(
        s.with_creds(s.http_host("buildrun", Method::HEAD, &format!("/v2/team/app/hello/manifests/{run}")))
            .header("accept", format!("{OCI_MANIFEST}, {DOCKER_MANIFEST}")),
    )
    .await;
    assert_eq!(reply.header("docker-content-digest"), Some(digest), "{}", reply.text());
}

#[tokio::test]
async fn failures_ignored_errors_timeouts_and_cancels_are_reported() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, "runfail", None).await;
    let base = push_busybox(&s, "runfail");
    let failing = format!("steps:\n  - cmd: {base} sh -c 'echo about to fail; exit 5'\n  - cmd: {base} echo never\n");
    let run = quick_run(&s, &reg, &failing, json!({})).await;
    let r = finished(&s, &reg, &run).await;
    assert_eq!(r["properties"]["status"], "Failed", "{r}");
    let (log, complete) = log_of(&s, &reg, &run).await;
    assert_eq!(complete.as_deref(), Some("failed"));
    assert!(log.contains("about to fail") && log.contains('5') && !log.contains("never\r\n"), "{log}");

    let ignored = format!(
        "steps:\n  - cmd: {base} sh -c 'exit 3'\n    ignoreErrors: true\n  - cmd: {base} echo after the ignored failure\n"
    );
    let run = quick_run(&s, &reg, &ignored, json!({})).await;
    assert_eq!(finished(&s, &reg, &run).await["properties"]["status"], "Succeeded");
    assert!(log_of(&s, &reg, &run).await.0.contains("after the ignored failure"));

    let slow = format!("steps:\n  - cmd: {base} sleep 60\n    timeout: 2\n");
    let run = quick_run(&s, &reg, &slow, json!({})).await;
    let r = finished(&s, &reg, &run).await;
    assert_eq!(r["properties"]["status"], "Timeout", "{r}");
    assert_eq!(log_of(&s, &reg, &run).await.1.as_deref(), Some("timedout"));

    let long = format!("steps:\n  - cmd: {base} sh -c 'echo started; sleep 120'\n");
    let run = quick_run(&s, &reg, &long, json!({})).await;
    for _ in 0..300 {
        if log_of_text(&s, &reg, &run).await.contains("started") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let resp = s.mgmt_request(Method::POST, &format!("{reg}/runs/{run}/cancel?{API}")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "cancel answers 200 as az needs");
    let r = finished(&s, &reg, &run).await;
    assert_eq!(r["properties"]["status"], "Canceled", "{r}");
    let ps = Command::new("podman").args(["ps", "-a", "--format", "{{.Names}}"]).output().unwrap();
    let names = String::from_utf8_lossy(&ps.stdout);
    assert!(!names.contains(&format!("wharf-{run}-")), "the run's containers are gone: {names}");
    let (st, e) = s.mgmt(Method::POST, &format!("{reg}/runs/{run}/cancel?{API}"), None).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (409, Some("RunAlreadyFinished")), "{e}");

    // listing: newest first, filters
    let (_, all) = s.mgmt(Method::GET, &format!("{reg}/runs?{API}&$top=2"), None).await;
    let ids: Vec<&str> = all["value"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], run, "newest first");
    let (_, failed) = s.mgmt(Method::GET, &format!("{reg}/runs?{API}&$filter=Status eq 'Failed'"), None).await;
    assert_eq!(failed["value"].as_array().unwrap().len(), 1, "{failed}");
}

async fn log_of_text(s: &TestServer, reg: &str, run: &str) -> String {
    let (_, link) = s.mgmt(Method::POST, &format!("{reg}/runs/{run}/listLogSasUrl?{API}"), None).await;
    match reqwest::get(link["logLink"].as_str().unwrap()).await {
        Ok(r) if r.status() == 200 => r.text().await.unwrap_or_default(),
        _ => String::new(),
    }
}

const ACR_PUSH: &str = "8311e382-0749-4cb8-b61a-304f252e45ec";
const REPOSITORY_WRITER: &str = "2a1e307c-b015-4ebd-883e-5b7698a07328";
const REPOSITORY_READER: &str = "b93aa761-3e63-49ed-ac28-beffa264f7ac";
const REPO_NAME: &str = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";

/// A role assignment on `scope` for `principal` (any type), through the management API.
async fn grant(s: &TestServer, scope: &str, principal: &str, role: &str, condition: Option<String>) {
    let mut p = json!({"roleDefinitionId": format!("{scope}/providers/Microsoft.Authorization/roleDefinitions/{role}"), "principalId": principal});
    if let Some(c) = condition {
        p["condition"] = json!(c);
        p["conditionVersion"] = json!("2.0");
    }
    let id = uuid_like(&format!("{scope}{principal}{role}{p}"));
    let (st, body) = s
        .mgmt(
            Method::PUT,
            &format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{id}?api-version=2022-04-01"),
            Some(json!({"properties": p})),
        )
        .await;
    assert_eq!(st, 201, "role assignment: {body}");
}

async fn put_task(
    s: &TestServer,
    reg: &str,
    name: &str,
    yaml: &str,
    credentials: Value,
    identity: Option<Value>,
) -> Value {
    let mut body = json!({"location": "westus", "properties": {"step": {"type": "EncodedTask", "encodedTaskContent": b64(yaml)}, "credentials": credentials}});
    if let Some(i) = identity {
        body["identity"] = i;
    }
    let (st, t) = s.mgmt(Method::PUT, &format!("{reg}/tasks/{name}?{API}"), Some(body)).await;
    assert_eq!(st, 200, "{t}");
    t
}

async fn run_task(s: &TestServer, reg: &str, name: &str) -> (Value, String) {
    let body = json!({"type": "TaskRunRequest", "taskId": format!("{reg}/tasks/{name}"), "overrideTaskStepProperties": {"arguments": [], "values": []}});
    let (st, run) = schedule(s, reg, body).await;
    assert_eq!(st, 200, "{run}");
    let id = run["properties"]["runId"].as_str().unwrap().to_string();
    let r = finished(s, reg, &id).await;
    let (log, _) = log_of(s, reg, &id).await;
    (r, log)
}

/// Seed 000: a task whose system-assigned identity holds AcrPush, with `--auth-mode None` and
/// `credential add --use-identity [system]` for its own registry, builds and pushes while the
/// registry's public access is disabled — the registry lets trusted services through; with
/// trusted services off, the same run is refused by the network rules.
#[tokio::test]
async fn seed_000_a_task_identity_is_a_trusted_service_through_disabled_public_access() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, "seedtrusted", None).await;
    let base = push_busybox(&s, "seedtrusted");
    let login = s.login_server("seedtrusted");
    let yaml = build_and_push_task(&base, "app/trusted:$ID");
    let t = put_task(
        &s,
        &reg,
        "trusted-build",
        &yaml,
        json!({"sourceRegistry": {"loginMode": "None"}}),
        Some(json!({"type": "SystemAssigned"})),
    )
    .await;
    let principal = t["identity"]["principalId"].as_str().expect("a system-assigned identity").to_string();
    grant(&s, &reg, &principal, ACR_PUSH, None).await;
    let patch = json!({"properties": {"credentials": {"customRegistries": {login.clone(): {"identity": "[system]"}}}}});
    let (st, body) = s.mgmt(Method::PATCH, &format!("{reg}/tasks/trusted-build?{API}"), Some(patch)).await;
    assert_eq!(st, 200, "{body}");
    let (st, body) = s
        .mgmt(
            Method::PATCH,
            &format!("{reg}?api-version=2025-11-01"),
            Some(
                json!({"properties": {"publicNetworkAccess": "Disabled", "networkRuleBypassOptions": "AzureServices"}}),
            ),
        )
        .await;
    assert_eq!(st, 200, "{body}");
    // the registry is closed to this machine's address…
    let direct =
        s.with_creds(s.http_host("seedtrusted", Method::GET, "/v2/base/busybox/tags/list")).send().await.unwrap();
    assert_eq!(direct.status(), 403, "public access is disabled");
    // …but the task's identity is a trusted service
    let (r, log) = run_task(&s, &reg, "trusted-build").await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    assert!(r["properties"]["outputImages"].as_array().is_some_and(|i| !i.is_empty()), "{r}");
    assert!(s.log_text().contains("network bypass"), "the bypass is audited");

    let (st, _) = s
        .mgmt(
            Method::PATCH,
            &format!("{reg}?api-version=2025-11-01"),
            Some(json!({"properties": {"networkRuleBypassOptions": "None"}})),
        )
        .await;
    assert_eq!(st, 200);
    let (r, log) = run_task(&s, &reg, "trusted-build").await;
    assert_eq!(r["properties"]["status"], "Failed", "with trusted services off the run is refused: {r}\n{log}");
    assert!(log.contains("403") || log.to_lowercase().contains("denied") || log.contains("not allowed"), "{log}");

    // `networkRuleBypassAllowedForTasks` lets task identities through on its own
    let (st, _) = s
        .mgmt(
            Method::PATCH,
            &format!("{reg}?api-version=2025-11-01"),
            Some(json!({"properties": {"networkRuleBypassAllowedForTasks": true}})),
        )
        .await;
    assert_eq!(st, 200);
    let (r, log) = run_task(&s, &reg, "trusted-build").await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
}

/// Task and run endpoints need their actions: a Reader of the registry may list tasks but not
/// create or run one; *Container Registry Tasks Contributor* may do both.
#[tokio::test]
async fn task_and_run_endpoints_need_their_actions() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = registry(&s, "taskrbac", None).await;
    let (app, secret, oid) = service_principal(&cli, "task-operator", &[]);
    grant(&s, &reg, &oid, "acdd72a7-3385-48ef-bd42-f606fba81ae7", None).await; // Reader
    let (st, tok) = sp_token(&s, &app, &secret, MGMT_SCOPE).await;
    assert_eq!(st, 200, "{tok}");
    let token = tok["access_token"].as_str().unwrap().to_string();
    let yaml = "steps:\n  - cmd: busybox echo hi\n";
    let body =
        json!({"location": "westus", "properties": {"step": {"type": "EncodedTask", "encodedTaskContent": b64(yaml)}}});
    let (st, list) = s.mgmt_as(&token, Method::GET, &format!("{reg}/tasks?{API}"), None).await;
    assert_eq!(st, 200, "{list}");
    let (st, e) = s.mgmt_as(&token, Method::PUT, &format!("{reg}/tasks/rbac-task?{API}"), Some(body.clone())).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (403, Some("AuthorizationFailed")), "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("Microsoft.ContainerRegistry/registries/tasks/write"),
        "{e}"
    );
    let run = json!({"type": "EncodedTaskRunRequest", "encodedTaskContent": b64(yaml)});
    let (st, e) = s.mgmt_as(&token, Method::POST, &format!("{reg}/scheduleRun?{API}"), Some(run.clone())).await;
    assert_eq!(st, 403, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("scheduleRun/action"), "{e}");

    grant(&s, &reg, &oid, "fb382eab-e894-4461-af04-94435c366c3f", None).await; // Tasks Contributor
    let (st, t) = s.mgmt_as(&token, Method::PUT, &format!("{reg}/tasks/rbac-task?{API}"), Some(body)).await;
    assert_eq!(st, 200, "{t}");
    let (st, r) = s.mgmt_as(&token, Method::POST, &format!("{reg}/scheduleRun?{API}"), Some(run)).await;
    assert_eq!(st, 200, "{r}");
}

/// Seed 004: in ABAC mode a task has no data-plane access of its own; `[system]` with a
/// Repository Writer assignment conditioned on a prefix pushes inside the prefix and is refused
/// outside it; `none` removes access; `--auth-mode` is refused; a quick run with `[caller]` acts
/// as the caller.
#[tokio::test]
async fn seed_004_abac_tasks_reach_their_registry_only_through_an_identity() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, "seedabac", None).await;
    // the base image goes in before the mode switch (the administrator's Basic credentials push
    // in the legacy mode)
    let pushed = push_busybox(&s, "seedabac");
    let login = s.login_server("seedabac");
    let base = format!("{login}/base/busybox:1");
    assert_eq!(pushed, base);
    let (st, body) = s
        .mgmt(
            Method::PATCH,
            &format!("{reg}?api-version=2025-11-01"),
            Some(json!({"properties": {"roleAssignmentMode": "AbacRepositoryPermissions"}})),
        )
        .await;
    assert_eq!(st, 200, "{body}");

    let inside = build_and_push_task(&base, "team/app:$ID");
    let t = put_task(&s, &reg, "abac-build", &inside, json!({}), Some(json!({"type": "SystemAssigned"}))).await;
    let principal = t["identity"]["principalId"].as_str().unwrap().to_string();
    let (r, log) = run_task(&s, &reg, "abac-build").await;
    assert_eq!(r["properties"]["status"], "Failed", "no access without --source-acr-auth-id: {r}\n{log}");

    let patch = json!({"properties": {"credentials": {"sourceRegistry": {"identity": "[system]"}}}});
    let (st, body) = s.mgmt(Method::PATCH, &format!("{reg}/tasks/abac-build?{API}"), Some(patch)).await;
    assert_eq!(st, 200, "{body}");
    let condition = format!(
        "((!(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/content/write'}}) AND !(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/metadata/write'}})) OR ({REPO_NAME} StringStartsWithIgnoreCase 'team/'))"
    );
    grant(&s, &reg, &principal, REPOSITORY_WRITER, Some(condition)).await;
    let (r, log) = run_task(&s, &reg, "abac-build").await;
    assert_eq!(r["properties"]["status"], "Succeeded", "[system] pushes inside the prefix: {r}\n{log}");
    // check-access explains the task identity's access like any other principal's
    for (repository, allowed) in [("team/app", true), ("other/app", false)] {
        let (st, c) = s
            .mgmt(
                Method::POST,
                &format!("{reg}/checkAccess?api-version=2025-11-01"),
                Some(json!({"principalId": principal, "repository": repository, "actions": ["push"]})),
            )
            .await;
        assert_eq!(st, 200, "{c}");
        assert_eq!(c["authorizationAllowed"], allowed, "{repository}: {c}");
        assert!(c["explanation"].as_str().unwrap().contains("Container Registry Repository Writer"), "{c}");
    }

    let outside = build_and_push_task(&base, "other/app:$ID");
    let patch = json!({"properties": {"step": {"type": "EncodedTask", "encodedTaskContent": b64(&outside)}}});
    let (st, _) = s.mgmt(Method::PATCH, &format!("{reg}/tasks/abac-build?{API}"), Some(patch)).await;
    assert_eq!(st, 200);
    let (r, log) = run_task(&s, &reg, "abac-build").await;
    assert_eq!(r["properties"]["status"], "Failed", "outside the prefix the push is refused: {r}\n{log}");

    // `--source-acr-auth-id none` (az sends identity: null)
    let patch = json!({"properties": {"step": {"type": "EncodedTask", "encodedTaskContent": b64(&inside)}, "credentials": {"sourceRegistry": {"identity": null}}}});
    let (st, _) = s.mgmt(Method::PATCH, &format!("{reg}/tasks/abac-build?{API}"), Some(patch)).await;
    assert_eq!(st, 200);
    let (r, _) = run_task(&s, &reg, "abac-build").await;
    assert_eq!(r["properties"]["status"], "Failed", "none removes access: {r}");

    // `--auth-mode` is refused in ABAC mode
    let patch = json!({"properties": {"credentials": {"sourceRegistry": {"loginMode": "Default"}}}});
    let (st, e) = s.mgmt(Method::PATCH, &format!("{reg}/tasks/abac-build?{API}"), Some(patch)).await;
    assert_eq!((st.as_u16(), e["error"]["code"].as_str()), (400, Some("AuthModeNotSupported")), "{e}");

    // a quick run with [caller] acts as the caller (who needs a Repository role), with none
    // it has no access
    let admin_oid = jwt_claims(&s.bearer().unwrap())["oid"].as_str().unwrap().to_string();
    grant(&s, &reg, &admin_oid, REPOSITORY_READER, None).await;
    let pull = format!("steps:\n  - cmd: {base} echo pulled as the caller\n");
    let caller = json!({"credentials": {"sourceRegistry": {"identity": "[caller]"}}});
    let run = quick_run(&s, &reg, &pull, caller).await;
    let r = finished(&s, &reg, &run).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{}", log_of(&s, &reg, &run).await.0);
    let run = quick_run(&s, &reg, &pull, json!({})).await;
    assert_eq!(
        finished(&s, &reg, &run).await["properties"]["status"],
        "Failed",
        "without [caller] a quick run has no access in ABAC mode"
    );
}

/// A restart marks the run that was executing `Error` with the reason and runs the queued ones.
#[tokio::test]
async fn a_restart_keeps_queued_runs_and_ends_interrupted_ones() {
    if !require_task_engine() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::builder().data_dir(dir.path()).flags(&["--task-runs", "1"]).start().await;
    let reg = registry(&s, "restartrun", None).await;
    push_busybox(&s, "restartrun");
    // `$Registry`, not the login server: the port changes with the restart
    let long = quick_run(
        &s,
        &reg,
        "version: v1.1.0\nsteps:\n  - cmd: $Registry/base/busybox:1 sh -c 'echo long-started; sleep 300'\n",
        json!({}),
    )
    .await;
    for _ in 0..300 {
        if log_of_text(&s, &reg, &long).await.contains("long-started") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let queued =
        quick_run(&s, &reg, "version: v1.1.0\nsteps:\n  - cmd: $Registry/base/busybox:1 echo queued-ran\n", json!({}))
            .await;
    let (_, q) = s.mgmt(Method::GET, &format!("{reg}/runs/{queued}?{API}"), None).await;
    assert_eq!(q["properties"]["status"], "Queued", "one run at a time: {q}");
    s.kill9();
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!("podman rm -f $(podman ps -aq --filter name=wharf-{long}-) 2>/dev/null"))
        .status();
    let s = TestServer::builder().data_dir(dir.path()).flags(&["--task-runs", "1"]).start().await;
    let r = finished(&s, &reg, &long).await;
    assert_eq!(r["properties"]["status"], "Error", "{r}");
    assert!(r["properties"]["runErrorMessage"].as_str().unwrap().contains("server stopped"), "{r}");
    let r = finished(&s, &reg, &queued).await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}");
    assert!(log_of(&s, &reg, &queued).await.0.contains("queued-ran"));
}

/// A custom registry outside the deployment, reached with the user name and password the task
/// holds (`task credential add -u -p`); without them the same push is refused.
#[tokio::test]
async fn a_task_pushes_to_an_external_registry_with_its_credentials() {
    if !(require_task_engine() && require_tool("docker-registry") && require_tool("htpasswd")) {
        return;
    }
    let ext = external_registry("dave", "dave-s3cret");
    let s = TestServer::builder().flags(&["--task-insecure-registry", &ext.host]).start().await;
    let reg = registry(&s, "extpush", None).await;
    let base = push_busybox(&s, "extpush");
    let image = format!("{}/ext/app:$ID", ext.host);
    let dockerfile = format!("FROM {base}\\nRUN echo external > /x\\n");
    let yaml = format!(
        "version: v1.1.0\nsteps:\n  - cmd: {base} sh -c 'printf \"%b\" \"$$DF\" > Dockerfile'\n    env: [\"DF={dockerfile}\"]\n  - build: -t {image} .\n  - push: [\"{image}\"]\n"
    );
    let creds = json!({"customRegistries": {ext.host.clone(): {"userName": {"type": "Opaque", "value": "dave"}, "password": {"type": "Opaque", "value": "dave-s3cret"}}}});
    put_task(&s, &reg, "external-push", &yaml, creds, None).await;
    let (r, log) = run_task(&s, &reg, "external-push").await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    assert!(!log.contains("dave-s3cret"), "{log}");
    let run = r["properties"]["runId"].as_str().unwrap();
    let tags = reqwest::Client::new()
        .get(format!("http://{}/v2/ext/app/tags/list", ext.host))
        .basic_auth("dave", Some("dave-s3cret"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert!(tags["tags"].as_array().unwrap().iter().any(|t| t == run), "{tags}");

    put_task(&s, &reg, "external-nocreds", &yaml, json!({}), None).await;
    let (r, log) = run_task(&s, &reg, "external-nocreds").await;
    assert_eq!(r["properties"]["status"], "Failed", "without the credentials the push is refused: {r}\n{log}");
}

const ACR_PULL: &str = "7f951dda-4ed3-4680-a7ca-43fe172d538d";

/// `--source-acr-auth-id <user-assigned identity>`: the run pulls with that identity's role;
/// a user-assigned identity is no trusted service, so closed public access stops it.
#[tokio::test]
async fn a_user_assigned_identity_pulls_for_its_task_but_is_not_a_trusted_service() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let reg = registry(&s, "uaitask", None).await;
    let base = push_busybox(&s, "uaitask");
    let uai_path =
        format!("{}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/task-uai", s.group_path("rg"));
    let (st, uai) =
        s.mgmt(Method::PUT, &format!("{uai_path}?api-version=2023-01-31"), Some(json!({"location": "westus"}))).await;
    assert!(st.is_success(), "{uai}");
    let (client_id, principal) = (
        uai["properties"]["clientId"].as_str().unwrap().to_string(),
        uai["properties"]["principalId"].as_str().unwrap().to_string(),
    );
    grant(&s, &reg, &principal, ACR_PULL, None).await;
    let yaml = format!("steps:\n  - cmd: {base} echo pulled-with-the-uai\n");
    let identity = json!({"type": "UserAssigned", "userAssignedIdentities": {uai["id"].as_str().unwrap(): {}}});
    let t =
        put_task(&s, &reg, "uai-pull", &yaml, json!({"sourceRegistry": {"identity": client_id}}), Some(identity)).await;
    assert_eq!(t["identity"]["type"], "UserAssigned", "{t}");
    let (r, log) = run_task(&s, &reg, "uai-pull").await;
    assert_eq!(r["properties"]["status"], "Succeeded", "{r}\n{log}");
    assert!(log.contains("pulled-with-the-uai"), "{log}");
    let (st, _) = s
        .mgmt(
            Method::PATCH,
            &format!("{reg}?api-version=2025-11-01"),
            Some(json!({"properties": {"publicNetworkAccess": "Disabled", "networkRuleBypassAllowedForTasks": true}})),
        )
        .await;
    assert_eq!(st, 200);
    let (r, log) = run_task(&s, &reg, "uai-pull").await;
    assert_eq!(r["properties"]["status"], "Failed", "only a task's system-assigned identity is trusted: {r}\n{log}");
}
