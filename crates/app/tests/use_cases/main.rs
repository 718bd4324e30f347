//! Use cases against the in-memory adapter: the adapter swap in action, fast. One test
//! binary for the crate.

mod clock;
mod contacts;
mod crm;
mod identity;
mod invitations;
