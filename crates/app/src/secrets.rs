//! Fresh secrets from the operating system's random source.

use domain::token::{SecretToken, TokenKind};
use rand::RngCore;
use thiserror::Error;

/// The random source did not produce enough usable bytes (practically impossible).
#[derive(Clone, Copy, Debug, Error)]
#[error("could not generate a secret")]
pub struct SecretGenerationFailed;

/// A new secret of `kind`.
///
/// # Errors
/// [`SecretGenerationFailed`] if 96 random bytes did not yield 40 characters.
pub fn generate(kind: TokenKind) -> Result<SecretToken, SecretGenerationFailed> {
    let mut bytes = [0_u8; 96];
    rand::rng().fill_bytes(&mut bytes);
    SecretToken::from_random_bytes(kind, &bytes).ok_or(SecretGenerationFailed)
}
