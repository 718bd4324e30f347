//! Errors shared by several ports: a failure of storage itself ([`RepoError`]), and the
//! write error of the CRM records that reference each other ([`CrmWriteError`], leads and
//! activities).

use thiserror::Error;

/// A failure of the storage itself, not of the caller's request.
#[derive(Debug, Error)]
pub enum RepoError {
    /// The store cannot be reached or is shutting down; worth retrying later (503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A concurrent change won (deadlock or serialization failure); the whole request may
    /// be retried (409).
    #[error("concurrent change: {0}")]
    Contention(String),
    /// Anything else: a bug or a broken invariant. The message is for logs only.
    #[error("unexpected storage error: {0}")]
    Unexpected(String),
}

/// Why a lead or activity could not be written: a reference outside the tenant (or
/// inconsistent, like a stage of another pipeline), named by its API field, or storage.
#[derive(Debug, Error)]
pub enum CrmWriteError {
    /// A referenced record does not exist in this tenant: the API field that names it.
    #[error("{0} does not refer to a record of this tenant")]
    UnknownReference(&'static str),
    /// The row does not exist in this tenant.
    #[error("not found")]
    NotFound,
    /// Storage failed.
    #[error(transparent)]
    Repo(#[from] RepoError),
}
