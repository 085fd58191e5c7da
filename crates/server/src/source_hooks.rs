//! The webhook plane of source triggers: the address GitHub and Azure DevOps post pushes and
//! pull requests to, `POST /wharf-hooks/{registry}/{task}/{trigger}`, served on every listener
//! the other planes are on. ACR registers its webhook on GitHub itself with the task's token;
//! Wharf cannot reach GitHub, so the operator adds the webhook, with the address and secret
//! `listDetails` (`wharf acr task show-webhook`) gives.
//!
//! The permission of every endpoint is [`HookEndpoint::permission`]: a delivery proven with the
//! trigger's secret — GitHub's `X-Hub-Signature-256` (an HMAC-SHA256 of the raw body), Azure
//! DevOps' basic authentication password (its service hooks cannot sign) — checked in
//! [`authorize`], the plane's one decision, in constant time. What proof counts is the
//! trigger's `sourceControlType`, never the request's headers. A trigger, task or registry that
//! does not exist gets exactly the answer a wrong signature gets. Only then is the payload read
//! and handed to the trigger (`triggers::webhooks::deliver`).
//!
//! Must never: read more than [`MAX_BODY`] bytes, say anything about a task to a caller without
//! its secret, or queue a run itself.

pub mod payload;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use axum::response::Response;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use wharf_arm::ArmError;
use wharf_arm::source_trigger::SourceControl;

use crate::http::json_response;
use crate::state::AppState;
use crate::triggers::webhooks::{self, DeliverError, Outcome};

pub use crate::triggers::webhooks::PREFIX;

/// The largest delivery read (GitHub's pushes of many commits stay well below it).
pub const MAX_BODY: usize = 1 << 20;

/// A request to the webhook plane: one source trigger's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEndpoint {
    pub registry: String,
    pub task: String,
    pub trigger: String,
}

/// What an endpoint needs: a delivery proven with this trigger's secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    pub registry: String,
    pub task: String,
    pub trigger: String,
}

fn is_name(s: &str) -> bool {
    (1..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl HookEndpoint {
    /// `None` for a path that is not a trigger's address.
    pub fn parse(path: &str) -> Option<HookEndpoint> {
        let rest = path.strip_prefix(PREFIX)?;
        let [registry, task, trigger] = rest.split('/').collect::<Vec<_>>()[..] else { return None };
        if ![registry, task, trigger].iter().all(|s| is_name(s)) {
            return None;
        }
        Some(HookEndpoint { registry: registry.into(), task: task.into(), trigger: trigger.into() })
    }

    /// The plane's permission table (one row: every delivery is proven with its trigger's
    /// secret).
    pub fn permission(&self) -> Permission {
        Permission { registry: self.registry.clone(), task: self.task.clone(), trigger: self.trigger.clone() }
    }
}

/// What proves a delivery for a trigger: its provider and secret.
pub struct Expected {
    pub control: SourceControl,
    pub secret: String,
}

/// Why a delivery is refused (logged; the caller always gets one answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such registry, task or trigger.
    Unknown,
    /// The provider's proof is absent.
    Missing,
    /// The proof is malformed or wrong.
    Mismatch,
}

/// GitHub's proof: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
fn github_signature(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(), Refusal> {
    let value = headers.get("x-hub-signature-256").ok_or(Refusal::Missing)?;
    let hex_sig = value.to_str().ok().and_then(|v| v.trim().strip_prefix("sha256=")).ok_or(Refusal::Mismatch)?;
    let sig = hex::decode(hex_sig).map_err(|_| Refusal::Mismatch)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| Refusal::Mismatch)?;
    mac.update(body);
    // `verify_slice` compares in constant time.
    mac.verify_slice(&sig).map_err(|_| Refusal::Mismatch)
}

/// Azure DevOps' proof: `Authorization: Basic` with the secret as the password (any non-empty
/// user name).
fn basic_password(secret: &str, headers: &HeaderMap) -> Result<(), Refusal> {
    let value = headers.get(http::header::AUTHORIZATION).ok_or(Refusal::Missing)?;
    let value = value.to_str().map_err(|_| Refusal::Mismatch)?;
    let creds = wharf_identity::parse_basic_authorization(value).map_err(|_| Refusal::Mismatch)?;
    if wharf_identity::secret::constant_time_eq(creds.password.as_bytes(), secret.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::Mismatch)
    }
}

/// The plane's one decision: is the delivery proven with the secret of the trigger its
/// permission names (`expected`: `None` when there is no such trigger, which is refused after
/// the same work a real check does).
pub fn authorize(
    _permission: &Permission,
    expected: Option<&Expected>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Refusal> {
    let Some(e) = expected else {
        let _ = github_signature("no such trigger", headers, body);
        return Err(Refusal::Unknown);
    };
    match e.control {
        SourceControl::Github => github_signature(&e.secret, headers, body),
        SourceControl::AzureDevOps => basic_password(&e.secret, headers),
    }
}

/// The plane's errors, each with its status and code (ARM's error shape).
#[derive(Debug)]
pub enum HookError {
    NotAHook,
    MethodNotAllowed,
    TooLarge,
    /// Any refusal, whatever its reason: the answer reveals nothing about the task.
    Unauthorized,
    InvalidPayload(String),
    Unavailable,
    /// The task cannot run (its identity gone, its context invalid): only a caller with the
    /// secret gets here.
    Task(ArmError),
}

impl HookError {
    fn error(&self) -> ArmError {
        match self {
            HookError::NotAHook => ArmError::new(404, "NotFound", "This is not a source trigger's webhook address."),
            HookError::MethodNotAllowed => {
                ArmError::new(405, "MethodNotAllowed", "A source trigger's webhook takes POST only.")
            }
            HookError::TooLarge => ArmError::new(
                413,
                "PayloadTooLarge",
                format!("The delivery is larger than {MAX_BODY} bytes, or its body broke off."),
            ),
            HookError::Unauthorized => ArmError::new(
                401,
                "Unauthorized",
                "The delivery is not signed with this webhook's secret: GitHub signs with the webhook's secret (X-Hub-Signature-256), Azure DevOps sends it as the basic authentication password. 'wharf acr task show-webhook' shows the address and secret.",
            ),
            HookError::InvalidPayload(m) => {
                ArmError::new(400, "InvalidPayload", format!("The delivery cannot be read: {m}."))
            }
            HookError::Unavailable => ArmError::new(
                503,
                "ServiceUnavailable",
                "The server's store is unavailable; the delivery can be retried.",
            ),
            HookError::Task(e) => e.clone(),
        }
    }

    fn response(&self) -> Response {
        let e = self.error();
        json_response(StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), &e.body())
    }
}

fn storage(e: wharf_storage::StorageError) -> HookError {
    tracing::error!(error = %e, "a source trigger's webhook could not be handled");
    HookError::Unavailable
}

pub async fn handle(state: Arc<AppState>, req: Request<Body>) -> Response {
    match serve(&state, req).await {
        Ok(r) => r,
        Err(e) => e.response(),
    }
}

async fn serve(state: &AppState, req: Request<Body>) -> Result<Response, HookError> {
    let endpoint = HookEndpoint::parse(req.uri().path()).ok_or(HookError::NotAHook)?;
    if req.method() != Method::POST {
        return Err(HookError::MethodNotAllowed);
    }
    let declared = req
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(HookError::TooLarge);
    }
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY).await.map_err(|_| HookError::TooLarge)?;
    let target = webhooks::find(state, &endpoint.registry, &endpoint.task, &endpoint.trigger).await.map_err(storage)?;
    let expected = target
        .as_ref()
        .map(|t| Expected { control: t.trigger.control, secret: webhooks::secret(state, &t.host, &t.trigger.name) });
    if let Err(why) = authorize(&endpoint.permission(), expected.as_ref(), &parts.headers, &body) {
        tracing::warn!(registry = %endpoint.registry, task = %endpoint.task, trigger = %endpoint.trigger, reason = ?why, "webhook delivery refused");
        return Err(HookError::Unauthorized);
    }
    let target = target.expect("authorized deliveries have a trigger");
    let parsed = match target.trigger.control {
        SourceControl::Github => payload::github(&parts.headers, &body),
        SourceControl::AzureDevOps => payload::azure_devops(&body),
    }
    .map_err(HookError::InvalidPayload)?;
    let delivery = match parsed {
        payload::Parsed::Ping => {
            return Ok(json_response(
                StatusCode::OK,
                &json!({"queued": false, "message": format!("pong: the webhook of source trigger '{}' of task '{}' is set up.", target.trigger.name, target.host.record.name)}),
            ));
        }
        payload::Parsed::Ignored(why) => return Ok(ignored(&why)),
        payload::Parsed::Delivery(d) => d,
    };
    match webhooks::deliver(state, &target, &delivery, chrono::Utc::now()).await {
        Ok(Outcome::Queued { run_id }) => Ok(json_response(
            StatusCode::ACCEPTED,
            &json!({"queued": true, "runId": run_id, "message": format!("Queued a run with ID: {run_id}")}),
        )),
        Ok(Outcome::Ignored(why)) => Ok(ignored(&why)),
        Err(DeliverError::Storage(e)) => Err(storage(e)),
        Err(DeliverError::Run(e)) => Err(HookError::Task(e)),
    }
}

/// A verified delivery that runs nothing: 200, so the provider shows it delivered, with why.
fn ignored(why: &str) -> Response {
    json_response(StatusCode::OK, &json!({"queued": false, "reason": why}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        let ep = HookEndpoint::parse("/wharf-hooks/myregistry/build-app/defaultSourceTriggerName").unwrap();
        assert_eq!(
            (ep.registry.as_str(), ep.task.as_str(), ep.trigger.as_str()),
            ("myregistry", "build-app", "defaultSourceTriggerName")
        );
        assert_eq!(ep.permission().trigger, "defaultSourceTriggerName");
        for bad in [
            "/wharf-hooks/r/t",
            "/wharf-hooks/r/t/x/y",
            "/wharf-hooks/r/../x",
            "/wharf-hooks/r/t/",
            "/wharf-hooks/r/t%2Fx/y",
            "/wharf-logs/r/t/x",
        ] {
            assert_eq!(HookEndpoint::parse(bad), None, "{bad}");
        }
    }

    fn sign(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn github_deliveries_need_the_hmac_of_their_body() {
        let p = HookEndpoint::parse("/wharf-hooks/r/t/x").unwrap().permission();
        let e = Expected { control: SourceControl::Github, secret: "s3cret".into() };
        let body = br#"{"ref":"refs/heads/main"}"#;
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert("x-hub-signature-256", v.parse().unwrap());
            h
        };
        assert_eq!(authorize(&p, Some(&e), &with(&sign("s3cret", body)), body), Ok(()));
        assert_eq!(authorize(&p, Some(&e), &with(&sign("other", body)), body), Err(Refusal::Mismatch));
        assert_eq!(
            authorize(&p, Some(&e), &with(&sign("s3cret", b"{}")), body),
            Err(Refusal::Mismatch),
            "another body"
        );
        assert_eq!(authorize(&p, Some(&e), &with("sha1=00"), body), Err(Refusal::Mismatch));
        assert_eq!(authorize(&p, Some(&e), &with("sha256=zz"), body), Err(Refusal::Mismatch));
        assert_eq!(authorize(&p, Some(&e), &HeaderMap::new(), body), Err(Refusal::Missing));
        // A GitHub trigger takes no password, whatever the request sends.
        let mut basic = HeaderMap::new();
        basic.insert("authorization", format!("Basic {}", b64("x:s3cret")).parse().unwrap());
        assert_eq!(authorize(&p, Some(&e), &basic, body), Err(Refusal::Missing));
        // No such trigger: refused even with a signature of some secret.
        assert_eq!(authorize(&p, None, &with(&sign("s3cret", body)), body), Err(Refusal::Unknown));
    }

    fn b64(s: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    #[test]
    fn azure_devops_deliveries_need_the_secret_as_password() {
        let p = HookEndpoint::parse("/wharf-hooks/r/t/x").unwrap().permission();
        let e = Expected { control: SourceControl::AzureDevOps, secret: "s3cret".into() };
        let with = |user_pass: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", format!("Basic {}", b64(user_pass)).parse().unwrap());
            h
        };
        assert_eq!(authorize(&p, Some(&e), &with("wharf:s3cret"), b"{}"), Ok(()));
        assert_eq!(authorize(&p, Some(&e), &with("ado-hook:s3cret"), b"{}"), Ok(()), "any user name");
        assert_eq!(authorize(&p, Some(&e), &with(":s3cret"), b"{}"), Err(Refusal::Mismatch), "but one");
        assert_eq!(authorize(&p, Some(&e), &with("wharf:wrong"), b"{}"), Err(Refusal::Mismatch));
        assert_eq!(authorize(&p, Some(&e), &with("s3cret:"), b"{}"), Err(Refusal::Mismatch));
        assert_eq!(authorize(&p, Some(&e), &HeaderMap::new(), b"{}"), Err(Refusal::Missing));
        let mut signed = HeaderMap::new();
        signed.insert("x-hub-signature-256", sign("s3cret", b"{}").parse().unwrap());
        assert_eq!(authorize(&p, Some(&e), &signed, b"{}"), Err(Refusal::Missing), "an ADO trigger takes no signature");
    }

    #[test]
    fn every_error_has_its_status() {
        for (e, status) in [
            (HookError::NotAHook, 404),
            (HookError::MethodNotAllowed, 405),
            (HookError::TooLarge, 413),
            (HookError::Unauthorized, 401),
            (HookError::InvalidPayload("x".into()), 400),
            (HookError::Unavailable, 503),
        ] {
            assert_eq!(e.error().status, status, "{e:?}");
        }
    }
}
