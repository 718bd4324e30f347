//! The pure core of the CRM: entities, value objects and business rules.
//!
//! Nothing in this crate performs I/O or knows about a runtime, a database or HTTP, so
//! other services can reuse the rules and every rule can be tested in microseconds.
//! Values are parsed once at the boundary (`Email::parse`, `ContactDraft::new`) and are
//! valid from then on.

pub mod activity;
pub mod company;
pub mod contact;
pub mod event;
pub mod field_errors;
pub mod identity;
pub mod ids;
pub mod lead;
pub mod list;
pub mod password;
pub mod pipeline;
pub mod principal;
pub mod rate_limit;
pub mod special_addresses;
pub mod text;
pub mod token;
pub mod webhook;

pub use field_errors::FieldErrors;
