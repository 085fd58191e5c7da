//! `wharf acr task …` and `wharf acr run` against a server on its defaults: what az users type,
//! with az's output, exit codes and live logs, executed by buildah and podman.

mod common;

use common::*;

#[tokio::test]
async fn task_commands_create_run_stream_and_report_as_az_does() {
    if !require_task_engine() {
        return;
    }
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    cli.run(&["group", "create", "-n", "rg", "-l", "westus"]).ok();
    cli.run(&["acr", "create", "-n", "clitasks", "-g", "rg", "--sku", "Premium"]).ok();
    let base = push_busybox(&s, "clitasks");

    let cmd = format!("{base} echo hello-from-the-cli");
    let t = cli
        .run(&["acr", "task", "create", "-n", "hello-cmd", "-r", "clitasks", "--cmd", &cmd, "-c", "/dev/null"])
        .ok()
        .json();
    assert_eq!(t["name"], "hello-cmd", "{t}");
    assert_eq!(t["status"], "Enabled", "az prints the task flattened: {t}");
    assert_eq!(t["step"]["type"], "EncodedTask");

    let table = cli.run(&["acr", "task", "list", "-r", "clitasks", "-o", "table"]).ok();
    assert!(
        table.stdout.lines().next().unwrap().contains("NAME") && table.stdout.contains("hello-cmd"),
        "{}",
        table.stdout
    );

    let run = cli.run(&["acr", "task", "run", "-n", "hello-cmd", "-r", "clitasks"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("hello-from-the-cli"), "the log streams to stdout: {run:?}");
    assert!(run.stderr.contains("Queued a run with ID: "), "{run:?}");

    let logs = cli.run(&["acr", "task", "logs", "-n", "hello-cmd", "-r", "clitasks"]).ok();
    assert!(logs.stdout.contains("hello-from-the-cli"), "{logs:?}");
    let runs = cli.run(&["acr", "task", "list-runs", "-r", "clitasks"]).ok().json();
    let first = &runs.as_array().unwrap()[0];
    assert_eq!(first["status"], "Succeeded", "{runs}");
    let id = first["runId"].as_str().unwrap().to_string();
    let shown = cli.run(&["acr", "task", "show-run", "-r", "clitasks", "--run-id", &id]).ok().json();
    assert_eq!(shown["runId"], id.as_str());
    let again = cli.run(&["acr", "task", "cancel-run", "-r", "clitasks", "--run-id", &id]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("RunAlreadyFinished"), "{again:?}");
    let missing = cli.run(&["acr", "task", "show-run", "-r", "clitasks", "--run-id", "zz999"]);
    assert_eq!(missing.code, 3, "a missing run exits 3 as az does: {missing:?}");

    // a quick run whose step fails: its exit status and az's message
    let fail = format!("{base} sh -c 'echo failing on purpose; exit 4'");
    let r = cli.run(&["acr", "run", "-r", "clitasks", "--cmd", &fail, "/dev/null"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stdout.contains("failing on purpose") && r.stderr.contains("Run failed"), "{r:?}");

    // credentials and identities
    cli.run(&[
        "acr",
        "task",
        "credential",
        "add",
        "-n",
        "hello-cmd",
        "-r",
        "clitasks",
        "--login-server",
        "other.example.com",
        "-u",
        "bob",
        "-p",
        "pa55word",
    ])
    .ok();
    let creds = cli.run(&["acr", "task", "credential", "list", "-n", "hello-cmd", "-r", "clitasks"]).ok();
    assert!(creds.stdout.contains("other.example.com"), "{creds:?}");
    let dup = cli.run(&[
        "acr",
        "task",
        "credential",
        "add",
        "-n",
        "hello-cmd",
        "-r",
        "clitasks",
        "--login-server",
        "other.example.com",
        "-u",
        "x",
        "-p",
        "y",
    ]);
    assert_eq!(dup.code, 1, "{dup:?}");
    let shown = cli.run(&["acr", "task", "show", "-n", "hello-cmd", "-r", "clitasks"]).ok();
    assert!(!shown.stdout.contains("pa55word"), "show keeps secrets out: {}", shown.stdout);
    let secure =
        cli.run(&["acr", "task", "show", "-n", "hello-cmd", "-r", "clitasks", "--with-secure-properties"]).ok();
    assert!(secure.stdout.contains("pa55word"), "{}", secure.stdout);
    let id = cli.run(&["acr", "task", "identity", "assign", "-n", "hello-cmd", "-r", "clitasks"]).ok().json();
    let principal = id["identity"]["principalId"]
        .as_str()
        .or_else(|| id["principalId"].as_str())
        .unwrap_or_else(|| panic!("{id}"))
        .to_string();
    // the task's identity is a managed identity of the directory: a role can be assigned to it
    let scope = s.registry_path("rg", "clitasks");
    assign_to(&cli, "ServicePrincipal", &principal, "AcrPull", &scope, None).ok();
    cli.run(&["acr", "task", "delete", "-n", "hello-cmd", "-r", "clitasks", "--yes"]).ok();
    let gone = cli.run(&["acr", "task", "show", "-n", "hello-cmd", "-r", "clitasks"]);
    assert_eq!(gone.code, 3, "{gone:?}");
}
