//! ACR Tasks' ARM values: a task's properties as a PUT or PATCH asks for them (validated into
//! [`TaskSpec`]), the view everyone with read access gets (secrets left out) against the one
//! `listDetails` gives, and run properties' names.
//!
//! Owns: task names, the property rules (status, platform, cpu, timeout, step, credentials; timer triggers in `timer`,
//! source triggers in `source_trigger`) and
//! which fields are secret. Must never: look identities up or decode a step's task file (the
//! server checks identities; `wharf-tasks` reads task files).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::ArmError;

pub const TASKS: &str = "Microsoft.ContainerRegistry/registries/tasks";
pub const RUNS: &str = "Microsoft.ContainerRegistry/registries/runs";

/// Run timeouts ACR accepts, in seconds (`timeout` of a task or a run request).
pub const TIMEOUT_RANGE: std::ops::RangeInclusive<u64> = 300..=28800;
pub const DEFAULT_TIMEOUT: u64 = 3600;
pub const DEFAULT_CPU: u64 = 2;

/// Task names: 5–50 letters, digits, `-` and `_` (the REST specification's rule).
pub fn validate_task_name(name: &str) -> Result<(), ArmError> {
    let ok =
        (5..=50).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ArmError::bad_request(
            "InvalidTaskName",
            format!("The task name '{name}' is invalid: use 5 to 50 letters, digits, '-' and '_'."),
        ))
    }
}

/// How a run reaches its own (source) registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceAuth {
    /// `loginMode: Default` (or nothing said) in a registry's legacy mode: a run token for its
    /// own registry, pull and push.
    RunToken,
    /// `loginMode: None`, or `identity: "None"` / null: no credentials for the source registry.
    Nothing,
    /// `[system]`: the task's system-assigned identity.
    SystemIdentity,
    /// `[caller]` (quick runs only): the identity that scheduled the run.
    Caller,
    /// A user-assigned identity, by client id.
    ClientId(String),
}

/// A custom registry's credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CustomCredential {
    /// `[system]` or a user-assigned identity's client id.
    Identity(String),
    UserPassword {
        username: String,
        password: String,
    },
}

/// `credentials`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Credentials {
    /// `sourceRegistry.loginMode` as given.
    pub login_mode: Option<String>,
    /// `sourceRegistry.identity` as given (`None` when absent or cleared).
    pub identity: Option<String>,
    pub custom: BTreeMap<String, CustomCredential>,
}

impl Credentials {
    /// Reads `credentials` (absent or null: none).
    pub fn parse(v: &Value) -> Result<Credentials, ArmError> {
        let mut out = Credentials::default();
        if v.is_null() {
            return Ok(out);
        }
        let bad = |m: String| ArmError::bad_request("InvalidTaskCredentials", m);
        let source = &v["sourceRegistry"];
        match &source["loginMode"] {
            Value::Null => {}
            Value::String(m) if m.eq_ignore_ascii_case("Default") || m.eq_ignore_ascii_case("None") => {
                out.login_mode = Some(if m.eq_ignore_ascii_case("None") { "None" } else { "Default" }.to_string());
            }
            other => {
                return Err(bad(format!(
                    "credentials.sourceRegistry.loginMode {other} is invalid: use Default or None."
                )));
            }
        }
        match &source["identity"] {
            Value::Null => {}
            Value::String(s) if s.eq_ignore_ascii_case("none") => {}
            Value::String(s) if !s.is_empty() => out.identity = Some(s.clone()),
            other => {
                return Err(bad(format!(
                    "credentials.sourceRegistry.identity {other} is invalid: use [system], [caller] or a user-assigned identity's client id."
                )));
            }
        }
        match &v["customRegistries"] {
            Value::Null => {}
            Value::Object(m) => {
                for (server, c) in m {
                    if c.is_null() {
                        continue;
                    }
                    let secret = |k: &str| c[k]["value"].as_str().map(str::to_string);
                    let cred = match (c["identity"].as_str(), secret("userName"), secret("password")) {
                        (Some(i), None, None) if !i.is_empty() => CustomCredential::Identity(i.to_string()),
                        (None, Some(username), Some(password)) => {
                            for k in ["userName", "password"] {
                                let t = c[k]["type"].as_str().unwrap_or("Opaque");
                                if !t.eq_ignore_ascii_case("Opaque") {
                                    return Err(bad(format!(
                                        "credentials.customRegistries['{server}'].{k}.type '{t}' is not supported: Wharf reads no key vault; pass the secret itself (type Opaque)."
                                    )));
                                }
                            }
                            CustomCredential::UserPassword { username, password }
                        }
                        _ => {
                            return Err(bad(format!(
                                "credentials.customRegistries['{server}'] needs either 'identity' or both 'userName' and 'password'."
                            )));
                        }
                    };
                    out.custom.insert(server.to_ascii_lowercase(), cred);
                }
            }
            other => return Err(bad(format!("credentials.customRegistries must be an object, not {other}."))),
        }
        Ok(out)
    }

    /// How runs reach the source registry, in a registry whose role-assignment mode is ABAC
    /// (`abac`) or not.
    pub fn source_auth(&self, abac: bool) -> SourceAuth {
        match self.identity.as_deref() {
            Some(i) if i.eq_ignore_ascii_case("[system]") => SourceAuth::SystemIdentity,
            Some(i) if i.eq_ignore_ascii_case("[caller]") => SourceAuth::Caller,
            Some(i) => SourceAuth::ClientId(i.to_string()),
            None if abac => SourceAuth::Nothing,
            None if self.login_mode.as_deref() == Some("None") => SourceAuth::Nothing,
            None => SourceAuth::RunToken,
        }
    }
}

/// A task's `step`, validated (its task file is read later, by `wharf-tasks`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// `EncodedTask`: the task file itself, decoded.
    Encoded { content: String, values: String },
    /// `FileTask`: a task file inside the context.
    File { path: String },
    /// `Docker`: a Dockerfile build.
    Docker { dockerfile: String, images: Vec<String>, push: bool, no_cache: bool, target: Option<String> },
}

impl Step {
    pub fn parse(v: &Value) -> Result<Step, ArmError> {
        let bad = |m: String| ArmError::bad_request("InvalidTaskStep", m);
        let decode = |field: &str| -> Result<String, ArmError> {
            use base64::Engine as _;
            match v[field].as_str().filter(|s| !s.is_empty()) {
                None => Ok(String::new()),
                Some(b64) => {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(b64.trim())
                        .map_err(|e| bad(format!("step.{field} is not base64: {e}")))?;
                    String::from_utf8(bytes).map_err(|_| bad(format!("step.{field} is not UTF-8 text.")))
                }
            }
        };
        match v["type"].as_str().unwrap_or_default() {
            t if t.eq_ignore_ascii_case("EncodedTask") => {
                let content = decode("encodedTaskContent")?;
                if content.trim().is_empty() {
                    return Err(bad("step.encodedTaskContent is required: the base64 of the task file.".into()));
                }
                Ok(Step::Encoded { content, values: decode("encodedValuesContent")? })
            }
            t if t.eq_ignore_ascii_case("FileTask") => match v["taskFilePath"].as_str().filter(|s| !s.is_empty()) {
                Some(p) => Ok(Step::File { path: p.to_string() }),
                None => Err(bad("step.taskFilePath is required for a FileTask step.".into())),
            },
            t if t.eq_ignore_ascii_case("Docker") => {
                let images = match &v["imageNames"] {
                    Value::Null => vec![],
                    Value::Array(a) => a
                        .iter()
                        .map(|i| i.as_str().map(str::to_string))
                        .collect::<Option<Vec<_>>>()
                        .ok_or_else(|| bad("step.imageNames must be strings.".into()))?,
                    _ => return Err(bad("step.imageNames must be a list.".into())),
                };
                Ok(Step::Docker {
                    dockerfile: v["dockerFilePath"]
                        .as_str()
                        .filter(|s| !s.is_empty())
                        .unwrap_or("Dockerfile")
                        .to_string(),
                    push: v["isPushEnabled"].as_bool().unwrap_or(true),
                    no_cache: v["noCache"].as_bool().unwrap_or(false),
                    target: v["target"].as_str().filter(|s| !s.is_empty()).map(str::to_string),
                    images,
                })
            }
            "" => Err(bad("step.type is required: Docker, EncodedTask or FileTask.".into())),
            other => Err(bad(format!("step.type '{other}' is invalid: use Docker, EncodedTask or FileTask."))),
        }
    }

    /// The step's context (`contextPath`): `None` for none (`/dev/null` or absent).
    pub fn context(v: &Value) -> Option<String> {
        v["contextPath"].as_str().filter(|c| !c.is_empty() && *c != "/dev/null").map(str::to_string)
    }
}

/// A task's properties, validated and normalised (defaults filled in), ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    /// The normalised `properties` object (with secrets: stored, shown only by `listDetails`).
    pub properties: Value,
    pub step: Step,
    pub credentials: Credentials,
    pub timeout: u64,
    pub enabled: bool,
    /// `trigger.timerTriggers`, validated (their schedules parsed).
    pub timers: Vec<crate::timer::TimerTrigger>,
    /// `trigger.sourceTriggers`, validated.
    pub sources: Vec<crate::source_trigger::SourceTrigger>,
}

impl TaskSpec {
    /// Validates `properties` of a PUT (or of the merged result of a PATCH).
    pub fn parse(properties: &Value) -> Result<TaskSpec, ArmError> {
        let Value::Object(_) = properties else {
            return Err(ArmError::invalid_request("'properties' is required and must be an object."));
        };
        let mut p = properties.clone();
        let bad = |code: &str, m: String| ArmError::bad_request(code, m);
        let status = match p["status"].as_str() {
            None => "Enabled",
            Some(s) if s.eq_ignore_ascii_case("Enabled") => "Enabled",
            Some(s) if s.eq_ignore_ascii_case("Disabled") => "Disabled",
            Some(s) => {
                return Err(bad("InvalidTaskStatus", format!("status '{s}' is invalid: use Enabled or Disabled.")));
            }
        };
        p["status"] = json!(status);
        let os = p["platform"]["os"].as_str().unwrap_or("Linux");
        if !os.eq_ignore_ascii_case("linux") {
            return Err(bad(
                "UnsupportedPlatform",
                format!("platform.os '{os}' is not supported: Wharf's agents run Linux containers."),
            ));
        }
        let arch = p["platform"]["architecture"].as_str().unwrap_or("amd64").to_string();
        if !matches!(arch.to_ascii_lowercase().as_str(), "amd64" | "x86" | "386" | "arm" | "arm64") {
            return Err(bad(
                "UnsupportedPlatform",
                format!("platform.architecture '{arch}' is invalid: use amd64, x86, 386, arm or arm64."),
            ));
        }
        let mut platform = json!({"os": "linux", "architecture": arch.to_ascii_lowercase()});
        if let Some(v) = p["platform"]["variant"].as_str().filter(|v| !v.is_empty()) {
            platform["variant"] = json!(v);
        }
        p["platform"] = platform;
        let cpu = match &p["agentConfiguration"]["cpu"] {
            Value::Null => DEFAULT_CPU,
            v => v.as_u64().filter(|c| (1..=64).contains(c)).ok_or_else(|| {
                bad(
                    "InvalidAgentConfiguration",
                    format!("agentConfiguration.cpu {v} is invalid: use a whole number of CPUs from 1 to 64."),
                )
            })?,
        };
        p["agentConfiguration"] = json!({"cpu": cpu});
        let timeout = parse_timeout(&p["timeout"])?;
        p["timeout"] = json!(timeout);
        let step = Step::parse(&p["step"])?;
        let credentials = Credentials::parse(&p["credentials"])?;
        if p["credentials"].is_null() {
            p["credentials"] = json!({});
        }
        if p["isSystemTask"].is_null() {
            p["isSystemTask"] = json!(false);
        }
        if !p["trigger"].is_null() && !p["trigger"].is_object() {
            return Err(ArmError::invalid_request("'trigger' must be an object."));
        }
        let (timers, listed) = crate::timer::parse_timer_triggers(&p["trigger"]["timerTriggers"])?;
        if !listed.is_null() {
            p["trigger"]["timerTriggers"] = listed;
        }
        if let Some(b) = base_image_trigger(&p["trigger"]["baseImageTrigger"])? {
            p["trigger"]["baseImageTrigger"] = b;
        }
        let (sources, listed) = crate::source_trigger::parse_source_triggers(&p["trigger"]["sourceTriggers"])?;
        if !listed.is_null() {
            p["trigger"]["sourceTriggers"] = listed;
        }
        Ok(TaskSpec { properties: p, step, credentials, timeout, enabled: status == "Enabled", timers, sources })
    }
}

/// `trigger.baseImageTrigger`, normalised: `baseImageTriggerType` `All` or `Runtime` (default
/// `Runtime`), `status` `Enabled` or `Disabled` (default `Enabled`), a `name`, and
/// `updateTriggerPayloadType` (`Default` unless given). `None` when the task has none.
fn base_image_trigger(v: &Value) -> Result<Option<Value>, ArmError> {
    let Value::Object(_) = v else {
        return match v {
            Value::Null => Ok(None),
            _ => Err(ArmError::invalid_request("'trigger.baseImageTrigger' must be an object.")),
        };
    };
    let bad = |m: String| ArmError::bad_request("InvalidBaseImageTrigger", m);
    let mut out = v.clone();
    let kind = match v["baseImageTriggerType"].as_str() {
        None => "Runtime",
        Some(t) if t.eq_ignore_ascii_case("Runtime") => "Runtime",
        Some(t) if t.eq_ignore_ascii_case("All") => "All",
        Some(t) => return Err(bad(format!("baseImageTriggerType '{t}' is invalid: use All or Runtime."))),
    };
    let status = match v["status"].as_str() {
        None => "Enabled",
        Some(t) if t.eq_ignore_ascii_case("Enabled") => "Enabled",
        Some(t) if t.eq_ignore_ascii_case("Disabled") => "Disabled",
        Some(t) => {
            return Err(bad(format!("The base image trigger's status '{t}' is invalid: use Enabled or Disabled.")));
        }
    };
    let name = v["name"].as_str().filter(|n| !n.is_empty()).unwrap_or("defaultBaseimageTriggerName");
    out["baseImageTriggerType"] = json!(kind);
    out["status"] = json!(status);
    out["name"] = json!(name);
    if out["updateTriggerPayloadType"].is_null() {
        out["updateTriggerPayloadType"] = json!("Default");
    }
    Ok(Some(out))
}

/// A run or task `timeout` in seconds (default 3600), inside [`TIMEOUT_RANGE`].
pub fn parse_timeout(v: &Value) -> Result<u64, ArmError> {
    match v {
        Value::Null => Ok(DEFAULT_TIMEOUT),
        v => v.as_u64().filter(|t| TIMEOUT_RANGE.contains(t)).ok_or_else(|| {
            ArmError::bad_request(
                "InvalidTimeout",
                format!(
                    "timeout {v} is invalid: give whole seconds from {} to {} (default {DEFAULT_TIMEOUT}).",
                    TIMEOUT_RANGE.start(),
                    TIMEOUT_RANGE.end()
                ),
            )
        }),
    }
}

/// The properties everyone who may read a task sees: secrets (custom registries' user names and
/// passwords, the context access token, secret values and arguments, encoded values, source
/// trigger tokens) are left out; `listDetails` returns them.
pub fn public_properties(properties: &Value) -> Value {
    let mut p = properties.clone();
    if let Some(Value::Object(m)) = p.get_mut("credentials").and_then(|c| c.get_mut("customRegistries")) {
        for c in m.values_mut() {
            for k in ["userName", "password"] {
                if let Some(Value::Object(s)) = c.get_mut(k) {
                    s.remove("value");
                }
            }
        }
    }
    if let Some(Value::Object(step)) = p.get_mut("step") {
        step.remove("contextAccessToken");
        step.remove("encodedValuesContent");
        for list in ["values", "arguments"] {
            if let Some(Value::Array(items)) = step.get_mut(list) {
                for i in items.iter_mut() {
                    if i["isSecret"].as_bool() == Some(true)
                        && let Value::Object(o) = i
                    {
                        o.remove("value");
                    }
                }
            }
        }
    }
    if let Some(Value::Array(triggers)) = p.get_mut("trigger").and_then(|t| t.get_mut("sourceTriggers")) {
        for t in triggers {
            if let Some(Value::Object(a)) = t.pointer_mut("/sourceRepository/sourceControlAuthProperties") {
                a.remove("token");
                a.remove("refreshToken");
            }
        }
    }
    p
}

/// RFC 7396 JSON merge patch: `patch` onto `target` (null deletes a key; objects merge; anything
/// else replaces).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Default::default());
            }
            let t = target.as_object_mut().expect("an object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(yaml: &str) -> Value {
        use base64::Engine as _;
        json!({"type": "EncodedTask", "encodedTaskContent": base64::engine::general_purpose::STANDARD.encode(yaml)})
    }

    #[test]
    fn names() {
        assert!(validate_task_name("build-app_1").is_ok());
        for bad in ["t1", "has space", "a.b.c.d", &"x".repeat(51)] {
            assert_eq!(validate_task_name(bad).unwrap_err().code, "InvalidTaskName", "{bad}");
        }
    }

    #[test]
    fn defaults_are_filled_in() {
        let spec = TaskSpec::parse(&json!({"step": encoded("steps:\n  - cmd: busybox\n")})).unwrap();
        assert_eq!(spec.timeout, 3600);
        assert!(spec.enabled);
        assert_eq!(spec.properties["platform"], json!({"os": "linux", "architecture": "amd64"}));
        assert_eq!(spec.properties["agentConfiguration"], json!({"cpu": 2}));
        assert_eq!(spec.properties["credentials"], json!({}));
        assert!(matches!(spec.step, Step::Encoded { ref content, .. } if content.contains("busybox")));
        let spec = TaskSpec::parse(&json!({"step": encoded("steps:\n  - cmd: busybox\n"),
            "trigger": {"baseImageTrigger": {"baseImageTriggerType": "all", "status": "disabled"}}}))
        .unwrap();
        assert_eq!(
            spec.properties["trigger"]["baseImageTrigger"],
            json!({"baseImageTriggerType": "All", "status": "Disabled", "name": "defaultBaseimageTriggerName",
                   "updateTriggerPayloadType": "Default"})
        );
    }

    #[test]
    fn bad_properties_are_refused_with_their_code() {
        let step = encoded("steps:\n  - cmd: busybox\n");
        let cases = [
            (json!({"step": step, "timeout": 5}), "InvalidTimeout"),
            (json!({"step": step, "timeout": 100000}), "InvalidTimeout"),
            (json!({"step": step, "platform": {"os": "Windows"}}), "UnsupportedPlatform"),
            (json!({"step": step, "agentConfiguration": {"cpu": 0}}), "InvalidAgentConfiguration"),
            (json!({"step": step, "status": "Paused"}), "InvalidTaskStatus"),
            (
                json!({"step": step, "trigger": {"baseImageTrigger": {"baseImageTriggerType": "Some"}}}),
                "InvalidBaseImageTrigger",
            ),
            (json!({"step": step, "trigger": {"baseImageTrigger": {"status": "On"}}}), "InvalidBaseImageTrigger"),
            (json!({"step": step, "trigger": {"baseImageTrigger": "yes"}}), "InvalidRequestContent"),
            (json!({"step": {"type": "Shell"}}), "InvalidTaskStep"),
            (json!({"step": {"type": "EncodedTask", "encodedTaskContent": "%%%"}}), "InvalidTaskStep"),
            (json!({}), "InvalidTaskStep"),
            (
                json!({"step": step, "credentials": {"sourceRegistry": {"loginMode": "Sometimes"}}}),
                "InvalidTaskCredentials",
            ),
            (
                json!({"step": step, "credentials": {"customRegistries": {"r.example": {"userName": {"type": "Vaultsecret", "value": "https://kv/x"}, "password": {"type": "Vaultsecret", "value": "https://kv/y"}}}}}),
                "InvalidTaskCredentials",
            ),
        ];
        for (p, code) in cases {
            assert_eq!(TaskSpec::parse(&p).unwrap_err().code, code, "{p}");
        }
    }

    #[test]
    fn source_auth_follows_mode_and_identity() {
        let c = |v: Value| Credentials::parse(&v).unwrap();
        assert_eq!(c(json!({})).source_auth(false), SourceAuth::RunToken);
        assert_eq!(c(json!({})).source_auth(true), SourceAuth::Nothing);
        assert_eq!(c(json!({"sourceRegistry": {"loginMode": "None"}})).source_auth(false), SourceAuth::Nothing);
        assert_eq!(
            c(json!({"sourceRegistry": {"identity": "[system]"}})).source_auth(true),
            SourceAuth::SystemIdentity
        );
        assert_eq!(c(json!({"sourceRegistry": {"identity": "[caller]"}})).source_auth(true), SourceAuth::Caller);
        assert_eq!(c(json!({"sourceRegistry": {"identity": "None"}})).source_auth(false), SourceAuth::RunToken);
        assert_eq!(
            c(json!({"sourceRegistry": {"identity": "0f5c…"}})).source_auth(false),
            SourceAuth::ClientId("0f5c…".into())
        );
    }

    #[test]
    fn the_public_view_leaves_secrets_out() {
        let p = json!({
            "credentials": {"customRegistries": {"other.localhost": {"userName": {"type": "Opaque", "value": "u"}, "password": {"type": "Opaque", "value": "s3cret"}}}},
            "step": {"type": "EncodedTask", "encodedTaskContent": "eA==", "encodedValuesContent": "c2VjcmV0", "contextAccessToken": "ghp_x",
                     "values": [{"name": "a", "value": "1", "isSecret": false}, {"name": "s", "value": "hidden", "isSecret": true}]},
        });
        let text = public_properties(&p).to_string();
        for secret in ["s3cret", "\"u\"", "ghp_x", "c2VjcmV0", "hidden"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        assert!(text.contains("\"1\""), "non-secret values stay: {text}");
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        let mut t = json!({"a": 1, "c": {"x": 1, "y": 2}, "reg": {"one": {"identity": "[system]"}}});
        merge_patch(&mut t, &json!({"a": null, "c": {"y": null, "z": 3}, "reg": {"two": {"identity": "id"}}}));
        assert_eq!(
            t,
            json!({"c": {"x": 1, "z": 3}, "reg": {"one": {"identity": "[system]"}, "two": {"identity": "id"}}})
        );
    }
}
