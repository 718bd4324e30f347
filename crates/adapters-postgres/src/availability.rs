//! Whether PostgreSQL can be reached, and running database work so that neither an
//! outage nor a caller that gives up can hurt other requests.
//!
//! Two problems of the pool this module answers:
//!
//! - During an outage sqlx retries a refused connection until the pool's acquire timeout
//!   runs out, so every request would wait out that timeout before its 503. Instead, the
//!   first sign of trouble (a connection-level error, or a wait longer than
//!   [`SUSPECT_AFTER`]) starts a probe that connects directly, around the pool; when the
//!   probe cannot connect the database is marked down, every waiting request answers 503
//!   at once and new ones answer 503 without touching the pool, until the probe (every
//!   [`PROBE_INTERVAL`]) connects again.
//! - A request future dropped while `BEGIN` is in flight leaks an open transaction into
//!   the pool (sqlx #2805: the rollback guard keys on a depth raised only after the round
//!   trip). [`Availability::run`] therefore runs each piece of database work in a task of
//!   its own: the caller may go away, the work still finishes, and what it returns (an
//!   open transaction) is dropped by the task, which rolls it back properly.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ports::RepoError;
use sea_orm::sqlx::postgres::PgConnectOptions;
use sea_orm::sqlx::{ConnectOptions as _, Connection as _};
use tokio::sync::{Semaphore, watch};

/// How long a piece of work may wait before a probe checks the database is still there.
/// Longer than a healthy round trip by far; short against a person waiting.
pub(crate) const SUSPECT_AFTER: Duration = Duration::from_millis(200);
/// How often an unreachable database is tried again.
pub(crate) const PROBE_INTERVAL: Duration = Duration::from_millis(250);
/// How long one probe may take to connect and answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// After a probe found the database up, a slow wait alone (a busy pool, no error) does not
/// start another for this long: a saturated pool is not probed continuously.
const SLOW_PROBE_COOLDOWN: Duration = Duration::from_secs(1);

/// Why a probe is wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Evidence {
    /// Work waited longer than [`SUSPECT_AFTER`].
    Slow,
    /// Work failed with a connection-level error.
    Failed,
}

/// What a pool knows of its database's reachability (shared by every clone of the store).
#[derive(Debug)]
pub(crate) struct Availability {
    /// `true` while the database is believed reachable.
    up: watch::Sender<bool>,
    /// Whether a probe task is running (at most one per pool).
    probing: AtomicBool,
    /// When the last outage was noticed: pooled connections older than that were opened
    /// to a server that has since gone away, and are discarded instead of handed out.
    outage_noticed: Mutex<Option<Instant>>,
    /// Where the probe connects (the pool's own URL and role).
    target: PgConnectOptions,
    /// One slot per pooled connection: work is spawned only once it holds one, so a
    /// caller that goes away while queued leaves nothing behind, and the work of callers
    /// already gone can take at most the pool's size, never a queue ahead of live ones.
    slots: Arc<Semaphore>,
    /// How long to wait for a slot and a connection before answering 503.
    acquire_timeout: Duration,
    /// When a probe last found the database up.
    last_seen_up: Mutex<Option<Instant>>,
}

/// The answer while the database is marked unreachable.
pub(crate) fn unreachable() -> RepoError {
    RepoError::Unavailable("the database cannot be reached".into())
}

impl Availability {
    pub(crate) fn new(
        target: PgConnectOptions,
        connections: u32,
        acquire_timeout: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            up: watch::Sender::new(true),
            probing: AtomicBool::new(false),
            outage_noticed: Mutex::new(None),
            target,
            slots: Arc::new(Semaphore::new(
                usize::try_from(connections).unwrap_or(1).max(1),
            )),
            acquire_timeout,
            last_seen_up: Mutex::new(None),
        })
    }

    /// Whether the database is believed reachable.
    pub(crate) fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Whether a pooled connection of this age predates the last outage (and so is
    /// certainly broken): the pool's `before_acquire` discards those without a round trip.
    pub(crate) fn predates_last_outage(&self, age: Duration) -> bool {
        let noticed = self
            .outage_noticed
            .lock()
            .map(|noticed| *noticed)
            .unwrap_or_default();
        noticed.is_some_and(|at| age > at.elapsed())
    }

    /// Runs `work`, which takes a connection from the pool, to completion in its own
    /// task once a slot is free, and returns its result; unless the database is (or,
    /// while waiting, turns out to be) unreachable, or no slot and connection came within
    /// the acquire timeout: then [`RepoError::Unavailable`] at once. Dropping the returned
    /// future before the work started spawns nothing; after, it never interrupts the
    /// work, whose result is then dropped by its task (a transaction rolls back).
    ///
    /// # Errors
    /// `work`'s own errors, or [`RepoError::Unavailable`].
    pub(crate) async fn run_acquiring<T, F>(self: &Arc<Self>, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, RepoError>> + Send + 'static,
    {
        self.run_in(&self.slots, work).await
    }

    /// [`Self::run_acquiring`] for work that takes its connection from elsewhere than the
    /// pool (`statement_lane`), holding one of `slots` instead of the pool's.
    ///
    /// # Errors
    /// `work`'s own errors, or [`RepoError::Unavailable`].
    pub(crate) async fn run_in<T, F>(
        self: &Arc<Self>,
        slots: &Arc<Semaphore>,
        work: F,
    ) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, RepoError>> + Send + 'static,
    {
        if !self.is_up() {
            return Err(unreachable());
        }
        let slots = Arc::clone(slots);
        let waited = async move {
            let slot = slots.acquire_owned().await.map_err(|_| unreachable())?;
            joined(tokio::spawn(async move {
                let result = work.await;
                drop(slot);
                result
            }))
            .await
        };
        self.watch(waited, self.acquire_timeout).await
    }

    /// Runs `work` on a connection already held (a commit) to completion in its own task:
    /// no slot is needed, and none may be waited for (the slots may all be taken by work
    /// waiting for this very connection).
    ///
    /// # Errors
    /// `work`'s own errors, or [`RepoError::Unavailable`].
    pub(crate) async fn run_holding<T, F>(self: &Arc<Self>, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, RepoError>> + Send + 'static,
    {
        let waited = joined(tokio::spawn(work));
        self.watch(waited, Duration::MAX).await
    }

    /// Waits for `waited`, starting a probe when it takes longer than [`SUSPECT_AFTER`]
    /// and answering 503 as soon as the probe finds the database unreachable (or after
    /// `limit`); a connection-level error starts a probe too.
    async fn watch<T>(
        self: &Arc<Self>,
        waited: impl Future<Output = Result<T, RepoError>>,
        limit: Duration,
    ) -> Result<T, RepoError> {
        tokio::pin!(waited);
        let result = tokio::select! {
            result = &mut waited => result,
            () = tokio::time::sleep(SUSPECT_AFTER) => {
                self.suspect(Evidence::Slow);
                let mut up = self.up.subscribe();
                let rest = limit.saturating_sub(SUSPECT_AFTER);
                tokio::select! {
                    result = &mut waited => result,
                    // Work already spawned carries on and cleans up after itself.
                    _ = up.wait_for(|up| !*up) => Err(unreachable()),
                    () = sleep_at_most(rest) => Err(RepoError::Unavailable(
                        "no database connection became free in time".into(),
                    )),
                }
            }
        };
        if matches!(result, Err(RepoError::Unavailable(_))) {
            self.suspect(Evidence::Failed);
        }
        result
    }

    /// Something looked wrong: make sure a probe is finding out (one at a time).
    fn suspect(self: &Arc<Self>, evidence: Evidence) {
        if evidence == Evidence::Slow && self.is_up() {
            let recently = self
                .last_seen_up
                .lock()
                .map(|seen| seen.is_some_and(|at| at.elapsed() < SLOW_PROBE_COOLDOWN))
                .unwrap_or(false);
            if recently {
                return;
            }
        }
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        // Clears `probing` however the task ends, even with its runtime.
        let probing = Probing(Arc::clone(self));
        tokio::spawn(async move {
            let this = &probing.0;
            loop {
                if this.probe().await {
                    this.mark_up();
                    break;
                }
                this.mark_down();
                tokio::time::sleep(PROBE_INTERVAL).await;
            }
        });
    }

    /// One direct connection (not through the pool, which may be busy or full of dead
    /// connections): connect, ping, close.
    async fn probe(&self) -> bool {
        let attempt = async {
            let mut connection = self.target.connect().await?;
            connection.ping().await?;
            connection.close().await
        };
        matches!(
            tokio::time::timeout(PROBE_TIMEOUT, attempt).await,
            Ok(Ok(()))
        )
    }

    fn mark_down(&self) {
        let was_up = self.up.send_replace(false);
        if was_up {
            if let Ok(mut noticed) = self.outage_noticed.lock() {
                *noticed = Some(Instant::now());
            }
            tracing::warn!("the database cannot be reached; answering 503 until it can");
        }
    }

    fn mark_up(&self) {
        if let Ok(mut seen) = self.last_seen_up.lock() {
            *seen = Some(Instant::now());
        }
        if !self.up.send_replace(true) {
            tracing::info!("the database can be reached again");
        }
    }
}

/// The running probe's claim on [`Availability::probing`], released on drop.
struct Probing(Arc<Availability>);

impl Drop for Probing {
    fn drop(&mut self) {
        self.0.probing.store(false, Ordering::Release);
    }
}

/// The result of a spawned piece of work (a panic in it is a bug, reported as such).
async fn joined<T>(task: tokio::task::JoinHandle<Result<T, RepoError>>) -> Result<T, RepoError> {
    task.await
        .map_err(|error| RepoError::Unexpected(format!("database task failed: {error}")))?
}

/// Sleeps `limit`, or forever when it is too long for a timer.
async fn sleep_at_most(limit: Duration) {
    match tokio::time::Instant::now().checked_add(limit) {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Probe options for a port nothing listens on (bound, then closed).
    fn closed_port() -> PgConnectOptions {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .unwrap_or(9);
        PgConnectOptions::new().host("127.0.0.1").port(port)
    }

    async fn wait_until_down(availability: &Availability) {
        let mut up = availability.up.subscribe();
        tokio::time::timeout(Duration::from_secs(5), up.wait_for(|up| !*up))
            .await
            .expect("marked down within 5 s")
            .expect("the sender lives");
    }

    #[tokio::test]
    async fn a_failed_piece_of_work_has_an_unreachable_database_marked_down_and_refused_at_once() {
        let availability = Availability::new(closed_port(), 2, Duration::from_secs(5));
        let failed: Result<(), RepoError> = availability
            .run_acquiring(async { Err(RepoError::Unavailable("connection refused".into())) })
            .await;
        assert!(matches!(failed, Err(RepoError::Unavailable(_))));
        wait_until_down(&availability).await;
        let started = Instant::now();
        let refused = availability.run_acquiring(async { Ok(()) }).await;
        assert!(matches!(refused, Err(RepoError::Unavailable(_))));
        assert!(started.elapsed() < Duration::from_millis(50));
        assert!(availability.predates_last_outage(Duration::from_secs(3600)));
        assert!(!availability.predates_last_outage(Duration::ZERO));
    }

    #[tokio::test]
    async fn work_waiting_on_an_unreachable_database_answers_503_without_waiting_out_the_pool() {
        let availability = Availability::new(closed_port(), 2, Duration::from_secs(30));
        let started = Instant::now();
        // Plays sqlx retrying a refused connection until its acquire timeout.
        let waited: Result<(), RepoError> = availability
            .run_acquiring(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            })
            .await;
        assert!(matches!(waited, Err(RepoError::Unavailable(_))));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "answered after {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn work_runs_to_completion_when_its_caller_goes_away() {
        let availability = Availability::new(closed_port(), 1, Duration::from_secs(5));
        let (finished, done) = tokio::sync::oneshot::channel();
        let caller = availability.run_acquiring(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let _ = finished.send(());
            Ok(())
        });
        // The caller is dropped after its work started, before it finished.
        let _ = tokio::time::timeout(Duration::from_millis(10), caller).await;
        tokio::time::timeout(Duration::from_secs(2), done)
            .await
            .expect("the work finished")
            .expect("and said so");
    }
}
