//! A timer trigger end to end, on a real server with the real engine: `wharf acr task create
//! --schedule` and `wharf acr task timer add|update|list|remove` as az sends them, one real
//! minute tick that runs the task (an `AutoRun` whose log shows its step), and a restart of the
//! server on the same data directory after which that tick does not run again. The scheduler's
//! rules (windows, missed ticks, concurrent looks) are tested with an injected clock in
//! `crates/server/tests/timers.rs`; this test waits for at most one real tick.
//!
//! Needs buildah, podman and runc (`.ci/run` installs them); in CI a missing one fails.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::Value;

const API: &str = "api-version=2025-03-01-preview";

async fn runs(s: &TestServer, reg: &str) -> Vec<Value> {
    let (st, v) = s.mgmt(Method::GET, &format!("{reg}/runs?{API}"), None).await;
    assert_eq!(st, 200, "{v}");
    v["value"].as_array().unwrap().clone()
}

/// How many runs each schedule occurrence queued.
fn occurrences(runs: &[Value]) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in runs {
        let p = &r["properties"];
        assert_eq!(p["runType"], "AutoRun", "only the timer queues runs here: {r}");
        assert_eq!(p["timerTrigger"]["timerTriggerName"], "t1", "{r}");
        *out.entry(p["timerTrigger"]["scheduleOccurrence"].as_str().unwrap().to_string()).or_default() += 1;
    }
    out
}

#[tokio::test]
async fn a_timer_fires_once_per_tick_through_a_restart() {
    if !require_task_engine() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::builder().data_dir(dir.path()).start().await;
    s.create_group("rg").await;
    let (st, body) = s.create_registry("rg", "timerreg", "Premium").await;
    assert!(st.is_success(), "{body}");
    let reg = s.registry_path("rg", "timerreg");
    push_busybox(&s, "timerreg");
    let cli = Cli::login(&s);
    let file = dir.path().join("timer-task.yaml");
    // `$Registry`, not the login server: the port changes with the restart.
    std::fs::write(&file, "version: v1.1.0\nsteps:\n  - cmd: $Registry/base/busybox:1 echo timer-fired\n").unwrap();
    let task = ["-n", "ticker", "-r", "timerreg"];
    let created = cli
        .run(
            &[
                &["acr", "task", "create"][..],
                &task,
                &["-c", "/dev/null", "-f", file.to_str().unwrap(), "--schedule", "* * * * *"],
            ]
            .concat(),
        )
        .ok()
        .json();
    assert_eq!(
        created["trigger"]["timerTriggers"],
        serde_json::json!([{"name": "t1", "schedule": "* * * * *", "status": "Enabled"}])
    );

    // The timer commands, as az's: add, update, list, remove; a bad schedule is the server's 400.
    let timer = |args: &[&str]| cli.run(&[&["acr", "task", "timer"][..], args, &task].concat());
    let added = timer(&["add", "--timer-name", "hourly", "--schedule", "0 * * * *"]).ok().json();
    assert_eq!(added["trigger"]["timerTriggers"].as_array().unwrap().len(), 2, "{added}");
    let updated = timer(&["update", "--timer-name", "hourly", "--enabled", "false"]).ok().json();
    assert_eq!(updated["trigger"]["timerTriggers"][1]["status"], "Disabled", "{updated}");
    assert_eq!(updated["trigger"]["timerTriggers"][1]["schedule"], "0 * * * *", "{updated}");
    let listed = timer(&["list"]).ok().json();
    assert_eq!(
        listed.as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect::<Vec<_>>(),
        ["t1", "hourly"]
    );
    let bad = timer(&["add", "--timer-name", "bad", "--schedule", "0 0 31 2 *"]);
    assert_ne!(bad.code, 0, "{bad:?}");
    assert!(
        bad.stderr.contains("(InvalidTimerTrigger)") && bad.stderr.contains("trigger.timerTriggers[2].schedule"),
        "{bad:?}"
    );
    let removed = timer(&["remove", "--timer-name", "hourly"]).ok().json();
    assert_eq!(removed["trigger"]["timerTriggers"].as_array().unwrap().len(), 1, "{removed}");
    let missing = timer(&["remove", "--timer-name", "hourly"]);
    assert_eq!(missing.code, 1);
    assert!(missing.stderr.contains("The timer 'hourly' does not exist for the task 'ticker'."), "{missing:?}");
    let table = cli.run(&["acr", "task", "list", "-r", "timerreg", "-o", "table"]).ok();
    assert!(table.stdout.contains("TIMER"), "{table:?}");

    // One real tick: its run is an AutoRun that runs the step.
    let mut first = None;
    for _ in 0..150 {
        if let Some(r) = runs(&s, &reg).await.into_iter().last() {
            first = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let first = first.expect("the timer fired within 75 s");
    let run_id = first["properties"]["runId"].as_str().unwrap().to_string();
    let tick = first["properties"]["timerTrigger"]["scheduleOccurrence"].as_str().unwrap().to_string();
    let mut done = Value::Null;
    for _ in 0..600 {
        let (_, r) = s.mgmt(Method::GET, &format!("{reg}/runs/{run_id}?{API}"), None).await;
        if matches!(r["properties"]["status"].as_str(), Some("Succeeded" | "Failed" | "Error" | "Timeout" | "Canceled"))
        {
            done = r;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(done["properties"]["status"], "Succeeded", "{done}");
    assert_eq!(done["properties"]["task"], "ticker");
    let (_, link) = s.mgmt(Method::POST, &format!("{reg}/runs/{run_id}/listLogSasUrl?{API}"), None).await;
    let log = s.client().get(link["logLink"].as_str().unwrap()).send().await.unwrap().text().await.unwrap();
    assert!(log.contains("timer-fired"), "{log}");

    // A restart on the same data directory looks back over the missed-tick grace: the tick
    // that ran is claimed, so it does not run again.
    s.kill9();
    drop(s);
    let s = TestServer::builder().data_dir(dir.path()).start().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = occurrences(&runs(&s, &reg).await);
    assert_eq!(after.get(&tick), Some(&1), "the tick {tick} ran once through the restart: {after:?}");
    assert!(after.values().all(|n| *n == 1), "no tick ran twice: {after:?}");
}
