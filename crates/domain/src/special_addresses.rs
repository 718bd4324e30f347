//! Which IP addresses a webhook may never be sent to: the SSRF guard's rule, as data.
//!
//! A tenant chooses the URL, so every address that is not globally reachable unicast is
//! refused: the ranges of IANA's IPv4 and IPv6 Special-Purpose Address Registries whose
//! "Globally Reachable" is false or n/a, multicast and broadcast, and, for IPv6, anything
//! outside the global unicast space 2000::/3 (the rest is reserved by the IETF). Where an
//! IPv6 address carries an IPv4 one that a translator or relay would connect to (mapped
//! `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`), the IPv4 address is judged.
//!
//! The few registry entries that *are* globally reachable are allowed (AS112 and AMT
//! anycast); the PCP and TURN anycast addresses inside 192.0.0.0/24 and 2001::/23 are
//! refused with the rest of those blocks, which hold nothing a webhook is meant for.
//! Resolving names is the HTTP adapter's job; this module only judges addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IPv4 block that is refused, with why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusedV4 {
    /// The first address.
    pub network: Ipv4Addr,
    /// The prefix length.
    pub prefix: u8,
    /// What it is, and where it is defined.
    pub name: &'static str,
}

/// An IPv6 block that is refused, with why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RefusedV6 {
    /// The first address.
    pub network: Ipv6Addr,
    /// The prefix length.
    pub prefix: u8,
    /// What it is, and where it is defined.
    pub name: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8, name: &'static str) -> RefusedV4 {
    RefusedV4 {
        network: Ipv4Addr::new(a, b, c, d),
        prefix,
        name,
    }
}

const fn v6(segments: [u16; 8], prefix: u8, name: &'static str) -> RefusedV6 {
    let [a, b, c, d, e, f, g, h] = segments;
    RefusedV6 {
        network: Ipv6Addr::new(a, b, c, d, e, f, g, h),
        prefix,
        name,
    }
}

/// Every refused IPv4 block (IANA IPv4 Special-Purpose Address Registry, not globally
/// reachable; plus multicast and the limited broadcast address).
pub const REFUSED_V4: &[RefusedV4] = &[
    v4(0, 0, 0, 0, 8, "\"this network\" (RFC 791)"),
    v4(10, 0, 0, 0, 8, "private-use (RFC 1918)"),
    v4(
        100,
        64,
        0,
        0,
        10,
        "shared address space, carrier-grade NAT (RFC 6598)",
    ),
    v4(127, 0, 0, 0, 8, "loopback (RFC 1122)"),
    v4(169, 254, 0, 0, 16, "link-local, cloud metadata (RFC 3927)"),
    v4(172, 16, 0, 0, 12, "private-use (RFC 1918)"),
    v4(192, 0, 0, 0, 24, "IETF protocol assignments (RFC 6890)"),
    v4(192, 0, 2, 0, 24, "documentation, TEST-NET-1 (RFC 5737)"),
    v4(
        192,
        88,
        99,
        0,
        24,
        "deprecated 6to4 relay anycast (RFC 7526)",
    ),
    v4(192, 168, 0, 0, 16, "private-use (RFC 1918)"),
    v4(198, 18, 0, 0, 15, "benchmarking (RFC 2544)"),
    v4(198, 51, 100, 0, 24, "documentation, TEST-NET-2 (RFC 5737)"),
    v4(203, 0, 113, 0, 24, "documentation, TEST-NET-3 (RFC 5737)"),
    v4(224, 0, 0, 0, 4, "multicast (RFC 5771)"),
    v4(255, 255, 255, 255, 32, "limited broadcast (RFC 8190)"),
    v4(240, 0, 0, 0, 4, "reserved (RFC 1112)"),
];

/// Every refused IPv6 block that has a name (IANA IPv6 Special-Purpose Address Registry,
/// not globally reachable; plus deprecated and multicast blocks). Everything else outside
/// 2000::/3 is refused too, as reserved.
pub const REFUSED_V6: &[RefusedV6] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified (RFC 4291)"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback (RFC 4291)"),
    v6(
        [0, 0, 0, 0, 0, 0, 0, 0],
        96,
        "IPv4-compatible, deprecated (RFC 4291)",
    ),
    v6(
        [0x64, 0xff9b, 1, 0, 0, 0, 0, 0],
        48,
        "local-use IPv4/IPv6 translation (RFC 8215)",
    ),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only (RFC 6666)"),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, "dummy prefix (RFC 9780)"),
    v6(
        [0x2001, 0, 0, 0, 0, 0, 0, 0],
        23,
        "IETF protocol assignments: Teredo, benchmarking, ORCHID... (RFC 2928)",
    ),
    v6(
        [0x2001, 0xdb8, 0, 0, 0, 0, 0, 0],
        32,
        "documentation (RFC 3849)",
    ),
    v6(
        [0x3fff, 0, 0, 0, 0, 0, 0, 0],
        20,
        "documentation (RFC 9637)",
    ),
    v6(
        [0x5f00, 0, 0, 0, 0, 0, 0, 0],
        16,
        "segment routing SIDs (RFC 9602)",
    ),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local (RFC 4193)"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local (RFC 4291)"),
    v6(
        [0xfec0, 0, 0, 0, 0, 0, 0, 0],
        10,
        "site-local, deprecated (RFC 3879)",
    ),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast (RFC 4291)"),
];

fn within_v4(ip: Ipv4Addr, network: Ipv4Addr, prefix: u8) -> bool {
    let shift = 32_u32.saturating_sub(u32::from(prefix));
    (u32::from(ip) ^ u32::from(network))
        .checked_shr(shift)
        .unwrap_or(0)
        == 0
}

fn within_v6(ip: Ipv6Addr, network: Ipv6Addr, prefix: u8) -> bool {
    let shift = 128_u32.saturating_sub(u32::from(prefix));
    (u128::from(ip) ^ u128::from(network))
        .checked_shr(shift)
        .unwrap_or(0)
        == 0
}

/// Why `ip` may not receive a webhook (the refused block's description), or `None` when
/// it is globally reachable unicast.
#[must_use]
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(ip) => refusal_v4(ip),
        IpAddr::V6(ip) => refusal_v6(ip),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    REFUSED_V4
        .iter()
        .find(|range| within_v4(ip, range.network, range.prefix))
        .map(|range| range.name)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = u128::from(ip);
    // The low 32 bits, or bits 80..112 for 6to4: the IPv4 address a relay would reach.
    let low_v4 = || Ipv4Addr::from(u32::try_from(bits & 0xffff_ffff).unwrap_or(u32::MAX));
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return refusal_v4(mapped);
    }
    if within_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96) {
        return refusal_v4(low_v4());
    }
    if within_v6(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        let embedded = u32::try_from((bits >> 80) & 0xffff_ffff).unwrap_or(u32::MAX);
        return refusal_v4(Ipv4Addr::from(embedded));
    }
    if let Some(range) = REFUSED_V6
        .iter()
        .find(|range| within_v6(ip, range.network, range.prefix))
    {
        return Some(range.name);
    }
    if within_v6(ip, Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3) {
        None
    } else {
        Some("reserved by the IETF, outside global unicast 2000::/3 (RFC 4291)")
    }
}

/// Whether a webhook may be delivered to `ip`: see [`refusal`].
#[must_use]
pub fn is_public_address(ip: IpAddr) -> bool {
    refusal(ip).is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(address: &str) -> bool {
        !is_public_address(address.parse().expect("an address"))
    }

    /// The last address of a block.
    fn last_v4(range: &RefusedV4) -> Ipv4Addr {
        let host_bits = 32 - u32::from(range.prefix);
        let mask = 1_u32.checked_shl(host_bits).map_or(u32::MAX, |m| m - 1);
        Ipv4Addr::from(u32::from(range.network) | mask)
    }

    fn last_v6(range: &RefusedV6) -> Ipv6Addr {
        let host_bits = 128 - u32::from(range.prefix);
        let mask = 1_u128.checked_shl(host_bits).map_or(u128::MAX, |m| m - 1);
        Ipv6Addr::from(u128::from(range.network) | mask)
    }

    #[test]
    fn the_first_and_last_address_of_every_refused_ipv4_block_are_refused() {
        for range in REFUSED_V4 {
            for ip in [range.network, last_v4(range)] {
                assert!(!is_public_address(IpAddr::V4(ip)), "{ip} ({})", range.name);
                // And in its IPv4-mapped IPv6 form, judged as the IPv4 address.
                assert!(
                    !is_public_address(IpAddr::V6(ip.to_ipv6_mapped())),
                    "{} ({})",
                    ip.to_ipv6_mapped(),
                    range.name
                );
            }
        }
    }

    #[test]
    fn the_first_and_last_address_of_every_refused_ipv6_block_are_refused() {
        for range in REFUSED_V6 {
            for ip in [range.network, last_v6(range)] {
                // The mapped block (inside ::/96's neighbour ::ffff:0:0/96) is judged as
                // IPv4; every named block here is outside it.
                assert!(!is_public_address(IpAddr::V6(ip)), "{ip} ({})", range.name);
            }
        }
    }

    /// Each block of the IANA registries that is not globally reachable, by a sample
    /// address, written out independently of the tables above.
    #[test]
    fn every_special_purpose_range_that_is_not_globally_reachable_is_refused() {
        for (address, range) in [
            ("0.1.2.3", "0.0.0.0/8"),
            ("10.200.0.1", "10.0.0.0/8"),
            ("100.64.0.0", "100.64.0.0/10"),
            ("100.127.255.255", "100.64.0.0/10"),
            ("127.0.0.53", "127.0.0.0/8"),
            ("169.254.169.254", "169.254.0.0/16"),
            ("172.31.255.255", "172.16.0.0/12"),
            ("192.0.0.1", "192.0.0.0/24"),
            ("192.0.0.8", "192.0.0.8/32 dummy"),
            (
                "192.0.0.9",
                "192.0.0.9/32 PCP anycast (refused with its block)",
            ),
            ("192.0.0.170", "192.0.0.170/32 NAT64 discovery"),
            ("192.0.2.10", "192.0.2.0/24"),
            ("192.88.99.1", "192.88.99.0/24"),
            ("192.168.0.1", "192.168.0.0/16"),
            ("198.18.0.1", "198.18.0.0/15"),
            ("198.19.255.255", "198.18.0.0/15"),
            ("198.51.100.7", "198.51.100.0/24"),
            ("203.0.113.9", "203.0.113.0/24"),
            ("224.0.0.251", "224.0.0.0/4"),
            ("239.255.255.250", "224.0.0.0/4"),
            ("240.0.0.1", "240.0.0.0/4"),
            ("255.255.255.254", "240.0.0.0/4"),
            ("255.255.255.255", "255.255.255.255/32"),
            ("::", "::/128"),
            ("::1", "::1/128"),
            ("::10.0.0.1", "::/96 IPv4-compatible"),
            (
                "::8.8.8.8",
                "::/96 IPv4-compatible, even of a public address",
            ),
            ("::ffff:127.0.0.1", "::ffff:0:0/96 mapped loopback"),
            ("::ffff:100.64.1.1", "::ffff:0:0/96 mapped shared space"),
            ("::ffff:198.18.0.1", "::ffff:0:0/96 mapped benchmarking"),
            (
                "64:ff9b::10.0.0.1",
                "64:ff9b::/96 NAT64 of a private address",
            ),
            ("64:ff9b::169.254.169.254", "64:ff9b::/96 NAT64 of metadata"),
            ("64:ff9b:1::1", "64:ff9b:1::/48"),
            (
                "64:ff9b:1::8.8.8.8",
                "64:ff9b:1::/48, even of a public address",
            ),
            ("100::1", "100::/64"),
            ("100:0:0:1::1", "100:0:0:1::/64"),
            ("2001::1", "2001::/32 Teredo"),
            ("2001:2::1", "2001:2::/48 benchmarking"),
            ("2001:10::1", "2001:10::/28 ORCHID"),
            ("2001:1ff:ffff::1", "2001::/23"),
            ("2001:db8::1", "2001:db8::/32"),
            ("2002:a00:1::", "2002::/16 6to4 of 10.0.0.1"),
            ("2002:7f00:1::", "2002::/16 6to4 of 127.0.0.1"),
            ("3fff::1", "3fff::/20"),
            ("3fff:fff::1", "3fff::/20"),
            ("5f00::1", "5f00::/16"),
            ("fc00::1", "fc00::/7"),
            ("fd12:3456::1", "fc00::/7"),
            ("fe80::1", "fe80::/10"),
            ("fec0::1", "fec0::/10"),
            ("feff:ffff::1", "fec0::/10"),
            ("ff02::1", "ff00::/8"),
            ("4000::1", "outside 2000::/3"),
            ("1::1", "outside 2000::/3"),
        ] {
            assert!(refused(address), "{address} ({range}) must be refused");
        }
    }

    #[test]
    fn globally_reachable_addresses_are_allowed_right_next_to_the_refused_blocks() {
        for address in [
            "1.1.1.1",
            "8.8.8.8",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.0",
            "192.88.98.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            // Globally reachable entries of the registry: AS112 and AMT anycast.
            "192.31.196.1",
            "192.52.193.1",
            "192.175.48.1",
            "::ffff:8.8.8.8",
            "64:ff9b::8.8.8.8",
            "2002:808:808::",
            "2001:200::1",
            "2001:db9::1",
            "2606:4700:4700::1111",
            "2620:4f:8000::1",
            "3fff:1000::1",
            "2a00:1450:4001::200e",
        ] {
            assert!(!refused(address), "{address} is globally reachable");
        }
    }

    #[test]
    fn a_refusal_names_the_block() {
        assert_eq!(
            refusal("100.64.0.1".parse().expect("an address")),
            Some("shared address space, carrier-grade NAT (RFC 6598)")
        );
        assert_eq!(
            refusal("::ffff:169.254.169.254".parse().expect("an address")),
            Some("link-local, cloud metadata (RFC 3927)")
        );
    }
}
