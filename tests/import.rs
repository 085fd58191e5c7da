//! Image import end to end against a real server: `wharf acr import` between registries of one
//! deployment (by login server, by name, by resource id; tags, digests, a multi-arch index,
//! untagged repositories, NoForce refused before anything is copied, Force), and the REST
//! operation az polls (202 + Location + Retry-After, 200 when done, ARM's error when failed);
//! who may import (the importer role on the target, a pull on the source decided in the
//! source's mode, ABAC conditions included); the import service as a trusted service of a
//! network-restricted source and target; the export policy; a source without public access
//! named only by resource id; and from a registry outside the deployment (a Debian
//! `docker-registry` with htpasswd on loopback): credentials, an index, digests checked.

mod common;

use std::time::Duration;

use common::{
    Cli, OCI_INDEX, OCI_MANIFEST, TestImage, TestServer, assign, external_registry, oci_index, require_tool,
    service_principal, sp_access_token,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const MANAGEMENT_SCOPE: &str = "https://management.core.windows.net//.default";
const IMPORTER_ROLE: &str = "Container Registry Data Importer and Data Reader";

/// POSTs `importImage` on `target` (with `token`, or the administrator's) and polls the
/// operation until it ends: the final status and body, and how many polls answered 202.
async fn import_rest(s: &TestServer, token: Option<&str>, rg: &str, target: &str, body: Value) -> (StatusCode, Value) {
    let path = format!("{}/importImage?api-version=2026-09-01-preview", s.registry_path(rg, target));
    let mut req = s.client().post(format!("{}{path}", s.base())).json(&body);
    let token = token.map(str::to_string).or_else(|| s.bearer()).expect("a token");
    req = req.bearer_auth(&token);
    let resp = req.send().await.expect("importImage");
    let status = resp.status();
    if status != StatusCode::ACCEPTED {
        return (status, resp.json().await.unwrap_or(Value::Null));
    }
    assert_eq!(resp.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    let location = resp.headers().get("location").and_then(|v| v.to_str().ok()).expect("Location").to_string();
    assert!(location.contains("/importOperations/"), "{location}");
    for _ in 0..200 {
        let r = s.client().get(&location).bearer_auth(&token).send().await.expect("poll");
        let st = r.status();
        if st != StatusCode::ACCEPTED {
            return (st, r.json().await.unwrap_or(Value::Null));
        }
        assert_eq!(r.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the import did not finish");
}

fn tsv(cli: &Cli, args: &[&str]) -> String {
    cli.run(args).ok().stdout.trim().to_string()
}

async fn digest_of(reg: &common::Registry<'_>, repo: &str, reference: &str) -> Option<String> {
    let r = reg.get_manifest(repo, reference).await;
    (r.status == StatusCode::OK).then(|| r.header("docker-content-digest").unwrap_or_default().to_string())
}

#[tokio::test]
async fn import_between_registries_of_the_deployment() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let src = s.registry("impsrc").await;
    let tgt = s.registry("imptgt").await;
    let (_, v1) = src.push_image("team/app", "v1", "app v1").await;

    // By login server (az looks it up and sends the resource id); default target = source.
    let src_image = format!("{}/team/app:v1", s.login_server("impsrc"));
    let r = cli.run(&["acr", "import", "-n", "imptgt", "--source", &src_image]).ok();
    assert!(r.stdout.trim().is_empty(), "az prints nothing on success: {r:?}");
    assert_eq!(digest_of(&tgt, "team/app", "v1").await.as_deref(), Some(v1.as_str()));
    // The blobs came along as links: the target serves them.
    let image = TestImage::new("app v1", "amd64");
    for (d, bytes) in image.blobs() {
        let b = tgt.get_blob("team/app", &d).await;
        assert_eq!(b.status, StatusCode::OK, "blob {d} in the target");
        assert_eq!(&b.body[..], &bytes[..]);
    }

    // By registry name, with several target tags.
    cli.run(&[
        "acr",
        "import",
        "-n",
        "imptgt",
        "--registry",
        "impsrc",
        "--source",
        "team/app:v1",
        "-t",
        "copy:one",
        "-t",
        "copy:two",
    ])
    .ok();
    assert_eq!(digest_of(&tgt, "copy", "one").await.as_deref(), Some(v1.as_str()));
    assert_eq!(digest_of(&tgt, "copy", "two").await.as_deref(), Some(v1.as_str()));

    // By digest and resource id, untagged: the manifest by digest only.
    let src_id = tsv(&cli, &["acr", "show", "-n", "impsrc", "--query", "id", "-o", "tsv"]);
    let by_digest = format!("team/app@{v1}");
    cli.run(&[
        "acr",
        "import",
        "-n",
        "imptgt",
        "--registry",
        &src_id,
        "--source",
        &by_digest,
        "--repository",
        "untagged",
    ])
    .ok();
    assert_eq!(digest_of(&tgt, "untagged", &v1).await.as_deref(), Some(v1.as_str()));
    let tags = tgt.server.http(Method::GET, "/v2/imptgt/untagged/tags/list").send().await.unwrap();
    let tags: Value = tags.json().await.unwrap();
    assert!(tags["tags"].as_array().is_none_or(|t| t.is_empty()), "untagged: {tags}");

    // A multi-arch index: the index and every child.
    let (amd, arm) = (TestImage::new("multi", "amd64"), TestImage::new("multi", "arm64"));
    for img in [&amd, &arm] {
        for (_, b) in img.blobs() {
            src.push_blob("multi", &b).await;
        }
        assert_eq!(
            src.put_manifest("multi", &img.digest, OCI_MANIFEST, &img.manifest).await.status,
            StatusCode::CREATED
        );
    }
    let index = oci_index(&[(&amd.manifest, "amd64"), (&arm.manifest, "arm64")]);
    assert_eq!(src.put_manifest("multi", "v1", OCI_INDEX, &index).await.status, StatusCode::CREATED);
    cli.run(&["acr", "import", "-n", "imptgt", "--registry", "impsrc", "--source", "multi:v1"]).ok();
    assert_eq!(digest_of(&tgt, "multi", "v1").await, Some(common::sha256(&index)));
    for img in [&amd, &arm] {
        assert_eq!(digest_of(&tgt, "multi", &img.digest).await.as_deref(), Some(img.digest.as_str()));
        let layer = tgt.get_blob("multi", &common::sha256(&img.layer)).await;
        assert_eq!(layer.status, StatusCode::OK);
    }

    // An index of more than 50 manifests: refused, nothing written.
    let base = TestImage::new("many", "amd64");
    for (_, b) in base.blobs() {
        src.push_blob("many", &b).await;
    }
    let mut children = Vec::new();
    for i in 0..51 {
        let mut m: Value = serde_json::from_slice(&base.manifest).unwrap();
        m["annotations"] = json!({"n": i.to_string()});
        let bytes = serde_json::to_vec(&m).unwrap();
        let d = common::sha256(&bytes);
        assert_eq!(src.put_manifest("many", &d, OCI_MANIFEST, &bytes).await.status, StatusCode::CREATED);
        children.push(bytes);
    }
    let entries: Vec<(&[u8], &str)> = children.iter().map(|b| (b.as_slice(), "amd64")).collect();
    let big = oci_index(&entries);
    assert_eq!(src.put_manifest("many", "v1", OCI_INDEX, &big).await.status, StatusCode::CREATED);
    let r = cli.run(&["acr", "import", "-n", "imptgt", "--registry", "impsrc", "--source", "many:v1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("more than 50 manifests"), "{}", r.stderr);
    assert_eq!(digest_of(&tgt, "many", &common::sha256(&children[0])).await, None);

    // NoForce: an existing tag of another image fails the import before anything is copied
    // (the other target tag of the same import is not created either).
    let (_, other) = tgt.push_image("team/app", "v2", "something else").await;
    let r = cli.run(&[
        "acr",
        "import",
        "-n",
        "imptgt",
        "--registry",
        "impsrc",
        "--source",
        "team/app:v1",
        "-t",
        "fresh:v1",
        "-t",
        "team/app:v2",
    ]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("(ImportImageFailed)") && r.stderr.contains("team/app:v2"), "{}", r.stderr);
    assert!(r.stderr.contains("already exist"), "{}", r.stderr);
    assert_eq!(digest_of(&tgt, "team/app", "v2").await.as_deref(), Some(other.as_str()), "unchanged");
    assert_eq!(digest_of(&tgt, "fresh", "v1").await, None, "nothing was copied");
    // Importing the same image again over its own tag is no conflict.
    cli.run(&["acr", "import", "-n", "imptgt", "--registry", "impsrc", "--source", "team/app:v1"]).ok();
    // Force moves the tag.
    cli.run(&[
        "acr",
        "import",
        "-n",
        "imptgt",
        "--registry",
        "impsrc",
        "--source",
        "team/app:v1",
        "-t",
        "team/app:v2",
        "--force",
    ])
    .ok();
    assert_eq!(digest_of(&tgt, "team/app", "v2").await.as_deref(), Some(v1.as_str()));

    // A missing source tag, a missing source registry.
    let r = cli.run(&["acr", "import", "-n", "imptgt", "--registry", "impsrc", "--source", "team/app:nope"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("team/app:nope") && r.stderr.contains("not found"), "{}", r.stderr);
    let r = cli.run(&["acr", "import", "-n", "imptgt", "--registry", "nosuchreg", "--source", "team/app:v1"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("can not be found in the current subscription"), "{}", r.stderr);

    // --no-wait: az's warning, and the import still happens.
    let r = cli
        .run(&[
            "acr",
            "import",
            "-n",
            "imptgt",
            "--registry",
            "impsrc",
            "--source",
            "team/app:v1",
            "-t",
            "later:v1",
            "--no-wait",
        ])
        .ok();
    assert!(r.stderr.contains("Import has started. Due to no-wait option"), "{}", r.stderr);
    let mut found = None;
    for _ in 0..100 {
        found = digest_of(&tgt, "later", "v1").await;
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(found.as_deref(), Some(v1.as_str()));

    // The REST shapes: a body that cannot be an import is refused at once; a failed operation
    // answers ARM's error.
    let (st, v) = import_rest(&s, None, "rg-imptgt", "imptgt", json!({"source": {"resourceId": src_id}})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "InvalidParameters");
    let body = json!({"source": {"resourceId": src_id, "sourceImage": "team/app:v1"}, "targetTags": ["x:1"], "mode": "NoForce"});
    let (st, v) = import_rest(&s, None, "rg-imptgt", "imptgt", body).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let body = json!({"source": {"resourceId": src_id, "sourceImage": "nothing:here"}, "targetTags": ["x:2"]});
    let (st, v) = import_rest(&s, None, "rg-imptgt", "imptgt", body).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "ImportImageFailed");
    assert!(v["error"]["message"].as_str().unwrap().starts_with("Import failed: "), "{v}");
}

#[tokio::test]
async fn who_may_import_and_through_which_networks() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let src = s.registry("permsrc").await;
    let _tgt = s.registry("permtgt").await;
    src.push_image("team/app", "v1", "perm app").await;
    src.push_image("other/app", "v1", "perm other").await;
    let src_id = tsv(&cli, &["acr", "show", "-n", "permsrc", "--query", "id", "-o", "tsv"]);
    let tgt_id = tsv(&cli, &["acr", "show", "-n", "permtgt", "--query", "id", "-o", "tsv"]);
    let body = |image: &str| json!({"source": {"resourceId": src_id, "sourceImage": image}, "targetTags": [image]});

    // Without the importer's action on the target: ARM's 403, before anything runs.
    let (app, secret, oid) = service_principal(&cli, "importer", &[]);
    let token = sp_access_token(&s, &app, &secret, MANAGEMENT_SCOPE).await;
    let (st, v) = import_rest(&s, Some(&token), "rg-permtgt", "permtgt", body("team/app:v1")).await;
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    assert_eq!(v["error"]["code"], "AuthorizationFailed");
    assert!(v["error"]["message"].as_str().unwrap().contains("importImage/action"), "{v}");

    // The importer role on the target only: the source's pull is missing.
    assign(&cli, &oid, IMPORTER_ROLE, &tgt_id, None).ok();
    let (st, v) = import_rest(&s, Some(&token), "rg-permtgt", "permtgt", body("team/app:v1")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("may not pull repository 'team/app'") && message.contains("permsrc"), "{v}");

    // ABAC on the source: a Repository Reader whose condition admits team/ only.
    cli.run(&["acr", "update", "-n", "permsrc", "--role-assignment-mode", "rbac-abac", "--yes"]).ok();
    let condition = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team/'))";
    assign(&cli, &oid, "Container Registry Repository Reader", &src_id, Some(condition)).ok();
    let (st, v) = import_rest(&s, Some(&token), "rg-permtgt", "permtgt", body("team/app:v1")).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = import_rest(&s, Some(&token), "rg-permtgt", "permtgt", body("other/app:v1")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("may not pull repository 'other/app'"), "{v}");
    // Owner has no data access in ABAC mode: the administrator may not import from it either.
    let (st, v) = import_rest(&s, None, "rg-permtgt", "permtgt", body("team/app:v1")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    cli.run(&["acr", "update", "-n", "permsrc", "--role-assignment-mode", "rbac", "--yes"]).ok();

    // A source whose rules keep every client out but allow trusted services: the import
    // service reaches it.
    cli.run(&["acr", "update", "-n", "permsrc", "--default-action", "Deny", "--yes"]).ok();
    let pull = s.http(Method::GET, "/v2/permsrc/team/app/tags/list").send().await.unwrap();
    assert_eq!(pull.status(), StatusCode::FORBIDDEN, "the caller itself is kept out");
    let (st, v) = import_rest(
        &s,
        None,
        "rg-permtgt",
        "permtgt",
        json!({"source": {"resourceId": src_id, "sourceImage": "team/app:v1"}, "targetTags": ["net:one"]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The previews count the import service: switching the bypass off shows it losing access.
    let preview =
        cli.run(&["acr", "update", "-n", "permsrc", "--allow-trusted-services", "false", "--what-if"]).ok().json();
    let principals = preview["networkRules"]["principals"].as_array().cloned().unwrap_or_default();
    let import_service = principals
        .iter()
        .find(|p| p["trustedService"] == "Azure Container Registry import")
        .unwrap_or_else(|| panic!("the import service in the preview: {preview}"));
    assert_eq!(import_service["change"], "loses", "{import_service}");
    // check-access explains the import service's bypass.
    let sp = cli.run(&["ad", "sp", "list", "--display-name", "Azure Container Registry Import"]).ok().json();
    let app_id = sp[0]["appId"].as_str().unwrap_or_else(|| panic!("the import service principal: {sp}")).to_string();
    let access = cli
        .run(&["acr", "check-access", "-n", "permsrc", "--assignee", &app_id, "--repository", "team/app"])
        .ok()
        .json();
    assert_eq!(access["allowed"], true, "{access}");
    assert_eq!(access["network"]["decisions"][0]["reason"]["kind"], "bypass", "{access}");
    // Without the bypass: refused with the firewall's message.
    cli.run(&["acr", "update", "-n", "permsrc", "--allow-trusted-services", "false", "--yes"]).ok();
    let (st, v) = import_rest(
        &s,
        None,
        "rg-permtgt",
        "permtgt",
        json!({"source": {"resourceId": src_id, "sourceImage": "team/app:v1"}, "targetTags": ["net:two"]}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("permsrc") && message.contains("does not allow trusted services"), "{v}");
    // The same holds for the target.
    cli.run(&[
        "acr",
        "update",
        "-n",
        "permsrc",
        "--default-action",
        "Allow",
        "--allow-trusted-services",
        "true",
        "--yes",
    ])
    .ok();
    cli.run(&[
        "acr",
        "update",
        "-n",
        "permtgt",
        "--default-action",
        "Deny",
        "--allow-trusted-services",
        "false",
        "--yes",
    ])
    .ok();
    let (st, v) = import_rest(&s, None, "rg-permtgt", "permtgt", body("team/app:v1")).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("target registry 'permtgt'"), "{v}");
    cli.run(&["acr", "update", "-n", "permtgt", "--allow-trusted-services", "true", "--yes"]).ok();
    let (st, v) = import_rest(
        &s,
        None,
        "rg-permtgt",
        "permtgt",
        json!({"source": {"resourceId": src_id, "sourceImage": "team/app:v1"}, "targetTags": ["net:three"]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // A source without public access: by resource id only.
    cli.run(&["acr", "update", "-n", "permsrc", "--public-network-enabled", "false", "--yes"]).ok();
    let by_uri = json!({"source": {"registryUri": s.login_server("permsrc"), "sourceImage": "team/app:v1"}, "targetTags": ["pub:one"]});
    let (st, v) = import_rest(&s, None, "rg-permtgt", "permtgt", by_uri).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("resource id"), "{v}");
    let (st, v) = import_rest(
        &s,
        None,
        "rg-permtgt",
        "permtgt",
        json!({"source": {"resourceId": src_id, "sourceImage": "team/app:v1"}, "targetTags": ["pub:two"]}),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");

    // The export policy off: nothing leaves the source.
    let shown = cli.run(&["acr", "update", "-n", "permsrc", "--allow-exports", "false", "--yes"]).ok().json();
    assert_eq!(shown["policies"]["exportPolicy"]["status"], "disabled");
    let (st, v) = import_rest(
        &s,
        None,
        "rg-permtgt",
        "permtgt",
        json!({"source": {"resourceId": src_id, "sourceImage": "team/app:v1"}, "targetTags": ["exp:one"]}),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("does not allow exports"), "{v}");
}

/// Pushes `bytes` as a blob to a plain-HTTP registry with Basic credentials (POST, then PUT).
async fn push_external_blob(c: &reqwest::Client, host: &str, auth: (&str, &str), repo: &str, bytes: &[u8]) {
    let r = c
        .post(format!("http://{host}/v2/{repo}/blobs/uploads/"))
        .basic_auth(auth.0, Some(auth.1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{:?}", r.text().await);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let location = if location.starts_with("http") { location } else { format!("http://{host}{location}") };
    let sep = if location.contains('?') { '&' } else { '?' };
    let r = c
        .put(format!("{location}{sep}digest={}", common::sha256(bytes)))
        .basic_auth(auth.0, Some(auth.1))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
}

async fn push_external_manifest(
    c: &reqwest::Client,
    host: &str,
    auth: (&str, &str),
    repo: &str,
    reference: &str,
    media_type: &str,
    bytes: &[u8],
) {
    let r = c
        .put(format!("http://{host}/v2/{repo}/manifests/{reference}"))
        .basic_auth(auth.0, Some(auth.1))
        .header("content-type", media_type)
        .body(bytes.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);
}

#[tokio::test]
async fn import_from_a_registry_outside_the_deployment() {
    if !(require_tool("docker-registry") && require_tool("htpasswd")) {
        return;
    }
    let auth = ("alice", "alice-s3cret");
    let ext = external_registry(auth.0, auth.1);
    let s = TestServer::builder().flags(&["--import-insecure-registry", &ext.host]).start().await;
    let cli = Cli::login(&s);
    let tgt = s.registry("exttgt").await;
    let c = reqwest::Client::new();
    let (amd, arm) = (TestImage::new("ext", "amd64"), TestImage::new("ext", "arm64"));
    for img in [&amd, &arm] {
        for (_, b) in img.blobs() {
            push_external_blob(&c, &ext.host, auth, "lib/app", &b).await;
        }
        push_external_manifest(&c, &ext.host, auth, "lib/app", &img.digest, OCI_MANIFEST, &img.manifest).await;
    }
    push_external_manifest(&c, &ext.host, auth, "lib/app", "single", OCI_MANIFEST, &amd.manifest).await;
    let index = oci_index(&[(&amd.manifest, "amd64"), (&arm.manifest, "arm64")]);
    push_external_manifest(&c, &ext.host, auth, "lib/app", "multi", OCI_INDEX, &index).await;

    // With credentials: an image by tag, then the index with its children.
    let source = format!("{}/lib/app:single", ext.host);
    cli.run(&["acr", "import", "-n", "exttgt", "--source", &source, "-u", auth.0, "-p", auth.1]).ok();
    assert_eq!(digest_of(&tgt, "lib/app", "single").await.as_deref(), Some(amd.digest.as_str()));
    let layer = tgt.get_blob("lib/app", &common::sha256(&amd.layer)).await;
    assert_eq!(layer.status, StatusCode::OK);
    assert_eq!(&layer.body[..], &amd.layer[..]);
    let source = format!("{}/lib/app:multi", ext.host);
    cli.run(&[
        "acr",
        "import",
        "-n",
        "exttgt",
        "--source",
        &source,
        "-t",
        "mirror/app:multi",
        "-u",
        auth.0,
        "-p",
        auth.1,
    ])
    .ok();
    assert_eq!(digest_of(&tgt, "mirror/app", "multi").await, Some(common::sha256(&index)));
    for img in [&amd, &arm] {
        assert_eq!(digest_of(&tgt, "mirror/app", &img.digest).await.as_deref(), Some(img.digest.as_str()));
    }
    // By digest, untagged.
    let source = format!("{}/lib/app@{}", ext.host, arm.digest);
    cli.run(&[
        "acr",
        "import",
        "-n",
        "exttgt",
        "--source",
        &source,
        "--repository",
        "bydigest",
        "-u",
        auth.0,
        "-p",
        auth.1,
    ])
    .ok();
    assert_eq!(digest_of(&tgt, "bydigest", &arm.digest).await.as_deref(), Some(arm.digest.as_str()));

    // Without credentials, or with a wrong password: refused; a missing tag: not found.
    let source = format!("{}/lib/app:single", ext.host);
    let r = cli.run(&["acr", "import", "-n", "exttgt", "--source", &source, "-t", "anon:v1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("(ImportImageFailed)") && r.stderr.contains("refused"), "{}", r.stderr);
    let r =
        cli.run(&["acr", "import", "-n", "exttgt", "--source", &source, "-t", "bad:v1", "-u", auth.0, "-p", "wrong"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("refused"), "{}", r.stderr);
    let source = format!("{}/lib/app:nope", ext.host);
    let r = cli.run(&["acr", "import", "-n", "exttgt", "--source", &source, "-u", auth.0, "-p", auth.1]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not found"), "{}", r.stderr);
    assert_eq!(digest_of(&tgt, "anon", "v1").await, None);

    // A registry nobody listens on: unreachable.
    let port = common::free_port();
    let source = format!("127.0.0.1:{port}/lib/app:single");
    let r = cli.run(&["acr", "import", "-n", "exttgt", "--source", &source, "-u", auth.0, "-p", auth.1]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("failed"), "{}", r.stderr);
}
