//! Webhook delivery over HTTP with awc: the [`ports::WebhookSender`] adapter.
//!
//! It lives apart from the API crate because it talks to addresses chosen by tenants, so it
//! carries the SSRF guard (SPEC §5): only public addresses, at registration and again at
//! connect time; https only; no redirects; a bounded time and a bounded response read.
//! Local receivers for development and tests are let through by [`SenderConfig`]'s
//! `allow_private` and `allow_http`, off by default.

mod guard;
mod retry_after;
mod sender;

pub use sender::{AwcWebhookSender, DEFAULT_VET_SLOTS, SenderConfig, VetSlots};
