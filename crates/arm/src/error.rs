//! ARM error bodies: `{"error":{"code","message"}}` with the HTTP status ARM uses.

use serde_json::json;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ArmError {
    pub status: u16,
    pub code: String,
    pub message: String,
}

impl ArmError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> ArmError {
        ArmError { status, code: code.to_string(), message: message.into() }
    }

    pub fn body(&self) -> serde_json::Value {
        json!({"error": {"code": self.code, "message": self.message}})
    }

    pub fn missing_api_version() -> ArmError {
        ArmError::new(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    }

    pub fn invalid_api_version(version: &str, resource_type: &str) -> ArmError {
        ArmError::new(
            400,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{version}' is invalid for resource type '{resource_type}'. \
                 Use a date-shaped version such as 2025-11-01 or 2026-09-01-preview."
            ),
        )
    }

    pub fn resource_group_not_found(name: &str) -> ArmError {
        ArmError::new(404, "ResourceGroupNotFound", format!("Resource group '{name}' could not be found."))
    }

    pub fn resource_not_found(resource_type: &str, name: &str, group: &str) -> ArmError {
        ArmError::new(
            404,
            "ResourceNotFound",
            format!("The Resource '{resource_type}/{name}' under resource group '{group}' was not found."),
        )
    }

    pub fn subscription_not_found(sub: &str) -> ArmError {
        ArmError::new(404, "SubscriptionNotFound", format!("The subscription '{sub}' could not be found."))
    }

    pub fn invalid_request(message: impl Into<String>) -> ArmError {
        ArmError::new(400, "InvalidRequestContent", message)
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> ArmError {
        ArmError::new(400, code, message)
    }

    pub fn not_found_path(path: &str) -> ArmError {
        ArmError::new(404, "InvalidResourceType", format!("No resource type is served at '{path}'."))
    }

    pub fn method_not_allowed(method: &str) -> ArmError {
        ArmError::new(405, "MethodNotAllowed", format!("The method '{method}' is not supported here."))
    }

    pub fn internal(message: impl Into<String>) -> ArmError {
        ArmError::new(500, "InternalServerError", message)
    }
}
