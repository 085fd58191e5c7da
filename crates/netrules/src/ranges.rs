//! Compiled address-range tables: the O(log n) lookup behind IP and virtual-network rules.
//!
//! Owns turning a list of prefixes (each tagged with a priority label) into sorted, disjoint
//! segments per address family, and answering "which lowest label covers this address" by
//! binary search. It never parses rule text and never decides allow or deny.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;

/// Sorted, disjoint, inclusive segments `[starts[i], ends[i]]`, each carrying the lowest label
/// of the prefixes that cover it. IPv4 addresses are stored as their `u32` value widened to
/// `u128`; the two families live in separate tables so they can never collide.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RangeTable {
    starts: Vec<u128>,
    ends: Vec<u128>,
    labels: Vec<u32>,
}

impl RangeTable {
    /// Builds a table from `(first, last, label)` inclusive ranges. Where ranges overlap, the
    /// lowest label wins; adjacent segments with the same label are merged.
    ///
    /// A sweep over start/end events with a multiset of active labels: O(n log n).
    pub(crate) fn build(ranges: &[(u128, u128, u32)]) -> RangeTable {
        // (position, is_start, label): at one position, ends (position = last + 1) and starts
        // are both applied before the segment that begins there is emitted.
        let mut events: Vec<(u128, bool, u32)> = Vec::with_capacity(ranges.len() * 2);
        for &(first, last, label) in ranges {
            events.push((first, true, label));
            if let Some(after) = last.checked_add(1) {
                events.push((after, false, label));
            }
        }
        events.sort_unstable();

        let mut table = RangeTable::default();
        let mut active: BTreeMap<u32, usize> = BTreeMap::new();
        let mut i = 0;
        while i < events.len() {
            let pos = events[i].0;
            while i < events.len() && events[i].0 == pos {
                let (_, is_start, label) = events[i];
                if is_start {
                    *active.entry(label).or_insert(0) += 1;
                } else if let Some(count) = active.get_mut(&label) {
                    *count -= 1;
                    if *count == 0 {
                        active.remove(&label);
                    }
                }
                i += 1;
            }
            let Some((&label, _)) = active.first_key_value() else {
                continue;
            };
            // The segment runs to just before the next event, or to the end of the space.
            let end = match events.get(i) {
                Some(&(next, _, _)) => next - 1,
                None => u128::MAX,
            };
            table.push(pos, end, label);
        }
        table
    }

    fn push(&mut self, start: u128, end: u128, label: u32) {
        if let (Some(last_end), Some(&last_label)) = (self.ends.last_mut(), self.labels.last())
            && last_label == label
            && last_end.checked_add(1) == Some(start)
        {
            *last_end = end;
            return;
        }
        self.starts.push(start);
        self.ends.push(end);
        self.labels.push(label);
    }

    /// The lowest label of a range containing `key`, if any.
    #[inline]
    pub(crate) fn lookup(&self, key: u128) -> Option<u32> {
        let i = self.starts.partition_point(|&s| s <= key);
        if i == 0 {
            return None;
        }
        (key <= self.ends[i - 1]).then(|| self.labels[i - 1])
    }

    /// True when every address covered by `other` is also covered by `self` (labels ignored).
    pub(crate) fn covers(&self, other: &RangeTable) -> bool {
        other.starts.iter().zip(&other.ends).all(|(&start, &end)| self.covers_range(start, end))
    }

    fn covers_range(&self, start: u128, end: u128) -> bool {
        let mut pos = start;
        loop {
            let i = self.starts.partition_point(|&s| s <= pos);
            if i == 0 || pos > self.ends[i - 1] {
                return false;
            }
            let seg_end = self.ends[i - 1];
            if seg_end >= end {
                return true;
            }
            pos = seg_end + 1;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// The covered addresses as sorted, disjoint, non-adjacent inclusive intervals (labels
    /// ignored, adjacent segments merged).
    pub(crate) fn intervals(&self) -> Vec<(u128, u128)> {
        let mut out: Vec<(u128, u128)> = Vec::with_capacity(self.starts.len());
        for (&start, &end) in self.starts.iter().zip(&self.ends) {
            match out.last_mut() {
                Some((_, last_end)) if last_end.checked_add(1) == Some(start) => *last_end = end,
                _ => out.push((start, end)),
            }
        }
        out
    }
}

/// `a` minus `b`, both sorted, disjoint inclusive intervals; the result is sorted and disjoint.
pub(crate) fn subtract(a: &[(u128, u128)], b: &[(u128, u128)]) -> Vec<(u128, u128)> {
    let mut out = Vec::new();
    let mut j = 0;
    for &(start, end) in a {
        while j < b.len() && b[j].1 < start {
            j += 1;
        }
        let (mut pos, mut k) = (start, j);
        loop {
            let Some(&(cut_start, cut_end)) = b.get(k).filter(|&&(s, _)| s <= end) else {
                out.push((pos, end));
                break;
            };
            if cut_start > pos {
                out.push((pos, cut_start - 1));
            }
            if cut_end >= end {
                break;
            }
            pos = pos.max(cut_end + 1);
            k += 1;
        }
    }
    out
}

/// The fewest prefixes that cover exactly the inclusive interval `[first, last]` of a
/// `bits`-bit address space, as `(network, prefix length)`.
pub(crate) fn interval_prefixes(first: u128, last: u128, bits: u32) -> Vec<(u128, u8)> {
    let block_end = |start: u128, size_log2: u32| match size_log2 {
        128 => u128::MAX,
        k => start + ((1u128 << k) - 1),
    };
    let mut out = Vec::new();
    let mut start = first;
    loop {
        let mut k = start.trailing_zeros().min(bits);
        while k > 0 && block_end(start, k) > last {
            k -= 1;
        }
        out.push((start, (bits - k) as u8));
        let end = block_end(start, k);
        if end >= last {
            return out;
        }
        start = end + 1;
    }
}

/// Intervals of one family back to prefixes (`v6` selects the family).
pub(crate) fn to_nets(intervals: &[(u128, u128)], v6: bool) -> Vec<IpNet> {
    let bits = if v6 { 128 } else { 32 };
    intervals
        .iter()
        .flat_map(|&(first, last)| interval_prefixes(first, last, bits))
        .filter_map(|(network, len)| {
            if v6 {
                ipnet::Ipv6Net::new(std::net::Ipv6Addr::from(network), len).ok().map(IpNet::V6)
            } else {
                let network = u32::try_from(network).ok()?;
                ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(network), len).ok().map(IpNet::V4)
            }
        })
        .collect()
}

/// Sorted, disjoint inclusive intervals of one address family.
pub(crate) type Intervals = Vec<(u128, u128)>;

/// Splits prefixes by family into merged intervals: `(v4, v6)`.
pub(crate) fn nets_to_intervals(nets: &[IpNet]) -> (Intervals, Intervals) {
    let (mut v4, mut v6) = (Vec::new(), Vec::new());
    for (i, net) in nets.iter().enumerate() {
        let (first, last) = net_bounds(net);
        let label = u32::try_from(i).unwrap_or(u32::MAX);
        match net {
            IpNet::V4(_) => v4.push((first, last, label)),
            IpNet::V6(_) => v6.push((first, last, label)),
        }
    }
    (RangeTable::build(&v4).intervals(), RangeTable::build(&v6).intervals())
}

/// The inclusive numeric range of a prefix, in its family's table key space.
pub(crate) fn net_bounds(net: &IpNet) -> (u128, u128) {
    match net {
        IpNet::V4(n) => (u128::from(u32::from(n.network())), u128::from(u32::from(n.broadcast()))),
        IpNet::V6(n) => (u128::from(n.network()), u128::from(n.broadcast())),
    }
}

/// The table key of an address (callers normalise IPv4-mapped IPv6 first).
#[inline]
pub(crate) fn addr_key(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_ranges_take_the_lowest_label() {
        let t = RangeTable::build(&[(10, 20, 1), (15, 30, 0), (40, 50, 2)]);
        let cases = [
            (9, None),
            (10, Some(1)),
            (14, Some(1)),
            (15, Some(0)),
            (30, Some(0)),
            (31, None),
            (40, Some(2)),
            (50, Some(2)),
            (51, None),
        ];
        for (key, want) in cases {
            assert_eq!(t.lookup(key), want, "key {key}");
        }
    }

    #[test]
    fn range_reaching_the_top_of_the_space() {
        let t = RangeTable::build(&[(u128::MAX - 5, u128::MAX, 0), (0, 0, 1)]);
        assert_eq!(t.lookup(u128::MAX), Some(0));
        assert_eq!(t.lookup(0), Some(1));
        assert_eq!(t.lookup(1), None);
    }

    #[test]
    fn nested_range_inside_a_lower_label_is_absorbed() {
        let t = RangeTable::build(&[(0, 100, 0), (10, 20, 1)]);
        assert_eq!(t.starts.len(), 1, "one merged segment: {t:?}");
        assert_eq!(t.lookup(15), Some(0));
    }

    #[test]
    fn intervals_subtract_and_prefixes() {
        let t = RangeTable::build(&[(0, 10, 0), (11, 20, 1), (30, 40, 0)]);
        assert_eq!(t.intervals(), vec![(0, 20), (30, 40)]);
        assert_eq!(subtract(&[(0, 20), (30, 40)], &[(5, 7), (18, 35)]), vec![(0, 4), (8, 17), (36, 40)]);
        assert_eq!(subtract(&[(0, 20)], &[(0, 20)]), vec![]);
        assert_eq!(subtract(&[(0, 20)], &[]), vec![(0, 20)]);
        assert_eq!(subtract(&[(10, 20)], &[(0, 5), (25, 30)]), vec![(10, 20)]);
        assert_eq!(subtract(&[(0, u128::MAX)], &[(1, 1)]), vec![(0, 0), (2, u128::MAX)]);
        assert_eq!(interval_prefixes(0, u32::MAX as u128, 32), vec![(0, 0)]);
        assert_eq!(interval_prefixes(0, u128::MAX, 128), vec![(0, 0)]);
        assert_eq!(interval_prefixes(4, 4, 32), vec![(4, 32)]);
        // 1..=6: 1/32, 2/31 (2-3), 4/31 (4-5), 6/32.
        assert_eq!(interval_prefixes(1, 6, 32), vec![(1, 32), (2, 31), (4, 31), (6, 32)]);
    }

    #[test]
    fn coverage() {
        let big = RangeTable::build(&[(0, 10, 0), (11, 20, 1)]);
        let small = RangeTable::build(&[(5, 15, 0)]);
        assert!(big.covers(&small));
        assert!(!small.covers(&big));
        let gap = RangeTable::build(&[(0, 10, 0), (12, 20, 1)]);
        assert!(!gap.covers(&small));
        assert!(big.covers(&RangeTable::default()));
    }
}
