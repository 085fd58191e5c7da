//! The registry resource (`Microsoft.ContainerRegistry/registries`): its properties with ACR's
//! names and defaults, the PUT/PATCH rules, and SKU restrictions.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::ArmError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Sku {
    Basic,
    Standard,
    Premium,
}

impl Sku {
    pub fn parse(s: &str) -> Result<Sku, ArmError> {
        match s.to_ascii_lowercase().as_str() {
            "basic" => Ok(Sku::Basic),
            "standard" => Ok(Sku::Standard),
            "premium" => Ok(Sku::Premium),
            _ => Err(ArmError::bad_request(
                "InvalidSku",
                format!("The SKU '{s}' is not valid. Valid values are Basic, Standard and Premium."),
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sku::Basic => "Basic",
            Sku::Standard => "Standard",
            Sku::Premium => "Premium",
        }
    }
}

pub use wharf_vocab::RoleAssignmentMode;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpRule {
    #[serde(default = "allow")]
    pub action: String,
    pub value: String,
}

fn allow() -> String {
    "Allow".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkRule {
    #[serde(default = "allow")]
    pub action: String,
    /// Subnet resource id.
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRuleSet {
    pub default_action: String,
    #[serde(default)]
    pub ip_rules: Vec<IpRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub virtual_network_rules: Vec<VirtualNetworkRule>,
}

impl Default for NetworkRuleSet {
    fn default() -> Self {
        NetworkRuleSet { default_action: "Allow".into(), ip_rules: vec![], virtual_network_rules: vec![] }
    }
}

/// The writable and read-only properties of a registry, with ACR's wire names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryProperties {
    pub login_server: String,
    pub creation_date: String,
    pub provisioning_state: String,
    pub admin_user_enabled: bool,
    pub network_rule_set: NetworkRuleSet,
    pub policies: Value,
    pub encryption: Value,
    pub data_endpoint_enabled: bool,
    pub data_endpoint_host_names: Vec<String>,
    pub private_endpoint_connections: Vec<crate::network::RegistryPrivateEndpointConnection>,
    pub public_network_access: String,
    pub network_rule_bypass_options: String,
    pub network_rule_bypass_allowed_for_tasks: bool,
    pub zone_redundancy: String,
    pub anonymous_pull_enabled: bool,
    pub role_assignment_mode: RoleAssignmentMode,
}

/// ACR's limit on IP rules per registry.
pub const MAX_IP_RULES: usize = 200;

impl RegistryProperties {
    /// Properties of a new registry before the client's values are applied.
    pub fn defaults(login_server: &str, now: chrono::DateTime<chrono::Utc>) -> RegistryProperties {
        let stamp = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        RegistryProperties {
            login_server: login_server.to_string(),
            creation_date: stamp.clone(),
            provisioning_state: "Succeeded".into(),
            admin_user_enabled: false,
            network_rule_set: NetworkRuleSet::default(),
            policies: json!({
                "quarantinePolicy": {"status": "disabled"},
                "trustPolicy": {"type": "Notary", "status": "disabled"},
                "retentionPolicy": {"days": 7, "lastUpdatedTime": stamp, "status": "disabled"},
                "exportPolicy": {"status": "enabled"},
                "azureADAuthenticationAsArmPolicy": {"status": "enabled"},
                "softDeletePolicy": {"retentionDays": 7, "lastUpdatedTime": stamp, "status": "disabled"}
            }),
            encryption: json!({"status": "disabled"}),
            data_endpoint_enabled: false,
            data_endpoint_host_names: vec![],
            private_endpoint_connections: vec![],
            public_network_access: "Enabled".into(),
            network_rule_bypass_options: "AzureServices".into(),
            network_rule_bypass_allowed_for_tasks: false,
            zone_redundancy: "Disabled".into(),
            anonymous_pull_enabled: false,
            role_assignment_mode: RoleAssignmentMode::LegacyRegistryPermissions,
        }
    }

    /// Applies the `properties` object of a PUT or PATCH body. Read-only properties sent by the
    /// client are ignored, as ARM does; objects merge, arrays (e.g. `ipRules`) replace.
    pub fn apply(&self, patch: &Value) -> Result<RegistryProperties, ArmError> {
        let Some(patch) = patch.as_object() else {
            if patch.is_null() {
                return Ok(self.clone());
            }
            return Err(ArmError::invalid_request("'properties' must be a JSON object."));
        };
        let mut merged = serde_json::to_value(self).map_err(|e| ArmError::internal(e.to_string()))?;
        for (k, v) in patch {
            if matches!(
                k.as_str(),
                "loginServer"
                    | "creationDate"
                    | "provisioningState"
                    | "dataEndpointHostNames"
                    | "privateEndpointConnections"
            ) {
                continue;
            }
            if v.is_null() {
                continue;
            }
            merge(&mut merged[k.as_str()], v);
        }
        serde_json::from_value(merged)
            .map_err(|e| ArmError::invalid_request(format!("Invalid registry properties: {e}")))
    }

    /// Whether the registry's content may leave it through import into another registry
    /// (`policies.exportPolicy.status`, `az acr update --allow-exports`); anything but
    /// `disabled` allows it, as a registry created before the policy existed does.
    pub fn exports_allowed(&self) -> bool {
        self.policies
            .pointer("/exportPolicy/status")
            .and_then(Value::as_str)
            .is_none_or(|s| !s.eq_ignore_ascii_case("disabled"))
    }

    /// Checks enum values and the SKU rules ACR enforces.
    pub fn validate(&self, sku: Sku) -> Result<(), ArmError> {
        let one_of = |field: &str, v: &str, allowed: &[&str]| -> Result<(), ArmError> {
            if allowed.contains(&v) {
                Ok(())
            } else {
                Err(ArmError::invalid_request(format!(
                    "The value '{v}' of '{field}' is not valid. Allowed values: {}.",
                    allowed.join(", ")
                )))
            }
        };
        one_of("publicNetworkAccess", &self.public_network_access, &["Enabled", "Disabled"])?;
        one_of("networkRuleBypassOptions", &self.network_rule_bypass_options, &["AzureServices", "None"])?;
        one_of("networkRuleSet.defaultAction", &self.network_rule_set.default_action, &["Allow", "Deny"])?;
        one_of("zoneRedundancy", &self.zone_redundancy, &["Enabled", "Disabled"])?;
        if let Some(status) = self.policies.pointer("/exportPolicy/status") {
            one_of("policies.exportPolicy.status", status.as_str().unwrap_or("?"), &["enabled", "disabled"])?;
        }
        for rule in &self.network_rule_set.ip_rules {
            one_of("ipRules.action", &rule.action, &["Allow"])?;
            let parsed = rule.value.parse::<ipnet::IpNet>().is_ok() || rule.value.parse::<std::net::IpAddr>().is_ok();
            if !parsed {
                return Err(ArmError::invalid_request(format!(
                    "The IP rule value '{}' is not a valid IP address or CIDR range.",
                    rule.value
                )));
            }
        }
        if self.network_rule_set.ip_rules.len() > MAX_IP_RULES {
            return Err(ArmError::bad_request(
                "QuotaExceeded",
                format!(
                    "The requested feature IP rule exceeds allowed quota {MAX_IP_RULES} for the SKU {}.",
                    sku.as_str()
                ),
            ));
        }
        let premium_only = |feature: &str| {
            ArmError::bad_request(
                "FeatureNotSupportedForSku",
                format!(
                    "{feature} is only supported for registries in the Premium SKU. Upgrade with 'wharf acr update --sku Premium'."
                ),
            )
        };
        if sku != Sku::Premium {
            let rules = &self.network_rule_set;
            if rules.default_action == "Deny" || !rules.ip_rules.is_empty() || !rules.virtual_network_rules.is_empty() {
                return Err(premium_only("Network rules"));
            }
            if self.public_network_access == "Disabled" {
                return Err(premium_only("Disabling public network access"));
            }
        }
        if sku == Sku::Basic && self.anonymous_pull_enabled {
            return Err(ArmError::bad_request(
                "FeatureNotSupportedForSku",
                "Anonymous pull is supported for registries in the Standard and Premium SKUs.",
            ));
        }
        Ok(())
    }
}

/// JSON merge: objects merge key by key, everything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props() -> RegistryProperties {
        RegistryProperties::defaults("myreg.localhost:5000", chrono::Utc::now())
    }

    #[test]
    fn patch_replaces_ip_rules_and_ignores_read_only() {
        let p = props()
            .apply(&json!({"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "127.0.0.2"}]}}))
            .unwrap();
        let p = p
            .apply(&json!({"networkRuleSet": {"ipRules": [{"value": "10.0.0.0/8", "action": "Allow"}]},
                                 "loginServer": "evil"}))
            .unwrap();
        assert_eq!(p.network_rule_set.default_action, "Deny");
        assert_eq!(p.network_rule_set.ip_rules, vec![IpRule { action: "Allow".into(), value: "10.0.0.0/8".into() }]);
        assert_eq!(p.login_server, "myreg.localhost:5000");
        assert!(p.validate(Sku::Premium).is_ok());
        assert!(p.validate(Sku::Standard).is_err());
    }

    #[test]
    fn rejects_bad_values() {
        assert!(props().apply(&json!({"publicNetworkAccess": "Maybe"})).unwrap().validate(Sku::Premium).is_err());
        assert!(props().apply(&json!({"roleAssignmentMode": "Other"})).is_err());
        assert!(props().apply(&json!({"adminUserEnabled": "yes"})).is_err());
        let abac = props().apply(&json!({"roleAssignmentMode": "AbacRepositoryPermissions"})).unwrap();
        assert_eq!(abac.role_assignment_mode, RoleAssignmentMode::AbacRepositoryPermissions);
        let bad_ip = props()
            .apply(&json!({"networkRuleSet": {"defaultAction": "Deny", "ipRules": [{"value": "1.2.3"}]}}))
            .unwrap();
        assert!(bad_ip.validate(Sku::Premium).is_err());
        let closed = props().apply(&json!({"policies": {"exportPolicy": {"status": "disabled"}}})).unwrap();
        assert!(!closed.exports_allowed() && props().exports_allowed());
        assert!(closed.validate(Sku::Premium).is_ok());
        let odd = props().apply(&json!({"policies": {"exportPolicy": {"status": "sometimes"}}})).unwrap();
        assert!(odd.validate(Sku::Premium).is_err());
    }
}
