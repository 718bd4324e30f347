//! Turning SeaORM/sqlx errors into port errors: connection trouble is `Unavailable` (503,
//! retry later), named constraints map to exactly one domain error, the rest is opaque.

use ports::RepoError;
use sea_orm::sqlx;
use sea_orm::{DbErr, RuntimeErr};

/// The database-side error behind a SeaORM error, if there is one.
fn database_error(error: &DbErr) -> Option<&(dyn sqlx::error::DatabaseError + 'static)> {
    match error {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            sqlx::Error::Database(db) => Some(db.as_ref()),
            _ => None,
        },
        _ => None,
    }
}

/// The violated constraint's name and the SQLSTATE, when the error is a violation.
pub(crate) fn violated_constraint(error: &DbErr) -> Option<(&str, String)> {
    let db = database_error(error)?;
    let code = db.code()?.into_owned();
    db.constraint().map(|name| (name, code))
}

/// SQLSTATE unique_violation.
pub(crate) const UNIQUE_VIOLATION: &str = "23505";
/// SQLSTATE foreign_key_violation.
pub(crate) const FOREIGN_KEY_VIOLATION: &str = "23503";

/// Classifies any other error.
pub(crate) fn repo_error(error: DbErr) -> RepoError {
    let unavailable = match &error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sqlx::Error::Io(_)
                | sqlx::Error::Tls(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::WorkerCrashed => true,
                // 08: connection exception; 57P01-57P03: shutdown / cannot connect now.
                sqlx::Error::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
                _ => false,
            }
        }
        _ => false,
    };
    let contention = database_error(&error)
        .and_then(|db| db.code())
        .is_some_and(|code| code == "40P01" || code == "40001");
    if contention {
        RepoError::Contention(error.to_string())
    } else if unavailable {
        RepoError::Unavailable(error.to_string())
    } else {
        RepoError::Unexpected(error.to_string())
    }
}
