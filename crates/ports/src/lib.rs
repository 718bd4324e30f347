//! The traits the core needs from the outside world, and nothing else.
//!
//! Every tenant-scoped operation runs inside a [`UnitOfWork`], opened by a [`TenantStore`]
//! for exactly one tenant: the PostgreSQL adapter makes that a transaction with
//! `app.tenant_id` set (so row-level security scopes every statement), the in-memory
//! adapter a staged copy of one tenant's data. Use cases never see which one they got.
//!
//! One module per resource, named as in every other layer (`contacts`, `companies`,
//! `pipelines`, `leads`, `activities`, `identity`, `invitations`, `qr`, `idempotency`,
//! `webhooks`, `events`), plus `unit_of_work` (the transaction and the stores that open it),
//! `services` (hasher, limiter, webhook sender, health, provisioning, clock) and `errors`
//! (what several ports share). Everything is re-exported here, so callers write
//! `ports::ContactRepository` whatever the module.
//!
//! [`UnitOfWork`] is the transaction only (commit, or park for the idempotency layer); a
//! use case bounds the repositories it touches beside it
//! (`U: UnitOfWork + ContactRepository`), so its signature says what it reads and writes.
//! [`Repositories`] is every repository together, the bound of [`TenantStore::Uow`], for
//! callers generic over the store (the HTTP layer).
//!
//! Time: a use case that needs "now" reads it from a [`Clock`], and the clock comes with
//! the storage: the unit of work is one (`U: UnitOfWork + Clock + …`), and so is the
//! [`PreAuthStore`]. That is the least invasive shape (no clock argument through the HTTP
//! layer) and keeps one time per deployment: the expiries the adapter checks and those
//! the use cases compute agree. PostgreSQL runs on [`SystemClock`] (its SQL on the
//! database's `now()`); the memory adapter takes a clock a test moves
//! (`adapters_memory::ManualClock`).
//!
//! Traits use `impl Future + Send` rather than `async fn` so the futures are `Send` and can
//! run on any executor thread.

mod activities;
mod companies;
mod contacts;
mod errors;
mod events;
mod idempotency;
mod identity;
mod invitations;
mod leads;
mod pipelines;
mod qr;
mod services;
mod unit_of_work;
mod webhooks;

pub use activities::*;
pub use companies::*;
pub use contacts::*;
pub use errors::*;
pub use events::*;
pub use idempotency::*;
pub use identity::*;
pub use invitations::*;
pub use leads::*;
pub use pipelines::*;
pub use qr::*;
pub use services::*;
pub use unit_of_work::*;
pub use webhooks::*;
