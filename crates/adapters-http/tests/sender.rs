//! The webhook sender against a real receiver on 127.0.0.1: what arrives, how replies are
//! read, and that the SSRF guard keeps the sender away from addresses it must not reach.
//! Nothing here leaves the loopback interface; the private addresses in the SSRF cases are
//! refused before any connection is tried.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use adapters_http::{AwcWebhookSender, SenderConfig};
use ports::{OutgoingWebhook, WebhookSendError, WebhookSender as _};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

type Log = Arc<Mutex<Vec<Received>>>;

/// A local webhook receiver whose routes play the receivers a sender meets.
struct Receiver {
    address: SocketAddr,
    log: Log,
    handle: ServerHandle,
}

impl Receiver {
    async fn start() -> Self {
        let log = Log::default();
        let shared = web::Data::new(log.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(shared.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind the receiver");
        let address = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            address,
            log,
            handle,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn port(&self) -> u16 {
        self.address.port()
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().expect("log lock").clone()
    }

    fn paths(&self) -> Vec<String> {
        self.received().into_iter().map(|r| r.path).collect()
    }

    async fn stop(self) {
        self.handle.stop(false).await;
    }
}

async fn receive(request: HttpRequest, body: web::Bytes, log: web::Data<Log>) -> HttpResponse {
    log.lock().expect("log lock").push(Received {
        path: request.path().to_owned(),
        headers: request
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    value.to_str().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    });
    match request.path() {
        "/hook" | "/target" => HttpResponse::Ok().body("thanks"),
        "/fail" => HttpResponse::InternalServerError().body("boom"),
        "/gone" => HttpResponse::Gone().finish(),
        "/busy" => HttpResponse::TooManyRequests()
            .insert_header(("Retry-After", "7"))
            .finish(),
        "/redirect" => HttpResponse::Found()
            .insert_header(("Location", "/target"))
            .finish(),
        "/slow" => {
            actix_rt::time::sleep(Duration::from_secs(3)).await;
            HttpResponse::Ok().body("late")
        }
        "/huge" => HttpResponse::Ok().body(vec![b'x'; 64 * 1024]),
        _ => HttpResponse::NotFound().finish(),
    }
}

fn local_config() -> SenderConfig {
    SenderConfig {
        allow_private: true,
        allow_http: true,
        ..SenderConfig::default()
    }
}

fn guarded_config() -> SenderConfig {
    SenderConfig {
        allow_private: false,
        allow_http: true,
        ..SenderConfig::default()
    }
}

fn webhook(url: String) -> OutgoingWebhook {
    OutgoingWebhook {
        url,
        headers: vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("webhook-id".to_owned(), "msg_1".to_owned()),
            ("webhook-signature".to_owned(), "v1,c2lnbmF0dXJl".to_owned()),
        ],
        body: br#"{"type":"contact.created","data":{"id":"c1"}}"#.to_vec(),
    }
}

fn header<'a>(received: &'a Received, name: &str) -> Option<&'a str> {
    received
        .headers
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

#[actix_rt::test]
async fn the_receiver_gets_exactly_the_body_and_headers_sent() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(local_config());
    let outgoing = webhook(receiver.url("/hook"));

    let reply = sender.send(&outgoing).await.expect("delivered");

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, "thanks");
    assert_eq!(reply.retry_after, None);
    assert!(reply.latency > Duration::ZERO);
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].path, "/hook");
    assert_eq!(received[0].body, outgoing.body);
    for (name, value) in &outgoing.headers {
        assert_eq!(header(&received[0], name), Some(value.as_str()), "{name}");
    }
    assert_eq!(header(&received[0], "user-agent"), Some("crm-webhooks/1"));
    receiver.stop().await;
}

#[actix_rt::test]
async fn error_statuses_are_replies_not_failures() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(local_config());

    let failed = sender
        .send(&webhook(receiver.url("/fail")))
        .await
        .expect("a reply");
    let gone = sender
        .send(&webhook(receiver.url("/gone")))
        .await
        .expect("a reply");

    assert_eq!(failed.status, 500);
    assert_eq!(failed.body, "boom");
    assert_eq!(gone.status, 410);
    receiver.stop().await;
}

#[actix_rt::test]
async fn a_redirect_is_returned_as_is_and_not_followed() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(local_config());

    let reply = sender
        .send(&webhook(receiver.url("/redirect")))
        .await
        .expect("a reply");

    assert_eq!(reply.status, 302);
    assert_eq!(receiver.paths(), vec!["/redirect".to_owned()]);
    receiver.stop().await;
}

#[actix_rt::test]
async fn retry_after_in_seconds_is_parsed() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(local_config());

    let reply = sender
        .send(&webhook(receiver.url("/busy")))
        .await
        .expect("a reply");

    assert_eq!(reply.status, 429);
    assert_eq!(reply.retry_after, Some(Duration::from_secs(7)));
    receiver.stop().await;
}

#[actix_rt::test]
async fn a_slow_receiver_times_out() {
    let receiver = Receiver::start().await;
    let timeout = Duration::from_millis(300);
    let sender = AwcWebhookSender::new(SenderConfig {
        timeout,
        ..local_config()
    });
    let started = Instant::now();

    let result = sender.send(&webhook(receiver.url("/slow"))).await;

    assert!(
        matches!(result, Err(WebhookSendError::Timeout(limit)) if limit == timeout),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    receiver.stop().await;
}

#[actix_rt::test]
async fn a_large_response_body_is_cut_at_the_cap() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(local_config());

    let reply = sender
        .send(&webhook(receiver.url("/huge")))
        .await
        .expect("a reply");

    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), 1024);
    assert!(reply.body.bytes().all(|byte| byte == b'x'));
    receiver.stop().await;
}

#[actix_rt::test]
async fn private_and_reserved_destinations_are_refused_by_vet_and_send() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(guarded_config());
    let port = receiver.port();
    let urls = [
        format!("http://127.0.0.1:{port}/hook"),
        "http://10.0.0.1/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        format!("http://[::1]:{port}/hook"),
        format!("http://[::ffff:127.0.0.1]:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ];

    for url in urls {
        let vetted = sender.vet(&url).await;
        assert!(
            matches!(vetted, Err(WebhookSendError::Refused(_))),
            "vet {url}: {vetted:?}"
        );
        let sent = sender.send(&webhook(url.clone())).await;
        assert!(
            matches!(sent, Err(WebhookSendError::Refused(_))),
            "send {url}: {sent:?}"
        );
    }

    assert!(receiver.received().is_empty(), "{:?}", receiver.paths());
    receiver.stop().await;
}

#[actix_rt::test]
async fn a_refusal_names_the_forbidden_address() {
    let sender = AwcWebhookSender::new(guarded_config());

    let result = sender.vet("http://169.254.169.254/latest/meta-data").await;

    assert!(
        matches!(&result, Err(WebhookSendError::Refused(reason)) if reason.contains("169.254.169.254")),
        "{result:?}"
    );
}

#[actix_rt::test]
async fn local_receivers_pass_vet_when_private_addresses_are_allowed() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(local_config());

    assert!(sender.vet(&receiver.url("/hook")).await.is_ok());
    let by_name = format!("http://localhost:{}/hook", receiver.port());
    assert!(sender.vet(&by_name).await.is_ok());
    let reply = sender.send(&webhook(by_name)).await.expect("delivered");
    assert_eq!(reply.status, 200);
    receiver.stop().await;
}

#[actix_rt::test]
async fn http_is_refused_unless_allowed() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(SenderConfig {
        allow_private: true,
        ..SenderConfig::default()
    });

    let vetted = sender.vet(&receiver.url("/hook")).await;
    let sent = sender.send(&webhook(receiver.url("/hook"))).await;

    assert!(
        matches!(&vetted, Err(WebhookSendError::Refused(reason)) if reason.contains("https")),
        "{vetted:?}"
    );
    assert!(
        matches!(sent, Err(WebhookSendError::Refused(_))),
        "{sent:?}"
    );
    assert!(receiver.received().is_empty());
    receiver.stop().await;
}

#[actix_rt::test]
async fn https_passes_the_url_check() {
    let sender = AwcWebhookSender::new(SenderConfig {
        allow_private: true,
        ..SenderConfig::default()
    });

    let vetted = sender.vet("https://127.0.0.1:8443/hook").await;

    assert!(vetted.is_ok(), "{vetted:?}");
}

#[actix_rt::test]
async fn a_tls_failure_is_a_failure() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(SenderConfig {
        allow_private: true,
        timeout: Duration::from_secs(5),
        ..SenderConfig::default()
    });
    // The receiver speaks plain HTTP, so the TLS handshake cannot succeed.
    let url = format!("https://127.0.0.1:{}/hook", receiver.port());

    let result = sender.send(&webhook(url)).await;

    assert!(
        matches!(result, Err(WebhookSendError::Failed(_))),
        "{result:?}"
    );
    assert!(receiver.received().is_empty());
    receiver.stop().await;
}

#[actix_rt::test]
async fn credentials_in_the_url_are_refused() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(local_config());
    let url = format!("http://user:pass@{}/hook", receiver.address);

    let vetted = sender.vet(&url).await;
    let sent = sender.send(&webhook(url)).await;

    assert!(
        matches!(vetted, Err(WebhookSendError::Refused(_))),
        "{vetted:?}"
    );
    assert!(
        matches!(sent, Err(WebhookSendError::Refused(_))),
        "{sent:?}"
    );
    assert!(receiver.received().is_empty());
    receiver.stop().await;
}

#[actix_rt::test]
async fn a_closed_port_is_a_failure() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    let sender = AwcWebhookSender::new(local_config());

    let result = sender
        .send(&webhook(format!("http://127.0.0.1:{port}/hook")))
        .await;

    assert!(
        matches!(result, Err(WebhookSendError::Failed(_))),
        "{result:?}"
    );
}

#[actix_rt::test]
async fn an_unknown_scheme_or_malformed_url_is_refused() {
    let sender = AwcWebhookSender::new(local_config());

    for url in ["ftp://127.0.0.1/", "not a url", "http://"] {
        let result = sender.vet(url).await;
        assert!(
            matches!(result, Err(WebhookSendError::Refused(_))),
            "{url}: {result:?}"
        );
    }
}

#[actix_rt::test]
async fn an_invalid_header_is_a_failure_and_nothing_is_sent() {
    let receiver = Receiver::start().await;
    let sender = AwcWebhookSender::new(local_config());
    let mut outgoing = webhook(receiver.url("/hook"));
    outgoing
        .headers
        .push(("bad header".to_owned(), "x".to_owned()));

    let result = sender.send(&outgoing).await;

    assert!(
        matches!(result, Err(WebhookSendError::Failed(_))),
        "{result:?}"
    );
    assert!(receiver.received().is_empty());
    receiver.stop().await;
}
