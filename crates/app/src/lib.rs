//! Use cases: what the CRM does, written once over the ports.
//!
//! Each use case takes a unit of work already scoped to the caller's tenant (opened by
//! [`auth::authenticate`]), checks the caller's permission, applies the domain rules,
//! writes through the unit of work and commits. The HTTP layer and the CLI only translate.
//!
//! A use case's bounds say what it touches: `U: UnitOfWork + ContactRepository` reads and
//! writes contacts and nothing else; `+ Clock` when a rule depends on the time, which it
//! reads from the unit of work (or the pre-authentication store), never from the system,
//! so tests move time instead of sleeping.

pub mod api_keys;
pub mod auth;
pub mod batch;
pub mod companies;
pub mod contacts;
pub mod demo;
pub mod idempotency;
pub mod identity;
pub mod invitations;
pub mod leads;
pub mod members;
pub mod passwords;
pub mod pipelines;
pub mod qr;
pub mod secrets;
pub mod tenants;
pub mod webhooks;
