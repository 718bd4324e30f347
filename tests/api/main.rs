//! Black-box tests of the real application (HTTP on 127.0.0.1:0) over a real PostgreSQL,
//! connected as the real application role `crm_app`, each test with its own database.
//! One test binary for the whole crate, so it is compiled and linked once.

mod api_keys;
mod batch;
mod cancellation;
mod companies;
mod compression;
mod contacts;
mod errors;
mod events;
mod helpers;
mod idempotency;
mod identity;
mod isolation;
mod key_rights;
mod leads;
mod logs;
mod members;
mod metrics;
mod openapi;
mod outage;
mod pipelines;
mod qr_page;
mod rate_limit;
mod remembered_lists;
mod remembered_writes;
mod search;
mod security;
mod shutdown;
mod startup;
mod statement_lane;
mod walk;
mod webhook_delivery;
mod webhook_security;
mod webhook_sql;
mod webhooks;
