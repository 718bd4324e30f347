//! Idempotent POSTs (SPEC §3): the key's syntax and the request's fingerprint. The record
//! itself is looked up and stored inside the request's own unit of work
//! (`ports::IdempotencyRepository`), so it commits with the change it answers for.

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
