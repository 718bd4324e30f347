//! Issue 12 point 4 (SPEC §8): graceful drain of the real `crm serve` binary. On SIGTERM
//! it stops accepting at once, lets a request already in flight (its body still
//! arriving) finish with its 201, lets the webhook delivery in flight finish and be
//! recorded, and exits 0 within a bounded time.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{scalar_i64, spawn_app};
use crate::webhooks::{Receiver, crm_binary, subscribe, write_event};

/// `crm serve` on the test database, on a free port, delivering webhooks itself; its
/// JSON log lines arrive on the returned channel.
fn crm_serve(app_url: &str, worker_url: &str) -> (Child, mpsc::Receiver<Value>) {
    let binary = crm_binary();
    let mut child = Command::new(&binary)
        .arg("serve")
        .env("DATABASE_URL", app_url)
        .env("WORKER_DATABASE_URL", worker_url)
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("HTTP_WORKERS", "1")
        .env("SHUTDOWN_TIMEOUT_SECS", "10")
        .env("WEBHOOK_DELIVER_IN_SERVE", "true")
        .env("WEBHOOK_ALLOW_PRIVATE", "true")
        .env("WEBHOOK_ALLOW_HTTP", "true")
        .env("WEBHOOK_TIMEOUT_MS", "15000")
        .env("WEBHOOK_POLL_INTERVAL_MS", "50")
        .env("RUST_LOG", "info")
        .env_remove("LOG_FORMAT")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{} starts ({e}); cargo build builds it", binary.display()));
    let stderr = child.stderr.take().expect("stderr piped");
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && lines.send(value).is_err()
            {
                return;
            }
        }
    });
    (child, received)
}

/// The next log line whose message contains `text` (within 20 s).
async fn log_line(lines: &mpsc::Receiver<Value>, text: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match lines.try_recv() {
            Ok(line) if line["message"].as_str().is_some_and(|m| m.contains(text)) => return line,
            Ok(_) => {}
            Err(mpsc::TryRecvError::Empty) => {
                assert!(Instant::now() < deadline, "no log line `{text}`");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(mpsc::TryRecvError::Disconnected) => panic!("crm serve ended before `{text}`"),
        }
    }
}

#[actix_rt::test]
async fn sigterm_drains_the_request_and_the_delivery_in_flight_then_exits_zero() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    // The delivery takes 2 s at the receiver, so it is in flight when the signal comes.
    let receiver = Receiver::start_slow(vec![(200, 2_000)]);
    let _subscription = subscribe(&app, &acme.key, &receiver.url, json!(["*"])).await;
    let (mut child, lines) = crm_serve(&app.db.app_url, &app.db.worker_url);
    let serving = log_line(&lines, "serving").await;
    let address = serving["address"].as_str().expect("the address").to_owned();

    // A request in flight: its connection is served (one request answered on it), its
    // POST's head and half its body sent, the rest still to come.
    let mut slow = TcpStream::connect(&address).await.expect("connect");
    slow.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut answer = [0_u8; 1024];
    let read = slow.read(&mut answer).await.expect("healthz answered");
    assert!(
        answer[..read].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&answer[..read])
    );
    let body = json!({"firstName": "Drained", "lastName": "Request"}).to_string();
    let (first_half, second_half) = body.split_at(body.len() / 2);
    slow.write_all(
        format!(
            "POST /v1/contacts HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{first_half}",
            acme.key,
            body.len()
        )
        .as_bytes(),
    )
    .await
    .expect("write the head and half the body");

    write_event(&app, &acme.id, "InFlight").await;
    receiver.wait_for(1).await;

    // SIGTERM, with the request and the delivery in flight.
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(terminated.success());
    let signalled = Instant::now();
    log_line(&lines, "draining").await;
    // New connections are refused once the listener is closed.
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(&address).await.is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting 5 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The request in flight completes with its 201.
    slow.write_all(second_half.as_bytes())
        .await
        .expect("write the rest of the body");
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut response))
        .await
        .expect("the answer within 10 s")
        .expect("read the answer");
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");

    // Then the process exits 0, within the bound.
    let exit = loop {
        if let Some(status) = child.try_wait().expect("status") {
            break status;
        }
        if signalled.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            panic!("crm serve still running 15 s after SIGTERM");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let drained = signalled.elapsed();
    assert!(exit.success(), "{exit:?}");
    eprintln!("drain: exited 0 {drained:?} after SIGTERM");

    // The delivery in flight was finished and recorded before the exit: what the
    // database holds now is final.
    let log: Vec<Value> = lines.try_iter().collect();
    let owner = app.db.owner().await;
    let delivery_of = |first_name: &str, status: &str, attempts: i32| {
        format!(
            "SELECT count(*) FROM webhook_deliveries d JOIN events e ON e.seq = d.event_seq \
              WHERE e.object ->> 'first_name' = '{first_name}' AND d.status = '{status}' \
                AND d.attempts = {attempts}"
        )
    };
    assert_eq!(
        scalar_i64(&owner, &delivery_of("InFlight", "succeeded", 1)).await,
        1,
        "the delivery in flight is recorded; crm serve logged {log:#?}"
    );
    // The drained request's own event is owed to the next process: no pass started after
    // the signal.
    assert_eq!(
        scalar_i64(&owner, &delivery_of("Drained", "pending", 0)).await,
        1,
        "the drained request's delivery waits, unattempted; crm serve logged {log:#?}"
    );
    assert_eq!(receiver.all().len(), 1);
    assert_eq!(
        scalar_i64(
            &owner,
            "SELECT count(*) FROM contacts WHERE first_name = 'Drained'"
        )
        .await,
        1,
        "the drained request's write is stored"
    );
}
