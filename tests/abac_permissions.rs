//! ACR's role-assignment permissions modes end to end: the seed's portal conditions (one
//! repository, a prefix, two prefixes), the trailing-slash pitfall, legacy roles not honoured in
//! ABAC mode, Owner without data access in ABAC mode, Catalog Lister, and tokens bound to the
//! mode they were issued under — through the CLI, the token endpoint and a real client.

mod common;

use common::{Cli, TestServer, assign, list_tags, require_tool, run, service_principal};
use reqwest::StatusCode;

const READ_GUARDS: &str = "!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})\n  AND\n  !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})";
const NAME: &str = "@Request[Microsoft.ContainerRegistry/registries/repositories:name]";

/// The portal's condition text around one expression.
fn portal_condition(expression: &str) -> String {
    format!("(\n (\n  {READ_GUARDS}\n )\n OR \n (\n  {expression}\n )\n)")
}

async fn catalog(s: &TestServer, user: &str, pass: &str) -> StatusCode {
    s.client()
        .get(format!("{}/acr/v1/_catalog", s.base()))
        .header("host", s.login_server("absreg"))
        .basic_auth(user, Some(pass))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn permission_modes_and_repository_conditions() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("absreg").await;
    for repo in
        ["hello-world", "backend/nginx", "backend-infra/k8s", "backendsvc/containers", "frontend/js/react", "other/app"]
    {
        reg.push_image(repo, "v1", repo).await;
    }
    let rid = cli.run(&["acr", "show", "-n", "absreg", "--query", "id", "-o", "tsv"]).ok().stdout.trim().to_string();
    let (admin_user, admin_pass) = s.creds().unwrap();

    // Legacy mode: AcrPull works; a Repository role has no effect.
    let (puller, puller_secret, puller_oid) = service_principal(&cli, "puller", &[]);
    let (reader, reader_secret, reader_oid) = service_principal(&cli, "reader", &[]);
    assign(&cli, &puller_oid, "AcrPull", &rid, None).ok();
    assign(&cli, &reader_oid, "Container Registry Repository Reader", &rid, None).ok();
    assert_eq!(list_tags(&s, &puller, &puller_secret, "absreg", "other/app").await, StatusCode::OK);
    assert_eq!(list_tags(&s, &reader, &reader_secret, "absreg", "other/app").await, StatusCode::UNAUTHORIZED);
    assert_eq!(
        list_tags(&s, &admin_user, &admin_pass, "absreg", "other/app").await,
        StatusCode::OK,
        "Owner has data access in legacy mode"
    );

    // A token issued in legacy mode, before the switch.
    let (_, old_token) =
        s.registry_token(&puller, &puller_secret, &s.host(), &["repository:absreg/other/app:pull"]).await;
    let old_token = old_token["access_token"].as_str().unwrap().to_string();
    let with_old =
        || s.client().get(format!("{}/v2/absreg/other/app/tags/list", s.base())).bearer_auth(&old_token).send();
    assert_eq!(with_old().await.unwrap().status(), StatusCode::OK);

    // Switch to ABAC: --what-if shows who loses access, and changes nothing.
    let what_if =
        cli.run(&["acr", "update", "-n", "absreg", "--role-assignment-mode", "rbac-abac", "--what-if"]).ok().json();
    let losers: Vec<&str> =
        what_if["value"].as_array().unwrap().iter().filter_map(|i| i["principalId"].as_str()).collect();
    assert!(losers.contains(&puller_oid.as_str()), "{what_if}");
    assert_eq!(
        cli.run(&["acr", "show", "-n", "absreg", "--query", "roleAssignmentMode", "-o", "tsv"]).ok().stdout.trim(),
        "LegacyRegistryPermissions"
    );
    let switched = cli.run(&["acr", "update", "-n", "absreg", "--role-assignment-mode", "rbac-abac"]).ok();
    assert_eq!(switched.json()["roleAssignmentMode"], "AbacRepositoryPermissions");
    assert!(switched.stderr.contains("loses"), "impact printed to stderr: {}", switched.stderr);

    // Tokens of the old mode are refused; legacy roles and Owner lose data access.
    assert_eq!(with_old().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(list_tags(&s, &puller, &puller_secret, "absreg", "other/app").await, StatusCode::UNAUTHORIZED);
    assert_eq!(list_tags(&s, &admin_user, &admin_pass, "absreg", "other/app").await, StatusCode::UNAUTHORIZED);
    // An ABAC role without a condition applies to every repository; no catalog without the lister.
    assert_eq!(list_tags(&s, &reader, &reader_secret, "absreg", "other/app").await, StatusCode::OK);
    assert_eq!(catalog(&s, &reader, &reader_secret).await, StatusCode::UNAUTHORIZED);
    assert_eq!(catalog(&s, &reader, &reader_secret).await, StatusCode::UNAUTHORIZED);
    // Catalog Lister takes no condition; unconditioned, it lists.
    let refused = assign(
        &cli,
        &reader_oid,
        "Container Registry Repository Catalog Lister",
        &rid,
        Some(&portal_condition(&format!("{NAME} StringEqualsIgnoreCase 'x'"))),
    );
    assert_ne!(refused.code, 0, "Catalog Lister with a condition must be refused");
    assign(&cli, &reader_oid, "Container Registry Repository Catalog Lister", &rid, None).ok();
    assert_eq!(catalog(&s, &reader, &reader_secret).await, StatusCode::OK);
    // The same tuple cannot exist with and without a condition.
    let conflict = assign(
        &cli,
        &reader_oid,
        "Container Registry Repository Reader",
        &rid,
        Some(&portal_condition(&format!("{NAME} StringEqualsIgnoreCase 'hello-world'"))),
    );
    assert_ne!(conflict.code, 0, "{conflict:?}");

    // (a) One repository.
    let (one, one_secret, one_oid) = service_principal(&cli, "one-repo", &[]);
    assign(
        &cli,
        &one_oid,
        "Container Registry Repository Reader",
        &rid,
        Some(&portal_condition(&format!("{NAME} StringEqualsIgnoreCase 'hello-world'"))),
    )
    .ok();
    assert_eq!(list_tags(&s, &one, &one_secret, "absreg", "hello-world").await, StatusCode::OK);
    assert_eq!(list_tags(&s, &one, &one_secret, "absreg", "other/app").await, StatusCode::UNAUTHORIZED);

    // (b) A prefix with the trailing slash.
    let (pre, pre_secret, pre_oid) = service_principal(&cli, "prefix", &[]);
    let ok = assign(
        &cli,
        &pre_oid,
        "Container Registry Repository Reader",
        &rid,
        Some(&portal_condition(&format!("{NAME} StringStartsWithIgnoreCase 'backend/'"))),
    )
    .ok();
    assert!(!ok.stderr.contains("WARNING"), "{}", ok.stderr);
    assert_eq!(list_tags(&s, &pre, &pre_secret, "absreg", "backend/nginx").await, StatusCode::OK);
    assert_eq!(list_tags(&s, &pre, &pre_secret, "absreg", "backend-infra/k8s").await, StatusCode::UNAUTHORIZED);

    // The pitfall: without the slash the prefix also matches backend-infra and backendsvc, and
    // the assignment warns, naming them.
    let (pit, pit_secret, pit_oid) = service_principal(&cli, "pitfall", &[]);
    let warned = assign(
        &cli,
        &pit_oid,
        "Container Registry Repository Reader",
        &rid,
        Some(&portal_condition(&format!("{NAME} StringStartsWithIgnoreCase 'backend'"))),
    )
    .ok();
    assert!(
        warned.stderr.contains("WARNING")
            && warned.stderr.contains("backend-infra/k8s")
            && warned.stderr.contains("backendsvc/containers"),
        "{}",
        warned.stderr
    );
    assert_eq!(list_tags(&s, &pit, &pit_secret, "absreg", "backend-infra/k8s").await, StatusCode::OK);
    assert_eq!(list_tags(&s, &pit, &pit_secret, "absreg", "backendsvc/containers").await, StatusCode::OK);
    assert_eq!(list_tags(&s, &pit, &pit_secret, "absreg", "other/app").await, StatusCode::UNAUTHORIZED);

    // (c) Two prefixes joined with OR; the verbatim one-line form az stores.
    let (two, two_secret, two_oid) = service_principal(&cli, "two-prefixes", &[]);
    let two_cond = portal_condition(&format!(
        "{NAME} StringStartsWithIgnoreCase 'backend/'\n  OR\n  {NAME} StringStartsWithIgnoreCase 'frontend/js/'"
    ));
    assign(&cli, &two_oid, "Container Registry Repository Reader", &rid, Some(&two_cond.replace('\n', ""))).ok();
    for (repo, want) in [
        ("backend/nginx", StatusCode::OK),
        ("frontend/js/react", StatusCode::OK),
        ("hello-world", StatusCode::UNAUTHORIZED),
    ] {
        assert_eq!(list_tags(&s, &two, &two_secret, "absreg", repo).await, want, "{repo}");
    }
    // A condition that does not parse is refused at assignment time with its position.
    let bad = assign(
        &cli,
        &two_oid,
        "Container Registry Repository Writer",
        &rid,
        Some("@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEquals 'a' AND x OR y"),
    );
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("InvalidCondition"), "{}", bad.stderr);

    // check-access explains the decision.
    let explained = cli
        .run(&[
            "acr",
            "check-access",
            "-n",
            "absreg",
            "--assignee",
            &pre,
            "--repository",
            "backend-infra/k8s",
            "--action",
            "pull",
        ])
        .ok()
        .json();
    assert_eq!(explained["allowed"], false, "{explained}");
    assert!(explained["explanation"].as_str().unwrap().contains("Container Registry Repository Reader"), "{explained}");

    // A real client: skopeo pulls what the one-repository reader may read, and not the rest.
    if require_tool("skopeo") {
        let dir = tempfile::tempdir().unwrap();
        let creds = format!("{one}:{one_secret}");
        let pull = |repo: &str| {
            let dest = format!("oci:{}/{}:v1", dir.path().display(), repo.replace('/', "-"));
            run(std::process::Command::new("skopeo").args([
                "copy",
                "--src-tls-verify=false",
                "--src-creds",
                &creds,
                &format!("docker://{}/absreg/{repo}:v1", s.host()),
                &dest,
            ]))
        };
        assert!(pull("hello-world").0, "skopeo should pull hello-world");
        let (ok, _, err) = pull("other/app");
        assert!(!ok && err.contains("authentication required"), "{err}");
    }
}
