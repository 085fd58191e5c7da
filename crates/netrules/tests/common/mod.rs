//! Shared fixtures for the integration tests: policies, callers and requests.
#![allow(dead_code)]

use std::net::IpAddr;

use ipnet::IpNet;
use wharf_netrules::*;

pub const REG: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/reg1";
pub const OTHER_REG: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/reg2";
pub const ACI: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerInstance/containerGroups/cg1";
pub const ML: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.MachineLearningServices/workspaces/ws1";
pub const TASK: &str =
    "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/reg1/tasks/t1";
pub const APP: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Web/sites/app1";
pub const SUBNET: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/virtualNetworks/v/subnets/sn1";

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn policy(
    public: &str,
    default: &str,
    ips: &[&str],
    vnets: &[(&str, &[&str])],
    bypass: &str,
    tasks: bool,
) -> NetworkPolicy {
    let ips: Vec<String> = ips.iter().map(|s| s.to_string()).collect();
    let vnets: Vec<(String, Vec<IpNet>)> =
        vnets.iter().map(|(id, nets)| (id.to_string(), nets.iter().map(|n| net(n)).collect())).collect();
    NetworkPolicy::from_properties(public, default, &ips, &vnets, bypass, tasks).unwrap()
}

pub fn mi(kind: ManagedIdentityKind, host: &str) -> Caller {
    Caller::managed_identity(kind, host)
}

pub fn sys(host: &str) -> Caller {
    mi(ManagedIdentityKind::SystemAssigned, host)
}

pub fn user_mi(host: &str) -> Caller {
    mi(ManagedIdentityKind::UserAssigned, host)
}

pub fn decide<'a>(
    p: &'a NetworkPolicy,
    client: &str,
    arrival: &'a Arrival,
    caller: Option<&'a Caller>,
) -> NetworkDecision<'a> {
    check(p, &NetworkRequest { client_ip: ip(client), arrival, registry_id: REG, caller })
}
