//! Runs on the management plane: `listBuildSourceUploadUrl`, `scheduleRun` (a task's run, or a
//! quick run: an encoded task file, a task file in a context, a Docker build of a context — the
//! context uploaded, a git repository, or none), run resources (get, list with `$filter`/`$top`, `isArchiveEnabled`), cancellation and
//! the log link. The run itself is the executor's (`crate::runs`); this file turns requests into
//! queued runs and run records into ARM JSON.
//!
//! Must never: queue a run whose task file does not read, or whose identity the task does not
//! carry; answer a run of another registry; let a run use another registry's upload, or a
//! `file://` repository outside the operator's allowed roots.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};
use wharf_arm::ArmError;
use wharf_arm::task::{self, Credentials, SourceAuth};
use wharf_storage::RunFilter;

use crate::arm::{ArmCtx, json_response, storage_error};
use crate::model::registries::StoredRegistry;
use crate::run_requests::{context_of, platform_of, task_request, values_of};
use crate::runs::{self as executor, Identity, RunContext, RunRequest, Source};

fn bad(code: &str, message: impl Into<String>) -> ArmError {
    ArmError::bad_request(code, message)
}

/// `POST …/listBuildSourceUploadUrl`: a link to upload one build source to (valid for an hour)
/// and the relative path `scheduleRun` names it by.
pub fn upload_url(ctx: &ArmCtx, registry: &StoredRegistry) -> Result<Response, ArmError> {
    let base = ctx.state.base_url(&ctx.headers);
    let (url, relative) =
        crate::sources::upload_link(&ctx.state, &base, &registry.key().0, chrono::Utc::now().timestamp());
    Ok(json_response(StatusCode::OK, &json!({"uploadUrl": url, "relativePath": relative})))
}

fn decode(v: &Value, field: &str) -> Result<String, ArmError> {
    use base64::Engine as _;
    match v[field].as_str().filter(|s| !s.is_empty()) {
        None => Ok(String::new()),
        Some(b) => base64::engine::general_purpose::STANDARD
            .decode(b.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| bad("InvalidRunRequest", format!("'{field}' is not the base64 of UTF-8 text."))),
    }
}

/// ABAC mode refuses `loginMode`, as for tasks.
fn check_mode(registry: &StoredRegistry, credentials: &Credentials) -> Result<(), ArmError> {
    if registry.properties.role_assignment_mode.is_abac() && credentials.login_mode.is_some() {
        return Err(bad(
            "AuthModeNotSupported",
            format!(
                "The registry '{}' uses the role assignment mode 'AbacRepositoryPermissions', where '--auth-mode' (credentials.sourceRegistry.loginMode) is not supported: use '--source-acr-auth-id [caller]' or 'none'.",
                registry.record.name
            ),
        ));
    }
    Ok(())
}

/// `POST …/scheduleRun`.
pub async fn schedule(ctx: &ArmCtx, registry: &StoredRegistry) -> Result<Response, ArmError> {
    let body = ctx.json()?;
    let kind = body["type"].as_str().unwrap_or_default().to_string();
    let request = match kind.to_ascii_lowercase().as_str() {
        "taskrunrequest" => task_run(ctx, registry, &body).await?,
        "encodedtaskrunrequest" => quick_run(ctx, registry, &body)?,
        "filetaskrunrequest" => file_run(ctx, registry, &body)?,
        "dockerbuildrequest" => docker_run(ctx, registry, &body)?,
        "" => {
            return Err(bad(
                "InvalidRunRequest",
                "'type' is required: TaskRunRequest, EncodedTaskRunRequest, FileTaskRunRequest or DockerBuildRequest.",
            ));
        }
        other => {
            return Err(bad(
                "InvalidRunRequest",
                format!(
                    "The run request type '{other}' is invalid: use TaskRunRequest, EncodedTaskRunRequest, FileTaskRunRequest or DockerBuildRequest."
                ),
            ));
        }
    };
    request.source.validate(&request.values, &request.arguments).map_err(|e| bad("InvalidTaskFile", e))?;
    let key = registry.key();
    if let RunContext::Uploaded { upload } = &request.context {
        use crate::sources::ClaimError;
        match crate::sources::claim(&ctx.state, &key.0, upload).await {
            Ok(()) => {}
            Err(ClaimError::Missing | ClaimError::Taken) => {
                return Err(bad(
                    "SourceNotFound",
                    "The uploaded source is already used by another run: upload the context again for this one.",
                ));
            }
            Err(ClaimError::Io(e)) => {
                return Err(ArmError::new(
                    503,
                    "ServiceUnavailable",
                    format!("Claiming the uploaded source failed ({e}); retry."),
                ));
            }
        }
    }
    let upload = match &request.context {
        RunContext::Uploaded { upload } => Some(upload.clone()),
        _ => None,
    };
    let run = match executor::enqueue(&ctx.state, registry, request).await {
        Ok(r) => r,
        Err(e) => {
            if let Some(u) = upload {
                crate::sources::release(&ctx.state, &key.0, &u).await;
            }
            return Err(storage_error("queueing a run", e));
        }
    };
    Ok(json_response(StatusCode::OK, &executor::run_json(&registry.record.id, &run)))
}

async fn task_run(ctx: &ArmCtx, registry: &StoredRegistry, body: &Value) -> Result<RunRequest, ArmError> {
    let task_ref = body["taskId"].as_str().unwrap_or_default();
    let name = task_ref.rsplit('/').next().unwrap_or_default();
    let prefix = format!("{}/tasks/", registry.record.id);
    if name.is_empty()
        || (task_ref.contains('/') && !task_ref.to_ascii_lowercase().starts_with(&prefix.to_ascii_lowercase()))
    {
        return Err(bad("InvalidRunRequest", format!("'taskId' must name a task of this registry ({prefix}<name>).")));
    }
    let host = super::find(ctx, registry, name).await?.ok_or_else(|| {
        ArmError::new(
            404,
            "ResourceNotFound",
            format!("The task '{name}' of registry '{}' could not be found.", registry.record.name),
        )
    })?;
    task_request(&ctx.state, registry, &host, body)
}

/// A quick run (`EncodedTaskRunRequest`, `FileTaskRunRequest`, `DockerBuildRequest`) of
/// `source` with the body's context, credentials, values and settings.
fn quick_run_of(
    ctx: &ArmCtx,
    registry: &StoredRegistry,
    body: &Value,
    source: Source,
    context_required: bool,
) -> Result<RunRequest, ArmError> {
    let context = context_of(&ctx.state, registry, body["sourceLocation"].as_str().unwrap_or_default(), None)?;
    if context_required && context == RunContext::Empty {
        return Err(bad(
            "InvalidRunRequest",
            "'sourceLocation' is required: the relativePath of an uploaded source (listBuildSourceUploadUrl) or a git URL.",
        ));
    }
    let credentials = Credentials::parse(&body["credentials"])?;
    check_mode(registry, &credentials)?;
    let abac = registry.properties.role_assignment_mode.is_abac();
    let identity = match credentials.source_auth(abac) {
        SourceAuth::RunToken => Identity::RunToken,
        SourceAuth::Nothing => Identity::Nothing,
        SourceAuth::Caller => Identity::Caller { object_id: ctx.caller.object_id().to_string() },
        SourceAuth::SystemIdentity | SourceAuth::ClientId(_) => {
            return Err(bad(
                "InvalidRunRequest",
                "A quick run has no identity of its own: use '--source-acr-auth-id [caller]' (the run acts with your permissions) or 'none'.",
            ));
        }
    };
    if credentials.custom.values().any(|c| matches!(c, task::CustomCredential::Identity(_))) {
        return Err(bad(
            "InvalidRunRequest",
            "A quick run has no identity for custom registries: give them a user name and password.",
        ));
    }
    let mut platform =
        json!({"os": "linux", "architecture": body["platform"]["architecture"].as_str().unwrap_or("amd64")});
    if let Some(v) = body["platform"]["variant"].as_str().filter(|v| !v.is_empty()) {
        platform["variant"] = json!(v);
    }
    Ok(RunRequest {
        task: None,
        task_id: None,
        source,
        context,
        values: values_of(&body["values"], "values")?,
        arguments: values_of(&body["arguments"], "arguments")?,
        identity,
        custom: credentials.custom,
        timeout: task::parse_timeout(&body["timeout"])?,
        platform,
        agent: json!({"cpu": body["agentConfiguration"]["cpu"].as_u64().unwrap_or(task::DEFAULT_CPU)}),
        archive: body["isArchiveEnabled"].as_bool().unwrap_or(false),
        branch: None,
    })
}

fn quick_run(ctx: &ArmCtx, registry: &StoredRegistry, body: &Value) -> Result<RunRequest, ArmError> {
    let content = decode(body, "encodedTaskContent")?;
    if content.trim().is_empty() {
        return Err(bad("InvalidRunRequest", "'encodedTaskContent' is required: the base64 of the task file."));
    }
    let source = Source::Yaml { content, values: decode(body, "encodedValuesContent")? };
    quick_run_of(ctx, registry, body, source, false)
}

/// `FileTaskRunRequest`: a task file inside the uploaded or git context (`acb.yaml` unless
/// `taskFilePath` names another).
fn file_run(ctx: &ArmCtx, registry: &StoredRegistry, body: &Value) -> Result<RunRequest, ArmError> {
    let path = body["taskFilePath"].as_str().filter(|p| !p.is_empty()).unwrap_or("acb.yaml").to_string();
    let values = body["valuesFilePath"].as_str().filter(|v| !v.is_empty()).map(str::to_string);
    quick_run_of(ctx, registry, body, Source::File { path, values }, true)
}

/// `DockerBuildRequest` (`az acr build`): a Dockerfile build of the context, pushed unless
/// `isPushEnabled` is false.
fn docker_run(ctx: &ArmCtx, registry: &StoredRegistry, body: &Value) -> Result<RunRequest, ArmError> {
    let images = match &body["imageNames"] {
        Value::Null => vec![],
        Value::Array(a) => a
            .iter()
            .map(|i| i.as_str().map(str::to_string))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| bad("InvalidRunRequest", "'imageNames' must be a list of image names."))?,
        _ => return Err(bad("InvalidRunRequest", "'imageNames' must be a list of image names.")),
    };
    let source = Source::Docker {
        images,
        dockerfile: body["dockerFilePath"].as_str().filter(|d| !d.is_empty()).unwrap_or("Dockerfile").to_string(),
        push: body["isPushEnabled"].as_bool().unwrap_or(true),
        no_cache: body["noCache"].as_bool().unwrap_or(false),
        target: body["target"].as_str().filter(|t| !t.is_empty()).map(str::to_string),
        platform: platform_of(&body["platform"]),
    };
    quick_run_of(ctx, registry, body, source, true)
}

async fn require(ctx: &ArmCtx, registry: &StoredRegistry, run: &str) -> Result<wharf_storage::RunRecord, ArmError> {
    ctx.state.meta.run_get(&registry.key(), run).await.map_err(|e| storage_error("reading a run", e))?.ok_or_else(
        || {
            ArmError::new(
                404,
                "ResourceNotFound",
                format!("The run '{run}' of registry '{}' could not be found.", registry.record.name),
            )
        },
    )
}

pub async fn get(ctx: &ArmCtx, registry: &StoredRegistry, run: &str) -> Result<Response, ArmError> {
    let r = require(ctx, registry, run).await?;
    Ok(json_response(StatusCode::OK, &executor::run_json(&registry.record.id, &r)))
}

/// An output image a `contains(OutputImageManifests, '…')` clause asks for: `repo@digest`
/// (what az sends, after resolving `--image` to a digest) or `repo:tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum OutputImage {
    Digest { repository: String, digest: String },
    Tag { repository: String, tag: String },
}

impl OutputImage {
    fn parse(v: &str) -> Option<OutputImage> {
        if let Some((repository, digest)) = v.split_once('@') {
            let digest = wharf_oci::Digest::parse(digest).ok()?;
            return (!repository.is_empty())
                .then(|| OutputImage::Digest { repository: repository.to_string(), digest: digest.to_string() });
        }
        // The tag is after the last ':' that follows the last '/' (a registry port is not a tag).
        let slash = v.rfind('/').map_or(0, |i| i + 1);
        let (repository, tag) = v[slash..].rfind(':').map(|i| (&v[..slash + i], &v[slash + i + 1..]))?;
        (!repository.is_empty() && !tag.is_empty())
            .then(|| OutputImage::Tag { repository: repository.to_string(), tag: tag.to_string() })
    }

    /// Whether a run's `outputImages` holds this image (repositories compare
    /// case-insensitively, as ACR's names do; digests and tags exactly).
    fn in_run(&self, run: &wharf_storage::RunRecord) -> bool {
        let Some(images) = run.body["properties"]["outputImages"].as_array() else { return false };
        images.iter().any(|i| {
            let repo = i["repository"].as_str().unwrap_or_default();
            match self {
                OutputImage::Digest { repository, digest } => {
                    repo.eq_ignore_ascii_case(repository) && i["digest"].as_str() == Some(digest)
                }
                OutputImage::Tag { repository, tag } => {
                    repo.eq_ignore_ascii_case(repository) && i["tag"].as_str() == Some(tag)
                }
            }
        })
    }
}

/// A runs listing's `$filter`, read: what the store filters, and what is matched on the runs
/// it returns.
#[derive(Debug, Default)]
struct ListFilter {
    store: RunFilter,
    run_id: Option<String>,
    image: Option<OutputImage>,
}

/// `$filter` of a runs listing: clauses `Field eq 'value'` (TaskName, Status, RunId) and
/// `contains(OutputImageManifests, 'repo@digest')`, joined by `and`.
fn parse_filter(f: &str) -> Result<ListFilter, ArmError> {
    let mut filter = ListFilter::default();
    let refuse = |clause: &str| {
        bad(
            "InvalidFilter",
            format!(
                "The $filter clause '{clause}' is not supported: use TaskName eq '<task>', Status eq '<status>', RunId eq '<id>' and contains(OutputImageManifests, '<repository>@<digest>'), joined by 'and'."
            ),
        )
    };
    let quoted = |v: &str| v.trim().strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).map(str::to_string);
    let lower = f.to_ascii_lowercase();
    let mut offset = 0;
    loop {
        let at = lower[offset..].find(" and ").map(|i| i + offset);
        let clause = match at {
            Some(i) => &f[offset..i],
            None => &f[offset..],
        };
        let c = clause.trim();
        if c.len() > "contains(".len() && c[.."contains(".len()].eq_ignore_ascii_case("contains(") {
            let inner = c["contains(".len()..].strip_suffix(')').ok_or_else(|| refuse(c))?;
            let (field, value) = inner.split_once(',').ok_or_else(|| refuse(c))?;
            if !field.trim().eq_ignore_ascii_case("OutputImageManifests") {
                return Err(refuse(c));
            }
            let value = quoted(value).ok_or_else(|| refuse(c))?;
            filter.image = Some(OutputImage::parse(&value).ok_or_else(|| refuse(c))?);
        } else {
            let Some((field, value)) = c.split_once(" eq ").or_else(|| c.split_once(" EQ ")) else {
                return Err(refuse(c));
            };
            let value = quoted(value).ok_or_else(|| refuse(c))?;
            match field.trim().to_ascii_lowercase().as_str() {
                "taskname" => filter.store.task = Some(value),
                "status" => {
                    let s = wharf_tasks::RunStatus::parse(&value).ok_or_else(|| refuse(c))?;
                    filter.store.status = Some(s.as_str().to_string());
                }
                "runid" => filter.run_id = Some(value.to_ascii_lowercase()),
                _ => return Err(refuse(c)),
            }
        }
        match at {
            Some(i) => offset = i + 5,
            None => break,
        }
    }
    Ok(filter)
}

pub async fn list(ctx: &ArmCtx, registry: &StoredRegistry) -> Result<Response, ArmError> {
    let mut filter = match ctx.query.get("$filter").filter(|f| !f.trim().is_empty()) {
        Some(f) => parse_filter(f)?,
        None => ListFilter::default(),
    };
    let top = match ctx.query.get("$top") {
        Some(top) => Some(
            top.parse::<usize>()
                .ok()
                .filter(|t| *t > 0)
                .ok_or_else(|| bad("InvalidParameter", format!("$top '{top}' is invalid: give a positive number.")))?,
        ),
        None => None,
    };
    // `$top` counts the runs that match the whole filter: the store can apply it only when it
    // applies the whole filter.
    let matched_here = filter.run_id.is_some() || filter.image.is_some();
    filter.store.top = if matched_here { None } else { top };
    let runs =
        ctx.state.meta.run_list(&registry.key(), &filter.store).await.map_err(|e| storage_error("listing runs", e))?;
    let value: Vec<Value> = runs
        .iter()
        .filter(|r| filter.run_id.as_deref().is_none_or(|id| r.run_id.eq_ignore_ascii_case(id)))
        .filter(|r| filter.image.as_ref().is_none_or(|i| i.in_run(r)))
        .take(top.unwrap_or(usize::MAX))
        .map(|r| executor::run_json(&registry.record.id, r))
        .collect();
    Ok(json_response(StatusCode::OK, &json!({"value": value})))
}

/// `PATCH …/runs/{id}`: only `isArchiveEnabled` changes.
pub async fn patch(ctx: &ArmCtx, registry: &StoredRegistry, run: &str) -> Result<Response, ArmError> {
    let body = ctx.json()?;
    let archive = match &body["isArchiveEnabled"] {
        Value::Bool(b) => *b,
        Value::Null => match &body["properties"]["isArchiveEnabled"] {
            Value::Bool(b) => *b,
            _ => {
                return Err(bad(
                    "InvalidRunUpdate",
                    "Only 'isArchiveEnabled' (true or false) of a run can be changed.",
                ));
            }
        },
        _ => return Err(bad("InvalidRunUpdate", "'isArchiveEnabled' must be true or false.")),
    };
    for _ in 0..5 {
        let mut r = require(ctx, registry, run).await?;
        let expected = r.status.clone();
        r.body["properties"]["isArchiveEnabled"] = json!(archive);
        if ctx
            .state
            .meta
            .run_update(&r, &expected, chrono::Utc::now())
            .await
            .map_err(|e| storage_error("updating a run", e))?
        {
            return Ok(json_response(StatusCode::OK, &executor::run_json(&registry.record.id, &r)));
        }
    }
    Err(ArmError::new(409, "Conflict", format!("The run '{run}' changed while it was being updated; retry.")))
}

/// `POST …/runs/{id}/cancel`: a queued run is canceled at once; a running one is stopped (its
/// processes and containers killed) and reported `Canceled` by its executor.
pub async fn cancel(ctx: &ArmCtx, registry: &StoredRegistry, run: &str) -> Result<Response, ArmError> {
    let r = require(ctx, registry, run).await?;
    let status = wharf_tasks::RunStatus::parse(&r.status).unwrap_or(wharf_tasks::RunStatus::Error);
    if status.is_finished() {
        return Err(ArmError::new(
            409,
            "RunAlreadyFinished",
            format!("The run '{}' already finished with status '{}'; there is nothing to cancel.", r.run_id, r.status),
        ));
    }
    executor::cancel(&ctx.state, r).await.map_err(|e| storage_error("canceling a run", e))?;
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = StatusCode::OK;
    Ok(resp)
}

/// `POST …/runs/{id}/listLogSasUrl`: a read-only link to the run's log, valid for the run's
/// timeout plus an hour.
pub async fn log_link(ctx: &ArmCtx, registry: &StoredRegistry, run: &str) -> Result<Response, ArmError> {
    let r = require(ctx, registry, run).await?;
    let timeout = r.body["properties"]["timeout"].as_i64().unwrap_or(task::DEFAULT_TIMEOUT as i64);
    let expiry = chrono::Utc::now().timestamp() + timeout + 3600;
    let link = executor::log_link(&ctx.state, &ctx.state.base_url(&ctx.headers), &registry.key().0, &r.run_id, expiry);
    Ok(json_response(StatusCode::OK, &json!({"logLink": link})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        let f = parse_filter("TaskName eq 't1' and Status eq 'succeeded'").unwrap();
        assert_eq!(f.store.task.as_deref(), Some("t1"));
        assert_eq!(f.store.status.as_deref(), Some("Succeeded"));
        assert_eq!((f.run_id, f.image), (None, None));
        assert_eq!(parse_filter("RunId eq 'CA3'").unwrap().run_id.as_deref(), Some("ca3"));
        let digest = format!("sha256:{}", "ab".repeat(32));
        let f =
            parse_filter(&format!("TaskName eq 't1' and contains(OutputImageManifests, 'team/app@{digest}')")).unwrap();
        assert_eq!(f.store.task.as_deref(), Some("t1"));
        assert_eq!(f.image, Some(OutputImage::Digest { repository: "team/app".into(), digest: digest.clone() }));
        let f = parse_filter("CONTAINS(outputimagemanifests,'team/app:v1')").unwrap();
        assert_eq!(f.image, Some(OutputImage::Tag { repository: "team/app".into(), tag: "v1".into() }));
        for bad in [
            "contains(OutputImageManifests, 'a@sha256:1')",
            "contains(OutputImageManifests, 'no-tag')",
            "contains(TaskName, 'a:b')",
            "contains(OutputImageManifests, a:b)",
            "TaskName eq t1",
            "Status eq 'Sleeping'",
            "Owner eq 'x'",
        ] {
            assert_eq!(parse_filter(bad).unwrap_err().code, "InvalidFilter", "{bad}");
        }
    }

    #[test]
    fn output_images_match_by_digest_or_tag() {
        let digest = format!("sha256:{}", "cd".repeat(32));
        let run = wharf_storage::RunRecord {
            registry: wharf_storage::RegistryKey("k".into()),
            run_id: "ca1".into(),
            number: 1,
            task: None,
            status: "Succeeded".into(),
            body: json!({"properties": {"outputImages": [
                {"registry": "r.localhost:5000", "repository": "team/app", "tag": "v1", "digest": digest}]}}),
            agent: None,
            lease_until: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        };
        let image = |v: &str| OutputImage::parse(v).unwrap();
        assert!(image(&format!("Team/App@{digest}")).in_run(&run));
        assert!(image("team/app:v1").in_run(&run));
        assert!(!image("team/app:v2").in_run(&run));
        assert!(!image(&format!("team/other@{digest}")).in_run(&run));
        assert!(!image(&format!("team/app@sha256:{}", "00".repeat(32))).in_run(&run));
    }
}
