//! Passwords as people choose them: long enough to resist guessing, never silently
//! truncated, never printed.

use thiserror::Error;

/// Shortest accepted password, in characters (NIST SP 800-63B asks for at least 8).
pub const PASSWORD_MIN: usize = 10;
/// Longest accepted password: generous (pass-phrases), bounded so hashing cost is bounded.
pub const PASSWORD_MAX: usize = 1024;

/// A password in clear, on its way to the hasher.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

/// Why a new password was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum PasswordError {
    /// Fewer than 10 characters.
    #[error("must be at least {PASSWORD_MIN} characters")]
    TooShort,
    /// More than 1024 characters.
    #[error("must be at most {PASSWORD_MAX} characters")]
    TooLong,
}

impl Password {
    /// Checks a new password's length (in characters; any character is allowed).
    ///
    /// # Errors
    /// [`PasswordError`] when it is too short or too long.
    pub fn new(raw: &str) -> Result<Self, PasswordError> {
        let length = raw.chars().count();
        if length < PASSWORD_MIN {
            Err(PasswordError::TooShort)
        } else if length > PASSWORD_MAX {
            Err(PasswordError::TooLong)
        } else {
            Ok(Self(raw.to_owned()))
        }
    }

    /// A presented password at login: not checked against the rules (they may have changed
    /// since it was set), only bounded so a megabyte of input cannot cost a megabyte of
    /// hashing.
    #[must_use]
    pub fn presented(raw: &str) -> Option<Self> {
        (raw.chars().count() <= PASSWORD_MAX).then(|| Self(raw.to_owned()))
    }

    /// The password in clear, for the hasher only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert_eq!(Password::new("ééééééééé"), Err(PasswordError::TooShort));
        assert!(Password::new("éééééééééé").is_ok());
        assert!(
            Password::new(&"x".repeat(128)).is_ok(),
            "no maximum below 128"
        );
        assert_eq!(
            Password::new(&"x".repeat(1025)),
            Err(PasswordError::TooLong)
        );
    }

    #[test]
    fn debug_never_shows_the_password() {
        let password = Password::new("correct horse battery").expect("valid");
        assert!(!format!("{password:?}").contains("horse"));
    }
}
