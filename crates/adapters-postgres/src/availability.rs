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
use tokio::sync::watch;

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
}

/// The answer while the database is marked unreachable.
pub(crate) fn unreachable() -> RepoError {
    RepoError::Unavailable("the database cannot be reached".into())
}

impl Availability {
    pub(crate) fn new(target: PgConnectOptions) -> Arc<Self> {
        Arc::new(Self {
            up: watch::Sender::new(true),
            probing: AtomicBool::new(false),
            outage_noticed: Mutex::new(None),
            target,
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

    /// Runs `work` to completion in its own task and returns its result, unless the
    /// database is (or, while waiting, turns out to be) unreachable: then
    /// [`RepoError::Unavailable`] at once. Dropping the returned future never interrupts
    /// `work`; whatever it yields is then dropped by its task (a transaction rolls back).
    ///
    /// # Errors
    /// `work`'s own errors, or [`RepoError::Unavailable`].
    pub(crate) async fn run<T, F>(self: &Arc<Self>, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, RepoError>> + Send + 'static,
    {
        if !self.is_up() {
            return Err(unreachable());
        }
        let mut task = tokio::spawn(work);
        let joined = tokio::select! {
            joined = &mut task => joined,
            () = tokio::time::sleep(SUSPECT_AFTER) => {
                self.suspect();
                let mut up = self.up.subscribe();
                tokio::select! {
                    joined = &mut task => joined,
                    // The task carries on and cleans up after itself; the caller need not
                    // wait out the pool's acquire timeout to hear the database is gone.
                    _ = up.wait_for(|up| !*up) => return Err(unreachable()),
                }
            }
        };
        let result = joined
            .map_err(|error| RepoError::Unexpected(format!("database task failed: {error}")))?;
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
        matches!(tokio::time::timeout(PROBE_TIMEOUT, attempt).await, Ok(Ok(())))
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
