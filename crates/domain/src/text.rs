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

/// Checks a one-line text as sent (at most `max` characters, no control characters), then
/// trims it and refuses what is left blank. Unicode is welcome; so are quotes and anything
/// else a name may hold. Limits apply to the text as sent, so the published schema
/// (`maxLength`, [`SINGLE_LINE_PATTERN`]) says exactly what is accepted.
///
/// # Errors
/// The first rule the text breaks.
pub fn single_line(raw: &str, max: usize) -> Result<String, TextError> {
    if raw.chars().count() > max {
        return Err(TextError::TooLong { max });
    }
    if raw.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter);
    }
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(TextError::Blank);
    }
    Ok(trimmed.to_owned())
}

/// The schema pattern of a one-line text: no C0/C1 control characters (what
/// `char::is_control` refuses).
pub const SINGLE_LINE_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// The schema pattern of a one-line text that must also hold something besides whitespace.
pub const NON_BLANK_LINE_PATTERN: &str = "^[^\\u0000-\\u001F\\u007F-\\u009F]*[^\\s\\u0000-\\u001F\\u007F-\\u009F][^\\u0000-\\u001F\\u007F-\\u009F]*$";

/// Like [`single_line`], but blank input means "no value".
///
/// # Errors
/// As [`single_line`], except that blank is not an error.
pub fn optional_single_line(raw: Option<&str>, max: usize) -> Result<Option<String>, TextError> {
    match raw.map(|text| single_line(text, max)) {
        None | Some(Err(TextError::Blank)) => Ok(None),
        Some(result) => result.map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_trims_and_keeps_unicode() {
        assert_eq!(
            single_line("  Zoë O'Brien  ", 50),
            Ok("Zoë O'Brien".to_owned())
        );
    }

    #[test]
    fn limits_apply_to_the_text_as_sent() {
        assert_eq!(
            single_line(&format!("{} ", "a".repeat(10)), 10),
            Err(TextError::TooLong { max: 10 })
        );
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
