//! The retention of task runs, in process with an injected clock: the sweep
//! (`run_retention::sweep`) is called with a `now` the test chooses. Finished runs older than
//! the retention go with their logs; queued and running runs, archived runs and younger runs
//! stay; `list-runs` no longer shows what went.

mod support;

use chrono::{Duration, Utc};
use http::{Method, StatusCode};
use serde_json::json;
use support::TestApp;
use wharf_server::run_retention;
use wharf_storage::NewRun;

async fn app_with_registry(name: &str) -> (TestApp, String) {
    let app = TestApp::start().await;
    let rg = format!("/subscriptions/{}/resourceGroups/rg", app.state.subscription_id);
    assert!(app.arm(Method::PUT, &rg, Some(json!({"location": "westus"}))).await.status.is_success());
    let reg = app.registry_path("rg", name);
    let a = app.arm(Method::PUT, &reg, Some(json!({"location": "westus", "sku": {"name": "Premium"}}))).await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    (app, reg)
}

async fn run_ids(app: &TestApp, reg: &str) -> Vec<String> {
    let a = app.arm(Method::GET, &format!("{reg}/runs"), None).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    a.json()["value"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn old_finished_runs_go_with_their_logs_and_archived_ones_stay() {
    let (app, reg) = app_with_registry("retention").await;
    let key = app.state.registry("retention").await.unwrap().unwrap().key.clone();
    assert_eq!(app.state.config.tasks.run_retention_days, Some(30), "ACR's 30 days by default");
    let now = Utc::now();
    let day = Duration::days(1);
    // (status, age in days, archived)
    let specs = [
        ("Succeeded", 40, false), // expired
        ("Failed", 31, false),    // expired
        ("Succeeded", 45, true),  // archived: kept
        ("Queued", 60, false),    // not finished: kept
        ("Running", 60, false),   // not finished: kept
        ("Canceled", 29, false),  // younger than the retention: kept
    ];
    let mut ids = vec![];
    for (status, age, archive) in specs {
        let body = json!({"properties": {"status": status, "isArchiveEnabled": archive, "outputImages": []}});
        let new = NewRun {
            registry: key.clone(),
            id_prefix: "rt".into(),
            task: Some("build".into()),
            status: status.into(),
            body,
        };
        let run = app.state.meta.run_create(&new, now - day * age).await.unwrap();
        let log = app.state.run_queue.log_path(&key.0, &run.run_id);
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        std::fs::write(&log, "a log line\r\n").unwrap();
        ids.push(run.run_id);
    }
    let logs = |id: &str| app.state.run_queue.log_path(&key.0, id).exists();

    let swept = run_retention::sweep(&app.state, 30, now).await.unwrap();
    assert_eq!(swept, run_retention::Swept { deleted: 2, archived: 1 });
    let left = run_ids(&app, &reg).await;
    let expected: Vec<String> = ids[2..].iter().rev().cloned().collect();
    assert_eq!(left, expected, "newest first, the expired ones gone");
    assert!(!logs(&ids[0]) && !logs(&ids[1]), "the expired runs' logs went with them");
    assert!(ids[2..].iter().all(|id| logs(id)), "the kept runs keep their logs");
    let gone = app.arm(Method::GET, &format!("{reg}/runs/{}", ids[0]), None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{gone:?}");

    // A second look finds nothing new; a day later the 29-day run is over the line too.
    assert_eq!(run_retention::sweep(&app.state, 30, now).await.unwrap().deleted, 0);
    assert_eq!(run_retention::sweep(&app.state, 30, now + day * 2).await.unwrap().deleted, 1);
    assert!(!logs(&ids[5]));

    // Turning archiving off through the API (a change of the run: its age restarts then).
    let a = app.arm(Method::PATCH, &format!("{reg}/runs/{}", ids[2]), Some(json!({"isArchiveEnabled": false}))).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(run_retention::sweep(&app.state, 30, now + day * 2).await.unwrap().deleted, 0, "changed just now");
    let swept = run_retention::sweep(&app.state, 30, now + day * 31).await.unwrap();
    assert_eq!(swept.deleted, 1, "{swept:?}");
    assert_eq!(run_ids(&app, &reg).await, [ids[4].clone(), ids[3].clone()], "runs that never finished are never swept");
}
