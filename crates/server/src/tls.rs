//! TLS for the listeners: a certificate and key given by the operator, or a self-signed CA
//! that Wharf creates in `{data-dir}/tls/` and a server certificate it signs for `localhost`,
//! `*.localhost`, `127.0.0.1`, `::1` and the configured domain (`--tls-self-signed`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use tokio_rustls::TlsAcceptor;

/// Builds the acceptor from PEM files.
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
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Creates (once) a CA and a server certificate under `{data_dir}/tls`, reissuing the server
/// certificate when the domain changes. Returns the paths.
pub fn self_signed(data_dir: &Path, domain: &str) -> anyhow::Result<SelfSigned> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir)?;
    let paths = SelfSigned { ca_cert: dir.join("ca.crt"), cert: dir.join("server.crt"), key: dir.join("server.key") };
    let ca_key_path = dir.join("ca.key");
    let names_path = dir.join("server.names");
    let mut names = vec!["localhost".to_string(), "*.localhost".to_string(), domain.to_string(), format!("*.{domain}")];
    names.dedup();
    let names_text = names.join("\n");

    let (ca_cert_pem, ca_key_pem) = if paths.ca_cert.exists() && ca_key_path.exists() {
        (std::fs::read_to_string(&paths.ca_cert)?, std::fs::read_to_string(&ca_key_path)?)
    } else {
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(rcgen::DnType::CommonName, "Wharf local CA");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::CrlSign];
        params.not_before = rcgen::date_time_ymd(2024, 1, 1);
        params.not_after = rcgen::date_time_ymd(2045, 1, 1);
        let cert = params.self_signed(&key)?;
        write_private(&ca_key_path, &key.serialize_pem())?;
        std::fs::write(&paths.ca_cert, cert.pem())?;
        (cert.pem(), key.serialize_pem())
    };
    let current = std::fs::read_to_string(&names_path).unwrap_or_default();
    if current != names_text || !paths.cert.exists() || !paths.key.exists() {
        let ca_key = rcgen::KeyPair::from_pem(&ca_key_pem)?;
        let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key)?;
        let key = rcgen::KeyPair::generate()?;
        let mut params = rcgen::CertificateParams::new(names.clone())?;
        params.subject_alt_names.push(rcgen::SanType::IpAddress("127.0.0.1".parse()?));
        params.subject_alt_names.push(rcgen::SanType::IpAddress("::1".parse()?));
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
