//! Directory groups end to end: `wharf ad group …` with az's flags and shapes, role assignments
//! to a group reaching its members (nested groups and cycles included) at the registry token
//! endpoint, on the data plane with skopeo, and in management authorization; membership changes
//! taking effect on the next request; a conditional ABAC assignment to a group; Graph's error
//! shapes; and directory writes refused to principals without the right.

mod common;

use common::{
    Cli, GRAPH_SCOPE, TestServer, admin_access_token, assign_to, graph, jwt_claims, list_tags, repository_actions,
    require_tool, run, service_principal, sp_access_token,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The actions a registry access token grants on `repo` of `registry`, asked for with Basic
/// credentials at `/oauth2/token` (path style).
async fn token_actions(
    s: &TestServer,
    user: &str,
    pass: &str,
    registry: &str,
    repo: &str,
    actions: &str,
) -> Vec<String> {
    let scope = format!("repository:{registry}/{repo}:{actions}");
    let (st, v) = s.registry_token(user, pass, &s.host(), &[&scope]).await;
    assert_eq!(st, StatusCode::OK, "token request for {repo}");
    repository_actions(&jwt_claims(v["access_token"].as_str().expect("an access token")), repo)
}

/// Whether skopeo can copy `repo:v1` out of the registry with these credentials.
fn skopeo_pull(s: &TestServer, user: &str, pass: &str, registry: &str, repo: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let dest = format!("oci:{}/img:v1", dir.path().display());
    let (ok, _, err) = run(std::process::Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        &format!("{user}:{pass}"),
        &format!("docker://{}/{registry}/{repo}:v1", s.host()),
        &dest,
    ]));
    (ok, err)
}

fn member_check(cli: &Cli, group: &str, member: &str) -> Value {
    cli.run(&["ad", "group", "member", "check", "--group", group, "--member-id", member]).ok().json()
}

#[tokio::test]
async fn group_assignments_reach_members_nested_groups_and_membership_changes() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("grpreg").await;
    reg.push_image("hello/app", "v1", "hello").await;
    let rid = cli.run(&["acr", "show", "-n", "grpreg", "--query", "id", "-o", "tsv"]).ok().stdout.trim().to_string();

    // Create: az's shape, without @odata.context; again without --force returns the same group.
    let created = cli
        .run(&[
            "ad",
            "group",
            "create",
            "--display-name",
            "Registry Pullers",
            "--mail-nickname",
            "pullers",
            "--description",
            "may pull",
        ])
        .ok()
        .json();
    let gid = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["displayName"], "Registry Pullers");
    assert_eq!(created["mailNickname"], "pullers");
    assert_eq!(created["description"], "may pull");
    assert_eq!(created["securityEnabled"], true);
    assert_eq!(created["mailEnabled"], false);
    assert!(created["createdDateTime"].as_str().is_some_and(|d| d.ends_with('Z')), "{created}");
    assert!(created["securityIdentifier"].as_str().is_some_and(|s| s.starts_with("S-1-12-1-")), "{created}");
    assert!(created.get("@odata.context").is_none(), "{created}");
    let again =
        cli.run(&["ad", "group", "create", "--display-name", "Registry Pullers", "--mail-nickname", "pullers"]).ok();
    assert_eq!(again.json()["id"], gid.as_str());
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);

    // --group takes an object id, an exact display name, or a unique prefix.
    for g in [gid.as_str(), "Registry Pullers", "Registry P"] {
        assert_eq!(cli.run(&["ad", "group", "show", "--group", g]).ok().json()["id"], gid.as_str(), "{g}");
    }
    let listed = cli.run(&["ad", "group", "list", "--display-name", "Registry"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    let filtered = cli.run(&["ad", "group", "list", "--filter", "mailNickname eq 'pullers'"]).ok().json();
    assert_eq!(filtered[0]["id"], gid.as_str(), "{filtered}");

    // One service principal in the group, one outside it.
    let (member, member_secret, member_oid) = service_principal(&cli, "member-sp", &[]);
    let (outsider, outsider_secret, outsider_oid) = service_principal(&cli, "outsider-sp", &[]);
    assert!(
        cli.run(&["ad", "group", "member", "add", "--group", "Registry Pullers", "--member-id", &member_oid])
            .ok()
            .stdout
            .trim()
            .is_empty()
    );
    let members = cli.run(&["ad", "group", "member", "list", "--group", &gid]).ok().json();
    assert_eq!(members.as_array().unwrap().len(), 1, "{members}");
    assert_eq!(members[0]["id"], member_oid.as_str());
    assert_eq!(members[0]["@odata.type"], "#microsoft.graph.servicePrincipal");
    assert_eq!(member_check(&cli, &gid, &member_oid), json!({"value": true}));
    assert_eq!(member_check(&cli, &gid, &outsider_oid), json!({"value": false}));

    // Before any assignment the member gets nothing.
    assert!(token_actions(&s, &member, &member_secret, "grpreg", "hello/app", "pull").await.is_empty());

    // AcrPull to the group, named by its object id: resolved as a Group through getByIds.
    let assignment = cli
        .run(&["role", "assignment", "create", "--assignee", &gid, "--role", "AcrPull", "--scope", &rid])
        .ok()
        .json();
    assert_eq!(assignment["principalType"], "Group", "{assignment}");
    assert_eq!(token_actions(&s, &member, &member_secret, "grpreg", "hello/app", "pull,push").await, vec!["pull"]);
    assert!(token_actions(&s, &outsider, &outsider_secret, "grpreg", "hello/app", "pull").await.is_empty());
    assert_eq!(list_tags(&s, &member, &member_secret, "grpreg", "hello/app").await, StatusCode::OK);
    assert_eq!(list_tags(&s, &outsider, &outsider_secret, "grpreg", "hello/app").await, StatusCode::UNAUTHORIZED);
    if require_tool("skopeo") {
        let (ok, err) = skopeo_pull(&s, &member, &member_secret, "grpreg", "hello/app");
        assert!(ok, "a group member should pull with skopeo: {err}");
        let (ok, err) = skopeo_pull(&s, &outsider, &outsider_secret, "grpreg", "hello/app");
        assert!(!ok && err.contains("authentication required"), "{err}");
    }

    // Nesting: the outsider joins an inner group that is a member of the pullers.
    let inner =
        cli.run(&["ad", "group", "create", "--display-name", "Inner Team", "--mail-nickname", "inner"]).ok().json();
    let inner_id = inner["id"].as_str().unwrap().to_string();
    cli.run(&["ad", "group", "member", "add", "--group", "Inner Team", "--member-id", &outsider_oid]).ok();
    assert!(
        token_actions(&s, &outsider, &outsider_secret, "grpreg", "hello/app", "pull").await.is_empty(),
        "not yet nested"
    );
    cli.run(&["ad", "group", "member", "add", "--group", &gid, "--member-id", &inner_id]).ok();
    assert_eq!(token_actions(&s, &outsider, &outsider_secret, "grpreg", "hello/app", "pull").await, vec!["pull"]);
    assert_eq!(member_check(&cli, &gid, &outsider_oid), json!({"value": true}), "membership checks are transitive");
    let pullers_members = cli.run(&["ad", "group", "member", "list", "--group", &gid]).ok().json();
    assert!(
        pullers_members
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["@odata.type"] == "#microsoft.graph.group" && m["id"] == inner_id.as_str()),
        "{pullers_members}"
    );
    assert_eq!(cli.run(&["ad", "group", "get-member-groups", "--group", &inner_id]).ok().json(), json!([gid]));

    // A cycle (the pullers inside the inner team) changes nothing and does not hang.
    cli.run(&["ad", "group", "member", "add", "--group", &inner_id, "--member-id", &gid]).ok();
    assert_eq!(token_actions(&s, &outsider, &outsider_secret, "grpreg", "hello/app", "pull").await, vec!["pull"]);
    assert_eq!(token_actions(&s, &member, &member_secret, "grpreg", "hello/app", "pull").await, vec!["pull"]);
    let mut groups_of_member: Vec<String> = cli
        .run(&["ad", "group", "get-member-groups", "--group", &gid])
        .ok()
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    groups_of_member.sort();
    assert_eq!(groups_of_member, vec![inner_id.clone()], "a group in a cycle is not reported as its own member group");
    cli.run(&["ad", "group", "member", "remove", "--group", &inner_id, "--member-id", &gid]).ok();

    // Removing members revokes access for the next token, not after a restart.
    cli.run(&["ad", "group", "member", "remove", "--group", &gid, "--member-id", &inner_id]).ok();
    assert!(token_actions(&s, &outsider, &outsider_secret, "grpreg", "hello/app", "pull").await.is_empty());
    assert_eq!(list_tags(&s, &outsider, &outsider_secret, "grpreg", "hello/app").await, StatusCode::UNAUTHORIZED);
    assert_eq!(member_check(&cli, &gid, &outsider_oid), json!({"value": false}));
    cli.run(&["ad", "group", "member", "remove", "--group", "Registry Pullers", "--member-id", &member_oid]).ok();
    assert!(token_actions(&s, &member, &member_secret, "grpreg", "hello/app", "pull").await.is_empty());
    assert_eq!(list_tags(&s, &member, &member_secret, "grpreg", "hello/app").await, StatusCode::UNAUTHORIZED);
    if require_tool("skopeo") {
        let (ok, err) = skopeo_pull(&s, &member, &member_secret, "grpreg", "hello/app");
        assert!(!ok, "a removed member still pulls: {err}");
    }
    assert!(cli.run(&["ad", "group", "member", "list", "--group", &gid]).ok().json().as_array().unwrap().is_empty());

    // Joining again restores access; deleting the group removes it for good.
    cli.run(&["ad", "group", "member", "add", "--group", &gid, "--member-id", &member_oid]).ok();
    assert_eq!(token_actions(&s, &member, &member_secret, "grpreg", "hello/app", "pull").await, vec!["pull"]);
    cli.run(&["ad", "group", "delete", "--group", "Registry Pullers"]).ok();
    assert!(token_actions(&s, &member, &member_secret, "grpreg", "hello/app", "pull").await.is_empty());
    assert_eq!(cli.run(&["ad", "group", "show", "--group", &gid]).code, 3);
    let r = cli.run(&["ad", "group", "show", "--group", "Registry Pullers"]);
    assert_eq!(r.code, 3, "{r:?}");
    assert!(r.stderr.contains("No group matches the name of 'Registry Pullers'"), "{}", r.stderr);
}

const READ_GUARDS: &str = "!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'}) AND !(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/metadata/read'})";

#[tokio::test]
async fn conditional_abac_assignment_to_a_group_and_management_access_through_a_group() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let reg = s.registry("abacgrp").await;
    reg.push_image("team/app", "v1", "team").await;
    reg.push_image("other/app", "v1", "other").await;
    let rid = cli.run(&["acr", "show", "-n", "abacgrp", "--query", "id", "-o", "tsv"]).ok().stdout.trim().to_string();
    cli.run(&["acr", "update", "-n", "abacgrp", "--role-assignment-mode", "rbac-abac"]).ok();

    let group = cli
        .run(&["ad", "group", "create", "--display-name", "team readers", "--mail-nickname", "team-readers"])
        .ok()
        .json();
    let gid = group["id"].as_str().unwrap().to_string();
    let (app, secret, oid) = service_principal(&cli, "team-sp", &[]);
    cli.run(&["ad", "group", "member", "add", "--group", &gid, "--member-id", &oid]).ok();

    // Repository Reader for the group, limited to team/ by a condition.
    let condition = format!(
        "(({READ_GUARDS}) OR (@Request[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase 'team/'))"
    );
    assign_to(&cli, "Group", &gid, "Container Registry Repository Reader", &rid, Some(&condition)).ok();
    assert_eq!(token_actions(&s, &app, &secret, "abacgrp", "team/app", "pull").await, vec!["pull"]);
    assert!(token_actions(&s, &app, &secret, "abacgrp", "other/app", "pull").await.is_empty());
    assert_eq!(list_tags(&s, &app, &secret, "abacgrp", "team/app").await, StatusCode::OK);
    assert_eq!(list_tags(&s, &app, &secret, "abacgrp", "other/app").await, StatusCode::UNAUTHORIZED);
    let explained = cli
        .run(&[
            "acr",
            "check-access",
            "-n",
            "abacgrp",
            "--assignee",
            &app,
            "--repository",
            "other/app",
            "--action",
            "pull",
        ])
        .ok()
        .json();
    assert_eq!(explained["allowed"], false, "{explained}");
    if require_tool("skopeo") {
        let (ok, err) = skopeo_pull(&s, &app, &secret, "abacgrp", "team/app");
        assert!(ok, "{err}");
        let (ok, err) = skopeo_pull(&s, &app, &secret, "abacgrp", "other/app");
        assert!(!ok && err.contains("authentication required"), "{err}");
    }

    // Management authorization through the group: Reader on the registry lets the member read it.
    assign_to(&cli, "Group", &gid, "Reader", &rid, None).ok();
    let tenant = s.admin().unwrap().tenant.clone();
    let sp_cli = Cli { config_dir: tempfile::tempdir().unwrap(), ca: None };
    sp_cli
        .run(&["login", "--server", &s.base(), "--service-principal", "-u", &app, "-p", &secret, "--tenant", &tenant])
        .ok();
    assert_eq!(sp_cli.run(&["acr", "show", "-n", "abacgrp", "-g", "rg-abacgrp"]).ok().json()["id"], rid.as_str());

    // A managed identity's service principal can be a member too.
    cli.run(&["identity", "create", "-g", "rg-abacgrp", "-n", "builder"]).ok();
    let mi = cli.run(&["identity", "show", "-g", "rg-abacgrp", "-n", "builder"]).ok().json();
    let mi_oid = mi["principalId"].as_str().unwrap().to_string();
    cli.run(&["ad", "group", "member", "add", "--group", &gid, "--member-id", &mi_oid]).ok();
    let members = cli.run(&["ad", "group", "member", "list", "--group", &gid]).ok().json();
    let mi_member =
        members.as_array().unwrap().iter().find(|m| m["id"] == mi_oid.as_str()).unwrap_or_else(|| panic!("{members}"));
    assert_eq!(mi_member["servicePrincipalType"], "ManagedIdentity");
    assert_eq!(member_check(&cli, &gid, &mi_oid), json!({"value": true}));

    // Removal takes both away on the next request.
    cli.run(&["ad", "group", "member", "remove", "--group", &gid, "--member-id", &oid]).ok();
    assert!(token_actions(&s, &app, &secret, "abacgrp", "team/app", "pull").await.is_empty());
    let denied = sp_cli.run(&["acr", "show", "-n", "abacgrp", "-g", "rg-abacgrp"]);
    assert_ne!(denied.code, 0, "{denied:?}");
    assert!(denied.stderr.contains("AuthorizationFailed"), "{}", denied.stderr);
}

#[track_caller]
fn assert_graph_error(reply: &(StatusCode, Value), status: StatusCode, code: &str) {
    assert_eq!(reply.0, status, "{}", reply.1);
    assert_eq!(reply.1["error"]["code"], code, "{}", reply.1);
    assert!(reply.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", reply.1);
    assert!(reply.1["error"]["innerError"]["request-id"].is_string(), "{}", reply.1);
}

#[tokio::test]
async fn graph_group_shapes_errors_and_who_may_change_groups() {
    let s = TestServer::start().await;
    let admin = s.admin().unwrap().clone();
    let token = admin_access_token(&s, GRAPH_SCOPE).await;

    let (st, g) = graph(
        &s,
        &token,
        Method::POST,
        "groups",
        Some(json!({"displayName": "ops", "mailNickname": "ops", "securityEnabled": true, "mailEnabled": false})),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    assert!(g["@odata.context"].as_str().is_some_and(|c| c.ends_with("$metadata#groups/$entity")), "{g}");
    let gid = g["id"].as_str().unwrap().to_string();
    let (st, got) = graph(&s, &token, Method::GET, &format!("groups/{gid}"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(got["displayName"], "ops");
    let (st, list) = graph(&s, &token, Method::GET, "groups?$filter=startswith(displayName,'op')", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(list["value"].as_array().unwrap().len(), 1, "{list}");
    let (st, list) = graph(&s, &token, Method::GET, "groups?$filter=displayName eq 'nope'", None).await;
    assert_eq!(st, StatusCode::OK);
    assert!(list["value"].as_array().unwrap().is_empty());

    // getByIds knows groups.
    let (st, objs) =
        graph(&s, &token, Method::POST, "directoryObjects/getByIds", Some(json!({"ids": [gid], "types": ["group"]})))
            .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(objs["value"][0]["@odata.type"], "#microsoft.graph.group", "{objs}");

    // Errors in Graph's shape.
    let unknown = "6c0f5d2e-9b1a-4c3e-8f7d-000000000404".to_string();
    assert_graph_error(
        &graph(&s, &token, Method::GET, &format!("groups/{unknown}"), None).await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    assert_graph_error(
        &graph(&s, &token, Method::GET, "groups/not-a-guid", None).await,
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
    );
    assert_graph_error(
        &graph(&s, &token, Method::DELETE, &format!("groups/{unknown}"), None).await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    let reference = |id: &str| json!({"@odata.id": format!("https://graph.microsoft.com/v1.0/directoryObjects/{id}")});
    assert_graph_error(
        &graph(&s, &token, Method::POST, &format!("groups/{gid}/members/$ref"), Some(reference(&unknown))).await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    assert_graph_error(
        &graph(&s, &token, Method::POST, &format!("groups/{unknown}/members/$ref"), Some(reference(&gid))).await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    assert_graph_error(
        &graph(&s, &token, Method::POST, &format!("groups/{gid}/members/$ref"), Some(json!({}))).await,
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
    );
    assert_graph_error(
        &graph(&s, &token, Method::POST, &format!("groups/{gid}/members/$ref"), Some(reference(&gid))).await,
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
    );
    assert_graph_error(
        &graph(&s, &token, Method::DELETE, &format!("groups/{gid}/members/{unknown}/$ref"), None).await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    assert_graph_error(
        &graph(
            &s,
            &token,
            Method::POST,
            &format!("directoryObjects/{unknown}/checkMemberGroups"),
            Some(json!({"groupIds": [gid]})),
        )
        .await,
        StatusCode::NOT_FOUND,
        "Request_ResourceNotFound",
    );
    assert_graph_error(
        &graph(
            &s,
            &token,
            Method::POST,
            "groups",
            Some(json!({"displayName": "mail", "mailNickname": "mail", "mailEnabled": true, "securityEnabled": true})),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
    );
    assert_graph_error(
        &graph(&s, &token, Method::POST, "groups", Some(json!({"displayName": "bad", "mailNickname": "has space"})))
            .await,
        StatusCode::BAD_REQUEST,
        "Request_BadRequest",
    );

    // A user member; adding it twice is refused as Graph does; checkMemberGroups on the user.
    let me = graph(&s, &token, Method::GET, "me", None).await.1;
    let me_id = me["id"].as_str().unwrap().to_string();
    let (st, body) =
        graph(&s, &token, Method::POST, &format!("groups/{gid}/members/$ref"), Some(reference(&me_id))).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{body}");
    let dup = graph(&s, &token, Method::POST, &format!("groups/{gid}/members/$ref"), Some(reference(&me_id))).await;
    assert_graph_error(&dup, StatusCode::BAD_REQUEST, "Request_BadRequest");
    assert!(dup.1["error"]["message"].as_str().unwrap().contains("already exist"), "{}", dup.1);
    let (st, checked) = graph(
        &s,
        &token,
        Method::POST,
        &format!("users/{}/checkMemberGroups", admin.username),
        Some(json!({"groupIds": [gid, unknown]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{checked}");
    assert_eq!(checked["value"], json!([gid]));
    let (st, members) = graph(&s, &token, Method::GET, &format!("groups/{gid}/members"), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(members["value"][0]["@odata.type"], "#microsoft.graph.user", "{members}");

    // A principal without the right to assign roles at the subscription may read groups but
    // not create them or change their members.
    let cli = Cli::login(&s);
    let (app, secret, sp_oid) = service_principal(&cli, "no-rights", &[]);
    let weak = sp_access_token(&s, &app, &secret, GRAPH_SCOPE).await;
    assert_graph_error(
        &graph(
            &s,
            &weak,
            Method::POST,
            "groups",
            Some(json!({"displayName": "mine", "mailNickname": "mine", "securityEnabled": true, "mailEnabled": false})),
        )
        .await,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    assert_graph_error(
        &graph(&s, &weak, Method::POST, &format!("groups/{gid}/members/$ref"), Some(reference(&sp_oid))).await,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    assert_graph_error(
        &graph(&s, &weak, Method::DELETE, &format!("groups/{gid}"), None).await,
        StatusCode::FORBIDDEN,
        "Authorization_RequestDenied",
    );
    let (st, _) = graph(&s, &weak, Method::GET, &format!("groups/{gid}"), None).await;
    assert_eq!(st, StatusCode::OK, "reading needs only sign-in");
    let (st, checked) = graph(
        &s,
        &weak,
        Method::POST,
        &format!("directoryObjects/{sp_oid}/checkMemberGroups"),
        Some(json!({"groupIds": [gid]})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "checkMemberGroups is a read: {checked}");
    assert_eq!(checked["value"], json!([]));
    // The same through the CLI, signed in as that service principal.
    let weak_cli = Cli { config_dir: tempfile::tempdir().unwrap(), ca: None };
    weak_cli
        .run(&[
            "login",
            "--server",
            &s.base(),
            "--service-principal",
            "-u",
            &app,
            "-p",
            &secret,
            "--tenant",
            &admin.tenant,
        ])
        .ok();
    let refused = weak_cli.run(&["ad", "group", "create", "--display-name", "mine", "--mail-nickname", "mine"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("Authorization_RequestDenied"), "{}", refused.stderr);

    // Deleting a member principal removes it from its groups.
    cli.run(&["ad", "group", "member", "add", "--group", &gid, "--member-id", &sp_oid]).ok();
    assert_eq!(member_check(&cli, &gid, &sp_oid), json!({"value": true}));
    cli.run(&["ad", "sp", "delete", "--id", &app]).ok();
    let (_, members) = graph(&s, &token, Method::GET, &format!("groups/{gid}/members"), None).await;
    let ids: Vec<&str> = members["value"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(ids, vec![me_id.as_str()], "{members}");
}

/// Group owners (a user or a service principal) change the group's members and owners, and
/// delete it, without directory rights; everyone else without them is refused; an owner who is
/// deleted, or removed, loses the right at once.
#[tokio::test]
async fn group_owners_manage_members_without_directory_rights() {
    let s = TestServer::start().await;
    let cli = Cli::login(&s);
    let admin = s.admin().unwrap().clone();
    let gid =
        cli.run(&["ad", "group", "create", "--display-name", "Team", "--mail-nickname", "team"]).ok().json()["id"]
            .as_str()
            .unwrap()
            .to_string();
    let (owner_app, owner_secret, owner_oid) = service_principal(&cli, "team-owner", &[]);
    let (_, _, member_oid) = service_principal(&cli, "team-member", &[]);
    let (other_app, other_secret, _) = service_principal(&cli, "not-an-owner", &[]);
    let signed_in = |app: &str, secret: &str| {
        let c = Cli { config_dir: tempfile::tempdir().unwrap(), ca: None };
        c.run(&[
            "login",
            "--server",
            &s.base(),
            "--service-principal",
            "-u",
            app,
            "-p",
            secret,
            "--tenant",
            &admin.tenant,
        ])
        .ok();
        c
    };
    let owner = signed_in(&owner_app, &owner_secret);
    let other = signed_in(&other_app, &other_secret);

    // Before being an owner, the principal is refused like anyone without directory rights.
    let refused = owner.run(&["ad", "group", "member", "add", "--group", &gid, "--member-id", &member_oid]);
    assert!(refused.code != 0 && refused.stderr.contains("Authorization_RequestDenied"), "{refused:?}");
    assert!(s.log_text().contains(&format!("not an owner of group {gid}")), "the log says why");

    cli.run(&["ad", "group", "owner", "add", "--group", &gid, "--owner-object-id", &owner_oid]).ok();
    let owners = cli.run(&["ad", "group", "owner", "list", "--group", "Team", "--query", "[].id"]).ok().json();
    assert_eq!(owners, json!([owner_oid]));
    let again = cli.run(&["ad", "group", "owner", "add", "--group", &gid, "--owner-object-id", &owner_oid]);
    assert!(again.code != 0 && again.stderr.contains("already exist"), "{again:?}");
    let by_group = cli.run(&["ad", "group", "owner", "add", "--group", &gid, "--owner-object-id", &gid]);
    assert!(by_group.code != 0 && by_group.stderr.contains("cannot own a group"), "{by_group:?}");

    // The owner manages members (and owners) of its group, nothing else.
    owner.run(&["ad", "group", "member", "add", "--group", &gid, "--member-id", &member_oid]).ok();
    assert_eq!(member_check(&cli, &gid, &member_oid), json!({"value": true}));
    owner.run(&["ad", "group", "member", "remove", "--group", &gid, "--member-id", &member_oid]).ok();
    assert_eq!(member_check(&cli, &gid, &member_oid), json!({"value": false}));
    let other_gid =
        cli.run(&["ad", "group", "create", "--display-name", "Other", "--mail-nickname", "other"]).ok().json()["id"]
            .as_str()
            .unwrap()
            .to_string();
    let elsewhere = owner.run(&["ad", "group", "member", "add", "--group", &other_gid, "--member-id", &member_oid]);
    assert!(elsewhere.code != 0 && elsewhere.stderr.contains("Authorization_RequestDenied"), "{elsewhere:?}");
    let not_owner = other.run(&["ad", "group", "member", "add", "--group", &gid, "--member-id", &member_oid]);
    assert!(not_owner.code != 0 && not_owner.stderr.contains("Authorization_RequestDenied"), "{not_owner:?}");

    // Removed as owner, the right goes with it.
    owner.run(&["ad", "group", "owner", "remove", "--group", &gid, "--owner-object-id", &owner_oid]).ok();
    let after = owner.run(&["ad", "group", "member", "add", "--group", &gid, "--member-id", &member_oid]);
    assert!(after.code != 0 && after.stderr.contains("Authorization_RequestDenied"), "{after:?}");
    // A deleted owner leaves the owner list.
    cli.run(&["ad", "group", "owner", "add", "--group", &gid, "--owner-object-id", &owner_oid]).ok();
    cli.run(&["ad", "sp", "delete", "--id", &owner_app]).ok();
    assert_eq!(cli.run(&["ad", "group", "owner", "list", "--group", &gid]).ok().json(), json!([]));

    // An owner may delete its group; a non-owner without directory rights may not.
    let (second_app, second_secret, second_oid) = service_principal(&cli, "team-owner-2", &[]);
    cli.run(&["ad", "group", "owner", "add", "--group", &gid, "--owner-object-id", &second_oid]).ok();
    let refused = other.run(&["ad", "group", "delete", "--group", &gid]);
    assert!(refused.code != 0 && refused.stderr.contains("Authorization_RequestDenied"), "{refused:?}");
    signed_in(&second_app, &second_secret).run(&["ad", "group", "delete", "--group", &gid]).ok();
    assert_ne!(cli.run(&["ad", "group", "show", "--group", &gid]).code, 0, "the group is gone");
}
