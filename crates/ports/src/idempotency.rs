//! Idempotency records (`Idempotency-Key`): what is kept for a replay and how a key is claimed.

use std::future::Future;

use domain::principal::{Role, Scopes};
use uuid::Uuid;

use crate::errors::RepoError;

/// A response kept for idempotent replay, with the power it was given with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status (2xx: only requests whose change committed are stored).
    pub status: u16,
    /// The headers worth replaying (`Location`, `ETag`), as (name, value).
    pub headers: Vec<(String, String)>,
    /// The body, byte for byte.
    pub body: Vec<u8>,
    /// The credential's role when it ran: a replay needs at least as much.
    pub role: Role,
    /// The credential's scopes when it ran: a replay needs them still.
    pub scopes: Scopes,
}

/// What one idempotency record is about: one credential's request under one key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyScope {
    /// The API key or session that sent it; no other credential sees its record.
    pub credential: Uuid,
    /// The `Idempotency-Key`.
    pub key: String,
    /// SHA-256 of method, path and body.
    pub request_hash: [u8; 32],
}

/// What looking an idempotency key up at the start of a request found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdempotencyClaim {
    /// Not seen (or expired): run the request; the key is held until its transaction ends.
    Claimed,
    /// Done before with the same request: send this again (if still allowed).
    Replay(StoredResponse),
    /// Used before with another request.
    Mismatch,
    /// Another request with this key is running right now.
    InFlight,
}

/// Idempotency records of the unit of work's tenant. Both steps run inside the request's
/// own unit of work, so the record commits with the change it answers for.
pub trait IdempotencyRepository {
    /// Looks the key up and holds it for this unit of work.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn begin_idempotent(
        &mut self,
        scope: &IdempotencyScope,
    ) -> impl Future<Output = Result<IdempotencyClaim, RepoError>> + Send;

    /// Stores the response, to commit with the change.
    ///
    /// # Errors
    /// [`RepoError`] when storage fails.
    fn store_idempotent(
        &mut self,
        scope: &IdempotencyScope,
        response: &StoredResponse,
    ) -> impl Future<Output = Result<(), RepoError>> + Send;
}
