//! `wharf acr create|show|list|update|delete` (and the routing to `acr_data` and `acr_task`).

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Map, Value, json};

use super::{confirm, parse_bool, parse_tags};
use crate::client::{Client, REGISTRY_API, RESOURCES_API};
use crate::error::CliError;
use crate::output::{Table, columns};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SkuArg {
    Basic,
    Standard,
    Premium,
}

impl SkuArg {
    fn as_str(self) -> &'static str {
        match self {
            SkuArg::Basic => "Basic",
            SkuArg::Standard => "Standard",
            SkuArg::Premium => "Premium",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    /// LegacyRegistryPermissions
    Rbac,
    /// AbacRepositoryPermissions
    RbacAbac,
}

impl ModeArg {
    fn arm(self) -> &'static str {
        match self {
            ModeArg::Rbac => "LegacyRegistryPermissions",
            ModeArg::RbacAbac => "AbacRepositoryPermissions",
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum DefaultAction {
    Allow,
    Deny,
}

/// Settings shared by `create` and `update`.
#[derive(Debug, Args, Default)]
pub struct Settings {
    /// Enable the admin user.
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub admin_enabled: Option<bool>,
    /// Allow access from public networks.
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub public_network_enabled: Option<bool>,
    /// Allow trusted services to bypass the network rules.
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub allow_trusted_services: Option<bool>,
    /// Allow the registry's content to be imported into other registries
    /// (`policies.exportPolicy`).
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub allow_exports: Option<bool>,
    /// Allow anonymous (unauthenticated) pull.
    #[arg(long, value_parser = parse_bool, num_args = 0..=1, default_missing_value = "true")]
    pub anonymous_pull_enabled: Option<bool>,
    /// Default action of the network rules.
    #[arg(long, value_enum, ignore_case = true)]
    pub default_action: Option<DefaultAction>,
    /// Role assignment permissions mode.
    #[arg(long, value_enum)]
    pub role_assignment_mode: Option<ModeArg>,
    /// Space-separated tags: key[=value].
    #[arg(long, num_args = 0..)]
    pub tags: Option<Vec<String>>,
}

impl Settings {
    fn properties(&self) -> Map<String, Value> {
        let mut p = Map::new();
        if let Some(v) = self.admin_enabled {
            p.insert("adminUserEnabled".into(), json!(v));
        }
        if let Some(v) = self.public_network_enabled {
            p.insert("publicNetworkAccess".into(), json!(if v { "Enabled" } else { "Disabled" }));
        }
        if let Some(v) = self.allow_trusted_services {
            p.insert("networkRuleBypassOptions".into(), json!(if v { "AzureServices" } else { "None" }));
        }
        if let Some(v) = self.allow_exports {
            p.insert("policies".into(), json!({"exportPolicy": {"status": if v { "enabled" } else { "disabled" }}}));
        }
        if let Some(v) = self.anonymous_pull_enabled {
            p.insert("anonymousPullEnabled".into(), json!(v));
        }
        if let Some(a) = self.default_action {
            let a = match a {
                DefaultAction::Allow => "Allow",
                DefaultAction::Deny => "Deny",
            };
            p.insert("networkRuleSet".into(), json!({"defaultAction": a}));
        }
        if self.public_network_enabled == Some(false) && self.default_action.is_none() {
            // As az does: disabling public access also sets the default action to Deny.
            p.insert("networkRuleSet".into(), json!({"defaultAction": "Deny"}));
        }
        if let Some(m) = self.role_assignment_mode {
            p.insert("roleAssignmentMode".into(), json!(m.arm()));
        }
        p
    }

    /// The network properties of the PATCH body (what `networkRuleImpact` previews).
    fn network_properties(&self) -> Map<String, Value> {
        let mut p = self.properties();
        p.retain(|k, _| NETWORK_PROPERTIES.contains(&k.as_str()));
        p
    }
}

/// The registry properties that decide data-plane network access.
const NETWORK_PROPERTIES: [&str; 4] =
    ["publicNetworkAccess", "networkRuleSet", "networkRuleBypassOptions", "networkRuleBypassAllowedForTasks"];

#[derive(Debug, Subcommand)]
pub enum AcrCmd {
    /// Create a container registry.
    Create {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: String,
        #[arg(long, value_enum, ignore_case = true)]
        sku: SkuArg,
        /// Location; defaults to the resource group's.
        #[arg(long, short = 'l')]
        location: Option<String>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Show a container registry.
    Show {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// List container registries.
    List {
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Check whether a name can be used for a new registry (names are unique in a deployment).
    CheckName {
        #[arg(long, short = 'n')]
        name: String,
    },
    /// Show what a registry holds (bytes) and its limits.
    ShowUsage {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
    /// Update a container registry.
    Update(UpdateArgs),
    /// Explain whether a principal may perform an action on a repository, and which role
    /// assignment and condition decide it.
    CheckAccess(CheckAccessArgs),
    #[command(flatten)]
    Data(super::acr_data::AcrDataCmd),
    /// Manage network rules (IP rules and virtual-network rules).
    NetworkRule {
        #[command(subcommand)]
        cmd: NetworkRuleCmd,
    },
    /// Manage ACR Tasks: multi-step tasks, their runs, logs, credentials and identities.
    Task {
        #[command(subcommand)]
        cmd: super::acr_task::TaskCmd,
    },
    /// Queue a quick run (a task file or --cmd with context /dev/null, or a task file of a
    /// local directory or git context) and stream its logs.
    Run(Box<super::acr_task::AcrRunArgs>),
    /// Queue a quick Docker build of a local directory (uploaded) or a remote context, and
    /// stream its logs.
    Build(Box<super::acr_task::AcrBuildArgs>),
    /// Import an image into a registry from another registry of the deployment or any OCI
    /// registry.
    Import(Box<super::acr_import::ImportArgs>),
    /// Delete a container registry and all its content.
    Delete {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
        /// Do not prompt for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// `acr update`: the registry, the settings to change, and how to confirm access changes.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'g')]
    pub resource_group: Option<String>,
    #[arg(long, value_enum, ignore_case = true)]
    pub sku: Option<SkuArg>,
    #[command(flatten)]
    pub settings: Settings,
    /// Only show who would gain or lose data access (role assignment mode and network
    /// settings); change nothing.
    #[arg(long)]
    pub what_if: bool,
    /// Do not ask for confirmation of access changes.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// `acr check-access`: the principal, the request and the network path to judge.
#[derive(Debug, Args)]
pub struct CheckAccessArgs {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'g')]
    pub resource_group: Option<String>,
    /// User principal name, app id or object id.
    #[arg(long)]
    pub assignee: String,
    /// Repository inside the registry (omit for the catalog).
    #[arg(long)]
    pub repository: Option<String>,
    /// Action to check.
    #[arg(long, value_parser = ["pull", "push", "delete", "list", "metadata_read", "metadata_write", "*"], default_value = "pull")]
    pub action: String,
    /// Judge the network rules for a request from this address on the public endpoint
    /// (without it, and without --via-private-endpoint: for any public address).
    #[arg(long)]
    pub client_ip: Option<String>,
    /// Judge the request as arriving through this private endpoint (name or resource id).
    #[arg(long)]
    pub via_private_endpoint: Option<String>,
    /// For a managed identity: the hosting resource (id) whose workload makes the request.
    #[arg(long)]
    pub hosting_resource: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum NetworkRuleCmd {
    /// Add an IP rule (address or CIDR, IPv4 or IPv6) or a virtual-network rule.
    Add(NetworkRuleArgs),
    /// Remove an IP rule or a virtual-network rule.
    Remove(NetworkRuleArgs),
    /// List the registry's network rules.
    List {
        #[arg(long, short = 'n')]
        name: String,
        #[arg(long, short = 'g')]
        resource_group: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct NetworkRuleArgs {
    #[arg(long, short = 'n')]
    pub name: String,
    #[arg(long, short = 'g')]
    pub resource_group: Option<String>,
    /// IPv4/IPv6 address or CIDR range.
    #[arg(long, conflicts_with_all = ["subnet", "vnet_name"])]
    pub ip_address: Option<String>,
    /// Subnet name (with --vnet-name) or subnet id.
    #[arg(long)]
    pub subnet: Option<String>,
    #[arg(long)]
    pub vnet_name: Option<String>,
}

/// `-o table` for each `acr` command: az's columns where az has them (its `acr` table
/// transformers), az's generic table elsewhere.
pub fn table(cmd: &AcrCmd) -> Table {
    match cmd {
        AcrCmd::Update(args) if args.what_if => Table::Generic,
        AcrCmd::Create { .. }
        | AcrCmd::Show { .. }
        | AcrCmd::List { .. }
        | AcrCmd::Update(_)
        | AcrCmd::Delete { .. } => Table::Columns(registry_columns),
        AcrCmd::CheckName { .. } | AcrCmd::NetworkRule { .. } | AcrCmd::Import(_) => Table::Generic,
        AcrCmd::ShowUsage { .. } => Table::Columns(usage_columns),
        AcrCmd::CheckAccess(_) => Table::Columns(access_columns),
        AcrCmd::Data(cmd) => super::acr_data::table(cmd),
        AcrCmd::Task { cmd } => super::acr_task::table(cmd),
        AcrCmd::Run(_) | AcrCmd::Build(_) => Table::Columns(super::acr_task::view::run_columns),
    }
}

/// The objects az's `acr` table transformers make rows of: a `value` list, a list, or one object.
pub(super) fn rows(v: &Value) -> Vec<&Value> {
    match v {
        Value::Object(m) if m.get("value").is_some_and(Value::is_array) => {
            m["value"].as_array().unwrap().iter().collect()
        }
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// A cell as az's `acr` table transformers write it: the value's text, or a blank when it is
/// missing, null or empty (`false` and `0` are shown).
pub(super) fn text(v: &Value) -> Value {
    Value::String(match v {
        Value::Null => String::new(),
        Value::Array(a) if a.is_empty() => String::new(),
        Value::Object(m) if m.is_empty() => String::new(),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// A date as az's `acr` tables show it: `YYYY-MM-DDTHH:MM:SSZ`, fractions and offset dropped.
pub(super) fn date(v: &Value) -> Value {
    let s = v.as_str().unwrap_or_default();
    let b = s.as_bytes();
    let shaped = b.len() >= 19
        && [4, 7].iter().all(|&i| b[i] == b'-')
        && (b[10] == b'T' || b[10] == b' ')
        && [13, 16].iter().all(|&i| b[i] == b':')
        && [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18].iter().all(|&i| b[i].is_ascii_digit());
    if shaped { Value::String(format!("{}T{}Z", &s[..10], &s[11..19])) } else { text(v) }
}

fn registry_columns(v: &Value) -> Vec<Value> {
    rows(v)
        .into_iter()
        .map(|r| {
            columns([
                ("NAME", text(&r["name"])),
                ("RESOURCE GROUP", text(&r["resourceGroup"])),
                ("LOCATION", text(&r["location"])),
                ("SKU", text(&r["sku"]["name"])),
                ("LOGIN SERVER", text(&r["loginServer"])),
                ("CREATION DATE", date(&r["creationDate"])),
                ("ADMIN ENABLED", text(&r["adminUserEnabled"])),
            ])
        })
        .collect()
}

fn usage_columns(v: &Value) -> Vec<Value> {
    rows(v)
        .into_iter()
        .map(|u| {
            columns([
                ("NAME", text(&u["name"])),
                ("LIMIT", text(&u["limit"])),
                ("CURRENT VALUE", text(&u["currentValue"])),
                ("UNIT", text(&u["unit"])),
            ])
        })
        .collect()
}

/// Wharf's own command, in the style of az's `acr` tables: what was asked and what decided.
fn access_columns(v: &Value) -> Vec<Value> {
    let joined = |list: &Value, key: Option<&str>| {
        let items: Vec<&str> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| match key {
                Some(k) => x[k].as_str(),
                None => x.as_str(),
            })
            .collect();
        Value::String(items.join(", "))
    };
    rows(v)
        .into_iter()
        .map(|a| {
            columns([
                ("REGISTRY", text(&a["registry"])),
                ("TARGET", text(&a["target"])),
                ("ACTIONS", joined(&a["decisions"], Some("action"))),
                ("GRANTED", joined(&a["granted"], None)),
                ("DECISION", text(&a["decision"])),
            ])
        })
        .collect()
}

/// az shows the SDK's flattened model: `properties` merged into the top level, plus
/// `resourceGroup`, so `--query loginServer` works as with az.
pub fn flatten_registry(v: &Value) -> Value {
    let mut out = Map::new();
    if let Value::Object(m) = v {
        for (k, val) in m {
            if k == "properties" {
                if let Value::Object(p) = val {
                    for (pk, pv) in p {
                        out.insert(pk.clone(), pv.clone());
                    }
                }
            } else {
                out.insert(k.clone(), val.clone());
            }
        }
        if let Some(rid) = m.get("id").and_then(Value::as_str).and_then(|id| wharf_arm::ResourceId::parse(id).ok()) {
            out.insert("resourceGroup".into(), json!(rid.resource_group));
        }
    }
    let mut sorted: Vec<(String, Value)> = out.into_iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    Value::Object(sorted.into_iter().collect())
}

pub(super) fn registry_path(sub: &str, rg: &str, name: &str) -> String {
    format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}")
}

/// Finds the registry's resource group when `-g` is not given, as az does.
pub(super) async fn resolve_group(client: &Client, name: &str, rg: Option<String>) -> Result<String, CliError> {
    if let Some(rg) = rg {
        return Ok(rg);
    }
    let sub = client.subscription()?;
    let all = client
        .get(&format!("/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries"), REGISTRY_API)
        .await?;
    all["value"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|r| r["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        .and_then(|r| r["id"].as_str())
        .and_then(|id| wharf_arm::ResourceId::parse(id).ok())
        .and_then(|id| id.resource_group)
        .ok_or_else(|| CliError::NotFound(format!("The resource with name '{name}' and type 'Microsoft.ContainerRegistry/registries' could not be found in subscription '{sub}'.")))
}

pub async fn run(cmd: AcrCmd) -> Result<Option<Value>, CliError> {
    let cmd = match cmd {
        AcrCmd::Data(cmd) => return super::acr_data::run(cmd).await,
        AcrCmd::Task { cmd } => return super::acr_task::run(cmd).await,
        AcrCmd::Run(args) => return super::acr_task::acr_run(*args).await,
        AcrCmd::Build(args) => return super::acr_task::acr_build(*args).await,
        AcrCmd::Import(args) => return super::acr_import::run(*args).await,
        other => other,
    };
    let client = Client::from_profile().await?;
    let sub = client.subscription()?.to_string();
    match cmd {
        AcrCmd::Create { name, resource_group, sku, location, settings } => {
            create(&client, &sub, &name, &resource_group, sku, location, &settings).await
        }
        AcrCmd::Show { name, resource_group } => show(&client, &sub, &name, resource_group).await,
        AcrCmd::List { resource_group } => list(&client, &sub, resource_group).await,
        AcrCmd::CheckName { name } => check_name(&client, &sub, &name).await,
        AcrCmd::ShowUsage { name, resource_group } => show_usage(&client, &sub, &name, resource_group).await,
        AcrCmd::Update(args) => update(&client, &sub, args).await,
        AcrCmd::Data(_) | AcrCmd::Task { .. } | AcrCmd::Run(_) | AcrCmd::Build(_) | AcrCmd::Import(_) => {
            Err(CliError::Other("internal: command routed twice".into()))
        }
        AcrCmd::NetworkRule { cmd } => network_rule(&client, &sub, cmd).await,
        AcrCmd::CheckAccess(args) => check_access(&client, &sub, args).await,
        AcrCmd::Delete { name, resource_group, yes } => delete(&client, &sub, &name, resource_group, yes).await,
    }
}

async fn create(
    client: &Client,
    sub: &str,
    name: &str,
    resource_group: &str,
    sku: SkuArg,
    location: Option<String>,
    settings: &Settings,
) -> Result<Option<Value>, CliError> {
    let location = match location {
        Some(l) => l,
        None => {
            let rg =
                client.get(&format!("/subscriptions/{sub}/resourcegroups/{resource_group}"), RESOURCES_API).await?;
            rg["location"].as_str().unwrap_or("local").to_string()
        }
    };
    let mut props = settings.properties();
    props.entry("adminUserEnabled").or_insert(json!(false));
    let mut body = json!({"location": location, "sku": {"name": sku.as_str()}, "properties": props});
    if let Some(t) = &settings.tags {
        body["tags"] = parse_tags(t)?;
    }
    let v = client.arm(Method::PUT, &registry_path(sub, resource_group, name), REGISTRY_API, Some(&body)).await?;
    Ok(Some(flatten_registry(&v)))
}

async fn show(
    client: &Client,
    sub: &str,
    name: &str,
    resource_group: Option<String>,
) -> Result<Option<Value>, CliError> {
    let rg = resolve_group(client, name, resource_group).await?;
    let v = client.get(&registry_path(sub, &rg, name), REGISTRY_API).await?;
    Ok(Some(flatten_registry(&v)))
}

async fn list(client: &Client, sub: &str, resource_group: Option<String>) -> Result<Option<Value>, CliError> {
    let path = match &resource_group {
        Some(rg) => {
            format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries")
        }
        None => format!("/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/registries"),
    };
    let v = client.get(&path, REGISTRY_API).await?;
    let list: Vec<Value> = v["value"].as_array().into_iter().flatten().map(flatten_registry).collect();
    Ok(Some(Value::Array(list)))
}

async fn check_name(client: &Client, sub: &str, name: &str) -> Result<Option<Value>, CliError> {
    let body = json!({"name": name, "type": "Microsoft.ContainerRegistry/registries"});
    let path = format!("/subscriptions/{sub}/providers/Microsoft.ContainerRegistry/checkNameAvailability");
    Ok(Some(client.arm(Method::POST, &path, REGISTRY_API, Some(&body)).await?))
}

async fn show_usage(
    client: &Client,
    sub: &str,
    name: &str,
    resource_group: Option<String>,
) -> Result<Option<Value>, CliError> {
    let rg = resolve_group(client, name, resource_group).await?;
    Ok(Some(client.get(&format!("{}/listUsages", registry_path(sub, &rg, name)), REGISTRY_API).await?))
}

async fn update(client: &Client, sub: &str, args: UpdateArgs) -> Result<Option<Value>, CliError> {
    let UpdateArgs { name, resource_group, sku, settings, what_if, yes } = args;
    let name = name.as_str();
    let rg = resolve_group(client, name, resource_group).await?;
    let path = registry_path(sub, &rg, name);
    // Preview first: who gains or loses data access, through the mode or the network.
    let mut preview = Map::new();
    let mut text = String::new();
    let mut ask = false;
    if let Some(mode) = settings.role_assignment_mode {
        let impact = client
            .arm(
                Method::POST,
                &format!("{path}/roleAssignmentModeImpact"),
                REGISTRY_API,
                Some(&json!({"roleAssignmentMode": mode.arm()})),
            )
            .await?;
        let described = describe_impact(&impact);
        ask |= !described.is_empty();
        text += &described;
        if let Value::Object(m) = impact {
            preview.extend(m);
        }
    }
    let network = settings.network_properties();
    let mut unpreviewed = false;
    if !network.is_empty() {
        let mut body = json!({"properties": network});
        if let Some(s) = sku {
            body["sku"] = json!({"name": s.as_str()});
        }
        match network_impact(client, &path, &body, what_if).await? {
            Some(impact) => {
                ask |= impact["losesAccess"].as_bool().unwrap_or(false);
                text += &describe_network_impact(&impact, name);
                preview.insert("networkRules".into(), impact);
            }
            None => unpreviewed = true,
        }
    }
    if what_if {
        if preview.is_empty() {
            eprintln!(
                "Nothing to preview: --what-if previews --role-assignment-mode, --public-network-enabled, --default-action and --allow-trusted-services."
            );
        } else if text.is_empty() {
            eprintln!("No principal or address gains or loses data-plane access.");
        } else {
            eprint!("{text}");
        }
        return Ok(Some(Value::Object(preview)));
    }
    if !text.is_empty() {
        eprint!("{text}");
    }
    // Scripts (no terminal) proceed after printing, so commands written for az keep working.
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        if ask {
            confirm("Apply these changes?", yes)?;
        } else if unpreviewed {
            confirm("Apply the network change without a preview?", yes)?;
        }
    }
    let mut body = json!({"properties": settings.properties()});
    if let Some(s) = sku {
        body["sku"] = json!({"name": s.as_str()});
    }
    if let Some(t) = &settings.tags {
        body["tags"] = parse_tags(t)?;
    }
    let v = client.arm(Method::PATCH, &path, REGISTRY_API, Some(&body)).await?;
    Ok(Some(flatten_registry(&v)))
}

async fn check_access(client: &Client, sub: &str, args: CheckAccessArgs) -> Result<Option<Value>, CliError> {
    let CheckAccessArgs {
        name,
        resource_group,
        assignee,
        repository,
        action,
        client_ip,
        via_private_endpoint,
        hosting_resource,
    } = args;
    let rg = resolve_group(client, &name, resource_group).await?;
    let (oid, _) = super::role::resolve_assignee(client, &assignee).await?;
    let (repository, action) = match (action.as_str(), repository) {
        ("list", None) => (None, "*".to_string()),
        ("list", Some(r)) => (Some(r), "metadata_read".to_string()),
        (a, r) => (r, a.to_string()),
    };
    let body = json!({
        "principalId": oid,
        "repository": repository,
        "actions": [action],
        "clientIp": client_ip,
        "privateEndpoint": via_private_endpoint,
        "hostingResource": hosting_resource,
    });
    let path = format!("{}/checkAccess", registry_path(sub, &rg, &name));
    Ok(Some(client.arm(Method::POST, &path, REGISTRY_API, Some(&body)).await?))
}

async fn delete(
    client: &Client,
    sub: &str,
    name: &str,
    resource_group: Option<String>,
    yes: bool,
) -> Result<Option<Value>, CliError> {
    let rg = resolve_group(client, name, resource_group).await?;
    confirm(&format!("Are you sure you want to delete the registry '{name}' and all its content?"), yes)?;
    client.arm(Method::DELETE, &registry_path(sub, &rg, name), REGISTRY_API, None).await?;
    Ok(None)
}

/// The impact of a mode change as lines for stderr.
fn describe_impact(impact: &Value) -> String {
    let mut out = String::new();
    for p in impact["value"].as_array().into_iter().flatten() {
        let who = p["principalId"].as_str().unwrap_or("?");
        for c in p["changes"].as_array().into_iter().flatten() {
            let list = |k: &str| {
                c[k].as_array()
                    .map(|a| a.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(", "))
                    .unwrap_or_default()
            };
            let (gained, lost) = (list("gained"), list("lost"));
            if !lost.is_empty() {
                out += &format!("principal {who} loses [{lost}] on {}\n", c["target"].as_str().unwrap_or("?"));
            }
            if !gained.is_empty() {
                out += &format!("principal {who} gains [{gained}] on {}\n", c["target"].as_str().unwrap_or("?"));
            }
        }
    }
    if !out.is_empty() {
        out = format!(
            "Changing the role assignment permissions mode from {} to {} changes data access:\n{out}",
            impact["from"].as_str().unwrap_or("?"),
            impact["to"].as_str().unwrap_or("?")
        );
    }
    out
}

/// Asks the server who gains or loses data-plane network access if `body` (a PATCH body with
/// network properties) were applied. A caller who may change the registry but not read its
/// role assignments gets no preview: `None` after a warning (unless `strict`, for
/// `--what-if`, where the refusal is the answer). Any other error is the PATCH's error too.
async fn network_impact(
    client: &Client,
    registry_path: &str,
    body: &Value,
    strict: bool,
) -> Result<Option<Value>, CliError> {
    match client.arm(Method::POST, &format!("{registry_path}/networkRuleImpact"), REGISTRY_API, Some(body)).await {
        Ok(v) => Ok(Some(v)),
        Err(CliError::Service { status: 403, message, .. }) if !strict => {
            eprintln!("WARNING: the impact of this network change could not be previewed: {message}");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The impact of a network-rule change as lines for stderr.
fn describe_network_impact(impact: &Value, registry: &str) -> String {
    let lines: Vec<&str> = impact["text"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if lines.is_empty() {
        return String::new();
    }
    let mut out = format!("Changing the network rules of registry '{registry}' changes data-plane access:\n");
    for l in lines {
        out += &format!("  - {l}\n");
    }
    let endpoints: Vec<&str> =
        impact["privateEndpoints"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if !endpoints.is_empty() {
        out +=
            &format!("Requests through the registry's private endpoints are not affected: {}.\n", endpoints.join(", "));
    }
    out += "Management (ARM) access is not affected.\n";
    out
}

async fn network_rule(client: &Client, sub: &str, cmd: NetworkRuleCmd) -> Result<Option<Value>, CliError> {
    let (args, adding) = match cmd {
        NetworkRuleCmd::List { name, resource_group } => {
            let rg = resolve_group(client, &name, resource_group).await?;
            let v = client.get(&registry_path(sub, &rg, &name), REGISTRY_API).await?;
            let set = &v["properties"]["networkRuleSet"];
            return Ok(Some(
                json!({"ipRules": set["ipRules"], "virtualNetworkRules": set.get("virtualNetworkRules").cloned().unwrap_or(json!([]))}),
            ));
        }
        NetworkRuleCmd::Add(a) => (a, true),
        NetworkRuleCmd::Remove(a) => (a, false),
    };
    let rg = resolve_group(client, &args.name, args.resource_group.clone()).await?;
    let path = registry_path(sub, &rg, &args.name);
    let current = client.get(&path, REGISTRY_API).await?;
    let mut set = current["properties"]["networkRuleSet"].clone();
    if set.is_null() {
        set = json!({"defaultAction": "Allow", "ipRules": []});
    }
    match (&args.ip_address, &args.subnet) {
        (Some(ip), None) => {
            let mut rules: Vec<Value> = set["ipRules"].as_array().cloned().unwrap_or_default();
            let same = |r: &Value| {
                r["value"].as_str().is_some_and(|v| v == ip || v.trim_end_matches("/32") == ip.trim_end_matches("/32"))
            };
            if adding {
                if !rules.iter().any(same) {
                    rules.push(json!({"action": "Allow", "value": ip}));
                }
            } else {
                rules.retain(|r| !same(r));
            }
            set["ipRules"] = Value::Array(rules);
        }
        (None, Some(subnet)) => {
            let id = if subnet.starts_with("/subscriptions/") {
                subnet.clone()
            } else {
                let vnet = args
                    .vnet_name
                    .clone()
                    .ok_or_else(|| CliError::Usage("--vnet-name is required when --subnet is a name".into()))?;
                format!(
                    "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{vnet}/subnets/{subnet}"
                )
            };
            let mut rules: Vec<Value> = set["virtualNetworkRules"].as_array().cloned().unwrap_or_default();
            let same = |r: &Value| r["id"].as_str().is_some_and(|v| v.eq_ignore_ascii_case(&id));
            if adding {
                if !rules.iter().any(same) {
                    rules.push(json!({"action": "Allow", "id": id}));
                }
            } else {
                rules.retain(|r| !same(r));
            }
            set["virtualNetworkRules"] = Value::Array(rules);
        }
        _ => {
            return Err(CliError::Usage(
                "usage error: --ip-address ADDRESS | --subnet SUBNET [--vnet-name VNET]".into(),
            ));
        }
    }
    let body = json!({"properties": {"networkRuleSet": set}});
    if let Some(impact) = network_impact(client, &path, &body, false).await? {
        eprint!("{}", describe_network_impact(&impact, &args.name));
    }
    let v = client.arm(Method::PATCH, &path, REGISTRY_API, Some(&body)).await?;
    let set = &v["properties"]["networkRuleSet"];
    Ok(Some(
        json!({"ipRules": set["ipRules"], "virtualNetworkRules": set.get("virtualNetworkRules").cloned().unwrap_or(json!([]))}),
    ))
}
