//! The SSRF guard: which webhook URLs may be called and which addresses may be connected to.
//!
//! A webhook URL is chosen by a tenant, so without a guard it would let anyone make this
//! server call its own loopback services, the private network or a cloud metadata endpoint.
//! The guard works at two moments. When a URL is registered ([`check_url`] plus
//! [`AddressGuard::resolve`]) the tenant gets a clear refusal. When a connection is made, the
//! same rule runs inside awc's connector ([`GuardedResolver`] for names, [`GuardedConnector`]
//! for IP literals and addresses that come already resolved), so a name whose DNS answer
//! changed since registration (DNS rebinding) still cannot reach a forbidden address: the
//! addresses checked are exactly the ones the socket is opened to.

use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};

use actix_rt::net::TcpStream;
use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService, Resolve};
use awc::http::Uri;
use ports::LocalBoxFuture;
use thiserror::Error;
use url::Url;

/// Why a destination cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum DestinationError {
    /// The URL or an address it leads to is forbidden; the text says why, for the tenant.
    #[error("{0}")]
    Refused(String),
    /// The host name has no address (or the look-up failed).
    #[error("cannot resolve {0}")]
    Unresolvable(String),
}

impl From<DestinationError> for ports::WebhookSendError {
    fn from(error: DestinationError) -> Self {
        match error {
            DestinationError::Refused(reason) => Self::Refused(reason),
            unresolvable @ DestinationError::Unresolvable(_) => {
                Self::Failed(unresolvable.to_string())
            }
        }
    }
}

/// A webhook URL that passed [`check_url`]: the normalised URL to request, and where it
/// points.
#[derive(Debug, Clone)]
pub(crate) struct Destination {
    /// The URL as awc should request it: normalised by the WHATWG parser (so `0x7f.1` is
    /// already `127.0.0.1` and cannot be read differently by awc) and without fragment.
    pub(crate) url: Url,
    /// The host as written in the URL, without IPv6 brackets.
    pub(crate) host: String,
    /// The host when it is an IP literal: no look-up happens for it.
    pub(crate) literal: Option<IpAddr>,
    /// The port, explicit or the scheme's default.
    pub(crate) port: u16,
}

/// Checks the shape of a webhook URL: scheme, no credentials, a host. Addresses are the
/// [`AddressGuard`]'s business.
///
/// # Errors
/// [`DestinationError::Refused`] with a short reason for the tenant.
pub(crate) fn check_url(raw: &str, allow_http: bool) -> Result<Destination, DestinationError> {
    let refused = |reason: &str| DestinationError::Refused(reason.to_owned());
    let mut url = Url::parse(raw.trim()).map_err(|_| refused("not a valid URL"))?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => return Err(refused("http is not allowed; use https")),
        _ => return Err(refused("only https URLs are allowed")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("credentials in the URL are not allowed"));
    }
    let (host, literal) = match url.host() {
        Some(url::Host::Domain(name)) => (name.to_owned(), None),
        Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
        Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
        None => return Err(refused("the URL has no host")),
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| refused("the URL has no port"))?;
    url.set_fragment(None);
    Ok(Destination {
        url,
        host,
        literal,
        port,
    })
}

/// The address rule of [`domain::special_addresses`] (every IANA special-purpose block
/// that is not globally reachable, multicast, and all of IPv6 outside 2000::/3; mapped,
/// NAT64 and 6to4 addresses judged by the IPv4 address they carry), switched off by
/// `WEBHOOK_ALLOW_PRIVATE` for local receivers in development and tests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AddressGuard {
    allow_private: bool,
}

impl AddressGuard {
    /// A guard that refuses non-public addresses unless `allow_private`.
    pub(crate) fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }

    /// Whether the URL's own IP literal may be connected to.
    ///
    /// # Errors
    /// [`DestinationError::Refused`] for a private or reserved address.
    pub(crate) fn check_ip(self, ip: IpAddr) -> Result<(), DestinationError> {
        if self.allow_private {
            return Ok(());
        }
        match domain::special_addresses::refusal(ip) {
            None => Ok(()),
            Some(block) => Err(DestinationError::Refused(format!(
                "{ip} is a private or reserved address: {block}"
            ))),
        }
    }

    /// The addresses `host` stands for, all of them allowed. One forbidden address refuses
    /// the whole name: which of several answers a connection would use is not ours to pick.
    ///
    /// # Errors
    /// [`DestinationError::Refused`] when any address is forbidden,
    /// [`DestinationError::Unresolvable`] when the name has no address.
    pub(crate) async fn resolve(
        self,
        host: &str,
        port: u16,
    ) -> Result<Vec<SocketAddr>, DestinationError> {
        let host = strip_brackets(host);
        if let Ok(ip) = host.parse::<IpAddr>() {
            self.check_ip(ip)?;
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
            .await
            .map_err(|_| DestinationError::Unresolvable(host.to_owned()))?
            .collect();
        if addresses.is_empty() {
            return Err(DestinationError::Unresolvable(host.to_owned()));
        }
        if let Some(forbidden) = addresses
            .iter()
            .find(|address| self.check_ip(address.ip()).is_err())
        {
            return Err(DestinationError::Refused(format!(
                "{host} resolves to {}, a private or reserved address",
                forbidden.ip()
            )));
        }
        Ok(addresses)
    }
}

/// `http::Uri` keeps the brackets of an IPv6 host (`[::1]`), and that is what awc hands
/// to the connector and the resolver.
fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host)
}

/// awc's DNS resolver: the system resolver, answering only with allowed addresses.
pub(crate) struct GuardedResolver {
    guard: AddressGuard,
}

impl GuardedResolver {
    /// A resolver applying `guard`.
    pub(crate) fn new(guard: AddressGuard) -> Self {
        Self { guard }
    }
}

impl Resolve for GuardedResolver {
    fn lookup<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> LocalBoxFuture<'a, Result<Vec<SocketAddr>, Box<dyn StdError>>> {
        Box::pin(async move {
            self.guard.resolve(host, port).await.map_err(|error| {
                if matches!(error, DestinationError::Refused(_)) {
                    tracing::warn!(host, %error, "webhook connection refused by the SSRF guard");
                }
                Box::new(error) as Box<dyn StdError>
            })
        })
    }
}

/// awc's TCP connector: the stock one (which asks [`GuardedResolver`] about names), after
/// a check of what it would skip the resolver for: IP-literal hosts and requests that
/// arrive with their addresses already set.
#[derive(Clone)]
pub(crate) struct GuardedConnector {
    inner: ConnectorService,
    guard: AddressGuard,
}

impl GuardedConnector {
    /// A connector applying `guard`, resolving names through `inner`'s resolver.
    pub(crate) fn new(inner: ConnectorService, guard: AddressGuard) -> Self {
        Self { inner, guard }
    }

    fn check(&self, request: &ConnectInfo<Uri>) -> Result<(), DestinationError> {
        for address in request.addrs() {
            self.guard.check_ip(address.ip())?;
        }
        if let Ok(ip) = strip_brackets(request.hostname()).parse::<IpAddr>() {
            self.guard.check_ip(ip)?;
        }
        Ok(())
    }
}

impl Service<ConnectInfo<Uri>> for GuardedConnector {
    type Response = Connection<Uri, TcpStream>;
    type Error = ConnectError;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    // The stock connector service is always ready too.
    actix_service::always_ready!();

    fn call(&self, request: ConnectInfo<Uri>) -> Self::Future {
        match self.check(&request) {
            Ok(()) => Box::pin(self.inner.call(request)),
            Err(error) => {
                tracing::warn!(host = request.hostname(), %error, "webhook connection refused by the SSRF guard");
                Box::pin(std::future::ready(Err(ConnectError::Resolver(Box::new(
                    error,
                )))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_urls_pass_the_url_check() {
        let destination = check_url("https://hooks.example.com/in#frag", false).expect("allowed");
        assert_eq!(destination.host, "hooks.example.com");
        assert_eq!(destination.port, 443);
        assert_eq!(destination.literal, None);
        assert_eq!(destination.url.as_str(), "https://hooks.example.com/in");
    }

    #[test]
    fn http_urls_need_allow_http() {
        assert!(matches!(
            check_url("http://hooks.example.com/", false),
            Err(DestinationError::Refused(_))
        ));
        assert!(check_url("http://hooks.example.com/", true).is_ok());
    }

    #[test]
    fn other_schemes_and_garbage_are_refused() {
        for url in ["ftp://example.com/", "file:///etc/passwd", "not a url", ""] {
            assert!(
                matches!(check_url(url, true), Err(DestinationError::Refused(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn credentials_in_urls_are_refused() {
        for url in [
            "https://user:pass@example.com/",
            "https://user@example.com/",
            "https://:pass@example.com/",
        ] {
            assert!(
                matches!(check_url(url, true), Err(DestinationError::Refused(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn obfuscated_ip_literals_are_normalised_to_what_will_be_connected_to() {
        let destination = check_url("http://0x7f.1:8080/", true).expect("shape is fine");
        assert_eq!(destination.literal, Some(IpAddr::from([127, 0, 0, 1])));
        assert_eq!(destination.url.as_str(), "http://127.0.0.1:8080/");
        let destination = check_url("http://[::ffff:10.0.0.1]/", true).expect("shape is fine");
        assert!(
            AddressGuard::new(false)
                .check_ip(destination.literal.expect("literal"))
                .is_err()
        );
    }

    #[test]
    fn the_guard_refuses_private_addresses_unless_allowed() {
        let ip = IpAddr::from([169, 254, 169, 254]);
        assert!(matches!(
            AddressGuard::new(false).check_ip(ip),
            Err(DestinationError::Refused(reason)) if reason.contains("169.254.169.254")
        ));
        assert!(AddressGuard::new(true).check_ip(ip).is_ok());
        assert!(
            AddressGuard::new(false)
                .check_ip(IpAddr::from([93, 184, 215, 14]))
                .is_ok()
        );
    }

    /// The blocks issue 11 found missing, and the rest of the special-purpose registries,
    /// each by one address, as the guard sees it (IP literal or resolved address alike).
    #[test]
    fn the_guard_refuses_every_special_purpose_block_that_is_not_globally_reachable() {
        let guard = AddressGuard::new(false);
        for address in [
            // Missing before: NAT64 local use, IETF protocol assignments (Teredo,
            // benchmarking, ORCHID), site-local, discard-only, SRv6, documentation.
            "64:ff9b:1::1",
            "64:ff9b:1:ffff::8.8.8.8",
            "2001::1",
            "2001:2::5",
            "2001:10::1",
            "2001:1ff::1",
            "fec0::1",
            "100::1",
            "100:0:0:1::1",
            "5f00::1",
            "3fff::1",
            "4000::1",
            "::8.8.8.8",
            // Mapped addresses, judged as their IPv4 address.
            "::ffff:10.0.0.1",
            "::ffff:100.64.0.1",
            "::ffff:192.0.0.9",
            "::ffff:198.18.0.1",
            "::ffff:240.0.0.1",
            "::ffff:169.254.169.254",
            // IPv4.
            "0.0.0.1",
            "10.0.0.1",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "169.254.169.254",
            "172.16.0.1",
            "192.0.0.1",
            "192.0.0.10",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.1",
            "203.0.113.1",
            "224.0.0.1",
            "240.0.0.1",
            "255.255.255.255",
            // IPv6.
            "::",
            "::1",
            "64:ff9b::7f00:1",
            "2001:db8::1",
            "2002:c0a8:101::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
        ] {
            let ip: IpAddr = address.parse().expect("an address");
            assert!(
                matches!(guard.check_ip(ip), Err(DestinationError::Refused(_))),
                "{address} must be refused"
            );
            assert!(AddressGuard::new(true).check_ip(ip).is_ok());
        }
        for address in [
            "8.8.8.8",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2001:4860::8888",
        ] {
            let ip: IpAddr = address.parse().expect("an address");
            assert!(guard.check_ip(ip).is_ok(), "{address} is public");
        }
    }

    #[test]
    fn a_refusal_says_which_block_the_address_is_in() {
        let refused = AddressGuard::new(false).check_ip(IpAddr::from([100, 64, 1, 1]));
        assert!(
            matches!(&refused, Err(DestinationError::Refused(reason)) if reason.contains("RFC 6598")),
            "{refused:?}"
        );
    }

    #[actix_rt::test]
    async fn the_resolver_refuses_names_that_resolve_to_loopback() {
        let resolver = GuardedResolver::new(AddressGuard::new(false));
        let error = resolver
            .lookup("localhost", 80)
            .await
            .expect_err("loopback refused");
        assert!(matches!(
            error.downcast_ref::<DestinationError>(),
            Some(DestinationError::Refused(_))
        ));
    }

    #[actix_rt::test]
    async fn the_resolver_understands_bracketed_ipv6_hosts() {
        let refused = GuardedResolver::new(AddressGuard::new(false))
            .lookup("[::1]", 80)
            .await
            .expect_err("loopback refused");
        assert!(refused.downcast_ref::<DestinationError>().is_some());
        let allowed = GuardedResolver::new(AddressGuard::new(true))
            .lookup("[::1]", 80)
            .await
            .expect("allowed");
        assert_eq!(
            allowed,
            vec![SocketAddr::from(([0u16, 0, 0, 0, 0, 0, 0, 1], 80))]
        );
    }
}
