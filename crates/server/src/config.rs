//! `wharf serve` configuration: flags, then `WHARF_*` environment variables, then an optional
//! TOML file, then defaults — in that order of precedence.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use serde::Deserialize;

/// Options of `wharf serve`. Every option can also be set by its `WHARF_*` environment variable
/// or in the TOML file given with `--config` (keys as the long flag names, with `_` for `-`).
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML configuration file (lowest precedence after defaults).
    #[arg(long, env = "WHARF_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Data directory holding the metadata database and the blob store [default: ./wharf-data].
    #[arg(long, env = "WHARF_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Address of the public listener [default: 127.0.0.1:5000].
    #[arg(long, env = "WHARF_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// DNS domain of login servers: registry `r` is served at `r.{domain}` [default: localhost].
    #[arg(long, env = "WHARF_DOMAIN", value_name = "DOMAIN")]
    pub domain: Option<String>,

    /// Port that login servers advertise, when clients reach Wharf through a different port than
    /// the listener's (e.g. behind a proxy) [default: the listener's port].
    #[arg(long, env = "WHARF_PUBLIC_PORT", value_name = "PORT")]
    pub public_port: Option<u16>,

    /// Largest blob accepted in one upload session, in bytes [default: unlimited].
    #[arg(long, env = "WHARF_MAX_BLOB_SIZE", value_name = "BYTES")]
    pub max_blob_size: Option<u64>,

    /// Log filter, in `tracing` syntax (e.g. `info`, `wharf_server=debug`) [default: info].
    #[arg(long, env = "WHARF_LOG", value_name = "FILTER")]
    pub log: Option<String>,

    /// A reverse proxy whose X-Forwarded-For / Forwarded headers are believed (CIDR; repeat the
    /// flag or separate with commas). From any other peer those headers are ignored and the
    /// TCP peer address is the client address that network rules judge.
    #[arg(long = "trusted-proxy", env = "WHARF_TRUSTED_PROXY", value_name = "CIDR", value_delimiter = ',')]
    pub trusted_proxies: Vec<ipnet::IpNet>,

    /// The header the trusted proxies write the client address into: `x-forwarded-for` or
    /// `forwarded` (RFC 7239). Only that header is read; when only the other one arrives, or
    /// the header does not parse, the proxy's own address is judged [default: x-forwarded-for].
    #[arg(long, env = "WHARF_TRUSTED_PROXY_HEADER", value_name = "HEADER")]
    pub trusted_proxy_header: Option<wharf_netrules::ForwardedHeader>,

    /// Seconds a connection has to deliver a complete request head once it waits for one:
    /// after it is accepted (including the TLS handshake and HTTP/2's preface) and, on
    /// HTTP/1.1, after each response, 1 to 3600 [default: 30].
    #[arg(long, env = "WHARF_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<u64>,

    /// Seconds a kept-alive connection may stay open with no request in progress, 1 to 3600
    /// [default: 60].
    #[arg(long, env = "WHARF_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,

    /// Longest pause, in seconds, between two pieces of a request body; a body that keeps
    /// arriving is never cut off, however long it takes, 1 to 3600 [default: 60].
    #[arg(long, env = "WHARF_BODY_READ_TIMEOUT", value_name = "SECONDS")]
    pub body_read_timeout: Option<u64>,

    /// Open connections allowed from one client address (IPv6: one /64); trusted proxies are
    /// exempt [default: 256].
    #[arg(long, env = "WHARF_MAX_CONNECTIONS_PER_CLIENT", value_name = "N")]
    pub max_connections_per_client: Option<usize>,

    /// Open connections allowed in total, over every listener; never more than the
    /// file-descriptor limit allows [default: 8192, or less as the fd limit allows].
    #[arg(long, env = "WHARF_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,

    /// Serve TLS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "WHARF_TLS_CERT", value_name = "FILE", requires = "tls_key", conflicts_with = "tls_self_signed")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "WHARF_TLS_KEY", value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Serve TLS with certificates signed by a local CA that Wharf creates in
    /// {data-dir}/tls/ca.crt: a default one (localhost, the domain, 127.0.0.1, ::1, the listen
    /// address) and one per login server {registry}.{domain}, issued at its first handshake.
    /// Clients trust the CA file (e.g. REQUESTS_CA_BUNDLE for az and the Azure SDKs).
    #[arg(long, env = "WHARF_TLS_SELF_SIGNED")]
    pub tls_self_signed: bool,

    /// Lifetime of directory access tokens (the Entra-like token endpoint and the
    /// managed-identity endpoint), in seconds, 1 to 86400 [default: 3600].
    #[arg(long, env = "WHARF_DIRECTORY_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub directory_token_lifetime: Option<u32>,

    /// Lifetime of registry refresh tokens (`/oauth2/exchange`), in seconds, 1 to 86400
    /// [default: 10800].
    #[arg(long, env = "WHARF_REGISTRY_REFRESH_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub registry_refresh_token_lifetime: Option<u32>,

    /// Lifetime of registry access tokens (`/oauth2/token`), in seconds, 1 to 86400
    /// [default: 4500].
    #[arg(long, env = "WHARF_REGISTRY_ACCESS_TOKEN_LIFETIME", value_name = "SECONDS")]
    pub registry_access_token_lifetime: Option<u32>,

    /// Clock skew allowed when checking the expiry, not-before and issued-at times of every
    /// token Wharf validates, in seconds, 0 to 300 [default: 60].
    #[arg(long, env = "WHARF_TOKEN_CLOCK_SKEW", value_name = "SECONDS")]
    pub token_clock_skew: Option<u32>,

    /// Most role assignments the deployment (one subscription) may hold; a new one past it is
    /// refused with `RoleAssignmentLimitExceeded` [default: 4000, Azure's per-subscription limit].
    #[arg(long, env = "WHARF_MAX_ROLE_ASSIGNMENTS", value_name = "COUNT")]
    pub max_role_assignments: Option<usize>,
    /// Upload sessions that no request named for this long expire, with their bytes, in
    /// seconds, at least 1 [default: 86400].
    #[arg(long, env = "WHARF_UPLOAD_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub upload_idle_timeout: Option<u64>,

    /// Open upload sessions one principal may hold, across registries, at least 1
    /// [default: 1000].
    #[arg(long, env = "WHARF_MAX_UPLOADS_PER_PRINCIPAL", value_name = "N")]
    pub max_uploads_per_principal: Option<u64>,

    /// Open upload sessions one registry may hold, at least 1 [default: 10000].
    #[arg(long, env = "WHARF_MAX_UPLOADS_PER_REGISTRY", value_name = "N")]
    pub max_uploads_per_registry: Option<u64>,

    /// Task runs that execute at once; further runs wait in the queue, in order, at least 1
    /// [default: the number of CPUs].
    #[arg(long, env = "WHARF_TASK_RUNS", value_name = "N")]
    pub task_runs: Option<usize>,

    /// The network of task runs' build and step containers: `host` (the host's network, so
    /// every service listening on the host's loopback is reachable), `none` (loopback of their
    /// own only: steps can reach no registry), or the name of a network of the engine (podman)
    /// [default: host].
    #[arg(long, env = "WHARF_TASK_NETWORK", value_name = "NETWORK")]
    pub task_network: Option<String>,

    /// Container storage of task runs (images, layers, containers), as buildah's and podman's
    /// `--root`; its run state goes below it in `run` [default: the engine's own,
    /// /var/lib/containers/storage].
    #[arg(long, env = "WHARF_TASK_STORAGE", value_name = "DIR")]
    pub task_storage: Option<PathBuf>,

    /// A registry outside this deployment (`host:port`) that task runs reach over plain HTTP,
    /// e.g. a custom registry on a private network; repeatable. This deployment's own
    /// registries need no entry.
    #[arg(
        long = "task-insecure-registry",
        env = "WHARF_TASK_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    pub task_insecure_registries: Vec<String>,

    /// A registry outside this deployment (`host:port`) that imports (`az acr import` with a
    /// registry URI) reach over plain HTTP instead of HTTPS, e.g. a mirror on a private
    /// network; repeatable.
    #[arg(
        long = "import-insecure-registry",
        env = "WHARF_IMPORT_INSECURE_REGISTRIES",
        value_delimiter = ',',
        value_name = "HOST:PORT"
    )]
    pub import_insecure_registries: Vec<String>,

    /// The largest build source (`az acr build`/`az acr run` upload a gzip-compressed tar of
    /// the context), in bytes; a larger upload is refused before it is stored, and a source may
    /// expand to at most eight times this [default: 536870912, 512 MiB].
    #[arg(long, env = "WHARF_MAX_BUILD_SOURCE_SIZE", value_name = "BYTES")]
    pub max_build_source_size: Option<u64>,

    /// A directory below which task runs may clone `file://` git repositories of this machine;
    /// repeatable. Without one, `file://` contexts are refused: they would let any caller who
    /// may schedule a run read any repository the server can [default: none].
    #[arg(long = "task-git-file-root", env = "WHARF_TASK_GIT_FILE_ROOTS", value_delimiter = ',', value_name = "DIR")]
    pub task_git_file_roots: Vec<PathBuf>,

    /// Days a finished task run (its record and its log) is kept before the retention sweep
    /// deletes it, counted from its last change (its end, in practice); runs with
    /// `isArchiveEnabled` are kept forever. 0 keeps every run [default: 30, ACR's retention].
    #[arg(long, env = "WHARF_RUN_RETENTION_DAYS", value_name = "DAYS")]
    pub run_retention_days: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
struct FileConfig {
    data_dir: Option<PathBuf>,
    listen: Option<SocketAddr>,
    domain: Option<String>,
    public_port: Option<u16>,
    max_blob_size: Option<u64>,
    log: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_self_signed: Option<bool>,
    trusted_proxy: Option<Vec<ipnet::IpNet>>,
    trusted_proxy_header: Option<wharf_netrules::ForwardedHeader>,
    header_read_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    body_read_timeout: Option<u64>,
    max_connections_per_client: Option<usize>,
    max_connections: Option<usize>,
    directory_token_lifetime: Option<u32>,
    registry_refresh_token_lifetime: Option<u32>,
    registry_access_token_lifetime: Option<u32>,
    token_clock_skew: Option<u32>,
    max_role_assignments: Option<usize>,
    upload_idle_timeout: Option<u64>,
    max_uploads_per_principal: Option<u64>,
    max_uploads_per_registry: Option<u64>,
    task_runs: Option<usize>,
    task_network: Option<String>,
    task_storage: Option<PathBuf>,
    task_insecure_registries: Option<Vec<String>>,
    import_insecure_registries: Option<Vec<String>>,
    max_build_source_size: Option<u64>,
    task_git_file_roots: Option<Vec<PathBuf>>,
    run_retention_days: Option<u32>,
}

/// Lifetimes of the tokens Wharf issues and the clock skew it allows when validating, in
/// seconds. Changing a lifetime affects tokens issued afterwards; tokens already issued keep
/// their `exp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenTimes {
    pub directory_lifetime: u32,
    pub registry_refresh_lifetime: u32,
    pub registry_access_lifetime: u32,
    pub clock_skew: u32,
}

/// Longest token lifetime accepted (one day, Entra's upper bound for configurable lifetimes).
pub const MAX_TOKEN_LIFETIME: u32 = 86_400;
/// Largest clock skew accepted.
pub const MAX_CLOCK_SKEW: u32 = 300;

impl Default for TokenTimes {
    /// The identity crate's defaults: 1 h, 3 h, 75 min, 60 s.
    fn default() -> Self {
        let secs = |d: chrono::Duration| u32::try_from(d.num_seconds()).expect("a default fits in u32");
        TokenTimes {
            directory_lifetime: secs(wharf_identity::claims::DEFAULT_DIRECTORY_TOKEN_LIFETIME),
            registry_refresh_lifetime: secs(wharf_identity::registry_token::DEFAULT_REFRESH_TOKEN_LIFETIME),
            registry_access_lifetime: secs(wharf_identity::registry_token::DEFAULT_ACCESS_TOKEN_LIFETIME),
            clock_skew: secs(wharf_identity::jwt::DEFAULT_LEEWAY),
        }
    }
}

/// Upload sessions: when idle ones expire, and how many may be open (see
/// `uploads_sweep.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadPolicy {
    pub idle_timeout: std::time::Duration,
    pub max_per_principal: u64,
    pub max_per_registry: u64,
}

impl Default for UploadPolicy {
    /// A day idle (distribution purges sessions a week after they started), 1,000 sessions per
    /// principal, 10,000 per registry.
    fn default() -> Self {
        UploadPolicy {
            idle_timeout: std::time::Duration::from_secs(86_400),
            max_per_principal: 1_000,
            max_per_registry: 10_000,
        }
    }
}

/// Limits on connections, shared by the public and the private-endpoint listeners.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionSettings {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_per_client: usize,
    /// The configured total; the listeners lower it to what the fd limit allows.
    pub max_total: usize,
}

/// Largest timeout accepted, in seconds.
pub const MAX_CONNECTION_TIMEOUT: u64 = 3600;

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(60),
            max_per_client: 256,
            max_total: 8192,
        }
    }
}

/// How the public listener does TLS.
#[derive(Debug, Clone, PartialEq)]
pub enum TlsMode {
    Off,
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
}

/// Resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub domain: String,
    pub public_port: Option<u16>,
    pub max_blob_size: Option<u64>,
    pub log: String,
    pub tls: TlsMode,
    pub trusted_proxies: Vec<ipnet::IpNet>,
    pub trusted_proxy_header: wharf_netrules::ForwardedHeader,
    pub tokens: TokenTimes,
    pub max_role_assignments: usize,
    pub uploads: UploadPolicy,
    pub connections: ConnectionSettings,
    pub tasks: TaskSettings,
    /// Registries outside the deployment that imports reach over plain HTTP (lowercase).
    pub import_insecure_registries: Vec<String>,
}

/// How task runs execute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskSettings {
    /// Runs executing at once.
    pub runs: usize,
    /// `host`, `none` or an engine network's name.
    pub network: String,
    /// Container storage root, or the engine's default.
    pub storage: Option<PathBuf>,
    /// Registries outside the deployment reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// The largest uploaded build source, in bytes.
    pub max_source_size: u64,
    /// Directories below which `file://` git contexts may be cloned.
    pub git_file_roots: Vec<PathBuf>,
    /// Days finished runs are kept (`None`: forever).
    pub run_retention_days: Option<u32>,
}

/// ACR's retention of run records and logs: 30 days.
pub const DEFAULT_RUN_RETENTION_DAYS: u32 = 30;

/// The default largest build source: 512 MiB.
pub const DEFAULT_MAX_BUILD_SOURCE_SIZE: u64 = 512 << 20;

impl Config {
    pub fn tls_enabled(&self) -> bool {
        self.tls != TlsMode::Off
    }
}

/// A count that must be at least one: the flag, else the file's value, else the default.
fn at_least_one<T: Copy + PartialEq + Default>(
    name: &str,
    flag: Option<T>,
    file: Option<T>,
    default: T,
) -> anyhow::Result<T> {
    match flag.or(file).unwrap_or(default) {
        v if v == T::default() => anyhow::bail!("--{name} must be at least 1"),
        v => Ok(v),
    }
}

impl ServeArgs {
    pub fn resolve(&self) -> anyhow::Result<Config> {
        let file = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read configuration file {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid configuration file {}", path.display()))?
            }
            None => FileConfig::default(),
        };
        let domain = self.domain.clone().or(file.domain).unwrap_or_else(|| "localhost".into());
        let domain = domain.trim_matches('.').to_ascii_lowercase();
        if domain.is_empty() {
            anyhow::bail!("--domain must not be empty");
        }
        let defaults = TokenTimes::default();
        let lifetime = |name: &str, flag: Option<u32>, file: Option<u32>, default: u32| -> anyhow::Result<u32> {
            let v = flag.or(file).unwrap_or(default);
            if !(1..=MAX_TOKEN_LIFETIME).contains(&v) {
                anyhow::bail!("--{name} must be between 1 and {MAX_TOKEN_LIFETIME} seconds, not {v}");
            }
            Ok(v)
        };
        let tokens = TokenTimes {
            directory_lifetime: lifetime(
                "directory-token-lifetime",
                self.directory_token_lifetime,
                file.directory_token_lifetime,
                defaults.directory_lifetime,
            )?,
            registry_refresh_lifetime: lifetime(
                "registry-refresh-token-lifetime",
                self.registry_refresh_token_lifetime,
                file.registry_refresh_token_lifetime,
                defaults.registry_refresh_lifetime,
            )?,
            registry_access_lifetime: lifetime(
                "registry-access-token-lifetime",
                self.registry_access_token_lifetime,
                file.registry_access_token_lifetime,
                defaults.registry_access_lifetime,
            )?,
            clock_skew: match self.token_clock_skew.or(file.token_clock_skew).unwrap_or(defaults.clock_skew) {
                v if v <= MAX_CLOCK_SKEW => v,
                v => anyhow::bail!("--token-clock-skew must be between 0 and {MAX_CLOCK_SKEW} seconds, not {v}"),
            },
        };
        let max_role_assignments = self
            .max_role_assignments
            .or(file.max_role_assignments)
            .unwrap_or(wharf_authz::AssignmentLimits::default().max_per_subscription);
        if max_role_assignments == 0 {
            anyhow::bail!("--max-role-assignments must be at least 1");
        }
        let conn_defaults = ConnectionSettings::default();
        let timeout =
            |name: &str, flag: Option<u64>, file: Option<u64>, default: Duration| -> anyhow::Result<Duration> {
                match flag.or(file) {
                    None => Ok(default),
                    Some(v) if (1..=MAX_CONNECTION_TIMEOUT).contains(&v) => Ok(Duration::from_secs(v)),
                    Some(v) => {
                        anyhow::bail!("--{name} must be between 1 and {MAX_CONNECTION_TIMEOUT} seconds, not {v}")
                    }
                }
            };
        let upload_defaults = UploadPolicy::default();
        let uploads = UploadPolicy {
            idle_timeout: std::time::Duration::from_secs(at_least_one(
                "upload-idle-timeout",
                self.upload_idle_timeout,
                file.upload_idle_timeout,
                upload_defaults.idle_timeout.as_secs(),
            )?),
            max_per_principal: at_least_one(
                "max-uploads-per-principal",
                self.max_uploads_per_principal,
                file.max_uploads_per_principal,
                upload_defaults.max_per_principal,
            )?,
            max_per_registry: at_least_one(
                "max-uploads-per-registry",
                self.max_uploads_per_registry,
                file.max_uploads_per_registry,
                upload_defaults.max_per_registry,
            )?,
        };
        let connections = ConnectionSettings {
            header_read_timeout: timeout(
                "header-read-timeout",
                self.header_read_timeout,
                file.header_read_timeout,
                conn_defaults.header_read_timeout,
            )?,
            idle_timeout: timeout("idle-timeout", self.idle_timeout, file.idle_timeout, conn_defaults.idle_timeout)?,
            body_read_timeout: timeout(
                "body-read-timeout",
                self.body_read_timeout,
                file.body_read_timeout,
                conn_defaults.body_read_timeout,
            )?,
            max_per_client: at_least_one(
                "max-connections-per-client",
                self.max_connections_per_client,
                file.max_connections_per_client,
                conn_defaults.max_per_client,
            )?,
            max_total: at_least_one(
                "max-connections",
                self.max_connections,
                file.max_connections,
                conn_defaults.max_total,
            )?,
        };
        let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let network = self.task_network.clone().or(file.task_network).unwrap_or_else(|| "host".into());
        if network.is_empty() || !network.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            anyhow::bail!("--task-network '{network}' is invalid: use host, none or the name of a podman network");
        }
        let tasks = TaskSettings {
            runs: at_least_one("task-runs", self.task_runs, file.task_runs, cpus)?,
            network,
            storage: self.task_storage.clone().or(file.task_storage),
            insecure_registries: if self.task_insecure_registries.is_empty() {
                file.task_insecure_registries.unwrap_or_default()
            } else {
                self.task_insecure_registries.clone()
            },
            max_source_size: at_least_one(
                "max-build-source-size",
                self.max_build_source_size,
                file.max_build_source_size,
                DEFAULT_MAX_BUILD_SOURCE_SIZE,
            )?,
            git_file_roots: if self.task_git_file_roots.is_empty() {
                file.task_git_file_roots.unwrap_or_default()
            } else {
                self.task_git_file_roots.clone()
            },
            run_retention_days: match self.run_retention_days.or(file.run_retention_days) {
                Some(0) => None,
                Some(d) => Some(d),
                None => Some(DEFAULT_RUN_RETENTION_DAYS),
            },
        };
        let import_insecure_registries = if self.import_insecure_registries.is_empty() {
            file.import_insecure_registries.unwrap_or_default()
        } else {
            self.import_insecure_registries.clone()
        };
        Ok(Config {
            import_insecure_registries: import_insecure_registries.iter().map(|h| h.to_ascii_lowercase()).collect(),
            tasks,
            tokens,
            max_role_assignments,
            uploads,
            connections,
            trusted_proxy_header: self.trusted_proxy_header.or(file.trusted_proxy_header).unwrap_or_default(),
            data_dir: self.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("wharf-data")),
            listen: self.listen.or(file.listen).unwrap_or_else(|| "127.0.0.1:5000".parse().expect("valid default")),
            domain,
            public_port: self.public_port.or(file.public_port),
            max_blob_size: self.max_blob_size.or(file.max_blob_size),
            log: self.log.clone().or(file.log).unwrap_or_else(|| "info".into()),
            trusted_proxies: if self.trusted_proxies.is_empty() {
                file.trusted_proxy.unwrap_or_default()
            } else {
                self.trusted_proxies.clone()
            },
            tls: match (self.tls_cert.clone().or(file.tls_cert), self.tls_key.clone().or(file.tls_key)) {
                (Some(cert), Some(key)) => TlsMode::Files { cert, key },
                (Some(_), None) | (None, Some(_)) => anyhow::bail!("--tls-cert and --tls-key must be given together"),
                (None, None) if self.tls_self_signed || file.tls_self_signed.unwrap_or(false) => TlsMode::SelfSigned,
                (None, None) => TlsMode::Off,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_file_and_defaults_fill_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wharf.toml");
        std::fs::write(&path, "domain = \"example.test\"\nlisten = \"127.0.0.1:6000\"\n").unwrap();
        let args =
            ServeArgs { config: Some(path), listen: Some("127.0.0.1:7000".parse().unwrap()), ..Default::default() };
        let c = args.resolve().unwrap();
        assert_eq!(c.listen.port(), 7000);
        assert_eq!(c.domain, "example.test");
        assert_eq!(c.data_dir, PathBuf::from("wharf-data"));
    }

    #[test]
    fn the_trusted_proxy_header_comes_from_flag_or_file() {
        assert_eq!(ServeArgs::default().resolve().unwrap().trusted_proxy_header, Default::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wharf.toml");
        std::fs::write(&path, "trusted_proxy_header = \"forwarded\"\n").unwrap();
        let c = ServeArgs { config: Some(path), ..Default::default() }.resolve().unwrap();
        assert_eq!(c.trusted_proxy_header, wharf_netrules::ForwardedHeader::Forwarded);
    }

    #[test]
    fn connection_settings_come_from_flags_or_file_and_are_bounded() {
        assert_eq!(ServeArgs::default().resolve().unwrap().connections, ConnectionSettings::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wharf.toml");
        std::fs::write(
            &path,
            "header_read_timeout = 5\nidle_timeout = 7\nbody_read_timeout = 9\nmax_connections_per_client = 3\n\
             max_connections = 40\n",
        )
        .unwrap();
        let args = ServeArgs { config: Some(path), idle_timeout: Some(8), ..Default::default() };
        let c = args.resolve().unwrap();
        assert_eq!(
            c.connections,
            ConnectionSettings {
                header_read_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(8),
                body_read_timeout: Duration::from_secs(9),
                max_per_client: 3,
                max_total: 40,
            }
        );
        for (bad, flag) in [
            (ServeArgs { header_read_timeout: Some(0), ..Default::default() }, "--header-read-timeout"),
            (
                ServeArgs { body_read_timeout: Some(MAX_CONNECTION_TIMEOUT + 1), ..Default::default() },
                "--body-read-timeout",
            ),
            (ServeArgs { max_connections: Some(0), ..Default::default() }, "--max-connections"),
            (ServeArgs { max_connections_per_client: Some(0), ..Default::default() }, "--max-connections-per-client"),
        ] {
            let err = format!("{:#}", bad.resolve().unwrap_err());
            assert!(err.contains(flag), "{err}");
        }
    }

    #[test]
    fn unknown_file_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wharf.toml");
        std::fs::write(&path, "domian = \"typo\"\n").unwrap();
        let err = ServeArgs { config: Some(path), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("unknown field"), "{err:#}");
    }

    #[test]
    fn token_times_default_come_from_flags_or_file_and_are_bounded() {
        assert_eq!(ServeArgs::default().resolve().unwrap().tokens, TokenTimes::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wharf.toml");
        std::fs::write(
            &path,
            "directory_token_lifetime = 600\ntoken_clock_skew = 0\nregistry_access_token_lifetime = 5\n",
        )
        .unwrap();
        let args = ServeArgs { config: Some(path.clone()), directory_token_lifetime: Some(2), ..Default::default() };
        let t = args.resolve().unwrap().tokens;
        assert_eq!(
            (t.directory_lifetime, t.registry_access_lifetime, t.registry_refresh_lifetime, t.clock_skew),
            (2, 5, 10800, 0)
        );
        for bad in [
            ServeArgs { directory_token_lifetime: Some(0), ..Default::default() },
            ServeArgs { registry_refresh_token_lifetime: Some(MAX_TOKEN_LIFETIME + 1), ..Default::default() },
            ServeArgs { token_clock_skew: Some(MAX_CLOCK_SKEW + 1), ..Default::default() },
        ] {
            let err = bad.resolve().unwrap_err();
            assert!(format!("{err:#}").contains("seconds"), "{err:#}");
        }
        std::fs::write(&path, "registry_access_token_lifetime = 0\n").unwrap();
        let err = ServeArgs { config: Some(path), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("--registry-access-token-lifetime"), "{err:#}");
    }

    #[test]
    fn upload_policy_defaults_sources_and_bounds() {
        assert_eq!(ServeArgs::default().resolve().unwrap().uploads, UploadPolicy::default());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wharf.toml");
        std::fs::write(&path, "upload_idle_timeout = 60\nmax_uploads_per_registry = 7\n").unwrap();
        let args = ServeArgs { config: Some(path), max_uploads_per_registry: Some(9), ..Default::default() };
        let u = args.resolve().unwrap().uploads;
        assert_eq!((u.idle_timeout.as_secs(), u.max_per_principal, u.max_per_registry), (60, 1000, 9));
        let err = ServeArgs { max_uploads_per_principal: Some(0), ..Default::default() }.resolve().unwrap_err();
        assert!(format!("{err:#}").contains("--max-uploads-per-principal must be at least 1"), "{err:#}");
    }

    #[test]
    fn run_retention_defaults_to_30_days_and_0_keeps_forever() {
        assert_eq!(ServeArgs::default().resolve().unwrap().tasks.run_retention_days, Some(30));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wharf.toml");
        std::fs::write(&path, "run_retention_days = 0\n").unwrap();
        let c = ServeArgs { config: Some(path.clone()), ..Default::default() }.resolve().unwrap();
        assert_eq!(c.tasks.run_retention_days, None);
        let c = ServeArgs { config: Some(path), run_retention_days: Some(7), ..Default::default() }.resolve().unwrap();
        assert_eq!(c.tasks.run_retention_days, Some(7), "the flag wins over the file");
    }
}
