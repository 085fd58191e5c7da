//! Timer triggers of ACR tasks: `properties.trigger.timerTriggers` (`[{name, schedule,
//! status}]`), their five-field cron schedules (UTC), how a PATCH merges them (by name, as the
//! real `az acr task timer add|update` relies on), and which tick of a schedule is due.
//!
//! Owns the schedule language and tick arithmetic. Pure: every function takes the time it
//! reasons about; it never reads the clock, stores a claim or queues a run (the server's
//! scheduler does, `triggers/timers.rs` of the server).

use std::fmt;

use chrono::{DateTime, Timelike, Utc};
use serde_json::{Value, json};

use crate::error::ArmError;

/// A validated five-field cron schedule (minute, hour, day of month, month, day of week), read
/// in UTC as ACR does. Day-of-month and day-of-week restrictions both have to match when both
/// are given (NCrontab's reading, which ACR's documentation names as its parser).
#[derive(Clone)]
pub struct Schedule {
    text: String,
    cron: croner::Cron,
}

impl fmt::Debug for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Schedule").field(&self.text).finish()
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const FIELDS: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];

impl Schedule {
    /// Parses `text`; the error says what is wrong, in words (without the field path).
    pub fn parse(text: &str) -> Result<Schedule, String> {
        let fields: Vec<&str> = text.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "a schedule has five fields (minute hour day-of-month month day-of-week, in UTC), not {}",
                fields.len()
            ));
        }
        // The extensions croner reads beyond NCrontab's language (L, W, #, ?, @macros) are
        // refused, so that a schedule means the same here as in ACR.
        for (i, f) in fields.iter().enumerate() {
            if let Some(c) = f.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '*' | ',' | '-' | '/'))) {
                return Err(format!(
                    "the {} field '{f}' has the character '{c}', which cron schedules do not use",
                    FIELDS[i]
                ));
            }
            for word in f.split(|c: char| !c.is_ascii_alphabetic()).filter(|w| !w.is_empty()) {
                let names: &[&str] = match i {
                    3 => &MONTHS,
                    4 => &DAYS,
                    _ => &[],
                };
                if !names.iter().any(|n| n.eq_ignore_ascii_case(word)) {
                    return Err(format!(
                        "the {} field '{f}' has '{word}', which is not a value of that field",
                        FIELDS[i]
                    ));
                }
            }
        }
        let cron = croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Disallowed)
            .year(croner::parser::Year::Disallowed)
            .dom_and_dow(true)
            .build()
            .parse(text)
            .map_err(|e| match e {
                croner::errors::CronError::ComponentError(m) => format!("a value is out of its field's range ({m})"),
                other => other.to_string(),
            })?;
        let s = Schedule { text: fields.join(" "), cron };
        // A schedule that never fires (February 30th) is refused too.
        if s.next_after(DateTime::<Utc>::UNIX_EPOCH).is_none() {
            return Err("the schedule never fires".into());
        }
        Ok(s)
    }

    /// The schedule as given (fields one space apart).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&whole_second(t), false).ok()
    }

    /// The last tick at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&whole_second(t), true).ok()
    }

    /// The tick due in the window `(after, now]`: the latest one in it, if any. Several ticks in
    /// one window (a stalled or stopped scheduler) coalesce into the latest.
    pub fn due(&self, after: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.latest_at_or_before(now).filter(|t| *t > after)
    }
}

fn whole_second(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// One timer trigger of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TimerTrigger {
    pub name: String,
    pub schedule: Schedule,
    pub enabled: bool,
}

/// Reads and normalises `trigger.timerTriggers` (absent or null: none). Names are required
/// and unique (compared exactly, as az compares them); `status` defaults to `Enabled`.
/// Returns the triggers and the normalised JSON list.
pub fn parse_timer_triggers(v: &Value) -> Result<(Vec<TimerTrigger>, Value), ArmError> {
    let bad = |m: String| ArmError::bad_request("InvalidTimerTrigger", m);
    let items = match v {
        Value::Null => return Ok((vec![], Value::Null)),
        Value::Array(a) => a,
        other => return Err(bad(format!("trigger.timerTriggers must be a list, not {other}."))),
    };
    let mut out: Vec<TimerTrigger> = Vec::new();
    let mut normalised = Vec::new();
    for (i, t) in items.iter().enumerate() {
        let at = format!("trigger.timerTriggers[{i}]");
        let name = match t["name"].as_str().map(str::trim) {
            Some(n) if !n.is_empty() && n.len() <= 256 => n.to_string(),
            _ => return Err(bad(format!("{at}.name is required: a name of 1 to 256 characters."))),
        };
        if out.iter().any(|o| o.name == name) {
            return Err(bad(format!("{at}.name '{name}' is used by another timer trigger of the task.")));
        }
        let text = match t["schedule"].as_str() {
            Some(s) if !s.trim().is_empty() => s,
            _ => {
                return Err(bad(format!(
                    "{at}.schedule is required for the timer trigger '{name}': a cron expression such as '0 21 * * *' (UTC)."
                )));
            }
        };
        let schedule = Schedule::parse(text)
            .map_err(|e| bad(format!("{at}.schedule '{text}' of the timer trigger '{name}' is invalid: {e}.")))?;
        let enabled = match &t["status"] {
            Value::Null => true,
            Value::String(s) if s.eq_ignore_ascii_case("Enabled") => true,
            Value::String(s) if s.eq_ignore_ascii_case("Disabled") => false,
            other => return Err(bad(format!("{at}.status {other} is invalid: use Enabled or Disabled."))),
        };
        normalised.push(json!({
            "name": name,
            "schedule": schedule.as_str(),
            "status": if enabled { "Enabled" } else { "Disabled" },
        }));
        out.push(TimerTrigger { name, schedule, enabled });
    }
    Ok((out, Value::Array(normalised)))
}

/// Applies a PATCH's `properties` to a task's stored `properties`: an RFC 7396 merge patch,
/// except `trigger.timerTriggers` and `trigger.sourceTriggers`, which merge by name — an entry
/// naming an existing trigger changes the fields it gives, any other entry is added.
/// (`az acr task timer add` and `update` send only the one timer, `task update` the one source
/// trigger without its token unless given; removing one takes a PUT, as in az.)
pub fn merge_task_patch(properties: &mut Value, patch: &Value) {
    const BY_NAME: [&str; 2] = ["timerTriggers", "sourceTriggers"];
    let lists: Vec<(&str, Vec<Value>)> = BY_NAME
        .iter()
        .filter_map(|k| patch.pointer(&format!("/trigger/{k}")).and_then(Value::as_array).map(|a| (*k, a.clone())))
        .collect();
    if lists.is_empty() {
        crate::task::merge_patch(properties, patch);
        return;
    }
    let mut rest = patch.clone();
    if let Some(Value::Object(t)) = rest.get_mut("trigger") {
        for (k, _) in &lists {
            t.remove(*k);
        }
    }
    crate::task::merge_patch(properties, &rest);
    if !properties["trigger"].is_object() {
        properties["trigger"] = json!({});
    }
    for (key, entries) in lists {
        let list = &mut properties["trigger"][key];
        if !list.is_array() {
            *list = json!([]);
        }
        let list = list.as_array_mut().expect("an array");
        for t in entries {
            match list.iter_mut().find(|e| e["name"].is_string() && e["name"] == t["name"]) {
                Some(existing) => crate::task::merge_patch(existing, &t),
                None => list.push(t),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn schedules_acr_accepts() {
        for s in [
            "* * * * *",
            "0 21 * * *",
            "30 2 * * 1-5",
            "*/15 * * * *",
            "0 0 1 jan *",
            "0 9 * * MON,fri",
            "5,35 */2 1-15 * *",
        ] {
            assert!(Schedule::parse(s).is_ok(), "{s}: {:?}", Schedule::parse(s).err());
        }
    }

    #[test]
    fn bad_schedules_say_why() {
        let cases = [
            ("* * * *", "five fields"),
            ("0 * * * * *", "five fields"),
            ("@hourly", "five fields"),
            ("61 * * * *", "out of its field's range"),
            ("0 24 * * *", "out of its field's range"),
            ("0 0 L * *", "not a value of that field"),
            ("0 0 * * 5#2", "character '#'"),
            ("0 0 ? * *", "character '?'"),
            ("0 0 * * MONDAY", "not a value of that field"),
            ("0 0 30 2 *", "never fires"),
        ];
        for (s, why) in cases {
            let e = Schedule::parse(s).unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn ticks_are_computed_in_utc() {
        let s = Schedule::parse("30 2 * * 1-5").unwrap();
        // 2024-03-01 is a Friday: the next tick after Friday 03:00 is Monday 02:30.
        assert_eq!(s.next_after(at(2024, 3, 1, 3, 0, 0)), Some(at(2024, 3, 4, 2, 30, 0)));
        assert_eq!(s.next_after(at(2024, 3, 4, 2, 29, 59)), Some(at(2024, 3, 4, 2, 30, 0)));
        assert_eq!(s.next_after(at(2024, 3, 4, 2, 30, 0)), Some(at(2024, 3, 5, 2, 30, 0)), "strictly after");
        let every = Schedule::parse("* * * * *").unwrap();
        let t = at(2024, 3, 4, 12, 0, 0) + chrono::Duration::milliseconds(300);
        assert_eq!(every.latest_at_or_before(t), Some(at(2024, 3, 4, 12, 0, 0)));
        assert_eq!(every.next_after(t), Some(at(2024, 3, 4, 12, 1, 0)));
    }

    #[test]
    fn day_of_month_and_day_of_week_both_have_to_match() {
        // Friday the 13th, not every 13th and every Friday.
        let s = Schedule::parse("0 0 13 * 5").unwrap();
        assert_eq!(s.next_after(at(2024, 1, 1, 0, 0, 0)), Some(at(2024, 9, 13, 0, 0, 0)));
    }

    #[test]
    fn the_due_tick_is_the_latest_in_the_window() {
        let s = Schedule::parse("*/5 * * * *").unwrap();
        let now = at(2024, 3, 4, 12, 11, 7);
        assert_eq!(s.due(at(2024, 3, 4, 12, 9, 0), now), Some(at(2024, 3, 4, 12, 10, 0)));
        assert_eq!(s.due(at(2024, 3, 4, 12, 10, 0), now), None, "a tick at the window's start is not in it");
        assert_eq!(s.due(at(2024, 3, 4, 11, 0, 0), now), Some(at(2024, 3, 4, 12, 10, 0)), "missed ticks coalesce");
        assert_eq!(s.due(at(2024, 3, 4, 12, 10, 0), at(2024, 3, 4, 12, 10, 0)), None);
        assert_eq!(s.due(at(2024, 3, 4, 12, 9, 59), at(2024, 3, 4, 12, 10, 0)), Some(at(2024, 3, 4, 12, 10, 0)));
    }

    #[test]
    fn timer_triggers_are_validated_with_their_field() {
        let ok = json!([{"name": "t1", "schedule": "0  21 * * *"}, {"name": "nightly", "schedule": "30 2 * * 1-5", "status": "disabled"}]);
        let (t, v) = parse_timer_triggers(&ok).unwrap();
        assert_eq!(t.len(), 2);
        assert!(t[0].enabled && !t[1].enabled);
        assert_eq!(
            v,
            json!([{"name": "t1", "schedule": "0 21 * * *", "status": "Enabled"}, {"name": "nightly", "schedule": "30 2 * * 1-5", "status": "Disabled"}])
        );
        let cases = [
            (json!({"name": "t1"}), "must be a list"),
            (json!([{"schedule": "* * * * *"}]), "trigger.timerTriggers[0].name is required"),
            (
                json!([{"name": "t1", "schedule": "* * * * *"}, {"name": "t1", "schedule": "0 * * * *"}]),
                "[1].name 't1' is used",
            ),
            (json!([{"name": "t1"}]), "trigger.timerTriggers[0].schedule is required"),
            (
                json!([{"name": "t1", "schedule": "0 25 * * *"}]),
                "trigger.timerTriggers[0].schedule '0 25 * * *' of the timer trigger 't1' is invalid",
            ),
            (json!([{"name": "t1", "schedule": "* * * * *", "status": "On"}]), "trigger.timerTriggers[0].status"),
        ];
        for (v, msg) in cases {
            let e = parse_timer_triggers(&v).unwrap_err();
            assert_eq!(e.code, "InvalidTimerTrigger");
            assert!(e.message.contains(msg), "{v}: {}", e.message);
        }
    }

    #[test]
    fn a_patch_merges_timers_by_name() {
        let mut p = json!({"status": "Enabled", "trigger": {"baseImageTrigger": {"name": "b"}, "timerTriggers": [
            {"name": "t1", "schedule": "0 21 * * *", "status": "Enabled"}]}});
        merge_task_patch(
            &mut p,
            &json!({"trigger": {"timerTriggers": [{"name": "t2", "schedule": "* * * * *", "status": "Enabled"}]}}),
        );
        merge_task_patch(&mut p, &json!({"trigger": {"timerTriggers": [{"name": "t1", "status": "Disabled"}]}}));
        assert_eq!(
            p["trigger"],
            json!({"baseImageTrigger": {"name": "b"}, "timerTriggers": [
                {"name": "t1", "schedule": "0 21 * * *", "status": "Disabled"},
                {"name": "t2", "schedule": "* * * * *", "status": "Enabled"}]})
        );
        // Without timers it is a plain merge patch.
        merge_task_patch(&mut p, &json!({"status": "Disabled", "trigger": {"baseImageTrigger": null}}));
        assert_eq!(p["status"], "Disabled");
        assert!(p["trigger"].get("baseImageTrigger").is_none());
        assert_eq!(p["trigger"]["timerTriggers"].as_array().unwrap().len(), 2);
        // A task without triggers gets its first timer.
        let mut q = json!({});
        merge_task_patch(&mut q, &json!({"trigger": {"timerTriggers": [{"name": "t1", "schedule": "* * * * *"}]}}));
        assert_eq!(q["trigger"]["timerTriggers"][0]["name"], "t1");
    }
}
