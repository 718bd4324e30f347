//! Connections kept apart for the statements sent on their own (`one_statement`: a read,
//! a list or a create with a remembered key), so that such a request costs PostgreSQL one
//! round trip, not two. When PostgreSQL is local, the reads among them go pipelined
//! instead (`pipelined_lane`) and this lane carries the writes, one at a time: a commit
//! waits for its WAL flush, which on a shared pipeline would hold up every statement
//! queued behind it.
//!
//! Why not the pool: sqlx 0.9 tests every connection it takes back. Dropping a
//! `PoolConnection` spawns `return_to_pool`, which sends a `Sync` and waits for
//! `ReadyForQuery` before the connection is idle again, whatever `after_release` said. For a
//! request of one statement that is a second round trip: PostgreSQL woke twice per request
//! and spent half again the CPU that pgbench spends on the same statement
//! (docs/benchmarks.md, "2026-12-03, afternoon"), and the server paid a task, a write and a
//! read for it.
//!
//! The lane holds its connections itself and lends each to one statement at a time. The
//! test the pool makes is not needed here:
//! - nothing is ever interrupted: the statement runs to completion in a task of its own
//!   (`availability`), so a connection comes back only after PostgreSQL answered;
//! - a statement sent on its own is its own transaction: once it answered, with rows or
//!   with a database error, the connection is at `ReadyForQuery` outside any transaction,
//!   and goes straight back (a connection still inside one, which no statement here can
//!   leave, is closed instead);
//! - any other failure (I/O, protocol, a session ended by the server) closes the
//!   connection; sqlx itself drains a pending `ReadyForQuery` before it sends the next
//!   statement on a connection.
//!
//! Its connections are part of `DB_POOL_SIZE` (`PoolOptions::statement_connections`), have
//! their own slots (a statement waits for a lane connection, never for the pool's), and are
//! opened when first needed, to the same server, role and settings as the pool's. Like the
//! pool's, a connection opened before the last outage noticed is closed instead of lent,
//! and one older than [`MAX_LIFETIME`] is replaced.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{self, ConnectOptions as _, Connection as _};
use sea_orm::{DbErr, QueryResult, RuntimeErr, Values};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Semaphore;

use crate::availability::Availability;

/// How long a lane connection is used before it is replaced (sqlx's pool default).
pub(crate) const MAX_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The kept connections and the slots that lend them.
#[derive(Debug)]
pub(crate) struct StatementLane {
    /// Where connections are opened: the pool's server, role and session settings.
    target: PgConnectOptions,
    /// Connections not lent now, the most recently used last (lent first: it is warm).
    idle: Mutex<Vec<Kept>>,
    /// One per connection the lane may hold.
    slots: Arc<Semaphore>,
    /// The most connections the lane holds.
    size: u32,
    /// Connections open now (lent or idle).
    open: AtomicU32,
    /// How long opening a connection may take.
    connect_timeout: Duration,
}

/// A connection the lane holds, and when it was opened.
#[derive(Debug)]
struct Kept {
    connection: PgConnection,
    opened: Instant,
}

/// Figures for the pool's metrics.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LaneStats {
    pub(crate) open: u32,
    pub(crate) idle: u32,
    pub(crate) size: u32,
}

impl StatementLane {
    /// A lane of at most `size` connections to `target`; none when `size` is 0 (the
    /// statements then take the pool, and its test on release).
    pub(crate) fn new(
        target: PgConnectOptions,
        size: u32,
        connect_timeout: Duration,
    ) -> Option<Arc<Self>> {
        (size > 0).then(|| {
            Arc::new(Self {
                target: target.disable_statement_logging(),
                idle: Mutex::new(Vec::new()),
                slots: Arc::new(Semaphore::new(usize::try_from(size).unwrap_or(1))),
                size,
                open: AtomicU32::new(0),
                connect_timeout,
            })
        })
    }

    /// The slots a statement holds while it has a lane connection.
    pub(crate) fn slots(&self) -> &Arc<Semaphore> {
        &self.slots
    }

    /// The lane's figures now.
    pub(crate) fn stats(&self) -> LaneStats {
        let idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        LaneStats {
            open: self.open.load(Ordering::Relaxed),
            idle: u32::try_from(idle).unwrap_or(u32::MAX),
            size: self.size,
        }
    }

    /// Sends `sql` on its own on a lane connection and takes every row, as
    /// `ConnectionTrait::query_all_raw` does on the pool (the same errors: a connection
    /// that cannot be opened is `DbErr::Conn`, a failed statement `DbErr::Query`). The
    /// caller holds one of [`Self::slots`], so a connection is idle or may be opened.
    pub(crate) async fn fetch_all(
        &self,
        availability: &Availability,
        sql: String,
        values: Values,
    ) -> Result<Vec<QueryResult>, DbErr> {
        let mut kept = match self.take(availability) {
            Some(kept) => kept,
            None => self.connect().await?,
        };
        let rows = sqlx::query_with(sqlx::AssertSqlSafe(sql), SqlxValues(values))
            .fetch_all(&mut kept.connection)
            .await;
        let answered = match &rows {
            Ok(_) => true,
            Err(sqlx::Error::Database(error)) => !ends_the_session(error.code().as_deref()),
            Err(_) => false,
        };
        if answered && !kept.connection.is_in_transaction() {
            self.give_back(kept);
        } else {
            self.close(kept);
        }
        match rows {
            Ok(rows) => Ok(rows.into_iter().map(QueryResult::from).collect()),
            Err(error) => Err(DbErr::Query(RuntimeErr::SqlxError(Arc::new(error)))),
        }
    }

    /// The most recently used idle connection still fit to lend, closing the unfit ones
    /// on the way.
    fn take(&self, availability: &Availability) -> Option<Kept> {
        loop {
            let kept = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop()?;
            let age = kept.opened.elapsed();
            if age < MAX_LIFETIME && !availability.predates_last_outage(age) {
                return Some(kept);
            }
            self.close(kept);
        }
    }

    async fn connect(&self) -> Result<Kept, DbErr> {
        let connection =
            match tokio::time::timeout(self.connect_timeout, self.target.connect()).await {
                Ok(Ok(connection)) => connection,
                Ok(Err(error)) => return Err(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(error)))),
                Err(_) => {
                    return Err(DbErr::Conn(RuntimeErr::SqlxError(Arc::new(
                        sqlx::Error::PoolTimedOut,
                    ))));
                }
            };
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Kept {
            connection,
            opened: Instant::now(),
        })
    }

    fn give_back(&self, kept: Kept) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(kept);
    }

    /// Closes `kept` in the background (a `Terminate` if the socket still takes one).
    fn close(&self, kept: Kept) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(1), kept.connection.close()).await;
        });
    }
}

/// Whether a database error (by SQLSTATE) says the session is over: a connection
/// exception (class 08) or an operator's intervention (57P01-57P05: a terminated backend, a
/// shutdown), after which the server closes the connection.
pub(crate) fn ends_the_session(code: Option<&str>) -> bool {
    code.is_none_or(|code| code.starts_with("08") || code.starts_with("57P"))
}

#[cfg(test)]
mod tests {
    use super::ends_the_session;

    #[test]
    fn a_terminated_or_broken_session_is_not_lent_again_and_a_refused_statement_is() {
        for over in ["57P01", "57P02", "57P03", "08006", "08003"] {
            assert!(ends_the_session(Some(over)), "{over}");
        }
        assert!(ends_the_session(None));
        for refused in ["23505", "23503", "22P02", "42501", "40001", "P0001"] {
            assert!(!ends_the_session(Some(refused)), "{refused}");
        }
    }
}
