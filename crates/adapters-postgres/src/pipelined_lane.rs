//! The statement lane pipelined: the reads sent on their own (`one_statement`) share a few
//! connections, each carrying many requests' statements at once, back to back, instead of
//! one connection per statement in flight (`statement_lane`, which keeps the writes: a
//! commit's WAL flush on a shared pipeline would hold up the reads queued behind it, and
//! concurrent writes on connections of their own have their commits flushed together).
//!
//! Why: on a machine where PostgreSQL and the server share the cores, what a request costs
//! is CPU, and a backend that is woken for every statement spends a quarter to a third of
//! its time on the waking (`make bench` with `BENCH_STATEMENT_COST=1`: the API's GET
//! statement costs PostgreSQL 0.094 CPU-ms sent alone, 0.068 four deep in a pipeline). On a
//! pipelined connection the server writes whatever statements are waiting in one write and
//! reads their answers in one read; the backend runs them one after another without
//! sleeping in between. sqlx has no pipelining; tokio-postgres pipelines every query a
//! client has in flight, so the lane uses it for these statements only.
//!
//! What stays exactly as strict:
//! - every statement is sent as `Bind`, `Execute`, `Sync`: it is its own implicit
//!   transaction, so the `set_config(…, true)` a statement makes ends with it, and an
//!   error fails that statement alone; the next one on the connection starts clean (the
//!   statements sent here never open a transaction block);
//! - a statement is prepared with the parameter types sqlx would send (the values' own:
//!   `text`, `uuid`, `text[]`, …), so PostgreSQL reads each parameter as the pool's
//!   connections would have it read;
//! - a connection that failed other than with a database error, or whose session the
//!   server ended (SQLSTATE class 08, 57P), is dropped, like one opened before the last
//!   outage noticed or older than [`MAX_LIFETIME`]; the next statement opens a new one.
//!
//! Used only when the pool reaches PostgreSQL through its Unix socket (`local_socket`):
//! there is no TLS to set up there, and the connection options are the pool's own URL with
//! the socket as host. Over TCP the lane stays `statement_lane`, on sqlx's TLS.
//!
//! Each worker thread sends on the connection its thread was given (threads are dealt
//! the connections in turn), so a statement, its connection's task and the answer stay on
//! one thread instead of waking another.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sea_orm::sqlx::error::{DatabaseError, ErrorKind};
use sea_orm::sqlx::{self};
use sea_orm::{DbErr, RuntimeErr, Values};
use sea_query_postgres::{PostgresValue, PostgresValues};
use tokio::sync::Semaphore;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::DbError;
use tokio_postgres::{Client, NoTls, Statement};

use crate::availability::Availability;
use crate::statement_lane::{LaneStats, MAX_LIFETIME, ends_the_session};

/// How many prepared statements a connection keeps (the lists' SQL varies with their
/// filters); past it the connection forgets them all and prepares again.
const PREPARED_PER_CONNECTION: usize = 256;

/// A few pipelined connections and the slots that bound the statements in flight.
pub(crate) struct PipelinedLane {
    /// The pool's URL with the local socket as its host.
    config: tokio_postgres::Config,
    /// One per connection the lane may hold; a thread sends on the one it was dealt.
    pipes: Box<[Pipe]>,
    /// One per statement in flight at once.
    slots: Arc<Semaphore>,
    connect_timeout: Duration,
}

impl fmt::Debug for PipelinedLane {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PipelinedLane")
            .field("pipes", &self.pipes.len())
            .field("slots", &self.slots.available_permits())
            .finish_non_exhaustive()
    }
}

/// One pipelined connection, opened when first needed.
#[derive(Default)]
struct Pipe {
    open: Mutex<Option<Arc<Open>>>,
    /// Held while a connection is being opened, so that a burst opens one, not many.
    opening: tokio::sync::Mutex<()>,
}

/// An open connection, when it was opened, and the statements prepared on it.
struct Open {
    client: Client,
    opened: Instant,
    prepared: Mutex<HashMap<String, Statement>>,
}

impl PipelinedLane {
    /// A lane of `connections` pipelined connections to `url` through the socket in
    /// `socket`, at most `in_flight` statements at once; none when the URL is not one
    /// tokio-postgres reads (the lane then stays `statement_lane`).
    pub(crate) fn new(
        url: &str,
        socket: &Path,
        idle_in_transaction: &str,
        connections: u32,
        in_flight: u32,
        connect_timeout: Duration,
    ) -> Option<Arc<Self>> {
        if connections == 0 || in_flight == 0 {
            return None;
        }
        let given: tokio_postgres::Config = match url.parse() {
            Ok(config) => config,
            Err(error) => {
                tracing::info!(%error, "the statement lane is not pipelined: its URL is not one tokio-postgres reads");
                return None;
            }
        };
        // The URL's role, password, database and name, to the same port through the socket.
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(socket)
            .port(given.get_ports().first().copied().unwrap_or(5432))
            .ssl_mode(SslMode::Disable)
            .connect_timeout(connect_timeout);
        // Without a role in the URL, sqlx's defaults (PGUSER, the OS user) decide: keep it.
        config.user(given.get_user()?);
        if let Some(password) = given.get_password() {
            config.password(password);
        }
        if let Some(dbname) = given.get_dbname() {
            config.dbname(dbname);
        }
        if let Some(name) = given.get_application_name() {
            config.application_name(name);
        }
        let extra = given
            .get_options()
            .map(|options| format!(" {options}"))
            .unwrap_or_default();
        // The session settings sqlx gives the pool's connections, so that what a statement
        // renders (an event's timestamps) reads the same from either.
        config.options(format!(
            "-c DateStyle=ISO,MDY -c TimeZone=UTC -c extra_float_digits=2 \
             -c idle_in_transaction_session_timeout={idle_in_transaction}{extra}"
        ));
        let pipes = (0..connections).map(|_| Pipe::default()).collect();
        Some(Arc::new(Self {
            config,
            pipes,
            slots: Arc::new(Semaphore::new(usize::try_from(in_flight).unwrap_or(1))),
            connect_timeout,
        }))
    }

    /// The slots a statement holds while it is in flight.
    pub(crate) fn slots(&self) -> &Arc<Semaphore> {
        &self.slots
    }

    /// The lane's figures now: every open connection is ready to take a statement.
    pub(crate) fn stats(&self) -> LaneStats {
        let open = self
            .pipes
            .iter()
            .filter(|pipe| {
                pipe.open
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .as_ref()
                    .is_some_and(|open| !open.client.is_closed())
            })
            .count();
        let open = u32::try_from(open).unwrap_or(u32::MAX);
        LaneStats {
            open,
            idle: open,
            size: u32::try_from(self.pipes.len()).unwrap_or(u32::MAX),
        }
    }

    /// Sends `sql` on its own on this thread's connection and takes every row; errors as
    /// `statement_lane`'s (a connection that cannot be opened is `DbErr::Conn`, a failed
    /// statement `DbErr::Query` with the database's error, SQLSTATE and constraint).
    pub(crate) async fn fetch_all(
        &self,
        availability: &Availability,
        sql: String,
        values: Values,
    ) -> Result<Vec<tokio_postgres::Row>, DbErr> {
        let pipe = &self.pipes[dealt(self.pipes.len())];
        let open = self.open(pipe, availability).await?;
        let params = PostgresValues(values.0.into_iter().map(PostgresValue).collect());
        let sent = async {
            let statement = open.prepared(&sql, &params).await?;
            open.client.query(&statement, &params.as_params()).await
        };
        match sent.await {
            Ok(rows) => Ok(rows),
            Err(error) => {
                let code = error.code().map(|code| code.code());
                if error.as_db_error().is_none() || ends_the_session(code) {
                    pipe.drop_if(&open);
                }
                Err(query_error(&error))
            }
        }
    }

    /// `pipe`'s connection, opened or replaced first if there is none fit to use.
    async fn open(&self, pipe: &Pipe, availability: &Availability) -> Result<Arc<Open>, DbErr> {
        if let Some(open) = pipe.fit(availability) {
            return Ok(open);
        }
        let _opening = pipe.opening.lock().await;
        if let Some(open) = pipe.fit(availability) {
            return Ok(open);
        }
        let connected = tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls));
        let (client, connection) = match connected.await {
            Ok(Ok(connected)) => connected,
            Ok(Err(error)) => return Err(connect_error(error.to_string())),
            Err(_) => return Err(connect_error("timed out opening a connection".into())),
        };
        // The connection's task reads and writes the socket; it ends when the client is
        // dropped and its statements are answered, or when the socket fails.
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "a pipelined connection ended");
            }
        });
        let open = Arc::new(Open {
            client,
            opened: Instant::now(),
            prepared: Mutex::new(HashMap::new()),
        });
        *pipe.open.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(&open));
        Ok(open)
    }
}

impl Pipe {
    /// The open connection if it may take a statement: not closed, younger than
    /// [`MAX_LIFETIME`], and opened after the last outage noticed.
    fn fit(&self, availability: &Availability) -> Option<Arc<Open>> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let current = open.as_ref()?;
        let age = current.opened.elapsed();
        if current.client.is_closed()
            || age >= MAX_LIFETIME
            || availability.predates_last_outage(age)
        {
            *open = None;
            return None;
        }
        Some(Arc::clone(current))
    }

    /// Forgets `failed` unless it was replaced already (its statements in flight still
    /// get their answers or their errors).
    fn drop_if(&self, failed: &Arc<Open>) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if open
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(current, failed))
        {
            *open = None;
        }
    }
}

impl Open {
    /// `sql` prepared on this connection with the parameters' own types.
    async fn prepared(
        &self,
        sql: &str,
        params: &PostgresValues,
    ) -> Result<Statement, tokio_postgres::Error> {
        let known = self
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(statement) = known {
            return Ok(statement);
        }
        let statement = self.client.prepare_typed(sql, &params.as_types()).await?;
        let mut prepared = self.prepared.lock().unwrap_or_else(PoisonError::into_inner);
        if prepared.len() >= PREPARED_PER_CONNECTION {
            prepared.clear();
        }
        prepared.insert(sql.to_owned(), statement.clone());
        Ok(statement)
    }
}

/// The connection this thread sends on: threads are dealt `pipes` connections in turn,
/// the first time each sends.
fn dealt(pipes: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static DEALT: Cell<Option<usize>> = const { Cell::new(None) };
    }
    let turn = DEALT.with(|dealt| {
        dealt.get().unwrap_or_else(|| {
            let turn = NEXT.fetch_add(1, Ordering::Relaxed);
            dealt.set(Some(turn));
            turn
        })
    });
    turn % pipes.max(1)
}

fn connect_error(reason: String) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(Arc::new(sqlx::Error::Io(
        std::io::Error::other(reason),
    ))))
}

/// A failed statement as the pool's would fail: a database error keeps its message,
/// SQLSTATE and constraint (`errors` reads them); anything else is an I/O error.
fn query_error(error: &tokio_postgres::Error) -> DbErr {
    let error = match error.as_db_error() {
        Some(db) => sqlx::Error::Database(Box::new(PipedDbError(db.clone()))),
        None => sqlx::Error::Io(std::io::Error::other(error.to_string())),
    };
    DbErr::Query(RuntimeErr::SqlxError(Arc::new(error)))
}

/// PostgreSQL's error on a pipelined connection, read like sqlx's own.
#[derive(Debug)]
struct PipedDbError(DbError);

impl fmt::Display for PipedDbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.message())
    }
}

impl std::error::Error for PipedDbError {}

impl DatabaseError for PipedDbError {
    fn message(&self) -> &str {
        self.0.message()
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.0.code().code().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn constraint(&self) -> Option<&str> {
        self.0.constraint()
    }

    fn table(&self) -> Option<&str> {
        self.0.table()
    }

    fn kind(&self) -> ErrorKind {
        match self.0.code().code() {
            "23505" => ErrorKind::UniqueViolation,
            "23503" => ErrorKind::ForeignKeyViolation,
            "23502" => ErrorKind::NotNullViolation,
            "23514" => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::dealt;

    #[test]
    fn a_thread_keeps_the_connection_it_was_dealt_and_threads_are_dealt_in_turn() {
        let mine = dealt(2);
        assert_eq!(dealt(2), mine);
        let others: Vec<usize> = (0..4)
            .map(|_| std::thread::spawn(|| dealt(2)).join().expect("a thread"))
            .collect();
        assert!(others.iter().all(|&pipe| pipe < 2));
        assert!(others.contains(&0) && others.contains(&1), "{others:?}");
    }
}
