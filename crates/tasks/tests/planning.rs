//! Black-box tests of planning: task files, az's `--cmd` task and `Docker` builds become
//! [`Plan`]s (templates, aliases, image qualification, build flags, dependencies, defaults,
//! secrets), and [`validate`] checks a file at create time.

use std::time::Duration;

use wharf_tasks::{
    Argument, BuildStep, CmdStep, Masker, Plan, Planner, Position, Problem, RunVars, StepAction, TaskError, TaskSource,
    Values, cmd_task_content, plan, validate,
};

fn vars() -> RunVars {
    RunVars {
        id: "cf1".into(),
        registry: "myreg.localhost:5000".into(),
        registry_name: "myreg".into(),
        date: "20261204-183000z".into(),
        os: "linux".into(),
        architecture: "amd64".into(),
        task_name: "t1".into(),
        commit: "abc123".into(),
        branch: "main".into(),
        shared_volume: "/workspace".into(),
    }
}

fn yaml(text: &str) -> TaskSource {
    TaskSource::Yaml(text.to_string())
}

fn plan_ok(text: &str, values: &Values) -> Plan {
    plan(&yaml(text), &vars(), values).unwrap_or_else(|e| panic!("{e}"))
}

fn plan_err(text: &str, values: &Values) -> TaskError {
    match plan(&yaml(text), &vars(), values) {
        Ok(p) => panic!("planned: {p:?}"),
        Err(e) => e,
    }
}

fn build(plan: &Plan, i: usize) -> &BuildStep {
    match &plan.steps[i].action {
        StepAction::Build(b) => b,
        other => panic!("not a build: {other:?}"),
    }
}

fn cmd(plan: &Plan, i: usize) -> &CmdStep {
    match &plan.steps[i].action {
        StepAction::Cmd(c) => c,
        other => panic!("not a cmd: {other:?}"),
    }
}

fn at(line: usize, column: usize) -> Option<Position> {
    Some(Position { line, column })
}

const SEED: &str = "version: v1.1.0\nsteps:\n  - build: -t $Registry/hello-world:$ID .\n  - push: [\"$Registry/hello-world:$ID\"]\n  - cmd: $Registry/hello-world:$ID\n";

#[test]
fn the_seed_example() {
    let p = plan_ok(SEED, &Values::new());
    assert_eq!(p.steps.len(), 3);
    assert_eq!(
        build(&p, 0),
        &BuildStep {
            tags: vec!["myreg.localhost:5000/hello-world:cf1".into()],
            context: ".".into(),
            ..BuildStep::default()
        }
    );
    assert_eq!(p.steps[1].action, StepAction::Push(vec!["myreg.localhost:5000/hello-world:cf1".into()]));
    assert_eq!(cmd(&p, 2), &CmdStep { image: "myreg.localhost:5000/hello-world:cf1".into(), args: vec![] });
    let ids: Vec<&str> = p.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(ids, ["acb_step_0", "acb_step_1", "acb_step_2"]);
    let deps: Vec<Vec<usize>> = p.steps.iter().map(|s| s.depends_on.clone()).collect();
    assert_eq!(deps, vec![vec![], vec![0], vec![1]]);
    for s in &p.steps {
        assert_eq!(s.timeout, Duration::from_secs(600));
        assert_eq!(s.retry_delay, Duration::from_secs(5));
        assert_eq!(s.start_delay, Duration::ZERO);
    }
    assert_eq!(p.working_directory, "/workspace");
    assert!(p.env.is_empty() && p.secrets.is_empty());
}

#[test]
fn the_task_file_az_writes_for_cmd() {
    let expected = "version: v1.1.0\nsteps: \n  - cmd: hello-world\n    disableWorkingDirectoryOverride: true\n    timeout: 3600\n";
    assert_eq!(cmd_task_content("hello-world", Some(3600)), expected);
    assert_eq!(
        cmd_task_content("hello-world", None),
        "version: v1.1.0\nsteps: \n  - cmd: hello-world\n    disableWorkingDirectoryOverride: true\n"
    );
    // As az sends it (trailing space after `steps:`), planned from the YAML or from the command.
    for source in [yaml(expected), TaskSource::Cmd("hello-world".into())] {
        let p = plan(&source, &vars(), &Values::new()).unwrap();
        assert_eq!(p.steps.len(), 1);
        assert_eq!(cmd(&p, 0), &CmdStep { image: "hello-world".into(), args: vec![] });
        assert!(p.steps[0].disable_working_directory_override);
        assert_eq!(p.steps[0].timeout, Duration::from_secs(3600));
        assert!(p.steps[0].depends_on.is_empty());
    }
    let p = plan(&TaskSource::Cmd("alpine echo 'hi there' $ID".into()), &vars(), &Values::new()).unwrap();
    assert_eq!(
        cmd(&p, 0),
        &CmdStep { image: "alpine".into(), args: vec!["echo".into(), "hi there".into(), "cf1".into()] }
    );
}

#[test]
fn parallel_steps_and_dependency_lists() {
    let text = "steps:\n  - id: a\n    cmd: x\n  - id: b\n    cmd: y\n    when: [\"-\"]\n  - id: c\n    cmd: z\n    when: [a, b]\n  - cmd: w\n";
    let p = plan_ok(text, &Values::new());
    let deps: Vec<Vec<usize>> = p.steps.iter().map(|s| s.depends_on.clone()).collect();
    assert_eq!(deps, vec![vec![], vec![], vec![0, 1], vec![2]]);
    assert_eq!(p.steps[3].id, "acb_step_3");
}

#[test]
fn templates_render_before_yaml() {
    let mut values = Values::new();
    values.insert("repo", "web", false);
    let text = "steps:\n  - build: -t {{.Values.repo}}:{{ .Run.ID }} -f Dockerfile .\n  - cmd: busybox echo {{.Run.Date}} {{.Run.Commit}}@{{.Run.Branch}} {{.Run.OS}}/{{.Run.Architecture}} {{.Run.TaskName}} {{.Run.RegistryName}} {{.Run.SharedVolume}}\n";
    let p = plan_ok(text, &values);
    assert_eq!(build(&p, 0).tags, ["myreg.localhost:5000/web:cf1"]);
    assert_eq!(build(&p, 0).dockerfile.as_deref(), Some("Dockerfile"));
    assert_eq!(
        cmd(&p, 1).args,
        ["echo", "20261204-183000z", "abc123@main", "linux/amd64", "t1", "myreg", "/workspace"]
    );
}

#[test]
fn a_missing_value_is_an_error_naming_it() {
    let err = plan_err("steps:\n  - cmd: busybox\n  - cmd: {{ .Values.image }} run\n", &Values::new());
    assert_eq!(err.problem(), &Problem::MissingValue("image".into()));
    assert_eq!(err.position(), at(3, 10));
    assert!(err.to_string().contains("'.Values.image'"), "{err}");
}

#[test]
fn build_id_and_unknown_variables_are_refused() {
    let err = plan_err("steps:\n  - build: -t app:{{.Build.ID}} .\n", &Values::new());
    assert_eq!(err.problem(), &Problem::BuildId);
    assert_eq!(err.position(), at(2, 19));
    assert!(err.to_string().contains("use .Run.ID instead"));
    let err = plan_err("steps:\n  - cmd: x {{.Run.Nope}}\n", &Values::new());
    assert_eq!(err.problem(), &Problem::UnknownVariable(".Run.Nope".into()));
}

#[test]
fn aliases_apply_only_from_v1_1_0() {
    let text = "steps:\n  - cmd: busybox echo $ID $Registry\n";
    let p = plan_ok(text, &Values::new());
    assert_eq!(cmd(&p, 0).args, ["echo", "$ID", "$Registry"]);
    let p = plan_ok(&format!("version: v1.0.0\n{text}"), &Values::new());
    assert_eq!(cmd(&p, 0).args, ["echo", "$ID", "$Registry"]);
    let p = plan_ok(&format!("version: v1.1.0\n{text}"), &Values::new());
    assert_eq!(cmd(&p, 0).args, ["echo", "cf1", "myreg.localhost:5000"]);
}

#[test]
fn every_run_alias_and_the_escaped_dollar() {
    let text = "version: v1.1.0\nsteps:\n  - cmd: busybox $ID $SharedVolume $Registry $RegistryName $Date $OS $Architecture $Commit $Branch pa$$word $$ID $HOME\n";
    let p = plan_ok(text, &Values::new());
    assert_eq!(
        cmd(&p, 0).args,
        [
            "cf1",
            "/workspace",
            "myreg.localhost:5000",
            "myreg",
            "20261204-183000z",
            "linux",
            "amd64",
            "abc123",
            "main",
            "pa$word",
            "$ID",
            "$HOME"
        ]
    );
}

#[test]
fn user_aliases_image_aliases_and_directives() {
    let text = "version: v1.1.0\nalias:\n  values:\n    greet: echo hello\n    tool: mcr.example/tool:1 --quiet\nsteps:\n  - cmd: busybox $greet\n  - cmd: tool run\n  - cmd: acr purge --ago 1d\n";
    let p = plan_ok(text, &Values::new());
    assert_eq!(cmd(&p, 0).args, ["echo", "hello"]);
    assert_eq!(cmd(&p, 1), &CmdStep { image: "mcr.example/tool:1".into(), args: vec!["--quiet".into(), "run".into()] });
    assert_eq!(cmd(&p, 2).image, "mcr.microsoft.com/acr/acr-cli:0.1");
    assert_eq!(cmd(&p, 2).args, ["purge", "--ago", "1d"]);

    // The `acr` image is configurable.
    let planner = Planner { acr_image: "myreg.localhost:5000/acr-cli:1".into() };
    let p = planner.plan(&yaml(text), &vars(), &Values::new()).unwrap();
    assert_eq!(cmd(&p, 2).image, "myreg.localhost:5000/acr-cli:1");

    // Image aliases need v1.1.0 too.
    let p = plan_ok("steps:\n  - cmd: acr purge\n", &Values::new());
    assert_eq!(cmd(&p, 0).image, "acr");

    // Another directive; the alias section itself is not expanded.
    let text = "version: v1.1.0\nalias:\n  directive: \"&\"\n  values:\n    x: a$IDb\nsteps:\n  - cmd: busybox &x &ID $ID &&\n";
    let p = plan_ok(text, &Values::new());
    assert_eq!(cmd(&p, 0).args, ["a$IDb", "cf1", "$ID", "&"]);
}

#[test]
fn rendered_values_are_not_alias_expanded() {
    let mut values = Values::new();
    values.insert("pw", "pa$$w$ID", true);
    let p = plan_ok("version: v1.1.0\nsteps:\n  - cmd: busybox {{.Values.pw}} $ID\n", &values);
    assert_eq!(cmd(&p, 0).args, ["pa$$w$ID", "cf1"]);
    assert_eq!(p.secrets, ["pa$$w$ID"]);
}

#[test]
fn errors_point_into_the_file_as_written_through_templates_and_aliases() {
    let mut values = Values::new();
    values.insert("image", "a-rather-long-image-name:with-a-tag", false);
    let err = plan_err("steps:\n  - {cmd: {{.Values.image}}, bogus: 1}\n", &values);
    assert_eq!(err.position(), at(2, 30));
    let err = plan_err("version: v1.1.0\nsteps:\n  - {cmd: $Registry/x:$ID, when: [nope]}\n", &Values::new());
    assert_eq!(err.problem(), &Problem::UnknownWhen("nope".into()));
    assert_eq!(err.position(), at(3, 35));
    let err = plan_err("version: v1.1.0\nsteps:\n  - {cmd: $Registry, timeout: {{.Run.ID}}}\n", &Values::new());
    assert!(matches!(err.problem(), Problem::BadType { .. }));
    assert_eq!(err.position(), at(3, 31));
}

#[test]
fn build_strings_are_split_and_flags_read() {
    let text = r#"steps:
  - build: -t a:1 --tag=b -t other.io/c:2 -f docker/Dockerfile --build-arg A=1 --build-arg "B=two words" --build-arg C --target final --no-cache --pull --platform linux/arm64 ./src
  - build: "-tx:1 --file=F -- ."
"#;
    let p = plan_ok(text, &Values::new());
    assert_eq!(
        build(&p, 0),
        &BuildStep {
            tags: vec!["myreg.localhost:5000/a:1".into(), "myreg.localhost:5000/b".into(), "other.io/c:2".into()],
            dockerfile: Some("docker/Dockerfile".into()),
            context: "./src".into(),
            build_args: vec![
                ("A".into(), Some("1".into())),
                ("B".into(), Some("two words".into())),
                ("C".into(), None)
            ],
            target: Some("final".into()),
            no_cache: true,
            pull: true,
            platform: Some("linux/arm64".into()),
        }
    );
    let err = plan_err("steps:\n  - build: -t x:1 --squash .\n", &Values::new());
    assert_eq!(err.problem(), &Problem::UnknownBuildFlag("--squash".into()));
    // At the build string (where the flag is inside it depends on quoting and rendering).
    assert_eq!(err.position(), at(2, 12));
    assert_eq!(plan_err("steps:\n  - build: -t x:1\n", &Values::new()).problem(), &Problem::NoBuildContext);
    assert_eq!(
        plan_err("steps:\n  - build: . src\n", &Values::new()).problem(),
        &Problem::ManyBuildContexts(vec![".".into(), "src".into()])
    );
    assert_eq!(
        plan_err("steps:\n  - build: . -t\n", &Values::new()).problem(),
        &Problem::MissingFlagValue("-t".into())
    );
    assert!(matches!(
        plan_err("steps:\n  - build: \"-t 'x .\"\n", &Values::new()).problem(),
        Problem::UnterminatedQuote(_)
    ));
}

#[test]
fn the_step_pull_flag_reaches_the_build() {
    let p = plan_ok("steps:\n  - build: .\n    pull: true\n", &Values::new());
    assert!(build(&p, 0).pull);
}

#[test]
fn qualification_of_push_build_and_cmd_images() {
    let text = "steps:\n  - build: -t localhost:5000/a -t docker.io/library/b -t team/c .\n  - push: [app, app, localhost/x, team/y:1]\n  - cmd: team/tool:1 go\n";
    let p = plan_ok(text, &Values::new());
    assert_eq!(build(&p, 0).tags, ["localhost:5000/a", "docker.io/library/b", "myreg.localhost:5000/team/c"]);
    assert_eq!(
        p.steps[1].action,
        StepAction::Push(vec![
            "myreg.localhost:5000/app".into(),
            "localhost/x".into(),
            "myreg.localhost:5000/team/y:1".into()
        ])
    );
    // cmd images are pulled as Docker would: never qualified.
    assert_eq!(cmd(&p, 2).image, "team/tool:1");
}

#[test]
fn timeouts_retries_and_step_settings() {
    let text = "stepTimeout: 120\nworkingDirectory: /src\nenv: [A=1]\nsteps:\n  - cmd: x\n  - cmd: y\n    timeout: 30\n    retries: 3\n    retryDelay: 9\n    startDelay: 2\n    detach: true\n    keep: true\n    ignoreErrors: true\n    entryPoint: sh\n    env: [B=2]\n    workingDirectory: /w\n  - cmd: z\n    timeout: 0\n";
    let p = plan_ok(text, &Values::new());
    assert_eq!(p.steps[0].timeout, Duration::from_secs(120));
    assert_eq!(p.steps[2].timeout, Duration::from_secs(120));
    let s = &p.steps[1];
    assert_eq!(s.timeout, Duration::from_secs(30));
    assert_eq!((s.retries, s.retry_delay, s.start_delay), (3, Duration::from_secs(9), Duration::from_secs(2)));
    assert!(s.detach && s.keep && s.ignore_errors);
    assert_eq!(s.entry_point.as_deref(), Some("sh"));
    assert_eq!(s.env, vec![("B".to_string(), "2".to_string())]);
    assert_eq!(s.working_directory.as_deref(), Some("/w"));
    assert_eq!(p.working_directory, "/src");
    assert_eq!(p.env, vec![("A".to_string(), "1".to_string())]);
}

#[test]
fn secrets_are_collected_and_masked() {
    let mut values = Values::new();
    values.insert("pw", "hunter2", true);
    values.insert("user", "bob", false);
    // token: "topsecret"; config: "a: 1\nb: 2\n" (multi-line, not a mask candidate)
    let text = "volumes:\n  - name: v\n    secret:\n      token: dG9wc2VjcmV0\n      config: YTogMQpiOiAyCg==\nsteps:\n  - cmd: busybox login {{.Values.user}} {{.Values.pw}}\n    volumeMounts:\n      - name: v\n        mountPath: /run/v\n";
    let p = plan_ok(text, &values);
    assert_eq!(p.secrets, ["hunter2", "topsecret"]);
    let masker = Masker::new(&p.secrets);
    assert_eq!(masker.mask("login bob hunter2; token topsecret"), "login bob ***; token ***");
}

#[test]
fn key_vault_secrets_and_alias_files_refuse_a_run_but_not_a_create() {
    let text = "secrets:\n  - id: pw\n    keyvault: https://v.vault.azure.net/secrets/pw\nsteps:\n  - cmd: busybox\n";
    let err = plan_err(text, &Values::new());
    assert_eq!(err.problem(), &Problem::KeyVault("pw".into()));
    assert_eq!(err.position(), at(2, 5));
    assert!(validate(&yaml(text), &Values::new()).is_ok());

    let text = "version: v1.1.0\nalias:\n  src: [\"https://example.com/aliases.yaml\"]\nsteps:\n  - cmd: busybox\n";
    let err = plan_err(text, &Values::new());
    assert_eq!(err.problem(), &Problem::AliasSrc);
    assert_eq!(err.position(), at(2, 1));
    assert!(validate(&yaml(text), &Values::new()).is_ok());

    let err = plan_err("steps:\n  - cmd: busybox {{.Secrets.pw}}\n", &Values::new());
    assert_eq!(err.problem(), &Problem::KeyVault("pw".into()));
}

fn docker(push: bool, images: &[&str]) -> TaskSource {
    TaskSource::Docker {
        image_names: images.iter().map(|s| s.to_string()).collect(),
        dockerfile: "Dockerfile".into(),
        context: String::new(),
        arguments: vec![
            Argument { name: "A".into(), value: "1".into(), is_secret: false },
            Argument { name: "S".into(), value: "s3cret".into(), is_secret: true },
        ],
        target: Some("final".into()),
        push,
        no_cache: true,
        platform: Some("linux/arm64/v8".into()),
    }
}

#[test]
fn a_docker_source_is_a_build_and_a_push() {
    let p = plan(&docker(true, &["app:{{.Run.ID}}", "other.io/x:1", "app:{{ .Run.ID }}"]), &vars(), &Values::new())
        .unwrap();
    assert_eq!(p.steps.len(), 2);
    assert_eq!(
        build(&p, 0),
        &BuildStep {
            tags: vec!["myreg.localhost:5000/app:cf1".into(), "other.io/x:1".into()],
            dockerfile: Some("Dockerfile".into()),
            context: ".".into(),
            build_args: vec![("A".into(), Some("1".into())), ("S".into(), Some("s3cret".into()))],
            target: Some("final".into()),
            no_cache: true,
            pull: false,
            platform: Some("linux/arm64/v8".into()),
        }
    );
    assert_eq!(p.steps[0].id, "build");
    assert_eq!(p.steps[1].id, "push");
    assert_eq!(p.steps[1].action, StepAction::Push(vec!["myreg.localhost:5000/app:cf1".into(), "other.io/x:1".into()]));
    assert_eq!(p.steps[1].depends_on, [0]);
    assert_eq!(p.secrets, ["s3cret"]);

    // No push without --push or without images.
    assert_eq!(plan(&docker(false, &["app"]), &vars(), &Values::new()).unwrap().steps.len(), 1);
    assert_eq!(plan(&docker(true, &[]), &vars(), &Values::new()).unwrap().steps.len(), 1);

    let err = plan(&docker(true, &["ok", "app:{{.Values.tag}}"]), &vars(), &Values::new()).unwrap_err();
    assert_eq!(err.problem(), &Problem::MissingValue("tag".into()));
    assert!(err.to_string().starts_with("imageNames[1]: "), "{err}");
    assert_eq!(err.position(), None);
}

#[test]
fn the_docker_request_shape_deserializes() {
    let a: Argument = serde_json::from_str(r#"{"type":"Argument","name":"S","value":"2","isSecret":true}"#).unwrap();
    assert_eq!(a, Argument { name: "S".into(), value: "2".into(), is_secret: true });
}

#[test]
fn validate_allows_missing_values_and_refuses_bad_files_with_their_position() {
    let text = "steps:\n  - build: -t app:{{.Values.tag}} .\n  - cmd: {{.Values.image}}\n";
    let p = validate(&yaml(text), &Values::new()).unwrap();
    assert_eq!(build(&p, 0).tags, ["registry.invalid/app:0"]);
    let mut values = Values::new();
    values.insert("tag", "v2", false);
    let p = validate(&yaml(text), &values).unwrap();
    assert_eq!(build(&p, 0).tags, ["registry.invalid/app:v2"]);

    let err = validate(&yaml("steps:\n  - cmd: x\n    bogus: {{.Values.y}}\n"), &Values::new()).unwrap_err();
    assert_eq!(err.position(), at(3, 5));
    assert!(matches!(err.problem(), Problem::UnknownKey { context: "step", .. }));
    let err = validate(&yaml("steps:\n  - cmd: [\n"), &Values::new()).unwrap_err();
    assert!(matches!(err.problem(), Problem::Syntax(_)));
    let err = validate(&yaml("steps:\n  - cmd: {{.Build.ID}}\n"), &Values::new()).unwrap_err();
    assert_eq!(err.problem(), &Problem::BuildId);
    assert!(validate(&docker(true, &["app:{{.Values.nope}}"]), &Values::new()).is_ok());
}

#[test]
fn values_files_feed_templates_and_set_values_win() {
    let set = vec![wharf_tasks::SetValue { name: "tag".into(), value: "from-set".into(), is_secret: true }];
    let values = Values::from_request(Some("tag: from-file\nrepo: web\n"), &set).unwrap();
    let p = plan_ok("steps:\n  - build: -t {{.Values.repo}}:{{.Values.tag}} .\n", &values);
    assert_eq!(build(&p, 0).tags, ["myreg.localhost:5000/web:from-set"]);
    assert_eq!(p.secrets, ["from-set"]);
}

#[test]
fn plan_task_keeps_the_step_properties_a_plan_has_no_field_for() {
    let text = "volumes:\n  - name: v\n    secret:\n      a: aGk=\nsteps:\n  - build: .\n  - cmd: busybox\n    user: root\n    privileged: true\n    network: host\n    repeat: 2\n    volumeMounts:\n      - name: v\n        mountPath: /m\n";
    let task = Planner::default().plan_task(&yaml(text), &vars(), &Values::new()).unwrap();
    let file = task.file.unwrap();
    assert_eq!(task.plan.steps.len(), file.steps.len());
    let extra = &file.steps[1];
    assert_eq!(
        (extra.user.as_deref(), extra.privileged, extra.network.as_deref(), extra.repeat),
        (Some("root"), true, Some("host"), 2)
    );
    assert_eq!(extra.volume_mounts[0].mount_path, "/m");
    assert_eq!(file.volumes[0].secret, vec![("a".to_string(), b"hi".to_vec())]);
    assert_eq!(task.plan.secrets, ["hi"]);
    let docker = Planner::default().plan_task(&docker(true, &["x"]), &vars(), &Values::new()).unwrap();
    assert!(docker.file.is_none());
}

#[test]
fn a_plan_round_trips_through_json() {
    let p = plan_ok(SEED, &Values::new());
    let json = serde_json::to_string(&p).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), p);
}
