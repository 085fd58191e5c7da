//! Source triggers in process (no engine: queued runs stay queued): the trigger's rules at
//! create and update, the webhook's address and secret only in `listDetails`, the secret's
//! lifetime (kept by updates, new with a new name), and what deliveries answer and queue.
//! `tests/source_triggers.rs` at the workspace root builds the delivered commits for real.

mod support;

use axum::body::Body;
use hmac::{Hmac, Mac};
use http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use support::TestApp;

async fn app_with_registry(name: &str) -> (TestApp, String) {
    let app = TestApp::start().await;
    let rg = format!("/subscriptions/{}/resourceGroups/rg", app.state.subscription_id);
    assert!(app.arm(Method::PUT, &rg, Some(json!({"location": "westus"}))).await.status.is_success());
    let reg = app.registry_path("rg", name);
    let a = app.arm(Method::PUT, &reg, Some(json!({"location": "westus", "sku": {"name": "Premium"}}))).await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    (app, reg)
}

const URL: &str = "https://github.com/o/app.git";

fn task(context: &str, trigger: Value) -> Value {
    json!({"location": "westus", "properties": {
        "step": {"type": "Docker", "dockerFilePath": "Dockerfile", "contextPath": context, "imageNames": ["app:{{.Run.ID}}"]},
        "trigger": {"sourceTriggers": [trigger]}}})
}

fn trigger(name: &str, events: &[&str]) -> Value {
    json!({"name": name, "status": "Enabled", "sourceTriggerEvents": events,
           "sourceRepository": {"sourceControlType": "Github", "repositoryUrl": URL, "branch": "main",
                                "sourceControlAuthProperties": {"tokenType": "PAT", "token": "ghp_secret_token"}}})
}

async fn webhook(app: &TestApp, reg: &str, name: &str) -> (String, String) {
    let a = app.arm(Method::POST, &format!("{reg}/tasks/{name}/listDetails"), None).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let w = a.json()["properties"]["trigger"]["sourceTriggers"][0]["webhook"].clone();
    let url = w["url"].as_str().unwrap_or_else(|| panic!("{a:?}")).to_string();
    let path = url.split_once("/wharf-hooks/").map(|(_, p)| format!("/wharf-hooks/{p}")).unwrap();
    (path, w["secret"].as_str().unwrap().to_string())
}

fn signed(path: &str, secret: &str, event: &str, delivery: &str, body: &Value) -> Request<Body> {
    let bytes = body.to_string().into_bytes();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(&bytes);
    Request::post(path)
        .header("x-github-event", event)
        .header("x-github-delivery", delivery)
        .header("x-hub-signature-256", format!("sha256={}", hex::encode(mac.finalize().into_bytes())))
        .body(Body::from(bytes))
        .unwrap()
}

fn push(branch: &str, commit: &str) -> Value {
    json!({"ref": format!("refs/heads/{branch}"), "after": commit, "repository": {"clone_url": URL}})
}

async fn runs(app: &TestApp, reg: &str) -> Vec<Value> {
    app.arm(Method::GET, &format!("{reg}/runs"), None).await.json()["value"].as_array().unwrap().clone()
}

#[tokio::test]
async fn triggers_are_checked_at_create_and_need_a_git_context() {
    let (app, reg) = app_with_registry("hookrules").await;
    let mut bad_type = trigger("t1", &["commit"]);
    bad_type["sourceRepository"]["sourceControlType"] = json!("Bitbucket");
    let cases = [
        (task("/dev/null", trigger("t1", &["commit"])), "git context"),
        (task("source/0123456789abcdef0123456789abcdef.tar.gz", trigger("t1", &["commit"])), "git context"),
        (task(URL, bad_type), "'Bitbucket'"),
        (task(URL, trigger("t1", &["push"])), "\"push\""),
        (task(URL, trigger("a/b", &["commit"])), "name 'a/b'"),
    ];
    for (body, msg) in cases {
        let a = app.arm(Method::PUT, &format!("{reg}/tasks/hooktask"), Some(body.clone())).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{body}: {a:?}");
        assert_eq!(a.json()["error"]["code"], "InvalidSourceTrigger", "{a:?}");
        assert!(a.json()["error"]["message"].as_str().unwrap().contains(msg), "{msg}: {a:?}");
    }
    let a = app.arm(Method::GET, &format!("{reg}/tasks/hooktask"), None).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "nothing was stored");
}

#[tokio::test]
async fn the_webhook_is_shown_by_list_details_only_and_its_secret_lasts_as_long_as_the_trigger() {
    let (app, reg) = app_with_registry("hooksecret").await;
    let a = app.arm(Method::PUT, &format!("{reg}/tasks/hooktask"), Some(task(URL, trigger("t1", &["commit"])))).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert!(!a.text.contains("webhook") && !a.text.contains("ghp_secret_token"), "{a:?}");
    let get = app.arm(Method::GET, &format!("{reg}/tasks/hooktask"), None).await;
    assert!(!get.text.contains("webhook"), "{get:?}");
    let (path, secret) = webhook(&app, &reg, "hooktask").await;
    assert_eq!(path, "/wharf-hooks/hooksecret/hooktask/t1");

    // An update keeps it (also one that sends the listDetails answer back, webhook included).
    let details = app.arm(Method::POST, &format!("{reg}/tasks/hooktask/listDetails"), None).await.json();
    let patch = json!({"properties": {"trigger": details["properties"]["trigger"].clone(), "timeout": 600}});
    let a = app.arm(Method::PATCH, &format!("{reg}/tasks/hooktask"), Some(patch)).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert!(
        !app.state
            .meta
            .resource_get(&format!("{reg}/tasks/hooktask"))
            .await
            .unwrap()
            .unwrap()
            .body
            .to_string()
            .contains(&secret),
        "the secret is never stored"
    );
    assert_eq!(webhook(&app, &reg, "hooktask").await.1, secret);
    // A new name, or the task created again, gives a new one.
    let a = app.arm(Method::PUT, &format!("{reg}/tasks/hooktask"), Some(task(URL, trigger("t2", &["commit"])))).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let (path2, secret2) = webhook(&app, &reg, "hooktask").await;
    assert_eq!(path2, "/wharf-hooks/hooksecret/hooktask/t2");
    assert_ne!(secret2, secret);
    assert_eq!(app.arm(Method::DELETE, &format!("{reg}/tasks/hooktask"), None).await.status, StatusCode::OK);
    app.arm(Method::PUT, &format!("{reg}/tasks/hooktask"), Some(task(URL, trigger("t2", &["commit"])))).await;
    assert_ne!(webhook(&app, &reg, "hooktask").await.1, secret2, "a task created again has a new secret");
    // The old secret opens nothing any more.
    let a = app.send(signed(&path2, &secret2, "push", "x1", &push("main", &"a".repeat(40)))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{a:?}");
}

#[tokio::test]
async fn deliveries_queue_a_pinned_auto_run_once() {
    let (app, reg) = app_with_registry("hookqueue").await;
    let a = app
        .arm(
            Method::PUT,
            &format!("{reg}/tasks/hooktask"),
            Some(task(&format!("{URL}#main:web"), trigger("t1", &["commit"]))),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let (path, secret) = webhook(&app, &reg, "hooktask").await;
    let commit = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";

    let wrong = app.send(signed(&path, "nope", "push", "d1", &push("main", commit))).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let unknown =
        app.send(signed("/wharf-hooks/hookqueue/hooktask/t9", &secret, "push", "d1", &push("main", commit))).await;
    assert_eq!((unknown.status, unknown.text.as_str()), (wrong.status, wrong.text.as_str()));
    let get = app.send(Request::get(&path).body(Body::empty()).unwrap()).await;
    assert_eq!(get.status, StatusCode::METHOD_NOT_ALLOWED);
    let a = app.send(signed(&path, &secret, "push", "d1", &json!({"ref": "refs/heads/main"}))).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "a signed payload without a commit: {a:?}");
    let a = app
        .send(signed(
            &path,
            &secret,
            "push",
            "d1",
            &push("main", commit)
                .as_object()
                .map(|o| {
                    let mut o = o.clone();
                    o.insert("repository".into(), json!({"clone_url": "https://github.com/someone/else.git"}));
                    Value::Object(o)
                })
                .unwrap(),
        ))
        .await;
    assert_eq!((a.status, a.json()["queued"].as_bool()), (StatusCode::OK, Some(false)), "another repository: {a:?}");
    let pr = json!({"action": "opened", "number": 3, "pull_request": {"head": {"sha": commit, "ref": "f"}, "base": {"ref": "main"}}});
    let a = app.send(signed(&path, &secret, "pull_request", "d2", &pr)).await;
    assert_eq!(
        (a.status, a.json()["queued"].as_bool()),
        (StatusCode::OK, Some(false)),
        "pullrequest is not an event of it: {a:?}"
    );
    assert!(runs(&app, &reg).await.is_empty());

    let a = app.send(signed(&path, &secret, "push", "d3", &push("main", commit))).await;
    assert_eq!(a.status, StatusCode::ACCEPTED, "{a:?}");
    let again = app.send(signed(&path, &secret, "push", "d3", &push("main", commit))).await;
    assert_eq!((again.status, again.json()["queued"].as_bool()), (StatusCode::OK, Some(false)), "{again:?}");
    let list = runs(&app, &reg).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let run = &list[0]["properties"];
    assert_eq!((run["runType"].as_str(), run["status"].as_str()), (Some("AutoRun"), Some("Queued")));
    assert_eq!(run["sourceTrigger"]["commitId"], commit);
    assert_eq!(run["sourceTrigger"]["repositoryUrl"], URL, "without az's #branch:folder");
    // The queued request clones the delivered commit, keeping the task's folder.
    let key = app.state.registry("hookqueue").await.unwrap().unwrap().key.clone();
    let stored = app.state.meta.run_get(&key, list[0]["name"].as_str().unwrap()).await.unwrap().unwrap();
    let context = &stored.body["request"]["context"];
    assert_eq!((context["reference"].as_str(), context["folder"].as_str()), (Some(commit), Some("web")), "{context}");
    assert_eq!(stored.body["request"]["branch"], "main");

    // A disabled task runs nothing and says so.
    let a = app
        .arm(Method::PATCH, &format!("{reg}/tasks/hooktask"), Some(json!({"properties": {"status": "Disabled"}})))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let a = app.send(signed(&path, &secret, "push", "d4", &push("main", commit))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.json()["reason"].as_str().unwrap().contains("disabled"), "{a:?}");
    assert_eq!(runs(&app, &reg).await.len(), 1);
}
