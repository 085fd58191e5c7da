//! Each body against the JSON the probe saw az 2.91 send for the same command line
//! (`/work/shared/research/az-tasks-probe.md` §1–§3, §6).

use clap::Parser;
use serde_json::{Value, json};

use super::*;
use crate::commands::acr_task::args::TaskCmd;

#[derive(Parser)]
struct Task {
    #[command(subcommand)]
    cmd: TaskCmd,
}

#[derive(Parser)]
struct Run {
    #[command(flatten)]
    args: AcrRunArgs,
}

fn task(argv: &[&str]) -> TaskCmd {
    Task::try_parse_from(std::iter::once("task").chain(argv.iter().copied())).unwrap().cmd
}

fn create_args(extra: &[&str]) -> CreateArgs {
    let mut argv = vec!["create", "-n", "t1", "-r", "myregistry"];
    argv.extend_from_slice(extra);
    match task(&argv) {
        TaskCmd::Create(a) => *a,
        _ => unreachable!(),
    }
}

fn update_args(extra: &[&str]) -> UpdateArgs {
    let mut argv = vec!["update", "-n", "t7", "-r", "myregistry"];
    argv.extend_from_slice(extra);
    match task(&argv) {
        TaskCmd::Update(a) => *a,
        _ => unreachable!(),
    }
}

const TASK_YAML: &[u8] = b"version: v1.1.0\nsteps:\n  - build: -t $Registry/app:$ID .\n  - push: [\"$Registry/app:$ID\"]\n  - cmd: $Registry/app:$ID\n";
const UAI: &str = "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1";
const CLIENT_ID: &str = "7d3c7d2e-1111-4222-8333-944455556666";

fn inputs(content: &[u8]) -> CreateInputs {
    CreateInputs { location: "westus".into(), task_content: Some(content.to_vec()), ..Default::default() }
}

/// The probe's base body for `-c /dev/null -f task.yaml`.
fn base(content: &[u8]) -> Value {
    json!({"location":"westus","properties":{
      "status":"Enabled","platform":{"os":"linux","architecture":"amd64"},"timeout":3600,"agentConfiguration":{"cpu":2},
      "isSystemTask":false,"credentials":{},
      "trigger":{"baseImageTrigger":{"baseImageTriggerType":"Runtime","status":"Enabled",
                 "name":"defaultBaseimageTriggerName","updateTriggerPayloadType":"Default"}},
      "step":{"type":"EncodedTask","encodedTaskContent": b64(content),"values":[]}}})
}

#[test]
fn create_with_a_task_file_sends_it_base64_encoded_byte_for_byte() {
    let a = create_args(&["-c", "/dev/null", "-f", "task.yaml"]);
    assert_eq!(create_body(&a, &inputs(TASK_YAML)).unwrap(), base(TASK_YAML));
    // -c defaults to /dev/null.
    let a = create_args(&["-f", "task.yaml"]);
    assert_eq!(create_body(&a, &inputs(TASK_YAML)).unwrap(), base(TASK_YAML));
}

#[test]
fn create_with_cmd_sends_az_template() {
    let template = cmd_template("hello-world", Some(3600));
    assert_eq!(
        template,
        "version: v1.1.0\nsteps: \n  - cmd: hello-world\n    disableWorkingDirectoryOverride: true\n    timeout: 3600\n"
    );
    let a = create_args(&["--cmd", "hello-world", "-c", "/dev/null"]);
    assert_eq!(create_body(&a, &inputs(template.as_bytes())).unwrap(), base(template.as_bytes()));
}

#[test]
fn create_identities() {
    let mut want = base(TASK_YAML);
    want["identity"] = json!({"type": "SystemAssigned"});
    for extra in [&["--assign-identity"][..], &["--assign-identity", "[system]"]] {
        let a = create_args(&[&["-f", "task.yaml"], extra].concat());
        assert_eq!(create_body(&a, &inputs(TASK_YAML)).unwrap(), want);
    }
    let a = create_args(&["-f", "task.yaml", "--assign-identity", UAI]);
    want["identity"] = json!({"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}});
    assert_eq!(create_body(&a, &inputs(TASK_YAML)).unwrap(), want);
    let a = create_args(&["-f", "task.yaml", "--assign-identity", "[system]", UAI]);
    want["identity"] = json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {UAI: {}}});
    assert_eq!(create_body(&a, &inputs(TASK_YAML)).unwrap(), want);
}

#[test]
fn create_source_registry_credentials() {
    let a = create_args(&["-f", "task.yaml", "--auth-mode", "None"]);
    let mut want = base(TASK_YAML);
    want["properties"]["credentials"] = json!({"sourceRegistry": {"loginMode": "None"}});
    assert_eq!(create_body(&a, &inputs(TASK_YAML)).unwrap(), want);

    let a = create_args(&["-f", "task.yaml", "--source-acr-auth-id", "[system]"]);
    let mut want = base(TASK_YAML);
    want["identity"] = json!({"type": "SystemAssigned"});
    want["properties"]["credentials"] = json!({"sourceRegistry": {"identity": "[system]"}});
    assert_eq!(create_body(&a, &inputs(TASK_YAML)).unwrap(), want);

    let a = create_args(&["-f", "task.yaml", "--source-acr-auth-id", UAI]);
    let mut inp = inputs(TASK_YAML);
    inp.source_client_id = Some(CLIENT_ID.into());
    let mut want = base(TASK_YAML);
    want["identity"] = json!({"type": "UserAssigned", "userAssignedIdentities": {UAI: {}}});
    want["properties"]["credentials"] = json!({"sourceRegistry": {"identity": CLIENT_ID}});
    assert_eq!(create_body(&a, &inp).unwrap(), want);

    let a = create_args(&["-f", "task.yaml", "--auth-mode", "Default", "--source-acr-auth-id", "[system]"]);
    let b = create_body(&a, &inputs(TASK_YAML)).unwrap();
    assert_eq!(
        b["properties"]["credentials"],
        json!({"sourceRegistry": {"loginMode": "Default", "identity": "[system]"}})
    );
}

#[test]
fn none_auth_mode_with_an_identity_is_refused_unless_the_registry_is_abac() {
    let system = SourceIdentity::System;
    let err = check_auth(Some("None"), Some(&system), false).unwrap_err();
    assert!(err.to_string().starts_with("Error: Conflicting Authentication Parameters for Task Access to Source Registry. Task authentication mode for source registry access is set to \"None\", but an identity was provided"));
    assert_eq!(err.exit_code(), 1);
    let warnings = check_auth(Some("None"), Some(&system), true).unwrap();
    assert!(
        warnings[0]
            .starts_with("The --auth-mode flag is deprecated for specifying access to an ABAC-enabled source registry")
    );
    assert!(check_auth(Some("Default"), Some(&system), false).unwrap().is_empty());
    assert!(check_auth(Some("None"), None, false).unwrap().is_empty());
    assert!(check_auth(Some("None"), Some(&SourceIdentity::None), false).unwrap().is_empty());
}

#[test]
fn create_triggers() {
    let a = create_args(&["-f", "task.yaml", "--schedule", "0 21 * * *", "--schedule", "nightly:30 2 * * 1-5"]);
    let b = create_body(&a, &inputs(TASK_YAML)).unwrap();
    assert_eq!(
        b["properties"]["trigger"]["timerTriggers"],
        json!([{"name":"t1","status":"Enabled","schedule":"0 21 * * *"},
               {"name":"nightly","status":"Enabled","schedule":"30 2 * * 1-5"}])
    );
    let a = create_args(&["-f", "task.yaml", "--base-image-trigger-enabled", "false"]);
    assert_eq!(create_body(&a, &inputs(TASK_YAML)).unwrap()["properties"]["trigger"], json!({}));
}

#[test]
fn create_docker_step_for_a_git_context() {
    let ctx = "https://github.com/x/y.git";
    let a = create_args(&["-c", ctx, "-f", "Dockerfile", "-t", "app:{{.Run.ID}}", "--commit-trigger-enabled", "false"]);
    check_create(&a).unwrap();
    let b = create_body(&a, &CreateInputs { location: "westus".into(), ..Default::default() }).unwrap();
    assert_eq!(
        b["properties"]["step"],
        json!({"type":"Docker","imageNames":["app:{{.Run.ID}}"],"isPushEnabled":true,"noCache":false,
               "dockerFilePath":"Dockerfile","arguments":[],"contextPath":ctx})
    );
    assert_eq!(b["properties"]["trigger"], base(b"")["properties"]["trigger"]);

    // A git context triggers on commits by default, which needs a token.
    let a = create_args(&["-c", ctx, "-f", "Dockerfile"]);
    let err = check_create(&a).unwrap_err();
    assert_eq!(
        err.to_string(),
        "If source control trigger is enabled [--commit-trigger-enabled] or [--pull-request-trigger-enabled] --git-access-token must be provided."
    );
    let a = create_args(&["-c", "https://github.com/x/y.git#dev", "-f", "acb.yaml", "--git-access-token", "pat"]);
    let b = create_body(&a, &CreateInputs { location: "westus".into(), ..Default::default() }).unwrap();
    assert_eq!(b["properties"]["step"]["type"], "FileTask");
    assert_eq!(b["properties"]["step"]["contextAccessToken"], "pat");
    let source = &b["properties"]["trigger"]["sourceTriggers"][0];
    assert_eq!(source["sourceRepository"]["branch"], "dev");
    assert_eq!(source["sourceRepository"]["sourceControlType"], "Github");
    assert_eq!(source["sourceTriggerEvents"], json!(["commit"]));

    let a = create_args(&["--cmd", "hello-world", "-f", "task.yaml"]);
    assert!(check_create(&a).unwrap_err().to_string().contains("but not both"));
}

fn encoded_details() -> Value {
    json!({"name": "t7", "properties": {
        "step": {"type": "EncodedTask", "encodedTaskContent": "ZXhpc3Rpbmc=", "values": []},
        "trigger": {"baseImageTrigger": {"name": "defaultBaseimageTriggerName", "status": "Enabled",
                                         "baseImageTriggerType": "Runtime"}},
        "timeout": 3600}})
}

#[test]
fn update_source_identity_none_clears_it() {
    let a = update_args(&["--source-acr-auth-id", "none"]);
    assert_eq!(
        update_body(&a, &encoded_details(), &UpdateInputs::default()).unwrap(),
        json!({"properties":{"platform":{},"agentConfiguration":{},
          "step":{"type":"EncodedTask","encodedTaskContent":"ZXhpc3Rpbmc="},
          "credentials":{"sourceRegistry":{"identity":null}},
          "trigger":{"baseImageTrigger":{"name":"defaultBaseimageTriggerName"}}}})
    );
}

#[test]
fn update_cmd_replaces_the_content_without_a_timeout_line() {
    let a = update_args(&["--cmd", "alpine echo updated"]);
    let content = cmd_template("alpine echo updated", a.timeout);
    assert_eq!(
        content,
        "version: v1.1.0\nsteps: \n  - cmd: alpine echo updated\n    disableWorkingDirectoryOverride: true\n"
    );
    let inp = UpdateInputs { task_content: Some(content.clone().into_bytes()), ..Default::default() };
    let b = update_body(&a, &encoded_details(), &inp).unwrap();
    assert_eq!(b["properties"]["step"], json!({"type": "EncodedTask", "encodedTaskContent": b64(content.as_bytes())}));
    assert_eq!(b["properties"]["credentials"], json!({}));
}

#[test]
fn update_system_source_identity_patches_the_identity_first_when_missing() {
    let s = SourceIdentity::System;
    assert_eq!(identity_patch(&encoded_details(), &s), Some(json!({"identity": {"type": "SystemAssigned"}})));
    let mut with = encoded_details();
    with["identity"] = json!({"type": "SystemAssigned", "principalId": "p"});
    assert_eq!(identity_patch(&with, &s), None);
    let u = SourceIdentity::User(UAI.into());
    assert_eq!(
        identity_patch(&with, &u),
        Some(json!({"identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {UAI: {}}}}))
    );
    let a = update_args(&["--source-acr-auth-id", "[system]"]);
    let b = update_body(&a, &with, &UpdateInputs::default()).unwrap();
    assert_eq!(b["properties"]["credentials"], json!({"sourceRegistry": {"identity": "[system]"}}));
    assert!(b.get("identity").is_none(), "the identity travels in the first PATCH");
}

#[test]
fn update_docker_step_keeps_az_defaults() {
    let d = json!({"properties": {"step": {"type": "Docker", "dockerFilePath": "Dockerfile"}}});
    let a = update_args(&["--no-cache", "--timeout", "600", "--platform", "linux/arm64"]);
    let b = update_body(&a, &d, &UpdateInputs::default()).unwrap();
    assert_eq!(b["properties"]["step"], json!({"type": "Docker", "isPushEnabled": true, "noCache": true}));
    assert_eq!(b["properties"]["timeout"], 600);
    assert_eq!(b["properties"]["platform"], json!({"os": "linux", "architecture": "arm64"}));
    assert_eq!(b["properties"]["trigger"], json!({}));
}

#[test]
fn credential_bodies() {
    let cred = |extra: &[&str]| {
        let mut argv = vec!["credential", "add", "-n", "t1", "-r", "myregistry"];
        argv.extend_from_slice(extra);
        match task(&argv) {
            TaskCmd::Credential { cmd: crate::commands::acr_task::args::CredentialCmd::Add(a) } => a,
            _ => unreachable!(),
        }
    };
    let a = cred(&["--login-server", "other.azurecr.io", "--use-identity", "[system]"]);
    assert_eq!(
        custom_registry(&a).unwrap(),
        json!({"properties":{"credentials":{"customRegistries":{"other.azurecr.io":{"identity":"[system]"}}}}})
    );
    let a = cred(&["--login-server", "other.azurecr.io", "--use-identity"]);
    assert_eq!(
        custom_registry(&a).unwrap()["properties"]["credentials"]["customRegistries"]["other.azurecr.io"]["identity"],
        "[system]"
    );
    let a = cred(&["--login-server", "third.azurecr.io", "-u", "myuser", "-p", "mypass"]);
    assert_eq!(
        custom_registry(&a).unwrap(),
        json!({"properties":{"credentials":{"customRegistries":{"third.azurecr.io":
            {"userName":{"type":"Opaque","value":"myuser"},"password":{"type":"Opaque","value":"mypass"}}}}}})
    );
    let a = cred(&["--login-server", "x.io", "-u", "u", "-p", "https://kv.vault.azure.net/secrets/pw"]);
    assert_eq!(
        custom_registry(&a).unwrap()["properties"]["credentials"]["customRegistries"]["x.io"]["password"]["type"],
        "Vaultsecret"
    );
    let a = cred(&["--login-server", "x.io", "-u", "u"]);
    assert_eq!(custom_registry(&a).unwrap_err().exit_code(), 2);
    assert_eq!(remove_custom_registry("X"), json!({"properties":{"credentials":{"customRegistries":{"X":null}}}}));
}

#[test]
fn identity_bodies() {
    assert_eq!(identity(&[], false), json!({"type": "SystemAssigned"}));
    assert_eq!(
        identity(&["[system]".into(), UAI.into()], false),
        json!({"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {UAI: {}}})
    );
    assert_eq!(identity(&[UAI.into()], true), json!({"type": "UserAssigned", "userAssignedIdentities": {UAI: null}}));
    assert_eq!(identity(&["[all]".into()], true), json!({"type": "None"}));
}

fn task_run_args(extra: &[&str]) -> TaskRunArgs {
    let mut argv = vec!["run", "-n", "t1", "-r", "myregistry"];
    argv.extend_from_slice(extra);
    match task(&argv) {
        TaskCmd::Run(a) => *a,
        _ => unreachable!(),
    }
}

#[test]
fn task_run_request_bodies() {
    let id =
        "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/myregistry/tasks/t1";
    assert_eq!(
        task_run_request(id, &task_run_args(&[])).unwrap(),
        json!({"type":"TaskRunRequest","taskId":id,"overrideTaskStepProperties":{"arguments":[],"values":[]}})
    );
    let a = task_run_args(&[
        "-f",
        "Dockerfile",
        "--arg",
        "B=3",
        "--secret-arg",
        "C=4",
        "--set",
        "a=1",
        "--set-secret",
        "s=2",
        "--target",
        "final",
        "--update-trigger-token",
        "tok123",
    ]);
    assert_eq!(
        task_run_request(id, &a).unwrap()["overrideTaskStepProperties"],
        json!({"file":"Dockerfile",
          "arguments":[{"type":"Argument","name":"B","value":"3","isSecret":false},{"type":"Argument","name":"C","value":"4","isSecret":true}],
          "target":"final",
          "values":[{"type":"SetValue","name":"a","value":"1","isSecret":false},{"type":"SetValue","name":"s","value":"2","isSecret":true}],
          "updateTriggerToken":"dG9rMTIz"})
    );
}

fn acr_run_args(extra: &[&str]) -> AcrRunArgs {
    let argv = std::iter::once("run").chain(["-r", "myregistry"]).chain(extra.iter().copied());
    Run::try_parse_from(argv).unwrap().args
}

#[test]
fn acr_run_request_bodies() {
    let a = acr_run_args(&["--cmd", "hello-world", "/dev/null"]);
    let content = cmd_template("hello-world", a.timeout);
    assert_eq!(content, "version: v1.1.0\nsteps: \n  - cmd: hello-world\n    disableWorkingDirectoryOverride: true\n");
    assert_eq!(
        encoded_run_request(&a, content.as_bytes(), None).unwrap(),
        json!({"type":"EncodedTaskRunRequest","encodedTaskContent":b64(content.as_bytes()),"values":[],
               "platform":{"os":"linux","architecture":"amd64"},"credentials":{}})
    );
    let a = acr_run_args(&[
        "-f",
        "task.yaml",
        "--set",
        "a=1",
        "--timeout",
        "600",
        "--source-acr-auth-id",
        "[caller]",
        "/dev/null",
    ]);
    let b = encoded_run_request(&a, TASK_YAML, Some(b"a: 1\n")).unwrap();
    assert_eq!(b["encodedTaskContent"], b64(TASK_YAML));
    assert_eq!(b["encodedValuesContent"], b64(b"a: 1\n"));
    assert_eq!(b["timeout"], 600);
    assert_eq!(b["values"], json!([{"type":"SetValue","name":"a","value":"1","isSecret":false}]));
    assert_eq!(b["credentials"], json!({"sourceRegistry": {"identity": "[caller]"}}));
    let a = acr_run_args(&["--cmd", "x", "--auth-mode", "Default", "/dev/null"]);
    assert_eq!(
        encoded_run_request(&a, b"", None).unwrap()["credentials"],
        json!({"sourceRegistry": {"loginMode": "Default"}})
    );
    let a = acr_run_args(&["--cmd", "x", "--source-acr-auth-id", "none", "/dev/null"]);
    assert_eq!(
        encoded_run_request(&a, b"", None).unwrap()["credentials"],
        json!({"sourceRegistry": {"loginMode": "None"}})
    );
}

#[test]
fn platforms_as_az_validates_them() {
    assert_eq!(platform(None).unwrap(), json!({"os": "linux", "architecture": "amd64"}));
    assert_eq!(
        platform(Some("Linux/ARM64/v8")).unwrap(),
        json!({"os": "linux", "architecture": "arm64", "variant": "v8"})
    );
    assert_eq!(platform(Some("windows")).unwrap(), json!({"os": "windows", "architecture": "amd64"}));
    let err = platform(Some("plan9/amd64")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "'plan9' is not a valid value for OS specified in --platform. Valid options are windows,linux."
    );
}

#[test]
fn source_identity_values() {
    assert_eq!(SourceIdentity::parse("[system]").unwrap(), SourceIdentity::System);
    assert_eq!(SourceIdentity::parse("None").unwrap(), SourceIdentity::None);
    assert_eq!(SourceIdentity::parse(UAI).unwrap(), SourceIdentity::User(UAI.into()));
    assert_eq!(SourceIdentity::parse("7d3c7d2e").unwrap_err().exit_code(), 2);
}

#[test]
fn three_state_flags_take_an_optional_value() {
    assert!(create_args(&["-f", "x.yaml", "--no-push"]).no_push);
    assert!(create_args(&["-f", "x.yaml", "--no-push", "true"]).no_push);
    assert!(!create_args(&["-f", "x.yaml", "--no-push", "false"]).no_push);
    assert!(!create_args(&["-f", "x.yaml"]).no_push);
    assert!(create_args(&["-f", "x.yaml"]).base_image_trigger_enabled);
    match task(&["update-run", "-r", "myregistry", "--run-id", "ca1", "--no-archive", "true"]) {
        TaskCmd::UpdateRun { no_archive, .. } => assert!(no_archive),
        _ => unreachable!(),
    }
}
