//! An in-memory implementation of the storage ports (tenant store, unit of work and its
//! repositories, pre-authentication store, provisioning, health), for fast use-case tests;
//! and a clock a test moves by hand. No production code lives here.
//!
//! A unit of work takes a copy of its tenant's data, works on the copy, and writes it back
//! on commit: dropping it discards every change, like a rolled-back transaction. Units of
//! work of one tenant that overlap in time are last-writer-wins, which is enough for tests
//! that run use cases one after another; the PostgreSQL adapter is the one with real
//! isolation and locking.
//!
//! Changes write their events into the tenant's log inside the unit of work, as
//! PostgreSQL's triggers do in the writing transaction: visible on commit, gone with a
//! dropped unit of work.
//!
//! One module per resource, named as in `ports` and `adapters-postgres`; `store` holds the
//! store, the unit of work and the data they share, `keyset` the paging every list uses,
//! `events` the rule that decides which event a change makes.

mod activities;
mod clock;
mod companies;
mod contacts;
mod events;
mod idempotency;
mod identity;
mod invitations;
mod keyset;
mod leads;
mod pipelines;
mod qr;
mod store;
mod webhooks;

pub use clock::ManualClock;
pub use store::{MemoryStore, MemoryUnitOfWork};
