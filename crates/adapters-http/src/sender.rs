//! [`AwcWebhookSender`], the [`ports::WebhookSender`] that delivers webhooks over HTTPS with
//! awc.
//!
//! Everything about a delivery that could hurt this server is bounded here: where it may
//! connect (the SSRF guard, also inside awc's connector), that it never follows a redirect
//! (a redirect is just another URL the tenant did not register), how long it may take, and
//! how much of the answer is read.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use awc::error::{ConnectError, PayloadError, SendRequestError};
use awc::http::header::{HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};
use futures_util::StreamExt as _;
use ports::{LocalBoxFuture, OutgoingWebhook, WebhookReply, WebhookSendError};

use crate::guard::{
    AddressGuard, Destination, DestinationError, GuardedConnector, GuardedResolver, check_url,
};
use crate::retry_after::parse_retry_after;

/// The `User-Agent` of every delivery, so receivers can tell webhooks from other traffic.
const USER_AGENT_VALUE: &str = "crm-webhooks/1";

/// How the sender behaves; the defaults are the production ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderConfig {
    /// Allow private, loopback and reserved addresses (`WEBHOOK_ALLOW_PRIVATE`): for local
    /// receivers in development and tests only.
    pub allow_private: bool,
    /// Allow plain `http` URLs (`WEBHOOK_ALLOW_HTTP`): for local receivers only.
    pub allow_http: bool,
    /// The longest a whole delivery may take: connecting, the TLS handshake, sending, the
    /// response and reading its (capped) body.
    pub timeout: Duration,
    /// How many bytes of the response body are kept; the rest is never read.
    pub max_body: usize,
}

impl Default for SenderConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            allow_http: false,
            timeout: Duration::from_secs(15),
            max_body: 1024,
        }
    }
}

/// How long registration waits for DNS before accepting the name unchecked.
const VET_RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a registration waits for a free look-up slot before it is told to come back
/// (`WebhookSendError::Busy`, 503 for the API). Short: waiting costs the caller time but
/// no connection (the look-up runs outside any transaction), and a burst of slow names
/// should not queue up behind itself.
const VET_SLOT_WAIT: Duration = Duration::from_millis(500);

/// Destination checks (DNS look-ups) that may run at once, when the server does not say.
pub const DEFAULT_VET_SLOTS: usize = 8;

/// The process-wide bound on concurrent registration look-ups, shared by every sender
/// (one per worker thread) through [`AwcWebhookSender::with_vet_slots`]: a tenant
/// registering many slow names takes at most this many look-ups, and everyone else's
/// registrations wait at most [`VET_SLOT_WAIT`] behind them.
#[derive(Clone, Debug)]
pub struct VetSlots(Arc<tokio::sync::Semaphore>);

impl VetSlots {
    /// Room for `slots` concurrent look-ups (at least one).
    #[must_use]
    pub fn new(slots: usize) -> Self {
        Self(Arc::new(tokio::sync::Semaphore::new(slots.max(1))))
    }

    /// Look-ups that could start now.
    #[must_use]
    pub fn available(&self) -> usize {
        self.0.available_permits()
    }
}

impl Default for VetSlots {
    fn default() -> Self {
        Self::new(DEFAULT_VET_SLOTS)
    }
}

/// Delivers webhooks with one awc client, built once, whose connector applies the SSRF
/// guard to every connection it opens.
///
/// awc's client is not `Send`: build one sender per worker thread (the port's futures are
/// local for that reason).
pub struct AwcWebhookSender {
    config: SenderConfig,
    guard: AddressGuard,
    client: awc::Client,
    vet_slots: VetSlots,
}

impl AwcWebhookSender {
    /// A sender with `config`, its client set up with the guarded connector, rustls with the
    /// webpki roots, no redirects and the timeout.
    #[must_use]
    pub fn new(config: SenderConfig) -> Self {
        let guard = AddressGuard::new(config.allow_private);
        let resolver = actix_tls::connect::Resolver::custom(GuardedResolver::new(guard));
        let tcp = GuardedConnector::new(
            actix_tls::connect::Connector::new(resolver).service(),
            guard,
        );
        let connector = awc::Connector::new()
            .connector(tcp)
            .rustls_0_23(Arc::new(tls_config()))
            .timeout(config.timeout)
            .handshake_timeout(config.timeout);
        let client = awc::Client::builder()
            .connector(connector)
            .disable_redirects()
            .timeout(config.timeout)
            .add_default_header((USER_AGENT, USER_AGENT_VALUE))
            .finish();
        Self {
            config,
            guard,
            client,
            vet_slots: VetSlots::default(),
        }
    }

    /// The same sender, its registration look-ups bounded by `slots` (shared with other
    /// senders: pass clones of one [`VetSlots`] to every thread's sender).
    #[must_use]
    pub fn with_vet_slots(mut self, slots: VetSlots) -> Self {
        self.vet_slots = slots;
        self
    }

    /// The checks that need no network: the URL's shape, and its host when it is an IP
    /// literal (which awc connects to without asking the resolver).
    fn check(&self, url: &str) -> Result<Destination, DestinationError> {
        let destination = check_url(url, self.config.allow_http)?;
        if let Some(ip) = destination.literal {
            self.guard.check_ip(ip)?;
        }
        Ok(destination)
    }

    async fn exchange(
        &self,
        destination: &Destination,
        webhook: &OutgoingWebhook,
    ) -> Result<WebhookReply, WebhookSendError> {
        let mut request = self.client.post(destination.url.as_str());
        for (name, value) in &webhook.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| WebhookSendError::Failed(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                WebhookSendError::Failed(format!("invalid value for header {name}"))
            })?;
            request = request.append_header((name, value));
        }

        let started = Instant::now();
        let mut response = request
            .send_body(webhook.body.clone())
            .await
            .map_err(|error| self.send_error(destination, error))?;
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, SystemTime::now()));

        let mut body = Vec::new();
        while body.len() < self.config.max_body {
            match response.next().await {
                Some(Ok(chunk)) => {
                    let room = self.config.max_body - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Some(Err(error)) => return Err(payload_error(error)),
                None => break,
            }
        }
        let latency = started.elapsed();

        Ok(WebhookReply {
            status: response.status().as_u16(),
            retry_after,
            body: String::from_utf8_lossy(&body).into_owned(),
            latency,
        })
    }

    /// A short, tenant-readable account of a failed request.
    fn send_error(&self, destination: &Destination, error: SendRequestError) -> WebhookSendError {
        let host = &destination.host;
        match error {
            SendRequestError::Connect(ConnectError::Resolver(inner)) => {
                match inner.downcast::<DestinationError>() {
                    Ok(refusal) => (*refusal).into(),
                    Err(_) => WebhookSendError::Failed(format!("cannot resolve {host}")),
                }
            }
            SendRequestError::Connect(ConnectError::NoRecords) => {
                WebhookSendError::Failed(format!("cannot resolve {host}"))
            }
            SendRequestError::Connect(ConnectError::Timeout) | SendRequestError::Timeout => {
                WebhookSendError::Timeout(self.config.timeout)
            }
            SendRequestError::Connect(ConnectError::Io(io)) => {
                WebhookSendError::Failed(format!("cannot connect to {host}: {io}"))
            }
            SendRequestError::Connect(other) => {
                WebhookSendError::Failed(format!("cannot connect to {host}: {other}"))
            }
            SendRequestError::Send(io) => {
                WebhookSendError::Failed(format!("sending to {host} failed: {io}"))
            }
            SendRequestError::Response(parse) => {
                WebhookSendError::Failed(format!("invalid response from {host}: {parse}"))
            }
            other => WebhookSendError::Failed(format!("request to {host} failed: {other}")),
        }
    }
}

fn payload_error(error: PayloadError) -> WebhookSendError {
    WebhookSendError::Failed(format!("reading the response failed: {error}"))
}

/// rustls with the webpki roots and an explicit crypto provider: asking rustls for the
/// process default would panic when the build links more than one provider.
fn tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("the ring provider supports the default TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config
}

impl ports::WebhookSender for AwcWebhookSender {
    fn vet<'a>(&'a self, url: &'a str) -> LocalBoxFuture<'a, Result<(), WebhookSendError>> {
        Box::pin(async move {
            let destination = self.check(url)?;
            if destination.literal.is_none() {
                // At most so many look-ups at once, whoever asks: slow names cannot pile
                // up (each holds a slot for up to VET_RESOLVE_TIMEOUT).
                let _slot = tokio::time::timeout(VET_SLOT_WAIT, self.vet_slots.0.acquire())
                    .await
                    .map_err(|_| WebhookSendError::Busy)?
                    .map_err(|_| WebhookSendError::Busy)?;
                // A registration must not hang on a slow resolver: a name that does not
                // answer in time is treated like one that does not resolve yet (the
                // caller accepts it; every connection checks again).
                tokio::time::timeout(
                    VET_RESOLVE_TIMEOUT,
                    self.guard.resolve(&destination.host, destination.port),
                )
                .await
                .map_err(|_| WebhookSendError::Timeout(VET_RESOLVE_TIMEOUT))??;
            }
            Ok(())
        })
    }

    fn send<'a>(
        &'a self,
        webhook: &'a OutgoingWebhook,
    ) -> LocalBoxFuture<'a, Result<WebhookReply, WebhookSendError>> {
        Box::pin(async move {
            let destination = self.check(&webhook.url)?;
            // awc's own timeouts cover connecting and waiting for the response head, not
            // reading the body: this one bounds the whole exchange.
            tokio::time::timeout(self.config.timeout, self.exchange(&destination, webhook))
                .await
                .unwrap_or(Err(WebhookSendError::Timeout(self.config.timeout)))
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::ErrorKind;
    use std::net::{SocketAddr, TcpListener};

    use super::*;

    /// Asks awc's client directly, past the sender's own checks, so only the connector's
    /// guard stands between the request and the listener.
    async fn connect_directly(
        sender: &AwcWebhookSender,
        url: &str,
        address: Option<SocketAddr>,
    ) -> Result<u16, SendRequestError> {
        let mut request = sender.client.post(url);
        if let Some(address) = address {
            request = request.address(address);
        }
        request
            .send_body(b"{}".to_vec())
            .await
            .map(|response| response.status().as_u16())
    }

    fn assert_refused_by_the_guard(result: Result<u16, SendRequestError>) {
        match result {
            Err(SendRequestError::Connect(ConnectError::Resolver(inner))) => assert!(
                matches!(
                    inner.downcast_ref::<DestinationError>(),
                    Some(DestinationError::Refused(_))
                ),
                "{inner}"
            ),
            other => panic!("expected a refusal from the connector, got {other:?}"),
        }
    }

    fn assert_nobody_connected(listener: &TcpListener) {
        match listener.accept() {
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            other => panic!("the listener was reached: {other:?}"),
        }
    }

    #[actix_rt::test]
    async fn the_connector_refuses_forbidden_addresses_even_without_the_sender_checks() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let port = listener.local_addr().expect("address").port();
        let sender = AwcWebhookSender::new(SenderConfig {
            allow_http: true,
            ..SenderConfig::default()
        });

        // An IP literal, which awc never hands to the resolver.
        assert_refused_by_the_guard(
            connect_directly(&sender, &format!("http://127.0.0.1:{port}/"), None).await,
        );
        // A bracketed IPv6 literal.
        assert_refused_by_the_guard(
            connect_directly(&sender, &format!("http://[::1]:{port}/"), None).await,
        );
        // A name, resolved by the guarded resolver at connect time.
        assert_refused_by_the_guard(
            connect_directly(&sender, &format!("http://localhost:{port}/"), None).await,
        );
        // An address given up front: a public-looking name cannot smuggle in a private one.
        let smuggled = SocketAddr::from(([127, 0, 0, 1], port));
        assert_refused_by_the_guard(
            connect_directly(&sender, "http://hooks.example.com/", Some(smuggled)).await,
        );

        assert_nobody_connected(&listener);
    }

    #[actix_rt::test]
    async fn registration_look_ups_beyond_the_bound_are_told_to_come_back() {
        use ports::WebhookSender as _;
        let slots = VetSlots::new(1);
        let sender = AwcWebhookSender::new(SenderConfig::default()).with_vet_slots(slots.clone());
        let other_thread =
            AwcWebhookSender::new(SenderConfig::default()).with_vet_slots(slots.clone());
        // Another sender sharing the bound is in a (slow) look-up: it holds the only slot.
        let held = slots.0.clone().acquire_owned().await.expect("a slot");
        assert_eq!(slots.available(), 0);
        let started = Instant::now();
        assert_eq!(
            sender.vet("https://hooks.example.com/in").await,
            Err(WebhookSendError::Busy)
        );
        assert!(
            started.elapsed() >= VET_SLOT_WAIT,
            "it waited briefly first"
        );
        assert!(started.elapsed() < VET_SLOT_WAIT * 4, "and not for long");
        // A literal needs no look-up, so no slot: it is judged at once.
        assert!(matches!(
            other_thread.vet("https://10.0.0.1/in").await,
            Err(WebhookSendError::Refused(_))
        ));
        assert!(other_thread.vet("https://8.8.8.8/in").await.is_ok());
        drop(held);
        // With the slot back, the name is looked up (and may not resolve here: accepted
        // by the caller either way, but never Busy).
        assert_ne!(
            sender.vet("https://hooks.example.com/in").await,
            Err(WebhookSendError::Busy)
        );
        assert_eq!(
            slots.available(),
            1,
            "the slot is returned after the look-up"
        );
    }

    #[test]
    fn the_defaults_are_the_production_ones() {
        let config = SenderConfig::default();
        assert!(!config.allow_private);
        assert!(!config.allow_http);
        assert_eq!(config.timeout, Duration::from_secs(15));
        assert_eq!(config.max_body, 1024);
    }
}
