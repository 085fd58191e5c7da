//! The task commands against a fake ACR in the test (ARM routes for tasks and runs, a log
//! blob): which requests each command sends, in which order, with which api-versions and
//! bodies, and how answers become output and exit codes.

use clap::Parser;
use serde_json::{Value, json};

use super::fake_acr::*;
use super::*;

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
    assert!(err.to_string().contains("--cmd runs with the context /dev/null"), "{err}");
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
