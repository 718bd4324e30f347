//! SeaORM entities, one module per table: the typed shape of the rows the plain CRUD paths
//! read and write through the query builder. They stay inside this crate (`pub(crate)`);
//! each repository module converts a `Model` into its domain type with `TryFrom` at the
//! seam, so nothing outside the adapter sees a row.
//!
//! Only the columns the code reads or writes are declared: generated columns such as
//! `search_text` are left out, so they are neither selected nor ever written.

pub(crate) mod activities;
pub(crate) mod api_keys;
pub(crate) mod companies;
pub(crate) mod contacts;
pub(crate) mod invitations;
pub(crate) mod leads;
pub(crate) mod memberships;
pub(crate) mod pipeline_stages;
pub(crate) mod pipelines;
pub(crate) mod tenants;

use sea_orm::sea_query::{Expr, Func, SimpleExpr};

/// `greatest(now(), <column>)`: what an UPDATE sets `updated_at` to, so the timestamp
/// moves forward with the transaction's time but never back, should the clock step back.
pub(crate) fn touched(column: impl sea_orm::sea_query::IntoColumnRef) -> SimpleExpr {
    Func::greatest([Func::cust("now").into(), Expr::col(column)]).into()
}
