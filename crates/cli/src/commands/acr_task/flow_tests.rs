//! The task commands against a fake ACR in the test (ARM routes for tasks and runs, a log
//! blob): which requests each command sends, in which order, with which api-versions and
//! bodies, and how answers become output and exit codes.

use std::sync::{Arc, Mutex};

use clap::Parser;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::profile::Profile;

const REG: &str = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry";
const UAI: &str = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
const CLIENT_ID: &str = "7d3c7d2e-1111-4222-8333-944455556666";

#[derive(Debug, Clone)]
struct Req {
    method: String,
    /// Path and query, as sent.
    target: String,
    authorized: bool,
    body: Option<Value>,
}

impl Req {
    fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

/// What the fake ACR holds; each test sets what it needs.
#[derive(Default)]
struct Acr {
    abac: bool,
    /// The task `listDetails` and GET answer with (404 when None).
    task: Option<Value>,
    /// Statuses `GET runs/{id}` answers with, one per call (the last one repeats).
    run_statuses: Vec<&'static str>,
    /// `GET runs` answers `{"value": runs}`.
    runs: Vec<Value>,
    /// The `listLogSasUrl` answer (default: a logLink to the blob below).
    log_links: Option<Value>,
    /// The log blob and its `Complete` metadata.
    log: Vec<u8>,
    complete: Option<&'static str>,
    requests: Vec<Req>,
}

type Shared = Arc<Mutex<Acr>>;

struct Reply(u16, Vec<(&'static str, String)>, Vec<u8>);

fn json_reply(status: u16, v: Value) -> Reply {
    Reply(status, vec![("Content-Type", "application/json".into())], v.to_string().into_bytes())
}

fn route(acr: &mut Acr, base: &str, req: &Req) -> Reply {
    let path = req.target.split('?').next().unwrap_or_default().to_string();
    let not_found = |what: &str| {
        json_reply(404, json!({"error": {"code": "ResourceNotFound", "message": format!("{what} was not found.")}}))
    };
    if let Some(blob) = path.strip_prefix("/acct/") {
        assert!(blob.starts_with("logs/"), "unexpected blob {blob}");
        let meta = acr.complete.map(|c| ("x-ms-meta-Complete", c.to_string()));
        let len = acr.log.len();
        return match req.method.as_str() {
            "HEAD" => Reply(200, [("Content-Length", len.to_string())].into_iter().chain(meta).collect(), vec![]),
            _ => {
                let body = acr.log[..len.min(4096)].to_vec();
                let headers = [("Content-Range", format!("bytes 0-{}/{len}", body.len() - 1))].into_iter().chain(meta);
                Reply(206, headers.collect(), body)
            }
        };
    }
    let rest = match path.strip_prefix(REG) {
        Some(r) => r.to_string(),
        None if path == "/subscriptions/sub/providers/Microsoft.ContainerRegistry/registries" => {
            return json_reply(200, json!({"value": [{"name": "myregistry", "id": REG}]}));
        }
        None if path == UAI => return json_reply(200, json!({"id": UAI, "properties": {"clientId": CLIENT_ID}})),
        None => return not_found(&path),
    };
    let task_reply = |t: &Option<Value>| match t {
        Some(t) => json_reply(200, t.clone()),
        None => not_found("The task"),
    };
    match (req.method.as_str(), rest.as_str()) {
        ("GET", "") => json_reply(
            200,
            json!({"id": REG, "name": "myregistry", "location": "westus", "sku": {"name": "Premium"},
                   "properties": {"roleAssignmentMode": if acr.abac { "AbacRepositoryPermissions" } else { "LegacyRegistryPermissions" }}}),
        ),
        ("PUT", r) if r.starts_with("/tasks/") => {
            let mut t = req.body.clone().unwrap_or_default();
            t["id"] = json!(format!("{REG}{r}"));
            t["name"] = json!(r.trim_start_matches("/tasks/"));
            t["type"] = json!("Microsoft.ContainerRegistry/registries/tasks");
            t["properties"]["provisioningState"] = json!("Succeeded");
            json_reply(200, t)
        }
        ("POST", r) if r.ends_with("/listDetails") => task_reply(&acr.task),
        ("GET" | "PATCH", r) if r.starts_with("/tasks/") => task_reply(&acr.task),
        ("DELETE", r) if r.starts_with("/tasks/") => Reply(200, vec![], vec![]),
        ("GET", "/tasks") => json_reply(200, json!({"value": acr.task.iter().collect::<Vec<_>>()})),
        ("POST", "/scheduleRun") => json_reply(
            200,
            json!({"id": format!("{REG}/runs/ca1"), "name": "ca1", "type": "Microsoft.ContainerRegistry/registries/runs",
                   "properties": {"runId": "ca1", "status": "Queued"}}),
        ),
        ("GET", "/runs") => json_reply(200, json!({"value": acr.runs})),
        ("POST", r) if r.ends_with("/listLogSasUrl") => json_reply(
            200,
            acr.log_links
                .clone()
                .unwrap_or_else(|| json!({"logLink": format!("{base}/acct/logs/ca1/rawtext.log?sig=x")})),
        ),
        ("POST", r) if r.ends_with("/cancel") => Reply(200, vec![], vec![]),
        ("GET" | "PATCH", r) if r.starts_with("/runs/") => {
            let status = if acr.run_statuses.len() > 1 { acr.run_statuses.remove(0) } else { acr.run_statuses[0] };
            json_reply(200, json!({"name": "ca1", "properties": {"runId": "ca1", "status": status, "task": "t1"}}))
        }
        _ => not_found(&path),
    }
}

async fn serve(acr: Shared) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let b = base.clone();
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let (acr, base) = (acr.clone(), b.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let mut lines = head.split("\r\n");
                let first: Vec<String> = lines.next().unwrap().split(' ').map(str::to_string).collect();
                let headers: Vec<(String, String)> = lines
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                    .collect();
                let len: usize =
                    headers.iter().find(|(k, _)| k == "content-length").map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body = &buf[head_end..];
                let req = Req {
                    method: first[0].clone(),
                    target: first[1].clone(),
                    authorized: headers.iter().any(|(k, _)| k == "authorization"),
                    body: (!body.is_empty()).then(|| serde_json::from_slice(body).unwrap()),
                };
                let Reply(status, headers, body) = {
                    let mut a = acr.lock().unwrap();
                    a.requests.push(req.clone());
                    route(&mut a, &base, &req)
                };
                let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
                if !headers.iter().any(|(k, _)| *k == "Content-Length") {
                    out += &format!("Content-Length: {}\r\n", body.len());
                }
                for (k, v) in headers {
                    out += &format!("{k}: {v}\r\n");
                }
                out += "\r\n";
                let mut bytes = out.into_bytes();
                bytes.extend_from_slice(&body);
                let _ = sock.write_all(&bytes).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    base
}

async fn fake(acr: Acr) -> (Shared, Client) {
    let shared = Arc::new(Mutex::new(acr));
    let server = serve(shared.clone()).await;
    let profile = Profile {
        server,
        subscription: Some("sub".into()),
        access_token: Some("management-token".into()),
        expires_on: Some(i64::MAX / 2),
        ..Default::default()
    };
    (shared, Client::new(profile).unwrap())
}

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: TaskCmd,
}

fn task(argv: &[&str]) -> TaskCmd {
    Cli::try_parse_from(std::iter::once("task").chain(argv.iter().copied())).unwrap().cmd
}

#[derive(Parser)]
struct RunCli {
    #[command(flatten)]
    args: AcrRunArgs,
}

fn lines(acr: &Shared) -> Vec<String> {
    acr.lock().unwrap().requests.iter().map(Req::line).collect()
}

fn sent(acr: &Shared, line: &str) -> Value {
    let a = acr.lock().unwrap();
    let r = a.requests.iter().find(|r| r.line() == line).unwrap_or_else(|| panic!("{line} was not sent"));
    r.body.clone().unwrap_or(Value::Null)
}

const LOOKUP: [&str; 2] = [
    "GET /subscriptions/sub/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01",
    "GET /subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry?api-version=2025-11-01",
];

fn with_lookup(rest: &[&str]) -> Vec<String> {
    LOOKUP.iter().chain(rest).map(|s| s.replace("REG", REG)).collect()
}

fn encoded_task() -> Value {
    json!({"id": format!("{REG}/tasks/t1"), "name": "t1", "properties": {
        "timeout": 600, "status": "Enabled", "platform": {"os": "linux"},
        "step": {"type": "EncodedTask", "encodedTaskContent": "ZXhpc3Rpbmc="},
        "trigger": {"baseImageTrigger": {"name": "defaultBaseimageTriggerName", "status": "Enabled"}},
        "credentials": {"customRegistries": {"other.azurecr.io": {"identity": "[system]"}}}}})
}

#[tokio::test]
async fn create_puts_the_task_and_prints_it_flattened() {
    let (acr, client) = fake(Acr::default()).await;
    let out = dispatch(&client, task(&["create", "-n", "t1", "-r", "myregistry", "--cmd", "hello-world"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lines(&acr), with_lookup(&["PUT REG/tasks/t1?api-version=2025-03-01-preview"]));
    let body = sent(&acr, &format!("PUT {REG}/tasks/t1?api-version=2025-03-01-preview"));
    assert_eq!(body["location"], "westus");
    assert_eq!(
        body["properties"]["step"]["encodedTaskContent"],
        body::b64(b"version: v1.1.0\nsteps: \n  - cmd: hello-world\n    disableWorkingDirectoryOverride: true\n    timeout: 3600\n")
    );
    assert_eq!(out["provisioningState"], "Succeeded");
    assert_eq!(out["timeout"], 3600);
    assert!(out.get("properties").is_none());
    assert!(acr.lock().unwrap().requests.iter().all(|r| r.authorized));
}

#[tokio::test]
async fn create_reads_the_client_id_of_a_user_assigned_source_identity() {
    let (acr, client) = fake(Acr::default()).await;
    dispatch(&client, task(&["create", "-n", "t1", "-r", "myregistry", "--cmd", "x", "--source-acr-auth-id", UAI]))
        .await
        .unwrap();
    assert_eq!(
        lines(&acr),
        with_lookup(&[&format!("GET {UAI}?api-version=2024-11-30"), "PUT REG/tasks/t1?api-version=2025-03-01-preview"])
    );
    let body = sent(&acr, &format!("PUT {REG}/tasks/t1?api-version=2025-03-01-preview"));
    assert_eq!(body["identity"], json!({"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}}));
    assert_eq!(body["properties"]["credentials"], json!({"sourceRegistry": {"identity": CLIENT_ID}}));
}

#[tokio::test]
async fn conflicting_source_auth_fails_after_the_lookup_without_a_put() {
    let argv = [
        "create",
        "-n",
        "t1",
        "-r",
        "myregistry",
        "--cmd",
        "x",
        "--auth-mode",
        "None",
        "--source-acr-auth-id",
        "[system]",
    ];
    let (acr, client) = fake(Acr::default()).await;
    let err = dispatch(&client, task(&argv)).await.unwrap_err();
    assert!(err.to_string().starts_with("Error: Conflicting Authentication Parameters"));
    assert_eq!(err.exit_code(), 1);
    assert_eq!(lines(&acr), with_lookup(&[]));
    // An ABAC registry accepts it (with a deprecation warning).
    let (acr, client) = fake(Acr { abac: true, ..Default::default() }).await;
    dispatch(&client, task(&argv)).await.unwrap();
    let body = sent(&acr, &format!("PUT {REG}/tasks/t1?api-version=2025-03-01-preview"));
    assert_eq!(
        body["properties"]["credentials"],
        json!({"sourceRegistry": {"loginMode": "None", "identity": "[system]"}})
    );
}

#[tokio::test]
async fn update_with_a_new_system_source_identity_patches_twice() {
    let (acr, client) = fake(Acr { task: Some(encoded_task()), ..Default::default() }).await;
    dispatch(&client, task(&["update", "-n", "t1", "-r", "myregistry", "--source-acr-auth-id", "[system]"]))
        .await
        .unwrap();
    assert_eq!(
        lines(&acr),
        with_lookup(&[
            "POST REG/tasks/t1/listDetails?api-version=2025-03-01-preview",
            "PATCH REG/tasks/t1?api-version=2025-03-01-preview",
            "PATCH REG/tasks/t1?api-version=2025-03-01-preview",
        ])
    );
    let a = acr.lock().unwrap();
    let patches: Vec<&Value> =
        a.requests.iter().filter(|r| r.method == "PATCH").filter_map(|r| r.body.as_ref()).collect();
    assert_eq!(patches[0], &json!({"identity": {"type": "SystemAssigned"}}));
    assert_eq!(patches[1]["properties"]["credentials"], json!({"sourceRegistry": {"identity": "[system]"}}));
    assert_eq!(patches[1]["properties"]["step"], json!({"type": "EncodedTask", "encodedTaskContent": "ZXhpc3Rpbmc="}));
}

#[tokio::test]
async fn task_run_streams_the_log_and_fails_with_the_metadata() {
    let (acr, client) = fake(Acr {
        task: Some(encoded_task()),
        log: b"2026/12/04 18:00:00 Downloading source code...\r\nrun failed\r\n".to_vec(),
        complete: Some("Failed"),
        ..Default::default()
    })
    .await;
    let err = dispatch(&client, task(&["run", "-n", "t1", "-r", "myregistry"])).await.unwrap_err();
    assert_eq!(err.to_string(), "Run failed");
    assert_eq!(err.exit_code(), 1);
    assert_eq!(
        lines(&acr),
        with_lookup(&[
            "POST REG/tasks/t1/listDetails?api-version=2025-03-01-preview",
            "POST REG/scheduleRun?api-version=2025-03-01-preview",
            "POST REG/runs/ca1/listLogSasUrl?api-version=2025-03-01-preview",
            "HEAD /acct/logs/ca1/rawtext.log?sig=x",
            "GET /acct/logs/ca1/rawtext.log?sig=x",
            // After each read az looks at the blob again.
            "HEAD /acct/logs/ca1/rawtext.log?sig=x",
        ])
    );
    assert_eq!(
        sent(&acr, &format!("POST {REG}/scheduleRun?api-version=2025-03-01-preview")),
        json!({"type": "TaskRunRequest", "taskId": format!("{REG}/tasks/t1"),
               "overrideTaskStepProperties": {"arguments": [], "values": []}})
    );
    let a = acr.lock().unwrap();
    assert!(a.requests.iter().filter(|r| r.target.starts_with("/acct/")).all(|r| !r.authorized));
}

#[tokio::test]
async fn task_run_no_wait_and_no_logs() {
    let (acr, client) = fake(Acr { task: Some(encoded_task()), ..Default::default() }).await;
    let out = dispatch(&client, task(&["run", "-n", "t1", "-r", "myregistry", "--no-wait"])).await.unwrap();
    assert!(out.is_none(), "--no-wait prints nothing on stdout");
    assert_eq!(lines(&acr).len(), 4);

    let (acr, client) =
        fake(Acr { task: Some(encoded_task()), run_statuses: vec!["Running", "Succeeded"], ..Default::default() })
            .await;
    let out = dispatch(&client, task(&["run", "-n", "t1", "-r", "myregistry", "--no-logs"])).await.unwrap().unwrap();
    assert_eq!(out["status"], "Succeeded");
    assert_eq!(out["runId"], "ca1");
    let polls = lines(&acr).iter().filter(|l| l.starts_with(&format!("GET {REG}/runs/ca1?"))).count();
    assert_eq!(polls, 2);

    let (_, client) =
        fake(Acr { task: Some(encoded_task()), run_statuses: vec!["Failed"], ..Default::default() }).await;
    let err = dispatch(&client, task(&["run", "-n", "t1", "-r", "myregistry", "--no-logs"])).await.unwrap_err();
    assert!(
        err.to_string().starts_with("The run with ID 'ca1' finished with unsuccessful status 'RunStatus.FAILED'."),
        "{err}"
    );
    assert_eq!(err.exit_code(), 1);
}

#[tokio::test]
async fn task_logs_of_the_last_run_never_fail_on_the_metadata() {
    let (acr, client) = fake(Acr {
        runs: vec![json!({"name": "cc7", "properties": {"runId": "cc7", "task": "t1"}})],
        log: b"x\r\n".to_vec(),
        complete: Some("failed"),
        ..Default::default()
    })
    .await;
    assert!(dispatch(&client, task(&["logs", "-n", "t1", "-r", "myregistry"])).await.unwrap().is_none());
    assert_eq!(
        lines(&acr)[2],
        format!("GET {REG}/runs?$filter=TaskName%20eq%20%27t1%27&$top=1&api-version=2025-03-01-preview")
    );
    assert_eq!(lines(&acr)[3], format!("POST {REG}/runs/cc7/listLogSasUrl?api-version=2025-03-01-preview"));

    let (_, client) = fake(Acr::default()).await;
    let err = dispatch(&client, task(&["logs", "-n", "t2", "-r", "myregistry"])).await.unwrap_err();
    assert_eq!(err.to_string(), "Could not find the last created run for task 't2'.");
    assert_eq!(err.exit_code(), 1);

    let (_, client) = fake(Acr { log_links: Some(json!({})), ..Default::default() }).await;
    let err = dispatch(&client, task(&["logs", "--run-id", "cb8", "-r", "myregistry"])).await.unwrap_err();
    assert_eq!(err.to_string(), "Could not get logs for ID: cb8");
}

#[tokio::test]
async fn show_of_a_missing_task_exits_3_and_list_runs_filters() {
    let (acr, client) = fake(Acr::default()).await;
    let err = dispatch(&client, task(&["show", "-n", "nope", "-r", "myregistry"])).await.unwrap_err();
    assert_eq!(err.exit_code(), 3);
    dispatch(&client, task(&["list-runs", "-r", "myregistry", "-n", "t1", "--run-status", "Succeeded", "--top", "3"]))
        .await
        .unwrap();
    assert_eq!(
        lines(&acr).last().unwrap(),
        &format!(
            "GET {REG}/runs?$filter=TaskName%20eq%20%27t1%27%20and%20Status%20eq%20%27Succeeded%27&$top=3&api-version=2025-03-01-preview"
        )
    );
    let out = dispatch(&client, task(&["cancel-run", "--run-id", "cc7", "-r", "myregistry"])).await.unwrap();
    assert!(out.is_none());
    let a = acr.lock().unwrap();
    let cancel = a.requests.last().unwrap();
    assert_eq!(cancel.line(), format!("POST {REG}/runs/cc7/cancel?api-version=2025-03-01-preview"));
    assert!(cancel.body.is_none());
}

#[tokio::test]
async fn update_run_patches_the_archive_flag() {
    let (acr, client) = fake(Acr { run_statuses: vec!["Succeeded"], ..Default::default() }).await;
    dispatch(&client, task(&["update-run", "--run-id", "ca1", "-r", "myregistry", "--no-archive", "true"]))
        .await
        .unwrap();
    assert_eq!(
        sent(&acr, &format!("PATCH {REG}/runs/ca1?api-version=2025-03-01-preview")),
        json!({"isArchiveEnabled": false})
    );
}

#[tokio::test]
async fn credentials_merge_by_key() {
    let (acr, client) = fake(Acr { task: Some(encoded_task()), ..Default::default() }).await;
    let err = dispatch(
        &client,
        task(&[
            "credential",
            "add",
            "-n",
            "t1",
            "-r",
            "myregistry",
            "--login-server",
            "other.azurecr.io",
            "--use-identity",
        ]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "Login server 'other.azurecr.io' already exists. You cannot add it again.");
    assert!(!lines(&acr).iter().any(|l| l.starts_with("PATCH")));

    let out = dispatch(
        &client,
        task(&["credential", "remove", "-n", "t1", "-r", "myregistry", "--login-server", "other.azurecr.io"]),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out, json!({"other.azurecr.io": {"identity": "[system]"}}), "the map from the PATCH answer");
    let l = lines(&acr);
    assert_eq!(l.last().unwrap(), &format!("PATCH {REG}/tasks/t1?api-version=2025-03-01-preview"));
    assert!(!l[l.len() - 3..].iter().any(|x| x.contains("listDetails")), "remove sends the PATCH only: {l:?}");
}

#[tokio::test]
async fn acr_run_sends_the_encoded_task_and_streams() {
    let (acr, client) =
        fake(Acr { log: b"Hello from Docker!\r\n".to_vec(), complete: Some("successful"), ..Default::default() }).await;
    let args = RunCli::try_parse_from(["run", "-r", "myregistry", "--cmd", "hello-world", "/dev/null"]).unwrap().args;
    assert!(acr_run_with(&client, args).await.unwrap().is_none());
    assert_eq!(
        sent(&acr, &format!("POST {REG}/scheduleRun?api-version=2025-03-01-preview")),
        json!({"type": "EncodedTaskRunRequest",
               "encodedTaskContent": body::b64(b"version: v1.1.0\nsteps: \n  - cmd: hello-world\n    disableWorkingDirectoryOverride: true\n"),
               "values": [], "platform": {"os": "linux", "architecture": "amd64"}, "credentials": {}})
    );
    assert!(lines(&acr).iter().any(|l| l.starts_with("GET /acct/logs/")));

    let (acr, client) = fake(Acr::default()).await;
    let args = RunCli::try_parse_from(["run", "-r", "myregistry", "--cmd", "hello-world", "."]).unwrap().args;
    let err = acr_run_with(&client, args).await.unwrap_err();
    assert!(err.to_string().contains("local source contexts are not supported yet"), "{err}");
    assert_eq!(err.exit_code(), 1);
    assert!(lines(&acr).is_empty());
}

#[tokio::test]
async fn delete_without_yes_needs_a_terminal() {
    let (acr, client) = fake(Acr { task: Some(encoded_task()), ..Default::default() }).await;
    dispatch(&client, task(&["delete", "-n", "t1", "-r", "myregistry", "--yes"])).await.unwrap();
    assert_eq!(lines(&acr).last().unwrap(), &format!("DELETE {REG}/tasks/t1?api-version=2025-03-01-preview"));
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let err = dispatch(&client, task(&["delete", "-n", "t1", "-r", "myregistry"])).await.unwrap_err();
        assert!(err.to_string().ends_with("Pass --yes to confirm."), "{err}");
    }
}

#[tokio::test]
async fn identity_commands() {
    let mut t = encoded_task();
    t["identity"] = json!({"type": "SystemAssigned, UserAssigned", "principalId": "p", "tenantId": "t",
                           "userAssignedIdentities": {UAI: {"clientId": CLIENT_ID}}});
    let (acr, client) = fake(Acr { task: Some(t), ..Default::default() }).await;
    dispatch(&client, task(&["identity", "assign", "-n", "t1", "-r", "myregistry", "--identities", "[system]", UAI]))
        .await
        .unwrap();
    assert_eq!(
        sent(&acr, &format!("PATCH {REG}/tasks/t1?api-version=2025-03-01-preview")),
        json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {UAI: {}}}})
    );
    assert!(!lines(&acr).iter().any(|l| l.contains("listDetails")), "assign sends the PATCH only");

    // Removing the system identity keeps the user-assigned ones.
    let before = lines(&acr).len();
    dispatch(&client, task(&["identity", "remove", "-n", "t1", "-r", "myregistry"])).await.unwrap();
    {
        let a = acr.lock().unwrap();
        let new: Vec<&Req> = a.requests[before..].iter().filter(|r| !r.target.contains("/registries?")).collect();
        assert!(new.iter().any(|r| r.target.contains("/listDetails")));
        let patch = new.iter().find(|r| r.method == "PATCH").unwrap();
        assert_eq!(
            patch.body.as_ref().unwrap(),
            &json!({"identity": {"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}}})
        );
    }

    let shown = dispatch(&client, task(&["identity", "show", "-n", "t1", "-r", "myregistry"])).await.unwrap().unwrap();
    assert_eq!(shown["principalId"], "p");
    let err =
        dispatch(&client, task(&["identity", "remove", "-n", "t1", "-r", "myregistry", "--identities", "[all]", UAI]))
            .await
            .unwrap_err();
    assert_eq!(err.to_string(), "Cannot specify additional identities when [all] is used in [--identities]");
}

#[tokio::test]
async fn credential_update_needs_the_login_server_and_list_reads_details() {
    let (acr, client) = fake(Acr { task: Some(encoded_task()), ..Default::default() }).await;
    let err = dispatch(
        &client,
        task(&[
            "credential",
            "update",
            "-n",
            "t1",
            "-r",
            "myregistry",
            "--login-server",
            "nope.io",
            "-u",
            "u",
            "-p",
            "p",
        ]),
    )
    .await
    .unwrap_err();
    assert_eq!(err.to_string(), "Login server 'nope.io' not found.");
    let listed =
        dispatch(&client, task(&["credential", "list", "-n", "t1", "-r", "myregistry"])).await.unwrap().unwrap();
    assert_eq!(listed, json!({"other.azurecr.io": {"identity": "[system]"}}));
    assert!(lines(&acr).last().unwrap().contains("/listDetails"));
}

#[tokio::test]
async fn show_with_secure_properties_and_list() {
    let (acr, client) = fake(Acr { task: Some(encoded_task()), ..Default::default() }).await;
    let shown = dispatch(&client, task(&["show", "-n", "t1", "-r", "myregistry", "--with-secure-properties"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shown["credentials"]["customRegistries"]["other.azurecr.io"]["identity"], "[system]");
    assert!(lines(&acr).last().unwrap().starts_with(&format!("POST {REG}/tasks/t1/listDetails")));
    let listed = dispatch(&client, task(&["list", "-r", "myregistry", "-g", "rg"])).await.unwrap().unwrap();
    assert_eq!(listed[0]["name"], "t1");
    assert_eq!(listed[0]["timeout"], 600);
    // With -g the registry list is not needed.
    assert_eq!(lines(&acr).last().unwrap(), &format!("GET {REG}/tasks?api-version=2025-03-01-preview"));
    assert_eq!(lines(&acr)[lines(&acr).len() - 2], LOOKUP[1]);
}
