//! Small text value objects shared by several resources.

use thiserror::Error;

/// Why a piece of text was refused.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum TextError {
    /// Nothing but whitespace.
    #[error("must not be blank")]
    Blank,
    /// Longer than allowed (counted in characters, not bytes).
    #[error("must be at most {max} characters")]
    TooLong {
        /// The maximum allowed.
        max: usize,
    },
    /// Contains control characters (newlines, NUL...), which have no place in a one-line field.
    #[error("must not contain control characters")]
    ControlCharacter,
}

/// Trims, then checks a one-line text: not blank, at most `max` characters, no control
/// characters. Unicode is welcome; so are quotes and anything else a name may hold.
///
/// # Errors
/// The first rule the text breaks.
pub fn single_line(raw: &str, max: usize) -> Result<String, TextError> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(TextError::Blank);
    }
    if trimmed.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    if trimmed.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    Ok(trimmed.to_owned())
}

/// Like [`single_line`], but blank input means "no value".
///
/// # Errors
/// As [`single_line`], except that blank is not an error.
pub fn optional_single_line(raw: Option<&str>, max: usize) -> Result<Option<String>, TextError> {
    match raw {
        None => Ok(None),
        Some(text) if text.trim().is_empty() => Ok(None),
        Some(text) => single_line(text, max).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_trims_and_keeps_unicode() {
        assert_eq!(single_line("  Zoë O'Brien  ", 50), Ok("Zoë O'Brien".to_owned()));
    }

    #[test]
    fn single_line_counts_characters_not_bytes() {
        let name = "é".repeat(10);
        assert!(single_line(&name, 10).is_ok());
        assert_eq!(single_line(&name, 9), Err(TextError::TooLong { max: 9 }));
    }

    #[test]
    fn single_line_refuses_blank_and_control_characters() {
        assert_eq!(single_line("   ", 10), Err(TextError::Blank));
        assert_eq!(single_line("a\nb", 10), Err(TextError::ControlCharacter));
        assert_eq!(single_line("a\0b", 10), Err(TextError::ControlCharacter));
    }

    #[test]
    fn optional_single_line_treats_blank_as_absent() {
        assert_eq!(optional_single_line(Some("  "), 10), Ok(None));
        assert_eq!(optional_single_line(None, 10), Ok(None));
    }
}
