//! Describes a JSON shape error without quoting any value: a value may be a secret or a token.

use serde_json::error::Category;

/// A JSON document that does not have the expected shape.
pub struct ShapeError {
    /// The field at fault (`.` for the document itself).
    pub field: String,
    /// What is wrong, e.g. "missing field `sub`".
    pub what: String,
}

impl From<serde_path_to_error::Error<serde_json::Error>> for ShapeError {
    fn from(e: serde_path_to_error::Error<serde_json::Error>) -> Self {
        let message = e.inner().to_string();
        let path = e.path().to_string();
        let quoted = message.split('`').nth(1).map(str::to_string);
        let field = match (path.as_str(), &quoted) {
            (".", Some(name)) if is_field_error(&message) => name.clone(),
            _ => path,
        };
        let what = match e.inner().classify() {
            Category::Data if is_field_error(&message) => message
                .split(", expected")
                .next()
                .unwrap_or(&message)
                .to_string(),
            Category::Data if field == "." => "wrong type".to_string(),
            Category::Data => format!("`{field}` has the wrong type or value"),
            _ => "not valid JSON".to_string(),
        };
        Self { field, what }
    }
}

fn is_field_error(message: &str) -> bool {
    message.starts_with("missing field") || message.starts_with("unknown field")
}

/// Deserializes `T` from JSON bytes, describing a failure with [`ShapeError`].
pub fn from_slice<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ShapeError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    Ok(serde_path_to_error::deserialize(&mut de)?)
}

/// Deserializes `T` from a JSON value, describing a failure with [`ShapeError`].
pub fn from_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
) -> Result<T, ShapeError> {
    Ok(serde_path_to_error::deserialize(value)?)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct T {
        n: u64,
    }

    #[test]
    fn names_the_field_and_never_the_value() {
        let e = from_value::<T>(json!({"n": "hf_oauth_secret"})).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.what.as_str()),
            ("n", "`n` has the wrong type or value")
        );
        let e = from_value::<T>(json!({})).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.what.as_str()),
            ("n", "missing field `n`")
        );
        let e = from_value::<T>(json!({"n": 1, "x": 2})).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.what.as_str()),
            ("x", "unknown field `x`")
        );
        let e = from_value::<T>(json!(12345)).unwrap_err();
        assert_eq!((e.field.as_str(), e.what.as_str()), (".", "wrong type"));
        let e = from_slice::<T>(b"<html>").unwrap_err();
        assert_eq!(e.what, "not valid JSON");
    }
}
