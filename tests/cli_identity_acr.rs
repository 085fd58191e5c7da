//! `wharf acr login|credential|repository|manifest`: the data plane with the CLI's own
//! credentials (directory token → `/oauth2/exchange` → `/oauth2/token`), the containers/docker
//! auth file that skopeo then uses, and the admin user's credentials.

mod common;

use std::process::Command;

use base64::Engine;
use common::{Cli, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::Value;

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn repository_commands_over_the_data_plane() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("acrdata").await;
    let (_, d1) = reg.push_image("team/app", "v1", "one").await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let (_, d2) = reg.push_image("team/app", "v2", "two").await;
    reg.push_image("hello", "latest", "three").await;

    let repos = cli.run(&["acr", "repository", "list", "-n", "acrdata"]).ok().json();
    assert_eq!(strings(&repos), vec!["hello", "team/app"]);
    let top = cli.run(&["acr", "repository", "list", "-n", "acrdata", "--top", "1"]).ok().json();
    assert_eq!(strings(&top), vec!["hello"]);

    let repo = cli.run(&["acr", "repository", "show", "-n", "acrdata", "--repository", "team/app"]).ok().json();
    assert_eq!(repo["imageName"], "team/app");
    assert_eq!(repo["tagCount"], 2);
    let tag = cli.run(&["acr", "repository", "show", "-n", "acrdata", "--image", "team/app:v1"]).ok().json();
    assert_eq!(tag["tag"]["digest"], d1.as_str(), "{tag}");

    let tags = cli.run(&["acr", "repository", "show-tags", "-n", "acrdata", "--repository", "team/app"]).ok().json();
    assert_eq!(strings(&tags), vec!["v1", "v2"]);
    let newest = cli
        .run(&[
            "acr",
            "repository",
            "show-tags",
            "-n",
            "acrdata",
            "--repository",
            "team/app",
            "--orderby",
            "time_desc",
            "--top",
            "1",
        ])
        .ok()
        .json();
    assert_eq!(strings(&newest), vec!["v2"]);
    let oldest = cli
        .run(&[
            "acr",
            "repository",
            "show-tags",
            "-n",
            "acrdata",
            "--repository",
            "team/app",
            "--orderby",
            "time_asc",
            "--detail",
        ])
        .ok()
        .json();
    assert_eq!(oldest[0]["name"], "v1");
    assert_eq!(oldest[0]["digest"], d1.as_str());

    let manifests = cli
        .run(&[
            "acr",
            "repository",
            "show-manifests",
            "-n",
            "acrdata",
            "--repository",
            "team/app",
            "--orderby",
            "time_desc",
        ])
        .ok()
        .json();
    let first = &manifests[0];
    assert_eq!(first["digest"], d2.as_str(), "{manifests}");
    assert_eq!(first["tags"], serde_json::json!(["v2"]));
    assert!(first["timestamp"].is_string());
    let meta = cli
        .run(&[
            "acr",
            "manifest",
            "list-metadata",
            "-r",
            "acrdata",
            "-n",
            "team/app",
            "--orderby",
            "time_asc",
            "--top",
            "1",
        ])
        .ok()
        .json();
    assert_eq!(meta.as_array().unwrap().len(), 1);
    assert_eq!(meta[0]["digest"], d1.as_str());
    assert!(meta[0]["imageSize"].is_number() && meta[0]["changeableAttributes"].is_object(), "{meta}");

    // Changeable attributes of an image and of a repository (their enforcement is the data
    // plane's business, tested with it).
    let upd = cli
        .run(&["acr", "repository", "update", "-n", "acrdata", "--image", "team/app:v1", "--write-enabled", "false"])
        .ok()
        .json();
    assert_eq!(upd["tag"]["changeableAttributes"]["writeEnabled"], false, "{upd}");
    let upd = cli
        .run(&[
            "acr",
            "repository",
            "update",
            "-n",
            "acrdata",
            "--image",
            &format!("team/app@{d1}"),
            "--read-enabled",
            "false",
        ])
        .ok()
        .json();
    assert_eq!(upd["manifest"]["changeableAttributes"]["readEnabled"], false, "{upd}");
    let upd = cli
        .run(&[
            "acr",
            "repository",
            "update",
            "-n",
            "acrdata",
            "--repository",
            "hello",
            "--delete-enabled",
            "false",
            "--list-enabled",
            "false",
        ])
        .ok()
        .json();
    assert_eq!(upd["changeableAttributes"]["deleteEnabled"], false, "{upd}");
    assert_eq!(upd["changeableAttributes"]["listEnabled"], false, "{upd}");
    let shown = cli.run(&["acr", "repository", "show", "-n", "acrdata", "--repository", "hello"]).ok().json();
    assert_eq!(shown["changeableAttributes"]["deleteEnabled"], false, "{shown}");
    cli.run(&[
        "acr",
        "repository",
        "update",
        "-n",
        "acrdata",
        "--repository",
        "hello",
        "--delete-enabled",
        "true",
        "--list-enabled",
        "true",
    ])
    .ok();
    cli.run(&[
        "acr",
        "repository",
        "update",
        "-n",
        "acrdata",
        "--image",
        &format!("team/app@{d1}"),
        "--read-enabled",
        "true",
    ])
    .ok();

    // untag keeps the manifest; delete --image removes the manifest and its tags.
    cli.run(&["acr", "repository", "update", "-n", "acrdata", "--image", "team/app:v1", "--write-enabled", "true"])
        .ok();
    cli.run(&["acr", "repository", "untag", "-n", "acrdata", "--image", "team/app:v1"]).ok();
    let tags = cli.run(&["acr", "repository", "show-tags", "-n", "acrdata", "--repository", "team/app"]).ok().json();
    assert_eq!(strings(&tags), vec!["v2"]);
    let manifests =
        cli.run(&["acr", "repository", "show-manifests", "-n", "acrdata", "--repository", "team/app"]).ok().json();
    assert_eq!(manifests.as_array().unwrap().len(), 2);
    let r = cli.run(&["acr", "repository", "delete", "-n", "acrdata", "--image", "team/app:v2"]);
    assert_eq!(r.code, 2, "no tty and no --yes is a usage error: {r:?}");
    cli.run(&["acr", "repository", "delete", "-n", "acrdata", "--image", "team/app:v2", "--yes"]).ok();
    let manifests =
        cli.run(&["acr", "repository", "show-manifests", "-n", "acrdata", "--repository", "team/app"]).ok().json();
    assert_eq!(manifests.as_array().unwrap().len(), 1);
    cli.run(&["acr", "repository", "delete", "-n", "acrdata", "--repository", "hello", "--yes"]).ok();
    let r = cli.run(&["acr", "repository", "show", "-n", "acrdata", "--repository", "hello"]);
    assert_eq!(r.code, 3, "{r:?}");
    let repos = cli.run(&["acr", "repository", "list", "-n", "acrdata"]).ok().json();
    assert_eq!(strings(&repos), vec!["team/app"]);
    let r = cli.run(&["acr", "repository", "list", "-n", "nosuchregistry"]);
    assert_eq!(r.code, 3);
}

#[tokio::test]
async fn acr_login_writes_the_auth_file_and_exposes_tokens() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("loginreg").await;
    reg.push_image("hello", "v1", "login").await;
    let login_server = s.login_server("loginreg");

    let r = cli.run(&["acr", "login", "-n", "loginreg", "--expose-token"]).ok();
    let v = r.json();
    assert_eq!(v["loginServer"], login_server.as_str());
    assert_eq!(v["username"], "00000000-0000-0000-0000-000000000000");
    assert!(
        r.stderr.contains("docker login loginServer -u 00000000-0000-0000-0000-000000000000 -p accessToken"),
        "{}",
        r.stderr
    );
    let token = v["accessToken"].as_str().unwrap().to_string();
    // The refresh token works as the null-GUID password (Basic) on the login server.
    let resp = s
        .client()
        .get(format!("{}/v2/hello/tags/list", s.base()))
        .header("host", &login_server)
        .basic_auth("00000000-0000-0000-0000-000000000000", Some(&token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    // Without --expose-token: merged into the auth file, other entries kept.
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    std::fs::write(&auth, r#"{"auths":{"other.example":{"auth":"dXNlcjpwYXNz"}},"credHelpers":{"x.example":"y"}}"#)
        .unwrap();
    let auth_s = auth.to_str().unwrap();
    let r = cli.run_env(&["acr", "login", "-n", "loginreg"], &[("REGISTRY_AUTH_FILE", auth_s)]).ok();
    assert!(r.stdout.contains("Login Succeeded"), "{r:?}");
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&auth).unwrap()).unwrap();
    assert_eq!(file["auths"]["other.example"]["auth"], "dXNlcjpwYXNz");
    assert_eq!(file["credHelpers"]["x.example"], "y");
    let entry = &file["auths"][login_server.as_str()];
    let decoded = base64::engine::general_purpose::STANDARD.decode(entry["auth"].as_str().unwrap()).unwrap();
    assert_eq!(decoded, b"00000000-0000-0000-0000-000000000000:");
    assert!(entry["identitytoken"].as_str().is_some_and(|t| t.split('.').count() == 3), "{entry}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&auth).unwrap().permissions().mode() & 0o077, 0, "the auth file is private");
    }

    // skopeo pulls with it, without credentials on its command line.
    if common::require_tool("skopeo") {
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", &format!("docker://{login_server}/hello:v1")])
            .env("REGISTRY_AUTH_FILE", auth_s)
            .output()
            .unwrap();
        assert!(out.status.success(), "skopeo inspect with the auth file: {}", String::from_utf8_lossy(&out.stderr));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["Name"], format!("{login_server}/hello"), "{v}");
        // And without the auth file it is refused.
        let empty = dir.path().join("empty.json");
        std::fs::write(&empty, "{}").unwrap();
        let out = Command::new("skopeo")
            .args(["inspect", "--tls-verify=false", &format!("docker://{login_server}/hello:v1")])
            .env("REGISTRY_AUTH_FILE", &empty)
            .output()
            .unwrap();
        assert!(!out.status.success());
    }

    // DOCKER_CONFIG is honoured when REGISTRY_AUTH_FILE is not set.
    let docker_dir = dir.path().join("docker");
    cli.run_env(&["acr", "login", "-n", "loginreg"], &[("DOCKER_CONFIG", docker_dir.to_str().unwrap())]).ok();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(docker_dir.join("config.json")).unwrap()).unwrap();
    assert!(file["auths"][login_server.as_str()]["identitytoken"].is_string());
}

#[tokio::test]
async fn admin_user_credentials() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("adminreg").await;
    reg.push_image("hello", "v1", "admin").await;

    let r = cli.run(&["acr", "credential", "show", "-n", "adminreg"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("AdminUserDisabled"), "{}", r.stderr);
    cli.run(&["acr", "update", "-n", "adminreg", "--admin-enabled", "true"]).ok();
    let creds = cli.run(&["acr", "credential", "show", "-n", "adminreg"]).ok().json();
    assert_eq!(creds["username"], "adminreg");
    let names: Vec<&str> = creds["passwords"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["password", "password2"]);
    let p1 = creds["passwords"][0]["value"].as_str().unwrap().to_string();
    let p2 = creds["passwords"][1]["value"].as_str().unwrap().to_string();

    let pull = |password: String| {
        let s = &s;
        async move {
            s.client()
                .get(format!("{}/v2/hello/tags/list", s.base()))
                .header("host", s.login_server("adminreg"))
                .basic_auth("adminreg", Some(password))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(pull(p1.clone()).await, StatusCode::OK);
    assert_eq!(pull(p2.clone()).await, StatusCode::OK);

    let renewed =
        cli.run(&["acr", "credential", "renew", "-n", "adminreg", "--password-name", "password2"]).ok().json();
    assert_eq!(renewed["passwords"][0]["value"], p1.as_str());
    let new2 = renewed["passwords"][1]["value"].as_str().unwrap().to_string();
    assert_ne!(new2, p2);
    assert_eq!(pull(p2).await, StatusCode::UNAUTHORIZED);
    assert_eq!(pull(new2).await, StatusCode::OK);

    // acr login with the admin user writes Basic credentials.
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("auth.json");
    cli.run_env(
        &["acr", "login", "-n", "adminreg", "-u", "adminreg", "-p", &p1],
        &[("REGISTRY_AUTH_FILE", auth.to_str().unwrap())],
    )
    .ok();
    let file: Value = serde_json::from_str(&std::fs::read_to_string(&auth).unwrap()).unwrap();
    let entry = &file["auths"][s.login_server("adminreg").as_str()];
    let decoded = base64::engine::general_purpose::STANDARD.decode(entry["auth"].as_str().unwrap()).unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), format!("adminreg:{p1}"));

    // Disabling the admin user stops its passwords.
    cli.run(&["acr", "update", "-n", "adminreg", "--admin-enabled", "false"]).ok();
    let (st, _) =
        s.mgmt(Method::POST, &format!("{}/listCredentials", s.registry_path("rg-adminreg", "adminreg")), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(pull(p1).await, StatusCode::UNAUTHORIZED);
}
