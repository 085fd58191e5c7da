//! The request a condition is evaluated against: the action being performed,
//! the optional sub-operation, and attribute values by source and name.
//!
//! Owns: the attribute value types and the names Wharf supplies
//! (`@Request[…repositories:name]`, the same under `@Resource` as the preview
//! portal generated, and the `@Environment` attributes when known).
//!
//! Must never: fetch anything. An attribute that the caller did not supply is
//! absent, and absent attributes make comparisons unknown (fail closed).

use std::net::IpAddr;

use chrono::{DateTime, Utc};

use super::ast::AttributeSource;

/// `Microsoft.ContainerRegistry/registries/repositories:name`.
pub const REPOSITORY_NAME: &str = "Microsoft.ContainerRegistry/registries/repositories:name";
/// `@Environment[isPrivateLink]` (Boolean).
pub const IS_PRIVATE_LINK: &str = "isPrivateLink";
/// `@Environment[Microsoft.Network/privateEndpoints]` (String: private endpoint resource id).
pub const PRIVATE_ENDPOINT: &str = "Microsoft.Network/privateEndpoints";
/// `@Environment[Microsoft.Network/virtualNetworks/subnets]` (String: subnet resource id).
pub const SUBNET: &str = "Microsoft.Network/virtualNetworks/subnets";
/// `@Environment[UtcNow]` (DateTime).
pub const UTC_NOW: &str = "UtcNow";

/// One attribute value. `List` is a multi-valued attribute (e.g. a principal's
/// custom security attribute with several values).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    String(String),
    Integer(i64),
    Bool(bool),
    DateTime(DateTime<Utc>),
    Guid(uuid::Uuid),
    Ip(IpAddr),
    List(Vec<AttributeValue>),
}

impl From<&str> for AttributeValue {
    fn from(s: &str) -> Self {
        AttributeValue::String(s.to_string())
    }
}

impl From<String> for AttributeValue {
    fn from(s: String) -> Self {
        AttributeValue::String(s)
    }
}

impl From<i64> for AttributeValue {
    fn from(n: i64) -> Self {
        AttributeValue::Integer(n)
    }
}

impl From<bool> for AttributeValue {
    fn from(b: bool) -> Self {
        AttributeValue::Bool(b)
    }
}

/// The network origin and time of a request, as the server knows them.
/// Unknown fields stay `None` and the matching `@Environment` attribute is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvironmentAttributes {
    pub is_private_link: Option<bool>,
    pub private_endpoint: Option<String>,
    pub subnet: Option<String>,
    pub utc_now: Option<DateTime<Utc>>,
}

/// What a condition sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestContext {
    action: String,
    sub_operation: Option<String>,
    attributes: Vec<(AttributeSource, String, AttributeValue)>,
}

impl RequestContext {
    /// A request performing `action` (a data action or control-plane action).
    pub fn new(action: impl Into<String>) -> RequestContext {
        RequestContext { action: action.into(), sub_operation: None, attributes: Vec::new() }
    }

    pub fn action(&self) -> &str {
        &self.action
    }

    pub fn sub_operation(&self) -> Option<&str> {
        self.sub_operation.as_deref()
    }

    pub fn with_sub_operation(mut self, sub_operation: impl Into<String>) -> RequestContext {
        self.sub_operation = Some(sub_operation.into());
        self
    }

    /// Adds or replaces an attribute.
    pub fn with_attribute(
        mut self,
        source: AttributeSource,
        path: impl Into<String>,
        value: impl Into<AttributeValue>,
    ) -> RequestContext {
        self.set_attribute(source, path, value);
        self
    }

    pub fn set_attribute(
        &mut self,
        source: AttributeSource,
        path: impl Into<String>,
        value: impl Into<AttributeValue>,
    ) {
        let path = path.into();
        let value = value.into();
        match self.attributes.iter_mut().find(|(s, p, _)| *s == source && p.eq_ignore_ascii_case(&path)) {
            Some(slot) => slot.2 = value,
            None => self.attributes.push((source, path, value)),
        }
    }

    /// Sets the repository name under both `@Request` and `@Resource`.
    pub fn with_repository(mut self, repository: &str) -> RequestContext {
        self.set_attribute(AttributeSource::Request, REPOSITORY_NAME, repository);
        self.set_attribute(AttributeSource::Resource, REPOSITORY_NAME, repository);
        self
    }

    /// Adds the known `@Environment` attributes.
    pub fn with_environment(mut self, environment: &EnvironmentAttributes) -> RequestContext {
        if let Some(b) = environment.is_private_link {
            self.set_attribute(AttributeSource::Environment, IS_PRIVATE_LINK, b);
        }
        if let Some(pe) = &environment.private_endpoint {
            self.set_attribute(AttributeSource::Environment, PRIVATE_ENDPOINT, pe.as_str());
        }
        if let Some(subnet) = &environment.subnet {
            self.set_attribute(AttributeSource::Environment, SUBNET, subnet.as_str());
        }
        if let Some(now) = environment.utc_now {
            self.set_attribute(AttributeSource::Environment, UTC_NOW, AttributeValue::DateTime(now));
        }
        self
    }

    /// All attributes, in insertion order.
    pub fn attributes(&self) -> impl Iterator<Item = (AttributeSource, &str, &AttributeValue)> {
        self.attributes.iter().map(|(s, p, v)| (*s, p.as_str(), v))
    }

    /// The value an attribute reference resolves to, if supplied.
    pub fn lookup(&self, reference: &super::ast::AttributeRef) -> Option<&AttributeValue> {
        self.attributes.iter().find(|(s, p, _)| reference.matches(*s, p)).map(|(_, _, v)| v)
    }
}
