//! `Microsoft.Network` as Wharf emulates it, in ARM's JSON shapes: virtual networks whose
//! subnets are address ranges (loopback ranges such as `127.10.0.0/16` stand for distinct
//! hosts) with service endpoints, and private endpoints that connect a subnet address to one
//! registry.
//!
//! Owns: the typed resources (what is stored is exactly their JSON), the address-space rules
//! (every subnet inside the space, no two overlapping) and prefix parsing with ARM's error codes.
//! Must never: bind sockets or read storage; the server does both with these values.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ArmError;

pub const VIRTUAL_NETWORK: &str = "Microsoft.Network/virtualNetworks";
pub const SUBNET: &str = "Microsoft.Network/virtualNetworks/subnets";
pub const PRIVATE_ENDPOINT: &str = "Microsoft.Network/privateEndpoints";
/// The service endpoint a subnet needs before a registry's virtual-network rule may name it.
pub const REGISTRY_SERVICE_ENDPOINT: &str = "Microsoft.ContainerRegistry";
/// The one private-link group id a container registry exposes.
pub const REGISTRY_GROUP_ID: &str = "registry";

const SUCCEEDED: &str = "Succeeded";

fn succeeded() -> String {
    SUCCEEDED.to_string()
}

/// `{"id": …}`, ARM's reference to another resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdRef {
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetwork {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub location: String,
    #[serde(default)]
    pub tags: Value,
    pub properties: VirtualNetworkProperties,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VirtualNetworkProperties {
    #[serde(default = "succeeded")]
    pub provisioning_state: String,
    pub address_space: AddressSpace,
    #[serde(default)]
    pub subnets: Vec<Subnet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressSpace {
    pub address_prefixes: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub properties: SubnetProperties,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubnetProperties {
    pub address_prefix: IpNet,
    #[serde(default)]
    pub service_endpoints: Vec<ServiceEndpoint>,
    #[serde(default = "succeeded")]
    pub provisioning_state: String,
    #[serde(default = "disabled")]
    pub private_endpoint_network_policies: String,
}

fn disabled() -> String {
    "Disabled".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEndpoint {
    pub service: String,
    #[serde(default)]
    pub locations: Vec<String>,
    #[serde(default = "succeeded")]
    pub provisioning_state: String,
}

impl VirtualNetwork {
    /// A virtual network with the given address space and subnets, checked against each other.
    pub fn new(
        id: &str,
        name: &str,
        location: &str,
        tags: Value,
        address_space: Vec<IpNet>,
        subnets: Vec<Subnet>,
    ) -> Result<VirtualNetwork, ArmError> {
        let vnet = VirtualNetwork {
            id: id.to_string(),
            name: name.to_string(),
            resource_type: VIRTUAL_NETWORK.to_string(),
            location: location.to_string(),
            tags,
            properties: VirtualNetworkProperties {
                provisioning_state: succeeded(),
                address_space: AddressSpace { address_prefixes: address_space },
                subnets,
            },
        };
        vnet.check_subnets()?;
        Ok(vnet)
    }

    /// The subnet named `name` (case-insensitive).
    pub fn subnet(&self, name: &str) -> Option<&Subnet> {
        self.properties.subnets.iter().find(|s| s.name.eq_ignore_ascii_case(name))
    }

    /// The subnet whose resource id is `id` (case-insensitive).
    pub fn subnet_by_id(&self, id: &str) -> Option<&Subnet> {
        self.properties.subnets.iter().find(|s| s.id.eq_ignore_ascii_case(id))
    }

    /// Adds or replaces the subnet of that name; false when it was added.
    pub fn put_subnet(&mut self, subnet: Subnet) -> Result<bool, ArmError> {
        let subnets = &mut self.properties.subnets;
        let replaced = match subnets.iter().position(|s| s.name.eq_ignore_ascii_case(&subnet.name)) {
            Some(i) => {
                subnets[i] = subnet;
                true
            }
            None => {
                subnets.push(subnet);
                false
            }
        };
        self.check_subnets()?;
        Ok(replaced)
    }

    /// Removes the subnet of that name; false when there was none.
    pub fn remove_subnet(&mut self, name: &str) -> bool {
        let before = self.properties.subnets.len();
        self.properties.subnets.retain(|s| !s.name.eq_ignore_ascii_case(name));
        self.properties.subnets.len() != before
    }

    /// Every subnet lies in the address space and no two overlap, as Azure requires.
    pub fn check_subnets(&self) -> Result<(), ArmError> {
        let space = &self.properties.address_space.address_prefixes;
        let subnets = &self.properties.subnets;
        for s in subnets {
            let p = s.properties.address_prefix;
            if !space.iter().any(|a| a.contains(&p)) {
                return Err(ArmError::bad_request(
                    "NetcfgSubnetRangeOutsideVnet",
                    format!("Subnet '{}' ({p}) is not within the address space of the virtual network.", s.name),
                ));
            }
        }
        for (i, a) in subnets.iter().enumerate() {
            for b in &subnets[i + 1..] {
                let (pa, pb) = (a.properties.address_prefix, b.properties.address_prefix);
                if pa.contains(&pb) || pb.contains(&pa) {
                    return Err(ArmError::bad_request(
                        "NetcfgSubnetRangesOverlap",
                        format!("Subnets '{}' ({pa}) and '{}' ({pb}) overlap.", a.name, b.name),
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Subnet {
    pub fn new(vnet_id: &str, name: &str, address_prefix: IpNet, service_endpoints: &[String]) -> Subnet {
        Subnet {
            id: format!("{vnet_id}/subnets/{name}"),
            name: name.to_string(),
            resource_type: SUBNET.to_string(),
            properties: SubnetProperties {
                address_prefix,
                service_endpoints: service_endpoints
                    .iter()
                    .map(|s| ServiceEndpoint {
                        service: s.clone(),
                        locations: vec!["*".into()],
                        provisioning_state: succeeded(),
                    })
                    .collect(),
                provisioning_state: succeeded(),
                private_endpoint_network_policies: disabled(),
            },
        }
    }

    pub fn service_endpoint_names(&self) -> Vec<String> {
        self.properties.service_endpoints.iter().map(|e| e.service.clone()).collect()
    }

    /// Whether the subnet has the service endpoint registries' network rules need.
    pub fn has_registry_service_endpoint(&self) -> bool {
        self.properties.service_endpoints.iter().any(|e| e.service.eq_ignore_ascii_case(REGISTRY_SERVICE_ENDPOINT))
    }
}

/// The virtual network id part of a subnet id (`…/virtualNetworks/v/subnets/s` → `…/virtualNetworks/v`).
pub fn vnet_of_subnet_id(subnet_id: &str) -> Option<&str> {
    let lower = subnet_id.to_ascii_lowercase();
    let at = lower.find("/subnets/")?;
    Some(&subnet_id[..at])
}

/// A CIDR prefix from a request value, truncated to its network address.
pub fn parse_prefix(v: &Value, what: &str) -> Result<IpNet, ArmError> {
    let s = v.as_str().ok_or_else(|| ArmError::invalid_request(format!("{what} is required.")))?;
    s.parse::<IpNet>().map(|n| n.trunc()).map_err(|_| {
        ArmError::bad_request(
            "InvalidAddressPrefixFormat",
            format!("Address prefix {s} of {what} is not a valid CIDR range."),
        )
    })
}

/// The `serviceEndpoints` of a subnet in a request: `[{"service": …}]` or `["…"]`.
pub fn parse_service_endpoints(properties: &Value) -> Result<Vec<String>, ArmError> {
    let mut out = vec![];
    for e in properties["serviceEndpoints"].as_array().into_iter().flatten() {
        let s = e["service"]
            .as_str()
            .or_else(|| e.as_str())
            .ok_or_else(|| ArmError::invalid_request("serviceEndpoints[].service is required."))?;
        out.push(s.to_string());
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivateEndpoint {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub location: String,
    pub properties: PrivateEndpointProperties,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateEndpointProperties {
    #[serde(default = "succeeded")]
    pub provisioning_state: String,
    pub subnet: IdRef,
    pub private_link_service_connections: Vec<PrivateLinkServiceConnection>,
    #[serde(default)]
    pub custom_dns_configs: Vec<CustomDnsConfig>,
    pub ip_configurations: Vec<IpConfiguration>,
    #[serde(default)]
    pub network_interfaces: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateLinkServiceConnection {
    pub id: String,
    pub name: String,
    pub properties: PrivateLinkServiceConnectionProperties,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrivateLinkServiceConnectionProperties {
    pub private_link_service_id: String,
    pub group_ids: Vec<String>,
    pub private_link_service_connection_state: ConnectionState,
    #[serde(default = "succeeded")]
    pub provisioning_state: String,
}

/// `privateLinkServiceConnectionState`: Wharf approves every connection at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionState {
    pub status: String,
    pub description: String,
    pub actions_required: String,
}

impl ConnectionState {
    pub fn auto_approved() -> ConnectionState {
        ConnectionState {
            status: "Approved".into(),
            description: "Auto-Approved".into(),
            actions_required: "None".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomDnsConfig {
    pub fqdn: String,
    pub ip_addresses: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfiguration {
    pub name: String,
    pub properties: IpConfigurationProperties,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IpConfigurationProperties {
    #[serde(rename = "privateIPAddress")]
    pub private_ip_address: IpAddr,
    pub group_id: String,
    pub member_name: String,
}

/// What a `PUT …/privateEndpoints/{name}` asks for, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivateEndpointRequest {
    pub subnet_id: String,
    pub connection_name: String,
    /// The registry the endpoint connects to (`privateLinkServiceId`).
    pub registry_id: String,
    pub requested_address: Option<IpAddr>,
    pub location: String,
}

impl PrivateEndpointRequest {
    /// Reads the request body; `name` is the endpoint's, the default connection name.
    pub fn parse(body: &Value, name: &str) -> Result<PrivateEndpointRequest, ArmError> {
        let props = &body["properties"];
        let subnet_id = props["subnet"]["id"]
            .as_str()
            .ok_or_else(|| ArmError::invalid_request("properties.subnet.id is required."))?
            .to_string();
        let conn = props["privateLinkServiceConnections"].as_array().and_then(|c| c.first()).ok_or_else(|| {
            ArmError::invalid_request("properties.privateLinkServiceConnections must name the registry.")
        })?;
        let registry_id = conn["properties"]["privateLinkServiceId"]
            .as_str()
            .ok_or_else(|| ArmError::invalid_request("privateLinkServiceId is required."))?
            .to_string();
        let groups: Vec<&str> =
            conn["properties"]["groupIds"].as_array().into_iter().flatten().filter_map(|g| g.as_str()).collect();
        if groups != [REGISTRY_GROUP_ID] {
            return Err(ArmError::bad_request(
                "InvalidGroupId",
                "Container registries expose one private link group id: 'registry'.",
            ));
        }
        let requested_address = match props["ipConfigurations"][0]["properties"]["privateIPAddress"].as_str() {
            Some(a) => Some(a.parse().map_err(|_| {
                ArmError::bad_request("PrivateIPAddressNotAvailable", format!("'{a}' is not an IP address"))
            })?),
            None => None,
        };
        Ok(PrivateEndpointRequest {
            subnet_id,
            connection_name: conn["name"].as_str().unwrap_or(name).to_string(),
            registry_id,
            requested_address,
            location: body["location"].as_str().unwrap_or("local").to_string(),
        })
    }
}

impl PrivateEndpoint {
    /// The endpoint `request` describes, at `address`, serving the registry whose login server
    /// is `login_server`.
    pub fn new(id: &str, name: &str, request: &PrivateEndpointRequest, address: IpAddr, login_server: &str) -> Self {
        PrivateEndpoint {
            id: id.to_string(),
            name: name.to_string(),
            resource_type: PRIVATE_ENDPOINT.to_string(),
            location: request.location.clone(),
            properties: PrivateEndpointProperties {
                provisioning_state: succeeded(),
                subnet: IdRef { id: request.subnet_id.clone() },
                private_link_service_connections: vec![PrivateLinkServiceConnection {
                    id: format!("{id}/privateLinkServiceConnections/{}", request.connection_name),
                    name: request.connection_name.clone(),
                    properties: PrivateLinkServiceConnectionProperties {
                        private_link_service_id: request.registry_id.clone(),
                        group_ids: vec![REGISTRY_GROUP_ID.into()],
                        private_link_service_connection_state: ConnectionState::auto_approved(),
                        provisioning_state: succeeded(),
                    },
                }],
                custom_dns_configs: vec![CustomDnsConfig {
                    fqdn: login_server.to_string(),
                    ip_addresses: vec![address],
                }],
                ip_configurations: vec![IpConfiguration {
                    name: REGISTRY_GROUP_ID.into(),
                    properties: IpConfigurationProperties {
                        private_ip_address: address,
                        group_id: REGISTRY_GROUP_ID.into(),
                        member_name: REGISTRY_GROUP_ID.into(),
                    },
                }],
                network_interfaces: vec![],
            },
        }
    }

    /// The address the endpoint listens on.
    pub fn address(&self) -> Option<IpAddr> {
        self.properties.ip_configurations.first().map(|c| c.properties.private_ip_address)
    }

    /// The registry the endpoint serves.
    pub fn registry_id(&self) -> Option<&str> {
        self.properties.private_link_service_connections.first().map(|c| c.properties.private_link_service_id.as_str())
    }

    pub fn connection_name(&self) -> Option<&str> {
        self.properties.private_link_service_connections.first().map(|c| c.name.as_str())
    }
}

/// A registry's `privateEndpointConnections` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryPrivateEndpointConnection {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    pub properties: RegistryPrivateEndpointConnectionProperties,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryPrivateEndpointConnectionProperties {
    pub private_endpoint: IdRef,
    pub private_link_service_connection_state: ConnectionState,
    #[serde(default = "succeeded")]
    pub provisioning_state: String,
    #[serde(default)]
    pub group_ids: Vec<String>,
}

impl RegistryPrivateEndpointConnection {
    pub fn new(registry_id: &str, connection: &str, endpoint_id: &str) -> Self {
        RegistryPrivateEndpointConnection {
            id: format!("{registry_id}/privateEndpointConnections/{connection}"),
            name: connection.to_string(),
            resource_type: "Microsoft.ContainerRegistry/registries/privateEndpointConnections".into(),
            properties: RegistryPrivateEndpointConnectionProperties {
                private_endpoint: IdRef { id: endpoint_id.to_string() },
                private_link_service_connection_state: ConnectionState::auto_approved(),
                provisioning_state: succeeded(),
                group_ids: vec![REGISTRY_GROUP_ID.into()],
            },
        }
    }

    pub fn endpoint_id(&self) -> &str {
        &self.properties.private_endpoint.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn subnets_must_fit_and_not_overlap() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v";
        let a = Subnet::new(id, "a", net("127.10.1.0/24"), &[REGISTRY_SERVICE_ENDPOINT.into()]);
        let mut v = VirtualNetwork::new(id, "v", "local", json!({}), vec![net("127.10.0.0/16")], vec![a]).unwrap();
        assert!(v.subnet("A").unwrap().has_registry_service_endpoint());
        let outside = Subnet::new(id, "b", net("127.11.0.0/24"), &[]);
        assert_eq!(v.clone().put_subnet(outside).unwrap_err().code, "NetcfgSubnetRangeOutsideVnet");
        let overlapping = Subnet::new(id, "c", net("127.10.1.128/25"), &[]);
        assert_eq!(v.clone().put_subnet(overlapping).unwrap_err().code, "NetcfgSubnetRangesOverlap");
        assert!(!v.put_subnet(Subnet::new(id, "b", net("127.10.2.0/24"), &[])).unwrap());
        assert_eq!(vnet_of_subnet_id(&v.subnet("b").unwrap().id), Some(id));
        assert!(v.remove_subnet("B") && !v.remove_subnet("b"));
    }

    #[test]
    fn stored_shapes_round_trip_with_arm_names() {
        let id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/privateEndpoints/pe";
        let body = json!({"location": "westus", "properties": {
            "subnet": {"id": "/x/subnets/s"},
            "privateLinkServiceConnections": [{"name": "c1", "properties": {"privateLinkServiceId": "/r", "groupIds": ["registry"]}}],
        }});
        let req = PrivateEndpointRequest::parse(&body, "pe").unwrap();
        let pe = PrivateEndpoint::new(id, "pe", &req, "127.10.1.4".parse().unwrap(), "r.localhost:5000");
        let v = serde_json::to_value(&pe).unwrap();
        assert_eq!(v["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"], "127.10.1.4");
        assert_eq!(v["properties"]["privateLinkServiceConnections"][0]["properties"]["privateLinkServiceId"], "/r");
        assert_eq!(v["properties"]["customDnsConfigs"][0]["ipAddresses"][0], "127.10.1.4");
        let back: PrivateEndpoint = serde_json::from_value(v).unwrap();
        assert_eq!(back, pe);
        assert_eq!(back.registry_id(), Some("/r"));
        let bad = json!({"properties": {"subnet": {"id": "/x"}, "privateLinkServiceConnections": [{"properties": {"privateLinkServiceId": "/r", "groupIds": ["blob"]}}]}});
        assert_eq!(PrivateEndpointRequest::parse(&bad, "pe").unwrap_err().code, "InvalidGroupId");
    }
}
