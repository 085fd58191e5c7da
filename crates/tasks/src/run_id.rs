//! Owns run ids as ACR writes them: two lowercase letters for the registry, then a decimal
//! counter (`ca1`, `cb12`). The letters come from the registry's stable key by a fixed hash
//! (FNV-1a, 64-bit: the same on every machine and Rust version, unlike std's hasher). It
//! must never depend on anything but its arguments.

/// The two-letter prefix of a registry's run ids: the first letter in `c`..=`z` (ACR's ids
/// start at `c`: `ca1`, `cb1`, `cf1`), the second in `a`..=`z`, both picked by the FNV-1a
/// hash of `registry_key` (e.g. the registry's resource id, lowercased by the caller).
pub fn run_id_prefix(registry_key: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in registry_key.as_bytes() {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let first = b'c' + (hash % 24) as u8;
    let second = b'a' + ((hash / 24) % 26) as u8;
    String::from_utf8(vec![first, second]).unwrap_or_default()
}

/// A run id: `prefix` then `number` in decimal (`run_id("ca", 12)` is `ca12`).
pub fn run_id(prefix: &str, number: u64) -> String {
    format!("{prefix}{number}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_are_two_letters_from_the_documented_ranges_and_stable() {
        let keys: Vec<String> = (0..500).map(|i| format!("/subscriptions/s/registries/r{i}")).collect();
        let mut firsts = std::collections::BTreeSet::new();
        for key in &keys {
            let p = run_id_prefix(key);
            let b = p.as_bytes();
            assert_eq!(b.len(), 2);
            assert!((b'c'..=b'z').contains(&b[0]), "{p}");
            assert!(b[1].is_ascii_lowercase(), "{p}");
            assert_eq!(run_id_prefix(key), p);
            firsts.insert(b[0]);
        }
        // The hash spreads registries over the whole range.
        assert_eq!(firsts.len(), 24);
        // Fixed values: a change of hash would renumber every registry.
        assert_eq!(run_id_prefix(""), "hc");
        assert_eq!(run_id_prefix("a"), "gd");
        assert_eq!(run_id_prefix("b"), "ph");
    }

    #[test]
    fn ids_are_prefix_and_counter() {
        assert_eq!(run_id("ca", 1), "ca1");
        assert_eq!(run_id("cb", 12), "cb12");
    }
}
