//! garde reports to the API's field map, with field paths in the API's camelCase.

use domain::FieldErrors;

/// `first_name` -> `firstName`, `tags[3]` stays `tags[3]`.
fn camel_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Every garde error, keyed by camelCase path.
pub(crate) fn field_errors(report: &garde::Report) -> FieldErrors {
    let mut fields = FieldErrors::new();
    for (path, error) in report.iter() {
        let path = camel_case(&path.to_string());
        let field = if path.is_empty() {
            "body".to_owned()
        } else {
            path
        };
        fields.add(field, error.message().to_string());
    }
    fields
}

/// An optional integer that also accepts integral JSON numbers written with a fraction
/// (`71.0`): JSON Schema calls them integers, so clients and generators may send them.
pub(crate) fn optional_integer<'de, D>(deserializer: D) -> Result<Option<i64>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize;
    let Some(number) = Option::<serde_json::Number>::deserialize(deserializer)? else {
        return Ok(None);
    };
    if let Some(whole) = number.as_i64() {
        return Ok(Some(whole));
    }
    match number.as_f64() {
        Some(float) if float.fract() == 0.0 && float.abs() < 9.0e15 =>
        {
            #[allow(clippy::cast_possible_truncation)]
            Ok(Some(float as i64))
        }
        _ => Err(serde::de::Error::custom("expected a whole number")),
    }
}

/// [`optional_integer`] for a merge patch: `Some(None)` for an explicit `null`, so that
/// "absent" and "null" stay apart.
pub(crate) fn present_integer<'de, D>(deserializer: D) -> Result<Option<Option<i64>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    optional_integer(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::camel_case;

    #[test]
    fn snake_case_paths_become_camel_case() {
        assert_eq!(camel_case("first_name"), "firstName");
        assert_eq!(camel_case("custom_fields.some_key"), "customFields.someKey");
        assert_eq!(camel_case("tags[3]"), "tags[3]");
    }
}
