//! The `/login/qr` page in a real headless Chromium, driven over the DevTools protocol:
//! the page shows a QR code, a logged-in "phone" scans and links it through the API, and
//! the page says it is logged in with a session that works.
//!
//! Needs Chromium: `make test` installs Debian's package (`scripts/ensure-chromium.sh`) and
//! exports `CHROMIUM`; without it this test fails with that advice rather than passing.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

/// A headless Chromium killed on drop.
struct Browser {
    child: Child,
    devtools_port: u16,
    _profile: TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory removed on drop (Chromium's throwaway profile).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn launch() -> Browser {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".to_owned());
    let profile =
        std::env::temp_dir().join(format!("crm-chromium-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&profile).expect("profile dir");
    let mut child = Command::new(&binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("about:blank")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start `{binary}` ({e}): run `make test`, which installs chromium, or set CHROMIUM"));
    let stderr = child.stderr.take().expect("stderr piped");
    let mut lines = BufReader::new(stderr).lines();
    let started = Instant::now();
    let port = loop {
        let line = lines
            .next()
            .and_then(Result::ok)
            .unwrap_or_else(|| panic!("chromium exited before listening"));
        if let Some(rest) = line.split("DevTools listening on ws://127.0.0.1:").nth(1) {
            break rest
                .split('/')
                .next()
                .and_then(|p| p.parse::<u16>().ok())
                .expect("a port");
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromium did not start in 30 s"
        );
    };
    // Keep draining stderr so Chromium never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Browser {
        child,
        devtools_port: port,
        _profile: TempDir(profile),
    }
}

/// A DevTools session with one page.
struct Page {
    socket: actix_codec::Framed<awc::BoxedSocket, ws::Codec>,
    next_id: u64,
}

impl Page {
    async fn open(browser: &Browser) -> Self {
        let client = awc::Client::default();
        let mut targets = client
            .get(format!(
                "http://127.0.0.1:{}/json/list",
                browser.devtools_port
            ))
            .send()
            .await
            .expect("devtools answers");
        let targets: Value = targets.json().await.expect("target list");
        let url = targets
            .as_array()
            .and_then(|list| list.iter().find(|t| t["type"] == "page"))
            .and_then(|t| t["webSocketDebuggerUrl"].as_str())
            .expect("a page target")
            .to_owned();
        let (_, socket) = client
            .ws(url)
            .max_frame_size(16 * 1024 * 1024)
            .connect()
            .await
            .expect("devtools socket");
        Self { socket, next_id: 0 }
    }

    /// Sends one command and waits for its answer (events in between are skipped).
    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(ws::Message::Text(message.into()))
            .await
            .expect("send");
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(20), self.socket.next())
                .await
                .expect("devtools answers in time")
                .expect("socket open")
                .expect("a frame");
            let bytes: Bytes = match frame {
                ws::Frame::Text(bytes) | ws::Frame::Binary(bytes) => bytes,
                _ => continue,
            };
            let reply: Value = serde_json::from_slice(&bytes).expect("JSON from devtools");
            if reply["id"] == id {
                assert!(reply.get("error").is_none(), "{method} failed: {reply}");
                return reply["result"].clone();
            }
        }
    }

    async fn eval(&mut self, expression: &str) -> Value {
        let result = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        result["result"]["value"].clone()
    }

    /// Evaluates `expression` until it yields a non-empty string, then returns it.
    async fn wait_for(&mut self, expression: &str, what: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(value) = self
                .eval(expression)
                .await
                .as_str()
                .filter(|v| !v.is_empty())
            {
                return value.to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[actix_rt::test]
async fn the_qr_login_page_logs_a_browser_in_after_a_real_scan_and_link() {
    let app = spawn_app().await;
    let signup = app
        .call(
            "POST",
            "/v1/auth/signup",
            None,
            Some(&json!({"tenantName": "Acme", "name": "Ada", "email": "ada@example.com", "password": "correct horse battery"})),
            &[],
        )
        .await;
    let phone = signup.body["data"]["session"]["token"]
        .as_str()
        .expect("phone session")
        .to_owned();
    let phone_user = signup.body["data"]["user"]["id"]
        .as_str()
        .expect("user")
        .to_owned();

    let browser = launch();
    let mut page = Page::open(&browser).await;
    page.call(
        "Page.navigate",
        json!({"url": format!("{}/login/qr", app.address)}),
    )
    .await;
    let code = page
        .wait_for(
            "document.getElementById('code').textContent",
            "the QR code on the page",
        )
        .await;
    assert!(
        code.starts_with("crm_qr_"),
        "the page shows the code: {code}"
    );
    let svg = page
        .eval("document.querySelector('#qr svg') !== null")
        .await;
    assert_eq!(svg, Value::Bool(true), "the page shows the QR image");
    assert_eq!(
        page.eval("document.getElementById('status').dataset.status")
            .await,
        "pending"
    );

    let scanned = app
        .post("/v1/auth/qr-session/scan", &phone, &json!({"code": code}))
        .await;
    assert_eq!(scanned.status, 200, "{}", scanned.body);
    assert!(
        scanned.body["data"]["requester"]["userAgent"]
            .as_str()
            .is_some_and(|ua| ua.contains("Chrome")),
        "the phone sees which browser asks: {}",
        scanned.body
    );
    let session = scanned.body["data"]["sessionId"]
        .as_str()
        .expect("id")
        .to_owned();
    let linked = app
        .post(
            "/v1/auth/qr-session/link",
            &phone,
            &json!({"sessionId": session}),
        )
        .await;
    assert_eq!(linked.status, 200, "{}", linked.body);

    let status = page
        .wait_for(
            "document.getElementById('status').dataset.status === 'logged-in' ? 'logged-in' : ''",
            "the page to say it is logged in",
        )
        .await;
    assert_eq!(status, "logged-in");
    let who = page
        .wait_for(
            "(document.getElementById('who') || {}).textContent || ''",
            "the page to say whose session it is",
        )
        .await;
    assert!(
        who.contains("ada@example.com") && who.contains("Acme"),
        "the device shows who logged it in: {who}"
    );
    let token = page.eval("sessionStorage.getItem('crm.session')").await;
    let token = token.as_str().expect("the page kept the session token");
    let me = app.get("/v1/me", token).await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.body["data"]["user"]["id"],
        phone_user.as_str(),
        "the browser is logged in as the phone's user"
    );
}
