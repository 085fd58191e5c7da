//! Wharf's network-access decision for registry data-plane requests, as ACR makes it.
//!
//! Pure: values in, a decision value out — no I/O, no clock, no globals. The server compiles a
//! [`NetworkPolicy`] from the registry's ARM properties once per change, derives the client
//! address with [`client_address`], and calls [`check`] on every data-plane request
//! (including `/oauth2/exchange` and `/oauth2/token`). The management API is not behind
//! registry network rules and never calls this crate.
//!
//! Modules: `policy` (ARM properties → compiled policy), `ranges` (the O(log n) range
//! tables), `caller` (caller facts and the trusted-services table), `decision` (the check, its
//! decision value, ACR's deny message and body), `client_addr` (trusted-proxy header walk),
//! `impact` (who loses or gains access when the policy changes), `reach` (the rules when the
//! client address is unknown: the addresses a policy admits, the decision for "any public
//! address", and which addresses change side between two policies).
//!
//! # Decisions
//!
//! * **Order of checks.** Private-endpoint listener first: bound to the requested registry →
//!   allowed, whatever the public settings; bound to another registry → denied, with no
//!   bypass. Then, on the public listener: `publicNetworkAccess: Disabled` denies;
//!   `defaultAction: Allow` allows (rules are not consulted); `defaultAction: Deny` allows
//!   if the client address is in an IP rule or a virtual-network rule's subnet prefix, else
//!   denies. The bypass is considered only when the public rules deny.
//! * **Rule precedence.** When several rules contain the address, the decision names the
//!   first IP rule in configured order, else the first virtual-network rule.
//! * **Virtual-network rules** match on the client address alone (the address of a subnet that
//!   has the `Microsoft.ContainerRegistry` service endpoint). Disabling public access also
//!   denies them, as in ACR.
//! * **Bypass.** Lifts a denial only if (1) the caller is known and is a trusted service
//!   instance ([`classify`]), (2) the registry has no virtual-network rules, and (3) the switch
//!   for that service is on: `networkRuleBypassOptions: AzureServices` for every trusted
//!   service, or `networkRuleBypassAllowedForTasks: true` for task identities (reported as the
//!   deciding switch when both are on). Condition (2) also applies to the task switch (fail
//!   closed; ACR documents the service-endpoint exclusion for trusted services only). The
//!   bypass lifts only the network check; authorization still needs a role.
//! * **Tasks.** Following the seed, a task's system-assigned identity is a trusted service
//!   while trusted services are allowed. Current ACR (since June 2025) additionally denies
//!   task bypass unless `networkRuleBypassAllowedForTasks` is true; Wharf keeps the seed's
//!   behaviour and adds the task switch on top.
//! * **Unknown caller.** A request whose caller is not yet authenticated (the first
//!   challenge request, the token endpoints before credentials are checked) is judged with
//!   `caller: None`: only the rules decide. The server re-checks after authentication; the
//!   check is deterministic and allocation-free, so re-checking is cheap.
//! * **Addresses.** IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is treated as IPv4 everywhere: client
//!   addresses, trusted proxies and rules. CIDR host bits are cleared (`10.1.2.3/16` ≡
//!   `10.1.0.0/16`). IPv4 and IPv6 rules are both accepted (ACR accepts IPv4 only).
//! * **Client address behind proxies.** Only a configured trusted proxy's headers count, and
//!   only the one header it is configured to write ([`ForwardedHeader`], `X-Forwarded-For` by
//!   default); all lines of that header are one list, walked from the right. When only the
//!   other header came, or an entry the walk reaches does not parse, the proxy's own address
//!   is judged (fail closed), so such requests pass only rules that admit the proxy.
//! * **Limits.** At most 200 IP rules ([`MAX_IP_RULES`]) and 100 virtual-network rules
//!   ([`MAX_VNET_RULES`]) per registry; more is an error naming the count.
//! * **Denial.** HTTP 403 with ACR's body `{"errors":[{"code":"DENIED","message":"client with
//!   IP '<ip>' is not allowed access. Refer https://aka.ms/acr/firewall to grant access."}]}`
//!   for every denial, including public access disabled (ACR shows the same text).
//! * **Unknown addresses.** [`any_address`] judges a caller on the public endpoint whatever
//!   its address: allowed or denied when the answer is the same for every address (default
//!   Allow, public access disabled, no rules, or a bypass that applies), else "only from these
//!   prefixes". [`impact`] reports a subject whose access depends on an address it does not
//!   know as "may lose" / "may gain"; [`address_impact`] gives the exact address sets that
//!   callers without a bypass lose and gain, as prefix differences.
//! * **Audit.** [`NetworkDecision::should_audit`] is true for every denial and every bypass;
//!   the decision serialises with registry, client address, listener, caller (principal,
//!   hosting resource) and the deciding reason.
#![forbid(unsafe_code)]

mod caller;
mod client_addr;
mod decision;
mod error;
mod impact;
mod policy;
mod ranges;
mod reach;

pub use caller::{
    APP_SERVICE_SITES, BuiltinPrincipal, CONTAINER_GROUPS, Caller, ML_WORKSPACES, ManagedIdentityKind, NotTrusted,
    PrincipalType, REGISTRY_TASKS, TrustedService, classify, id_is_of_type, trusted_service,
};
pub use client_addr::{AddressSource, ClientAddress, FailClosed, ForwardedHeader, ForwardingHeaders, client_address};
pub use decision::{
    Arrival, BypassNotApplicable, BypassVia, NetworkDecision, NetworkDenial, NetworkRequest, Reason, bypass, check,
    deny_message,
};
pub use error::NetRuleError;
pub use impact::{Change, ImpactLine, ImpactSubject, SubjectAddresses, impact};
pub use policy::{
    DefaultAction, IpRule, MAX_IP_RULES, MAX_VNET_RULES, NetworkPolicy, PublicNetworkAccess, RuleMatch, VnetRule,
    normalise_ip,
};
pub use reach::{AddressImpact, AddressSet, AnyAddress, PublicReach, address_impact, any_address};
