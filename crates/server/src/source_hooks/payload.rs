//! The two providers' webhook payloads, read into [`Delivery`] values: GitHub's `push`,
//! `pull_request` and `ping` events (the event in `X-GitHub-Event`, the delivery id in
//! `X-GitHub-Delivery`) and Azure DevOps' service hook events `git.push`,
//! `git.pullrequest.created` and `git.pullrequest.updated` (the event and its id in the body).
//! Pure: headers and bytes in, values out.

use axum::http::HeaderMap;
use serde_json::Value;

use crate::triggers::webhooks::{Change, Delivery};

/// What a verified payload asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// GitHub's `ping` (sent when a webhook is added).
    Ping,
    Delivery(Delivery),
    /// An event that never runs a task (a tag push, a deleted branch, a closed pull request,
    /// another event type), and why.
    Ignored(String),
}

const ZERO_COMMIT: &str = "0000000000000000000000000000000000000000";

fn is_commit(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn branch_of(git_ref: &str) -> Option<&str> {
    git_ref.strip_prefix("refs/heads/").filter(|b| !b.is_empty())
}

fn json_of(body: &[u8]) -> Result<Value, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the payload is not JSON: {e}"))?;
    if v.is_object() { Ok(v) } else { Err("the payload is not a JSON object".into()) }
}

fn strings(v: &Value, keys: &[&str]) -> Vec<String> {
    keys.iter().filter_map(|k| v[*k].as_str().filter(|s| !s.is_empty()).map(str::to_string)).collect()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// A GitHub delivery (`application/json` content type; GitHub's form-encoded payloads are
/// refused as not JSON).
pub fn github(headers: &HeaderMap, body: &[u8]) -> Result<Parsed, String> {
    let event = header(headers, "x-github-event").ok_or("the X-GitHub-Event header is missing")?;
    let id = header(headers, "x-github-delivery").map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let v = json_of(body)?;
    let repository_urls = strings(&v["repository"], &["clone_url", "html_url", "git_url", "ssh_url"]);
    match event {
        "ping" => Ok(Parsed::Ping),
        "push" => {
            let git_ref = v["ref"].as_str().ok_or("a push event without 'ref'")?;
            let Some(branch) = branch_of(git_ref) else {
                return Ok(Parsed::Ignored(format!("'{git_ref}' is not a branch.")));
            };
            let after = v["after"].as_str().unwrap_or_default();
            if v["deleted"].as_bool() == Some(true) || after == ZERO_COMMIT {
                return Ok(Parsed::Ignored(format!("The branch '{branch}' was deleted.")));
            }
            if !is_commit(after) {
                return Err(format!("the push event's 'after' ({after:?}) is not a commit id"));
            }
            let change = Change::Commit { branch: branch.to_string(), commit: after.to_string() };
            Ok(Parsed::Delivery(Delivery { id, repository_urls, changes: vec![change] }))
        }
        "pull_request" => {
            let action = v["action"].as_str().unwrap_or_default();
            if !matches!(action, "opened" | "synchronize" | "reopened") {
                return Ok(Parsed::Ignored(format!(
                    "The pull request was {action}: only opened, synchronize and reopened run a task."
                )));
            }
            let pr = &v["pull_request"];
            let number = match (&v["number"], &pr["number"]) {
                (Value::Number(n), _) | (_, Value::Number(n)) => n.to_string(),
                _ => return Err("a pull_request event without 'number'".into()),
            };
            let commit = pr["head"]["sha"]
                .as_str()
                .filter(|s| is_commit(s))
                .ok_or("pull_request.head.sha is not a commit id")?;
            let head = pr["head"]["ref"].as_str().unwrap_or_default();
            let base = pr["base"]["ref"].as_str().ok_or("a pull_request event without pull_request.base.ref")?;
            let change = Change::PullRequest {
                number,
                commit: commit.to_string(),
                head_branch: head.to_string(),
                base_branch: base.to_string(),
            };
            Ok(Parsed::Delivery(Delivery { id, repository_urls, changes: vec![change] }))
        }
        other => {
            Ok(Parsed::Ignored(format!("The event '{other}' does not run a task: send push and pull_request events.")))
        }
    }
}

/// An Azure DevOps service hook delivery ("Web Hooks" consumer, resource version 1.0).
pub fn azure_devops(body: &[u8]) -> Result<Parsed, String> {
    let v = json_of(body)?;
    let event = v["eventType"].as_str().ok_or("the payload has no 'eventType'")?;
    let id =
        v["id"].as_str().filter(|s| !s.is_empty()).map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let resource = &v["resource"];
    let repository_urls = strings(&resource["repository"], &["remoteUrl", "webUrl", "sshUrl"]);
    match event {
        "git.push" => {
            let updates = resource["refUpdates"].as_array().ok_or("a git.push event without resource.refUpdates")?;
            let changes: Vec<Change> = updates
                .iter()
                .filter_map(|u| {
                    let branch = branch_of(u["name"].as_str()?)?;
                    let commit = u["newObjectId"].as_str().filter(|c| is_commit(c) && *c != ZERO_COMMIT)?;
                    Some(Change::Commit { branch: branch.to_string(), commit: commit.to_string() })
                })
                .collect();
            if changes.is_empty() {
                return Ok(Parsed::Ignored(
                    "The push moved no branch to a commit (deleted branches and tags do not run a task).".into(),
                ));
            }
            Ok(Parsed::Delivery(Delivery { id, repository_urls, changes }))
        }
        "git.pullrequest.created" | "git.pullrequest.updated" => {
            let status = resource["status"].as_str().unwrap_or("active");
            if !status.eq_ignore_ascii_case("active") {
                return Ok(Parsed::Ignored(format!("The pull request is {status}: only active ones run a task.")));
            }
            let number = match &resource["pullRequestId"] {
                Value::Number(n) => n.to_string(),
                Value::String(s) if !s.is_empty() => s.clone(),
                _ => return Err("a pull request event without resource.pullRequestId".into()),
            };
            let commit = resource["lastMergeSourceCommit"]["commitId"]
                .as_str()
                .filter(|c| is_commit(c))
                .ok_or("resource.lastMergeSourceCommit.commitId is not a commit id")?;
            let head = resource["sourceRefName"].as_str().and_then(branch_of).unwrap_or_default();
            let base = resource["targetRefName"]
                .as_str()
                .and_then(branch_of)
                .ok_or("a pull request event without a resource.targetRefName branch")?;
            let change = Change::PullRequest {
                number,
                commit: commit.to_string(),
                head_branch: head.to_string(),
                base_branch: base.to_string(),
            };
            Ok(Parsed::Delivery(Delivery { id, repository_urls, changes: vec![change] }))
        }
        other => Ok(Parsed::Ignored(format!(
            "The event '{other}' does not run a task: subscribe to 'Code pushed' and 'Pull request created/updated'."
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn gh(event: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-github-event", event.parse().unwrap());
        h.insert("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse().unwrap());
        h
    }

    fn body(v: Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    const A: &str = "6113728f27ae82c7b1a177c8d03f9e96e0adf246";
    const B: &str = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c";

    #[test]
    fn github_pushes() {
        let repo = json!({"clone_url": "https://github.com/o/r.git", "html_url": "https://github.com/o/r", "ssh_url": "git@github.com:o/r.git"});
        let p =
            github(&gh("push"), &body(json!({"ref": "refs/heads/main", "before": B, "after": A, "repository": repo})))
                .unwrap();
        let Parsed::Delivery(d) = p else { panic!("{p:?}") };
        assert_eq!(d.id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
        assert_eq!(d.changes, [Change::Commit { branch: "main".into(), commit: A.into() }]);
        assert_eq!(d.repository_urls.len(), 3);
        for (v, why) in [
            (json!({"ref": "refs/heads/main", "after": ZERO_COMMIT, "deleted": true}), "deleted"),
            (json!({"ref": "refs/tags/v1", "after": A}), "not a branch"),
        ] {
            match github(&gh("push"), &body(v)).unwrap() {
                Parsed::Ignored(r) => assert!(r.contains(why), "{r}"),
                other => panic!("{other:?}"),
            }
        }
        assert!(github(&gh("push"), &body(json!({"ref": "refs/heads/main", "after": "nope"}))).is_err());
        assert!(github(&gh("push"), b"not json").is_err());
        assert!(github(&HeaderMap::new(), &body(json!({}))).is_err(), "no event header");
        assert_eq!(github(&gh("ping"), &body(json!({"zen": "Keep it logically awesome."}))).unwrap(), Parsed::Ping);
        assert!(matches!(github(&gh("issues"), &body(json!({}))).unwrap(), Parsed::Ignored(_)));
    }

    #[test]
    fn github_pull_requests() {
        let pr = |action: &str| {
            body(json!({"action": action, "number": 12, "pull_request": {
                "head": {"sha": A, "ref": "feature"}, "base": {"ref": "main"}},
                "repository": {"clone_url": "https://github.com/o/r.git"}}))
        };
        for action in ["opened", "synchronize", "reopened"] {
            let Parsed::Delivery(d) = github(&gh("pull_request"), &pr(action)).unwrap() else { panic!() };
            assert_eq!(
                d.changes,
                [Change::PullRequest {
                    number: "12".into(),
                    commit: A.into(),
                    head_branch: "feature".into(),
                    base_branch: "main".into()
                }]
            );
        }
        for action in ["closed", "labeled", "edited"] {
            assert!(matches!(github(&gh("pull_request"), &pr(action)).unwrap(), Parsed::Ignored(_)), "{action}");
        }
    }

    #[test]
    fn azure_devops_events() {
        let push = json!({"id": "03c164c2-8912-4d5e-8009-3707d5f83734", "eventType": "git.push", "resource": {
            "refUpdates": [{"name": "refs/heads/main", "oldObjectId": B, "newObjectId": A},
                           {"name": "refs/heads/gone", "oldObjectId": B, "newObjectId": ZERO_COMMIT},
                           {"name": "refs/tags/v1", "oldObjectId": ZERO_COMMIT, "newObjectId": B}],
            "repository": {"remoteUrl": "https://dev.azure.com/o/p/_git/r"}}});
        let Parsed::Delivery(d) = azure_devops(&body(push)).unwrap() else { panic!() };
        assert_eq!(d.id, "03c164c2-8912-4d5e-8009-3707d5f83734");
        assert_eq!(d.changes, [Change::Commit { branch: "main".into(), commit: A.into() }]);
        assert_eq!(d.repository_urls, ["https://dev.azure.com/o/p/_git/r"]);
        let pr = json!({"id": "x", "eventType": "git.pullrequest.updated", "resource": {
            "pullRequestId": 1, "status": "active", "sourceRefName": "refs/heads/feature", "targetRefName": "refs/heads/main",
            "lastMergeSourceCommit": {"commitId": A}, "repository": {"remoteUrl": "https://dev.azure.com/o/p/_git/r"}}});
        let Parsed::Delivery(d) = azure_devops(&body(pr.clone())).unwrap() else { panic!() };
        assert!(
            matches!(&d.changes[0], Change::PullRequest { number, base_branch, .. } if number == "1" && base_branch == "main")
        );
        let mut done = pr;
        done["resource"]["status"] = json!("completed");
        assert!(matches!(azure_devops(&body(done)).unwrap(), Parsed::Ignored(_)));
        assert!(matches!(azure_devops(&body(json!({"eventType": "build.complete"}))).unwrap(), Parsed::Ignored(_)));
        assert!(azure_devops(&body(json!({"resource": {}}))).is_err(), "no eventType");
    }
}
