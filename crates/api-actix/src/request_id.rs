//! The request id: the caller's `X-Request-Id` when it is a sane token, else a new UUID.
//! It is kept in a task-local for the duration of the request so every envelope and log
//! line of the request can carry it without threading it through every function.

use uuid::Uuid;

tokio::task_local! {
    static REQUEST_ID: String;
}

/// Runs `future` with `id` as the current request id.
pub async fn scope<F: std::future::Future>(id: String, future: F) -> F::Output {
    REQUEST_ID.scope(id, future).await
}

/// The id of the request being served, if called while serving one.
#[must_use]
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

/// The header carrying the id, both ways.
pub const HEADER: &str = "x-request-id";

/// The caller's id if it is 1-128 characters of `[A-Za-z0-9._:-]`, else a fresh one.
#[must_use]
pub fn accept_or_generate(presented: Option<&str>) -> String {
    match presented {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b)) =>
        {
            id.to_owned()
        }
        _ => Uuid::new_v4().to_string(),
    }
}
