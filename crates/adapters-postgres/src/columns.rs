//! Reading a row's columns by position, whichever connection answered: the pool's and the
//! statement lane's sqlx connections give sea-orm's `QueryResult`, the pipelined lane
//! (`pipelined_lane`) tokio-postgres' `Row`. The decoders of the statements sent on their
//! own (`one_statement`, `contacts::model_at`) read either through [`Columns`].

use sea_orm::{DbErr, QueryResult, TryGetable};
use tokio_postgres::types::FromSql;

/// A column type both drivers decode: the same Rust type for the same PostgreSQL type.
pub(crate) trait Column: TryGetable + for<'a> FromSql<'a> {}

impl<T: TryGetable + for<'a> FromSql<'a>> Column for T {}

/// A row whose columns are read by position.
pub(crate) trait Columns {
    /// The column at `at` (from 0) as a `T`.
    fn column<T: Column>(&self, at: usize) -> Result<T, DbErr>;
}

impl Columns for QueryResult {
    fn column<T: Column>(&self, at: usize) -> Result<T, DbErr> {
        self.try_get_by_index(at)
    }
}

impl Columns for tokio_postgres::Row {
    fn column<T: Column>(&self, at: usize) -> Result<T, DbErr> {
        self.try_get(at)
            .map_err(|error| DbErr::Type(format!("column {at}: {error}")))
    }
}

/// A row of a statement sent on its own, from whichever connection answered it.
#[derive(Debug)]
pub(crate) enum LaneRow {
    Sqlx(QueryResult),
    Piped(tokio_postgres::Row),
}

impl Columns for LaneRow {
    fn column<T: Column>(&self, at: usize) -> Result<T, DbErr> {
        match self {
            Self::Sqlx(row) => row.column(at),
            Self::Piped(row) => row.column(at),
        }
    }
}
