//! Client-address extraction: forged headers from untrusted peers, trusted-proxy chains,
//! RFC 7239 `Forwarded`, several field lines of one header, the configured proxy header,
//! malformed values.

mod common;

use std::net::{IpAddr, SocketAddr};

use common::*;
use wharf_netrules::{AddressSource, FailClosed, ForwardedHeader, ForwardingHeaders, client_address};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The address for one X-Forwarded-For and one Forwarded line (each optional), reading the
/// header `which`.
fn addr(peer: &str, xff: Option<&str>, fwd: Option<&str>, which: ForwardedHeader, proxies: &[ipnet::IpNet]) -> IpAddr {
    let x: Vec<&[u8]> = xff.iter().map(|v| v.as_bytes()).collect();
    let f: Vec<&[u8]> = fwd.iter().map(|v| v.as_bytes()).collect();
    client_address(sa(peer), &ForwardingHeaders { x_forwarded_for: &x, forwarded: &f }, which, proxies).ip
}

/// The address for several lines of one header.
fn lines(
    peer: &str,
    which: ForwardedHeader,
    values: &[&[u8]],
    proxies: &[ipnet::IpNet],
) -> wharf_netrules::ClientAddress {
    let h = match which {
        ForwardedHeader::XForwardedFor => ForwardingHeaders { x_forwarded_for: values, forwarded: &[] },
        ForwardedHeader::Forwarded => ForwardingHeaders { x_forwarded_for: &[], forwarded: values },
    };
    client_address(sa(peer), &h, which, proxies)
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
        ("blank XFF and a Forwarded line: no guess, peer", "10.0.0.5:443", Some("  "), Some("for=203.0.113.2"), "10.0.0.5"),
        ("only Forwarded came: no guess, peer", "10.0.0.5:443", None, Some("for=203.0.113.2"), "10.0.0.5"),
        ("trusted proxy without headers: peer", "10.0.0.5:443", None, None, "10.0.0.5"),
        ("all entries trusted: leftmost", "10.0.0.5:443", Some("10.0.0.8, 10.0.0.9"), None, "10.0.0.8"),
        ("XFF with port", "10.0.0.5:443", Some("203.0.113.1:5555"), None, "203.0.113.1"),
        ("XFF IPv6", "10.0.0.5:443", Some("2001:db8::7"), None, "2001:db8::7"),
        ("XFF bracketed IPv6 with port", "10.0.0.5:443", Some("[2001:db8::7]:443"), None, "2001:db8::7"),
        ("XFF bracketed IPv6", "10.0.0.5:443", Some("[2001:db8::7]"), None, "2001:db8::7"),
        ("XFF mapped IPv4 normalised", "10.0.0.5:443", Some("::ffff:203.0.113.1"), None, "203.0.113.1"),
        ("the configured XFF is read, Forwarded ignored", "10.0.0.5:443", Some("203.0.113.1"), Some("for=203.0.113.2"), "203.0.113.1"),
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
        // The Forwarded cases are about a proxy that writes Forwarded.
        let which = if xff.is_none() && fwd.is_some() && !name.starts_with("only Forwarded") {
            ForwardedHeader::Forwarded
        } else {
            ForwardedHeader::XForwardedFor
        };
        assert_eq!(addr(peer, xff, fwd, which, &proxies), ip(want), "{name}");
    }
}

#[test]
fn no_trusted_proxies_means_headers_never_count() {
    for which in [ForwardedHeader::XForwardedFor, ForwardedHeader::Forwarded] {
        let got = addr("10.0.0.5:1", Some("203.0.113.1"), Some("for=203.0.113.2"), which, &[]);
        assert_eq!(got, ip("10.0.0.5"));
    }
}

/// Issue 10 item 3: a proxy that appends its own line. The lines `127.0.0.5` and
/// `127.0.0.66` are the list `127.0.0.5, 127.0.0.66`: the rightmost untrusted entry decides.
#[test]
fn every_line_of_x_forwarded_for_is_one_list() {
    let proxies = [net("127.0.0.1/32")];
    let two = lines("127.0.0.1:1", ForwardedHeader::XForwardedFor, &[b"127.0.0.5", b"127.0.0.66"], &proxies);
    let one = lines("127.0.0.1:1", ForwardedHeader::XForwardedFor, &[b"127.0.0.5, 127.0.0.66"], &proxies);
    assert_eq!(two, one);
    assert_eq!(two.ip, ip("127.0.0.66"));
    assert_eq!(two.source, AddressSource::Header { header: ForwardedHeader::XForwardedFor });
    // A trusted hop on the last line is skipped, and the walk goes on into the line before.
    let proxies = [net("127.0.0.1/32"), net("10.0.0.0/8")];
    let got =
        lines("127.0.0.1:1", ForwardedHeader::XForwardedFor, &[b"203.0.113.1, 198.51.100.2", b"10.0.0.3"], &proxies);
    assert_eq!(got.ip, ip("198.51.100.2"));
    // Garbage on an earlier line left of the client is never parsed; on the reached line it
    // fails closed.
    let got = lines("127.0.0.1:1", ForwardedHeader::XForwardedFor, &[b"garbage", b"198.51.100.2"], &proxies);
    assert_eq!(got.ip, ip("198.51.100.2"));
    let got = lines("127.0.0.1:1", ForwardedHeader::XForwardedFor, &[b"198.51.100.2", b"10.0.0.3, nope"], &proxies);
    assert_eq!(got.ip, ip("127.0.0.1"));
    assert_eq!(
        got.source,
        AddressSource::FailedClosed { reason: FailClosed::Unparsable { header: ForwardedHeader::XForwardedFor } }
    );
}

#[test]
fn every_line_of_forwarded_is_one_list() {
    let proxies = [net("10.0.0.0/8")];
    let two =
        lines("10.0.0.1:1", ForwardedHeader::Forwarded, &[b"for=192.0.2.1", b"for=192.0.2.2;proto=https"], &proxies);
    let one = lines("10.0.0.1:1", ForwardedHeader::Forwarded, &[b"for=192.0.2.1, for=192.0.2.2;proto=https"], &proxies);
    assert_eq!(two, one);
    assert_eq!(two.ip, ip("192.0.2.2"));
    // A quoted string does not continue onto the next line.
    let got = lines("10.0.0.1:1", ForwardedHeader::Forwarded, &[br#"for="192.0.2.1"#, br#"192.0.2.9""#], &proxies);
    assert_eq!(got.ip, ip("10.0.0.1"));
}

/// Behind a proxy that writes only `Forwarded`, the client's own `X-Forwarded-For` is not
/// believed; behind one that writes `X-Forwarded-For`, a client's `Forwarded` is ignored; and
/// when only the other header came, Wharf does not guess.
#[test]
fn only_the_configured_header_counts_and_a_missing_one_fails_closed() {
    let proxies = [net("10.0.0.0/8")];
    let h = ForwardingHeaders { x_forwarded_for: &[b"203.0.113.66"], forwarded: &[b"for=192.0.2.7"] };
    let peer = sa("10.0.0.1:443");
    assert_eq!(client_address(peer, &h, ForwardedHeader::Forwarded, &proxies).ip, ip("192.0.2.7"));
    assert_eq!(client_address(peer, &h, ForwardedHeader::XForwardedFor, &proxies).ip, ip("203.0.113.66"));
    let only_xff = ForwardingHeaders { x_forwarded_for: &[b"203.0.113.66"], forwarded: &[] };
    let got = client_address(peer, &only_xff, ForwardedHeader::Forwarded, &proxies);
    assert_eq!(got.ip, ip("10.0.0.1"));
    assert_eq!(
        got.source,
        AddressSource::FailedClosed {
            reason: FailClosed::ConfiguredHeaderMissing {
                configured: ForwardedHeader::Forwarded,
                present: ForwardedHeader::XForwardedFor
            }
        }
    );
    let none = client_address(peer, &ForwardingHeaders::default(), ForwardedHeader::Forwarded, &proxies);
    assert_eq!((none.ip, none.source), (ip("10.0.0.1"), AddressSource::ProxyWithoutHeader));
    let untrusted = client_address(sa("198.51.100.1:1"), &h, ForwardedHeader::Forwarded, &proxies);
    assert_eq!((untrusted.ip, untrusted.source), (ip("198.51.100.1"), AddressSource::Peer));
}

/// A line that is not ASCII never parses: the walk fails closed when it reaches it.
#[test]
fn a_non_ascii_line_fails_closed() {
    let proxies = [net("10.0.0.0/8")];
    let got = lines("10.0.0.1:1", ForwardedHeader::XForwardedFor, &[b"203.0.113.1", b"10.0.0.2, \xff\xfe"], &proxies);
    assert_eq!(got.ip, ip("10.0.0.1"));
    let got = lines(
        "10.0.0.1:1",
        ForwardedHeader::XForwardedFor,
        &[b"203.0.113.1", "198.51.100.\u{e9}".as_bytes()],
        &proxies,
    );
    assert_eq!(got.ip, ip("10.0.0.1"));
}

#[test]
fn the_header_names_parse() {
    assert_eq!("X-Forwarded-For".parse::<ForwardedHeader>(), Ok(ForwardedHeader::XForwardedFor));
    assert_eq!("forwarded".parse::<ForwardedHeader>(), Ok(ForwardedHeader::Forwarded));
    assert!("x-real-ip".parse::<ForwardedHeader>().is_err());
    assert_eq!(ForwardedHeader::default(), ForwardedHeader::XForwardedFor);
}
