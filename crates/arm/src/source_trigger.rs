//! Source triggers of a task (`trigger.sourceTriggers`): which repository, branch and events
//! (commits, pull requests) make the task run, and which provider sends the webhook (GitHub or
//! Azure DevOps, `sourceControlType`). Pure values, validated at create and update.
//!
//! Owns: the trigger's rules and the comparison of repository URLs and branches. Must never:
//! decide whether a webhook is genuine (the server's webhook plane does) or keep anything the
//! server derives (the webhook's URL and secret are never stored in the task).

use serde_json::{Value, json};

use crate::error::ArmError;

/// Who sends a source trigger's webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceControl {
    /// GitHub: signs each delivery (`X-Hub-Signature-256`).
    Github,
    /// Azure DevOps (`VisualStudioTeamService`): service hooks with basic authentication.
    AzureDevOps,
}

impl SourceControl {
    /// ACR's name (`sourceControlType`, and `providerType` of a run's `sourceTrigger`).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceControl::Github => "Github",
            SourceControl::AzureDevOps => "VisualStudioTeamService",
        }
    }
}

/// One entry of `trigger.sourceTriggers`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceTrigger {
    pub name: String,
    pub enabled: bool,
    /// `sourceTriggerEvents` has `commit`.
    pub commit: bool,
    /// `sourceTriggerEvents` has `pullrequest`.
    pub pull_request: bool,
    pub control: SourceControl,
    /// `sourceRepository.repositoryUrl` as given (it may carry az's `#branch:folder`).
    pub repository_url: String,
    /// `sourceRepository.branch`: the branch whose pushes (and pull requests into which) run
    /// the task.
    pub branch: String,
}

/// The branch a trigger without `sourceRepository.branch` watches: az's default.
pub const DEFAULT_BRANCH: &str = "master";

/// Source trigger names: 1 to 50 letters, digits, `-` and `_` (they are a path segment of the
/// webhook's URL).
fn valid_name(n: &str) -> bool {
    (1..=50).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Reads `trigger.sourceTriggers` (absent or null: none) and returns the triggers and the list
/// normalised for storing (names of events and types in ACR's spelling, `status` filled in,
/// anything derived — a `webhook` a client echoed back — left out).
pub fn parse_source_triggers(v: &Value) -> Result<(Vec<SourceTrigger>, Value), ArmError> {
    let bad = |m: String| ArmError::bad_request("InvalidSourceTrigger", m);
    let items = match v {
        Value::Null => return Ok((vec![], Value::Null)),
        Value::Array(a) => a,
        other => return Err(bad(format!("trigger.sourceTriggers must be a list, not {other}."))),
    };
    let mut out: Vec<SourceTrigger> = vec![];
    let mut stored = vec![];
    for (i, t) in items.iter().enumerate() {
        let at = format!("trigger.sourceTriggers[{i}]");
        if !t.is_object() {
            return Err(bad(format!("{at} must be an object.")));
        }
        let name = t["name"].as_str().unwrap_or_default();
        if !valid_name(name) {
            return Err(bad(format!("{at}.name '{name}' is invalid: use 1 to 50 letters, digits, '-' and '_'.")));
        }
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(name)) {
            return Err(bad(format!("{at}.name '{name}' is used by another source trigger of the task.")));
        }
        let enabled = match t["status"].as_str() {
            None => true,
            Some(s) if s.eq_ignore_ascii_case("Enabled") => true,
            Some(s) if s.eq_ignore_ascii_case("Disabled") => false,
            Some(s) => return Err(bad(format!("{at}.status '{s}' is invalid: use Enabled or Disabled."))),
        };
        let mut events = vec![];
        match &t["sourceTriggerEvents"] {
            Value::Null => {}
            Value::Array(list) => {
                for e in list {
                    match e.as_str().map(str::to_ascii_lowercase).as_deref() {
                        Some("commit") => events.push("commit"),
                        Some("pullrequest") => events.push("pullrequest"),
                        _ => {
                            return Err(bad(format!(
                                "{at}.sourceTriggerEvents has {e}, which is not an event: use commit and pullrequest."
                            )));
                        }
                    }
                }
            }
            other => return Err(bad(format!("{at}.sourceTriggerEvents must be a list, not {other}."))),
        }
        events.dedup();
        let repo = &t["sourceRepository"];
        let control = match repo["sourceControlType"].as_str() {
            Some(s) if s.eq_ignore_ascii_case("Github") => SourceControl::Github,
            Some(s) if s.eq_ignore_ascii_case("VisualStudioTeamService") => SourceControl::AzureDevOps,
            other => {
                return Err(bad(format!(
                    "{at}.sourceRepository.sourceControlType {} is invalid: use Github or VisualStudioTeamService.",
                    other.map_or("(none)".to_string(), |s| format!("'{s}'"))
                )));
            }
        };
        let url = repo["repositoryUrl"].as_str().unwrap_or_default().trim();
        if url.is_empty() {
            return Err(bad(format!("{at}.sourceRepository.repositoryUrl is required: the repository's URL.")));
        }
        let branch = repo["branch"].as_str().map(str::trim).filter(|b| !b.is_empty()).unwrap_or(DEFAULT_BRANCH);
        let branch = branch.strip_prefix("refs/heads/").unwrap_or(branch);
        let mut normal = t.clone();
        if let Some(o) = normal.as_object_mut() {
            o.remove("webhook");
        }
        normal["status"] = json!(if enabled { "Enabled" } else { "Disabled" });
        normal["sourceTriggerEvents"] = json!(events);
        normal["sourceRepository"]["sourceControlType"] = json!(control.as_str());
        normal["sourceRepository"]["branch"] = json!(branch);
        stored.push(normal);
        out.push(SourceTrigger {
            name: name.to_string(),
            enabled,
            commit: events.contains(&"commit"),
            pull_request: events.contains(&"pullrequest"),
            control,
            repository_url: url.to_string(),
            branch: branch.to_string(),
        });
    }
    Ok((out, Value::Array(stored)))
}

/// A repository URL reduced for comparison: no scheme, credentials, `#fragment`, `.git` or
/// trailing `/`, lowercase; `git@host:owner/repo` (SSH) becomes `host/owner/repo`.
pub fn repository_key(url: &str) -> String {
    let url = url.trim();
    let url = url.split('#').next().unwrap_or_default();
    let rest = match url.split_once("://") {
        Some((_, r)) => r,
        None => url.strip_prefix("git@").map_or(url, |r| r),
    };
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let rest = if url.contains("://") { rest.to_string() } else { rest.replacen(':', "/", 1) };
    let rest = rest.trim_end_matches('/');
    let rest = rest.strip_suffix(".git").unwrap_or(rest);
    rest.to_ascii_lowercase()
}

impl SourceTrigger {
    /// Whether any of a webhook's repository URLs names this trigger's repository.
    pub fn same_repository<'a>(&self, urls: impl IntoIterator<Item = &'a str>) -> bool {
        let want = repository_key(&self.repository_url);
        urls.into_iter().any(|u| repository_key(u) == want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triggers_are_read_and_normalised() {
        let v = json!([{
            "name": "defaultSourceTriggerName",
            "sourceTriggerEvents": ["Commit", "pullrequest"],
            "sourceRepository": {"sourceControlType": "github", "repositoryUrl": "https://github.com/o/r.git#main:web",
                "branch": "refs/heads/main", "sourceControlAuthProperties": {"tokenType": "PAT", "token": "ghp_x"}},
            "webhook": {"url": "echoed", "secret": "echoed"},
        }]);
        let (triggers, stored) = parse_source_triggers(&v).unwrap();
        assert_eq!(
            triggers,
            [SourceTrigger {
                name: "defaultSourceTriggerName".into(),
                enabled: true,
                commit: true,
                pull_request: true,
                control: SourceControl::Github,
                repository_url: "https://github.com/o/r.git#main:web".into(),
                branch: "main".into(),
            }]
        );
        assert_eq!(stored[0]["status"], "Enabled");
        assert_eq!(stored[0]["sourceTriggerEvents"], json!(["commit", "pullrequest"]));
        assert_eq!(stored[0]["sourceRepository"]["sourceControlType"], "Github");
        assert!(stored[0].get("webhook").is_none(), "derived values are never stored");
        assert_eq!(stored[0]["sourceRepository"]["sourceControlAuthProperties"]["token"], "ghp_x");
        let (t, _) = parse_source_triggers(&json!([{"name": "ado", "status": "Disabled",
            "sourceRepository": {"sourceControlType": "VisualStudioTeamService", "repositoryUrl": "https://dev.azure.com/o/p/_git/r"}}]))
        .unwrap();
        assert_eq!(
            (t[0].enabled, t[0].commit, t[0].control, t[0].branch.as_str()),
            (false, false, SourceControl::AzureDevOps, "master")
        );
    }

    #[test]
    fn bad_triggers_are_refused_naming_the_field() {
        let repo = json!({"sourceControlType": "Github", "repositoryUrl": "https://github.com/o/r"});
        for (v, msg) in [
            (json!({}), "must be a list"),
            (json!([{"name": "", "sourceRepository": repo}]), "[0].name ''"),
            (json!([{"name": "a/b", "sourceRepository": repo}]), "[0].name 'a/b'"),
            (
                json!([{"name": "a", "sourceRepository": repo}, {"name": "A", "sourceRepository": repo}]),
                "[1].name 'A' is used",
            ),
            (json!([{"name": "a", "status": "On", "sourceRepository": repo}]), "status 'On'"),
            (json!([{"name": "a", "sourceTriggerEvents": ["tag"], "sourceRepository": repo}]), "\"tag\""),
            (
                json!([{"name": "a", "sourceRepository": {"sourceControlType": "Gitlab", "repositoryUrl": "x"}}]),
                "'Gitlab'",
            ),
            (json!([{"name": "a", "sourceRepository": {"sourceControlType": "Github"}}]), "repositoryUrl is required"),
        ] {
            let e = parse_source_triggers(&v).unwrap_err();
            assert_eq!(e.code, "InvalidSourceTrigger");
            assert!(e.message.contains(msg), "{v}: {}", e.message);
        }
    }

    #[test]
    fn repository_urls_compare_by_host_and_path() {
        let key = repository_key("https://github.com/Owner/Repo.git#main:web");
        assert_eq!(key, "github.com/owner/repo");
        for same in [
            "https://github.com/owner/repo",
            "git://github.com/owner/repo.git",
            "git@github.com:owner/repo.git",
            "ssh://git@github.com/owner/repo.git",
            "https://user@github.com/owner/repo/",
        ] {
            assert_eq!(repository_key(same), key, "{same}");
        }
        assert_ne!(repository_key("https://github.com/owner/other"), key);
        assert_eq!(repository_key("git://127.0.0.1:9418/app.git"), "127.0.0.1:9418/app");
    }
}
