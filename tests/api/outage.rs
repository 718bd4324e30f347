//! Issue 12 point 2 (SPEC §10): readiness through a PostgreSQL restart. A private cluster
//! of its own (initialised from the machine's PostgreSQL binaries, on a free port, under
//! target/) is stopped and started again under a running server and a steady writer:
//! meanwhile `/readyz` and the API answer 503 `UNAVAILABLE` quickly, afterwards the server
//! serves again without a restart, and every acknowledged write is stored.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

use crate::helpers::{
    TestApp, TestDb, count, generous_limits, rewrite_url, serve_config, test_webhooks,
};

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.starts_with(b"0\n"))
}

/// A disposable PostgreSQL cluster, stopped and removed on drop.
struct PrivateCluster {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
}

/// `program args…` as the OS user `postgres` when we are root (initdb and the server
/// refuse to run as root), as ourselves otherwise.
fn as_postgres(program: &std::path::Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl PrivateCluster {
    fn start() -> Self {
        let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace")
            .to_path_buf();
        // The machine's server binaries, found (or installed) the way `make test` does.
        let bin = Command::new(repo.join("scripts/ensure-postgres.sh"))
            .arg("--bin-dir")
            .output()
            .expect("scripts/ensure-postgres.sh runs");
        assert!(bin.status.success(), "no PostgreSQL binaries");
        let bin = PathBuf::from(String::from_utf8_lossy(&bin.stdout).trim());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo.join("target"), PathBuf::from);
        let dir = target.join(format!("pg-outage-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let cluster = Self { dir, bin, port };
        if is_root() {
            let chown = Command::new("chown")
                .arg("postgres:")
                .arg(&cluster.dir)
                .status();
            assert!(
                chown.is_ok_and(|s| s.success()),
                "the cluster directory given to postgres"
            );
        }
        let initdb = as_postgres(&cluster.bin.join("initdb"))
            .arg("-D")
            .arg(&cluster.dir)
            .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"])
            .output()
            .expect("initdb runs");
        assert!(
            initdb.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&initdb.stderr)
        );
        let conf = format!(
            "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = ''\n\
             fsync = off\nfull_page_writes = off\n"
        );
        let mut existing =
            std::fs::read_to_string(cluster.dir.join("postgresql.conf")).expect("postgresql.conf");
        existing.push_str(&conf);
        std::fs::write(cluster.dir.join("postgresql.conf"), existing)
            .expect("postgresql.conf written");
        cluster.pg_ctl(&["start"]);
        cluster
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// `pg_ctl start|stop`, waiting for it to take effect.
    fn pg_ctl(&self, args: &[&str]) {
        let out = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.dir)
            .arg("-l")
            .arg(self.dir.join("server.log"))
            .args(["-w", "-t", "60"])
            .args(args)
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.dir)
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the steady writer saw of one request.
struct Outcome {
    started: Instant,
    took: Duration,
    status: u16,
    code: Option<String>,
    id: Option<String>,
}

#[actix_rt::test]
async fn the_api_answers_503_quickly_while_postgres_is_down_and_recovers_with_every_acknowledged_write()
 {
    let cluster = PrivateCluster::start();
    let admin = Database::connect(cluster.admin_url().as_str())
        .await
        .expect("connect to the private cluster");
    admin
        .execute_unprepared("CREATE DATABASE crm")
        .await
        .expect("create database");
    let _ = admin.close().await;
    let owner_url = rewrite_url(&cluster.admin_url(), "crm", None);
    adapters_postgres::migrate(&owner_url)
        .await
        .expect("migrations apply");
    // A TestDb naming the private cluster's database: its drop asks the shared server to
    // drop a database it does not have (a no-op); the cluster goes with `cluster`.
    let db = TestDb {
        name: format!("crm_outage_{}", uuid::Uuid::new_v4().simple()),
        app_url: rewrite_url(&owner_url, "crm", Some("crm_app")),
        worker_url: rewrite_url(&owner_url, "crm", Some("crm_worker")),
        owner_url,
    };
    let mut config = serve_config(&db, generous_limits(), test_webhooks());
    config.pool_size = 4;
    let running = server::start(&config).await.expect("server starts");
    let address = format!("http://{}", running.address);
    actix_rt::spawn(running.server);
    let app = TestApp {
        address,
        client: awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish(),
        db,
    };
    let acme = app.tenant("Acme").await;

    // The steady writer: one POST every 20 ms until told to stop.
    let outcomes: Rc<RefCell<Vec<Outcome>>> = Rc::default();
    let (stop_writing, stopped) = tokio::sync::watch::channel(false);
    let writer = {
        let outcomes = Rc::clone(&outcomes);
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(30))
            .finish();
        let url = format!("{}/v1/contacts", app.address);
        let key = acme.key.clone();
        actix_rt::spawn(async move {
            let mut n = 0_u32;
            while !*stopped.borrow() {
                n += 1;
                let started = Instant::now();
                let sent = client
                    .post(&url)
                    .insert_header(("Authorization", format!("Bearer {key}")))
                    .send_json(
                        &json!({"firstName": "Steady", "lastName": format!("Write {n}"),
                                       "email": format!("steady{n}@example.com")}),
                    )
                    .await;
                let Ok(mut response) = sent else {
                    continue;
                };
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                outcomes.borrow_mut().push(Outcome {
                    started,
                    took: started.elapsed(),
                    status: response.status().as_u16(),
                    code: body["code"].as_str().map(str::to_owned),
                    id: body["data"]["id"].as_str().map(str::to_owned),
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let acknowledged = |outcomes: &Rc<RefCell<Vec<Outcome>>>, after: Instant| {
        outcomes
            .borrow()
            .iter()
            .filter(|o| o.started >= after && o.status == 201)
            .count()
    };
    let begun = Instant::now();
    wait_until("10 writes before the outage", || {
        acknowledged(&outcomes, begun) >= 10
    })
    .await;
    assert_eq!(
        app.call("GET", "/readyz", None, None, &[]).await.status,
        200
    );

    // The outage.
    cluster.pg_ctl(&["-m", "fast", "stop"]);
    let down = Instant::now();
    let mut readyz_503 = None;
    for _ in 0..100 {
        let asked = Instant::now();
        let ready = app.call("GET", "/readyz", None, None, &[]).await;
        assert!(
            asked.elapsed() < Duration::from_secs(1),
            "/readyz took {:?}",
            asked.elapsed()
        );
        if ready.status == 503 {
            assert_eq!(ready.code(), "UNAVAILABLE");
            readyz_503 = Some(down.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let readyz_503 = readyz_503.expect("/readyz answers 503 while PostgreSQL is down");
    wait_until("20 answers during the outage", || {
        outcomes
            .borrow()
            .iter()
            .filter(|o| o.started >= down)
            .count()
            >= 20
    })
    .await;
    let during: Vec<(Duration, u16, Option<String>)> = outcomes
        .borrow()
        .iter()
        .filter(|o| o.started >= down)
        .map(|o| (o.took, o.status, o.code.clone()))
        .collect();
    for (took, status, code) in &during {
        assert_eq!(*status, 503, "during the outage: {status} {code:?}");
        assert_eq!(code.as_deref(), Some("UNAVAILABLE"));
        assert!(*took < Duration::from_secs(1), "a 503 took {took:?}");
    }
    let slowest_503 = during
        .iter()
        .map(|(took, _, _)| *took)
        .max()
        .unwrap_or_default();

    // PostgreSQL comes back; the server serves again on its own.
    cluster.pg_ctl(&["start"]);
    let up = Instant::now();
    let mut ready_again = None;
    for _ in 0..250 {
        if app.call("GET", "/readyz", None, None, &[]).await.status == 200 {
            ready_again = Some(up.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ready_again = ready_again.expect("/readyz answers 200 again within 5 s");
    wait_until("10 writes after the restart", || {
        acknowledged(&outcomes, up) >= 10
    })
    .await;
    let _ = stop_writing.send(true);
    writer.await.expect("the writer ran");

    let outcomes = std::mem::take(&mut *outcomes.borrow_mut());
    let ids: Vec<&str> = outcomes.iter().filter_map(|o| o.id.as_deref()).collect();
    assert!(
        outcomes.iter().all(|o| matches!(o.status, 201 | 503)),
        "only 201 or 503: {:?}",
        outcomes.iter().map(|o| o.status).collect::<Vec<_>>()
    );
    let after_restart_503 = outcomes
        .iter()
        .filter(|o| o.started >= up && o.status == 503)
        .count();
    let owner = Database::connect(app.db.owner_url.as_str())
        .await
        .expect("connect as owner");
    let list = ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(
        count(
            &owner,
            &format!("SELECT count(*) FROM contacts WHERE id::text IN ({list})")
        )
        .await,
        i64::try_from(ids.len()).unwrap_or(i64::MAX),
        "every acknowledged write is stored"
    );
    let _ = owner.close().await;
    eprintln!(
        "outage: /readyz 503 after {readyz_503:?}; {} answers during it, slowest 503 {slowest_503:?}; \
         /readyz 200 {ready_again:?} after the restart, {after_restart_503} 503s after it; \
         {} writes acknowledged and stored",
        during.len(),
        ids.len()
    );
}

/// Polls `condition` every 20 ms for up to 10 s.
async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
