//! Who the client is, for per-IP rate limits and the QR requester details: the socket's
//! peer, unless that peer is a trusted proxy (`TRUSTED_PROXIES`, CIDRs, none by default);
//! then the right-most address of `X-Forwarded-For` / `Forwarded` that is not itself
//! trusted. A client that is not behind a trusted proxy cannot change its address by
//! sending those headers.

use std::net::IpAddr;
use std::str::FromStr;

use actix_web::http::header::HeaderMap;
use thiserror::Error;

/// One CIDR block (`10.0.0.0/8`, `::1/128`; a bare address is a /32 or /128).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

/// Why a `TRUSTED_PROXIES` entry was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{0:?} is not an IP address or CIDR block (e.g. 10.0.0.0/8, 127.0.0.1/32, ::1/128)")]
pub struct CidrError(pub String);

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, CidrError> {
        let bad = || CidrError(text.to_owned());
        let (address, prefix) = match text.trim().split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
            None => max,
        };
        Ok(Self { network, prefix })
    }
}

fn bits(ip: IpAddr) -> (u128, u8) {
    match ip {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), 32),
        IpAddr::V6(v6) => (u128::from(v6), 128),
    }
}

impl Cidr {
    /// Whether `ip` lies in this block (IPv4-mapped IPv6 addresses count as IPv4).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let (network, width) = bits(self.network);
        let (candidate, candidate_width) = bits(ip);
        if width != candidate_width {
            return false;
        }
        let host_bits = u32::from(width - self.prefix);
        let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
        network & mask == candidate & mask
    }
}

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<Cidr>);

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs (empty: trust nobody).
    ///
    /// # Errors
    /// [`CidrError`] for the first bad entry.
    pub fn parse(list: &str) -> Result<Self, CidrError> {
        list.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(Cidr::from_str)
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// Whether `ip` is a trusted proxy.
    #[must_use]
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|cidr| cidr.contains(ip))
    }
}

/// The addresses a request says it was forwarded for, nearest hop last: every
/// `Forwarded: for=` and every `X-Forwarded-For` entry, in header order. Unparseable
/// entries (`unknown`, obfuscated names) end the chain: nothing before them is believed.
fn forwarded_chain(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let mut chain = Vec::new();
    for value in headers.get_all("forwarded") {
        let Ok(value) = value.to_str() else {
            chain.push(None);
            continue;
        };
        for element in value.split(',') {
            for pair in element.split(';') {
                let Some((name, value)) = pair.trim().split_once('=') else {
                    continue;
                };
                if name.trim().eq_ignore_ascii_case("for") {
                    chain.push(parse_node(value.trim().trim_matches('"')));
                }
            }
        }
    }
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            chain.push(None);
            continue;
        };
        chain.extend(value.split(',').map(|entry| parse_node(entry.trim())));
    }
    chain
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[::1]`, `[::1]:5678` or `::1`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Ok(ip) = node.parse() {
        return Some(ip);
    }
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    node.rsplit_once(':')?.0.parse().ok()
}

/// The client's address: `peer` itself unless it is a trusted proxy; then the right-most
/// forwarded address that is not trusted (or the left-most, if every hop is trusted).
#[must_use]
pub fn resolve(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer = peer?.to_canonical();
    if !trusted.trusts(peer) {
        return Some(peer);
    }
    let mut client = peer;
    for hop in forwarded_chain(headers).into_iter().rev() {
        match hop {
            Some(ip) => {
                client = ip.to_canonical();
                if !trusted.trusts(client) {
                    break;
                }
            }
            // A hop we cannot read: the last address we could is as far as we trust.
            None => break,
        }
    }
    Some(client)
}

/// The rate-limit key of an address: IPv4 as is, IPv6 by its /64 (one subscriber's
/// allocation, so rotating through a /64 gains nothing).
#[must_use]
pub fn limit_key(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => format!("ip:{v4}"),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn cidrs_parse_and_match() {
        let ten: Cidr = "10.0.0.0/8".parse().expect("valid");
        assert!(ten.contains(ip("10.200.3.4")));
        assert!(!ten.contains(ip("11.0.0.1")));
        assert!(
            ten.contains(ip("::ffff:10.1.1.1")),
            "IPv4-mapped counts as IPv4"
        );
        let any: Cidr = "0.0.0.0/0".parse().expect("valid");
        assert!(any.contains(ip("203.0.113.7")));
        let one: Cidr = "::1".parse().expect("valid");
        assert!(one.contains(ip("::1")) && !one.contains(ip("::2")));
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0.0/", "::1/129"] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
        assert!(TrustedProxies::parse("127.0.0.1/32, 10.0.0.0/8").is_ok());
        assert_eq!(TrustedProxies::parse(""), Ok(TrustedProxies::default()));
        assert!(TrustedProxies::parse("127.0.0.1/32,bad").is_err());
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_says() {
        let spoofed = headers(&[("x-forwarded-for", "1.1.1.1"), ("forwarded", "for=2.2.2.2")]);
        let client = resolve(
            Some(ip("203.0.113.9")),
            &spoofed,
            &TrustedProxies::default(),
        );
        assert_eq!(client, Some(ip("203.0.113.9")));
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_hop_is_the_client() {
        let trusted = TrustedProxies::parse("127.0.0.1/32,10.0.0.0/8").expect("valid");
        // The client forged the first entry; the proxies appended the rest.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.4, 10.0.0.2")]);
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), &chain, &trusted),
            Some(ip("198.51.100.4"))
        );
        let forwarded = headers(&[("forwarded", "for=\"[2001:db8::7]:443\";proto=https")]);
        assert_eq!(
            resolve(Some(ip("10.1.2.3")), &forwarded, &trusted),
            Some(ip("2001:db8::7"))
        );
        let unreadable = headers(&[("x-forwarded-for", "198.51.100.4, unknown")]);
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), &unreadable, &trusted),
            Some(ip("127.0.0.1")),
            "nothing before an unreadable hop is believed"
        );
        assert_eq!(
            resolve(Some(ip("127.0.0.1")), &HeaderMap::new(), &trusted),
            Some(ip("127.0.0.1"))
        );
    }

    #[test]
    fn ipv6_clients_share_a_key_per_slash_64() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:bbbb::9"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("::ffff:192.0.2.1")), "ip:192.0.2.1");
    }
}
