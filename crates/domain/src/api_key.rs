//! API key secrets: how they look, how they are hashed, how a presented token is parsed.
//!
//! A key is `crm_sk_` followed by 40 base62 characters (about 238 bits of randomness).
//! Only the SHA-256 of the whole key is stored; the first 12 characters are kept as a
//! public prefix so people can recognise a key in lists and logs. A fast hash is right
//! here (unlike passwords): the input is long and random, so there is nothing to guess.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// The greppable marker every API key starts with (secret scanners match on it).
pub const API_KEY_PREFIX: &str = "crm_sk_";
/// How many random characters follow the marker.
const RANDOM_LEN: usize = 40;
/// How many characters of the key are shown as its public prefix.
const DISPLAY_PREFIX_LEN: usize = 12;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly made key, in clear: shown once to its creator, then forgotten.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl std::fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiKeySecret({}…)", self.display_prefix())
    }
}

/// The SHA-256 of a key: what storage holds and looks keys up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ApiKeyHash(pub [u8; 32]);

impl ApiKeyHash {
    /// Compares in constant time, for callers that hold a stored hash.
    #[must_use]
    pub fn matches(&self, other: &ApiKeyHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A bearer token that does not have the shape of an API key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("malformed API key")]
pub struct MalformedApiKey;

impl ApiKeySecret {
    /// Builds a key from random bytes (one byte per character, mapped onto base62 with
    /// rejection of the biased tail so every character is uniform).
    ///
    /// Returns `None` when `bytes` ran out before 40 characters were drawn; callers pass
    /// plenty (64 bytes fail with probability below 10^-20).
    #[must_use]
    pub fn from_random_bytes(bytes: &[u8]) -> Option<Self> {
        let mut key = String::with_capacity(API_KEY_PREFIX.len() + RANDOM_LEN);
        key.push_str(API_KEY_PREFIX);
        let mut drawn = 0;
        for &byte in bytes {
            // 248 = 4 * 62: bytes above it would favour the first characters.
            if byte < 248 {
                key.push(char::from(ALPHABET[usize::from(byte % 62)]));
                drawn += 1;
                if drawn == RANDOM_LEN {
                    return Some(Self(key));
                }
            }
        }
        None
    }

    /// Parses a presented bearer token. Only the shape is checked; whether such a key
    /// exists is storage's business.
    ///
    /// # Errors
    /// [`MalformedApiKey`] when the token cannot be one of our keys.
    pub fn parse(token: &str) -> Result<Self, MalformedApiKey> {
        let rest = token.strip_prefix(API_KEY_PREFIX).ok_or(MalformedApiKey)?;
        if rest.len() == RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self(token.to_owned()))
        } else {
            Err(MalformedApiKey)
        }
    }

    /// The key in clear, to show once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The public part shown in lists (`crm_sk_AbCd`).
    #[must_use]
    pub fn display_prefix(&self) -> &str {
        &self.0[..DISPLAY_PREFIX_LEN]
    }

    /// The stored form.
    #[must_use]
    pub fn hash(&self) -> ApiKeyHash {
        ApiKeyHash(Sha256::digest(self.0.as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_and_hash_stably() {
        let bytes: Vec<u8> = (0..64).collect();
        let key = ApiKeySecret::from_random_bytes(&bytes).expect("enough bytes");
        assert!(key.expose().starts_with("crm_sk_"));
        assert_eq!(key.expose().len(), 47);
        let parsed = ApiKeySecret::parse(key.expose()).expect("own keys parse");
        assert!(parsed.hash().matches(&key.hash()));
        assert_eq!(key.display_prefix().len(), 12);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key = ApiKeySecret::from_random_bytes(&[7; 64]).expect("enough bytes");
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.expose()));
    }

    #[test]
    fn too_few_random_bytes_make_no_key() {
        assert!(ApiKeySecret::from_random_bytes(&[1; 10]).is_none());
        assert!(ApiKeySecret::from_random_bytes(&[255; 100]).is_none());
    }

    #[test]
    fn tokens_of_other_shapes_are_refused() {
        for token in [
            "",
            "crm_sk_",
            "crm_st_0123456789012345678901234567890123456789",
            "crm_sk_short",
            "crm_sk_0123456789012345678901234567890123456-89",
        ] {
            assert_eq!(ApiKeySecret::parse(token), Err(MalformedApiKey), "{token}");
        }
    }

    proptest! {
        #[test]
        fn any_random_bytes_give_a_key_that_parses(bytes in proptest::collection::vec(any::<u8>(), 64..128)) {
            if let Some(key) = ApiKeySecret::from_random_bytes(&bytes) {
                prop_assert!(ApiKeySecret::parse(key.expose()).is_ok());
            }
        }

        #[test]
        fn parse_never_panics(token in ".{0,80}") {
            let _ = ApiKeySecret::parse(&token);
        }
    }
}
