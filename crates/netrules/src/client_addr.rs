//! The client address of a request: the TCP peer, or what trusted proxies say it is.
//!
//! Owns parsing `X-Forwarded-For` and RFC 7239 `Forwarded: for=`, treating every line of a
//! header as one list (RFC 9110 §5.3), and walking that list from the right past trusted
//! proxies. It never trusts a header from a peer that is not a configured trusted proxy, never
//! reads a header the operator did not name as the one the proxy writes, and never guesses:
//! whatever it cannot verify, it answers with the proxy's own address (fail closed).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::policy::normalise_ip;

/// The header a trusted proxy writes the client address into (`--trusted-proxy-header`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` — the de-facto header (nginx, HAProxy,
    /// Envoy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl ForwardedHeader {
    /// The header's name, lowercase, as `--trusted-proxy-header` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        }
    }
}

impl fmt::Display for ForwardedHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ForwardedHeader {
    type Err = String;

    /// `x-forwarded-for` or `forwarded`, ASCII-case-insensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.eq_ignore_ascii_case("x-forwarded-for") {
            Ok(ForwardedHeader::XForwardedFor)
        } else if s.eq_ignore_ascii_case("forwarded") {
            Ok(ForwardedHeader::Forwarded)
        } else {
            Err(format!("'{s}' is not a forwarding header: use 'x-forwarded-for' or 'forwarded'"))
        }
    }
}

/// The forwarding headers of one request: every field line of each, in arrival order, as the
/// raw bytes of the value (a line that is not ASCII never parses, so it fails closed).
#[derive(Debug, Clone, Copy, Default)]
pub struct ForwardingHeaders<'h> {
    pub x_forwarded_for: &'h [&'h [u8]],
    pub forwarded: &'h [&'h [u8]],
}

impl<'h> ForwardingHeaders<'h> {
    fn lines(&self, which: ForwardedHeader) -> &'h [&'h [u8]] {
        match which {
            ForwardedHeader::XForwardedFor => self.x_forwarded_for,
            ForwardedHeader::Forwarded => self.forwarded,
        }
    }
}

/// How [`client_address`] arrived at its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum AddressSource {
    /// The TCP peer is not a trusted proxy: its own address, headers ignored.
    Peer,
    /// The walk of the configured header found the client.
    Header { header: ForwardedHeader },
    /// The peer is a trusted proxy but no forwarding header came: the proxy's address.
    ProxyWithoutHeader,
    /// Fail closed: the proxy's own address, because of `reason`.
    FailedClosed { reason: FailClosed },
}

/// Why a trusted proxy's headers were not believed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum FailClosed {
    /// Only the other forwarding header came: Wharf does not guess which one the proxy wrote.
    ConfiguredHeaderMissing { configured: ForwardedHeader, present: ForwardedHeader },
    /// An entry the walk reached is not an address (malformed, `unknown`, obfuscated `_x`,
    /// empty, not ASCII, or a `Forwarded` element without exactly one `for=`).
    Unparsable { header: ForwardedHeader },
}

impl fmt::Display for FailClosed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FailClosed::ConfiguredHeaderMissing { configured, present } => write!(
                f,
                "the trusted proxy sent '{present}' but not '{configured}', the header it is configured to write"
            ),
            FailClosed::Unparsable { header } => {
                write!(f, "an entry of '{header}' that the walk reached is not an IP address")
            }
        }
    }
}

/// The address network rules judge, and how it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientAddress {
    pub ip: IpAddr,
    pub source: AddressSource,
}

/// The address the network rules judge.
///
/// * If the TCP peer is not in `trusted_proxies`: the peer address. Forwarding headers are
///   ignored entirely, so a client cannot forge its way past IP rules.
/// * If the peer is a trusted proxy, only `proxy_header` (the header the proxy writes) is read.
///   All its field lines form one list, in arrival order (RFC 9110 §5.3): the lines
///   `a` and `b, c` are the list `a, b, c`. The list is walked from the right (the entry the
///   nearest proxy appended) leftwards, skipping entries that are themselves trusted proxies;
///   the first untrusted entry is the client. If every entry is a trusted proxy, the leftmost
///   entry is the client.
/// * Fail closed — the peer (proxy) address — when:
///   - the configured header is absent (or blank) but the other forwarding header came: the
///     proxy may write that one, so a client could have written the configured one, and
///     Wharf does not guess;
///   - an entry the walk reached is malformed, obfuscated (`_hidden`), `unknown`, empty or not
///     ASCII, or a `Forwarded` element has no `for=` or two of them.
///
///   Entries to the left of the first untrusted address are never parsed, so a client cannot
///   influence the result by prepending garbage. Operators should therefore not grant the
///   proxies' own addresses in IP rules.
///
/// Entries may carry ports (`203.0.113.7:5000`, `[2001:db8::1]:443`); IPv4-mapped IPv6 is
/// normalised to IPv4, both for the result and for matching `trusted_proxies`.
pub fn client_address(
    peer: SocketAddr,
    headers: &ForwardingHeaders<'_>,
    proxy_header: ForwardedHeader,
    trusted_proxies: &[IpNet],
) -> ClientAddress {
    let peer_ip = normalise_ip(peer.ip());
    if !is_trusted(peer_ip, trusted_proxies) {
        return ClientAddress { ip: peer_ip, source: AddressSource::Peer };
    }
    let closed = |reason| ClientAddress { ip: peer_ip, source: AddressSource::FailedClosed { reason } };
    let lines = headers.lines(proxy_header);
    if all_blank(lines) {
        let other = match proxy_header {
            ForwardedHeader::XForwardedFor => ForwardedHeader::Forwarded,
            ForwardedHeader::Forwarded => ForwardedHeader::XForwardedFor,
        };
        if !all_blank(headers.lines(other)) {
            return closed(FailClosed::ConfiguredHeaderMissing { configured: proxy_header, present: other });
        }
        return ClientAddress { ip: peer_ip, source: AddressSource::ProxyWithoutHeader };
    }
    let parse = match proxy_header {
        ForwardedHeader::XForwardedFor => parse_node,
        ForwardedHeader::Forwarded => parse_forwarded_element,
    };
    match walk(lines, trusted_proxies, parse) {
        Some(ip) => ClientAddress { ip, source: AddressSource::Header { header: proxy_header } },
        None => closed(FailClosed::Unparsable { header: proxy_header }),
    }
}

fn is_trusted(ip: IpAddr, trusted_proxies: &[IpNet]) -> bool {
    trusted_proxies.iter().any(|net| net.contains(&ip))
}

fn all_blank(lines: &[&[u8]]) -> bool {
    lines.iter().all(|l| l.iter().all(|b| matches!(b, b' ' | b'\t')))
}

/// Right-to-left walk over the entries of every line, last line first; `None` means "use the
/// peer" (an entry it reached did not parse).
fn walk(lines: &[&[u8]], trusted_proxies: &[IpNet], parse: fn(&str) -> Option<IpAddr>) -> Option<IpAddr> {
    let mut leftmost = None;
    for line in lines.iter().rev() {
        // Not ASCII (obs-text): nothing in it can be verified.
        let line = std::str::from_utf8(line).ok().filter(|l| l.is_ascii())?;
        for entry in split_unquoted(line, ',').rev() {
            let ip = normalise_ip(parse(entry)?);
            if !is_trusted(ip, trusted_proxies) {
                return Some(ip);
            }
            leftmost = Some(ip);
        }
    }
    leftmost
}

/// Splits on `sep` outside double-quoted strings (RFC 9110 quoted-string, `\` escapes).
fn split_unquoted(value: &str, sep: char) -> impl DoubleEndedIterator<Item = &str> {
    let mut parts = Vec::new();
    let (mut start, mut in_quotes, mut escaped) = (0, false, false);
    for (i, c) in value.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quotes && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quotes = !in_quotes;
        } else if c == sep && !in_quotes {
            parts.push(&value[start..i]);
            start = i + c.len_utf8();
        }
    }
    parts.push(&value[start..]);
    parts.into_iter()
}

/// `203.0.113.7`, `203.0.113.7:5000`, `2001:db8::1`, `[2001:db8::1]`, `[2001:db8::1]:443`.
fn parse_node(node: &str) -> Option<IpAddr> {
    let node = node.trim();
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = node.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    let inner = node.strip_prefix('[')?.strip_suffix(']')?;
    inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
}

/// One `Forwarded` element: `for=192.0.2.60;proto=http;by=203.0.113.43` or
/// `for="[2001:db8:cafe::17]:4711"`. The `for` parameter name is case-insensitive.
fn parse_forwarded_element(element: &str) -> Option<IpAddr> {
    let mut found = None;
    for pair in split_unquoted(element, ';') {
        let (key, value) = pair.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case("for") {
            continue;
        }
        if found.is_some() {
            return None; // two `for=` in one element: ambiguous
        }
        let value = value.trim();
        let value = match value.strip_prefix('"') {
            Some(rest) => rest.strip_suffix('"')?,
            None => value,
        };
        if value.contains('\\') {
            return None; // no legitimate node needs an escape
        }
        found = Some(parse_node(value)?);
    }
    found
}
