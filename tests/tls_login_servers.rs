//! The local CA's certificates on the defaults (issue 10 item 9): `wharf serve
//! --tls-self-signed` without `--domain`, and the commands of `docs/operations.md` as written —
//! curl with `--cacert`, Python's `ssl`/`urllib` and `requests` with the CA file, skopeo with a
//! certificate directory and `--tls-verify=true` — against the host-style login server
//! `myregistry.localhost:PORT`. nss-myhostname answers `*.localhost` with `::1` first, so the
//! server listens on `[::1]`.

mod common;

use std::path::Path;
use std::process::Command;

use common::{OCI_MANIFEST, TestImage, TestServer, require_tool, require_tool_in_ci, require_venv_python, run};
use serde_json::Value;

/// `curl --cacert wharf-data/tls/ca.crt https://myregistry.localhost:5000/v2/`, with this
/// server's CA file and port. Returns (exit code, stdout, stderr).
fn curl(ca: &Path, url: &str) -> (i32, String, String) {
    let out = Command::new("curl").arg("--cacert").arg(ca).arg(url).output().expect("run curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn curl_verifies_every_login_server_on_the_default_domain() {
    if !require_tool("curl") {
        return;
    }
    let s = TestServer::builder().tls().ipv6().start().await;
    assert_eq!(s.domain, "localhost");
    s.registry("myregistry").await;
    let ca = s.tls_ca.clone().unwrap();

    // The documented command, verbatim but for the CA's path and the port.
    let (code, out, err) = curl(&ca, &format!("https://myregistry.localhost:{}/v2/", s.port));
    assert_eq!(code, 0, "curl refused the login server's certificate: {err}");
    assert!(out.contains("UNAUTHORIZED"), "the registry answered: {out}");

    // Registries that do not exist (yet): the certificate is for the name's shape, not for
    // what exists, so a registry created later is served at once.
    for name in ["latecomer", "nosuchregistry"] {
        let (code, _, err) = curl(&ca, &format!("https://{name}.localhost:{}/v2/", s.port));
        assert_eq!(code, 0, "{name}: {err}");
    }
    // The management endpoint by IP (no SNI) and by `localhost`.
    for host in ["[::1]", "localhost"] {
        let (code, out, err) = curl(&ca, &format!("https://{host}:{}/metadata/endpoints", s.port));
        assert_eq!(code, 0, "{host}: {err}");
        assert!(out.contains("resourceManager"), "{out}");
    }
    // A name that cannot be a login server of this deployment gets no certificate for it:
    // curl refuses (exit 60: the peer certificate cannot be authenticated).
    for bad in ["my-registry.localhost", "abc.localhost", "a.myregistry.localhost"] {
        let (code, _, err) = curl(&ca, &format!("https://{bad}:{}/v2/", s.port));
        assert_eq!(code, 60, "{bad} must not verify: {err}");
    }
}

/// Another domain (`--domain`, two labels) gets the same per-name certificates.
#[tokio::test]
async fn curl_verifies_login_servers_of_another_domain() {
    if !require_tool("curl") {
        return;
    }
    let s = TestServer::builder().tls().domain("wharf.localhost").start().await;
    s.registry("myregistry").await;
    let (code, out, err) =
        curl(s.tls_ca.as_ref().unwrap(), &format!("https://myregistry.wharf.localhost:{}/v2/", s.port));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("UNAUTHORIZED"), "{out}");
    let (code, _, err) = curl(s.tls_ca.as_ref().unwrap(), &format!("https://myregistry.localhost:{}/v2/", s.port));
    assert_eq!(code, 60, "a name outside the domain must not verify: {err}");
}

#[tokio::test]
async fn python_ssl_and_requests_verify_a_login_server_on_the_default_domain() {
    let Some(python) = require_venv_python() else { return };
    let s = TestServer::builder().tls().ipv6().start().await;
    s.registry("myregistry").await;
    let ca = s.tls_ca.clone().unwrap();
    let url = format!("https://myregistry.localhost:{}/v2/", s.port);
    // Python's own TLS (OpenSSL, as az and the Azure SDKs use it) with the CA file.
    let script = r#"
import json, os, ssl, sys, urllib.error, urllib.request
import requests
url, ca = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
try:
    urllib.request.urlopen(url, context=ctx)
    status = 200
except urllib.error.HTTPError as e:
    status = e.code
r = requests.get(url)  # REQUESTS_CA_BUNDLE names the CA, as docs/operations.md says
print(json.dumps({"urllib": status, "requests": r.status_code}))
"#;
    let mut c = Command::new(&python);
    c.args(["-c", script, &url]).arg(&ca).env("REQUESTS_CA_BUNDLE", &ca).env("NO_PROXY", "*");
    let (ok, out, err) = run(&mut c);
    assert!(ok, "python refused the certificate: {err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v, serde_json::json!({"urllib": 401, "requests": 401}));
}

#[tokio::test]
async fn skopeo_pushes_to_a_login_server_on_the_default_domain_with_verification() {
    if !require_tool("skopeo") {
        return;
    }
    let s = TestServer::builder().tls().ipv6().start().await;
    s.registry("myregistry").await;
    let scratch = tempfile::tempdir().unwrap();
    // What `/etc/containers/certs.d/myregistry.localhost:5000/ca.crt` holds, as a directory
    // given on the command line.
    let certs = scratch.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::copy(s.tls_ca.as_ref().unwrap(), certs.join("ca.crt")).unwrap();
    let layout = scratch.path().join("layout");
    let img = TestImage::new("tls-default-domain", "amd64");
    TestImage::write_layout(
        &layout,
        &[("v1", &img.manifest[..], OCI_MANIFEST)],
        &[img.config.clone(), img.layer.clone()],
    );
    let auth = scratch.path().join("auth.json");
    std::fs::write(&auth, "{}").unwrap();
    let dest = format!("docker://myregistry.localhost:{}/hello/world:v1", s.port);
    let creds = s.creds_arg().unwrap();
    let mut c = Command::new("skopeo");
    c.env("REGISTRY_AUTH_FILE", &auth).args(["copy", "--preserve-digests", "--dest-tls-verify=true"]);
    c.arg("--dest-cert-dir").arg(&certs).args(["--dest-creds", &creds]);
    c.arg(format!("oci:{}:v1", layout.display())).arg(&dest);
    let (ok, _, err) = run(&mut c);
    assert!(ok, "skopeo copy with verification: {err}");
    let mut c = Command::new("skopeo");
    c.env("REGISTRY_AUTH_FILE", &auth).args(["inspect", "--raw", "--tls-verify=true"]);
    c.arg("--cert-dir").arg(&certs).args(["--creds", &creds]).arg(&dest);
    let (ok, raw, err) = run(&mut c);
    assert!(ok, "skopeo inspect with verification: {err}");
    assert_eq!(common::sha256(raw.as_bytes()), img.digest);
}

/// The harness's rule for external clients: in CI (`CI=true`) a missing one fails the test
/// instead of skipping it.
#[test]
fn a_missing_client_fails_in_ci_and_is_skipped_elsewhere() {
    let missing = "wharf-no-such-client-anywhere";
    assert!(!require_tool_in_ci(missing, false), "skipped outside CI");
    let in_ci = std::panic::catch_unwind(|| require_tool_in_ci(missing, true));
    let message = in_ci.expect_err("a missing client must fail in CI");
    let text = message.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("required in CI"), "{text}");
    assert!(require_tool_in_ci("sh", true), "a client that is installed is used");
}
