//! Idempotent POSTs (SPEC §3): claim a key before running a request, then store its
//! response or release the key. Each step is its own short unit of work, so the claim is
//! visible to concurrent retries while the request runs.

use ports::{IdempotencyClaim, RepoError, StoredResponse, UnitOfWork};
use sha2::{Digest, Sha256};

/// The fingerprint a key is bound to: method, path with query, and body.
#[must_use]
pub fn request_hash(method: &str, path_and_query: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(path_and_query.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hasher.finalize().into()
}

/// Checks an `Idempotency-Key` header value: surrounding double quotes are dropped; then
/// 1 to 255 printable ASCII characters.
#[must_use]
pub fn parse_key(raw: &str) -> Option<String> {
    let key = raw
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .unwrap_or(raw);
    let valid =
        !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| (0x20..=0x7e).contains(&b));
    valid.then(|| key.to_owned())
}

/// Claims the key in its own committed unit of work.
///
/// # Errors
/// Storage failures.
pub async fn claim<U: UnitOfWork>(
    mut uow: U,
    key: &str,
    hash: &[u8; 32],
) -> Result<IdempotencyClaim, RepoError> {
    let claim = uow.claim_idempotency_key(key, hash).await?;
    uow.commit().await?;
    Ok(claim)
}

/// Stores the response of a claimed key.
///
/// # Errors
/// Storage failures.
pub async fn complete<U: UnitOfWork>(
    mut uow: U,
    key: &str,
    response: &StoredResponse,
) -> Result<(), RepoError> {
    uow.complete_idempotency_key(key, response).await?;
    uow.commit().await
}

/// Releases a claimed key: the request stored nothing, a retry may run it again.
///
/// # Errors
/// Storage failures.
pub async fn release<U: UnitOfWork>(mut uow: U, key: &str) -> Result<(), RepoError> {
    uow.release_idempotency_key(key).await?;
    uow.commit().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_may_be_quoted_and_must_be_printable() {
        assert_eq!(parse_key("\"abc-123\""), Some("abc-123".to_owned()));
        assert_eq!(parse_key("abc 123"), Some("abc 123".to_owned()));
        assert_eq!(parse_key(""), None);
        assert_eq!(parse_key("\"\""), None);
        assert_eq!(parse_key(&"k".repeat(256)), None);
        assert_eq!(parse_key("tab\there"), None);
        assert_eq!(parse_key("é"), None);
    }

    #[test]
    fn the_fingerprint_covers_method_path_and_body() {
        let base = request_hash("POST", "/v1/contacts", b"{}");
        assert_ne!(base, request_hash("POST", "/v1/companies", b"{}"));
        assert_ne!(base, request_hash("POST", "/v1/contacts", b"{ }"));
        assert_eq!(base, request_hash("POST", "/v1/contacts", b"{}"));
    }
}
