//! Cost of one network check with 200 IP rules (100 IPv4 + 100 IPv6, ACR's maximum) and 10
//! private endpoints, against a naive linear scan and against a registry without rules; plus
//! the rule set of `bench/run --only netrules` (200 IPv4 rules, the client in the last one).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use criterion::{Criterion, criterion_group, criterion_main};
use ipnet::IpNet;
use wharf_netrules::*;

const REG: &str = "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerRegistry/registries/reg1";

fn rules() -> Vec<String> {
    let mut out = Vec::new();
    for i in 0..100u32 {
        // Spread /24s and single addresses over the space.
        let a = Ipv4Addr::from(0x0b00_0000u32.wrapping_add(i.wrapping_mul(0x0101_0100)));
        out.push(if i % 2 == 0 { format!("{a}/24") } else { a.to_string() });
    }
    for i in 0..100u16 {
        let a = Ipv6Addr::new(0x2001, 0xdb8, i * 7, 0, 0, 0, 0, 0);
        out.push(if i % 2 == 0 { format!("{a}/48") } else { a.to_string() });
    }
    out
}

/// The IP rules `bench/run`'s netrules scenario puts on its registry: 199 prefixes (/16, /24,
/// single addresses) that do not contain 127.0.0.1, then 127.0.0.1 last.
fn end_to_end_rules() -> Vec<String> {
    let mut out: Vec<String> = (0..199u32)
        .map(|i| {
            let k = i / 3;
            match i % 3 {
                0 => format!("10.{k}.0.0/16"),
                1 => format!("172.{}.{k}.0/24", 16 + k % 16),
                _ => format!("192.168.{k}.{}", k % 250 + 1),
            }
        })
        .collect();
    out.push("127.0.0.1".to_owned());
    out
}

fn bench(c: &mut Criterion) {
    let rules = rules();
    let policy = NetworkPolicy::from_properties("Enabled", "Deny", &rules, &[], "AzureServices", false).unwrap();
    let open = NetworkPolicy::default();
    let endpoints: Vec<Arrival> = (0..10)
        .map(|i| Arrival::PrivateEndpoint {
            endpoint_id: format!("pe{i}"),
            registry_id: if i == 9 { REG.to_owned() } else { format!("{REG}-{i}") },
        })
        .collect();
    let public = Arrival::Public;
    let aci = Caller::managed_identity(
        ManagedIdentityKind::SystemAssigned,
        "/subscriptions/s/resourceGroups/g/providers/Microsoft.ContainerInstance/containerGroups/cg1",
    );
    let hit_v4: IpAddr = rules[98].split('/').next().unwrap().parse().unwrap();
    let hit_v6: IpAddr = "2001:db8:15e::1".parse().unwrap(); // inside rule 50, 2001:db8:15e::/48
    let miss_v4: IpAddr = "198.51.100.1".parse().unwrap();
    let req = |ip, arrival, caller| NetworkRequest { client_ip: ip, arrival, registry_id: REG, caller };

    let mut g = c.benchmark_group("check");
    g.bench_function("no_rules_default_allow", |b| {
        b.iter(|| black_box(check(black_box(&open), &req(miss_v4, &public, None))).allowed)
    });
    g.bench_function("200_rules_ipv4_hit", |b| {
        b.iter(|| black_box(check(black_box(&policy), &req(hit_v4, &public, None))).allowed)
    });
    g.bench_function("200_rules_ipv6_lookup", |b| {
        b.iter(|| black_box(check(black_box(&policy), &req(hit_v6, &public, None))).allowed)
    });
    let e2e =
        NetworkPolicy::from_properties("Enabled", "Deny", &end_to_end_rules(), &[], "AzureServices", false).unwrap();
    let loopback: IpAddr = Ipv4Addr::LOCALHOST.into();
    g.bench_function("200_ipv4_rules_hit_last", |b| {
        b.iter(|| black_box(check(black_box(&e2e), &req(loopback, &public, None))).allowed)
    });
    g.bench_function("200_rules_ipv4_miss_denied", |b| {
        b.iter(|| black_box(check(black_box(&policy), &req(miss_v4, &public, None))).allowed)
    });
    g.bench_function("200_rules_miss_trusted_bypass", |b| {
        b.iter(|| black_box(check(black_box(&policy), &req(miss_v4, &public, Some(&aci)))).allowed)
    });
    g.bench_function("private_endpoint_10th_of_10", |b| {
        b.iter(|| {
            let arrival = black_box(&endpoints[9]);
            black_box(check(black_box(&policy), &req(miss_v4, arrival, None))).allowed
        })
    });
    // Reference: a linear scan over the same 200 prefixes (what the tables replace).
    let nets: Vec<IpNet> = policy.ip_rules().iter().map(|r| r.net).collect();
    g.bench_function("naive_linear_scan_200_miss", |b| {
        b.iter(|| black_box(nets.iter().position(|n| n.contains(black_box(&miss_v4)))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
