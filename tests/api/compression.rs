//! Request decompression cannot amplify (issue 11, point 9): a compressed request body is
//! refused with 415 before a byte of it is read, on every route and in every spelling,
//! with or without `Idempotency-Key`, and twenty gzip bombs at once leave the server's
//! memory where it was. The server runs in this process, so its RSS is ours.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use actix_web::web::Bytes;
use flate2::{Compress, Compression, Crc, FlushCompress};
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app};

const MIB: usize = 1024 * 1024;

/// Raw deflate of `len` zeros, continuing `compressor`'s stream, ending on a byte boundary
/// (`Sync`) or the final block (`Finish`).
fn deflate_zeros(compressor: &mut Compress, len: usize, flush: FlushCompress) -> Vec<u8> {
    let zeros = vec![0_u8; len];
    let mut out = Vec::with_capacity(len / 512 + 64);
    let start = compressor.total_in();
    loop {
        let consumed = usize::try_from(compressor.total_in() - start).expect("fits");
        compressor
            .compress_vec(&zeros[consumed..], &mut out, flush)
            .expect("deflate");
        let done = usize::try_from(compressor.total_in() - start).expect("fits") == len;
        // A full output buffer may hide more output: only a spare byte proves we are done.
        if done && out.len() < out.capacity() {
            return out;
        }
        out.reserve(4096);
    }
}

/// A valid gzip member that inflates to `units` × 4 MiB of zeros.
///
/// Deflating a whole GiB in an unoptimised test build takes a minute, so one 4 MiB unit
/// is deflated after a sync flush, when the window is already all zeros: from then on
/// every further unit deflates to the same bytes and is repeated. The CRC of the whole is
/// combined from the unit's. 256 units: 1 GiB inflated from 1 045 269 bytes, just under
/// the 1 MiB body limit, so the bomb is not stopped by size alone.
fn gzip_bomb(units: usize) -> Vec<u8> {
    const UNIT: usize = 4 * MIB;
    let mut compressor = Compress::new(Compression::best(), false);
    let first = deflate_zeros(&mut compressor, UNIT, FlushCompress::Sync);
    let repeated = deflate_zeros(&mut compressor, UNIT, FlushCompress::Sync);
    let last = deflate_zeros(&mut compressor, 0, FlushCompress::Finish);
    let mut unit_crc = Crc::new();
    unit_crc.update(&vec![0_u8; UNIT]);
    let mut crc = Crc::new();
    for _ in 0..units {
        crc.combine(&unit_crc);
    }
    // RFC 1952 header: magic, CM=deflate, no flags, no mtime, XFL=max, OS=unix.
    let mut bomb = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 3];
    bomb.extend_from_slice(&first);
    for _ in 1..units {
        bomb.extend_from_slice(&repeated);
    }
    bomb.extend_from_slice(&last);
    bomb.extend_from_slice(&crc.sum().to_le_bytes());
    bomb.extend_from_slice(&(crc.amount()).to_le_bytes());
    bomb
}

/// POSTs raw `body` with `headers` (appended, so a name may repeat).
async fn send(
    app: &TestApp,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Reply {
    let mut request = app
        .client
        .post(format!("{}{path}", app.address))
        .insert_header(("Content-Type", "application/json"));
    if let Some(key) = key {
        request = request.insert_header(("Authorization", format!("Bearer {key}")));
    }
    for (name, value) in headers {
        request = request.append_header((*name, *value));
    }
    let mut response = request.send_body(body).await.expect("request sent");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.body().limit(MIB).await.expect("body read");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("body is JSON: {}", String::from_utf8_lossy(&bytes)))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// The refusal: 415 in the envelope, `X-Request-Id` equal to `metadata.requestId`, and
/// `Accept-Encoding: identity` saying what would be accepted (RFC 7694).
fn assert_refused(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 415, "{what}: {}", reply.body);
    assert_eq!(reply.code(), "UNSUPPORTED_MEDIA_TYPE", "{what}");
    assert_eq!(
        reply.header("x-request-id").as_deref(),
        reply.body["metadata"]["requestId"].as_str(),
        "{what}: header and envelope carry the same request id"
    );
    assert_eq!(
        reply.header("accept-encoding").as_deref(),
        Some("identity"),
        "{what}"
    );
}

fn contact(name: &str) -> Bytes {
    Bytes::from(json!({ "firstName": name }).to_string())
}

/// A `/proc/self/status` figure in KiB (`VmRSS`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

#[test]
fn the_test_bomb_is_a_valid_gzip_stream_of_the_stated_size() {
    use std::io::Read as _;
    let bomb = gzip_bomb(3);
    let mut inflated = Vec::new();
    flate2::read::GzDecoder::new(bomb.as_slice())
        .read_to_end(&mut inflated)
        .expect("a valid gzip stream, CRC and length included");
    assert_eq!(inflated.len(), 12 * MIB);
    assert!(inflated.iter().all(|&b| b == 0));
    let full = gzip_bomb(256);
    assert!(
        full.len() <= MIB,
        "the 1 GiB bomb fits the 1 MiB limit: {} bytes",
        full.len()
    );
}

#[actix_rt::test]
async fn a_gzip_bomb_posted_to_contacts_is_refused_before_it_is_read() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let bomb = Bytes::from(gzip_bomb(256));
    let reply = send(
        &app,
        "/v1/contacts",
        Some(&acme.key),
        &[("Content-Encoding", "gzip"), ("X-Request-Id", "bomb-1")],
        bomb,
    )
    .await;
    assert_refused(&reply, "gzip bomb");
    assert_eq!(reply.header("x-request-id").as_deref(), Some("bomb-1"));
    assert_eq!(app.contact_rows().await, 0);
}

#[actix_rt::test]
async fn a_gzip_bomb_with_an_idempotency_key_is_refused_and_claims_no_key() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let bomb = Bytes::from(gzip_bomb(256));
    let reply = send(
        &app,
        "/v1/contacts",
        Some(&acme.key),
        &[("Content-Encoding", "gzip"), ("Idempotency-Key", "bomb-42")],
        bomb,
    )
    .await;
    assert_refused(&reply, "gzip bomb with Idempotency-Key");
    assert_eq!(reply.header("idempotent-replayed"), None);

    // The key was never claimed: the same key with a plain body is a first request.
    let retry = send(
        &app,
        "/v1/contacts",
        Some(&acme.key),
        &[("Idempotency-Key", "bomb-42")],
        contact("Ada"),
    )
    .await;
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert_eq!(retry.header("idempotent-replayed"), None);
    assert_eq!(app.contact_rows().await, 1);
}

#[actix_rt::test]
async fn every_spelling_of_a_compressed_body_is_refused_on_every_route() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let bomb = Bytes::from(gzip_bomb(16));
    let spellings: &[&[(&str, &str)]] = &[
        &[("Content-Encoding", "GZIP")],
        &[("Content-Encoding", " gzip ")],
        &[("Content-Encoding", "x-gzip")],
        &[("Content-Encoding", "deflate")],
        &[("Content-Encoding", "br")],
        &[("Content-Encoding", "zstd")],
        &[("Content-Encoding", "compress")],
        &[("Content-Encoding", "gzip, identity")],
        &[("Content-Encoding", "identity, gzip")],
        &[("Content-Encoding", "identity,,gzip")],
        &[("Content-Encoding", "identity;q=1")],
        &[
            ("Content-Encoding", "identity"),
            ("Content-Encoding", "gzip"),
        ],
        &[
            ("Content-Encoding", "gzip"),
            ("Content-Encoding", "identity"),
        ],
        &[("Content-Encoding", "gzip"), ("Idempotency-Key", "spelled")],
    ];
    for headers in spellings {
        let reply = send(&app, "/v1/contacts", Some(&acme.key), headers, bomb.clone()).await;
        assert_refused(&reply, &format!("{headers:?}"));
    }
    // Routes that read a body before or without a credential, and credentials that fail.
    let gzip: &[(&str, &str)] = &[("Content-Encoding", "gzip")];
    for (path, key) in [
        ("/v1/auth/signup", None),
        ("/v1/auth/login", None),
        ("/v1/contacts", Some("crm_sk_not_a_real_key")),
        ("/v1/contacts", None),
        ("/v1/contacts/batch", Some(acme.key.as_str())),
        ("/v1/no-such-route", Some(acme.key.as_str())),
    ] {
        let reply = send(&app, path, key, gzip, bomb.clone()).await;
        assert_refused(&reply, path);
    }
    assert_eq!(app.contact_rows().await, 0);
}

#[actix_rt::test]
async fn identity_or_no_content_encoding_is_accepted() {
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let cases: &[(&str, &[(&str, &str)])] = &[
        ("none", &[]),
        ("identity", &[("Content-Encoding", "identity")]),
        ("IDENTITY", &[("Content-Encoding", " IDENTITY ")]),
        (
            "identity twice",
            &[
                ("Content-Encoding", "identity"),
                ("Content-Encoding", "identity"),
            ],
        ),
        (
            "identity with a key",
            &[
                ("Content-Encoding", "identity"),
                ("Idempotency-Key", "plain-1"),
            ],
        ),
    ];
    for (index, (what, headers)) in cases.iter().enumerate() {
        let reply = send(
            &app,
            "/v1/contacts",
            Some(&acme.key),
            headers,
            contact(&format!("Ada {index}")),
        )
        .await;
        assert_eq!(reply.status, 201, "{what}: {}", reply.body);
    }
    assert_eq!(app.contact_rows().await, 5);
}

#[actix_rt::test]
async fn twenty_concurrent_gzip_bombs_leave_the_server_rss_flat() {
    const BOMBS: usize = 20;
    const ALLOWED_GROWTH_KIB: u64 = 64 * 1024;
    let app = spawn_app().await;
    let acme = app.tenant("Acme").await;
    let bomb = Bytes::from(gzip_bomb(256));
    let gzip: &[(&str, &str)] = &[("Content-Encoding", "gzip")];
    // Warm up the connection pools and buffers so they do not count as growth.
    let warm = send(&app, "/v1/contacts", Some(&acme.key), gzip, bomb.clone()).await;
    assert_refused(&warm, "warm-up");

    // Reset the peak (VmHWM) to the current RSS; sample as well, in case that is refused.
    let hwm_reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS");
    let peak = Arc::new(AtomicU64::new(before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(status_kib("VmRSS"), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };
    let keys: Vec<String> = (0..BOMBS).map(|i| format!("bomb-{i}")).collect();
    let requests = keys.iter().enumerate().map(|(i, idempotency_key)| {
        let bomb = bomb.clone();
        let (app, key) = (&app, acme.key.as_str());
        async move {
            // Half go through the idempotency middleware, which reads the body itself.
            let with_key = [
                ("Content-Encoding", "gzip"),
                ("Idempotency-Key", idempotency_key.as_str()),
            ];
            let headers: &[(&str, &str)] = if i % 2 == 0 { &with_key } else { gzip };
            send(app, "/v1/contacts", Some(key), headers, bomb).await
        }
    });
    let replies = futures_util::future::join_all(requests).await;
    stop.store(true, Ordering::Relaxed);
    sampler.join().expect("sampler");
    let after = status_kib("VmRSS");
    let sampled_peak = peak.load(Ordering::Relaxed);
    let peak = if hwm_reset {
        sampled_peak.max(status_kib("VmHWM"))
    } else {
        sampled_peak
    };

    for (i, reply) in replies.iter().enumerate() {
        assert_refused(reply, &format!("bomb {i}"));
    }
    println!(
        "{BOMBS} concurrent 1 GiB gzip bombs ({} bytes each): RSS before {before} KiB, \
         peak {peak} KiB (+{} KiB), after {after} KiB (+{} KiB); VmHWM reset: {hwm_reset}",
        bomb.len(),
        peak.saturating_sub(before),
        after.saturating_sub(before),
    );
    assert!(
        peak.saturating_sub(before) < ALLOWED_GROWTH_KIB,
        "peak RSS grew by {} KiB",
        peak.saturating_sub(before)
    );
    assert!(
        after.saturating_sub(before) < ALLOWED_GROWTH_KIB,
        "RSS grew by {} KiB",
        after.saturating_sub(before)
    );
    assert_eq!(app.contact_rows().await, 0);
}
