//! The statements sent on their own run on connections kept apart from the pool
//! (`adapters-postgres/src/statement_lane.rs`), which lends each connection to one request
//! after another without sqlx's test on release. What that must and must not change:
//! a request of one statement is one exchange with PostgreSQL (the test it skips was a
//! second); and a connection lent to one tenant's request, whatever that request did
//! (read, listed, wrote, failed on a constraint), gives the next tenant's request exactly
//! what a fresh connection would.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::helpers::{
    TestApp, TestDb, TestTenant, count, generous_limits, idle_after, serve_config, test_webhooks,
};

/// The two lanes: connections lent one statement at a time (`DB_PIPELINES` 0, as over
/// TCP), and pipelined ones (through the local socket, as `make test` reaches PostgreSQL).
const LANES: [u32; 2] = [0, 1];

/// Runs `test` on each lane in turn.
async fn on_both_lanes<F: Future<Output = ()>>(test: impl Fn(u32) -> F) {
    for pipelined in LANES {
        test(pipelined).await;
    }
}

/// An application whose statement lane holds one connection (`DB_POOL_SIZE` 2: one for
/// the pool, one for the lane), so every statement sent on its own shares one session;
/// pipelined when `pipelined` is 1.
async fn spawn_with_one_lane_connection(pipelined: u32) -> TestApp {
    let db = TestDb::create().await;
    let mut config = serve_config(&db, generous_limits(), test_webhooks());
    config.pool_size = 2;
    config.pipelined_connections = pipelined;
    let running = server::start(&config).await.expect("server starts");
    TestApp::serving(db, running)
}

/// The backend of the application's session whose last statement was a one-statement
/// list (the lane's: a list with a remembered key is sent on its own).
async fn lane_backend(owner: &DatabaseConnection) -> i64 {
    count(
        owner,
        "SELECT pid::bigint FROM pg_stat_activity \
          WHERE datname = current_database() AND usename = 'crm_app' \
            AND starts_with(query, '/* contact list, known key */')",
    )
    .await
}

/// How often `pid` has gone to sleep of its own accord (`voluntary_ctxt_switches`): a
/// backend sleeps each time it waits for the next message of its client, so this counts
/// the exchanges it had; `None` when `pid` is not a process of this machine we may read.
fn sleeps_of(pid: i64) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
}

/// A tenant with one contact whose key is remembered (its first read resolved it), the
/// contact's path, and the lane's one session (named by a one-statement list).
async fn remembered_contact(
    app: &TestApp,
    owner: &DatabaseConnection,
) -> (TestTenant, String, i64) {
    let tenant = app.tenant("Acme").await;
    let made = app
        .post(
            "/v1/contacts",
            &tenant.key,
            &json!({"firstName": "Ada", "lastName": "Lovelace"}),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let path = format!("/v1/contacts/{}", made.id());
    assert_eq!(app.get(&path, &tenant.key).await.status, 200);
    assert_eq!(
        app.get("/v1/contacts?limit=5", &tenant.key).await.status,
        200
    );
    let pid = lane_backend(owner).await;
    (tenant, path, pid)
}

#[actix_rt::test]
async fn a_read_with_a_remembered_key_is_one_exchange_with_postgresql() {
    on_both_lanes(a_read_with_a_remembered_key_is_one_exchange_with_postgresql_on).await;
}

async fn a_read_with_a_remembered_key_is_one_exchange_with_postgresql_on(pipelined: u32) {
    let app = spawn_with_one_lane_connection(pipelined).await;
    let owner = app.db.owner().await;
    let (tenant, path, pid) = remembered_contact(&app, &owner).await;
    let Some(before) = sleeps_of(pid) else {
        // PostgreSQL runs elsewhere (a remote DATABASE_URL): its system calls are not ours
        // to count. `make test` on this machine always reaches here.
        eprintln!("skipped: backend {pid} is not a process of this machine");
        return;
    };
    let reads = 40;
    for _ in 0..reads {
        let read = app.get(&path, &tenant.key).await;
        assert_eq!(read.status, 200, "{}", read.body);
    }
    // sqlx's test on release runs after the answer, in a task of its own: give it time
    // to show, were it still there.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = sleeps_of(pid).expect("the same backend");
    assert_eq!(
        count(
            &owner,
            &format!(
                "SELECT count(*) FROM pg_stat_activity \
                  WHERE pid = {pid} AND state = 'idle' \
                    AND starts_with(query, '/* contact read, known key */')"
            ),
        )
        .await,
        1,
        "the reads were sent on their own, on the lane's one session"
    );
    // One exchange per request: the backend waited for each statement, and not again for
    // a second message (a `Sync`, answered by another `ReadyForQuery`) after it. A little
    // slack for a wait of its own now and then; two exchanges each would be 80.
    let slept = after - before;
    eprintln!("backend {pid} slept {slept} times for {reads} reads");
    assert!(
        slept <= reads + reads / 4,
        "the backend slept {slept} times for {reads} reads"
    );
}

#[actix_rt::test]
async fn a_lane_connection_lent_to_one_tenant_gives_the_next_tenant_only_its_own_rows() {
    on_both_lanes(a_lane_connection_lent_to_one_tenant_gives_the_next_tenant_only_its_own_rows_on)
        .await;
}

async fn a_lane_connection_lent_to_one_tenant_gives_the_next_tenant_only_its_own_rows_on(
    pipelined: u32,
) {
    let app = spawn_with_one_lane_connection(pipelined).await;
    let owner = app.db.owner().await;
    let (a, b) = (app.tenant("A").await, app.tenant("B").await);
    let mut mine = Vec::new();
    for (tenant, name) in [(&a, "Ada"), (&b, "Bob")] {
        let made = app
            .post(
                "/v1/contacts",
                &tenant.key,
                &json!({"firstName": name, "lastName": "X", "email": format!("{name}@example.com")}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        mine.push(made.id());
    }
    let (ada, bob) = (&mine[0], &mine[1]);
    for (tenant, own) in [(&a, ada), (&b, bob)] {
        // Resolves the key and remembers it: what follows is sent on its own.
        let read = app.get(&format!("/v1/contacts/{own}"), &tenant.key).await;
        assert_eq!(read.status, 200, "{}", read.body);
    }
    for round in 0..3 {
        // Each tenant in turn on the one lane connection: reads, lists, a write, and a
        // write refused by a constraint (a database error on that connection).
        for (tenant, own, other, email) in [
            (&a, ada, bob, "Ada@example.com"),
            (&b, bob, ada, "Bob@example.com"),
        ] {
            let read = app.get(&format!("/v1/contacts/{own}"), &tenant.key).await;
            assert_eq!(read.status, 200, "round {round}: {}", read.body);
            let across = app.get(&format!("/v1/contacts/{other}"), &tenant.key).await;
            assert_eq!(across.status, 404, "round {round}: {}", across.body);
            let duplicate = app
                .post(
                    "/v1/contacts",
                    &tenant.key,
                    &json!({"firstName": "Again", "lastName": "X", "email": email}),
                )
                .await;
            assert_eq!(duplicate.status, 409, "round {round}: {}", duplicate.body);
            let across = app.get(&format!("/v1/contacts/{other}"), &tenant.key).await;
            assert_eq!(across.status, 404, "after a refused write: {}", across.body);
            let list = app.get("/v1/contacts?limit=100", &tenant.key).await;
            assert_eq!(list.status, 200, "{}", list.body);
            let ids: Vec<&str> = list.body["data"]
                .as_array()
                .expect("a page")
                .iter()
                .filter_map(|c| c["id"].as_str())
                .collect();
            assert!(ids.contains(&own.as_str()), "round {round}: {ids:?}");
            assert!(!ids.contains(&other.as_str()), "round {round}: {ids:?}");
            let written = app
                .post(
                    "/v1/contacts",
                    &tenant.key,
                    &json!({"firstName": format!("R{round}"), "lastName": "X"}),
                )
                .await;
            assert_eq!(written.status, 201, "{}", written.body);
        }
    }
    // Every one-statement request above shared one session, and it is idle outside any
    // transaction; the application holds no more than its two connections.
    assert_eq!(app.get("/v1/contacts?limit=1", &a.key).await.status, 200);
    assert_eq!(idle_after(&owner, "/* contact list, known key */").await, 1);
    assert!(
        count(
            &owner,
            "SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND usename = 'crm_app'",
        )
        .await
            <= 2
    );
    // Each tenant has its own contacts only: one plus one per round.
    for tenant in [&a, &b] {
        let stored = count(
            &owner,
            &format!(
                "SELECT count(*) FROM contacts WHERE tenant_id = '{}'",
                tenant.id
            ),
        )
        .await;
        assert_eq!(stored, 4);
    }
}

#[actix_rt::test]
async fn a_lane_connection_ended_by_postgresql_costs_at_most_one_503_and_is_replaced() {
    on_both_lanes(a_lane_connection_ended_by_postgresql_costs_at_most_one_503_and_is_replaced_on)
        .await;
}

async fn a_lane_connection_ended_by_postgresql_costs_at_most_one_503_and_is_replaced_on(
    pipelined: u32,
) {
    let app = spawn_with_one_lane_connection(pipelined).await;
    let owner = app.db.owner().await;
    let (tenant, path, pid) = remembered_contact(&app, &owner).await;
    // An operator (or a restart, a pooler, a firewall) ends the idle session.
    assert_eq!(
        count(
            &owner,
            &format!("SELECT pg_terminate_backend({pid})::int::bigint")
        )
        .await,
        1
    );
    // A lane that sent on the ended session answers 503 once; a pipelined one usually has
    // read the server's goodbye already and opens another session at once.
    let first = app.get(&path, &tenant.key).await;
    if first.status != 200 {
        assert_eq!(first.status, 503, "{}", first.body);
        assert_eq!(first.code(), "UNAVAILABLE");
    }
    // The ended session was closed, not lent again: the next request opens another.
    for _ in 0..3 {
        let read = app.get(&path, &tenant.key).await;
        assert_eq!(read.status, 200, "{}", read.body);
    }
    assert_eq!(
        app.get("/v1/contacts?limit=5", &tenant.key).await.status,
        200
    );
    let replaced = lane_backend(&owner).await;
    assert_ne!(replaced, pid);
}

/// An application whose statement lane is one pipelined connection carrying up to four
/// statements at once (`DB_POOL_SIZE` 8: four for the pool, four in flight on the lane;
/// `DB_PIPELINES` 1).
async fn spawn_with_one_pipelined_connection() -> TestApp {
    let db = TestDb::create().await;
    let mut config = serve_config(&db, generous_limits(), test_webhooks());
    config.pool_size = 8;
    config.pipelined_connections = 1;
    let running = server::start(&config).await.expect("server starts");
    TestApp::serving(db, running)
}

#[actix_rt::test]
async fn two_tenants_reads_in_flight_together_on_one_pipelined_session_each_see_their_own() {
    use sea_orm::{ConnectionTrait as _, TransactionTrait as _};

    let app = spawn_with_one_pipelined_connection().await;
    let owner = app.db.owner().await;
    let (a, b) = (app.tenant("A").await, app.tenant("B").await);
    let mut mine = Vec::new();
    for (tenant, name) in [(&a, "Ada"), (&b, "Bob")] {
        let made = app
            .post(
                "/v1/contacts",
                &tenant.key,
                &json!({"firstName": name, "lastName": "X"}),
            )
            .await;
        assert_eq!(made.status, 201, "{}", made.body);
        // Resolves the key and remembers it: its reads are sent on their own from now on.
        let read = app
            .get(&format!("/v1/contacts/{}", made.id()), &tenant.key)
            .await;
        assert_eq!(read.status, 200, "{}", read.body);
        mine.push(made.id());
    }
    let (ada, bob) = (&mine[0], &mine[1]);
    // Hold every read of `contacts` back, so that the reads below are all in flight at
    // once: the lane's connection carries them back to back, the two tenants interleaved.
    let hold = owner.begin().await.expect("a transaction");
    hold.execute_unprepared("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the lock");
    let app = &app;
    let reads: Vec<_> = (0..8)
        .map(|n| {
            let (tenant, own, other) = if n % 2 == 0 {
                (&a, ada, bob)
            } else {
                (&b, bob, ada)
            };
            let path = format!("/v1/contacts/{}", if n % 4 < 2 { own } else { other });
            async move { (n, app.get(&path, &tenant.key).await) }
        })
        .collect();
    let watch = async {
        // The first read waits for the lock in the lane's one backend; the others queue
        // behind it on the same connection, not on sessions of their own.
        let mut waiting = 0;
        for _ in 0..100 {
            waiting = count(
                &owner,
                "SELECT count(*) FROM pg_stat_activity \
                  WHERE datname = current_database() AND usename = 'crm_app' \
                    AND wait_event_type = 'Lock'",
            )
            .await;
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let sessions = count(
            &owner,
            "SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND usename = 'crm_app' \
                AND starts_with(query, '/* contact read, known key */')",
        )
        .await;
        hold.commit().await.expect("the lock released");
        (waiting, sessions)
    };
    let (answers, (waiting, sessions)) =
        futures_util::future::join(futures_util::future::join_all(reads), watch).await;
    assert_eq!(waiting, 1, "one backend waited for the lock");
    assert_eq!(sessions, 1, "every read went to the lane's one session");
    for (n, answer) in answers {
        // Reads 0, 1, 4, 5 are each tenant's own contact; 2, 3, 6, 7 the other's.
        let expected = if n % 4 < 2 { 200 } else { 404 };
        assert_eq!(answer.status, expected, "read {n}: {}", answer.body);
        if expected == 200 {
            let own = if n % 2 == 0 { ada } else { bob };
            assert_eq!(answer.body["data"]["id"], own.as_str(), "read {n}");
        }
    }
}

#[actix_rt::test]
async fn a_search_keeps_a_connection_of_its_own_so_no_read_queues_behind_it() {
    use sea_orm::{ConnectionTrait as _, TransactionTrait as _};

    let app = spawn_with_one_pipelined_connection().await;
    let owner = app.db.owner().await;
    let (a, ada_path, _) = remembered_contact(&app, &owner).await;
    let ada = ada_path.trim_start_matches("/v1/contacts/").to_owned();
    let hold = owner.begin().await.expect("a transaction");
    hold.execute_unprepared("LOCK TABLE contacts IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("the lock");
    let (app, key) = (&app, a.key.as_str());
    // Reads of one row and a plain page share the pipelined connection; the search waits
    // on a connection of its own.
    let paths = [
        format!("/v1/contacts/{ada}"),
        "/v1/contacts?limit=5".to_owned(),
        "/v1/contacts?q=lovel".to_owned(),
        format!("/v1/contacts/{ada}"),
    ];
    let requests: Vec<_> = paths
        .iter()
        .map(|path| async move { (path, app.get(path, key).await) })
        .collect();
    let waiting_for_the_lock = || {
        count(
            &owner,
            "SELECT count(*) FROM pg_stat_activity \
              WHERE datname = current_database() AND usename = 'crm_app' \
                AND wait_event_type = 'Lock'",
        )
    };
    let watch = async {
        let mut waiting = 0;
        for _ in 0..100 {
            waiting = waiting_for_the_lock().await;
            if waiting >= 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let settled = waiting_for_the_lock().await;
        hold.commit().await.expect("the lock released");
        (waiting, settled)
    };
    let (answers, (waiting, settled)) =
        futures_util::future::join(futures_util::future::join_all(requests), watch).await;
    assert_eq!(
        (waiting, settled),
        (2, 2),
        "the pipelined session and the search's own waited for the lock"
    );
    for (path, answer) in answers {
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        if path.contains('?') {
            assert_eq!(answer.body["data"][0]["id"], ada.as_str(), "{path}");
        }
    }
}
