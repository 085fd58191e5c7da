//! Timer triggers, in process with an injected clock: the scheduler's look
//! (`triggers::timers::check`) is called with the times a test chooses, so each case runs in
//! milliseconds instead of waiting for minutes. Schedules are validated at create and update
//! with the field they are in; a tick queues one `AutoRun` with its `timerTrigger`, however
//! often (and however concurrently) it is looked at; missed ticks coalesce; disabled timers and
//! tasks do not fire; swept claims are forgotten. `tests/task_timers.rs` waits for one real tick
//! through a real restart.

mod support;

use std::sync::Arc;

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use http::{Method, StatusCode};
use serde_json::{Value, json};
use support::TestApp;
use wharf_arm::timer::Schedule;
use wharf_server::triggers::timers;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

async fn app_with_registry(name: &str) -> (TestApp, String) {
    let app = TestApp::start().await;
    let rg = format!("/subscriptions/{}/resourceGroups/rg", app.state.subscription_id);
    assert!(app.arm(Method::PUT, &rg, Some(json!({"location": "westus"}))).await.status.is_success());
    let reg = app.registry_path("rg", name);
    let a = app.arm(Method::PUT, &reg, Some(json!({"location": "westus", "sku": {"name": "Premium"}}))).await;
    assert_eq!(a.status, StatusCode::CREATED, "{a:?}");
    (app, reg)
}

fn task_body(timers: Value) -> Value {
    json!({"location": "westus", "properties": {
        "status": "Enabled", "platform": {"os": "linux", "architecture": "amd64"},
        "step": {"type": "EncodedTask", "encodedTaskContent": b64("version: v1.1.0\nsteps:\n  - cmd: busybox echo tick\n")},
        "trigger": {"timerTriggers": timers}}})
}

async fn put_task(app: &TestApp, reg: &str, name: &str, timers: Value) -> Value {
    let a = app.arm(Method::PUT, &format!("{reg}/tasks/{name}"), Some(task_body(timers))).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    a.json()
}

async fn runs(app: &TestApp, reg: &str) -> Vec<Value> {
    let a = app.arm(Method::GET, &format!("{reg}/runs"), None).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    a.json()["value"].as_array().unwrap().clone()
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The first tick of `schedule` after the real now, so that no task predates it.
fn next_tick(schedule: &str) -> DateTime<Utc> {
    Schedule::parse(schedule).unwrap().next_after(Utc::now()).unwrap()
}

#[tokio::test]
async fn bad_schedules_are_refused_with_their_field_and_nothing_is_stored() {
    let (app, reg) = app_with_registry("timerbad").await;
    let cases = [
        (json!([{"name": "t1", "schedule": "61 * * * *"}]), "trigger.timerTriggers[0].schedule '61 * * * *'"),
        (
            json!([{"name": "t1", "schedule": "* * * * *"}, {"name": "t2", "schedule": "0 0 * *"}]),
            "trigger.timerTriggers[1].schedule",
        ),
        (json!([{"name": "t1", "schedule": "0 0 L * *"}]), "not a value of that field"),
        (
            json!([{"name": "t1", "schedule": "* * * * *"}, {"name": "t1", "schedule": "0 * * * *"}]),
            "[1].name 't1' is used",
        ),
    ];
    for (timers, msg) in cases {
        let a = app.arm(Method::PUT, &format!("{reg}/tasks/timerbad"), Some(task_body(timers.clone()))).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{timers}: {a:?}");
        let e = a.json();
        assert_eq!(e["error"]["code"], "InvalidTimerTrigger", "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains(msg), "{timers}: {e}");
    }
    assert_eq!(app.arm(Method::GET, &format!("{reg}/tasks/timerbad"), None).await.status, StatusCode::NOT_FOUND);
    // An update is checked as a create is.
    put_task(&app, &reg, "timerbad", json!([{"name": "t1", "schedule": "0 21 * * *"}])).await;
    let patch = json!({"properties": {"trigger": {"timerTriggers": [{"name": "t1", "schedule": "0 25 * * *"}]}}});
    let a = app.arm(Method::PATCH, &format!("{reg}/tasks/timerbad"), Some(patch)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{a:?}");
    assert!(a.json()["error"]["message"].as_str().unwrap().contains("trigger.timerTriggers[0].schedule '0 25 * * *'"));
    let t = app.arm(Method::GET, &format!("{reg}/tasks/timerbad"), None).await.json();
    assert_eq!(t["properties"]["trigger"]["timerTriggers"][0]["schedule"], "0 21 * * *", "unchanged: {t}");
}

/// `az acr task timer add` and `update` PATCH only the one timer: timers merge by name.
#[tokio::test]
async fn a_patch_adds_and_updates_timers_by_name() {
    let (app, reg) = app_with_registry("timermerge").await;
    put_task(&app, &reg, "merged", json!([{"name": "t1", "schedule": "0 21 * * *"}])).await;
    let path = format!("{reg}/tasks/merged");
    let add = json!({"properties": {"trigger": {"timerTriggers": [{"name": "t2", "schedule": "*/5 * * * *", "status": "Enabled"}]}}});
    assert_eq!(app.arm(Method::PATCH, &path, Some(add)).await.status, StatusCode::OK);
    let update = json!({"properties": {"trigger": {"timerTriggers": [{"name": "t1", "status": "Disabled"}]}}});
    let a = app.arm(Method::PATCH, &path, Some(update)).await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    assert_eq!(
        a.json()["properties"]["trigger"]["timerTriggers"],
        json!([{"name": "t1", "schedule": "0 21 * * *", "status": "Disabled"},
               {"name": "t2", "schedule": "*/5 * * * *", "status": "Enabled"}])
    );
}

#[tokio::test]
async fn a_tick_queues_one_auto_run_however_often_it_is_looked_at() {
    let (app, reg) = app_with_registry("timerfire").await;
    put_task(
        &app,
        &reg,
        "nightly",
        json!([{"name": "every5", "schedule": "*/5 * * * *"}, {"name": "off", "schedule": "* * * * *", "status": "Disabled"}]),
    )
    .await;
    let tick = next_tick("*/5 * * * *");
    let fired =
        timers::check(&app.state, tick - Duration::minutes(1), tick + Duration::seconds(1), false).await.unwrap();
    assert_eq!(fired.len(), 1, "only the enabled timer: {fired:?}");
    assert_eq!((fired[0].trigger.as_str(), fired[0].tick), ("every5", tick));
    let all = runs(&app, &reg).await;
    assert_eq!(all.len(), 1);
    let p = &all[0]["properties"];
    assert_eq!(p["runType"], "AutoRun", "{p}");
    assert_eq!(p["task"], "nightly");
    assert_eq!(p["status"], "Queued");
    assert_eq!(p["timerTrigger"], json!({"timerTriggerName": "every5", "scheduleOccurrence": rfc3339(tick)}));
    // The same tick again — a restart's first look, an overlapping window, another replica.
    for (after, now, startup) in [
        (tick - Duration::minutes(1), tick + Duration::seconds(2), false),
        (tick - Duration::minutes(5), tick + Duration::seconds(30), true),
    ] {
        assert!(timers::check(&app.state, after, now, startup).await.unwrap().is_empty());
    }
    // Four replicas looking at the next tick at once: one run.
    let next = tick + Duration::minutes(5);
    let looks: Vec<_> = (0..4)
        .map(|_| {
            let state = Arc::clone(&app.state);
            tokio::spawn(async move { timers::check(&state, tick, next + Duration::seconds(1), false).await.unwrap() })
        })
        .collect();
    let mut winners = vec![];
    for l in looks {
        winners.extend(l.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(runs(&app, &reg).await.len(), 2);
    // A window without a tick fires nothing.
    assert!(timers::check(&app.state, next, next + Duration::minutes(4), false).await.unwrap().is_empty());
    // Missed ticks (a stalled scheduler) coalesce into the latest.
    let later = next + Duration::minutes(17);
    let f = timers::check(&app.state, next, later, false).await.unwrap();
    assert_eq!(f.iter().map(|f| f.tick).collect::<Vec<_>>(), vec![next + Duration::minutes(15)]);
    let occurrences: Vec<String> = runs(&app, &reg)
        .await
        .iter()
        .map(|r| r["properties"]["timerTrigger"]["scheduleOccurrence"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(occurrences, [next + Duration::minutes(15), next, tick].map(rfc3339), "newest first");
    // Sweeping forgets claims older than the retention; a swept tick could fire again.
    let swept = timers::sweep(&app.state, tick + Duration::days(2)).await.unwrap();
    assert_eq!(swept, 3);
    assert_eq!(timers::check(&app.state, tick - Duration::minutes(1), tick, false).await.unwrap().len(), 1);
}

#[tokio::test]
async fn disabled_tasks_and_timers_do_not_fire() {
    let (app, reg) = app_with_registry("timeroff").await;
    put_task(&app, &reg, "quiet", json!([{"name": "t1", "schedule": "* * * * *", "status": "Disabled"}])).await;
    put_task(&app, &reg, "paused", json!([{"name": "t1", "schedule": "* * * * *"}])).await;
    let a = app
        .arm(Method::PATCH, &format!("{reg}/tasks/paused"), Some(json!({"properties": {"status": "Disabled"}})))
        .await;
    assert_eq!(a.status, StatusCode::OK, "{a:?}");
    let tick = next_tick("* * * * *");
    assert!(timers::check(&app.state, tick - Duration::minutes(1), tick, false).await.unwrap().is_empty());
    assert!(runs(&app, &reg).await.is_empty());
}

/// At start-up the look reaches back over the grace window, but not to ticks before the task's
/// last change: a timer added after a tick, while no scheduler ran, does not fire for it.
#[tokio::test]
async fn at_start_up_a_tick_before_the_tasks_last_change_does_not_fire() {
    let (app, reg) = app_with_registry("timerstart").await;
    let before = Schedule::parse("* * * * *").unwrap().latest_at_or_before(Utc::now()).unwrap();
    put_task(&app, &reg, "fresh", json!([{"name": "t1", "schedule": "* * * * *"}])).await;
    let now = Utc::now();
    let grace = Duration::from_std(timers::MISSED_TICK_GRACE).unwrap();
    assert!(
        timers::check(&app.state, now - grace, now, true).await.unwrap().is_empty(),
        "tick {before} predates the task"
    );
    // The next tick, missed while stopped, fires at the next start-up within the grace.
    let tick = next_tick("* * * * *");
    let f = timers::check(&app.state, tick + Duration::minutes(3) - grace, tick + Duration::seconds(90), true)
        .await
        .unwrap();
    assert_eq!(
        f.iter().map(|f| f.tick).collect::<Vec<_>>(),
        vec![tick + Duration::minutes(1)],
        "the latest missed tick"
    );
}
