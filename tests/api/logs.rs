//! One structured access-log line per request, from the real `crm serve` binary: the
//! route pattern, the tenant, how the caller authenticated and the database time.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::TestDb;
use crate::webhooks::crm_binary;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[actix_rt::test]
async fn each_request_logs_its_route_pattern_credential_kind_and_database_time() {
    let db = TestDb::create().await;
    let made = server::create_tenant(&db.owner_url, "Acme", None)
        .await
        .expect("tenant");
    let key = made["apiKey"].as_str().expect("key").to_owned();
    let tenant = made["tenantId"].as_str().expect("tenant").to_owned();
    let port = free_port();
    let mut child = Command::new(crm_binary())
        .arg("serve")
        .env("DATABASE_URL", &db.app_url)
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env("WEBHOOK_DELIVER_IN_SERVE", "false")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("crm serve starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = awc::Client::default();
    let mut up = false;
    for _ in 0..100 {
        if client
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "crm serve answers /healthz");
    let id = uuid::Uuid::new_v4();
    let reply = client
        .get(format!("{base}/v1/contacts/{id}"))
        .insert_header(("Authorization", format!("Bearer {key}")))
        .send()
        .await
        .expect("request");
    assert_eq!(reply.status().as_u16(), 404);
    let anonymous = client
        .get(format!("{base}/v1/contacts"))
        .send()
        .await
        .expect("request");
    assert_eq!(anonymous.status().as_u16(), 401);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stderr = child.stderr.take().expect("stderr");
    let _ = child.wait();
    let lines: Vec<Value> = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .filter_map(|line| serde_json::from_str(&line).ok())
        .filter(|line: &Value| line["target"] == "crm::access")
        .collect();
    let keyed = lines
        .iter()
        .find(|l| l["route"] == "/v1/contacts/{id}")
        .unwrap_or_else(|| panic!("an access line for the GET: {lines:?}"));
    assert_eq!(keyed["credential"], "key");
    assert_eq!(keyed["tenant_id"], tenant.as_str());
    assert_eq!(keyed["status"], 404);
    assert_eq!(keyed["method"], "GET");
    assert!(
        keyed["db_ms"].as_f64().is_some_and(|ms| ms > 0.0),
        "the statements' time: {keyed}"
    );
    assert!(
        keyed["latency_ms"]
            .as_f64()
            .is_some_and(|ms| ms >= keyed["db_ms"].as_f64().unwrap_or(0.0))
    );
    assert!(
        !keyed.to_string().contains(&id.to_string()),
        "the pattern, never the path"
    );
    let none = lines
        .iter()
        .find(|l| l["route"] == "/v1/contacts" && l["status"] == 401)
        .expect("an access line for the anonymous GET");
    assert_eq!(none["credential"], "none");
    assert_eq!(none["db_ms"].as_f64(), Some(0.0));
}
