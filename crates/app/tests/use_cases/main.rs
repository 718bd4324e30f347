//! Use cases against the in-memory adapter: the adapter swap in action, fast. One test
//! binary for the crate.

mod clock;
mod contacts;
mod crm;
mod events;
mod identity;
mod invitations;
