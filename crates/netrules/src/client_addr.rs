//! The client address of a request: the TCP peer, or what trusted proxies say it is.
//!
//! Owns parsing `X-Forwarded-For` and RFC 7239 `Forwarded: for=` and walking them from the
//! right past trusted proxies. It never trusts a header from a peer that is not a configured
//! trusted proxy.

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use crate::policy::normalise_ip;

/// The address the network rules judge.
///
/// * If the TCP peer is not in `trusted_proxies`, the peer address — forwarding headers are
///   ignored entirely, so a client cannot forge its way past IP rules.
/// * If the peer is a trusted proxy: `X-Forwarded-For` when present (non-blank), else
///   `Forwarded` (`for=` parameters). The list is walked from the right (the entry the
///   nearest proxy appended) leftwards, skipping entries that are themselves trusted proxies;
///   the first untrusted entry is the client. If every entry is a trusted proxy, the leftmost
///   entry is the client.
/// * A malformed, obfuscated (`_hidden`) or `unknown` entry reached during that walk, a
///   `Forwarded` element without `for=`, or no header at all: the peer address (fail closed —
///   no header value is believed that the walk could not verify). Entries to the left of the
///   first untrusted address are never parsed, so a client cannot influence the result by
///   prepending garbage. Operators should therefore not grant the proxies' own addresses in
///   IP rules.
///
/// Several header instances must be joined with `,` in arrival order before calling.
/// Entries may carry ports (`203.0.113.7:5000`, `[2001:db8::1]:443`); IPv4-mapped IPv6 is
/// normalised to IPv4, both for the result and for matching `trusted_proxies`.
pub fn client_address(
    peer: SocketAddr,
    x_forwarded_for: Option<&str>,
    forwarded: Option<&str>,
    trusted_proxies: &[IpNet],
) -> IpAddr {
    let peer_ip = normalise_ip(peer.ip());
    if !is_trusted(peer_ip, trusted_proxies) {
        return peer_ip;
    }
    let walked = match (x_forwarded_for.filter(|v| !v.trim().is_empty()), forwarded.filter(|v| !v.trim().is_empty())) {
        (Some(xff), _) => walk(split_unquoted(xff, ','), trusted_proxies, parse_xff_entry),
        (None, Some(fwd)) => walk(split_unquoted(fwd, ','), trusted_proxies, parse_forwarded_element),
        (None, None) => None,
    };
    walked.unwrap_or(peer_ip)
}

fn is_trusted(ip: IpAddr, trusted_proxies: &[IpNet]) -> bool {
    trusted_proxies.iter().any(|net| net.contains(&ip))
}

/// Right-to-left walk; `None` means "use the peer".
fn walk<'h>(
    entries: impl DoubleEndedIterator<Item = &'h str>,
    trusted_proxies: &[IpNet],
    parse: fn(&str) -> Option<IpAddr>,
) -> Option<IpAddr> {
    let mut leftmost = None;
    for entry in entries.rev() {
        let ip = normalise_ip(parse(entry)?);
        if !is_trusted(ip, trusted_proxies) {
            return Some(ip);
        }
        leftmost = Some(ip);
    }
    leftmost
}

/// Splits on `sep` outside double-quoted strings (RFC 7230 quoted-string, `\` escapes).
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

fn parse_xff_entry(entry: &str) -> Option<IpAddr> {
    parse_node(entry)
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
