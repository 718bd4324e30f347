//! argon2id password hashing (OWASP parameters: 19 MiB, 2 passes, 1 lane), run on
//! tokio's blocking pool so a login never stalls an HTTP worker.

use std::sync::Arc;

use argon2::password_hash::phc::PasswordHash;
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};
use domain::password::Password;
use ports::{BoxFuture, PasswordHasher, RepoError};

/// Most argon2 computations at once. Each takes 19 MiB and a core for tens of
/// milliseconds; without a bound, a burst of logins could exhaust memory.
const CONCURRENT_HASHES: usize = 4;

/// The production hasher.
#[derive(Clone, Debug)]
pub struct Argon2Hasher {
    dummy: Arc<str>,
    permits: Arc<tokio::sync::Semaphore>,
}

fn hash_blocking(password: &str) -> Result<String, RepoError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|e| RepoError::Unexpected(format!("argon2 hashing failed: {e}")))
}

fn verify_blocking(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

impl Argon2Hasher {
    /// Makes the hasher and its dummy hash (of a random password, same parameters).
    ///
    /// # Errors
    /// [`RepoError::Unexpected`] if hashing fails, which means the platform is broken.
    pub fn new() -> Result<Self, RepoError> {
        let nobody = crate::secrets::generate(domain::token::TokenKind::Session)
            .map_err(|e| RepoError::Unexpected(e.to_string()))?;
        let dummy = hash_blocking(nobody.expose())?;
        Ok(Self {
            dummy: dummy.into(),
            permits: Arc::new(tokio::sync::Semaphore::new(CONCURRENT_HASHES)),
        })
    }
}

impl PasswordHasher for Argon2Hasher {
    fn hash<'a>(&'a self, password: &'a Password) -> BoxFuture<'a, Result<String, RepoError>> {
        let password = password.expose().to_owned();
        Box::pin(async move {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|e| RepoError::Unexpected(format!("hashing closed: {e}")))?;
            tokio::task::spawn_blocking(move || hash_blocking(&password))
                .await
                .map_err(|e| RepoError::Unexpected(format!("hashing task failed: {e}")))?
        })
    }

    fn verify<'a>(&'a self, password: &'a Password, stored: &'a str) -> BoxFuture<'a, bool> {
        let password = password.expose().to_owned();
        let stored = stored.to_owned();
        Box::pin(async move {
            let Ok(_permit) = self.permits.acquire().await else {
                return false;
            };
            tokio::task::spawn_blocking(move || verify_blocking(&password, &stored))
                .await
                .unwrap_or(false)
        })
    }

    fn dummy_hash(&self) -> &str {
        &self.dummy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_password_verifies_against_its_own_hash_only() {
        let hasher = Argon2Hasher::new().expect("hasher");
        let password = Password::new("correct horse battery").expect("valid");
        let hash = hasher.hash(&password).await.expect("hashed");
        assert!(hash.starts_with("$argon2id$"));
        assert!(hasher.verify(&password, &hash).await);
        let wrong = Password::new("incorrect horse battery").expect("valid");
        assert!(!hasher.verify(&wrong, &hash).await);
        assert!(!hasher.verify(&password, hasher.dummy_hash()).await);
        assert!(!hasher.verify(&password, "not a phc string").await);
    }
}
