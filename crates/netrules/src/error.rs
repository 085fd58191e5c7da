//! Errors raised while compiling a registry's network properties into a policy.
//!
//! Owns the error enum only; mapping it to ARM or CLI wire formats is the caller's job.

use thiserror::Error;

/// Why a registry's network properties could not be compiled. Every variant names the
/// property and the offending value or rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NetRuleError {
    #[error("publicNetworkAccess must be 'Enabled' or 'Disabled', got '{0}'")]
    PublicNetworkAccess(String),
    #[error("networkRuleSet.defaultAction must be 'Allow' or 'Deny', got '{0}'")]
    DefaultAction(String),
    #[error("networkRuleBypassOptions must be 'AzureServices' or 'None', got '{0}'")]
    BypassOptions(String),
    #[error("networkRuleSet.ipRules[{index}] '{value}' is not an IPv4/IPv6 address or CIDR range")]
    InvalidIpRule { index: usize, value: String },
    #[error("networkRuleSet.ipRules has {count} rules; a registry allows at most {max}")]
    TooManyIpRules { count: usize, max: usize },
    #[error("networkRuleSet.virtualNetworkRules[{index}] has an empty subnet id")]
    EmptySubnetId { index: usize },
    #[error("networkRuleSet.virtualNetworkRules has {count} rules; a registry allows at most {max}")]
    TooManyVnetRules { count: usize, max: usize },
}
