//! Bearer secrets: API keys, session tokens and QR poll tokens and codes.
//!
//! Every secret is a greppable prefix (`crm_sk_`, `crm_st_`, `crm_qp_`, `crm_qr_`) followed
//! by 40 base62 characters (about 238 bits of randomness). Only the SHA-256 of the whole
//! secret is stored; the first 12 characters are kept as a public prefix so people can
//! recognise a key in lists and logs. A fast hash is right here (unlike passwords): the
//! input is long and random, so there is nothing to guess.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// How many random characters follow the prefix.
const RANDOM_LEN: usize = 40;
/// How many characters of the secret are shown as its public prefix.
const DISPLAY_PREFIX_LEN: usize = 12;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a secret is for, told by its prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// An API key of a tenant (`crm_sk_`).
    ApiKey,
    /// A login session (`crm_st_`).
    Session,
    /// The poll token of a QR login request (`crm_qp_`), held by the waiting device.
    QrPoll,
    /// The code a QR image carries (`crm_qr_`), read by the scanning device.
    QrCode,
    /// A single-use invitation into a tenant (`crm_inv_`), handed to the invitee.
    Invitation,
}

impl TokenKind {
    /// The greppable marker (secret scanners match on it).
    #[must_use]
    pub const fn prefix(self) -> &'static str {
        match self {
            Self::ApiKey => "crm_sk_",
            Self::Session => "crm_st_",
            Self::QrPoll => "crm_qp_",
            Self::QrCode => "crm_qr_",
            Self::Invitation => "crm_inv_",
        }
    }
}

/// The marker every API key starts with.
pub const API_KEY_PREFIX: &str = "crm_sk_";

/// A secret in clear: shown once to its owner, then forgotten.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretToken {
    kind: TokenKind,
    value: String,
}

impl std::fmt::Debug for SecretToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SecretToken({}…)", self.display_prefix())
    }
}

/// The SHA-256 of a secret: what storage holds and looks secrets up by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// Compares in constant time, for callers that hold a stored hash.
    #[must_use]
    pub fn matches(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// A bearer token that does not have the shape of the expected secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
#[error("malformed token")]
pub struct MalformedToken;

impl SecretToken {
    /// Builds a secret from random bytes (one byte per character, mapped onto base62 with
    /// rejection of the biased tail so every character is uniform).
    ///
    /// Returns `None` when `bytes` ran out before 40 characters were drawn; callers pass
    /// plenty (64 bytes fail with probability below 10^-20).
    #[must_use]
    pub fn from_random_bytes(kind: TokenKind, bytes: &[u8]) -> Option<Self> {
        let mut value = String::with_capacity(kind.prefix().len() + RANDOM_LEN);
        value.push_str(kind.prefix());
        let mut drawn = 0;
        for &byte in bytes {
            // 248 = 4 * 62: bytes above it would favour the first characters.
            if byte < 248 {
                value.push(char::from(ALPHABET[usize::from(byte % 62)]));
                drawn += 1;
                if drawn == RANDOM_LEN {
                    return Some(Self { kind, value });
                }
            }
        }
        None
    }

    /// Parses a presented token of a known kind. Only the shape is checked; whether such
    /// a secret exists is storage's business.
    ///
    /// # Errors
    /// [`MalformedToken`] when the token cannot be a secret of that kind.
    pub fn parse(kind: TokenKind, token: &str) -> Result<Self, MalformedToken> {
        let rest = token.strip_prefix(kind.prefix()).ok_or(MalformedToken)?;
        if rest.len() == RANDOM_LEN && rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(Self {
                kind,
                value: token.to_owned(),
            })
        } else {
            Err(MalformedToken)
        }
    }

    /// What the secret is for.
    #[must_use]
    pub const fn kind(&self) -> TokenKind {
        self.kind
    }

    /// The secret in clear, to show once.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.value
    }

    /// The public part shown in lists (`crm_sk_AbCd`).
    #[must_use]
    pub fn display_prefix(&self) -> &str {
        &self.value[..DISPLAY_PREFIX_LEN]
    }

    /// The stored form.
    #[must_use]
    pub fn hash(&self) -> TokenHash {
        TokenHash(Sha256::digest(self.value.as_bytes()).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_parse_and_hash_stably() {
        let bytes: Vec<u8> = (0..64).collect();
        let key = SecretToken::from_random_bytes(TokenKind::ApiKey, &bytes).expect("enough bytes");
        assert!(key.expose().starts_with("crm_sk_"));
        assert_eq!(key.expose().len(), 47);
        let parsed = SecretToken::parse(TokenKind::ApiKey, key.expose()).expect("own keys parse");
        assert!(parsed.hash().matches(&key.hash()));
        assert_eq!(key.display_prefix().len(), 12);
    }

    #[test]
    fn each_kind_parses_only_its_own_prefix() {
        for kind in [
            TokenKind::ApiKey,
            TokenKind::Session,
            TokenKind::QrPoll,
            TokenKind::QrCode,
            TokenKind::Invitation,
        ] {
            let token = SecretToken::from_random_bytes(kind, &[9; 64]).expect("enough bytes");
            assert!(token.expose().starts_with(kind.prefix()));
            assert!(SecretToken::parse(kind, token.expose()).is_ok());
            let other = if kind == TokenKind::ApiKey {
                TokenKind::Session
            } else {
                TokenKind::ApiKey
            };
            assert!(SecretToken::parse(other, token.expose()).is_err());
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let key =
            SecretToken::from_random_bytes(TokenKind::ApiKey, &[7; 64]).expect("enough bytes");
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.expose()));
    }

    #[test]
    fn too_few_random_bytes_make_no_key() {
        assert!(SecretToken::from_random_bytes(TokenKind::ApiKey, &[1; 10]).is_none());
        assert!(SecretToken::from_random_bytes(TokenKind::ApiKey, &[255; 100]).is_none());
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
            assert_eq!(
                SecretToken::parse(TokenKind::ApiKey, token),
                Err(MalformedToken),
                "{token}"
            );
        }
    }

    proptest! {
        #[test]
        fn any_random_bytes_give_a_key_that_parses(bytes in proptest::collection::vec(any::<u8>(), 64..128)) {
            if let Some(key) = SecretToken::from_random_bytes(TokenKind::ApiKey, &bytes) {
                prop_assert!(SecretToken::parse(TokenKind::ApiKey, key.expose()).is_ok());
            }
        }

        #[test]
        fn parse_never_panics(token in ".{0,80}") {
            let _ = SecretToken::parse(TokenKind::ApiKey, &token);
        }
    }
}
