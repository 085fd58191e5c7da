//! `wharf network vnet …`, `wharf network vnet subnet …`, `wharf network private-endpoint …`:
//! the emulated virtual networks and private endpoints, with az's flags.

use clap::{Args, Subcommand};
use reqwest::Method;
use serde_json::{Value, json};

use crate::client::Client;
use crate::error::CliError;
use crate::output::{Table, columns};

pub const NETWORK_API: &str = "2024-05-01";

#[derive(Debug, Subcommand)]
pub enum NetworkCmd {
    /// Manage virtual networks.
    Vnet {
        #[command(subcommand)]
        cmd: VnetCmd,
    },
    /// Manage private endpoints.
    PrivateEndpoint {
        #[command(subcommand)]
        cmd: PrivateEndpointCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum VnetCmd {
    /// Create a virtual network, optionally with one subnet.
    Create {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long, short = 'n')]
        name: String,
        /// Address prefixes of the network (CIDR), space-separated.
        #[arg(long, num_args = 1.., default_value = "10.0.0.0/16")]
        address_prefix: Vec<String>,
        #[arg(long)]
        subnet_name: Option<String>,
        #[arg(long)]
        subnet_prefix: Option<String>,
        #[arg(long, short = 'l')]
        location: Option<String>,
    },
    Show {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long, short = 'n')]
        name: String,
    },
    List {
        #[arg(long, short = 'g')]
        resource_group: String,
    },
    Delete {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Manage subnets.
    Subnet {
        #[command(subcommand)]
        cmd: SubnetCmd,
    },
}

#[derive(Debug, Subcommand)]
pub enum SubnetCmd {
    /// Create a subnet.
    Create {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long)]
        vnet_name: String,
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        address_prefixes: String,
        /// Service endpoints, e.g. Microsoft.ContainerRegistry.
        #[arg(long, num_args = 0..)]
        service_endpoints: Vec<String>,
    },
    /// Update a subnet (e.g. its service endpoints).
    Update {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long)]
        vnet_name: String,
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long)]
        address_prefixes: Option<String>,
        #[arg(long, num_args = 0..)]
        service_endpoints: Option<Vec<String>>,
    },
    Show {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long)]
        vnet_name: String,
        #[arg(long, short = 'n')]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrivateEndpointCmd {
    /// Create a private endpoint: Wharf listens on an address of the subnet for one registry.
    Create(PrivateEndpointArgs),
    Show {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long, short = 'n')]
        name: String,
    },
    List {
        #[arg(long, short = 'g')]
        resource_group: String,
    },
    Delete {
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long, short = 'n')]
        name: String,
    },
}

/// `network private-endpoint create`: where the endpoint listens and which registry it serves.
#[derive(Debug, Args)]
pub struct PrivateEndpointArgs {
    #[arg(long, short = 'g')]
    pub resource_group: String,
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long)]
    pub vnet_name: Option<String>,
    /// Subnet name (with --vnet-name) or id.
    #[arg(long)]
    pub subnet: String,
    /// The registry's resource id.
    #[arg(long)]
    pub private_connection_resource_id: String,
    #[arg(long, num_args = 1.., default_value = "registry")]
    pub group_id: Vec<String>,
    #[arg(long)]
    pub connection_name: String,
    /// Address for the endpoint inside the subnet [default: the first free one].
    #[arg(long)]
    pub ip_address: Option<String>,
    #[arg(long, short = 'l')]
    pub location: Option<String>,
}

/// `-o table`: az's columns for `network vnet list`, its generic table for the others.
pub fn table(cmd: &NetworkCmd) -> Table {
    match cmd {
        NetworkCmd::Vnet { cmd: VnetCmd::List { .. } } => Table::Columns(vnet_columns),
        NetworkCmd::Vnet { .. } | NetworkCmd::PrivateEndpoint { .. } => Table::Generic,
    }
}

fn vnet_columns(v: &Value) -> Vec<Value> {
    let joined = |list: &Value| {
        let items: Vec<&str> = list.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if items.is_empty() { json!(" ") } else { json!(items.join(", ")) }
    };
    v.as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            columns([
                ("Name", n["name"].clone()),
                ("ResourceGroup", n["resourceGroup"].clone()),
                ("Location", n["location"].clone()),
                ("NumSubnets", json!(n["subnets"].as_array().map_or(0, Vec::len))),
                ("Prefixes", joined(&n["addressSpace"]["addressPrefixes"])),
                ("DnsServers", joined(&n["dhcpOptions"]["dnsServers"])),
                ("DDOSProtection", n.get("enableDdosProtection").cloned().unwrap_or(json!(" "))),
                ("VMProtection", n.get("enableVmProtection").cloned().unwrap_or(json!(" "))),
            ])
        })
        .collect()
}

fn base(client: &Client, rg: &str) -> Result<String, CliError> {
    Ok(format!("/subscriptions/{}/resourceGroups/{rg}/providers/Microsoft.Network", client.subscription()?))
}

/// az flattens the SDK models of network resources, nested ones included: every
/// `properties` object is merged into its parent.
fn flatten(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, val) in m {
                if k == "properties" {
                    if let Value::Object(p) = flatten(val) {
                        out.extend(p);
                    }
                } else {
                    out.insert(k.clone(), flatten(val));
                }
            }
            if let Some(rg) = m
                .get("id")
                .and_then(|id| id.as_str())
                .and_then(|id| wharf_arm::ResourceId::parse(id).ok())
                .and_then(|id| id.resource_group)
            {
                out.entry("resourceGroup").or_insert(json!(rg));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(flatten).collect()),
        other => other.clone(),
    }
}

async fn group_location(client: &Client, rg: &str) -> Result<String, CliError> {
    let v = client
        .get(&format!("/subscriptions/{}/resourcegroups/{rg}", client.subscription()?), crate::client::RESOURCES_API)
        .await?;
    Ok(v["location"].as_str().unwrap_or("local").to_string())
}

pub async fn run(cmd: NetworkCmd) -> Result<Option<Value>, CliError> {
    let client = Client::from_profile().await?;
    match cmd {
        NetworkCmd::Vnet { cmd } => match cmd {
            VnetCmd::Create { resource_group, name, address_prefix, subnet_name, subnet_prefix, location } => {
                create_vnet(&client, &resource_group, &name, address_prefix, subnet_name, subnet_prefix, location).await
            }
            VnetCmd::Show { resource_group, name } => show_vnet(&client, &resource_group, &name).await,
            VnetCmd::List { resource_group } => list_vnets(&client, &resource_group).await,
            VnetCmd::Delete { resource_group, name } => delete_vnet(&client, &resource_group, &name).await,
            VnetCmd::Subnet { cmd } => match cmd {
                SubnetCmd::Create { resource_group, vnet_name, name, address_prefixes, service_endpoints } => {
                    create_subnet(&client, &resource_group, &vnet_name, &name, &address_prefixes, &service_endpoints)
                        .await
                }
                SubnetCmd::Update { resource_group, vnet_name, name, address_prefixes, service_endpoints } => {
                    update_subnet(&client, &resource_group, &vnet_name, &name, address_prefixes, service_endpoints)
                        .await
                }
                SubnetCmd::Show { resource_group, vnet_name, name } => {
                    show_subnet(&client, &resource_group, &vnet_name, &name).await
                }
            },
        },
        NetworkCmd::PrivateEndpoint { cmd } => match cmd {
            PrivateEndpointCmd::Create(args) => create_private_endpoint(&client, args).await,
            PrivateEndpointCmd::Show { resource_group, name } => {
                show_private_endpoint(&client, &resource_group, &name).await
            }
            PrivateEndpointCmd::List { resource_group } => list_private_endpoints(&client, &resource_group).await,
            PrivateEndpointCmd::Delete { resource_group, name } => {
                delete_private_endpoint(&client, &resource_group, &name).await
            }
        },
    }
}

async fn create_vnet(
    client: &Client,
    resource_group: &str,
    name: &str,
    address_prefix: Vec<String>,
    subnet_name: Option<String>,
    subnet_prefix: Option<String>,
    location: Option<String>,
) -> Result<Option<Value>, CliError> {
    let location = match location {
        Some(l) => l,
        None => group_location(client, resource_group).await?,
    };
    let mut subnets = vec![];
    match (subnet_name, subnet_prefix) {
        (Some(n), Some(p)) => subnets.push(json!({"name": n, "properties": {"addressPrefix": p}})),
        (Some(n), None) => subnets.push(json!({"name": n, "properties": {"addressPrefix": address_prefix[0]}})),
        (None, Some(_)) => return Err(CliError::Usage("--subnet-prefix needs --subnet-name".into())),
        (None, None) => {}
    }
    let body = json!({"location": location, "properties": {"addressSpace": {"addressPrefixes": address_prefix}, "subnets": subnets}});
    let v = client
        .arm(
            Method::PUT,
            &format!("{}/virtualNetworks/{name}", base(client, resource_group)?),
            NETWORK_API,
            Some(&body),
        )
        .await?;
    Ok(Some(json!({"newVNet": flatten(&v)})))
}

async fn show_vnet(client: &Client, resource_group: &str, name: &str) -> Result<Option<Value>, CliError> {
    let path = format!("{}/virtualNetworks/{name}", base(client, resource_group)?);
    Ok(Some(flatten(&client.get(&path, NETWORK_API).await?)))
}

async fn list_vnets(client: &Client, resource_group: &str) -> Result<Option<Value>, CliError> {
    let v = client.get(&format!("{}/virtualNetworks", base(client, resource_group)?), NETWORK_API).await?;
    Ok(Some(Value::Array(v["value"].as_array().into_iter().flatten().map(flatten).collect())))
}

async fn delete_vnet(client: &Client, resource_group: &str, name: &str) -> Result<Option<Value>, CliError> {
    let path = format!("{}/virtualNetworks/{name}", base(client, resource_group)?);
    client.arm(Method::DELETE, &path, NETWORK_API, None).await?;
    Ok(None)
}

fn subnet_path(client: &Client, resource_group: &str, vnet_name: &str, name: &str) -> Result<String, CliError> {
    Ok(format!("{}/virtualNetworks/{vnet_name}/subnets/{name}", base(client, resource_group)?))
}

async fn create_subnet(
    client: &Client,
    resource_group: &str,
    vnet_name: &str,
    name: &str,
    address_prefixes: &str,
    service_endpoints: &[String],
) -> Result<Option<Value>, CliError> {
    let body = json!({"properties": {"addressPrefix": address_prefixes, "serviceEndpoints": service_endpoints.iter().map(|s| json!({"service": s})).collect::<Vec<_>>()}});
    let path = subnet_path(client, resource_group, vnet_name, name)?;
    Ok(Some(flatten(&client.arm(Method::PUT, &path, NETWORK_API, Some(&body)).await?)))
}

async fn update_subnet(
    client: &Client,
    resource_group: &str,
    vnet_name: &str,
    name: &str,
    address_prefixes: Option<String>,
    service_endpoints: Option<Vec<String>>,
) -> Result<Option<Value>, CliError> {
    let mut props = serde_json::Map::new();
    if let Some(p) = address_prefixes {
        props.insert("addressPrefix".into(), json!(p));
    }
    if let Some(e) = service_endpoints {
        props.insert("serviceEndpoints".into(), json!(e.iter().map(|s| json!({"service": s})).collect::<Vec<_>>()));
    }
    let path = subnet_path(client, resource_group, vnet_name, name)?;
    Ok(Some(flatten(&client.arm(Method::PATCH, &path, NETWORK_API, Some(&json!({"properties": props}))).await?)))
}

async fn show_subnet(
    client: &Client,
    resource_group: &str,
    vnet_name: &str,
    name: &str,
) -> Result<Option<Value>, CliError> {
    let path = subnet_path(client, resource_group, vnet_name, name)?;
    Ok(Some(flatten(&client.get(&path, NETWORK_API).await?)))
}

async fn create_private_endpoint(client: &Client, args: PrivateEndpointArgs) -> Result<Option<Value>, CliError> {
    let PrivateEndpointArgs {
        resource_group,
        name,
        vnet_name,
        subnet,
        private_connection_resource_id,
        group_id,
        connection_name,
        ip_address,
        location,
    } = args;
    let subnet_id = if subnet.starts_with("/subscriptions/") {
        subnet
    } else {
        let vnet =
            vnet_name.ok_or_else(|| CliError::Usage("--vnet-name is required when --subnet is a name".into()))?;
        format!("{}/virtualNetworks/{vnet}/subnets/{subnet}", base(client, &resource_group)?)
    };
    let location = match location {
        Some(l) => l,
        None => group_location(client, &resource_group).await?,
    };
    let mut props = json!({
        "subnet": {"id": subnet_id},
        "privateLinkServiceConnections": [{"name": connection_name, "properties": {"privateLinkServiceId": private_connection_resource_id, "groupIds": group_id}}],
    });
    if let Some(ip) = ip_address {
        props["ipConfigurations"] = json!([{"name": "registry", "properties": {"privateIPAddress": ip, "groupId": "registry", "memberName": "registry"}}]);
    }
    let body = json!({"location": location, "properties": props});
    let path = format!("{}/privateEndpoints/{name}", base(client, &resource_group)?);
    Ok(Some(flatten(&client.arm(Method::PUT, &path, NETWORK_API, Some(&body)).await?)))
}

async fn show_private_endpoint(client: &Client, resource_group: &str, name: &str) -> Result<Option<Value>, CliError> {
    let path = format!("{}/privateEndpoints/{name}", base(client, resource_group)?);
    Ok(Some(flatten(&client.get(&path, NETWORK_API).await?)))
}

async fn list_private_endpoints(client: &Client, resource_group: &str) -> Result<Option<Value>, CliError> {
    let v = client.get(&format!("{}/privateEndpoints", base(client, resource_group)?), NETWORK_API).await?;
    Ok(Some(Value::Array(v["value"].as_array().into_iter().flatten().map(flatten).collect())))
}

async fn delete_private_endpoint(client: &Client, resource_group: &str, name: &str) -> Result<Option<Value>, CliError> {
    let path = format!("{}/privateEndpoints/{name}", base(client, resource_group)?);
    client.arm(Method::DELETE, &path, NETWORK_API, None).await?;
    Ok(None)
}
