//! The client address behind a trusted proxy, end to end against an IP rule (issue 10 item 3):
//! every line of the forwarding header counts, the rightmost untrusted address decides, only
//! the header the proxy is configured to write is read, and when only the other one arrives
//! the request is judged as coming from the proxy itself. The proxy is the test process on
//! 127.0.0.1; the rule admits 127.0.0.5.

mod common;

use common::{Cli, TestServer, raw_http};

/// A registry `fwdreg` with one image whose firewall admits only 127.0.0.5.
async fn firewalled(s: &TestServer) {
    let cli = Cli::login(s);
    let reg = s.registry("fwdreg").await;
    reg.push_image("app", "v1", "forwarded").await;
    cli.run(&["acr", "network-rule", "add", "-n", "fwdreg", "--ip-address", "127.0.0.5"]).ok();
    cli.run(&["acr", "update", "-n", "fwdreg", "--default-action", "Deny"]).ok();
}

/// GET the tag list through the "proxy" (this process, on 127.0.0.1) with these header lines;
/// returns the status and the address a denial names.
fn tags_with(s: &TestServer, lines: &[(&str, &str)]) -> (u16, Option<String>) {
    let headers: Vec<(&str, String)> = lines.iter().map(|(k, v)| (*k, v.to_string())).collect();
    let (status, _, body) = raw_http(s, "GET", "/v2/fwdreg/app/tags/list", &headers, b"");
    // ACR's denial: "client with IP '<ip>' is not allowed access. …"
    let message = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string));
    let named = message.and_then(|m| Some(m.strip_prefix("client with IP '")?.split('\'').next()?.to_string()));
    (status, named)
}

#[tokio::test]
async fn every_x_forwarded_for_line_counts_and_the_rightmost_untrusted_address_decides() {
    let s = TestServer::builder().flags(&["--trusted-proxy", "127.0.0.1/32"]).start().await;
    firewalled(&s).await;
    let xff = "x-forwarded-for";

    // The case: the lines `127.0.0.5` and `127.0.0.66` are the list
    // `127.0.0.5, 127.0.0.66`; the client is 127.0.0.66, which the rule does not admit.
    let one_line = tags_with(&s, &[(xff, "127.0.0.5, 127.0.0.66")]);
    let two_lines = tags_with(&s, &[(xff, "127.0.0.5"), (xff, "127.0.0.66")]);
    assert_eq!(one_line, (403, Some("127.0.0.66".into())));
    assert_eq!(two_lines, one_line, "two header lines must be judged like one line with both entries");
    // The other way round the client is 127.0.0.5: admitted, however it is split.
    assert_eq!(tags_with(&s, &[(xff, "127.0.0.66, 127.0.0.5")]).0, 200);
    assert_eq!(tags_with(&s, &[(xff, "127.0.0.66"), (xff, "127.0.0.5")]).0, 200);
    // A trusted hop on the last line is skipped.
    assert_eq!(tags_with(&s, &[(xff, "127.0.0.5"), (xff, "127.0.0.1")]).0, 200);
    // An unparsable entry the walk reaches: the proxy's own address is judged.
    assert_eq!(tags_with(&s, &[(xff, "127.0.0.5"), (xff, "not-an-address")]), (403, Some("127.0.0.1".into())));
    // Only `Forwarded` came, but the proxy is configured to write X-Forwarded-For: no guess.
    assert_eq!(tags_with(&s, &[("forwarded", "for=127.0.0.5")]), (403, Some("127.0.0.1".into())));
    // A client's Forwarded beside the proxy's X-Forwarded-For is ignored.
    assert_eq!(tags_with(&s, &[("forwarded", "for=127.0.0.5"), (xff, "127.0.0.66")]).0, 403);
}

#[tokio::test]
async fn behind_a_proxy_that_writes_forwarded_a_clients_x_forwarded_for_is_not_believed() {
    let s = TestServer::builder()
        .flags(&["--trusted-proxy", "127.0.0.1/32", "--trusted-proxy-header", "forwarded"])
        .start()
        .await;
    firewalled(&s).await;

    // The proxy writes Forwarded; the client wrote X-Forwarded-For to pose as 127.0.0.5.
    let forged = tags_with(&s, &[("x-forwarded-for", "127.0.0.5"), ("forwarded", "for=127.0.0.66;proto=https")]);
    assert_eq!(forged, (403, Some("127.0.0.66".into())));
    assert_eq!(tags_with(&s, &[("forwarded", "for=127.0.0.5")]).0, 200);
    // Two Forwarded lines are one list.
    assert_eq!(tags_with(&s, &[("forwarded", "for=127.0.0.5"), ("forwarded", "for=127.0.0.66")]).0, 403);
    assert_eq!(tags_with(&s, &[("forwarded", "for=127.0.0.66"), ("forwarded", "for=127.0.0.5")]).0, 200);
    // Only X-Forwarded-For came: fail closed, judged as the proxy.
    assert_eq!(tags_with(&s, &[("x-forwarded-for", "127.0.0.5")]), (403, Some("127.0.0.1".into())));
}
