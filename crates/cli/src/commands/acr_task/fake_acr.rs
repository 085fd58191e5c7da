//! A fake ACR for the flow tests of the task, run and build commands: ARM routes for tasks and
//! runs, `listBuildSourceUploadUrl` and a blob endpoint that takes source uploads (Put Blob,
//! Put Block, Put Block List) and serves a run log. Owns recording every request as sent;
//! must never be compiled outside tests.

use std::sync::{Arc, Mutex};

use clap::Parser;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;
use crate::profile::Profile;

pub(super) const REG: &str =
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry";
pub(super) const UAI: &str =
    "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
pub(super) const CLIENT_ID: &str = "7d3c7d2e-1111-4222-8333-944455556666";

#[derive(Debug, Clone)]
pub(super) struct Req {
    pub(super) method: String,
    /// Path and query, as sent.
    pub(super) target: String,
    pub(super) authorized: bool,
    /// The body, when it is JSON.
    pub(super) body: Option<Value>,
    /// Header names (lower case) and values.
    pub(super) headers: Vec<(String, String)>,
    /// The body's bytes.
    pub(super) raw: Vec<u8>,
}

impl Req {
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(super) fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

/// What the fake ACR holds; each test sets what it needs.
#[derive(Default)]
pub(super) struct Acr {
    pub(super) abac: bool,
    /// The task `listDetails` and GET answer with (404 when None).
    pub(super) task: Option<Value>,
    /// Statuses `GET runs/{id}` answers with, one per call (the last one repeats).
    pub(super) run_statuses: Vec<&'static str>,
    /// `GET runs` answers `{"value": runs}`.
    pub(super) runs: Vec<Value>,
    /// The `listLogSasUrl` answer (default: a logLink to the blob below).
    pub(super) log_links: Option<Value>,
    /// The log blob and its `Complete` metadata.
    pub(super) log: Vec<u8>,
    pub(super) complete: Option<&'static str>,
    /// The source blob as the uploads left it (Put Blob, or the committed block list).
    pub(super) uploaded: Option<Vec<u8>>,
    /// Blocks put and not committed yet, by block id.
    pub(super) blocks: Vec<(String, Vec<u8>)>,
    /// Refuse source uploads with this status, storage error code and message.
    pub(super) upload_error: Option<(u16, &'static str, &'static str)>,
    pub(super) requests: Vec<Req>,
}

/// The `relativePath` the fake's `listBuildSourceUploadUrl` answers with.
pub(super) const RELATIVE_PATH: &str = "source/202612/upload-1.tar.gz";

/// The blob service's answer to a source upload.
fn source_upload(acr: &mut Acr, req: &Req) -> Reply {
    if let Some((status, code, message)) = acr.upload_error {
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        );
        return Reply(status, vec![("x-ms-error-code", code.to_string())], xml.into_bytes());
    }
    let query = req.target.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let param = |k: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
            .map(|v| percent_encoding::percent_decode_str(v).decode_utf8().unwrap().to_string())
    };
    match param("comp").as_deref() {
        Some("block") => acr.blocks.push((param("blockid").unwrap(), req.raw.clone())),
        Some("blocklist") => {
            let xml = String::from_utf8(req.raw.clone()).unwrap();
            let mut blob = Vec::new();
            for id in xml.split("<Latest>").skip(1).map(|x| x.split("</Latest>").next().unwrap()) {
                let block = acr.blocks.iter().find(|(b, _)| b == id).unwrap_or_else(|| panic!("no block {id}"));
                blob.extend_from_slice(&block.1);
            }
            acr.uploaded = Some(blob);
        }
        None if req.header("x-ms-blob-type") == Some("BlockBlob") => acr.uploaded = Some(req.raw.clone()),
        other => panic!("unexpected source upload {other:?}: {}", req.line()),
    }
    Reply(201, vec![], vec![])
}

pub(super) type Shared = Arc<Mutex<Acr>>;

pub(super) struct Reply(pub(super) u16, pub(super) Vec<(&'static str, String)>, pub(super) Vec<u8>);

pub(super) fn json_reply(status: u16, v: Value) -> Reply {
    Reply(status, vec![("Content-Type", "application/json".into())], v.to_string().into_bytes())
}

pub(super) fn route(acr: &mut Acr, base: &str, req: &Req) -> Reply {
    let path = req.target.split('?').next().unwrap_or_default().to_string();
    let not_found = |what: &str| {
        json_reply(404, json!({"error": {"code": "ResourceNotFound", "message": format!("{what} was not found.")}}))
    };
    if path.starts_with("/acct/source/") && req.method == "PUT" {
        return source_upload(acr, req);
    }
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
        ("POST", "/listBuildSourceUploadUrl") => json_reply(
            200,
            json!({"uploadUrl": format!("{base}/acct/source/202612/upload-1.tar.gz?sv=2026-04-06&sig=s%2Fig"),
                   "relativePath": RELATIVE_PATH}),
        ),
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

pub(super) async fn serve(acr: Shared) -> String {
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
                    body: serde_json::from_slice(body).ok(),
                    raw: body.to_vec(),
                    headers,
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

pub(super) async fn fake(acr: Acr) -> (Shared, Client) {
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
pub(super) struct Cli {
    #[command(subcommand)]
    pub(super) cmd: TaskCmd,
}

pub(super) fn task(argv: &[&str]) -> TaskCmd {
    Cli::try_parse_from(std::iter::once("task").chain(argv.iter().copied())).unwrap().cmd
}

#[derive(Parser)]
pub(super) struct RunCli {
    #[command(flatten)]
    pub(super) args: AcrRunArgs,
}

pub(super) fn lines(acr: &Shared) -> Vec<String> {
    acr.lock().unwrap().requests.iter().map(Req::line).collect()
}

pub(super) fn sent(acr: &Shared, line: &str) -> Value {
    let a = acr.lock().unwrap();
    let r = a.requests.iter().find(|r| r.line() == line).unwrap_or_else(|| panic!("{line} was not sent"));
    r.body.clone().unwrap_or(Value::Null)
}

pub(super) const LOOKUP: [&str; 2] = [
    "GET /subscriptions/sub/providers/Microsoft.ContainerRegistry/registries?api-version=2025-11-01",
    "GET /subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry?api-version=2025-11-01",
];

pub(super) fn with_lookup(rest: &[&str]) -> Vec<String> {
    LOOKUP.iter().chain(rest).map(|s| s.replace("REG", REG)).collect()
}
