//! TLS for the listeners: a certificate and key given by the operator, or a local CA that
//! Wharf creates in `{data-dir}/tls/` (`--tls-self-signed`).
//!
//! With the local CA, the default certificate covers `localhost`, the configured domain,
//! `127.0.0.1`, `::1` and the listen address; every login server `{registry}.{domain}` gets its
//! own certificate, issued by the CA when a client first names it (SNI) and kept in a bounded
//! cache. A wildcard directly under a one-label name (`*.localhost`) is refused by OpenSSL and
//! node, which is why login servers are not covered by a wildcard.
//!
//! Owns the CA and certificate files and choosing a certificate per handshake. It never looks
//! up whether a registry exists (one may be created later): a name is served when it has the
//! shape of this deployment's login servers. An operator's own certificate is served as given.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

/// Login-server certificates kept at most (the least recently issued goes first).
pub const MAX_CACHED_CERTIFICATES: usize = 1024;
/// A cached login-server certificate is reissued after this long (it is valid for a year).
const REISSUE_AFTER: Duration = Duration::from_secs(30 * 24 * 3600);

fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> anyhow::Result<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Builds the acceptor from the operator's PEM files (`--tls-cert`, `--tls-key`), served for
/// every name as given.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(cert).with_context(|| format!("cannot open --tls-cert {}", cert.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()
    .with_context(|| format!("{} is not a PEM certificate chain", cert.display()))?;
    let key = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(key).with_context(|| format!("cannot open --tls-key {}", key.display()))?,
    ))
    .with_context(|| format!("{} is not a PEM private key", key.display()))?
    .ok_or_else(|| anyhow::anyhow!("no private key found in {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .context("the TLS certificate and key do not match")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Paths of the self-signed material.
pub struct SelfSigned {
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    /// The default certificate (chain includes the CA) and its key.
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The names of the default certificate: `localhost` and the domain, and `*.{domain}` when the
/// domain has two labels or more (clients accept a wildcard there; login servers get their own
/// certificates anyway).
fn default_names(domain: &str) -> Vec<String> {
    let mut names = vec!["localhost".to_string()];
    if domain != "localhost" {
        names.push(domain.to_string());
    }
    if domain.contains('.') {
        names.push(format!("*.{domain}"));
    }
    names
}

/// IP addresses of the default certificate: the loopback addresses and the listen address.
fn default_ips(listen: IpAddr) -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = vec!["127.0.0.1".parse().expect("an IP"), "::1".parse().expect("an IP")];
    if !listen.is_unspecified() && !ips.contains(&listen) {
        ips.push(listen);
    }
    ips
}

/// The local CA's certificate of a data directory (`{data_dir}/tls/ca.crt`).
pub fn ca_cert_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("tls").join("ca.crt")
}

/// Creates (once) a CA and a default server certificate under `{data_dir}/tls`, reissuing the
/// certificate when its names change. Returns the paths.
pub fn self_signed(data_dir: &Path, domain: &str, listen: IpAddr) -> anyhow::Result<SelfSigned> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir)?;
    let paths = SelfSigned {
        ca_cert: ca_cert_path(data_dir),
        ca_key: dir.join("ca.key"),
        cert: dir.join("server.crt"),
        key: dir.join("server.key"),
    };
    let names_path = dir.join("server.names");
    let (names, ips) = (default_names(domain), default_ips(listen));
    let names_text = names.iter().cloned().chain(ips.iter().map(|ip| ip.to_string())).collect::<Vec<_>>().join("\n");

    let (ca_cert_pem, ca_key_pem) = if paths.ca_cert.exists() && paths.ca_key.exists() {
        (std::fs::read_to_string(&paths.ca_cert)?, std::fs::read_to_string(&paths.ca_key)?)
    } else {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "Wharf local CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let cert = params.self_signed(&key)?;
        write_private(&paths.ca_key, &key.serialize_pem())?;
        std::fs::write(&paths.ca_cert, cert.pem())?;
        (cert.pem(), key.serialize_pem())
    };
    let current = std::fs::read_to_string(&names_path).unwrap_or_default();
    if current != names_text || !paths.cert.exists() || !paths.key.exists() {
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert_pem, rcgen::KeyPair::from_pem(&ca_key_pem)?)?;
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names.clone())?;
        params.subject_alt_names.extend(ips.iter().map(|ip| rcgen::SanType::IpAddress(*ip)));
        params.distinguished_name.push(rcgen::DnType::CommonName, "wharf");
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2044, 1, 1);
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&key, &issuer)?;
        std::fs::write(&paths.cert, format!("{}{}", cert.pem(), ca_cert_pem))?;
        write_private(&paths.key, &key.serialize_pem())?;
        std::fs::write(&names_path, names_text)?;
    }
    Ok(paths)
}

/// The acceptor for the local CA: the default certificate, and one certificate per login
/// server of `domain` (see [`LoginServerCerts`]).
pub fn self_signed_acceptor(paths: &SelfSigned, domain: &str) -> anyhow::Result<TlsAcceptor> {
    let resolver = LoginServerCerts::load(paths, domain)?;
    Ok(TlsAcceptor::from(Arc::new(server_config(Arc::new(resolver))?)))
}

/// Chooses the certificate of each handshake from its server name (SNI):
///
/// * `{registry}.{domain}` where `{registry}` is a valid registry name (5 to 50 letters and
///   digits, any case): a certificate for exactly that name, issued by the local CA on first
///   use and cached (at most [`MAX_CACHED_CERTIFICATES`]);
/// * anything else, or no server name (clients send none for IP addresses): the default
///   certificate, which covers `localhost`, the domain and the IP addresses, and which a
///   client asking for another name will refuse.
pub struct LoginServerCerts {
    domain: String,
    default: Arc<CertifiedKey>,
    ca: rcgen::Issuer<'static, rcgen::KeyPair>,
    ca_der: CertificateDer<'static>,
    /// One key for every login-server certificate (only the signature differs per name).
    leaf_key: rcgen::KeyPair,
    leaf_signer: Arc<dyn rustls::sign::SigningKey>,
    cache: Mutex<HashMap<String, (Arc<CertifiedKey>, Instant)>>,
}

impl std::fmt::Debug for LoginServerCerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached = self.cache.lock().map(|c| c.len()).unwrap_or(0);
        f.debug_struct("LoginServerCerts").field("domain", &self.domain).field("cached", &cached).finish()
    }
}

impl LoginServerCerts {
    /// Reads the CA and the default certificate from `paths`.
    pub fn load(paths: &SelfSigned, domain: &str) -> anyhow::Result<LoginServerCerts> {
        let read = |p: &Path| std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()));
        let (ca_pem, ca_key_pem) = (read(&paths.ca_cert)?, read(&paths.ca_key)?);
        let ca = rcgen::Issuer::from_ca_cert_pem(&ca_pem, rcgen::KeyPair::from_pem(&ca_key_pem)?)
            .with_context(|| format!("{} is not a usable CA", paths.ca_cert.display()))?;
        let ca_der = rustls_pemfile::certs(&mut ca_pem.as_bytes())
            .next()
            .ok_or_else(|| anyhow::anyhow!("no certificate in {}", paths.ca_cert.display()))??;
        let chain = rustls_pemfile::certs(&mut read(&paths.cert)?.as_bytes()).collect::<Result<Vec<_>, _>>()?;
        let key = rustls_pemfile::private_key(&mut read(&paths.key)?.as_bytes())?
            .ok_or_else(|| anyhow::anyhow!("no private key in {}", paths.key.display()))?;
        let default = Arc::new(CertifiedKey::new(chain, rustls::crypto::ring::sign::any_supported_type(&key)?));
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let leaf_signer = rustls::crypto::ring::sign::any_supported_type(&leaf_der)?;
        Ok(LoginServerCerts {
            domain: domain.to_ascii_lowercase(),
            default,
            ca,
            ca_der,
            leaf_key,
            leaf_signer,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The login server `name` names, lowercase, if it has the shape of one of this
    /// deployment's: one valid registry-name label directly under the domain.
    pub fn login_server_name(&self, name: &str) -> Option<String> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        let label = name.strip_suffix(&self.domain)?.strip_suffix('.')?;
        wharf_arm::validate_registry_name(label).is_ok().then_some(name)
    }

    /// The certificate for a login server, from the cache or newly issued.
    fn for_login_server(&self, name: String) -> anyhow::Result<Arc<CertifiedKey>> {
        let now = Instant::now();
        let mut cache = self.cache.lock().expect("certificate cache lock");
        if let Some((cert, issued)) = cache.get(&name)
            && now.duration_since(*issued) < REISSUE_AFTER
        {
            return Ok(cert.clone());
        }
        let cert = Arc::new(self.issue(&name)?);
        if cache.len() >= MAX_CACHED_CERTIFICATES && !cache.contains_key(&name) {
            let oldest = cache.iter().min_by_key(|(_, (_, issued))| *issued).map(|(n, _)| n.clone());
            if let Some(oldest) = oldest {
                cache.remove(&oldest);
            }
        }
        cache.insert(name, (cert.clone(), now));
        Ok(cert)
    }

    /// A certificate for exactly `name`, valid from yesterday for a year, signed by the CA.
    fn issue(&self, name: &str) -> anyhow::Result<CertifiedKey> {
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()])?;
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let today = chrono::Utc::now().date_naive();
        let ymd = |d: chrono::NaiveDate| {
            use chrono::Datelike;
            rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8)
        };
        params.not_before = ymd(today - chrono::Days::new(1));
        params.not_after = ymd(today + chrono::Days::new(365));
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let cert = params.signed_by(&self.leaf_key, &self.ca)?;
        Ok(CertifiedKey::new(vec![cert.der().clone(), self.ca_der.clone()], self.leaf_signer.clone()))
    }
}

impl ResolvesServerCert for LoginServerCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name().and_then(|n| self.login_server_name(n)) else {
            return Some(self.default.clone());
        };
        match self.for_login_server(name) {
            Ok(cert) => Some(cert),
            Err(e) => {
                tracing::error!(error = %e, "cannot issue a login-server certificate; serving the default one");
                Some(self.default.clone())
            }
        }
    }
}

/// Writes a file readable by its owner only (keys, credentials), durably.
pub(crate) fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certs(domain: &str) -> (tempfile::TempDir, LoginServerCerts) {
        let dir = tempfile::tempdir().unwrap();
        let paths = self_signed(dir.path(), domain, "127.0.0.1".parse().unwrap()).unwrap();
        let c = LoginServerCerts::load(&paths, domain).unwrap();
        (dir, c)
    }

    #[test]
    fn only_names_of_the_deployments_shape_get_their_own_certificate() {
        let (_d, c) = certs("localhost");
        assert_eq!(c.login_server_name("myregistry.localhost").as_deref(), Some("myregistry.localhost"));
        assert_eq!(c.login_server_name("MyRegistry.LOCALHOST.").as_deref(), Some("myregistry.localhost"));
        for refused in [
            "localhost",
            "abcd.localhost",          // 4 characters: not a registry name
            "my-registry.localhost",   // not alphanumeric
            "a.myregistry.localhost",  // two labels under the domain
            "myregistry.example.test", // another domain
            "myregistrylocalhost",     // no dot
            "myregistry.notlocalhost", // the domain is not a whole label
            &format!("{}.localhost", "a".repeat(51)),
        ] {
            assert_eq!(c.login_server_name(refused), None, "{refused}");
        }
        let (_d, c) = certs("registry.example.test");
        assert_eq!(
            c.login_server_name("myregistry.registry.example.test").as_deref(),
            Some("myregistry.registry.example.test")
        );
        assert_eq!(c.login_server_name("myregistry.localhost"), None);
    }

    #[test]
    fn a_login_server_certificate_names_exactly_its_host_and_chains_to_the_ca() {
        let (_d, c) = certs("localhost");
        let cert = c.for_login_server("myregistry.localhost".into()).unwrap();
        assert_eq!(cert.cert.len(), 2);
        assert_eq!(cert.cert[1], c.ca_der);
        let (_, x509) = x509_parser::parse_x509_certificate(&cert.cert[0]).unwrap();
        let san = x509.subject_alternative_name().unwrap().expect("a SAN extension");
        let names: Vec<String> = san.value.general_names.iter().map(|n| n.to_string()).collect();
        assert_eq!(names, vec!["DNSName(myregistry.localhost)".to_string()]);
        assert!(x509.validity().is_valid(), "valid now");
        // Cached: the same certificate again.
        let again = c.for_login_server("myregistry.localhost".into()).unwrap();
        assert!(Arc::ptr_eq(&cert, &again));
    }

    #[test]
    fn the_cache_is_bounded() {
        let (_d, c) = certs("localhost");
        for i in 0..MAX_CACHED_CERTIFICATES + 10 {
            c.for_login_server(format!("registry{i}.localhost")).unwrap();
        }
        assert_eq!(c.cache.lock().unwrap().len(), MAX_CACHED_CERTIFICATES);
    }

    #[test]
    fn the_default_certificate_has_no_wildcard_under_a_one_label_domain() {
        assert_eq!(default_names("localhost"), vec!["localhost"]);
        assert_eq!(default_names("wharf.localhost"), vec!["localhost", "wharf.localhost", "*.wharf.localhost"]);
        assert_eq!(default_ips("::1".parse().unwrap()).len(), 2);
        assert_eq!(default_ips("127.0.0.7".parse().unwrap()).len(), 3);
        assert_eq!(default_ips("0.0.0.0".parse().unwrap()).len(), 2);
    }
}
