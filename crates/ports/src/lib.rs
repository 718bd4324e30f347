//! The traits the core needs from the outside world, and nothing else.
//!
//! Every tenant-scoped operation runs inside a [`UnitOfWork`], opened by a [`TenantStore`]
//! for exactly one tenant: the PostgreSQL adapter makes that a transaction with
//! `app.tenant_id` set (so row-level security scopes every statement), the in-memory
//! adapter a staged copy of one tenant's data. Use cases never see which one they got.
//!
//! One module per resource, named as in every other layer (`contacts`, `companies`,
//! `pipelines`, `leads`, `activities`, `identity`, `invitations`, `qr`, `idempotency`,
//! `webhooks`), plus `unit_of_work` (the transaction and the stores that open it),
//! `services` (hasher, limiter, webhook sender, health, provisioning, clock) and `errors`
//! (what several ports share). Everything is re-exported here, so callers write
//! `ports::ContactRepository` whatever the module.
//!
//! Traits use `impl Future + Send` rather than `async fn` so the futures are `Send` and can
//! run on any executor thread.

mod activities;
mod companies;
mod contacts;
mod errors;
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
pub use idempotency::*;
pub use identity::*;
pub use invitations::*;
pub use leads::*;
pub use pipelines::*;
pub use qr::*;
pub use services::*;
pub use unit_of_work::*;
pub use webhooks::*;
