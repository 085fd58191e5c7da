//! Client-address extraction: forged headers from untrusted peers, trusted-proxy chains,
//! RFC 7239 `Forwarded`, malformed values.

mod common;

use std::net::SocketAddr;

use common::*;
use wharf_netrules::client_address;

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// (name, peer, X-Forwarded-For, Forwarded, expected client).
type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<&'a str>, &'a str);

#[test]
fn client_address_table() {
    let proxies = [net("10.0.0.0/24"), net("fd00::/64"), net("192.168.1.1/32")];
    #[rustfmt::skip]
    let cases: &[Case] = &[
        ("direct client, no headers", "198.51.100.9:5000", None, None, "198.51.100.9"),
        ("forged XFF from untrusted peer ignored", "198.51.100.9:5000", Some("203.0.113.1"), None, "198.51.100.9"),
        ("forged Forwarded from untrusted peer ignored", "198.51.100.9:5000", None, Some("for=203.0.113.1"), "198.51.100.9"),
        ("trusted proxy, single XFF", "10.0.0.5:443", Some("203.0.113.1"), None, "203.0.113.1"),
        ("client-forged left entry skipped by right-walk", "10.0.0.5:443", Some("1.1.1.1, 203.0.113.1"), None, "203.0.113.1"),
        ("chain of trusted proxies", "10.0.0.5:443", Some("203.0.113.1, 192.168.1.1, 10.0.0.7"), None, "203.0.113.1"),
        ("garbage left of the client never parsed", "10.0.0.5:443", Some("not-an-ip, 203.0.113.1"), None, "203.0.113.1"),
        ("malformed rightmost entry: peer", "10.0.0.5:443", Some("203.0.113.1, garbage"), None, "10.0.0.5"),
        ("unknown: peer", "10.0.0.5:443", Some("unknown"), None, "10.0.0.5"),
        ("empty entry: peer", "10.0.0.5:443", Some("203.0.113.1,"), None, "10.0.0.5"),
        ("blank XFF falls back to Forwarded", "10.0.0.5:443", Some("  "), Some("for=203.0.113.2"), "203.0.113.2"),
        ("trusted proxy without headers: peer", "10.0.0.5:443", None, None, "10.0.0.5"),
        ("all entries trusted: leftmost", "10.0.0.5:443", Some("10.0.0.8, 10.0.0.9"), None, "10.0.0.8"),
        ("XFF with port", "10.0.0.5:443", Some("203.0.113.1:5555"), None, "203.0.113.1"),
        ("XFF IPv6", "10.0.0.5:443", Some("2001:db8::7"), None, "2001:db8::7"),
        ("XFF bracketed IPv6 with port", "10.0.0.5:443", Some("[2001:db8::7]:443"), None, "2001:db8::7"),
        ("XFF bracketed IPv6", "10.0.0.5:443", Some("[2001:db8::7]"), None, "2001:db8::7"),
        ("XFF mapped IPv4 normalised", "10.0.0.5:443", Some("::ffff:203.0.113.1"), None, "203.0.113.1"),
        ("XFF preferred over Forwarded", "10.0.0.5:443", Some("203.0.113.1"), Some("for=203.0.113.2"), "203.0.113.1"),
        ("IPv4-mapped peer matches IPv4 proxy range", "[::ffff:10.0.0.5]:443", Some("203.0.113.1"), None, "203.0.113.1"),
        ("IPv6 trusted proxy", "[fd00::1]:443", Some("203.0.113.1"), None, "203.0.113.1"),
        ("untrusted IPv6 peer, mapped normalised", "[::ffff:198.51.100.1]:443", Some("203.0.113.1"), None, "198.51.100.1"),
        ("Forwarded simple", "10.0.0.5:443", None, Some("for=192.0.2.60;proto=http;by=203.0.113.43"), "192.0.2.60"),
        ("Forwarded case-insensitive key, quoted v6 with port", "10.0.0.5:443", None, Some(r#"For="[2001:db8:cafe::17]:4711""#), "2001:db8:cafe::17"),
        ("Forwarded chain with trusted hop", "10.0.0.5:443", None, Some("for=192.0.2.43, for=10.0.0.9;proto=https"), "192.0.2.43"),
        ("Forwarded comma inside quotes", "10.0.0.5:443", None, Some(r#"for=192.0.2.43;x="a,b""#), "192.0.2.43"),
        ("Forwarded obfuscated: peer", "10.0.0.5:443", None, Some("for=_hidden"), "10.0.0.5"),
        ("Forwarded unknown: peer", "10.0.0.5:443", None, Some("for=unknown"), "10.0.0.5"),
        ("Forwarded element without for: peer", "10.0.0.5:443", None, Some("for=192.0.2.1, proto=https"), "10.0.0.5"),
        ("Forwarded two for= in one element: peer", "10.0.0.5:443", None, Some("for=192.0.2.1;for=192.0.2.2"), "10.0.0.5"),
        ("Forwarded unbracketed v6 quoted", "10.0.0.5:443", None, Some(r#"for="2001:db8::1""#), "2001:db8::1"),
        ("Forwarded unterminated quote: peer", "10.0.0.5:443", None, Some(r#"for="192.0.2.1"#), "10.0.0.5"),
        ("Forwarded malformed pair: peer", "10.0.0.5:443", None, Some("for"), "10.0.0.5"),
    ];
    for &(name, peer, xff, fwd, want) in cases {
        assert_eq!(client_address(sa(peer), xff, fwd, &proxies), ip(want), "{name}");
    }
}

#[test]
fn no_trusted_proxies_means_headers_never_count() {
    assert_eq!(client_address(sa("10.0.0.5:1"), Some("203.0.113.1"), Some("for=203.0.113.2"), &[]), ip("10.0.0.5"));
}
