//! Reading a receiver's `Retry-After` header, so the delivery schedule can honour a
//! receiver that asks to be left alone for a while (429, 503).

use std::time::{Duration, SystemTime};

/// The delay a `Retry-After` value asks for, as of `now`: delta seconds, or an HTTP date
/// (a date already past means "now"). `None` for anything else, so a malformed header is
/// ignored rather than trusted.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.bytes().all(|byte| byte.is_ascii_digit()) {
        return value.parse::<u64>().ok().map(Duration::from_secs);
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moment(text: &str) -> SystemTime {
        httpdate::parse_http_date(text).expect("a valid HTTP date")
    }

    #[test]
    fn delta_seconds_are_read_as_seconds() {
        assert_eq!(
            parse_retry_after("7", SystemTime::now()),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after(" 120 ", SystemTime::now()),
            Some(Duration::from_secs(120))
        );
    }

    #[test]
    fn an_http_date_is_read_as_the_delay_until_then() {
        let now = moment("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:30:30 GMT", now),
            Some(Duration::from_secs(150))
        );
    }

    #[test]
    fn an_http_date_in_the_past_means_now() {
        let now = moment("Wed, 21 Oct 2015 07:28:00 GMT");
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn anything_else_is_ignored() {
        for value in ["", "-1", "1.5", "soon", "99999999999999999999999"] {
            assert_eq!(parse_retry_after(value, SystemTime::now()), None, "{value}");
        }
    }
}
