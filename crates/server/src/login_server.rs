//! Login servers: `{registry}.{domain}[:port]`, as ACR names registries. The one parser of a
//! host (a `Host` header, a token `service`) into the registry it names, if any.
//!
//! Must never: look the registry up (a name of the right shape may name no registry).

/// The host part of `host[:port]`, without brackets for an IPv6 literal (`[::1]:5000` → `::1`).
pub fn strip_port(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if !h.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    }
}

/// The registry label of `host` when it has a login server's shape under `domain` (exactly one
/// label before the domain), lowercase; `None` for any other host (path style).
pub fn registry_label(host: &str, domain: &str) -> Option<String> {
    let hostname = strip_port(host).to_ascii_lowercase();
    let label = hostname.strip_suffix(&format!(".{}", domain.to_ascii_lowercase()))?;
    (!label.is_empty() && !label.contains('.')).then(|| label.to_string())
}

/// `{name}.{domain}[:port]`, lowercase, as ACR spells login servers (no port when it is 443).
pub fn login_server(registry_name: &str, domain: &str, port: u16) -> String {
    let host = format!("{}.{domain}", registry_name.to_ascii_lowercase());
    match port {
        443 => host,
        port => format!("{host}:{port}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_ports_and_brackets() {
        assert_eq!(strip_port("a.localhost:5000"), "a.localhost");
        assert_eq!(strip_port("a.localhost"), "a.localhost");
        assert_eq!(strip_port("[::1]:5000"), "::1");
        assert_eq!(strip_port("[::1]"), "::1");
        assert_eq!(strip_port("::1"), "::1");
        assert_eq!(strip_port("127.0.0.1:80"), "127.0.0.1");
    }

    #[test]
    fn registry_labels() {
        assert_eq!(registry_label("MyReg.localhost:5000", "localhost").as_deref(), Some("myreg"));
        assert_eq!(registry_label("myreg.wharf.test", "wharf.test").as_deref(), Some("myreg"));
        assert_eq!(registry_label("a.b.localhost", "localhost"), None);
        assert_eq!(registry_label("localhost:5000", "localhost"), None);
        assert_eq!(registry_label(".localhost", "localhost"), None);
        assert_eq!(registry_label("[::1]:5000", "localhost"), None);
        assert_eq!(registry_label("127.0.0.1:5000", "localhost"), None);
        assert_eq!(login_server("MyReg", "localhost", 443), "myreg.localhost");
        assert_eq!(login_server("myreg", "localhost", 5000), "myreg.localhost:5000");
    }
}
