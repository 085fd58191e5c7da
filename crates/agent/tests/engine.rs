//! The engine against real buildah, podman and docker-registry on 127.0.0.1 (network host or
//! none, never the CNI bridge). See `common/mod.rs` for the harness.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::*;
use tokio_util::sync::CancellationToken;
use wharf_agent::{Availability, Engine, EngineConfig, Network, RunStatus};
use wharf_tasks::{BuildStep, CmdStep, StepAction};

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

#[tokio::test]
async fn probe_reports_the_versions() {
    if !tools_present() {
        return;
    }
    let (engine, _w) = engine(Network::None, &[]);
    match engine.probe().await {
        Availability::Ready { buildah, podman } => {
            assert!(buildah.starts_with(char::is_numeric) && podman.starts_with(char::is_numeric), "{buildah} {podman}")
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn missing_tools_fail_the_run_at_once_with_the_packages_to_install() {
    let work = scratch();
    let cfg = EngineConfig { buildah: "/nonexistent/buildah".into(), ..EngineConfig::new(work.path()) };
    let engine = Engine::new(cfg).unwrap();
    let Availability::Missing { message } = engine.probe().await else { panic!("buildah is not there") };
    assert!(message.contains("apt-get install buildah podman runc"), "{message}");
    let started = std::time::Instant::now();
    let (outcome, lines) = execute(&engine, job("cf1", plan(vec![sh("s", "busybox", "true")]))).await;
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(outcome.status, RunStatus::Error);
    assert!(outcome.error.as_deref().unwrap().contains("apt-get install buildah podman runc"));
    assert!(lines.last().unwrap().starts_with("Run ID: cf1 failed after"), "{}", dump(&lines));
    assert!(!work.path().join("runs/cf1").exists());
}

/// A multi-stage Dockerfile (`ARG` before `FROM`, `RUN`, `COPY`, `COPY --from`) built from the
/// run's context, pushed with its digest recorded, the digest checked against the registry,
/// and the built image run by a later cmd step from the same store.
#[tokio::test]
async fn builds_pushes_and_runs_a_multi_stage_image() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::Host, &[]);
    let ctx = scratch();
    std::fs::create_dir(ctx.path().join("app")).unwrap();
    std::fs::write(ctx.path().join("app/msg.txt"), "hello from the context\n").unwrap();
    std::fs::write(
        ctx.path().join("app/Dockerfile.multi"),
        "ARG BASE\n\
         FROM $BASE AS builder\n\
         ARG VERSION\n\
         ARG NONCE\n\
         RUN echo \"built $VERSION $NONCE\" > /built.txt\n\
         FROM $BASE AS unused\n\
         RUN exit 9\n\
         FROM $BASE\n\
         COPY --from=builder /built.txt /built.txt\n\
         COPY msg.txt /msg.txt\n\
         CMD [\"cat\", \"/built.txt\"]\n",
    )
    .unwrap();
    let id = run_id("build");
    let image = format!("{}/app/multi:{id}", s.registry.host);
    let nonce = id.clone();
    let mut p = plan(vec![
        build(
            "b",
            BuildStep {
                tags: vec![image.clone()],
                dockerfile: Some("Dockerfile.multi".into()),
                context: "app".into(),
                build_args: vec![
                    ("BASE".into(), Some(s.base.clone())),
                    ("VERSION".into(), None),
                    ("NONCE".into(), Some(nonce.clone())),
                ],
                ..BuildStep::default()
            },
        ),
        step("p", StepAction::Push(vec![image.clone()])),
        sh("r", &image, "cat /built.txt /msg.txt"),
    ]);
    p.steps[0].env = vec![("VERSION".into(), "1.2.3".into())];
    p.steps[1].depends_on = vec![0];
    p.steps[2].depends_on = vec![1];
    let mut j = job(&id, p);
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    let (outcome, lines) = execute(&engine, j).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}\n{}", outcome.error, dump(&lines));
    assert_eq!(outcome.steps.len(), 3);
    assert!(outcome.steps.iter().all(|st| st.status == RunStatus::Succeeded && st.exit_code == Some(0)));
    let [pushed] = &outcome.images[..] else { panic!("{:?}", outcome.images) };
    assert_eq!(pushed.registry, s.registry.host);
    assert_eq!(pushed.repository, "app/multi");
    assert_eq!(pushed.tag.as_deref(), Some(id.as_str()));
    assert!(pushed.digest.starts_with("sha256:") && pushed.digest.len() == 71, "{}", pushed.digest);
    assert_eq!(registry_digest(&s.registry.host, "app/multi", &id, None), pushed.digest);
    assert!(has(&lines, &format!("built 1.2.3 {nonce}")), "{}", dump(&lines));
    assert!(has(&lines, "hello from the context"));
    assert!(has(&lines, "Executing step ID: b. Timeout(sec): 120, Working directory: '', Network: 'host'"));
    assert!(has(
        &lines,
        &format!("- image: registry: {}, repository: app/multi, tag: {id}, digest: {}", s.registry.host, pushed.digest)
    ));
    assert!(has(&lines, "Successfully executed container: r"));
    assert!(has(&lines, "Step ID: p marked as successful (elapsed time in seconds: "));
    assert!(lines.last().unwrap().starts_with(&format!("Run ID: {id} was successful after ")), "{}", dump(&lines));
    assert!(!has(&lines, "exit 9"), "the unused stage is not built");
    assert!(!engine.config().work_root.join("runs").join(&id).exists(), "the run directory is removed");
}

#[tokio::test]
async fn a_failing_step_fails_the_run_with_its_exit_code() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("fail");
    let mut p = plan(vec![
        sh("out", &s.base, "echo to-stdout; echo to-stderr >&2; exit 5"),
        sh("after", &s.base, "echo never"),
    ]);
    p.steps[1].depends_on = vec![0];
    let (outcome, lines) = execute(&engine, job(&id, p)).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", dump(&lines));
    assert_eq!(outcome.error.as_deref(), Some("failed during run, err: exit status 5"));
    let [st] = &outcome.steps[..] else { panic!("only the first step ran: {:?}", outcome.steps) };
    assert_eq!((st.id.as_str(), st.status, st.exit_code), ("out", RunStatus::Failed, Some(5)));
    assert!(lines.iter().any(|l| l == "to-stdout") && lines.iter().any(|l| l == "to-stderr"), "{}", dump(&lines));
    assert!(has(&lines, "Step ID: out marked as failed (elapsed time in seconds: "));
    assert!(has(&lines, "exit status 5"));
    assert!(!has(&lines, "never"));
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(&format!("Run ID: {id} failed after "))
            && last.ends_with(". Error: failed during run, err: exit status 5"),
        "{last}"
    );
    assert!(containers(&engine, &format!("wharf-{id}-")).is_empty());
}

#[tokio::test]
async fn ignore_errors_and_retries() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("ignore");
    let mut p = plan(vec![
        sh("flaky", &s.base, "test -f /workspace/once || { touch /workspace/once; exit 1; }; echo second-attempt"),
        sh("bad", &s.base, "exit 3"),
        sh("last", &s.base, "pwd; echo $A-$B"),
    ]);
    p.env = vec![("A".into(), "plan".into()), ("B".into(), "plan".into())];
    p.steps[0].retries = 1;
    p.steps[0].retry_delay = Duration::from_millis(100);
    p.steps[1].ignore_errors = true;
    p.steps[1].depends_on = vec![0];
    p.steps[2].depends_on = vec![1];
    p.steps[2].env = vec![("B".into(), "step".into())];
    p.steps[2].working_directory = Some("sub".into());
    let (outcome, lines) = execute(&engine, job(&id, p)).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", dump(&lines));
    let st: Vec<_> = outcome.steps.iter().map(|s| (s.id.as_str(), s.status, s.exit_code)).collect();
    assert_eq!(
        st,
        [
            ("flaky", RunStatus::Succeeded, Some(0)),
            ("bad", RunStatus::Failed, Some(3)),
            ("last", RunStatus::Succeeded, Some(0))
        ]
    );
    assert!(has(&lines, "Step ID: flaky failed (exit status 1); retry 1 of 1"), "{}", dump(&lines));
    assert!(has(&lines, "second-attempt"));
    assert!(lines.iter().any(|l| l == "/workspace/sub"), "{}", dump(&lines));
    assert!(lines.iter().any(|l| l == "plan-step"), "{}", dump(&lines));
}

/// Two steps with no dependencies run at once: each writes its start time, waits for the
/// other's start file (a rendezvous that fails if they ran one after the other), then writes
/// its end time; a third step prints the times.
#[tokio::test]
async fn steps_without_dependencies_run_in_parallel() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("par");
    let side = |me: &str, other: &str| {
        format!(
            "cut -d' ' -f1 /proc/uptime > /workspace/{me}.start; \
             i=0; while [ ! -f /workspace/{other}.start ]; do i=$((i+1)); [ $i -gt 300 ] && exit 7; sleep 0.1; done; \
             cut -d' ' -f1 /proc/uptime > /workspace/{me}.end"
        )
    };
    let mut p = plan(vec![
        sh("a", &s.base, &side("a", "b")),
        sh("b", &s.base, &side("b", "a")),
        sh("times", &s.base, "for f in a.start a.end b.start b.end; do echo \"$f=$(cat /workspace/$f)\"; done"),
    ]);
    p.steps[2].depends_on = vec![0, 1];
    let (outcome, lines) = execute(&engine, job(&id, p)).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", dump(&lines));
    let time = |name: &str| -> f64 {
        let prefix = format!("{name}=");
        lines
            .iter()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("{name}: {}", dump(&lines)))
            .parse()
            .unwrap()
    };
    assert!(time("a.start") <= time("b.end") && time("b.start") <= time("a.end"), "{}", dump(&lines));
    // And the engine's own record agrees: both started before either finished.
    let (a, b) = (&outcome.steps[0], &outcome.steps[1]);
    assert!(a.started <= b.started + chrono::Duration::from_std(b.duration).unwrap());
    assert!(b.started <= a.started + chrono::Duration::from_std(a.duration).unwrap());
}

#[tokio::test]
async fn a_step_timeout_kills_the_container() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("tmo");
    let mut p = plan(vec![step(
        "slow",
        StepAction::Cmd(CmdStep { image: s.base.clone(), args: vec!["sleep".into(), "613".into()] }),
    )]);
    p.steps[0].timeout = Duration::from_secs(2);
    let (outcome, lines) = execute(&engine, job(&id, p)).await;
    assert_eq!(outcome.status, RunStatus::Timeout, "{}", dump(&lines));
    assert_eq!(outcome.steps[0].status, RunStatus::Timeout);
    assert_eq!(outcome.steps[0].exit_code, None);
    assert!(outcome.steps[0].duration < Duration::from_secs(30));
    assert!(outcome.error.as_deref().unwrap().contains("slow exceeded its timeout of 2s"), "{:?}", outcome.error);
    assert!(containers(&engine, &format!("wharf-{id}-")).is_empty());
    assert!(!process_running(&["sleep", "613"]));
}

#[tokio::test]
async fn the_run_timeout_stops_every_step() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("runtmo");
    let p = plan(vec![step(
        "slow",
        StepAction::Cmd(CmdStep { image: s.base.clone(), args: vec!["sleep".into(), "614".into()] }),
    )]);
    let mut j = job(&id, p);
    j.timeout = Duration::from_secs(2);
    let (outcome, lines) = execute(&engine, j).await;
    assert_eq!(outcome.status, RunStatus::Timeout, "{}", dump(&lines));
    assert_eq!(outcome.steps[0].status, RunStatus::Timeout);
    assert_eq!(outcome.error.as_deref(), Some("the run exceeded its timeout of 2s"));
    assert!(containers(&engine, &format!("wharf-{id}-")).is_empty());
    assert!(!process_running(&["sleep", "614"]));
}

/// Cancel while a container and a build's RUN are both running: both end, nothing is left.
#[tokio::test]
async fn cancellation_mid_step_leaves_nothing_running() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("cancel");
    let ctx = scratch();
    let from = unique_base(&engine, &id);
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {from}\nRUN echo build-started-{id} && sleep 615\n"))
        .unwrap();
    let p = plan(vec![
        step("sleeper", StepAction::Cmd(CmdStep { image: s.base.clone(), args: vec!["sleep".into(), "616".into()] })),
        build("slowbuild", BuildStep { context: ".".into(), no_cache: true, ..BuildStep::default() }),
    ]);
    let mut j = job(&id, p);
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let run = {
        let (engine, cancel) = (engine.clone(), cancel.clone());
        tokio::spawn(async move { engine.execute(j, tx, cancel).await })
    };
    let mut lines = Vec::new();
    let started = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(l) = rx.recv().await {
            lines.push(l);
            if lines.iter().any(|l| *l == format!("build-started-{id}")) && process_running(&["sleep", "616"]) {
                return;
            }
        }
    })
    .await;
    assert!(started.is_ok(), "{}", dump(&lines));
    cancel.cancel();
    let outcome = tokio::time::timeout(Duration::from_secs(60), run).await.expect("ends after cancel").unwrap();
    while let Ok(l) = rx.try_recv() {
        lines.push(l);
    }
    assert_eq!(outcome.status, RunStatus::Canceled, "{}", dump(&lines));
    assert_eq!(outcome.error.as_deref(), Some("the run was canceled"));
    assert!(outcome.steps.iter().all(|st| st.status == RunStatus::Canceled), "{:?}", outcome.steps);
    assert!(lines.last().unwrap().starts_with(&format!("Run ID: {id} was canceled after ")));
    assert!(containers(&engine, &format!("wharf-{id}-")).is_empty());
    assert!(!process_running(&["sleep", "615"]) && !process_running(&["sleep", "616"]));
    assert_eq!(build_containers(&engine, &from), 0, "the build's working container is gone");
}

/// Canceled while buildah is still setting up (pulling, creating the FROM container), where
/// it exits without cleaning up: the engine removes the working container it left.
#[tokio::test]
async fn a_build_canceled_before_its_run_leaves_no_container() {
    if !tools_present() {
        return;
    }
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("cancelsetup");
    let from = unique_base(&engine, &id);
    let ctx = scratch();
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {from}\nCOPY . /ctx\nRUN sleep 621\n")).unwrap();
    for i in 0..200 {
        std::fs::write(ctx.path().join(format!("f{i}")), vec![b'x'; 64 * 1024]).unwrap();
    }
    let mut j =
        job(&id, plan(vec![build("b", BuildStep { context: ".".into(), no_cache: true, ..BuildStep::default() })]));
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let run = {
        let (engine, cancel) = (engine.clone(), cancel.clone());
        tokio::spawn(async move { engine.execute(j, tx, cancel).await })
    };
    let mut lines = Vec::new();
    while let Some(l) = rx.recv().await {
        let step1 = l.starts_with("STEP 1/3");
        lines.push(l);
        if step1 {
            cancel.cancel();
            break;
        }
    }
    let outcome = tokio::time::timeout(Duration::from_secs(60), run).await.expect("ends after cancel").unwrap();
    assert_eq!(outcome.status, RunStatus::Canceled, "{}", dump(&lines));
    assert_eq!(build_containers(&engine, &from), 0, "{}", dump(&lines));
    assert!(!process_running(&["sleep", "621"]));
}

/// A copy of the base image that is an image of its own (its own label, so its own ID) under a
/// tag of its own, so that the build containers made from it are this test's. Not just another
/// tag of the base: buildah 1.28 adds a name by rewriting the image's whole list of names, and
/// concurrent taggers of one image lose names.
fn unique_base(engine: &Engine, id: &str) -> String {
    let s = shared();
    let tag = format!("{}-{id}", s.base);
    let run = |args: &[&str]| -> String {
        let out = tool(engine, "buildah", args);
        assert!(out.status.success(), "buildah {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let c = run(&["from", "--pull=never", &s.base]);
    run(&["config", "--label", &format!("wharf.test={id}"), &c]);
    run(&["commit", "-q", "--rm", &c, &tag]);
    tag
}

/// How many buildah containers of the store were made from `image`.
fn build_containers(engine: &Engine, image: &str) -> usize {
    let out = tool(engine, "buildah", &["containers", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    list.as_array().map_or(0, |l| l.iter().filter(|c| c["imagename"] == image).count())
}

/// A failing `RUN` fails the build step with its exit code and leaves no container behind.
#[tokio::test]
async fn a_failing_build_reports_its_exit_code_and_cleans_up() {
    if !tools_present() {
        return;
    }
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("badbuild");
    let from = unique_base(&engine, &id);
    let ctx = scratch();
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {from}\nRUN echo about-to-fail && exit 6\n")).unwrap();
    let mut j = job(&id, plan(vec![build("b", BuildStep { context: ".".into(), ..BuildStep::default() })]));
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    let (outcome, lines) = execute(&engine, j).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", dump(&lines));
    assert_eq!(outcome.steps[0].exit_code, Some(6));
    assert!(has(&lines, "about-to-fail") && has(&lines, "exit status 6"), "{}", dump(&lines));
    assert_eq!(build_containers(&engine, &from), 0);
}

#[tokio::test]
async fn secrets_are_masked_in_every_line_and_in_the_error() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let secret = "hunter2-s3cr3t";
    let id = run_id("mask");
    let mut p =
        plan(vec![sh("leak", &s.base, "echo the secret is $SECRET; echo $SECRET >&2; echo x${SECRET}y; exit 4")]);
    p.env = vec![("SECRET".into(), secret.into())];
    p.secrets = vec![secret.into()];
    let (outcome, lines) = execute(&engine, job(&id, p)).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert!(lines.iter().all(|l| !l.contains(secret)), "{}", dump(&lines));
    assert!(lines.iter().any(|l| l == "the secret is ***") && lines.iter().any(|l| l == "x***y"), "{}", dump(&lines));

    // A secret in an error the engine writes itself.
    let id = run_id("mask2");
    let mut p = plan(vec![build("b", BuildStep { context: format!("../{secret}"), ..BuildStep::default() })]);
    p.secrets = vec![secret.into()];
    let (outcome, lines) = execute(&engine, job(&id, p)).await;
    assert_eq!(outcome.status, RunStatus::Error, "{}", dump(&lines));
    let error = outcome.error.unwrap();
    assert!(error.contains("../***") && !error.contains(secret), "{error}");
    assert!(lines.iter().all(|l| !l.contains(secret)), "{}", dump(&lines));
}

/// A registry with `auth.htpasswd`: the run's auth.json carries the credentials to push and
/// to pull a base image (`pull: true`); without them the push fails.
#[tokio::test]
async fn an_htpasswd_registry_through_the_auth_file() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let secure = Registry::start(Some(("alice", "s3cret")));
    let (engine, _w) = engine(Network::None, std::slice::from_ref(&secure.host));
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:s3cret");
    let auth = serde_json::json!({"auths": {secure.host.clone(): {"auth": basic}}});
    let ctx = scratch();
    let id = run_id("auth");
    let image = format!("{}/app/private:{id}", secure.host);
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {}\nRUN echo {id} > /id\n", s.base)).unwrap();
    std::fs::write(ctx.path().join("Dockerfile.child"), format!("FROM {image}\nRUN cat /id\n")).unwrap();
    let mut p = plan(vec![
        build("b", BuildStep { tags: vec![image.clone()], context: ".".into(), ..BuildStep::default() }),
        step("p", StepAction::Push(vec![image.clone()])),
        build(
            "child",
            BuildStep {
                dockerfile: Some("Dockerfile.child".into()),
                context: ".".into(),
                pull: true,
                no_cache: true,
                ..BuildStep::default()
            },
        ),
    ]);
    p.steps[1].depends_on = vec![0];
    p.steps[2].depends_on = vec![1];
    p.secrets = vec!["s3cret".into(), basic.clone()];
    let mut j = job(&id, p.clone());
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    j.auth = auth;
    let (outcome, lines) = execute(&engine, j).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}\n{}", outcome.error, dump(&lines));
    assert_eq!(registry_digest(&secure.host, "app/private", &id, Some(&basic)), outcome.images[0].digest);

    // Without credentials the push is refused.
    let id2 = run_id("noauth");
    let mut p2 = p;
    p2.steps.truncate(2);
    let mut j = job(&id2, p2);
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    let (outcome, lines) = execute(&engine, j).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", dump(&lines));
    assert_eq!(outcome.steps[1].status, RunStatus::Failed);
    assert!(has(&lines, "authentication required"), "{}", dump(&lines));
}

/// With `pull_always` (the default), a run pulls every image it did not build with its own
/// credentials: an image another run pulled into the shared store is refused to a run without
/// access, which the store alone would have let through.
#[tokio::test]
async fn a_run_never_uses_an_image_only_another_run_could_pull() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let secure = Registry::start(Some(("carol", "pw-for-carol")));
    let work = scratch();
    let mut insecure = vec![s.registry.host.clone(), secure.host.clone()];
    insecure.dedup();
    let strict =
        Engine::new(EngineConfig { pull_always: true, ..config(work.path(), Network::None, &insecure) }).unwrap();
    let lax_work = scratch();
    let lax = Engine::new(config(lax_work.path(), Network::None, &insecure)).unwrap();
    let basic = base64::engine::general_purpose::STANDARD.encode("carol:pw-for-carol");
    let id = run_id("private");
    let image = format!("{}/app/only-carol:{id}", secure.host);
    let ctx = scratch();
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {}\nRUN echo carols-{id} > /id\n", s.base)).unwrap();
    let mut p = plan(vec![
        build("b", BuildStep { tags: vec![image.clone()], context: ".".into(), ..BuildStep::default() }),
        step("p", StepAction::Push(vec![image.clone()])),
    ]);
    p.steps[1].depends_on = vec![0];
    let mut j = job(&id, p);
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    j.auth = serde_json::json!({"auths": {secure.host.clone(): {"auth": basic}}});
    let (outcome, lines) = execute(&strict, j).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}\n{}", outcome.error, dump(&lines));

    // The image is in the store now. A run without carol's credentials may not use it…
    let use_it = || plan(vec![sh("use", &image, "cat /id")]);
    let (outcome, lines) = execute(&strict, job(&run_id("thief"), use_it())).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", dump(&lines));
    assert!(!has(&lines, &format!("carols-{id}")), "{}", dump(&lines));
    // …which only pulling again shows: the store alone would have served it.
    let (outcome, lines) = execute(&lax, job(&run_id("lax"), use_it())).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", dump(&lines));
    assert!(has(&lines, &format!("carols-{id}")), "{}", dump(&lines));
}

/// A detached step runs in the background and is removed at the end; a `keep` step's
/// container stays.
#[tokio::test]
async fn detached_steps_are_removed_and_kept_ones_stay() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("detach");
    let mut p = plan(vec![
        sh("bg", &s.base, "echo background-up; exec sleep 618"),
        sh("fg", &s.base, "echo foreground"),
        sh("kept", &s.base, "echo kept"),
    ]);
    p.steps[0].detach = true;
    p.steps[1].depends_on = vec![0];
    p.steps[2].keep = true;
    p.steps[2].depends_on = vec![1];
    let (outcome, lines) = execute(&engine, job(&id, p)).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", dump(&lines));
    assert!(has(&lines, "foreground"));
    assert_eq!(containers(&engine, &format!("wharf-{id}-")), [format!("wharf-{id}-kept")]);
    assert!(!process_running(&["sleep", "618"]));
    let rm = std::process::Command::new("podman")
        .args(engine.storage_flags())
        .args(["rm", "-f", &format!("wharf-{id}-kept")])
        .envs(engine.tool_env().iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    assert!(rm.status.success());
}

/// The environment reaches the container verbatim (spaces, quotes, `#`, `=`, line breaks),
/// the entry point is replaced, and `disableWorkingDirectoryOverride` keeps the image's own
/// working directory.
#[tokio::test]
async fn environment_entry_point_and_working_directory() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("env");
    let tricky = "  a b \"c\" 'd' #e =f  ";
    let mut p = plan(vec![
        step(
            "e",
            StepAction::Cmd(CmdStep {
                image: s.base.clone(),
                args: vec!["-c".into(), "echo \"[$TRICKY]\"; echo \"[$MULTI]\"; pwd".into()],
            }),
        ),
        sh("wd", &s.base, "pwd"),
    ]);
    p.steps[0].entry_point = Some("/bin/sh".into());
    p.steps[0].env = vec![("TRICKY".into(), tricky.into()), ("MULTI".into(), "line1\nline2".into())];
    p.steps[1].disable_working_directory_override = true;
    p.steps[1].depends_on = vec![0];
    let (outcome, lines) = execute(&engine, job(&id, p)).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", dump(&lines));
    let out: Vec<&str> =
        lines.iter().filter(|l| !l.starts_with("20") && !l.starts_with("Run ID")).map(String::as_str).collect();
    assert_eq!(out, [format!("[{tricky}]").as_str(), "[line1", "line2]", "/workspace", "/"], "{}", dump(&lines));
}

/// `max_parallel_steps = 1`: independent steps run one after the other; `startDelay` waits.
#[tokio::test]
async fn the_parallel_limit_and_start_delay() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let work = scratch();
    let cfg = EngineConfig {
        max_parallel_steps: 1,
        ..config(work.path(), Network::None, std::slice::from_ref(&s.registry.host))
    };
    let engine = Engine::new(cfg).unwrap();
    let id = run_id("serial");
    let stamp = |me: &str| {
        format!(
            "cut -d' ' -f1 /proc/uptime > /workspace/{me}.start; sleep 0.3; cut -d' ' -f1 /proc/uptime > /workspace/{me}.end"
        )
    };
    let mut p = plan(vec![
        sh("a", &s.base, &stamp("a")),
        sh("b", &s.base, &stamp("b")),
        sh("times", &s.base, "for f in a.start a.end b.start b.end; do echo \"$f=$(cat /workspace/$f)\"; done"),
    ]);
    p.steps[1].start_delay = Duration::from_millis(500);
    p.steps[2].depends_on = vec![0, 1];
    let (outcome, lines) = execute(&engine, job(&id, p)).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", dump(&lines));
    let time = |name: &str| -> f64 {
        let prefix = format!("{name}=");
        lines.iter().find_map(|l| l.strip_prefix(&prefix)).unwrap().parse().unwrap()
    };
    assert!(time("a.end") <= time("b.start"), "{}", dump(&lines));
    assert!(outcome.steps[1].duration >= Duration::from_millis(500));
}

/// A run ID whose directory exists is refused, and that directory is left alone.
#[tokio::test]
async fn a_run_id_in_use_is_refused() {
    if !tools_present() {
        return;
    }
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("dup");
    let dir = engine.config().work_root.join("runs").join(&id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("marker"), "x").unwrap();
    let (outcome, lines) = execute(&engine, job(&id, plan(vec![]))).await;
    assert_eq!(outcome.status, RunStatus::Error, "{}", dump(&lines));
    assert!(dir.join("marker").exists());
    let (outcome, _) = execute(&engine, job("../escape", plan(vec![]))).await;
    assert_eq!(outcome.status, RunStatus::Error);
    assert!(outcome.error.unwrap().contains("invalid run ID"));
}

/// A TLS registry whose CA only `cert_dir` holds: push, a cmd step that must pull (through
/// `podman pull --cert-dir`), and a build pulling its base from it. Without `cert_dir`, the
/// push fails on the certificate.
#[tokio::test]
async fn a_tls_registry_through_the_cert_dir() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let certs = scratch();
    let tls = Registry::start_tls(certs.path());
    let work = scratch();
    let cfg = EngineConfig {
        cert_dir: Some(certs.path().to_path_buf()),
        ..config(work.path(), Network::None, std::slice::from_ref(&s.registry.host))
    };
    let engine = Engine::new(cfg).unwrap();
    let id = run_id("tls");
    let image = format!("{}/app/tls:{id}", tls.host);
    let ctx = scratch();
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {}\nRUN echo tls-{id} > /id\n", s.base)).unwrap();
    std::fs::write(ctx.path().join("Dockerfile.child"), format!("FROM {image}\nRUN cat /id\n")).unwrap();
    let mut p = plan(vec![
        build("b", BuildStep { tags: vec![image.clone()], context: ".".into(), ..BuildStep::default() }),
        step("p", StepAction::Push(vec![image.clone()])),
    ]);
    p.steps[1].depends_on = vec![0];
    let mut j = job(&id, p.clone());
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    let (outcome, lines) = execute(&engine, j).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}\n{}", outcome.error, dump(&lines));
    assert!(outcome.images[0].digest.starts_with("sha256:"));

    // Gone from the store: the cmd step has to pull it.
    let rmi = tool(&engine, "buildah", &["rmi", &image]);
    assert!(rmi.status.success(), "{}", String::from_utf8_lossy(&rmi.stderr));
    let id2 = run_id("tlspull");
    let mut p2 = plan(vec![
        sh("r", &image, "cat /id"),
        build(
            "child",
            BuildStep {
                dockerfile: Some("Dockerfile.child".into()),
                context: ".".into(),
                pull: true,
                no_cache: true,
                ..BuildStep::default()
            },
        ),
    ]);
    p2.steps[1].depends_on = vec![0];
    let mut j = job(&id2, p2);
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    let (outcome, lines) = execute(&engine, j).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{:?}\n{}", outcome.error, dump(&lines));
    assert!(lines.iter().filter(|l| **l == format!("tls-{id}")).count() >= 2, "{}", dump(&lines));

    // The same push without the CA.
    let work = scratch();
    let plain = Engine::new(config(work.path(), Network::None, std::slice::from_ref(&s.registry.host))).unwrap();
    let mut j = job(&run_id("nocert"), p);
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    let (outcome, lines) = execute(&plain, j).await;
    assert_eq!(outcome.status, RunStatus::Failed, "{}", dump(&lines));
    assert!(has(&lines, "certificate"), "{}", dump(&lines));
}

/// A build step's timeout ends its RUN too.
#[tokio::test]
async fn a_build_step_timeout_kills_its_run_container() {
    if !tools_present() {
        return;
    }
    let (engine, _w) = engine(Network::None, &[]);
    let id = run_id("buildtmo");
    let from = unique_base(&engine, &id);
    let ctx = scratch();
    std::fs::write(ctx.path().join("Dockerfile"), format!("FROM {from}\nRUN sleep 623\n")).unwrap();
    let mut p = plan(vec![build("b", BuildStep { context: ".".into(), no_cache: true, ..BuildStep::default() })]);
    p.steps[0].timeout = Duration::from_secs(3);
    let mut j = job(&id, p);
    j.context = wharf_agent::Context::Dir(ctx.path().to_path_buf());
    let (outcome, lines) = execute(&engine, j).await;
    assert_eq!(outcome.status, RunStatus::Timeout, "{}", dump(&lines));
    assert_eq!(outcome.steps[0].status, RunStatus::Timeout);
    assert_eq!(build_containers(&engine, &from), 0, "{}", dump(&lines));
    assert!(!process_running(&["sleep", "623"]));
}

/// Canceled before it starts: no step runs; an empty plan succeeds; a dependency cycle is an
/// error, not a hang.
#[tokio::test]
async fn edge_cases_of_the_plan() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let cancel = CancellationToken::new();
    cancel.cancel();
    let (outcome, lines) =
        execute_with(&engine, job(&run_id("pre"), plan(vec![sh("s", &s.base, "echo ran")])), cancel).await;
    assert_eq!(outcome.status, RunStatus::Canceled, "{}", dump(&lines));
    assert!(outcome.steps.is_empty() && !has(&lines, "ran"));

    let (outcome, _) = execute(&engine, job(&run_id("empty"), plan(vec![]))).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);

    let mut p = plan(vec![sh("a", &s.base, "true"), sh("b", &s.base, "true")]);
    p.steps[0].depends_on = vec![1];
    p.steps[1].depends_on = vec![0];
    let (outcome, _) = execute(&engine, job(&run_id("cycle"), p)).await;
    assert_eq!(outcome.status, RunStatus::Error);
    assert!(outcome.error.unwrap().contains("cycle"));

    let mut j = job(&run_id("huge"), plan(vec![sh("a", &s.base, "true")]));
    j.timeout = Duration::MAX;
    j.plan.steps[0].timeout = Duration::MAX;
    let (outcome, lines) = execute(&engine, j).await;
    assert_eq!(outcome.status, RunStatus::Succeeded, "{}", dump(&lines));
}

/// Output without line breaks is sent in pieces, not held until the step ends.
#[tokio::test]
async fn a_very_long_line_is_split() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let (engine, _w) = engine(Network::None, &[]);
    let p = plan(vec![sh("long", &s.base, "head -c 200000 /dev/zero | tr '\\0' x; echo; echo after")]);
    let (outcome, lines) = execute(&engine, job(&run_id("long"), p)).await;
    assert_eq!(outcome.status, RunStatus::Succeeded);
    let xs: Vec<usize> = lines.iter().filter(|l| l.starts_with('x')).map(String::len).collect();
    assert_eq!(xs.iter().sum::<usize>(), 200000);
    assert!(xs.iter().all(|&n| n <= 64 * 1024), "{xs:?}");
    assert!(lines.iter().any(|l| l == "after"));
}

/// `Network::None`: the container has loopback only; `Network::Host`: the host's interfaces.
#[tokio::test]
async fn the_network_of_cmd_steps() {
    if !tools_present() {
        return;
    }
    let s = shared();
    let host_ifaces: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    for (network, expect_host) in [(Network::None, false), (Network::Host, true)] {
        let (engine, _w) = engine(network.clone(), &[]);
        let p = plan(vec![sh("net", &s.base, "echo ifaces: $(ls /sys/class/net)")]);
        let (outcome, lines) = execute(&engine, job(&run_id("net"), p)).await;
        assert_eq!(outcome.status, RunStatus::Succeeded, "{}", dump(&lines));
        let seen: Vec<&str> =
            lines.iter().find_map(|l| l.strip_prefix("ifaces: ")).expect("the interfaces").split(' ').collect();
        if expect_host {
            assert!(host_ifaces.iter().all(|i| seen.contains(&i.as_str())), "{network:?}: {seen:?} vs {host_ifaces:?}");
        } else {
            assert_eq!(seen, ["lo"], "{network:?}");
        }
        assert!(has(&lines, &format!("Network: '{}'", network.as_arg())));
    }
}
