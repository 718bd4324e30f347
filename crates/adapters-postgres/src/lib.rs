//! PostgreSQL implementation of the ports, through SeaORM, with row-level security doing
//! the tenant isolation.
//!
//! Every unit of work is one transaction whose `app.tenant_id` is set transaction-locally
//! before any tenant data is touched, so a pooled connection never carries a tenant from
//! one request to the next. Authentication by API key opens that transaction and sets the
//! tenant in the same statement (`crm_authenticate_api_key`, or for a key this process
//! resolved recently, a check of the key in its tenant: `key_cache`), so it costs no round
//! trip of its own.

mod availability;
mod columns;
mod companies;
mod contacts;
mod entities;
mod errors;
mod events;
mod idempotency;
mod identity;
mod invitations;
mod key_cache;
mod keyset;
mod leads;
mod local_socket;
pub mod migrate;
mod one_statement;
mod pipelined_lane;
mod pipelines;
mod provisioning;
mod statement_lane;
mod store;
mod webhooks;

pub use migrate::{MigrateError, migrate};
pub use provisioning::PgProvisioning;
pub use store::{ConnectError, PgStore, PgUnitOfWork, PoolOptions, PoolStats, RoleCheckError};
