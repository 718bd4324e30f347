//! An in-memory implementation of every port, for fast use-case tests.
//!
//! A unit of work takes a copy of its tenant's data, works on the copy, and writes it back
//! on commit: dropping it discards every change, like a rolled-back transaction. Units of
//! work of one tenant that overlap in time are last-writer-wins, which is enough for tests
//! that run use cases one after another; the PostgreSQL adapter is the one with real
//! isolation and locking.
//!
//! One module per resource, named as in `ports` and `adapters-postgres`; `store` holds the
//! store, the unit of work and the data they share, `keyset` the paging every list uses.

mod activities;
mod clock;
mod companies;
mod contacts;
mod idempotency;
mod identity;
mod invitations;
mod keyset;
mod leads;
mod pipelines;
mod qr;
pub mod rate_limit;
mod store;
mod webhooks;

pub use clock::ManualClock;
pub use rate_limit::GovernorRateLimiter;
pub use store::{MemoryStore, MemoryUnitOfWork};
