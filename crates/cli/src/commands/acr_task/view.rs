//! How tasks and runs are printed: az's flattened models (`properties.*` lifted to the top
//! level) and az's table columns (`acr/_format.py`: `task_output_format`,
//! `run_output_format`, `task_identity_format`). Owns presentation only.

use serde_json::{Map, Value};

use crate::commands::acr::{date, rows, text};
use crate::output::columns;

/// The resource with its `properties` merged into the top level, keys sorted.
pub fn flatten(v: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(m) = v {
        for (k, val) in m {
            match (k.as_str(), val) {
                ("properties", Value::Object(p)) => out.extend(p.iter().map(|(k, v)| (k.clone(), v.clone()))),
                _ => {
                    out.insert(k.clone(), val.clone());
                }
            }
        }
    } else {
        return v.clone();
    }
    let mut sorted: Vec<(String, Value)> = out.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(sorted.into_iter().collect())
}

/// Each element of a `{"value": […]}` list, flattened.
pub fn flatten_list(v: &Value) -> Value {
    Value::Array(v["value"].as_array().into_iter().flatten().map(flatten).collect())
}

fn enabled(v: &Value) -> bool {
    v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("enabled"))
}

/// az's `_get_triggers`: SOURCE, TIMER, BASE_IMAGE for the enabled ones, sorted.
fn triggers(task: &Value) -> Value {
    let t = &task["trigger"];
    let mut out = vec![];
    if enabled(&t["sourceTriggers"][0]["status"]) {
        out.push("SOURCE");
    }
    if t["timerTriggers"].as_array().is_some_and(|a| a.iter().any(|x| enabled(&x["status"]))) {
        out.push("TIMER");
    }
    if enabled(&t["baseImageTrigger"]["status"]) {
        out.push("BASE_IMAGE");
    }
    out.sort();
    Value::String(out.join(", "))
}

/// `task create|show|list|update`: NAME, PLATFORM, STATUS, SOURCE REPOSITORY, TRIGGERS.
pub fn task_columns(v: &Value) -> Vec<Value> {
    rows(v)
        .into_iter()
        .map(|t| {
            columns([
                ("NAME", text(&t["name"])),
                ("PLATFORM", text(&t["platform"]["os"])),
                ("STATUS", text(&t["status"])),
                ("SOURCE REPOSITORY", text(&t["step"]["contextPath"])),
                ("TRIGGERS", triggers(t)),
            ])
        })
        .collect()
}

/// az's `_get_build_trigger`: the source event, else Timer, else Image Update, else Manual.
fn run_trigger(run: &Value) -> Value {
    let set = |v: &Value| !text(v).as_str().unwrap_or_default().trim().is_empty();
    Value::String(if set(&run["sourceTrigger"]["eventType"]) {
        text(&run["sourceTrigger"]["eventType"]).as_str().unwrap_or_default().to_string()
    } else if set(&run["timerTrigger"]) {
        "Timer".into()
    } else if set(&run["imageUpdateTrigger"]) {
        "Image Update".into()
    } else {
        "Manual".into()
    })
}

/// `task list-runs|show-run|update-run`, and a run printed by `--no-logs`: RUN ID, TASK,
/// PLATFORM, STATUS, TRIGGER, STARTED, DURATION.
pub fn run_columns(v: &Value) -> Vec<Value> {
    rows(v)
        .into_iter()
        .map(|r| {
            columns([
                ("RUN ID", text(&r["runId"])),
                ("TASK", text(&r["task"])),
                ("PLATFORM", text(&r["platform"]["os"])),
                ("STATUS", text(&r["status"])),
                ("TRIGGER", run_trigger(r)),
                ("STARTED", date(&r["startTime"])),
                ("DURATION", Value::String(duration(&r["startTime"], &r["finishTime"]).unwrap_or_default())),
            ])
        })
        .collect()
}

/// `task show-webhook`: each source trigger's webhook from a `listDetails` answer —
/// `[{name, sourceControlType, repositoryUrl, branch, events, status, url, secret}]`, only
/// `only` when given.
pub fn webhooks(details: &Value, task: &str, only: Option<&str>) -> Result<Value, crate::error::CliError> {
    let triggers = details["properties"]["trigger"]["sourceTriggers"].as_array().cloned().unwrap_or_default();
    let out: Vec<Value> = triggers
        .iter()
        .filter(|t| only.is_none_or(|n| t["name"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(n))))
        .map(|t| {
            let repo = &t["sourceRepository"];
            serde_json::json!({
                "name": t["name"],
                "sourceControlType": repo["sourceControlType"],
                "repositoryUrl": repo["repositoryUrl"],
                "branch": repo["branch"],
                "events": t["sourceTriggerEvents"],
                "status": t["status"],
                "url": t["webhook"]["url"],
                "secret": t["webhook"]["secret"],
            })
        })
        .collect();
    if out.is_empty() {
        return Err(crate::error::CliError::NotFound(match only {
            Some(n) => format!("The task '{task}' has no source trigger '{n}'."),
            None => format!(
                "The task '{task}' has no source trigger: create it with a git --context and --commit-trigger-enabled true or --pull-request-trigger-enabled true."
            ),
        }));
    }
    Ok(Value::Array(out))
}

/// `task show-webhook`: NAME, SOURCE CONTROL, BRANCH, EVENTS, URL, SECRET.
pub fn webhook_columns(v: &Value) -> Vec<Value> {
    rows(v)
        .into_iter()
        .map(|w| {
            let events: Vec<&str> = w["events"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            columns([
                ("NAME", text(&w["name"])),
                ("SOURCE CONTROL", text(&w["sourceControlType"])),
                ("BRANCH", text(&w["branch"])),
                ("EVENTS", Value::String(events.join(", "))),
                ("URL", text(&w["url"])),
                ("SECRET", text(&w["secret"])),
            ])
        })
        .collect()
}

/// `task identity show`: PRINCIPAL ID, TENANT ID, TYPE, USER ASSIGNED IDENTITIES.
pub fn identity_columns(v: &Value) -> Vec<Value> {
    rows(v)
        .into_iter()
        .map(|i| {
            let users: Vec<String> =
                i["userAssignedIdentities"].as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default();
            columns([
                ("PRINCIPAL ID", text(&i["principalId"])),
                ("TENANT ID", text(&i["tenantId"])),
                ("TYPE", text(&i["type"])),
                ("USER ASSIGNED IDENTITIES", Value::String(users.join("\n"))),
            ])
        })
        .collect()
}

/// az's `_get_duration`: `HH:MM:SS` of finish − start, blank when either is missing.
pub fn duration(start: &Value, finish: &Value) -> Option<String> {
    let s = epoch_seconds(start.as_str()?)?;
    let f = epoch_seconds(finish.as_str()?)?;
    // Python's timedelta: whole seconds, floored.
    let d = (f - s).floor() as i64;
    if d < 0 {
        return None;
    }
    Some(format!("{:02}:{:02}:{:02}", d / 3600, (d % 3600) / 60, d % 60))
}

/// Seconds since the epoch of an ISO 8601 time (`2026-12-04T18:00:00.1234567+00:00`, `…Z`,
/// or no offset for UTC).
fn epoch_seconds(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, se) = (n(0..4)?, n(5..7)?, n(8..10)?, n(11..13)?, n(14..16)?, n(17..19)?);
    let mut rest = &s[19..];
    let mut frac = 0.0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits: String = r.chars().take_while(|c| c.is_ascii_digit()).collect();
        frac = format!("0.{digits}").parse().ok()?;
        rest = &r[digits.len()..];
    }
    let offset = match rest {
        "" | "Z" | "z" => 0,
        o if o.len() == 6 && (o.starts_with('+') || o.starts_with('-')) && &o[3..4] == ":" => {
            let sign = if o.starts_with('-') { -1 } else { 1 };
            sign * (o[1..3].parse::<i64>().ok()? * 3600 + o[4..6].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if mo <= 2 { (y - 1, mo + 9) } else { (y, mo - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + mi * 60 + se - offset) as f64 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{OutputArgs, Table, render};
    use serde_json::json;

    fn table(v: &Value, t: fn(&Value) -> Vec<Value>) -> String {
        let out = OutputArgs { output: crate::output::Format::Table, query: None };
        render(v, &out, Table::Columns(t)).unwrap()
    }

    #[test]
    fn tasks_print_flattened() {
        let v = json!({"id": "/s/x/tasks/t1", "name": "t1", "type": "Microsoft.ContainerRegistry/registries/tasks",
            "location": "westus", "properties": {"status": "Enabled", "timeout": 3600, "provisioningState": "Succeeded"}});
        let f = flatten(&v);
        assert_eq!(f["status"], "Enabled");
        assert_eq!(f["timeout"], 3600);
        assert!(f.get("properties").is_none());
        assert_eq!(f["location"], "westus");
    }

    #[test]
    fn task_list_has_az_columns() {
        let tasks = flatten_list(&json!({"value": [
            {"name": "t1", "properties": {"platform": {"os": "linux"}, "status": "Enabled",
              "step": {"type": "EncodedTask"},
              "trigger": {"baseImageTrigger": {"status": "Enabled"}, "timerTriggers": [{"status": "Enabled"}]}}},
            {"name": "build", "properties": {"platform": {"os": "linux"}, "status": "Disabled",
              "step": {"type": "Docker", "contextPath": "https://github.com/x/y.git"},
              "trigger": {"sourceTriggers": [{"status": "Enabled"}]}}},
        ]}));
        assert_eq!(
            table(&tasks, task_columns),
            "NAME    PLATFORM    STATUS    SOURCE REPOSITORY           TRIGGERS\n\
             ------  ----------  --------  --------------------------  -----------------\n\
             t1      linux       Enabled                               BASE_IMAGE, TIMER\n\
             build   linux       Disabled  https://github.com/x/y.git  SOURCE\n"
        );
    }

    #[test]
    fn run_list_has_az_columns() {
        let runs = flatten_list(&json!({"value": [
            {"name": "ca2", "properties": {"runId": "ca2", "task": "t1", "platform": {"os": "linux"}, "status": "Succeeded",
              "startTime": "2026-12-04T18:00:00.5+00:00", "finishTime": "2026-12-04T19:02:03.7+00:00"}},
            {"name": "ca1", "properties": {"runId": "ca1", "platform": {"os": "linux"}, "status": "Running",
              "timerTrigger": {"timerTriggerName": "t1"}, "startTime": "2026-12-04T17:59:58Z"}},
        ]}));
        assert_eq!(
            table(&runs, run_columns),
            "RUN ID    TASK    PLATFORM    STATUS     TRIGGER    STARTED               DURATION\n\
             --------  ------  ----------  ---------  ---------  --------------------  ----------\n\
             ca2       t1      linux       Succeeded  Manual     2026-12-04T18:00:00Z  01:02:03\n\
             ca1               linux       Running    Timer      2026-12-04T17:59:58Z\n"
        );
    }

    #[test]
    fn durations_as_az_computes_them() {
        assert_eq!(
            duration(&json!("2026-01-31T23:59:59Z"), &json!("2026-02-01T00:00:09Z")).as_deref(),
            Some("00:00:10")
        );
        assert_eq!(
            duration(&json!("2026-12-04T18:00:00+01:00"), &json!("2026-12-04T17:00:05Z")).as_deref(),
            Some("00:00:05")
        );
        assert_eq!(duration(&json!("2026-12-04T18:00:00Z"), &Value::Null), None);
    }

    #[test]
    fn identity_show_has_az_columns() {
        let id = json!({"principalId": "p1", "tenantId": "t1", "type": "SystemAssigned, UserAssigned",
            "userAssignedIdentities": {"/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1": {}}});
        let rows = identity_columns(&id);
        assert_eq!(rows[0]["TYPE"], "SystemAssigned, UserAssigned");
        assert!(rows[0]["USER ASSIGNED IDENTITIES"].as_str().unwrap().ends_with("/id1"));
    }
}
