//! The real Azure CLI (PyPI `azure-cli`, in `.venv`) against a TLS Wharf registered as a
//! custom cloud: the lines `wharf az-cloud` prints, `az login --service-principal`, and the
//! seeds' walkthroughs (trusted services, network rules, the ABAC permissions mode with the
//! portal's conditions, managed identities, registry tokens), each checked against what Wharf's
//! own CLI and the data plane then see. Nothing in az is patched; the only settings are the
//! ones a user makes: the cloud registration, `core.instance_discovery=false` and
//! `REQUESTS_CA_BUNDLE`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{
    Cli, CliRun, TestServer, build_and_push_task, jwt_claims, owner_service_principal, push_busybox,
    repository_actions, require_task_engine, require_venv_modules,
};
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// The registry domain: the default (the server runs without `--domain`).
const DOMAIN: &str = "localhost";

/// `.venv/bin/az`. In CI (`CI=true`) a missing one fails the test; elsewhere it is skipped.
fn require_az() -> Option<PathBuf> {
    let az = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/az");
    if az.is_file() {
        return Some(az);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "{} is required in CI (CI=true); run .ci/run (it installs azure-cli from tests/requirements.txt)",
            az.display()
        );
    }
    eprintln!("SKIPPED: {} is missing (.venv/bin/pip install -r tests/requirements.txt)", az.display());
    None
}

/// One az installation with its own configuration directory, trusting the server's CA.
struct Az {
    bin: PathBuf,
    config: tempfile::TempDir,
    ca: PathBuf,
}

impl Az {
    fn new(bin: PathBuf, server: &TestServer) -> Az {
        Az { bin, config: tempfile::tempdir().unwrap(), ca: server.tls_ca.clone().expect("a TLS server") }
    }

    fn run(&self, args: &[&str]) -> CliRun {
        let out = Command::new(&self.bin)
            .args(args)
            .env("AZURE_CONFIG_DIR", self.config.path())
            .env("REQUESTS_CA_BUNDLE", &self.ca)
            .env("AZURE_CORE_COLLECT_TELEMETRY", "false")
            .env("AZURE_CORE_NO_COLOR", "true")
            .env_remove("SSL_CERT_FILE")
            .stdin(Stdio::null())
            .output()
            .expect("run az");
        CliRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs and expects success; returns stdout parsed as JSON.
    #[track_caller]
    fn json(&self, args: &[&str]) -> Value {
        let r = self.run(args);
        assert_eq!(r.code, 0, "az {} failed: {r:?}", args.join(" "));
        r.json()
    }

    /// Runs with `-o tsv` and expects success; returns the trimmed text.
    #[track_caller]
    fn tsv(&self, args: &[&str]) -> String {
        let mut all = args.to_vec();
        all.extend(["-o", "tsv"]);
        let r = self.run(&all);
        assert_eq!(r.code, 0, "az {} failed: {r:?}", args.join(" "));
        r.stdout.trim().to_string()
    }
}

/// An HTTPS client that trusts the server's CA and connects from `ip`.
fn tls_client_from(s: &TestServer, ip: &str) -> reqwest::Client {
    let pem = std::fs::read(s.tls_ca.as_ref().unwrap()).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .local_address(ip.parse::<std::net::IpAddr>().unwrap())
        .resolve(&format!("myregistry.{DOMAIN}"), format!("127.0.0.1:{}", s.port).parse().unwrap())
        .build()
        .unwrap()
}

/// Registry access token for `scope` with Basic credentials (a service principal's appId and
/// secret, or the refresh-token user), as docker's token flow asks for it. `None` when the
/// token endpoint refuses (the status is in the panic message of callers that care).
async fn access_token(
    s: &TestServer,
    ip: &str,
    user: &str,
    password: &str,
    scope: &str,
) -> Result<Value, (StatusCode, String)> {
    let login_server = s.login_server("myregistry");
    let r = tls_client_from(s, ip)
        .get(format!("https://{login_server}/oauth2/token"))
        .query(&[("service", login_server.as_str()), ("scope", scope)])
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    if status != StatusCode::OK {
        return Err((status, text));
    }
    let v: Value = serde_json::from_str(&text).unwrap();
    Ok(jwt_claims(v["access_token"].as_str().unwrap()))
}

/// The portal's condition for one repository (seed example a).
fn one_repository(repo: &str) -> String {
    format!(
        "((!(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/content/read'}}) AND !(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'}})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringEqualsIgnoreCase '{repo}'))"
    )
}

/// The portal's condition for two prefixes joined with Or (seed example c).
fn two_prefixes(a: &str, b: &str) -> String {
    format!(
        "(\n (\n  !(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/content/read'}})\n  AND\n  !(ActionMatches{{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'}})\n )\n OR\n (\n  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase '{a}'\n  OR\n  @Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase '{b}'\n )\n)"
    )
}

/// az signed in as a service principal that owns the subscription (made with `wharf ad sp
/// create-for-rbac`), against the server registered as a custom cloud with exactly the lines
/// `wharf az-cloud` prints. Returns az and the service principal's app id.
fn az_as_subscription_owner(bin: PathBuf, s: &TestServer, cli: &Cli) -> (Az, String) {
    let sub = s.subscription.clone();
    let tenant = s.admin().unwrap().tenant.clone();
    let (app_id, secret, _) = owner_service_principal(s, cli, "az-ci");

    let az = Az::new(bin, s);
    let printed = cli.run(&["az-cloud", "--server", &s.base(), "--ca-bundle", az.ca.to_str().unwrap()]).ok().stdout;
    assert!(printed.contains(&format!("export REQUESTS_CA_BUNDLE={}", az.ca.display())), "{printed}");
    let mut ran = 0;
    for line in printed.lines().map(str::trim).filter(|l| l.starts_with("az ") && !l.contains('<')) {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let r = az.run(&args);
        assert_eq!(r.code, 0, "`{line}` failed: {r:?}");
        ran += 1;
    }
    assert!(ran >= 3, "az-cloud printed too few az commands: {printed}");
    let login = az.json(&["login", "--service-principal", "-u", &app_id, "-p", &secret, "--tenant", &tenant]);
    assert_eq!(login[0]["id"], sub.as_str(), "{login}");
    assert_eq!(login[0]["tenantId"], tenant.as_str());
    assert_eq!(login[0]["cloudName"], "wharf");
    assert_eq!(login[0]["user"]["type"], "servicePrincipal");
    (az, app_id)
}

#[tokio::test(flavor = "multi_thread")]
async fn az_runs_the_seed_walkthroughs_unmodified() {
    let Some(bin) = require_az() else { return };
    let s = TestServer::builder().tls().start().await;
    let cli = Cli::login(&s);
    let sub = s.subscription.clone();
    let (az, app_id) = az_as_subscription_owner(bin, &s, &cli);
    assert_eq!(az.tsv(&["account", "show", "--query", "id"]), sub);

    // ---- resource group and a Premium registry ----
    az.json(&["group", "create", "-n", "rg1", "-l", "westus"]);
    assert_eq!(az.tsv(&["group", "show", "-n", "rg1", "--query", "properties.provisioningState"]), "Succeeded");
    let created = az.json(&["acr", "create", "-n", "myregistry", "-g", "rg1", "--sku", "Premium"]);
    assert_eq!(created["loginServer"], s.login_server("myregistry").as_str(), "{created}");
    assert_eq!(created["sku"]["name"], "Premium");
    let rid = created["id"].as_str().unwrap().to_string();
    assert_eq!(
        rid,
        format!("/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.ContainerRegistry/registries/myregistry")
    );
    // Wharf's CLI sees the registry az made.
    assert_eq!(cli.run(&["acr", "show", "-n", "myregistry", "--query", "id", "-o", "tsv"]).ok().stdout.trim(), rid);
    // Registry names are unique in the deployment, across resource groups.
    az.json(&["group", "create", "-n", "rg2", "-l", "westus"]);
    let duplicate = az.run(&["acr", "create", "-n", "myregistry", "-g", "rg2", "--sku", "Basic"]);
    assert_ne!(duplicate.code, 0, "a second registry with the same name must fail: {duplicate:?}");
    let taken = az.json(&["acr", "check-name", "-n", "MyRegistry"]);
    assert_eq!(
        (&taken["nameAvailable"], &taken["reason"]),
        (&serde_json::json!(false), &serde_json::json!("AlreadyExists")),
        "{taken}"
    );
    assert_eq!(az.json(&["acr", "check-name", "-n", "freshname"])["nameAvailable"], true);
    assert_eq!(az.json(&["acr", "check-name", "-n", "no-dashes"])["reason"], "Invalid");
    // Collections of features not built yet list as empty (creating in them fails, below).
    for group in ["task", "replication", "webhook", "scope-map", "token"] {
        assert_eq!(az.json(&["acr", group, "list", "-r", "myregistry"]), serde_json::json!([]), "az acr {group} list");
    }

    // ---- seed 000: trusted services ----
    assert_eq!(
        az.tsv(&["acr", "show", "--name", "myregistry", "--query", "networkRuleBypassOptions"]),
        "AzureServices"
    );
    az.json(&["acr", "update", "--name", "myregistry", "--allow-trusted-services", "false"]);
    assert_eq!(
        cli.run(&["acr", "show", "-n", "myregistry", "--query", "networkRuleBypassOptions", "-o", "tsv"])
            .ok()
            .stdout
            .trim(),
        "None"
    );
    az.json(&["acr", "update", "--name", "myregistry", "--allow-trusted-services", "true"]);
    assert_eq!(
        cli.run(&["acr", "show", "-n", "myregistry", "--query", "networkRuleBypassOptions", "-o", "tsv"])
            .ok()
            .stdout
            .trim(),
        "AzureServices"
    );

    // Content to pull, and a container group whose system-assigned identity holds AcrPull
    // (assigned with az, in the object-id form that needs no Graph lookup).
    let reg = common::Registry { server: &s, name: "myregistry".into(), rg: "rg1".into() };
    reg.push_image("app", "v1", "az-walkthrough").await;
    let cg = cli
        .run(&[
            "resource",
            "create",
            "-g",
            "rg1",
            "-n",
            "cg1",
            "--resource-type",
            "Microsoft.ContainerInstance/containerGroups",
            "--assign-identity",
            "[system]",
        ])
        .ok()
        .json();
    let cg_oid = cg["identity"]["principalId"].as_str().unwrap().to_string();
    let cg_id = cg["id"].as_str().unwrap().to_string();
    let service = s.login_server("myregistry");
    let assigned = az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        &cg_oid,
        "--assignee-principal-type",
        "ServicePrincipal",
        "--role",
        "AcrPull",
        "--scope",
        &rid,
    ]);
    assert_eq!(assigned["principalId"], cg_oid.as_str());
    assert!(
        assigned["roleDefinitionId"].as_str().unwrap().ends_with("/7f951dda-4ed3-4680-a7ca-43fe172d538d"),
        "{assigned}"
    );

    // Public access off: az also sets the default action to Deny. The container group still
    // pulls through the trusted-services bypass, until trusted services are switched off.
    let closed = az.json(&["acr", "update", "--name", "myregistry", "--public-network-enabled", "false"]);
    assert_eq!(closed["publicNetworkAccess"], "Disabled");
    let (user, pass) = s.creds().unwrap();
    let catalog = tls_client_from(&s, "127.0.0.3")
        .get(format!("https://{}/v2/_catalog", s.login_server("myregistry")))
        .basic_auth(&user, Some(&pass))
        .send()
        .await
        .unwrap();
    assert_eq!(catalog.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        s.workload_pull(&cli, &cg_id, "127.0.0.3", &service, "app").await,
        (StatusCode::OK, Some(StatusCode::OK)),
        "trusted container group should bypass"
    );
    az.json(&["acr", "update", "--name", "myregistry", "--allow-trusted-services", "false"]);
    assert_eq!(
        s.workload_pull(&cli, &cg_id, "127.0.0.3", &service, "app").await.0,
        StatusCode::FORBIDDEN,
        "trusted services are off"
    );
    az.json(&["acr", "update", "--name", "myregistry", "--allow-trusted-services", "true"]);
    assert_eq!(
        s.workload_pull(&cli, &cg_id, "127.0.0.3", &service, "app").await,
        (StatusCode::OK, Some(StatusCode::OK))
    );

    // ---- IP rules ----
    az.json(&["acr", "update", "--name", "myregistry", "--public-network-enabled", "true", "--default-action", "Deny"]);
    let added = az.json(&["acr", "network-rule", "add", "-n", "myregistry", "--ip-address", "127.0.0.2"]);
    assert_eq!(added["networkRuleSet"]["ipRules"][0]["ipAddressOrRange"], "127.0.0.2", "{added}");
    let added = az.json(&["acr", "network-rule", "add", "-n", "myregistry", "--ip-address", "127.0.8.0/24"]);
    assert_eq!(
        added["networkRuleSet"]["ipRules"].as_array().unwrap().len(),
        2,
        "az sends the whole list; the server must keep both: {added}"
    );
    let listed = az.json(&["acr", "network-rule", "list", "-n", "myregistry"]);
    assert_eq!(listed["ipRules"].as_array().unwrap().len(), 2, "{listed}");
    let mine = cli.run(&["acr", "network-rule", "list", "-n", "myregistry"]).ok().json();
    assert_eq!(mine["ipRules"][1]["value"], "127.0.8.0/24", "{mine}");
    let v2_from = |ip: &'static str| {
        let c = tls_client_from(&s, ip);
        let url = format!("https://{}/v2/_catalog", s.login_server("myregistry"));
        let (u, p) = (user.clone(), pass.clone());
        async move { c.get(url).basic_auth(u, Some(p)).send().await.unwrap() }
    };
    assert_eq!(v2_from("127.0.0.2").await.status(), StatusCode::OK);
    assert_eq!(v2_from("127.0.8.77").await.status(), StatusCode::OK);
    let denied = v2_from("127.0.0.3").await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    assert!(denied.text().await.unwrap().contains("127.0.0.3"));
    az.json(&["acr", "network-rule", "remove", "-n", "myregistry", "--ip-address", "127.0.0.2"]);
    assert_eq!(v2_from("127.0.0.2").await.status(), StatusCode::FORBIDDEN);
    az.json(&["acr", "update", "--name", "myregistry", "--default-action", "Allow"]);

    // ---- registry tokens and repositories through az (legacy mode: Owner has data access) ----
    let exposed = az.json(&["acr", "login", "-n", "myregistry", "--expose-token"]);
    assert_eq!(exposed["loginServer"], s.login_server("myregistry").as_str());
    assert_eq!(exposed["username"], "00000000-0000-0000-0000-000000000000");
    let refresh = exposed["accessToken"].as_str().unwrap();
    let claims = access_token(&s, "127.0.0.1", "00000000-0000-0000-0000-000000000000", refresh, "repository:app:pull")
        .await
        .unwrap();
    assert_eq!(repository_actions(&claims, "app"), ["pull"], "{claims}");
    assert_eq!(az.json(&["acr", "repository", "list", "-n", "myregistry"]), serde_json::json!(["app"]));
    assert_eq!(
        az.json(&["acr", "repository", "show-tags", "-n", "myregistry", "--repository", "app"]),
        serde_json::json!(["v1"])
    );
    // What the registry holds and its limits (`listUsages`).
    let usage = az.json(&["acr", "show-usage", "-n", "myregistry"]);
    let of = |name: &str| {
        usage["value"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name}: {usage}"))
    };
    assert!(of("Size")["currentValue"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(of("Size")["unit"], "Bytes");
    let ip_rules = az.json(&["acr", "network-rule", "list", "-n", "myregistry", "--query", "length(ipRules)"]);
    assert_eq!(
        (&of("IPRules")["currentValue"], &of("IPRules")["limit"]),
        (&ip_rules, &serde_json::json!(200)),
        "{usage}"
    );

    // ---- seed 004: ABAC repository permissions with the portal's conditions ----
    let mi = az.json(&["identity", "create", "-g", "rg1", "-n", "id1"]);
    let mi_oid = mi["principalId"].as_str().unwrap().to_string();
    assert_eq!(
        mi["id"],
        format!(
            "/subscriptions/{sub}/resourceGroups/rg1/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"
        )
        .as_str()
    );
    assert_eq!(
        cli.run(&["identity", "show", "-g", "rg1", "-n", "id1", "--query", "principalId", "-o", "tsv"])
            .ok()
            .stdout
            .trim(),
        mi_oid
    );
    // Subscription-wide listings: by type, and every resource (role assignments, being
    // extension resources, are not among them).
    assert_eq!(az.json(&["identity", "list", "--query", "[].name"]), serde_json::json!(["id1"]));
    let types = az.json(&["resource", "list", "--query", "[].type"]);
    let types: Vec<&str> = types.as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(
        types.contains(&"Microsoft.ContainerRegistry/registries")
            && types.contains(&"Microsoft.ManagedIdentity/userAssignedIdentities"),
        "{types:?}"
    );
    assert!(!types.iter().any(|t| t.starts_with("Microsoft.Authorization/")), "{types:?}");
    let mode = az.run(&["acr", "update", "-n", "myregistry", "--role-assignment-mode", "rbac-abac"]);
    assert_eq!(mode.code, 0, "{mode:?}");
    assert_eq!(mode.json()["roleAssignmentMode"], "AbacRepositoryPermissions");
    // Owner keeps the control plane but loses data access in ABAC mode.
    let no_list = az.run(&["acr", "repository", "list", "-n", "myregistry"]);
    assert_ne!(no_list.code, 0, "Owner must not list repositories in ABAC mode: {no_list:?}");
    // The seed's assignments: one repository for a user-assigned identity (object-id form),
    // two prefixes for a service principal found through Graph by its appId.
    let a = az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        &mi_oid,
        "--assignee-principal-type",
        "ServicePrincipal",
        "--role",
        "Container Registry Repository Reader",
        "--scope",
        &rid,
        "--condition",
        &one_repository("app"),
        "--condition-version",
        "2.0",
    ]);
    assert_eq!(a["conditionVersion"], "2.0");
    let puller = cli.run(&["ad", "sp", "create-for-rbac", "--name", "puller"]).ok().json();
    let (p_app, p_secret) = (puller["appId"].as_str().unwrap(), puller["password"].as_str().unwrap());
    let a = az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        p_app,
        "--role",
        "Container Registry Repository Writer",
        "--scope",
        &rid,
        "--condition",
        &two_prefixes("backend/", "frontend/"),
        "--condition-version",
        "2.0",
    ]);
    let p_oid = a["principalId"].as_str().unwrap().to_string();
    let listed = az.json(&["role", "assignment", "list", "--scope", &rid]);
    let names: Vec<&str> = listed.as_array().unwrap().iter().filter_map(|a| a["roleDefinitionName"].as_str()).collect();
    for role in ["AcrPull", "Container Registry Repository Reader", "Container Registry Repository Writer"] {
        assert!(names.contains(&role), "az fills roleDefinitionName from the definitions it lists: {listed}");
    }
    let mine = cli.run(&["role", "assignment", "list", "--scope", &rid, "--assignee", &p_oid]).ok().json();
    assert_eq!(mine.as_array().unwrap().len(), 1, "{mine}");
    assert!(mine[0]["condition"].as_str().unwrap().contains("StringStartsWithIgnoreCase 'frontend/'"));
    // The data plane applies the conditions: reads only under the prefixes; the Writer's
    // write actions are unconditioned (the portal's condition guards reads only).
    reg_push_as_sp(&s, p_app, p_secret, "backend/api").await;
    let claims = access_token(&s, "127.0.0.1", p_app, p_secret, "repository:backend/api:pull,push").await.unwrap();
    let mut got = repository_actions(&claims, "backend/api");
    got.sort();
    assert_eq!(got, ["pull", "push"], "{claims}");
    let claims = access_token(&s, "127.0.0.1", p_app, p_secret, "repository:app:pull").await.unwrap();
    assert!(repository_actions(&claims, "app").is_empty(), "outside the prefixes: {claims}");
    // AcrPull is not honoured in ABAC mode: the container group loses its pull.
    assert_eq!(
        s.workload_pull(&cli, &cg_id, "127.0.0.1", &service, "app").await,
        (StatusCode::OK, Some(StatusCode::UNAUTHORIZED))
    );
    // The catalog needs Catalog Lister; az then lists again.
    az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee",
        &app_id,
        "--role",
        "Container Registry Repository Catalog Lister",
        "--scope",
        &rid,
    ]);
    let repos = az.json(&["acr", "repository", "list", "-n", "myregistry"]);
    assert_eq!(repos, serde_json::json!(["app", "backend/api"]));
    // Back to legacy mode: AcrPull counts again.
    az.json(&["acr", "update", "-n", "myregistry", "--role-assignment-mode", "rbac"]);
    assert_eq!(
        s.workload_pull(&cli, &cg_id, "127.0.0.1", &service, "app").await,
        (StatusCode::OK, Some(StatusCode::OK))
    );

    // ---- ACR's repository and manifest commands (the /acr/v1 API) ----
    let repo = az.json(&["acr", "repository", "show", "-n", "myregistry", "--repository", "app"]);
    assert_eq!((&repo["imageName"], &repo["tagCount"]), (&serde_json::json!("app"), &serde_json::json!(1)), "{repo}");
    let digests =
        az.json(&["acr", "manifest", "list-metadata", "-r", "myregistry", "-n", "app", "--query", "[].digest"]);
    assert_eq!(digests.as_array().map(Vec::len), Some(1), "{digests}");
    let locked =
        az.json(&["acr", "repository", "update", "-n", "myregistry", "--image", "app:v1", "--delete-enabled", "false"]);
    assert_eq!(locked["changeableAttributes"]["deleteEnabled"], false, "{locked}");
    let refused = az.run(&["acr", "repository", "delete", "-n", "myregistry", "--image", "app:v1", "--yes"]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("deleteEnabled"), "{refused:?}");
    assert_eq!(
        cli.run(&["acr", "repository", "show-tags", "-n", "myregistry", "--repository", "app"]).ok().json(),
        serde_json::json!(["v1"])
    );
    az.json(&["acr", "repository", "update", "-n", "myregistry", "--image", "app:v1", "--delete-enabled", "true"]);
    let soft = az.run(&["acr", "manifest", "list-deleted", "-r", "myregistry", "-n", "app"]);
    assert_ne!(soft.code, 0, "{soft:?}");
    assert!(soft.stderr.contains("soft delete is not available"), "{soft:?}");
    let untag = az.run(&["acr", "repository", "untag", "-n", "myregistry", "--image", "app:v1"]);
    assert_eq!(untag.code, 0, "{untag:?}");
    assert_eq!(
        az.json(&["acr", "repository", "show-tags", "-n", "myregistry", "--repository", "app"]),
        serde_json::json!([])
    );

    // ---- what Wharf does not have yet fails clearly, not as an unknown resource ----
    // Quick builds from a local context are served now (source upload landed; see
    // az_builds_and_runs_a_local_directory): the seed's command is no longer refused as
    // unsupported (whether it builds depends on the task engine, checked there).
    let context = tempfile::tempdir().unwrap();
    std::fs::write(context.path().join("Dockerfile"), "FROM scratch\n").unwrap();
    let context = context.path().to_str().unwrap().to_string();
    let build = az.run(&["acr", "build", "-r", "myregistry", "-t", "app:v2", &context, "--source-acr-auth-id", "none"]);
    assert!(!build.stderr.contains("FeatureNotSupported"), "{build:?}");
    let import = az.run(&[
        "acr",
        "import",
        "-n",
        "myregistry",
        "--source",
        &format!("other.{DOMAIN}/app:v1"),
        "--image",
        "app:copy",
    ]);
    // Import is served (tests/import.rs, az_acr_import_between_registries); a source login
    // server of this deployment's shape naming no registry fails the operation, as az reports it.
    assert_eq!(import.code, 1, "{import:?}");
    assert!(
        import.stderr.contains("(ImportImageFailed)") && import.stderr.contains("no registry named 'other'"),
        "{}",
        import.stderr
    );

    // ---- deleting through az removes the registry for everyone ----
    let deleted = az.run(&["acr", "delete", "-n", "myregistry", "--yes"]);
    assert_eq!(deleted.code, 0, "{deleted:?}");
    let gone = cli.run(&["acr", "show", "-n", "myregistry"]);
    assert_ne!(gone.code, 0, "{gone:?}");
}

/// Pushes a small image into `repo` with a service principal's Basic credentials.
async fn reg_push_as_sp(s: &TestServer, app_id: &str, secret: &str, repo: &str) {
    let img = common::TestImage::new(repo, "amd64");
    let c = tls_client_from(s, "127.0.0.1");
    let base = format!("https://{}", s.login_server("myregistry"));
    for (_, blob) in img.blobs() {
        let d = common::sha256(&blob);
        let r = c
            .post(format!("{base}/v2/{repo}/blobs/uploads/?digest={d}"))
            .basic_auth(app_id, Some(secret))
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    }
    let r = c
        .request(Method::PUT, format!("{base}/v2/{repo}/manifests/v1"))
        .basic_auth(app_id, Some(secret))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(img.manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn sdks_create_update_and_browse_a_registry() {
    use std::io::{BufRead, BufReader, Write};
    // azure-mgmt-containerregistry is installed with azure-cli.
    let Some(py) = require_venv_modules(
        "azure.mgmt.containerregistry, azure.containerregistry, azure.identity",
        "azure-mgmt-containerregistry",
    ) else {
        return;
    };
    let s = TestServer::builder().tls().start().await;
    let cli = Cli::login(&s);
    let sub = s.subscription.clone();
    let tenant = s.admin().unwrap().tenant.clone();
    cli.run(&["group", "create", "-n", "rg-sdk", "-l", "westus"]).ok();
    let (app_id, secret, _) = owner_service_principal(&s, &cli, "sdk-app");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/management_and_content.py");
    let mut child = Command::new(&py)
        .arg(&script)
        .args([&s.base(), &tenant, &app_id, &secret, &sub, "rg-sdk", "myregistry"])
        .env("REQUESTS_CA_BUNDLE", s.tls_ca.as_ref().unwrap())
        .env_remove("SSL_CERT_FILE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the SDK script");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    if line.is_empty() {
        let out = child.wait_with_output().unwrap();
        panic!("the SDK script stopped before creating the registry: {}", String::from_utf8_lossy(&out.stderr));
    }
    let phase: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(phase["login_server"], s.login_server("myregistry").as_str());

    // Content for the data-plane SDK: one manifest with tags v1 and v2.
    let reg = common::Registry { server: &s, name: "myregistry".into(), rg: "rg-sdk".into() };
    let (manifest, digest) = reg.push_image("app", "v1", "sdk").await;
    let r = reg.put_manifest("app", "v2", "application/vnd.oci.image.manifest.v1+json", &manifest).await;
    assert_eq!(r.status, StatusCode::CREATED);
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "SDK script failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: Value = serde_json::from_str(rest.trim()).unwrap_or_else(|e| panic!("{e}: {rest}"));

    assert_eq!(v["created"]["login_server"], s.login_server("myregistry").as_str(), "{v}");
    assert_eq!(v["created"]["sku"], "Premium");
    assert_eq!(v["created"]["state"], "Succeeded");
    assert_eq!(v["created"]["bypass"], "AzureServices");
    assert!(
        v["fetched_id"]
            .as_str()
            .unwrap()
            .ends_with("/resourceGroups/rg-sdk/providers/Microsoft.ContainerRegistry/registries/myregistry")
    );
    assert_eq!(v["updated_bypass"], "None");
    assert_eq!(v["restored_bypass"], "AzureServices");
    assert_eq!(v["listed"], serde_json::json!(["myregistry"]));
    assert_eq!(v["missing"], "ResourceNotFound");
    assert_eq!(v["repositories"], serde_json::json!(["app"]));
    assert_eq!(v["tags"], serde_json::json!(["v1", "v2"]));
    assert_eq!(v["manifest_digest"], digest.as_str());
    assert_eq!(v["manifest_tags"], serde_json::json!(["v1", "v2"]));
    assert_eq!(v["manifest_can_delete"], false);
    assert_eq!(v["locked_delete"], 403, "a manifest with deleteEnabled=false cannot be deleted: {v}");
    assert_eq!(v["repository_can_write"], false);
    assert_eq!(v["tags_after_delete"], serde_json::json!(["v1"]));
    assert_eq!(v["repositories_after_delete"], serde_json::json!([]));
    // What the SDK changed is what the management API shows.
    let (_, body) = s
        .mgmt(
            Method::GET,
            &format!(
                "/subscriptions/{sub}/resourceGroups/rg-sdk/providers/Microsoft.ContainerRegistry/registries/myregistry"
            ),
            None,
        )
        .await;
    assert_eq!(body["properties"]["networkRuleBypassOptions"], "AzureServices");
}

/// MSAL looks a user's realm up at `https://{login host}/common/userrealm/…` without the
/// port, so `az login -u` needs Wharf on port 443. Binding it needs root (CI runs as root);
/// elsewhere the test is skipped with the reason.
fn require_port_443() -> bool {
    match std::net::TcpListener::bind("127.0.0.1:443") {
        Ok(_) => true,
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "127.0.0.1:443 is needed in CI (CI=true) for `az login -u` (MSAL's user-realm lookup drops the port): {e}"
            )
        }
        Err(e) => {
            eprintln!("SKIPPED: cannot bind 127.0.0.1:443 ({e}); `az login -u` needs the login host on port 443");
            false
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn az_signs_in_a_user_and_manages_the_directory() {
    let Some(bin) = require_az() else { return };
    if !require_port_443() {
        return;
    }
    let s = TestServer::builder().tls().port(443).start().await;
    let cli = Cli::login(&s);
    let admin = s.admin().unwrap().clone();
    let az = Az::new(bin, &s);
    let printed = cli.run(&["az-cloud", "--server", &s.base(), "--ca-bundle", az.ca.to_str().unwrap()]).ok().stdout;
    for line in printed.lines().map(str::trim).filter(|l| l.starts_with("az ") && !l.contains('<')) {
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let r = az.run(&args);
        assert_eq!(r.code, 0, "`{line}` failed: {r:?}");
    }

    // ---- a user signs in with a password (ROPC): id token, client_info, tenants, subscriptions ----
    let wrong = az.run(&["login", "-u", &admin.username, "-p", "not-the-password"]);
    assert_ne!(wrong.code, 0, "{wrong:?}");
    assert!(wrong.stderr.contains("AADSTS50126"), "{wrong:?}");
    let login = az.json(&["login", "-u", &admin.username, "-p", &admin.password]);
    assert_eq!(login[0]["id"], s.subscription.as_str(), "{login}");
    assert_eq!(login[0]["user"], serde_json::json!({"name": admin.username, "type": "user"}));
    assert_eq!(login[0]["tenantId"], admin.tenant.as_str());
    // Graph through the cloud's Graph resource (`https://127.0.0.1/`, the default port left out).
    let me = az.json(&["ad", "signed-in-user", "show"]);
    assert_eq!(me["userPrincipalName"], admin.username.as_str(), "{me}");

    // ---- users and groups ----
    let dev_password = "Dev-passw0rd-for-tests";
    let dev = az.json(&[
        "ad",
        "user",
        "create",
        "--display-name",
        "Dev",
        "--password",
        dev_password,
        "--user-principal-name",
        "dev@wharf.local",
    ]);
    let dev_id = dev["id"].as_str().unwrap().to_string();
    let users = cli.run(&["ad", "user", "list", "--query", "[].userPrincipalName"]).ok().json();
    assert!(users.as_array().unwrap().contains(&serde_json::json!("dev@wharf.local")), "{users}");
    let group = az.json(&["ad", "group", "create", "--display-name", "Pullers", "--mail-nickname", "pullers"]);
    let group_id = group["id"].as_str().unwrap().to_string();
    let r = az.run(&["ad", "group", "member", "add", "--group", "Pullers", "--member-id", &dev_id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        az.json(&["ad", "group", "member", "check", "--group", "Pullers", "--member-id", &dev_id])["value"],
        true
    );
    let members = cli.run(&["ad", "group", "member", "list", "--group", &group_id, "--query", "[].id"]).ok().json();
    assert_eq!(members, serde_json::json!([dev_id]));

    // ---- a registry; AcrPull for the group reaches its member on the data plane ----
    az.json(&["group", "create", "-n", "rg1", "-l", "westus"]);
    let rid = az.json(&["acr", "create", "-n", "myregistry", "-g", "rg1", "--sku", "Premium"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let before = access_token(&s, "127.0.0.1", "dev@wharf.local", dev_password, "repository:app:pull").await.unwrap();
    assert!(repository_actions(&before, "app").is_empty(), "{before}");
    let a = az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        &group_id,
        "--assignee-principal-type",
        "Group",
        "--role",
        "AcrPull",
        "--scope",
        &rid,
    ]);
    assert_eq!(a["principalType"], "Group");
    let after = access_token(&s, "127.0.0.1", "dev@wharf.local", dev_password, "repository:app:pull").await.unwrap();
    assert_eq!(repository_actions(&after, "app"), ["pull"], "{after}");

    // ---- service principals: create-for-rbac with a role, show, list, credential reset, delete ----
    let sp = az.json(&["ad", "sp", "create-for-rbac", "--name", "pusher", "--role", "AcrPush", "--scopes", &rid]);
    let app_id = sp["appId"].as_str().unwrap().to_string();
    let first_secret = sp["password"].as_str().unwrap().to_string();
    assert_eq!(sp["tenant"], admin.tenant.as_str());
    let pushed = access_token(&s, "127.0.0.1", &app_id, &first_secret, "repository:app:pull,push").await.unwrap();
    assert_eq!(repository_actions(&pushed, "app"), ["pull", "push"], "{pushed}");
    assert_eq!(az.tsv(&["ad", "sp", "show", "--id", &app_id, "--query", "displayName"]), "pusher");
    assert_eq!(
        az.json(&["ad", "sp", "list", "--display-name", "pusher", "--query", "[].appId"]),
        serde_json::json!([app_id])
    );
    let shown = cli.run(&["ad", "sp", "show", "--id", &app_id]).ok().json();
    assert_eq!(shown["displayName"], "pusher");
    // Reset replaces the secret: the old one stops working, the new one works.
    let reset = az.json(&["ad", "sp", "credential", "reset", "--id", &app_id]);
    let second_secret = reset["password"].as_str().unwrap().to_string();
    assert_ne!(second_secret, first_secret);
    let old = access_token(&s, "127.0.0.1", &app_id, &first_secret, "repository:app:pull").await;
    assert_eq!(old.unwrap_err().0, StatusCode::UNAUTHORIZED);
    access_token(&s, "127.0.0.1", &app_id, &second_secret, "repository:app:pull").await.unwrap();
    // `--append` adds a secret beside the current one.
    let appended = az.json(&["ad", "sp", "credential", "reset", "--id", &app_id, "--append"]);
    assert_eq!(az.json(&["ad", "sp", "show", "--id", &app_id, "--query", "length(passwordCredentials)"]), 2);
    access_token(&s, "127.0.0.1", &app_id, appended["password"].as_str().unwrap(), "repository:app:pull")
        .await
        .unwrap();
    access_token(&s, "127.0.0.1", &app_id, &second_secret, "repository:app:pull").await.unwrap();

    // ---- updates: disabling cuts off sign-in at once, a new password replaces the old ----
    let r = az.run(&["ad", "sp", "update", "--id", &app_id, "--set", "accountEnabled=false"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(az.json(&["ad", "sp", "show", "--id", &app_id, "--query", "accountEnabled"]), false);
    let disabled = access_token(&s, "127.0.0.1", &app_id, &second_secret, "repository:app:pull").await;
    assert_eq!(disabled.unwrap_err().0, StatusCode::UNAUTHORIZED);
    let r = az.run(&["ad", "sp", "update", "--id", &app_id, "--set", "accountEnabled=true"]);
    assert_eq!(r.code, 0, "{r:?}");
    access_token(&s, "127.0.0.1", &app_id, &second_secret, "repository:app:pull").await.unwrap();
    let r = az.run(&["ad", "app", "update", "--id", &app_id, "--display-name", "pusher-renamed"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(az.tsv(&["ad", "sp", "show", "--id", &app_id, "--query", "displayName"]), "pusher-renamed");
    let unsupported = az.run(&["ad", "app", "update", "--id", &app_id, "--sign-in-audience", "AzureADMultipleOrgs"]);
    assert!(unsupported.code != 0 && unsupported.stderr.contains("signInAudience"), "{unsupported:?}");
    let r = az.run(&["ad", "user", "update", "--id", "dev@wharf.local", "--account-enabled", "false"]);
    assert_eq!(r.code, 0, "{r:?}");
    let disabled = access_token(&s, "127.0.0.1", "dev@wharf.local", dev_password, "repository:app:pull").await;
    assert_eq!(disabled.unwrap_err().0, StatusCode::UNAUTHORIZED);
    let dev_password = "Dev-new-passw0rd-for-tests";
    let r = az.run(&[
        "ad",
        "user",
        "update",
        "--id",
        "dev@wharf.local",
        "--account-enabled",
        "true",
        "--password",
        dev_password,
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    let old = access_token(&s, "127.0.0.1", "dev@wharf.local", "Dev-passw0rd-for-tests", "repository:app:pull").await;
    assert_eq!(old.unwrap_err().0, StatusCode::UNAUTHORIZED);
    access_token(&s, "127.0.0.1", "dev@wharf.local", dev_password, "repository:app:pull").await.unwrap();

    // ---- a group owner: no directory rights, but may change the group's members ----
    let r = az.run(&["ad", "group", "owner", "add", "--group", "Pullers", "--owner-object-id", &dev_id]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(
        az.json(&["ad", "group", "owner", "list", "--group", "Pullers", "--query", "[].userPrincipalName"]),
        serde_json::json!(["dev@wharf.local"])
    );
    let admin_id = me["id"].as_str().unwrap().to_string();

    // ---- a user without directory rights is refused, with Graph's message ----
    az.run(&["logout"]);
    let dev_login = az.json(&["login", "-u", "dev@wharf.local", "-p", dev_password, "--allow-no-subscriptions"]);
    assert_eq!(dev_login[0]["user"]["name"], "dev@wharf.local", "{dev_login}");
    let refused = az.run(&[
        "ad",
        "user",
        "create",
        "--display-name",
        "Eve",
        "--password",
        "Eve-passw0rd-for-tests",
        "--user-principal-name",
        "eve@wharf.local",
    ]);
    assert_ne!(refused.code, 0, "{refused:?}");
    assert!(refused.stderr.contains("Insufficient privileges"), "{refused:?}");
    let r = az.run(&["ad", "group", "member", "add", "--group", "Pullers", "--member-id", &admin_id]);
    assert_eq!(r.code, 0, "the owner adds a member: {r:?}");
    assert_eq!(
        az.json(&["ad", "group", "member", "check", "--group", "Pullers", "--member-id", &admin_id])["value"],
        true
    );
    az.run(&["logout"]);

    // ---- deletion, as the administrator ----
    az.json(&["login", "-u", &admin.username, "-p", &admin.password]);
    for args in [
        vec!["ad", "sp", "delete", "--id", app_id.as_str()],
        vec!["ad", "group", "delete", "-g", "Pullers"],
        vec!["ad", "user", "delete", "--id", "dev@wharf.local"],
    ] {
        let r = az.run(&args);
        assert_eq!(r.code, 0, "az {} failed: {r:?}", args.join(" "));
    }
    assert_ne!(cli.run(&["ad", "sp", "show", "--id", &app_id]).code, 0);
    assert_ne!(cli.run(&["ad", "user", "show", "--id", "dev@wharf.local"]).code, 0);
    let gone = access_token(&s, "127.0.0.1", &app_id, &second_secret, "repository:app:pull").await;
    assert_eq!(gone.unwrap_err().0, StatusCode::UNAUTHORIZED);
}

/// Issue 10 item 13: pointed at the same server, `wharf` prints what the real `az` prints for
/// the same command line — each command's own table columns (or az's generic table), a
/// `--query` multiselect hash in the query's order in tsv and tables, a backtick literal that
/// is not JSON read as a string, JSON with sorted keys, nothing for a null result.
#[tokio::test(flavor = "multi_thread")]
async fn wharf_prints_the_tables_and_tsv_that_az_prints() {
    let Some(bin) = require_az() else { return };
    let s = TestServer::builder().tls().start().await;
    let cli = Cli::login(&s);
    let (az, _) = az_as_subscription_owner(bin, &s, &cli);

    az.json(&["group", "create", "-n", "rg1", "-l", "westus"]);
    let rid = az.json(&["acr", "create", "-n", "myregistry", "-g", "rg1", "--sku", "Premium"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    az.json(&["acr", "create", "-n", "otherregistry", "-g", "rg1", "--sku", "Basic", "--admin-enabled", "true"]);
    let reg = common::Registry { server: &s, name: "myregistry".into(), rg: "rg1".into() };
    reg.push_image("app", "v1", "side-by-side").await;
    let mi = az.json(&["identity", "create", "-g", "rg1", "-n", "id1"]);
    let mi_oid = mi["principalId"].as_str().unwrap().to_string();
    az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        &mi_oid,
        "--assignee-principal-type",
        "ServicePrincipal",
        "--role",
        "AcrPull",
        "--scope",
        &rid,
    ]);

    cli.run(&[
        "network",
        "vnet",
        "create",
        "-g",
        "rg1",
        "-n",
        "vnet1",
        "--address-prefix",
        "10.0.0.0/16",
        "--subnet-name",
        "build",
        "--subnet-prefix",
        "10.0.1.0/24",
    ])
    .ok();

    let cases: &[&[&str]] = &[
        // The commands' own columns.
        &["acr", "list", "-o", "table"],
        &["acr", "show", "-n", "myregistry", "-o", "table"],
        &["acr", "show-usage", "-n", "myregistry", "-o", "table"],
        &["acr", "credential", "show", "-n", "otherregistry", "-o", "table"],
        &["group", "list", "-o", "table"],
        &["role", "assignment", "list", "--scope", &rid, "-o", "table"],
        &["role", "definition", "list", "--name", "AcrPull", "-o", "table"],
        &["ad", "sp", "list", "--display-name", "az-ci", "-o", "table"],
        &["network", "vnet", "list", "-g", "rg1", "-o", "table"],
        &["resource", "list", "-o", "table"],
        // az's generic table.
        &["group", "show", "-n", "rg1", "-o", "table"],
        &["identity", "list", "-g", "rg1", "-o", "table"],
        &["acr", "repository", "list", "-n", "myregistry", "-o", "table"],
        &["acr", "repository", "show-tags", "-n", "myregistry", "--repository", "app", "-o", "table"],
        &["acr", "network-rule", "list", "-n", "myregistry", "-o", "table"],
        // --query: the query's columns, in its order; literals; JSON sorted; null prints nothing.
        &["acr", "list", "--query", "[].{n:name,l:loginServer}", "-o", "tsv"],
        &["acr", "list", "--query", "[].{Name:name, Server:loginServer, Admin:adminUserEnabled}", "-o", "table"],
        &["acr", "list", "--query", "[?name==`myregistry`].loginServer", "-o", "tsv"],
        &["acr", "list", "--query", "[?adminUserEnabled==`true`].name", "-o", "tsv"],
        &[
            "acr",
            "show",
            "-n",
            "myregistry",
            "--query",
            "{z:name, s:sku.name, a:adminUserEnabled, t:tags}",
            "-o",
            "tsv",
        ],
        &["acr", "show", "-n", "myregistry", "--query", "{z:name, a:location}", "-o", "json"],
        &["acr", "show", "-n", "myregistry", "--query", "noSuchField", "-o", "json"],
        &["group", "exists", "-n", "rg1", "-o", "tsv"],
    ];
    let mut differ = Vec::new();
    for args in cases {
        let theirs = az.run(args);
        assert_eq!(theirs.code, 0, "az {} failed: {theirs:?}", args.join(" "));
        let ours = cli.run(args);
        assert_eq!(ours.code, 0, "wharf {} failed: {ours:?}", args.join(" "));
        if ours.stdout != theirs.stdout {
            differ.push(format!("{}\n--- az:\n{}--- wharf:\n{}", args.join(" "), theirs.stdout, ours.stdout));
        }
    }
    assert!(differ.is_empty(), "wharf and az print differently:\n{}", differ.join("\n"));

    // The tables are the commands' columns, not one column per field.
    let table = cli.run(&["acr", "list", "-o", "table"]).ok().stdout;
    let header = table.lines().next().unwrap();
    assert!(header.starts_with("NAME") && header.ends_with("ADMIN ENABLED"), "{table}");
    let tsv = cli.run(&["acr", "list", "--query", "[].{n:name,l:loginServer}", "-o", "tsv"]).ok().stdout;
    let line = format!("myregistry\t{}", s.login_server("myregistry"));
    assert!(tsv.lines().any(|l| l == line), "the name, then the login server: {tsv}");
}

/// Both seeds' task walkthroughs with the real `az`: seed 000 (a task's system-assigned
/// identity with AcrPush, `--auth-mode None`, `credential add --use-identity [system]`, public
/// access disabled: the run succeeds as a trusted service, and fails once trusted services are
/// off) and seed 004 (ABAC mode: no access without `--source-acr-auth-id`, `[system]` with a
/// conditioned Repository Writer role pushes inside its prefix only, `none` removes access,
/// `--auth-mode` is refused, `az acr run --source-acr-auth-id [caller]` acts as the caller).
#[tokio::test(flavor = "multi_thread")]
async fn az_runs_the_task_walkthroughs_unmodified() {
    let Some(bin) = require_az() else { return };
    if !require_task_engine() {
        return;
    }
    let s = TestServer::builder().tls().start().await;
    let cli = Cli::login(&s);
    let (az, app_id) = az_as_subscription_owner(bin, &s, &cli);
    az.json(&["group", "create", "-n", "rg1", "-l", "westus"]);

    // ---- seed 000 ----
    let rid = az.json(&["acr", "create", "-n", "seedtasks", "-g", "rg1", "--sku", "Premium"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = push_busybox(&s, "seedtasks");
    let login = s.login_server("seedtasks");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("acr-task.yaml");
    std::fs::write(&file, build_and_push_task(&base, "app/trusted:{{.Run.ID}}")).unwrap();
    let file = file.to_str().unwrap();
    let task = az.json(&[
        "acr",
        "task",
        "create",
        "-n",
        "trusted-build",
        "-r",
        "seedtasks",
        "-c",
        "/dev/null",
        "-f",
        file,
        "--assign-identity",
        "[system]",
        "--auth-mode",
        "None",
    ]);
    assert_eq!(task["credentials"]["sourceRegistry"]["loginMode"], "None", "{task}");
    let principal = task["identity"]["principalId"].as_str().expect("a system-assigned identity").to_string();
    az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        &principal,
        "--assignee-principal-type",
        "ServicePrincipal",
        "--role",
        "AcrPush",
        "--scope",
        &rid,
    ]);
    az.json(&[
        "acr",
        "task",
        "credential",
        "add",
        "-n",
        "trusted-build",
        "-r",
        "seedtasks",
        "--login-server",
        &login,
        "--use-identity",
        "[system]",
    ]);
    az.json(&["acr", "update", "--name", "seedtasks", "--public-network-enabled", "false"]);
    let run = az.run(&["acr", "task", "run", "-n", "trusted-build", "-r", "seedtasks"]);
    assert_eq!(run.code, 0, "the trusted task runs with public access disabled: {run:?}");
    assert!(
        run.stdout.contains("app/trusted") && run.stdout.contains("sha256:"),
        "the log names the pushed image: {run:?}"
    );
    az.json(&["acr", "update", "--name", "seedtasks", "--allow-trusted-services", "false"]);
    let refused = az.run(&["acr", "task", "run", "-n", "trusted-build", "-r", "seedtasks"]);
    assert_eq!(refused.code, 1, "without trusted services the same run fails: {refused:?}");
    assert!(refused.stderr.contains("Run failed"), "{refused:?}");
    assert!(refused.stdout.contains("403"), "the network refusal is in the log: {refused:?}");
    let runs = az.json(&["acr", "task", "list-runs", "-r", "seedtasks"]);
    assert_eq!(runs[0]["status"], "Failed", "newest first: {runs}");
    assert_eq!(runs[1]["status"], "Succeeded", "{runs}");
    let logs = az.run(&["acr", "task", "logs", "-r", "seedtasks", "-n", "trusted-build"]);
    assert_eq!(logs.code, 0, "{logs:?}");
    assert!(logs.stderr.contains("Showing logs of the last created run"), "{logs:?}");

    // ---- seed 004 ----
    let rid = az.json(&["acr", "create", "-n", "seedabactasks", "-g", "rg1", "--sku", "Premium"])["id"]
        .as_str()
        .unwrap()
        .to_string();
    let base = push_busybox(&s, "seedabactasks");
    az.json(&["acr", "update", "-n", "seedabactasks", "--role-assignment-mode", "rbac-abac"]);
    std::fs::write(dir.path().join("inside.yaml"), build_and_push_task(&base, "team/app:{{.Run.ID}}")).unwrap();
    std::fs::write(dir.path().join("outside.yaml"), build_and_push_task(&base, "other/app:{{.Run.ID}}")).unwrap();
    let inside = dir.path().join("inside.yaml");
    let outside = dir.path().join("outside.yaml");
    let created = az.run(&[
        "acr",
        "task",
        "create",
        "-n",
        "abac-build",
        "-r",
        "seedabactasks",
        "-c",
        "/dev/null",
        "-f",
        inside.to_str().unwrap(),
        "--assign-identity",
        "[system]",
    ]);
    assert_eq!(created.code, 0, "{created:?}");
    let principal = created.json()["identity"]["principalId"].as_str().unwrap().to_string();
    let run = az.run(&["acr", "task", "run", "-n", "abac-build", "-r", "seedabactasks"]);
    assert_eq!(run.code, 1, "in ABAC mode a task has no access without --source-acr-auth-id: {run:?}");
    az.json(&["acr", "task", "update", "-n", "abac-build", "-r", "seedabactasks", "--source-acr-auth-id", "[system]"]);
    let condition = "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/write'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/write'})) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team/'))";
    az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        &principal,
        "--assignee-principal-type",
        "ServicePrincipal",
        "--role",
        "Container Registry Repository Writer",
        "--scope",
        &rid,
        "--condition",
        condition,
        "--condition-version",
        "2.0",
    ]);
    let run = az.run(&["acr", "task", "run", "-n", "abac-build", "-r", "seedabactasks"]);
    assert_eq!(run.code, 0, "[system] pushes inside its prefix: {run:?}");
    az.json(&["acr", "task", "update", "-n", "abac-build", "-r", "seedabactasks", "-f", outside.to_str().unwrap()]);
    let run = az.run(&["acr", "task", "run", "-n", "abac-build", "-r", "seedabactasks"]);
    assert_eq!(run.code, 1, "…and is refused outside it: {run:?}");
    let mode = az.run(&["acr", "task", "update", "-n", "abac-build", "-r", "seedabactasks", "--auth-mode", "Default"]);
    assert_ne!(mode.code, 0, "{mode:?}");
    assert!(mode.stderr.contains("AuthModeNotSupported"), "{mode:?}");
    az.json(&[
        "acr",
        "task",
        "update",
        "-n",
        "abac-build",
        "-r",
        "seedabactasks",
        "-f",
        inside.to_str().unwrap(),
        "--source-acr-auth-id",
        "none",
    ]);
    let run = az.run(&["acr", "task", "run", "-n", "abac-build", "-r", "seedabactasks"]);
    assert_eq!(run.code, 1, "none removes access: {run:?}");

    // a quick run acts as its caller, who needs a Repository role
    let sp = az.json(&["ad", "sp", "show", "--id", &app_id]);
    let sp_oid = sp["id"].as_str().unwrap().to_string();
    az.json(&[
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        &sp_oid,
        "--assignee-principal-type",
        "ServicePrincipal",
        "--role",
        "Container Registry Repository Reader",
        "--scope",
        &rid,
    ]);
    let cmd = format!("{base} echo pulled-as-the-caller");
    let quick =
        az.run(&["acr", "run", "-r", "seedabactasks", "--cmd", &cmd, "/dev/null", "--source-acr-auth-id", "[caller]"]);
    assert_eq!(quick.code, 0, "{quick:?}");
    assert!(quick.stdout.contains("pulled-as-the-caller"), "{quick:?}");
    let none =
        az.run(&["acr", "run", "-r", "seedabactasks", "--cmd", &cmd, "/dev/null", "--source-acr-auth-id", "none"]);
    assert_eq!(none.code, 1, "without an identity a quick run has no access in ABAC mode: {none:?}");
}

/// `az acr build` and `az acr run` with a local directory, unmodified: az packs the directory
/// (leaving out what `.dockerignore` names), uploads it through the link the server hands out,
/// queues the run and streams its log.
#[tokio::test]
async fn az_builds_and_runs_a_local_directory() {
    let Some(bin) = require_az() else { return };
    if !require_task_engine() {
        return;
    }
    let s = TestServer::builder().tls().start().await;
    let cli = Cli::login(&s);
    let (az, _) = az_as_subscription_owner(bin, &s, &cli);
    az.json(&["group", "create", "-n", "rg1", "-l", "westus"]);
    az.json(&["acr", "create", "-n", "azbuild", "-g", "rg1", "--sku", "Premium"]);
    let base = push_busybox(&s, "azbuild");
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(ctx.join("conf")).unwrap();
    std::fs::write(ctx.join("msg.txt"), "hello from a local directory\n").unwrap();
    std::fs::write(ctx.join("conf/secret.txt"), "TOPSECRET-not-for-the-server\n").unwrap();
    std::fs::write(ctx.join(".dockerignore"), "conf/secret.txt\n").unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        format!(
            "FROM {base}\nCOPY . /ctx\nRUN cat /ctx/msg.txt && test ! -e /ctx/conf/secret.txt && echo secret-left-behind\n"
        ),
    )
    .unwrap();
    std::fs::write(ctx.join("task.yaml"), format!("version: v1.1.0\nsteps:\n  - cmd: {base} cat msg.txt\n")).unwrap();
    let ctx = ctx.to_str().unwrap();

    let build = az.run(&["acr", "build", "-r", "azbuild", "-t", "team/app/web:{{.Run.ID}}", ctx]);
    assert_eq!(build.code, 0, "{build:?}");
    assert!(build.stdout.contains("hello from a local directory"), "{build:?}");
    assert!(build.stdout.contains("secret-left-behind"), "the ignored file never reached the build: {build:?}");
    assert!(!build.stdout.contains("TOPSECRET"), "{build:?}");
    let runs = az.json(&["acr", "task", "list-runs", "-r", "azbuild"]);
    let run = &runs[0];
    assert_eq!(run["status"], "Succeeded", "{runs}");
    let pushed = &run["outputImages"][0];
    assert_eq!(pushed["repository"], "team/app/web", "{run}");
    assert_eq!(pushed["tag"], run["runId"], "the tag is the run id: {run}");
    let tags = az.json(&["acr", "repository", "show-tags", "-n", "azbuild", "--repository", "team/app/web"]);
    assert_eq!(tags, serde_json::json!([run["runId"]]), "{tags}");

    let quick = az.run(&["acr", "run", "-r", "azbuild", "-f", "task.yaml", ctx]);
    assert_eq!(quick.code, 0, "{quick:?}");
    assert!(quick.stdout.contains("hello from a local directory"), "{quick:?}");

    // A failing build fails the command.
    std::fs::write(dir.path().join("ctx/Dockerfile"), format!("FROM {base}\nRUN false\n")).unwrap();
    let failed = az.run(&["acr", "build", "-r", "azbuild", "-t", "team/app/web:broken", ctx]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert!(failed.stderr.contains("Run failed"), "{failed:?}");
}

/// The real `az acr import` against registries of one deployment: the source named by login
/// server (az finds it in the subscription and sends its resource id) and by name, polled to
/// completion through the operation's `Location`; a tag that exists under NoForce fails with
/// az's `(ImportImageFailed)` and exit code 1; `--no-wait` prints az's warning.
#[tokio::test(flavor = "multi_thread")]
async fn az_acr_import_between_registries() {
    let Some(bin) = require_az() else { return };
    let s = TestServer::builder().tls().start().await;
    let cli = Cli::login(&s);
    let (az, _) = az_as_subscription_owner(bin, &s, &cli);
    let src = s.registry("azimpsrc").await;
    let tgt = s.registry("azimptgt").await;
    let (_, v1) = src.push_image("app", "v1", "az import v1").await;
    let digest_of = |repo: &'static str, tag: &'static str| {
        let tgt = &tgt;
        async move {
            let r = tgt.get_manifest(repo, tag).await;
            (r.status == StatusCode::OK).then(|| r.header("docker-content-digest").unwrap_or_default().to_string())
        }
    };

    let source = format!("{}/app:v1", s.login_server("azimpsrc"));
    let r = az.run(&["acr", "import", "-n", "azimptgt", "--source", &source]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(digest_of("app", "v1").await.as_deref(), Some(v1.as_str()));

    let r = az.run(&["acr", "import", "-n", "azimptgt", "-r", "azimpsrc", "--source", "app:v1", "-t", "copy:v1"]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(digest_of("copy", "v1").await.as_deref(), Some(v1.as_str()));

    tgt.push_image("taken", "v1", "az import other").await;
    let r = az.run(&["acr", "import", "-n", "azimptgt", "-r", "azimpsrc", "--source", "app:v1", "-t", "taken:v1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("(ImportImageFailed)") && r.stderr.contains("taken:v1"), "{}", r.stderr);

    let r = az.run(&[
        "acr",
        "import",
        "-n",
        "azimptgt",
        "-r",
        "azimpsrc",
        "--source",
        "app:v1",
        "-t",
        "taken:v1",
        "--force",
        "--no-wait",
    ]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stderr.contains("Import has started. Due to no-wait option, failures will not be reflected."),
        "{}",
        r.stderr
    );
    let mut moved = None;
    for _ in 0..100 {
        moved = digest_of("taken", "v1").await;
        if moved.as_deref() == Some(v1.as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(moved.as_deref(), Some(v1.as_str()));
}
