//! The one harness every integration test goes through: a real `wharf serve` child process on a
//! free loopback port with a temporary data directory, plus request helpers.
//!
//! Credentials come from exactly one place: the bootstrap administrator that a new data
//! directory gets (`bootstrap-credentials.json`), read once the server is up. [`TestServer::creds`]
//! gives it for data-plane Basic auth and the `--creds` of external clients, [`TestServer::bearer`]
//! a management token obtained with it (password grant at the Entra-like token endpoint).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use sha2::Digest as _;

pub const ARM_API: &str = "2023-07-01";
pub const RESOURCES_API: &str = "2022-12-01";

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

pub fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(sha2::Sha512::digest(bytes)))
}

/// Whether an external client is installed. In CI (`CI=true`) a missing client fails the test;
/// elsewhere the test is skipped with the reason printed.
pub fn require_tool(tool: &str) -> bool {
    require_tool_in_ci(tool, std::env::var("CI").is_ok_and(|v| v == "true"))
}

/// [`require_tool`] with the CI switch given (so that a test can check what CI does).
pub fn require_tool_in_ci(tool: &str, ci: bool) -> bool {
    let found =
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file())).unwrap_or(false);
    if found {
        return true;
    }
    if ci {
        panic!("{tool} is required in CI (CI=true) but is not installed");
    }
    eprintln!("SKIPPED: {tool} is not installed (in CI this test fails instead)");
    false
}

/// The Python venv with the PyPI clients (tests/requirements.txt), like `require_tool`.
pub fn require_venv_python() -> Option<PathBuf> {
    require_venv_modules("oras", "oras-py")
}

/// The venv's Python if it can `import {modules}` (comma-separated), `what` naming them for
/// people. In CI (`CI=true`) a missing one fails the test; elsewhere the test is skipped with
/// the reason printed.
pub fn require_venv_modules(modules: &str, what: &str) -> Option<PathBuf> {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    let ok = py.is_file()
        && Command::new(&py).args(["-c", &format!("import {modules}")]).status().is_ok_and(|s| s.success());
    if ok {
        return Some(py);
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{} with {what} is required in CI (CI=true); run .ci/run", py.display());
    }
    eprintln!(
        "SKIPPED: {} lacks {what} (python3 -m venv .venv && .venv/bin/pip install -r tests/requirements.txt)",
        py.display()
    );
    None
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port").local_addr().unwrap().port()
}

/// A running `wharf serve`. Killed (SIGKILL) on drop; its log is printed if the test failed.
pub struct TestServer {
    /// In a mutex so that `kill9` works through a shared reference (registries borrow the server).
    child: std::sync::Mutex<Option<Child>>,
    /// Kept alive for the server's lifetime when the harness made it.
    _dir: Option<tempfile::TempDir>,
    pub data_dir: PathBuf,
    pub port: u16,
    /// The IP the server listens on, as it goes in a URL (`127.0.0.1` or `[::1]`).
    pub ip: String,
    pub subscription: String,
    /// The bootstrap administrator (`bootstrap-credentials.json`), if the server wrote one.
    admin: Option<Admin>,
    /// Management bearer token of the administrator.
    token: Option<String>,
    log: PathBuf,
    client: reqwest::Client,
    /// The registry domain (`--domain`).
    pub domain: String,
    /// With `--tls-self-signed`: the CA certificate that clients must trust.
    pub tls_ca: Option<PathBuf>,
}

#[derive(Clone, Debug)]
pub struct Admin {
    pub username: String,
    pub password: String,
    pub tenant: String,
}

impl TestServer {
    /// A fresh server as a user gets it: 127.0.0.1, plain HTTP, the default domain, an empty
    /// temporary data directory. [`TestServer::builder`] for anything else.
    pub async fn start() -> TestServer {
        Self::builder().start().await
    }

    /// How to start a server other than [`TestServer::start`]'s.
    pub fn builder() -> ServerBuilder {
        ServerBuilder::default()
    }

    /// Starts `wharf serve` as `b` says.
    async fn launch(b: ServerBuilder) -> TestServer {
        let (data_dir, dir) = match b.data_dir {
            Some(d) => (d, None),
            None => {
                let dir = tempfile::tempdir().expect("tempdir");
                (dir.path().join("data"), Some(dir))
            }
        };
        let data_dir = data_dir.as_path();
        let ip = if b.ipv6 { "[::1]" } else { "127.0.0.1" };
        let port = b.port;
        std::fs::create_dir_all(data_dir).expect("data dir");
        let mut last_err = String::new();
        for attempt in 0..5 {
            let port = port.unwrap_or_else(|| if ip.starts_with('[') { free_port_v6() } else { free_port() });
            let log = data_dir.with_file_name(format!(
                "{}-server-{}-{attempt}.log",
                data_dir.file_name().unwrap().to_string_lossy(),
                std::process::id() as u64 * 1000 + port as u64
            ));
            let log_file = std::fs::File::create(&log).expect("log file");
            let mut cmd = match b.nofile {
                None => Command::new(env!("CARGO_BIN_EXE_wharf")),
                Some(n) => {
                    let mut c = Command::new("prlimit");
                    c.arg(format!("--nofile={n}:{n}")).arg("--").arg(env!("CARGO_BIN_EXE_wharf"));
                    c
                }
            };
            cmd.arg("serve").arg("--data-dir").arg(data_dir).arg("--listen").arg(format!("{ip}:{port}"));
            if let Some(d) = &b.domain {
                cmd.arg("--domain").arg(d);
            }
            if b.tls {
                cmd.arg("--tls-self-signed");
            }
            cmd.args(&b.flags);
            cmd.envs(b.env.iter().map(|(k, v)| (k, v)));
            let child = cmd
                .env("WHARF_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .expect("spawn wharf serve");
            let mut s = TestServer {
                child: std::sync::Mutex::new(Some(child)),
                _dir: None,
                data_dir: data_dir.to_path_buf(),
                port,
                ip: ip.to_string(),
                subscription: String::new(),
                admin: None,
                token: None,
                log,
                client: reqwest::Client::builder().no_proxy().build().unwrap(),
                domain: b.domain.clone().unwrap_or_else(|| "localhost".into()),
                tls_ca: b.tls.then(|| data_dir.join("tls/ca.crt")),
            };
            match s.wait_ready().await {
                Ok(()) => {
                    s._dir = dir;
                    s.sign_in().await;
                    let (st, subs) = s.mgmt(Method::GET, "/subscriptions", None).await;
                    assert_eq!(st, StatusCode::OK, "listing subscriptions: {subs}");
                    s.subscription = subs["value"][0]["subscriptionId"].as_str().expect("subscriptionId").to_string();
                    return s;
                }
                Err(e) => {
                    last_err = format!("{e}; log:\n{}", s.log_text());
                    s.kill9();
                }
            }
        }
        panic!("wharf serve did not start: {last_err}");
    }

    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let exited = self.child.lock().unwrap().as_mut().and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(format!("server exited with {status}"));
            }
            if let Some(ca) = &self.tls_ca {
                // The CA appears when the server starts; trust it from then on.
                let Ok(pem) = std::fs::read(ca) else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let root = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.display()))?;
                self.client = reqwest::Client::builder().no_proxy().add_root_certificate(root).build().unwrap();
            }
            if let Ok(r) = self.client.get(format!("{}/v2/", self.base())).send().await
                && (r.status() == StatusCode::OK || r.status() == StatusCode::UNAUTHORIZED)
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("server not ready after 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads the bootstrap administrator's credentials and gets a management token with them.
    async fn sign_in(&mut self) {
        let path = self.data_dir.join("bootstrap-credentials.json");
        let Ok(text) = std::fs::read_to_string(&path) else { return };
        let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let field = |k: &str| v[k].as_str().unwrap_or_else(|| panic!("{}: no {k}", path.display())).to_string();
        let admin = Admin { username: field("username"), password: field("password"), tenant: field("tenant") };
        self.admin = Some(admin.clone());
        let (status, body) = user_token(self, &admin.username, &admin.password, MGMT_SCOPE).await;
        assert_eq!(status, StatusCode::OK, "management token for the bootstrap admin: {body}");
        self.token = Some(body["access_token"].as_str().expect("access_token").to_string());
    }

    pub fn admin(&self) -> Option<&Admin> {
        self.admin.as_ref()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, no shutdown: what a crash looks like.
    pub fn kill9(&self) {
        let child = self.child.lock().unwrap().take();
        if let Some(mut c) = child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS)
    pub fn base(&self) -> String {
        let scheme = if self.tls_ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{}", self.ip, self.port)
    }

    /// `127.0.0.1:PORT`, as external clients name the registry host (path style).
    pub fn host(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    /// `{registry}.{domain}:PORT`, the registry's login server (host style).
    pub fn login_server(&self, registry: &str) -> String {
        match (self.port, self.tls_ca.is_some()) {
            (443, true) => format!("{registry}.{}", self.domain),
            _ => format!("{registry}.{}:{}", self.domain, self.port),
        }
    }

    // ---- credentials: the one place to change when authentication arrives ----

    /// Username and password for the data plane (Basic) and external clients' `--creds`.
    pub fn creds(&self) -> Option<(String, String)> {
        self.admin.as_ref().map(|a| (a.username.clone(), a.password.clone()))
    }

    /// `user:pass` for skopeo/podman/buildah `--creds`, if any.
    pub fn creds_arg(&self) -> Option<String> {
        self.creds().map(|(u, p)| format!("{u}:{p}"))
    }

    /// Bearer token for management calls.
    pub fn bearer(&self) -> Option<String> {
        self.token.clone()
    }

    /// A client whose connections leave from `ip` (a distinct host on loopback), trusting the
    /// server's CA when it serves TLS.
    pub fn client_from(&self, ip: &str) -> reqwest::Client {
        let mut b =
            reqwest::Client::builder().no_proxy().local_address(ip.parse::<std::net::IpAddr>().expect("an IP address"));
        if let Some(ca) = &self.tls_ca {
            b = b.add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(ca).expect("the CA")).expect("a PEM CA"),
            );
        }
        b.build().unwrap()
    }

    /// The registry token chain of a workload hosted by `resource_id`, as it runs it from `ip`:
    /// a token from its `IDENTITY_ENDPOINT` for the container registry audience,
    /// `/oauth2/exchange` for `service`, then `/oauth2/token` for `repository:{repo}:pull` and a
    /// GET of `{repo}:v1`'s manifest. Returns the exchange's status and, if it succeeded, the
    /// GET's. A network denial must carry ACR's message naming the client address.
    pub async fn workload_pull(
        &self,
        cli: &Cli,
        resource_id: &str,
        ip: &str,
        service: &str,
        repo: &str,
    ) -> (StatusCode, Option<StatusCode>) {
        let env = cli.run(&["resource", "workload-env", "--ids", resource_id]).ok().json();
        let aad: Value = self
            .client()
            .get(env["IDENTITY_ENDPOINT"].as_str().expect("IDENTITY_ENDPOINT"))
            .query(&[("resource", "https://containerregistry.azure.net"), ("api-version", "2019-08-01")])
            .header("X-IDENTITY-HEADER", env["IDENTITY_HEADER"].as_str().expect("IDENTITY_HEADER"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let aad = aad["access_token"].as_str().expect("a managed identity token").to_string();
        let c = self.client_from(ip);
        let r = self.exchange_request(&c, service, &aad).send().await.unwrap();
        let st = r.status();
        if st != StatusCode::OK {
            let body = r.text().await.unwrap();
            if st == StatusCode::FORBIDDEN {
                assert!(
                    body.contains("DENIED") && body.contains(&format!("client with IP \\u0027{ip}\\u0027")),
                    "{body}"
                );
            }
            return (st, None);
        }
        let refresh = r.json::<Value>().await.unwrap()["refresh_token"].as_str().unwrap().to_string();
        let scope = format!("repository:{repo}:pull");
        let t: Value =
            self.refresh_grant_request(&c, service, &scope, &refresh).send().await.unwrap().json().await.unwrap();
        let access = t["access_token"].as_str().expect("an access token").to_string();
        let g = c
            .get(format!("{}/v2/{repo}/manifests/v1", self.base()))
            .header("host", service)
            .header("accept", OCI_MANIFEST)
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        (st, Some(g.status()))
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The tenant of the bootstrap administrator (the deployment's one tenant).
    pub fn tenant(&self) -> String {
        self.admin.as_ref().expect("bootstrap admin").tenant.clone()
    }

    /// `POST /oauth2/exchange` from `c`, addressed to the login server `service`: a directory
    /// access token `aad` for a registry refresh token.
    pub fn exchange_request(&self, c: &reqwest::Client, service: &str, aad: &str) -> RequestBuilder {
        c.post(format!("{}/oauth2/exchange", self.base())).header("host", service).form(&[
            ("grant_type", "access_token"),
            ("service", service),
            ("access_token", aad),
        ])
    }

    /// `POST /oauth2/token` with `grant_type=refresh_token` from `c`, addressed to the login
    /// server `service`: a registry refresh token for an access token for `scope`.
    pub fn refresh_grant_request(
        &self,
        c: &reqwest::Client,
        service: &str,
        scope: &str,
        refresh: &str,
    ) -> RequestBuilder {
        c.post(format!("{}/oauth2/token", self.base())).header("host", service).form(&[
            ("grant_type", "refresh_token"),
            ("service", service),
            ("scope", scope),
            ("refresh_token", refresh),
        ])
    }

    // ---- management API ----

    /// A management request builder (`api-version` added when the path has none).
    pub fn mgmt_request(&self, method: Method, path: &str) -> RequestBuilder {
        self.mgmt_request_exact(method, &Self::with_api_version(path))
    }

    /// `path` with the `api-version` its provider answers to, unless it names one.
    fn with_api_version(path: &str) -> String {
        if path.contains("api-version=") {
            return path.to_string();
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        let v = if path.contains("Microsoft.ContainerRegistry") { ARM_API } else { RESOURCES_API };
        format!("{path}{sep}api-version={v}")
    }

    /// A management request builder for `path` exactly as given (no `api-version` added).
    pub fn mgmt_request_exact(&self, method: Method, path: &str) -> RequestBuilder {
        let rb = self.client.request(method, format!("{}{path}", self.base()));
        match self.bearer() {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        }
    }

    /// A management call; returns the status and the JSON body (`Null` when empty).
    pub async fn mgmt(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        status_and_json(self.mgmt_request(method, path), body).await
    }

    /// [`TestServer::mgmt`] with an explicit bearer token instead of the administrator's.
    pub async fn mgmt_as(&self, token: &str, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        bearer_call(self, token, method, &Self::with_api_version(path), body).await
    }

    pub fn group_path(&self, rg: &str) -> String {
        format!("/subscriptions/{}/resourcegroups/{rg}", self.subscription)
    }

    pub fn registry_path(&self, rg: &str, name: &str) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}",
            self.subscription
        )
    }

    pub async fn create_group(&self, rg: &str) {
        let (st, body) = self.mgmt(Method::PUT, &self.group_path(rg), Some(json!({"location": "westus"}))).await;
        assert!(st.is_success(), "creating resource group {rg}: {st} {body}");
    }

    pub async fn create_registry(&self, rg: &str, name: &str, sku: &str) -> (StatusCode, Value) {
        self.mgmt(Method::PUT, &self.registry_path(rg, name), Some(json!({"location": "westus", "sku": {"name": sku}})))
            .await
    }

    /// Creates resource group `rg-{name}` and a Premium registry `name` in it.
    pub async fn registry(&self, name: &str) -> Registry<'_> {
        let rg = format!("rg-{name}");
        self.create_group(&rg).await;
        let (st, body) = self.create_registry(&rg, name, "Premium").await;
        assert!(st.is_success(), "creating registry {name}: {st} {body}");
        Registry { server: self, name: name.to_string(), rg }
    }

    // ---- data plane ----

    /// A data-plane request to `path` (starting with `/v2` or `/acr/v1`), with credentials.
    pub fn http(&self, method: Method, path: &str) -> RequestBuilder {
        self.with_creds(self.client.request(method, format!("{}{path}", self.base())))
    }

    /// A data-plane request addressed host style: `Host: {registry}.localhost:PORT`.
    pub fn http_host(&self, registry: &str, method: Method, path: &str) -> RequestBuilder {
        self.http(method, path).header(reqwest::header::HOST, self.login_server(registry))
    }

    pub fn with_creds(&self, rb: RequestBuilder) -> RequestBuilder {
        match self.creds() {
            Some((u, p)) => rb.basic_auth(u, Some(p)),
            None => rb,
        }
    }
}

/// How a test wants `wharf serve` started. Every setting left alone is the user's default.
#[derive(Default)]
pub struct ServerBuilder {
    ipv6: bool,
    port: Option<u16>,
    tls: bool,
    domain: Option<String>,
    flags: Vec<String>,
    env: Vec<(String, String)>,
    nofile: Option<u64>,
    data_dir: Option<PathBuf>,
}

impl ServerBuilder {
    /// Listen on `[::1]`, where nss-myhostname resolves `*.localhost` first: what the
    /// documented commands reach.
    pub fn ipv6(mut self) -> Self {
        self.ipv6 = true;
        self
    }

    /// Listen on this port (443 for clients that drop the port from the login authority, as
    /// MSAL's user-realm lookup does) instead of a free one.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Serve TLS with `--tls-self-signed`; clients trust [`TestServer::tls_ca`].
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// A registry domain other than the default `localhost` (`--domain`).
    pub fn domain(mut self, domain: &str) -> Self {
        self.domain = Some(domain.to_string());
        self
    }

    /// Extra `wharf serve` flags.
    pub fn flags(mut self, flags: &[&str]) -> Self {
        self.flags.extend(flags.iter().map(|f| f.to_string()));
        self
    }

    /// Extra environment variables (such as the storage's test-only hooks).
    pub fn env(mut self, vars: &[(&str, &str)]) -> Self {
        self.env.extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        self
    }

    /// At most `n` open files for the process (`RLIMIT_NOFILE`, soft and hard, set by
    /// util-linux `prlimit`).
    pub fn nofile(mut self, n: u64) -> Self {
        self.nofile = Some(n);
        self
    }

    /// An existing data directory (to restart after a crash) instead of a new temporary one.
    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }

    pub async fn start(self) -> TestServer {
        TestServer::launch(self).await
    }
}

fn free_port_v6() -> u16 {
    std::net::TcpListener::bind("[::1]:0").expect("bind an ephemeral v6 port").local_addr().unwrap().port()
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            let log = self.log_text();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("---- wharf log ({}) tail ----", self.log.display());
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A registry created through the management API, with data-plane helpers (path style).
pub struct Registry<'a> {
    pub server: &'a TestServer,
    pub name: String,
    pub rg: String,
}

/// Status, headers and body of a finished request.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: bytes::Bytes,
}

impl Reply {
    pub async fn from(r: Response) -> Reply {
        let status = r.status();
        let headers = r.headers().clone();
        let body = r.bytes().await.unwrap_or_default();
        Reply { status, headers, body }
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as text, cut to 500 characters (for assertion messages).
    pub fn text(&self) -> String {
        let t = String::from_utf8_lossy(&self.body);
        match t.char_indices().nth(500) {
            Some((i, _)) => format!("{}… ({} bytes)", &t[..i], self.body.len()),
            None => t.into_owned(),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// The first OCI error code of the body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"].as_str().unwrap_or_default().to_string()
    }

    /// Asserts status and OCI error code, and that the error has a non-empty message.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "expected {status} {code}, got {}: {}", self.status, self.text());
        let v = self.json();
        assert_eq!(v["errors"][0]["code"], code, "error body: {v}");
        assert!(v["errors"][0]["message"].as_str().is_some_and(|m| !m.is_empty()), "error without a message: {v}");
    }
}

pub async fn send(rb: RequestBuilder) -> Reply {
    Reply::from(rb.send().await.expect("request")).await
}

impl Registry<'_> {
    /// `{registry}/{repo}`: the path-style name of a repository.
    pub fn name_of(&self, repo: &str) -> String {
        format!("{}/{repo}", self.name)
    }

    pub fn v2(&self, method: Method, repo: &str, rest: &str) -> RequestBuilder {
        self.server.http(method, &format!("/v2/{}/{repo}/{rest}", self.name))
    }

    /// Monolithic upload (`POST ?digest=`); asserts 201 and returns the digest.
    pub async fn push_blob(&self, repo: &str, bytes: &[u8]) -> String {
        let d = sha256(bytes);
        let r = send(self.v2(Method::POST, repo, &format!("blobs/uploads/?digest={d}")).body(bytes.to_vec())).await;
        assert_eq!(r.status, StatusCode::CREATED, "pushing blob {d}: {}", String::from_utf8_lossy(&r.body));
        d
    }

    pub async fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Reply {
        send(
            self.v2(Method::PUT, repo, &format!("manifests/{reference}"))
                .header("content-type", media_type)
                .body(bytes.to_vec()),
        )
        .await
    }

    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Reply {
        send(
            self.v2(Method::GET, repo, &format!("manifests/{reference}"))
                .header("accept", format!("{OCI_MANIFEST}, {OCI_INDEX}, {DOCKER_MANIFEST}, {DOCKER_LIST}")),
        )
        .await
    }

    pub async fn get_blob(&self, repo: &str, digest: &str) -> Reply {
        send(self.v2(Method::GET, repo, &format!("blobs/{digest}"))).await
    }

    /// Pushes a small OCI image (config + one layer) and tags it; returns the manifest bytes
    /// and digest. `seed` makes its content unique.
    pub async fn push_image(&self, repo: &str, tag: &str, seed: &str) -> (Vec<u8>, String) {
        let img = TestImage::new(seed, "amd64");
        for (_, b) in img.blobs() {
            self.push_blob(repo, &b).await;
        }
        let r = self.put_manifest(repo, tag, OCI_MANIFEST, &img.manifest).await;
        assert_eq!(r.status, StatusCode::CREATED, "pushing manifest: {}", String::from_utf8_lossy(&r.body));
        assert_eq!(r.header("docker-content-digest"), Some(img.digest.as_str()));
        (img.manifest.clone(), img.digest.clone())
    }
}

/// A small OCI image made by hand: a JSON config, one uncompressed tar layer, a manifest.
#[derive(Clone)]
pub struct TestImage {
    pub config: Vec<u8>,
    pub layer: Vec<u8>,
    pub manifest: Vec<u8>,
    pub digest: String,
}

impl TestImage {
    pub fn new(seed: &str, arch: &str) -> TestImage {
        let layer = tar_with_file("hello.txt", format!("hello from {seed} ({arch})\n").as_bytes());
        let diff_id = sha256(&layer);
        let config = serde_json::to_vec(&json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/hello.txt"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created_by": format!("wharf tests {seed}")}],
        }))
        .unwrap();
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
            "layers": [{"mediaType": OCI_LAYER_TAR, "digest": diff_id, "size": layer.len()}],
        }))
        .unwrap();
        let digest = sha256(&manifest);
        TestImage { config, layer, manifest, digest }
    }

    pub fn blobs(&self) -> Vec<(String, Vec<u8>)> {
        vec![(sha256(&self.config), self.config.clone()), (sha256(&self.layer), self.layer.clone())]
    }

    /// Writes an OCI image layout at `dir` holding this image (and `others`) under `tag`s.
    pub fn write_layout(dir: &Path, entries: &[(&str, &[u8], &str)], blobs: &[Vec<u8>]) {
        let b = dir.join("blobs/sha256");
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        for blob in blobs {
            std::fs::write(b.join(&sha256(blob)[7..]), blob).unwrap();
        }
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(tag, bytes, mt)| {
                std::fs::write(b.join(&sha256(bytes)[7..]), bytes).unwrap();
                json!({"mediaType": mt, "digest": sha256(bytes), "size": bytes.len(),
                       "annotations": {"org.opencontainers.image.ref.name": tag}})
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }
}

/// A one-file ustar archive (uncompressed), built by hand.
pub fn tar_with_file(name: &str, content: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    let put = |h: &mut [u8; 512], off: usize, len: usize, v: &str| {
        let b = v.as_bytes();
        h[off..off + b.len()].copy_from_slice(b);
        let _ = len;
    };
    put(&mut h, 100, 8, "0000644\0");
    put(&mut h, 108, 8, "0000000\0");
    put(&mut h, 116, 8, "0000000\0");
    put(&mut h, 124, 12, &format!("{:011o}\0", content.len()));
    put(&mut h, 136, 12, &format!("{:011o}\0", 1_700_000_000u64));
    h[156] = b'0';
    put(&mut h, 257, 6, "ustar\0");
    put(&mut h, 263, 2, "00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| b as u32).sum();
    put(&mut h, 148, 8, &format!("{sum:06o}\0 "));
    let mut out = h.to_vec();
    out.extend_from_slice(content);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Runs an external command, returning (success, stdout, stderr), echoing failures.
pub fn run(cmd: &mut Command) -> (bool, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    if !out.status.success() {
        eprintln!("command failed: {cmd:?}\nstdout: {stdout}\nstderr: {stderr}");
    }
    (out.status.success(), stdout, stderr)
}

/// A raw HTTP/1.1 exchange on a fresh connection, for paths that HTTP client libraries would
/// normalise (`..`, `%2e%2e`) and for oversized heads. Returns (status, head, body).
pub fn raw_http(
    server: &TestServer,
    method: &str,
    path: &str,
    extra_headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(server.host()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.host(),
        body.len()
    );
    let own_authorization = extra_headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization"));
    if let Some((u, p)) = server.creds().filter(|_| !own_authorization) {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        head.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    // The server may answer and close before reading everything (e.g. 431): read while
    // writing, and ignore write errors.
    let mut reader = s.try_clone().expect("clone stream");
    let read = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = reader.read_to_end(&mut out);
        out
    });
    let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
    let out = read.join().expect("reader thread");
    let text_end = out.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4).unwrap_or(out.len());
    let head = String::from_utf8_lossy(&out[..text_end]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, head, out[text_end..].to_vec())
}

/// An OCI index over `children` (bytes, platform architecture).
pub fn oci_index(children: &[(&[u8], &str)]) -> Vec<u8> {
    let manifests: Vec<Value> = children
        .iter()
        .map(|(b, arch)| {
            json!({"mediaType": OCI_MANIFEST, "digest": sha256(b), "size": b.len(),
                                 "platform": {"architecture": arch, "os": "linux"}})
        })
        .collect();
    serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests})).unwrap()
}

/// The `wharf` CLI with a private profile directory, logged in to a test server.
pub struct Cli {
    pub config_dir: tempfile::TempDir,
    /// The CA of a TLS server, passed as `WHARF_CA_BUNDLE`.
    pub ca: Option<PathBuf>,
}

/// Result of one CLI run.
#[derive(Debug)]
pub struct CliRun {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl CliRun {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    #[track_caller]
    pub fn ok(self) -> CliRun {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self
    }
}

impl Cli {
    /// `wharf login --server URL` (with the harness's credentials once there are any).
    pub fn login(server: &TestServer) -> Cli {
        let cli = Cli { config_dir: tempfile::tempdir().expect("tempdir"), ca: server.tls_ca.clone() };
        let url = server.base();
        let mut args = vec!["login", "--server", url.as_str()];
        let creds = server.creds();
        if let Some((u, p)) = &creds {
            args.extend(["--username", u.as_str(), "--password", p.as_str()]);
        }
        let r = cli.run(&args);
        assert_eq!(r.code, 0, "wharf login failed: {r:?}");
        cli
    }

    pub fn run(&self, args: &[&str]) -> CliRun {
        self.run_env(args, &[])
    }

    /// [`Cli::run`] with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> CliRun {
        let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(args)
            .env("WHARF_CONFIG_DIR", self.config_dir.path())
            .env("WHARF_CA_BUNDLE", self.ca.as_deref().unwrap_or(Path::new("")))
            .env_remove("WHARF_OUTPUT")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run wharf");
        CliRun {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

// ---- helpers several test files share ----

/// A service principal made with `wharf ad sp create-for-rbac` (plus `extra` flags such as
/// `--role` and `--scopes`): (appId, secret, object id).
pub fn service_principal(cli: &Cli, name: &str, extra: &[&str]) -> (String, String, String) {
    let mut args = vec!["ad", "sp", "create-for-rbac", "--name", name];
    args.extend(extra);
    let sp = cli.run(&args).ok().json();
    let app = sp["appId"].as_str().expect("appId").to_string();
    let shown = cli.run(&["ad", "sp", "show", "--id", &app]).ok().json();
    (app, sp["password"].as_str().expect("password").to_string(), shown["id"].as_str().expect("id").to_string())
}

/// A service principal with Owner on the server's subscription: (appId, secret, object id).
pub fn owner_service_principal(s: &TestServer, cli: &Cli, name: &str) -> (String, String, String) {
    let scope = format!("/subscriptions/{}", s.subscription);
    service_principal(cli, name, &["--role", "Owner", "--scopes", &scope])
}

/// `wharf role assignment create` for the object id of a service principal (managed
/// identities included), with an ABAC condition (version 2.0) when given. Not checked: the
/// caller decides with `.ok()` or looks at a refusal.
pub fn assign(cli: &Cli, oid: &str, role: &str, scope: &str, condition: Option<&str>) -> CliRun {
    assign_to(cli, "ServicePrincipal", oid, role, scope, condition)
}

/// [`assign`] for a principal of any type (`ServicePrincipal`, `Group`, `User`).
pub fn assign_to(
    cli: &Cli,
    principal_type: &str,
    oid: &str,
    role: &str,
    scope: &str,
    condition: Option<&str>,
) -> CliRun {
    let mut args = vec![
        "role",
        "assignment",
        "create",
        "--assignee-object-id",
        oid,
        "--assignee-principal-type",
        principal_type,
        "--role",
        role,
        "--scope",
        scope,
    ];
    if let Some(c) = condition {
        args.extend(["--condition", c, "--condition-version", "2.0"]);
    }
    cli.run(&args)
}

/// A deterministic GUID-shaped name (role assignments), derived from `seed`.
pub fn uuid_like(seed: &str) -> String {
    let h = sha256(seed.as_bytes());
    let hex = &h["sha256:".len()..];
    format!("{}-{}-4{}-8{}-{}", &hex[0..8], &hex[8..12], &hex[13..16], &hex[17..20], &hex[20..32])
}

/// The claims of a compact JWT (not verified).
pub fn jwt_claims(token: &str) -> Value {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

/// The actions that the `access` claim of registry token claims grants on repository `repo`.
pub fn repository_actions(claims: &Value, repo: &str) -> Vec<String> {
    claims["access"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["type"] == "repository" && e["name"] == repo)
        .flat_map(|e| e["actions"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .collect()
}

// ---- directory tokens, Graph, the registry's token exchange ----

/// The scope of management tokens (az's, with its double slash).
pub const MGMT_SCOPE: &str = "https://management.core.windows.net//.default";
/// The scope of Microsoft Graph tokens.
pub const GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// The scope of container registry tokens (for `/oauth2/exchange`).
pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";

/// Sends `rb` (with `body` as JSON, if any): the status and the JSON answer (`Null` when
/// empty or not JSON).
async fn status_and_json(mut rb: RequestBuilder, body: Option<Value>) -> (StatusCode, Value) {
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The Entra-like token endpoint (`POST /{tenant}/oauth2/v2.0/token`) with `form`: the status
/// and the answer.
pub async fn entra_token(s: &TestServer, form: &[(&str, &str)]) -> (StatusCode, Value) {
    status_and_json(s.client().post(format!("{}/{}/oauth2/v2.0/token", s.base(), s.tenant())).form(form), None).await
}

/// A directory token for `scope` with the password grant.
pub async fn user_token(s: &TestServer, username: &str, password: &str, scope: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "password"),
        ("username", username),
        ("password", password),
        ("scope", scope),
        ("client_id", "wharf-tests"),
    ];
    entra_token(s, &form).await
}

/// A directory token for `scope` with client credentials.
pub async fn sp_token(s: &TestServer, app_id: &str, secret: &str, scope: &str) -> (StatusCode, Value) {
    let form =
        [("grant_type", "client_credentials"), ("client_id", app_id), ("client_secret", secret), ("scope", scope)];
    entra_token(s, &form).await
}

/// The bootstrap administrator's directory token for `scope` (checked): the whole answer.
pub async fn admin_token(s: &TestServer, scope: &str) -> Value {
    let a = s.admin().expect("bootstrap admin").clone();
    let (st, v) = user_token(s, &a.username, &a.password, scope).await;
    assert_eq!(st, StatusCode::OK, "password grant for {scope}: {v}");
    v
}

/// The bootstrap administrator's directory access token for `scope` (checked).
pub async fn admin_access_token(s: &TestServer, scope: &str) -> String {
    let v = admin_token(s, scope).await;
    v["access_token"].as_str().unwrap_or_else(|| panic!("no access_token: {v}")).to_string()
}

/// A service principal's directory access token for `scope` (checked).
pub async fn sp_access_token(s: &TestServer, app_id: &str, secret: &str, scope: &str) -> String {
    let (st, v) = sp_token(s, app_id, secret, scope).await;
    assert_eq!(st, StatusCode::OK, "client credentials for {scope}: {v}");
    v["access_token"].as_str().unwrap_or_else(|| panic!("no access_token: {v}")).to_string()
}

/// A request to `path` (management, Graph) with a bearer token: the status and the JSON answer
/// (`Null` when empty).
pub async fn bearer_call(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    status_and_json(s.client().request(method, format!("{}{path}", s.base())).bearer_auth(token), body).await
}

/// A Graph call (`/v1.0/{path}`) with a bearer token.
pub async fn graph(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    bearer_call(s, token, method, &format!("/v1.0/{path}"), body).await
}

/// `POST /oauth2/exchange` at the login server `service` with the directory token `aad`: the
/// status and the answer.
pub async fn exchange(s: &TestServer, service: &str, aad: &str) -> (StatusCode, Value) {
    status_and_json(s.exchange_request(s.client(), service, aad), None).await
}

/// The registry refresh token that [`exchange`] gives, `None` when it refuses.
pub async fn exchange_refresh(s: &TestServer, service: &str, aad: &str) -> Option<String> {
    match exchange(s, service, aad).await {
        (StatusCode::OK, v) => v["refresh_token"].as_str().map(str::to_string),
        _ => None,
    }
}

/// `POST /oauth2/token` at the login server `service` with a registry refresh token, for
/// `scope`: the status and the answer.
pub async fn refresh_grant(s: &TestServer, service: &str, scope: &str, refresh: &str) -> (StatusCode, Value) {
    status_and_json(s.refresh_grant_request(s.client(), service, scope, refresh), None).await
}

// ---- data plane ----

/// The status of a bodiless request to `path` with Basic credentials.
pub async fn basic_status(s: &TestServer, method: Method, path: &str, user: &str, pass: &str) -> StatusCode {
    s.client()
        .request(method, format!("{}{path}", s.base()))
        .basic_auth(user, Some(pass))
        .send()
        .await
        .unwrap()
        .status()
}

/// Status of a tag listing of `registry/repo` with Basic credentials (path style).
pub async fn list_tags(s: &TestServer, user: &str, pass: &str, registry: &str, repo: &str) -> StatusCode {
    basic_status(s, Method::GET, &format!("/v2/{registry}/{repo}/tags/list"), user, pass).await
}

/// `PATCH` of an upload session at `loc` with a chunk (and `Content-Range`, if given).
pub async fn patch(s: &TestServer, loc: &str, range: Option<&str>, body: &[u8]) -> Reply {
    let mut rb = s.http(Method::PATCH, loc).header("content-type", "application/octet-stream").body(body.to_vec());
    if let Some(r) = range {
        rb = rb.header("content-range", r);
    }
    send(rb).await
}

/// [`patch`] without a range, checked to be accepted: the session's next location.
pub async fn patch_accepted(s: &TestServer, loc: &str, body: &[u8]) -> String {
    let r = patch(s, loc, None, body).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    r.header("location").unwrap().to_string()
}

impl TestServer {
    /// `GET /oauth2/token` with Basic credentials for the given scopes (one `scope=` each) and
    /// `service`: the status and the answer.
    pub async fn registry_token(&self, user: &str, pass: &str, service: &str, scopes: &[&str]) -> (StatusCode, Value) {
        let mut query = vec![("service", service)];
        query.extend(scopes.iter().map(|s| ("scope", *s)));
        let r = self
            .client()
            .get(format!("{}/oauth2/token", self.base()))
            .query(&query)
            .basic_auth(user, Some(pass))
            .send()
            .await
            .expect("token request");
        let st = r.status();
        (st, r.json().await.unwrap_or(Value::Null))
    }

    /// The `access` claim of a registry token for `scopes` (empty when refused).
    pub async fn granted(&self, user: &str, pass: &str, service: &str, scopes: &[&str]) -> Vec<Value> {
        let (st, v) = self.registry_token(user, pass, service, scopes).await;
        match v["access_token"].as_str() {
            Some(t) if st == StatusCode::OK => jwt_claims(t)["access"].as_array().cloned().unwrap_or_default(),
            _ => vec![],
        }
    }
}

// ---- ACR Tasks: the engine and a base image built without the internet ----

/// buildah, podman and runc, which task runs need (like `require_tool`: fails in CI).
pub fn require_task_engine() -> bool {
    require_tool("buildah") && require_tool("podman") && require_tool("runc")
}

/// Pushes a busybox image — busybox-static's `/bin/busybox` in a scratch image, built with
/// buildah — to `registry` as `base/busybox:1` with the bootstrap administrator's credentials,
/// over TLS (trusting the server's CA) or plain HTTP as the server speaks; returns its reference.
pub fn push_busybox(s: &TestServer, registry: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("rootfs");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("/bin/busybox (busybox-static)");
    for tool in ["sh", "echo", "cat", "ls", "sleep", "printf", "mkdir", "touch", "date", "true", "false"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    let conf = dir.path().join("containers.conf");
    std::fs::write(&conf, "[engine]\nruntime = \"runc\"\n").unwrap();
    let transport = match &s.tls_ca {
        Some(ca) => {
            let certs = dir.path().join("certs");
            std::fs::create_dir_all(&certs).unwrap();
            std::fs::copy(ca, certs.join("ca.crt")).unwrap();
            format!("--cert-dir {}", certs.display())
        }
        None => "--tls-verify=false".to_string(),
    };
    let target = format!("{}/base/busybox:1", s.login_server(registry));
    let local = format!("localhost/wharf-test-busybox-{registry}:1");
    let script = format!(
        "set -e; c=$(buildah from scratch); buildah copy $c {root} / >/dev/null; buildah config --cmd '[\"/bin/sh\"]' --env PATH=/bin $c; \
         buildah commit --quiet $c {local} >/dev/null; buildah rm $c >/dev/null; \
         buildah push --quiet {transport} --creds '{creds}' {local} docker://{target}",
        root = root.display(),
        creds = s.creds_arg().expect("credentials")
    );
    let out = Command::new("sh").arg("-c").arg(&script).env("CONTAINERS_CONF", &conf).output().unwrap();
    assert!(out.status.success(), "base image for {registry}: {}", String::from_utf8_lossy(&out.stderr));
    target
}

/// A v1.1.0 task file whose first step writes a Dockerfile `FROM base` into the run's shared
/// working directory, then builds and pushes it as `$Registry/{image}`.
pub fn build_and_push_task(base: &str, image: &str) -> String {
    let dockerfile = format!("FROM {base}\\nRUN echo built > /built.txt\\nCMD [\\\"cat\\\", \\\"/built.txt\\\"]\\n");
    format!(
        "version: v1.1.0\nsteps:\n  - cmd: {base} sh -c 'printf \"%b\" \"$$DF\" > Dockerfile'\n    env: [\"DF={dockerfile}\"]\n  - build: -t $Registry/{image} .\n  - push: [\"$Registry/{image}\"]\n"
    )
}

/// A Debian `docker-registry` with htpasswd authentication on a free loopback port; stopped
/// when dropped.
pub struct ExternalRegistry {
    child: std::process::Child,
    pub host: String,
    _dir: tempfile::TempDir,
}

impl Drop for ExternalRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn external_registry(user: &str, password: &str) -> ExternalRegistry {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (apache2-utils)");
    assert!(out.status.success());
    std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = format!(
        "version: 0.1\nlog: {{level: warn}}\nstorage: {{filesystem: {{rootdirectory: {root}}}}}\nhttp: {{addr: 127.0.0.1:{port}}}\nauth: {{htpasswd: {{realm: ext, path: {pw}}}}}\n",
        root = dir.path().join("data").display(),
        pw = dir.path().join("htpasswd").display()
    );
    std::fs::write(dir.path().join("config.yml"), config).unwrap();
    let child = Command::new("docker-registry")
        .args(["serve", dir.path().join("config.yml").to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("docker-registry");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    ExternalRegistry { child, host: format!("127.0.0.1:{port}"), _dir: dir }
}

/// Waits for the run `run` of the registry at `reg` (its ARM path) to finish; returns it.
pub async fn run_finished(s: &TestServer, reg: &str, run: &str) -> Value {
    for _ in 0..900 {
        let (st, r) = s.mgmt(Method::GET, &format!("{reg}/runs/{run}?api-version=2025-03-01-preview"), None).await;
        assert_eq!(st, 200, "{r}");
        if matches!(r["properties"]["status"].as_str(), Some("Succeeded" | "Failed" | "Canceled" | "Error" | "Timeout"))
        {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("run {run} did not finish");
}

/// The log of a run, read through its `listLogSasUrl` link.
pub async fn run_log(s: &TestServer, reg: &str, run: &str) -> String {
    let (st, link) =
        s.mgmt(Method::POST, &format!("{reg}/runs/{run}/listLogSasUrl?api-version=2025-03-01-preview"), None).await;
    assert_eq!(st, 200, "{link}");
    reqwest::get(link["logLink"].as_str().unwrap()).await.unwrap().text().await.unwrap()
}
