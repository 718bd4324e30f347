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
        if !self.is_up() {
            return Err(unreachable());
        }
        let slots = Arc::clone(&self.slots);
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
                self.suspect();
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
            self.suspect();
        }
        result
    }

    /// Something looked wrong: make sure a probe is finding out (one at a time).
    pub(crate) fn suspect(self: &Arc<Self>) {
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
