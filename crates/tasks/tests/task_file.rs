//! Black-box tests of task-file parsing ([`parse_task_file`]): every key ACR documents,
//! and one refusal per kind of mistake, each at its exact line and column.

use wharf_tasks::{Position, Problem, StepKind, TaskError, TaskFile, parse_task_file};

fn parse(yaml: &str) -> TaskFile {
    parse_task_file(yaml).unwrap_or_else(|e| panic!("{e}"))
}

fn fail(yaml: &str) -> TaskError {
    match parse_task_file(yaml) {
        Ok(file) => panic!("parsed: {file:?}"),
        Err(e) => e,
    }
}

fn at(line: usize, column: usize) -> Option<Position> {
    Some(Position { line, column })
}

const SEED: &str = "version: v1.1.0\nsteps:\n  - build: -t $Registry/hello-world:$ID .\n  - push: [\"$Registry/hello-world:$ID\"]\n  - cmd: $Registry/hello-world:$ID\n";

#[test]
fn the_seed_example_parses_as_written() {
    let file = parse(SEED);
    assert_eq!(file.version, "v1.1.0");
    assert!(file.has_aliases());
    assert_eq!(file.steps.len(), 3);
    assert_eq!(file.steps[0].kind, StepKind::Build("-t $Registry/hello-world:$ID .".into()));
    assert_eq!(file.steps[1].kind, StepKind::Push(vec!["$Registry/hello-world:$ID".into()]));
    assert_eq!(file.steps[2].kind, StepKind::Cmd("$Registry/hello-world:$ID".into()));
    assert_eq!(file.step_ids(), ["acb_step_0", "acb_step_1", "acb_step_2"]);
    assert_eq!(file.dependencies(), vec![vec![], vec![0], vec![1]]);
    assert_eq!(file.steps[1].kind_at, Position { line: 4, column: 11 });
}

#[test]
fn defaults_of_a_minimal_file() {
    let file = parse("steps:\n  - cmd: hello-world\n");
    assert_eq!(file.version, "v1.0.0");
    assert!(!file.has_aliases());
    assert_eq!(file.step_timeout, None);
    assert!(file.env.is_empty() && file.secrets.is_empty() && file.volumes.is_empty() && file.networks.is_empty());
    let step = &file.steps[0];
    assert_eq!(step.id, None);
    assert!(step.when.is_empty());
    assert_eq!((step.timeout, step.retries, step.detach), (None, 0, false));
}

#[test]
fn every_top_level_and_step_key() {
    let yaml = r#"version: v1.1.0
stepTimeout: 900
workingDirectory: /src
env: ["A=1", "B=x=y"]
secrets:
  - id: pw
    keyvault: https://v.vault.azure.net/secrets/pw
    clientID: 1234
volumes:
  - name: vol
    secret:
      a.txt: aGVsbG8=
networks:
  - name: net1
    driver: bridge
    ipv6: true
    skipCreation: false
    isDefault: true
alias:
  values:
    img: busybox
steps:
  - id: s1
    cmd: busybox echo hi
    when: ["-"]
    detach: true
    entryPoint: /bin/sh
    env: [C=3]
    ignoreErrors: true
    retries: 2
    retryDelay: 7
    timeout: 30
    workingDirectory: /w
    keep: true
    startDelay: 3
    disableWorkingDirectoryOverride: true
    isolation: default
    network: net1
    privileged: true
    user: root
    pull: true
    repeat: 1
    expose: ["80"]
    ports: ["8080:80"]
    volumeMounts:
      - name: vol
        mountPath: /run/vol
    secret: {id: pw}
    cache: disabled
    cpus: "2"
    exitedWith: [0, 1]
    exitedWithout: [2]
    retryOnErrors: ["timeout"]
"#;
    let file = parse(yaml);
    assert_eq!(file.step_timeout, Some(900));
    assert_eq!(file.working_directory.as_deref(), Some("/src"));
    assert_eq!(file.env, vec![("A".into(), "1".into()), ("B".into(), "x=y".into())]);
    assert_eq!(file.secrets[0].id, "pw");
    assert_eq!(file.secrets[0].keyvault.as_deref(), Some("https://v.vault.azure.net/secrets/pw"));
    assert_eq!(file.secrets[0].client_id.as_deref(), Some("1234"));
    assert_eq!(file.secrets[0].at, Position { line: 6, column: 5 });
    assert_eq!(file.volumes[0].name, "vol");
    assert_eq!(file.volumes[0].secret, vec![("a.txt".to_string(), b"hello".to_vec())]);
    let net = &file.networks[0];
    assert_eq!(
        (net.name.as_str(), net.driver.as_deref(), net.ipv6, net.skip_creation, net.is_default),
        ("net1", Some("bridge"), true, false, true)
    );
    assert_eq!(file.alias.as_ref().unwrap().values, vec![("img".to_string(), "busybox".to_string())]);
    let s = &file.steps[0];
    assert_eq!(s.id.as_deref(), Some("s1"));
    assert_eq!(s.when, ["-"]);
    assert!(s.detach && s.ignore_errors && s.keep && s.disable_working_directory_override && s.privileged && s.pull);
    assert_eq!(s.entry_point.as_deref(), Some("/bin/sh"));
    assert_eq!(s.env, vec![("C".into(), "3".into())]);
    assert_eq!((s.retries, s.retry_delay, s.timeout, s.start_delay, s.repeat), (2, Some(7), Some(30), 3, 1));
    assert_eq!(s.working_directory.as_deref(), Some("/w"));
    assert_eq!(
        (s.isolation.as_deref(), s.network.as_deref(), s.user.as_deref()),
        (Some("default"), Some("net1"), Some("root"))
    );
    assert_eq!((s.expose.clone(), s.ports.clone()), (vec!["80".to_string()], vec!["8080:80".to_string()]));
    assert_eq!(s.volume_mounts[0].name, "vol");
    assert_eq!(s.volume_mounts[0].mount_path, "/run/vol");
    assert_eq!(s.secret, Some(serde_json::json!({"id": "pw"})));
    assert_eq!((s.cache.as_deref(), s.cpus.as_deref()), (Some("disabled"), Some("2")));
    assert_eq!((s.exited_with.clone(), s.exited_without.clone()), (vec![0, 1], vec![2]));
    assert_eq!(s.retry_on_errors, ["timeout"]);
}

#[test]
fn unknown_keys_are_refused_at_the_key() {
    let err = fail("version: v1.1.0\nsteps:\n  - build: -t $Registry/hello-world:$ID .\n    bogus: 1\n");
    assert_eq!(err.position(), at(4, 5));
    let text = err.to_string();
    assert!(
        text.starts_with(
            "task file line 4, column 5: unknown step key 'bogus' (expected one of id, build, push, cmd, when,"
        ),
        "{text}"
    );

    let err = fail("steps:\n    - cmd: x\n      bogus: 1\n");
    assert_eq!(err.position(), at(3, 7));

    let err = fail("version: v1.0.0\nstep:\n  - cmd: x\n");
    assert_eq!(err.position(), at(2, 1));
    assert!(err.to_string().contains("unknown top-level key 'step' (expected one of version, stepTimeout,"), "{err}");

    let err = fail("steps:\n  - {cmd: x, bogus: 2}\n");
    assert_eq!(err.position(), at(2, 14));

    let err = fail("volumes:\n  - name: v\n    secret: {}\n    extra: 1\nsteps:\n  - cmd: x\n");
    assert_eq!(err.position(), at(4, 5));
    assert!(matches!(err.problem(), Problem::UnknownKey { context: "volume", .. }));

    let err = fail("networks:\n  - name: n\n    mtu: 1\nsteps:\n  - cmd: x\n");
    assert_eq!(err.position(), at(3, 5));
}

#[test]
fn bad_types_are_refused_at_the_value() {
    let err = fail("steps:\n  - cmd: a\n    timeout: abc\n");
    assert_eq!(err.position(), at(3, 14));
    assert_eq!(err.to_string(), "task file line 3, column 14: 'timeout' must be an integer, found 'abc'");

    let err = fail("steps:\n  - cmd: a\n    timeout: \"600\"\n");
    assert_eq!(
        err.problem(),
        &Problem::BadType { key: "timeout".into(), expected: "an integer", found: "the string \"600\"".into() }
    );

    let err = fail("steps:\n  - cmd: a\n    detach: maybe\n");
    assert_eq!(err.position(), at(3, 13));
    assert!(matches!(err.problem(), Problem::BadType { expected: "true or false", .. }));

    let err = fail("steps:\n  - cmd: a\n    when: b\n");
    assert_eq!(err.position(), at(3, 11));
    assert!(matches!(err.problem(), Problem::BadType { expected: "a list", .. }));

    let err = fail("steps:\n  - push: img\n");
    assert_eq!(err.position(), at(2, 11));

    let err = fail("steps:\n  - cmd: [a, b]\n");
    assert!(matches!(err.problem(), Problem::BadType { expected: "a string", .. }));

    let err = fail("steps:\n  - cmd: a\n    retries: -1\n");
    assert_eq!(err.problem(), &Problem::Negative("retries".into()));
    assert_eq!(err.position(), at(3, 14));

    let err = fail("stepTimeout: soon\nsteps:\n  - cmd: a\n");
    assert_eq!(err.position(), at(1, 14));

    let err = fail("steps: hello\n");
    assert_eq!(err.position(), at(1, 8));

    let err = fail("- cmd: x\n");
    assert!(matches!(err.problem(), Problem::BadType { expected: "a mapping", .. }));
}

#[test]
fn a_step_has_exactly_one_of_build_push_cmd() {
    let err = fail("steps:\n  - id: a\n    timeout: 5\n");
    assert_eq!(err.problem(), &Problem::StepKind("none".into()));
    assert_eq!(err.position(), at(2, 5));
    let err = fail("steps:\n  - cmd: x\n    build: .\n");
    assert_eq!(err.problem(), &Problem::StepKind("cmd and build".into()));
    assert_eq!(err.position(), at(3, 12));
    let err = fail("steps:\n  - cmd:\n");
    assert_eq!(err.problem(), &Problem::StepKind("none".into()));
}

#[test]
fn when_references_must_name_steps() {
    let err = fail("steps:\n  - id: a\n    cmd: x\n    when: [\"b\"]\n");
    assert_eq!(err.position(), at(4, 12));
    assert_eq!(err.to_string(), "task file line 4, column 12: 'when' names the step 'b', and no step has that id");

    let err = fail("steps:\n  - id: a\n    cmd: x\n  - id: b\n    cmd: y\n    when:\n      - a\n      - zz\n");
    assert_eq!(err.position(), at(8, 9));
    assert_eq!(err.problem(), &Problem::UnknownWhen("zz".into()));

    let err = fail("steps:\n  - id: a\n    cmd: x\n    when: [a]\n");
    assert_eq!(err.problem(), &Problem::SelfDependency("a".into()));
    assert_eq!(err.position(), at(4, 12));

    let err = fail("steps:\n  - id: a\n    cmd: x\n    when: [\"-\", a]\n");
    assert_eq!(err.problem(), &Problem::WhenDashWithOthers);
    assert_eq!(err.position(), at(4, 11));
}

#[test]
fn forward_and_default_id_references_are_allowed() {
    let file = parse(
        "steps:\n  - id: a\n    cmd: x\n    when: [c]\n  - cmd: y\n    when: [\"-\"]\n  - id: c\n    cmd: z\n    when: [acb_step_1]\n",
    );
    assert_eq!(file.step_ids(), ["a", "acb_step_1", "c"]);
    assert_eq!(file.dependencies(), vec![vec![2], vec![], vec![1]]);
}

#[test]
fn ids_are_unique_and_without_spaces() {
    let err = fail("steps:\n  - id: a\n    cmd: x\n  - id: a\n    cmd: y\n");
    assert_eq!(err.problem(), &Problem::DuplicateStepId("a".into()));
    assert_eq!(err.position(), at(4, 9));
    let err = fail("steps:\n  - cmd: x\n  - id: acb_step_0\n    cmd: y\n");
    assert_eq!(err.problem(), &Problem::DuplicateStepId("acb_step_0".into()));
    let err = fail("steps:\n  - id: a b\n    cmd: x\n");
    assert_eq!(err.problem(), &Problem::StepIdSpace("a b".into()));
    assert_eq!(err.position(), at(2, 9));
}

#[test]
fn cycles_are_refused_with_their_path() {
    let err = fail("steps:\n- id: a\n  cmd: x\n  when: [b]\n- id: b\n  cmd: y\n  when: [a]\n");
    assert_eq!(err.problem(), &Problem::Cycle(vec!["a".into(), "b".into(), "a".into()]));
    assert_eq!(err.position(), at(7, 10));
    assert!(err.to_string().ends_with("the steps wait for each other in a cycle: a -> b -> a"), "{err}");

    // Three steps, one of them waiting implicitly on the previous step.
    let err = fail("steps:\n- id: a\n  cmd: x\n  when: [c]\n- id: b\n  cmd: y\n- id: c\n  cmd: z\n  when: [b]\n");
    assert_eq!(err.problem(), &Problem::Cycle(vec!["a".into(), "c".into(), "b".into(), "a".into()]));
    assert_eq!(err.position(), at(5, 3));
}

#[test]
fn parallel_and_listed_dependencies() {
    let file = parse(
        "steps:\n- id: a\n  cmd: x\n- id: b\n  cmd: y\n  when: [\"-\"]\n- id: c\n  cmd: z\n  when: [b, a, b]\n- cmd: w\n",
    );
    assert_eq!(file.dependencies(), vec![vec![], vec![], vec![0, 1], vec![2]]);
}

#[test]
fn env_entries_are_name_equals_value() {
    let err = fail("env: [\"A=1\", \"oops\"]\nsteps:\n  - cmd: x\n");
    assert_eq!(err.problem(), &Problem::BadEnv("oops".into()));
    assert_eq!(err.position(), at(1, 14));
    let err = fail("steps:\n  - cmd: x\n    env:\n      - =v\n");
    assert_eq!(err.position(), at(4, 9));
}

#[test]
fn versions_duplicates_and_empty_files() {
    let err = fail("version: v2.0.0\nsteps:\n  - cmd: x\n");
    assert_eq!(err.problem(), &Problem::BadVersion("v2.0.0".into()));
    assert_eq!(err.position(), at(1, 10));
    assert_eq!(parse("version: 1.0-preview-1\nsteps:\n  - cmd: x\n").version, "1.0-preview-1");

    let err = fail("steps:\n  - cmd: x\n    cmd: y\n");
    assert_eq!(err.problem(), &Problem::DuplicateKey("cmd".into()));
    assert_eq!(err.position(), at(3, 5));

    assert_eq!(fail("").problem(), &Problem::Empty);
    assert_eq!(fail("# just a comment\n").problem(), &Problem::Empty);
    assert_eq!(fail("version: v1.0.0\n").problem(), &Problem::NoSteps);
    let err = fail("version: v1.0.0\nsteps: []\n");
    assert_eq!(err.problem(), &Problem::NoSteps);
    assert_eq!(err.position(), at(2, 1));
}

#[test]
fn yaml_syntax_errors_say_where() {
    let err = fail("steps:\n  - cmd: a\n   bad: [\n");
    assert!(matches!(err.problem(), Problem::Syntax(_)));
    assert!(err.position().is_some());
    let err = fail("steps:\n  - cmd: a: b\n");
    assert_eq!(err.position(), at(2, 11));
}

#[test]
fn volumes_and_mounts_are_checked() {
    let err = fail("volumes:\n  - name: v\n    secret:\n      k: '!!notbase64'\nsteps:\n  - cmd: x\n");
    assert_eq!(err.problem(), &Problem::BadBase64 { volume: "v".into(), key: "k".into() });
    assert_eq!(err.position(), at(4, 10));

    let err = fail("steps:\n  - cmd: x\n    volumeMounts:\n      - name: nope\n        mountPath: /m\n");
    assert_eq!(err.problem(), &Problem::UnknownVolume("nope".into()));
    assert_eq!(err.position(), at(4, 15));

    let err = fail(
        "volumes:\n  - name: v\nsteps:\n  - build: .\n    volumeMounts:\n      - name: v\n        mountPath: /m\n",
    );
    assert_eq!(err.problem(), &Problem::MountsOnNonCmd);

    let err = fail("volumes:\n  - secret: {}\nsteps:\n  - cmd: x\n");
    assert_eq!(err.problem(), &Problem::MissingKey { key: "name", context: "a volume" });
}

#[test]
fn alias_sections_are_checked() {
    let err = fail("version: v1.1.0\nalias:\n  values:\n    my-img: x\nsteps:\n  - cmd: x\n");
    assert_eq!(err.problem(), &Problem::BadAliasName("my-img".into()));
    assert_eq!(err.position(), at(4, 5));
    let err = fail("alias:\n  directive: ab\nsteps:\n  - cmd: x\n");
    assert_eq!(err.problem(), &Problem::BadAliasDirective("ab".into()));
    let file = parse("alias:\n  src: [\"https://example.com/a.yaml\"]\n  directive: \"&\"\nsteps:\n  - cmd: x\n");
    let alias = file.alias.unwrap();
    assert_eq!(alias.src, ["https://example.com/a.yaml"]);
    assert_eq!(alias.directive, Some('&'));
}

#[test]
fn secrets_need_an_id() {
    let err = fail("secrets:\n  - keyvault: https://v\nsteps:\n  - cmd: x\n");
    assert_eq!(err.problem(), &Problem::MissingKey { key: "id", context: "a secret" });
    let err = fail("secrets:\n  - id: a\n  - id: a\nsteps:\n  - cmd: x\n");
    assert_eq!(err.problem(), &Problem::DuplicateSecret("a".into()));
}

#[test]
fn the_message_reads_like_a_compiler_s() {
    let yaml = "version: v1.1.0\nsteps:\n    - cmd: x\n      bogus: 1\n";
    let err = fail(yaml);
    assert_eq!(
        err.to_string(),
        "task file line 4, column 7: unknown step key 'bogus' (expected one of id, build, push, cmd, when, detach, \
         entryPoint, env, ignoreErrors, retries, retryDelay, timeout, workingDirectory, keep, startDelay, \
         disableWorkingDirectoryOverride, isolation, network, privileged, user, pull, repeat, expose, ports, \
         volumeMounts, secret, cache, cpus, exitedWith, exitedWithout, retryOnErrors)"
    );
    assert!(err.snippet(yaml).ends_with("\n  4 |       bogus: 1\n    |       ^"), "{}", err.snippet(yaml));
}

#[test]
fn crlf_files_parse_and_positions_hold() {
    let file = parse("version: v1.0.0\r\nsteps:\r\n  - cmd: x\r\n");
    assert_eq!(file.steps.len(), 1);
    let err = fail("steps:\r\n  - cmd: x\r\n    bogus: 1\r\n");
    assert_eq!(err.position(), at(3, 5));
}

#[test]
fn versions_that_enable_aliases() {
    use wharf_tasks::version_has_aliases;
    assert!(version_has_aliases("v1.1.0"));
    assert!(version_has_aliases("V1.1.0"));
    assert!(version_has_aliases("v2.0.0"));
    assert!(!version_has_aliases("v1.0.0"));
    assert!(!version_has_aliases("1.0-preview-1"));
    assert!(!version_has_aliases(""));
}
