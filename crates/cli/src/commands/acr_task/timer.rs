//! `wharf acr task timer add|update|remove|list`, with az's requests (`acr/task.py`:
//! `acr_task_timer_*`): `add` and `update` PATCH `trigger.timerTriggers` with the one timer
//! (the server merges timers by name); `remove` reads the task with `listDetails` and PUTs it
//! back without the timer; `list` prints the `timerTriggers` of `listDetails`. Owns those calls
//! and their client-side errors; the schedule itself is checked by the server.

use reqwest::Method;
use serde_json::{Map, Value, json};

use super::args::TimerCmd;
use super::{call, details, registry, registry_of, view};
use crate::client::Client;
use crate::error::CliError;

pub(super) async fn run(client: &Client, cmd: TimerCmd) -> Result<Option<Value>, CliError> {
    match cmd {
        TimerCmd::Add { task, timer_name, schedule, enabled } => {
            let reg = registry(client, &registry_of(&task)).await?;
            let patch = timer_patch(&timer_name, Some(&schedule), Some(enabled));
            Ok(Some(view::flatten(&call(client, Method::PATCH, &reg.task(&task.name), Some(&patch)).await?)))
        }
        TimerCmd::Update { task, timer_name, schedule, enabled } => {
            let reg = registry(client, &registry_of(&task)).await?;
            let patch = timer_patch(&timer_name, schedule.as_deref(), enabled);
            Ok(Some(view::flatten(&call(client, Method::PATCH, &reg.task(&task.name), Some(&patch)).await?)))
        }
        TimerCmd::Remove { task, timer_name } => {
            let reg = registry(client, &registry_of(&task)).await?;
            let d = details(client, &reg, &task.name).await?;
            let body = without_timer(&d, &task.name, &timer_name)?;
            Ok(Some(view::flatten(&call(client, Method::PUT, &reg.task(&task.name), Some(&body)).await?)))
        }
        TimerCmd::List { task } => {
            let reg = registry(client, &registry_of(&task)).await?;
            let d = details(client, &reg, &task.name).await?;
            let trigger = &d["properties"]["trigger"];
            Ok(if trigger.is_object() {
                trigger.get("timerTriggers").filter(|t| !t.is_null()).cloned()
            } else {
                Some(json!({}))
            })
        }
    }
}

/// The PATCH az sends for one timer: fields not given are left out (the SDK drops `None`).
fn timer_patch(name: &str, schedule: Option<&str>, enabled: Option<bool>) -> Value {
    let mut t = Map::new();
    t.insert("name".into(), json!(name));
    if let Some(e) = enabled {
        t.insert("status".into(), json!(if e { "Enabled" } else { "Disabled" }));
    }
    if let Some(s) = schedule {
        t.insert("schedule".into(), json!(s));
    }
    json!({"properties": {"trigger": {"timerTriggers": [Value::Object(t)]}}})
}

/// The task of `listDetails` as az PUTs it back (the SDK's serialisation of the task: read-only
/// fields dropped) without the timer `timer`, or az's errors when there is none of that name.
fn without_timer(details: &Value, task: &str, timer: &str) -> Result<Value, CliError> {
    let mut properties = details["properties"].clone();
    let Some(trigger) = properties.get_mut("trigger").filter(|t| t.is_object()) else {
        return Err(CliError::Other(format!("No triggers exist for the task '{task}'.")));
    };
    let timers = match trigger.get_mut("timerTriggers") {
        Some(Value::Array(a)) if !a.is_empty() => a,
        _ => return Err(CliError::Other(format!("No timer triggers exist for the task '{task}'."))),
    };
    let before = timers.len();
    timers.retain(|t| t["name"].as_str() != Some(timer));
    if timers.len() == before {
        return Err(CliError::Other(format!("The timer '{timer}' does not exist for the task '{task}'.")));
    }
    if let Value::Object(p) = &mut properties {
        p.remove("provisioningState");
        p.remove("creationDate");
    }
    let mut body = json!({"location": details["location"], "properties": properties});
    if details["tags"].is_object() {
        body["tags"] = details["tags"].clone();
    }
    if let Some(kind) = details["identity"]["type"].as_str() {
        let mut identity = json!({"type": kind});
        if let Some(users) = details["identity"]["userAssignedIdentities"].as_object() {
            identity["userAssignedIdentities"] =
                users.keys().map(|k| (k.clone(), json!({}))).collect::<Map<_, _>>().into();
        }
        body["identity"] = identity;
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_and_update_send_the_one_timer_as_az_does() {
        assert_eq!(
            timer_patch("t2", Some("0 21 * * *"), Some(true)),
            json!({"properties": {"trigger": {"timerTriggers": [{"name": "t2", "status": "Enabled", "schedule": "0 21 * * *"}]}}})
        );
        assert_eq!(
            timer_patch("t2", None, Some(false)),
            json!({"properties": {"trigger": {"timerTriggers": [{"name": "t2", "status": "Disabled"}]}}})
        );
        assert_eq!(
            timer_patch("t2", None, None),
            json!({"properties": {"trigger": {"timerTriggers": [{"name": "t2"}]}}})
        );
    }

    #[test]
    fn remove_puts_the_task_back_without_the_timer() {
        let d = json!({"id": "/x/tasks/t", "name": "t", "location": "westus", "tags": {"a": "b"},
            "identity": {"type": "SystemAssigned, UserAssigned", "principalId": "p", "tenantId": "x",
                         "userAssignedIdentities": {"/uai/1": {"principalId": "q", "clientId": "c"}}},
            "properties": {"provisioningState": "Succeeded", "creationDate": "2024", "status": "Enabled",
                "trigger": {"timerTriggers": [{"name": "t1", "schedule": "* * * * *", "status": "Enabled"},
                                              {"name": "t2", "schedule": "0 * * * *", "status": "Enabled"}]}}});
        let body = without_timer(&d, "t", "t1").unwrap();
        assert_eq!(
            body,
            json!({"location": "westus", "tags": {"a": "b"},
                "identity": {"type": "SystemAssigned, UserAssigned", "userAssignedIdentities": {"/uai/1": {}}},
                "properties": {"status": "Enabled", "trigger": {"timerTriggers": [{"name": "t2", "schedule": "0 * * * *", "status": "Enabled"}]}}})
        );
        let msg = |r: Result<Value, CliError>| r.unwrap_err().to_string();
        assert!(msg(without_timer(&d, "t", "nope")).contains("The timer 'nope' does not exist for the task 't'."));
        assert!(msg(without_timer(&json!({"properties": {}}), "t", "t1")).contains("No triggers exist"));
        assert!(
            msg(without_timer(&json!({"properties": {"trigger": {}}}), "t", "t1")).contains("No timer triggers exist")
        );
    }
}
